"""engine.workspace and engine.testindex: stub detection, splicing, test discovery, the watched test index."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from engine.testindex import TestIndex, is_test_file, module_names
from engine.workspace import (SpliceError, build_task, discover_tests, find_function, find_stub_function,
                              function_sites, splice)
from tests.engine.waiting import wait_for

MODULE = textwrap.dedent('''\
    import math
    from abc import ABC, abstractmethod
    from typing import overload


    def passes(x):
        pass


    def ellipsis(x): ...


    def raises(x):
        """Not yet."""
        raise NotImplementedError("later")


    def bare_raise(x):
        raise NotImplementedError


    def documented(x):
        """Only a docstring."""


    def real(x):
        return x + 1


    @functools.lru_cache(maxsize=None)
    @staticmethod
    def decorated(x):
        ...


    async def fetch(url):
        pass


    class Stack:
        """A stack."""

        def push(self, item):
            """Push an item."""

        def size(self):
            return 0

        class Inner:
            def deep(self):
                pass


    def outer(x):
        def inner(y):
            pass
        return inner(x)


    class Shape(ABC):
        @abstractmethod
        def area(self):
            raise NotImplementedError


    @overload
    def conv(x: int) -> int: ...
''')


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines()) if needle in line)


@pytest.mark.parametrize("name, kind", [
    ("passes", "pass"), ("ellipsis", "ellipsis"), ("raises", "raise"), ("bare_raise", "raise"),
    ("documented", "docstring"), ("decorated", "ellipsis"), ("fetch", "pass"), ("Stack.push", "docstring"),
    ("Stack.Inner.deep", "pass"), ("outer.inner", "pass"),
])
def test_stub_kinds(name, kind):
    site = find_function(MODULE, name)
    assert site is not None and site.stub_kind == kind
    assert find_stub_function(MODULE, site.def_line) == site


@pytest.mark.parametrize("name", ["real", "Stack.size", "outer", "Shape.area", "conv"])
def test_real_bodies_and_intentional_stubs_are_not_stubs(name):
    site = find_function(MODULE, name)
    assert site is not None and not site.is_stub
    assert find_stub_function(MODULE, site.def_line) is None


def test_cursor_anywhere_in_the_function_including_decorators():
    site = find_function(MODULE, "decorated")
    assert site.start_line == line_of(MODULE, "@functools.lru_cache")
    for line in range(site.start_line, site.end_line + 1):
        assert find_stub_function(MODULE, line).qualname == "decorated"
    assert find_stub_function(MODULE, site.start_line - 1) is None
    assert find_stub_function(MODULE, line_of(MODULE, "import math")) is None


def test_nested_stub_inside_a_real_function_is_found_only_on_its_lines():
    assert find_stub_function(MODULE, line_of(MODULE, "def inner")).qualname == "outer.inner"
    assert find_stub_function(MODULE, line_of(MODULE, "return inner(x)")) is None


def test_site_facts():
    site = find_function(MODULE, "Stack.push")
    assert site.in_class == "Stack" and site.name == "push"
    assert site.indent == "    " and site.body_indent == "        "
    assert site.signature_text == "    def push(self, item):"
    assert site.docstring == "Push an item."
    assert find_function(MODULE, "fetch").is_async
    assert find_function(MODULE, "Stack.Inner.deep").in_class == "Stack.Inner"
    assert find_function(MODULE, "outer.inner").in_class is None


def test_unparsable_source_yields_nothing():
    broken = "def f(x):\n    pass\n\ndef g(:\n"
    assert function_sites(broken) is None
    assert find_stub_function(broken, 0) is None
    assert find_function(broken, "f") is None


# --- splice ---

def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_splice_keeps_signature_and_docstring_and_replaces_the_body():
    site = find_function(MODULE, "raises")
    candidate = 'import math\nimport os\n\ndef raises(x):\n    """Model docstring."""\n    return os.sep * x\n' \
                'print(raises(2))\n'
    out = splice(MODULE, site, candidate)
    new = find_function(out, "raises")
    assert '"""Not yet."""' in new.text and "Model docstring" not in new.text
    assert "import os" in new.text and "import math" not in new.text  # already imported by the module
    assert "print(" not in out and "NotImplementedError(\"later\")" not in out
    assert out.replace(new.text, "") == MODULE.replace(site.text, "")  # nothing else moved


def test_splice_a_method_with_its_indentation_and_run_it():
    site = find_function(MODULE, "Stack.push")
    out = splice(MODULE, site, "def push(self, item):\n    self.items = getattr(self, 'items', []) + [item]\n"
                               "    return len(self.items)\n")
    done = run_python(out.replace("@functools.lru_cache(maxsize=None)", "") +
                      "\ns = Stack()\ns.push(1)\nprint(s.push(2))\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2"


def test_splice_with_changed_parameters_applies_the_candidates_signature():
    site = find_function(MODULE, "passes")
    out = splice(MODULE, site, "def passes(value, extra=0):\n    return value + extra\n")
    assert "def passes(value, extra=0):" in out and "def passes(x):" not in out


def test_splice_body_only_candidate_and_one_liner_def():
    source = "def f(x): pass\n\ny = 1\n"
    out = splice(source, find_function(source, "f"), "    return x * 3")
    assert out == "def f(x):\n    return x * 3\n\ny = 1\n"


def test_splice_at_end_of_file_without_newline():
    source = "def f(x):\n    ..."
    out = splice(source, find_function(source, "f"), "def f(x):\n    return -x\n")
    assert out == "def f(x):\n    return -x"


def test_splice_rejects_what_cannot_replace_the_function():
    site = find_function(MODULE, "passes")
    with pytest.raises(SpliceError, match="not valid Python"):
        splice(MODULE, site, "def passes(x):\n    return (")
    with pytest.raises(SpliceError, match="defines other"):
        splice(MODULE, site, "def other(x):\n    return x\n")


# --- discovery ---

@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "mathx.py").write_text(textwrap.dedent('''\
        def add(a, b):
            pass


        def mul(a, b):
            """Multiply.

            >>> mul(2, 3)
            6
            >>> mul(-1, 4)
            -4
            """


        def lonely(a):
            ...


        class Counter:
            def bump(self):
                raise NotImplementedError
        '''))
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_from_import.py").write_text(textwrap.dedent('''\
        from pkg.mathx import add


        def test_add():
            assert add(1, 2) == 3


        def test_unrelated():
            assert True


        class TestMore:
            def test_add_negative(self):
                assert add(-1, -1) == -2
        '''))
    (tmp_path / "tests" / "checks.py").write_text(textwrap.dedent('''\
        import pkg.mathx as mx


        def test_via_alias():
            assert mx.add(2, 2) == 4
        '''))
    (tmp_path / "counter_test.py").write_text(textwrap.dedent('''\
        from pkg import mathx


        def test_bump():
            c = mathx.Counter()
            c.bump()


        def test_no_bump():
            mathx.Counter()
        '''))
    return tmp_path


def test_test_files_and_module_names(project: Path):
    assert is_test_file(project / "tests" / "checks.py", project)
    assert is_test_file(project / "counter_test.py", project)
    assert not is_test_file(project / "pkg" / "mathx.py", project)
    assert not is_test_file(project / "tests" / "conftest.py", project)
    assert not is_test_file(project / ".venv" / "test_x.py", project)
    assert module_names(project / "pkg" / "mathx.py", project) == {"pkg.mathx", "mathx"}


def test_discovery_through_from_import_alias_and_tests_folder(project: Path):
    suite = discover_tests(project, project / "pkg" / "mathx.py", "add")
    assert suite.kind == "pytest"
    assert suite.pytest.target_file == Path("pkg/mathx.py") and suite.pytest.function == "add"
    assert set(suite.pytest.node_ids) == {"tests/test_from_import.py::test_add",
                                          "tests/test_from_import.py::TestMore::test_add_negative",
                                          "tests/checks.py::test_via_alias"}


def test_discovery_of_a_method_through_its_class(project: Path):
    suite = discover_tests(project, project / "pkg" / "mathx.py", "Counter.bump")
    assert suite.pytest.node_ids == ("counter_test.py::test_bump",)


def test_discovery_through_a_bare_call(project: Path):
    (project / "tests" / "test_calls.py").write_text("import sys\n\ndef test_lonely():\n    assert lonely(1)\n")
    suite = discover_tests(project, project / "pkg" / "mathx.py", "lonely")
    assert suite.pytest.node_ids == ("tests/test_calls.py::test_lonely",)


def test_a_name_bound_to_another_module_is_not_a_reference(project: Path):
    (project / "tests" / "test_other.py").write_text("from operator import add\n\ndef test_op():\n"
                                                     "    assert add(1, 1) == 2\n")
    suite = discover_tests(project, project / "pkg" / "mathx.py", "add")
    assert not any("test_other" in node for node in suite.pytest.node_ids)


def test_doctests_become_an_assert_suite_that_judges_candidates(project: Path):
    file = project / "pkg" / "mathx.py"
    suite = discover_tests(project, file, "mul")
    assert suite.kind == "assert"
    good = run_python("def mul(a, b):\n    return a * b\n" + suite.assert_code)
    bad = run_python("def mul(a, b):\n    return a + b\n" + suite.assert_code)
    assert good.returncode == 0, good.stderr
    assert bad.returncode != 0 and "doctest examples failed" in bad.stderr


def test_no_tests_and_no_doctests_means_unverified(project: Path):
    (project / "pkg" / "solo.py").write_text("def alone(x):\n    pass\n")
    assert discover_tests(project, project / "pkg" / "solo.py", "alone") is None


def test_build_task(project: Path):
    file = project / "pkg" / "mathx.py"
    task = build_task(project, file, "mul")
    assert task.kind == "function" and task.entry_point == "mul" and task.source == "editor"
    assert task.prompt.startswith("def mul(a, b):\n    \"\"\"Multiply.")
    assert task.tests is not None and task.tests.kind == "assert"
    assert any("def add(a, b)" in snippet for snippet in task.context)
    method = build_task(project, file, "Counter.bump")
    assert method.prompt.startswith("def bump(self):") and method.tests.kind == "pytest"


# --- the watched index ---

def test_watched_index_follows_create_change_delete_debounced(project: Path):
    index = TestIndex(project, debounce_s=0.3)
    assert index.start_watching()
    try:
        target = project / "pkg" / "mathx.py"
        assert index.tests_for(target, "lonely") == []
        new = project / "tests" / "test_new.py"
        new.write_text("from pkg.mathx import lonely\n\ndef test_one():\n    lonely(1)\n")
        assert wait_for(lambda: index.tests_for(target, "lonely") == ["tests/test_new.py::test_one"])

        before = index.refresh_count
        for i in range(5):  # a burst of saves: one refresh
            new.write_text("from pkg.mathx import lonely\n\ndef test_two():\n    lonely(%d)\n" % i)
            time.sleep(0.02)
        assert wait_for(lambda: index.tests_for(target, "lonely") == ["tests/test_new.py::test_two"])
        time.sleep(0.5)
        assert index.refresh_count == before + 1

        new.unlink()
        assert wait_for(lambda: index.tests_for(target, "lonely") == [])
    finally:
        index.stop()


def test_functions_under_blocks_keep_their_scope():
    source = textwrap.dedent('''\
        try:
            def fast():
                pass
        except ImportError:
            def fast():
                ...
        if True:
            class K:
                for _ in range(1):
                    def m(self):
                        pass
        ''')
    sites = function_sites(source)
    assert [(s.qualname, s.in_class) for s in sites] == [("fast", None), ("fast", None), ("K.m", "K")]
    assert find_stub_function(source, line_of(source, "def m")).qualname == "K.m"
