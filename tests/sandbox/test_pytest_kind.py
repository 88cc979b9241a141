"""The pytest kind: the candidate spliced into a copy of a real workspace, the selected tests run by pytest in the
sandbox, and the user's files never touched."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import sandbox
from sandbox import Limits, PytestTarget, TestSuite
from sandbox.pytest_kind import CandidateError, splice

LIMITS = Limits(timeout_s=20, cpu_s=20)

OPS = '''"""Small arithmetic."""
from __future__ import annotations


def add(a, b):
    """Add two numbers."""
    raise NotImplementedError


class Stack:
    def __init__(self):
        self.items = []

    def push(self, item):
        ...

    def size(self):
        return len(self.items)
'''

TESTS = '''import pytest

from calc.ops import Stack, add


def test_add():
    assert add(1, 2) == 3


def test_add_negative():
    assert add(-1, -2) == -3


@pytest.mark.skip(reason="not today")
def test_skipped():
    assert add(0, 0) == 1


def test_push():
    stack = Stack()
    stack.push(1)
    stack.push(2)
    assert stack.size() == 2 and stack.items == [1, 2]
'''


def make_workspace(root: Path) -> Path:
    (root / "calc").mkdir(parents=True)
    (root / "calc" / "__init__.py").write_text("")
    (root / "calc" / "ops.py").write_text(OPS)
    (root / "tests").mkdir()
    (root / "tests" / "test_ops.py").write_text(TESTS)
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    return root


def snapshot(root: Path) -> dict[str, str]:
    """Every file's content hash: the workspace must come out byte-identical."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def workspace(tmp_path) -> Path:
    root = make_workspace(tmp_path / "ws")
    before = snapshot(root)
    yield root
    assert snapshot(root) == before, "the sandbox changed the user's workspace"


def suite_for(workspace: Path, function: str, *node_ids: str) -> TestSuite:
    return TestSuite("pytest", pytest=PytestTarget(workspace, Path("calc/ops.py"), function, tuple(node_ids)))


ADD_TESTS = ("tests/test_ops.py::test_add", "tests/test_ops.py::test_add_negative")


def test_body_candidate_passes_selected_tests(workspace, strongest):
    verdict = sandbox.run("return a + b", suite_for(workspace, "add", *ADD_TESTS), limits=LIMITS)
    assert verdict.passed, verdict.tests
    assert sorted(t.name for t in verdict.tests) == sorted(ADD_TESTS)
    assert verdict.isolation == strongest


def test_whole_def_candidate_that_is_wrong_fails_with_pytest_detail(workspace, strongest):
    verdict = sandbox.run("def add(a, b):\n    return a - b\n", suite_for(workspace, "add", *ADD_TESTS),
                          limits=LIMITS)
    assert not verdict.passed
    assert {t.status for t in verdict.tests} == {"fail"}
    assert "assert" in verdict.tests[0].got or "assert" in verdict.tests[0].stderr_tail


def test_method_candidate_with_import(workspace, strongest):
    code = "import operator\ndef push(self, item):\n    self.items = operator.add(self.items, [item])\n"
    verdict = sandbox.run(code, suite_for(workspace, "Stack.push", "tests/test_ops.py::test_push"), limits=LIMITS)
    assert verdict.passed, verdict.tests


def test_run_all_counts_marker_skips_as_skipped(workspace, strongest):
    # add is right, push stays a stub: test_push fails, test_skipped is skipped by its marker
    verdict = sandbox.run("return a + b", suite_for(workspace, "add"), limits=LIMITS)
    statuses = {t.name.split("::")[-1]: t.status for t in verdict.tests}
    assert statuses == {"test_add": "pass", "test_add_negative": "pass", "test_skipped": "skipped",
                        "test_push": "fail"}
    assert not verdict.passed


def test_node_id_that_does_not_exist_fails(workspace, strongest):
    verdict = sandbox.run("return a + b", suite_for(workspace, "add", "tests/test_ops.py::test_nope"),
                          limits=LIMITS)
    assert not verdict.passed
    assert verdict.tests[0].status == "fail" and "did not run" in verdict.tests[0].got


def test_candidate_skipping_the_test_does_not_pass(workspace, strongest):
    code = "import pytest\npytest.skip('no thanks')\n"
    verdict = sandbox.run(code, suite_for(workspace, "add", *ADD_TESTS), limits=LIMITS)
    assert not verdict.passed and {t.status for t in verdict.tests} == {"fail"}


def test_candidate_that_does_not_parse_is_an_error_verdict(workspace):
    verdict = sandbox.run("def add(a, b:\n", suite_for(workspace, "add", *ADD_TESTS), limits=LIMITS)
    assert not verdict.passed and "does not parse" in verdict.error


def test_missing_target_function_is_a_format_error(workspace):
    with pytest.raises(sandbox.TestFormatError, match="no function 'subtract'"):
        sandbox.run("return 0", suite_for(workspace, "subtract"), limits=LIMITS)


def test_splice_keeps_the_rest_of_the_file():
    spliced = splice(OPS, "add", "return a + b")
    assert '"""Add two numbers."""\n    return a + b\n' in spliced
    assert spliced.replace("    return a + b\n", "    raise NotImplementedError\n") == OPS
    with pytest.raises(CandidateError):
        splice(OPS, "add", "def add(a, b):\nreturn 1")
