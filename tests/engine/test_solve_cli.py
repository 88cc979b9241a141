"""`atlas-ls solve` and `atlas-ls cache`: bad input is refused with exit 2 and a message naming what was wrong; the
real default model solves a bundled example end to end in a child process, `--apply` writes only a passing
solution, and a second request is answered from the pattern cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from atlas_ls.cli import main
from engine.commands.solve import _named_tests, find_workspace
from tests.conftest import REPO_ROOT

EXAMPLES = REPO_ROOT / "examples"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    copy = tmp_path / "ws"
    shutil.copytree(EXAMPLES, copy, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    return copy


@pytest.mark.parametrize("argv, words", [
    (["solve", "examples/textkit.py"], "FILE.py::FUNCTION"),
    (["solve", "examples/nope.py::f"], "no such file"),
    (["solve", "examples/README.md::f"], "not a Python file"),
    (["solve", "examples/textkit.py::not_there"], "no function not_there"),
    (["solve", "examples/textkit.py::slugify", "--k", "0"], "--k must be at least 1"),
    (["solve", "examples/textkit.py::slugify", "--tests", "tests/test_missing.py"], "no such file or folder"),
    (["solve", "examples/textkit.py::2bad"], "not a function name"),
])
def test_bad_input_exits_2_with_a_message(argv, words, capsys, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    assert main(argv) == 2
    assert words in capsys.readouterr().err


def test_a_file_that_does_not_parse_is_bad_input(workspace: Path, capsys):
    broken = workspace / "broken.py"
    broken.write_text("def f(:\n    pass\n")
    assert main(["solve", f"{broken}::f"]) == 2
    assert "does not parse" in capsys.readouterr().err


def test_workspace_is_the_nearest_project_root(workspace: Path):
    assert find_workspace(workspace / "textkit.py") == workspace  # conftest.py marks it
    assert find_workspace(workspace / "tests" / "test_textkit.py") == workspace


def test_named_tests_become_node_ids_relative_to_the_workspace(workspace: Path, monkeypatch):
    monkeypatch.chdir(workspace.parent)
    suite = _named_tests(workspace, workspace / "textkit.py", "slugify",
                         ["ws/tests/test_textkit.py::test_slugify_joins_lower_case_words", "tests/test_textkit.py"])
    assert suite.kind == "pytest" and suite.pytest.function == "slugify"
    assert suite.pytest.node_ids == ("tests/test_textkit.py::test_slugify_joins_lower_case_words",
                                     "tests/test_textkit.py")
    assert suite.pytest.target_file == Path("textkit.py")


def test_cache_command_stats_export_clear(capsys):
    assert main(["cache", "stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert {"entries", "short_term", "long_term", "router", "database"} <= set(stats)
    assert main(["cache", "export", "--json"]) == 0
    assert isinstance(json.loads(capsys.readouterr().out), list)
    assert main(["cache", "clear"]) == 0
    assert "removed" in capsys.readouterr().out


def test_cache_command_text_shows_an_entry_then_an_empty_cache(tmp_path: Path, monkeypatch, capsys):
    from engine.cache import PatternCache
    from engine.config import Settings
    from engine.task import Task
    from lens.db import open_database

    monkeypatch.setenv("ATLAS_DATA_DIR", str(tmp_path / "data"))
    from engine import paths

    conn = open_database(paths.database_path())
    task = Task(prompt='def total(values):\n    """Return the sum of all the numbers in values."""\n',
                entry_point="total")
    PatternCache(conn, Settings()).insert(task, "def total(values):\n    return sum(values)\n")
    conn.close()

    assert main(["cache", "stats"]) == 0
    stats = capsys.readouterr().out
    assert f"pattern cache in {paths.database_path()}" in stats
    assert "entries 1 (1 short-term, 0 long-term)" in stats and "retention mean 1.000" in stats
    assert "router: mean P(success) per difficulty bin and tier" in stats and "bin 0: " in stats
    assert main(["cache", "export"]) == 0
    assert capsys.readouterr().out.startswith("total  [")
    assert main(["cache", "clear"]) == 0
    assert capsys.readouterr().out.strip() == "removed 1 pattern-cache entries"
    assert main(["cache", "export"]) == 0
    assert capsys.readouterr().out.strip() == "the pattern cache is empty"


# --- end to end, with the real default model in a child process ---

def _solve(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "ATLAS_TIER_MAX_TOKENS": "[160, 160, 160]", "ATLAS_N_THREADS": "2"}
    return subprocess.run([sys.executable, "-m", "atlas_ls", "solve", *args, "--quiet"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_solve_applies_a_passing_solution_then_answers_from_the_cache(workspace: Path, default_model_path):
    target = "textkit.py::is_palindrome"
    first = _solve(target, "--k", "1", "--json", "--apply", cwd=workspace)
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    assert result["verified"] is True and result["k"] == 1 and result["tier"] == "FAST"
    assert {"code", "seconds", "candidates"} <= set(result)
    assert set(result["candidates"][0]) >= {"energy", "passed"} and result["candidates"][0]["passed"] is True
    assert result["applied"].startswith("applied")
    source = (workspace / "textkit.py").read_text()
    assert "raise NotImplementedError" not in source.split("def is_palindrome")[1].split("def ")[0]
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "tests/test_textkit.py::test_is_palindrome",
                            "-p", "no:cacheprovider"], cwd=workspace, capture_output=True, text=True)
    assert tests.returncode == 0, tests.stdout  # the applied code passes the workspace's own tests

    second = _solve(target, "--json", cwd=workspace)
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)
    assert (again["tier"], again["k"], again["verified"]) == ("CACHE_HIT", 0, True)


def test_apply_never_writes_a_failing_solution(tmp_path: Path, default_model_path):
    (tmp_path / "conftest.py").write_text("")
    (tmp_path / "calc.py").write_text('def double(x: int) -> int:\n    """Return twice x."""\n    ...\n')
    (tmp_path / "test_calc.py").write_text("from calc import double\n\n\ndef test_impossible():\n"
                                           "    assert double(2) == 5\n")
    before = (tmp_path / "calc.py").read_text()
    run = _solve("calc.py::double", "--k", "1", "--apply", cwd=tmp_path)
    assert run.returncode == 1, run.stderr
    assert "not applied" in run.stdout and "fail" in run.stdout
    assert (tmp_path / "calc.py").read_text() == before
