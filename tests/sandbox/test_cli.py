"""`atlas-ls sandbox` and `atlas-ls --bench sandbox`, run as a user would: as subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, SHARED_DATA
from tests.sandbox.test_pytest_kind import make_workspace, snapshot

SUM = "a, b = map(int, input().split())\nprint(a + b)\n"
SUM_TESTS = [{"input": "1 2\n", "output": "3\n", "testtype": "stdin"},
             {"input": "5 5\n", "output": "10\n", "testtype": "stdin"}]


def atlas(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "atlas_ls.cli", *args], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=300)


def write(folder: Path, name: str, content) -> Path:
    path = folder / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_passing_candidate_exits_0_with_a_json_verdict(tmp_path, strongest):
    done = atlas("sandbox", str(write(tmp_path, "c.py", SUM)), "--tests", str(write(tmp_path, "t.json", SUM_TESTS)),
                 "--json")
    assert done.returncode == 0, done.stderr
    verdict = json.loads(done.stdout)
    assert verdict["passed"] is True and verdict["isolation"] == strongest
    assert [t["status"] for t in verdict["tests"]] == ["pass", "pass"]


def test_failing_candidate_exits_1_and_says_what_differed(tmp_path):
    done = atlas("sandbox", str(write(tmp_path, "c.py", "print(3)")), "--tests",
                 str(write(tmp_path, "t.json", SUM_TESTS)))
    assert done.returncode == 1
    assert "FAIL" in done.stdout and "expected: 10" in done.stdout and "got:      3" in done.stdout


def test_forced_level_is_reported(tmp_path):
    done = atlas("sandbox", str(write(tmp_path, "c.py", SUM)), "--tests", str(write(tmp_path, "t.json", SUM_TESTS)),
                 "--json", "--isolation", "rlimits", "--timeout", "3")
    assert done.returncode == 0 and json.loads(done.stdout)["isolation"] == "rlimits"


@pytest.mark.parametrize("tests, message", [
    ("not json", "is not valid JSON"),
    ([{"input": "1 2\n", "testtype": "stdin"}], "test 1: field 'output' is missing"),
    ([{"input": "1", "output": "2"}, {"input": 3, "output": "4"}], "test 2: field 'input' must be a string"),
    ([{"input": "1", "output": "2", "testtype": "batch"}], "test 1: field 'testtype' is 'batch'"),
    ([{"input": "1", "output": "2", "testtype": "stdin"}, {"input": "1", "output": "2", "testtype": "functional"}],
     "mix testtypes"),
    ([{"input": "[1]\noops", "output": "1", "testtype": "functional"}], "missing --entry"),
    ([], "holds no test cases"),
    ({"entry": "f"}, "field 'assert_code' is missing"),
])
def test_bad_tests_file_exits_2_naming_the_field(tmp_path, tests, message):
    done = atlas("sandbox", str(write(tmp_path, "c.py", SUM)), "--tests", str(write(tmp_path, "t.json", tests)))
    assert done.returncode == 2
    expected = "need --entry NAME" if message == "missing --entry" else message
    assert expected in done.stderr


def test_functional_input_that_is_not_json_names_the_line(tmp_path):
    tests = [{"input": "[1, 2]\n{oops", "output": "3", "testtype": "functional"}]
    done = atlas("sandbox", str(write(tmp_path, "c.py", "def f(a, b):\n    return 3")), "--tests",
                 str(write(tmp_path, "t.json", tests)), "--entry", "f")
    assert done.returncode == 2 and "test 1: field 'input' line 2 is not JSON" in done.stderr


def test_unreadable_candidate_exits_2(tmp_path):
    done = atlas("sandbox", str(tmp_path / "missing.py"), "--tests", str(write(tmp_path, "t.json", SUM_TESTS)))
    assert done.returncode == 2 and "cannot read the candidate file" in done.stderr


def test_livecodebench_public_tests_string(tmp_path):
    """The dataset's own `public_test_cases` field (a JSON string) works as TESTS.json as it is."""
    path = SHARED_DATA / "lcb_v5_public_279.jsonl"
    if not path.exists():
        pytest.skip(f"shared data not present: {path}")
    problem = next(p for p in map(json.loads, path.read_text().splitlines())
                   if json.loads(p["public_test_cases"])[0]["testtype"] == "functional")
    entry = json.loads(problem["metadata"])["func_name"]
    tests = write(tmp_path, "t.json", json.dumps(problem["public_test_cases"]))
    wrong = write(tmp_path, "c.py", f"class Solution:\n    def {entry}(self, *args):\n        return None\n")
    done = atlas("sandbox", str(wrong), "--tests", str(tests), "--entry", entry, "--json", "--timeout", "3")
    assert done.returncode == 1, done.stderr
    verdict = json.loads(done.stdout)
    assert verdict["tests"] and {t["status"] for t in verdict["tests"]} == {"fail"}


def test_assert_and_pytest_kinds_from_the_command_line(tmp_path):
    checks = write(tmp_path, "t.json", {"test": "def check(f):\n    assert f(2) == 4\n", "entry_point": "double"})
    done = atlas("sandbox", str(write(tmp_path, "c.py", "def double(x):\n    return x * 2\n")), "--tests",
                 str(checks))
    assert done.returncode == 0, done.stdout + done.stderr
    workspace = make_workspace(tmp_path / "ws")
    before = snapshot(workspace)
    target = write(tmp_path, "p.json", {"workspace": "ws", "target_file": "calc/ops.py", "function": "add",
                                        "node_ids": ["tests/test_ops.py::test_add"]})
    done = atlas("sandbox", str(write(tmp_path, "body.py", "return a + b\n")), "--tests", str(target), "--json",
                 "--timeout", "30")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["tests"][0]["name"] == "tests/test_ops.py::test_add"
    assert snapshot(workspace) == before


def test_bench_prints_tests_per_second_three_ways():
    done = atlas("--bench", "sandbox", "--json", "--tests", "2")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report["tests_per_s"]) == {"baseline", "fresh", "fork"}
    assert all(value > 0 for value in report["tests_per_s"].values())
    assert set(report["by_kind"]) == {"stdin", "functional"}


def test_one_limit_rule_for_a_chosen_wall_clock():
    """`--timeout T` and the `test_timeout_s` setting both give CPU time the whole wall clock plus a second, never
    less than the default, so a slow test meets the wall clock the user chose rather than a tighter CPU limit."""
    from sandbox import Limits

    assert Limits.for_timeout(1).cpu_s == Limits.cpu_s  # a short wall clock keeps the default CPU allowance
    assert Limits.for_timeout(30.5, memory_mb=64) == Limits(timeout_s=30.5, cpu_s=32, memory_mb=64)
