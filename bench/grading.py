"""Grading on the bench's private record: the code a candidate becomes when it is graded, and the verdicts.

A candidate for a function task may be a whole function (what the pipeline returns) or only a body; either way it is
graded after the task's harness (HumanEval's imports and helper functions, SciCode's earlier steps), exactly as the
dataset's own evaluator would place it. Grading happens after the pipeline has committed to its answer, and nothing
from it flows back into the task being solved.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from engine import verification
from engine.verification import Limits, TestSuite, Verdict


def assert_suite(check_code: str, entry_point: str) -> TestSuite:
    """An assert-kind suite from HumanEval-style test code defining `check(candidate)`."""
    return TestSuite(kind="assert", assert_code=check_code, entry=entry_point)


def defines(code: str, name: str) -> bool:
    """Whether `code` defines `name` at top level (a whole function rather than a body)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return f"def {name}(" in code
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name == name
               for n in tree.body)


def function_program(harness: str, code: str, entry_point: str) -> str:
    """The program graded for a function task: the harness, then the candidate (which redefines the entry point),
    or, for a bare body, the harness's own stub completed by it."""
    if not code.strip():
        return harness
    if defines(code, entry_point) or not harness.strip():
        return f"{harness.rstrip()}\n\n\n{code.strip()}\n"
    return f"{harness.rstrip()}\n{code.rstrip()}\n"


@dataclass
class Grade:
    passed: bool
    detail: str = ""  # why it failed, briefly (first failing test's status, or the error)


def _summary(verdict: Verdict) -> str:
    if verdict.passed:
        return ""
    if verdict.error:
        return verdict.error[:300]
    failed = next((t for t in verdict.tests if not t.passed), None)
    if failed is None:
        return "failed"
    return f"{failed.name or 'test'}: {failed.status} {failed.stderr_tail[-200:]}".strip()


def program_for(item, code: str) -> str:
    if item.task.kind == "function":
        return function_program(item.grading.harness, code, item.task.entry_point or "")
    return code


def _infrastructure_failure(verdict: Verdict) -> bool:
    """The sandbox itself failed (its server died), which says nothing about the candidate."""
    texts = [verdict.error, *(t.stderr_tail for t in verdict.tests)]
    return any("sandbox server" in (text or "") for text in texts)


def sandbox_verdict(program: str, suite: TestSuite, limits: Limits | None) -> Verdict:
    verdict = verification.run(program, suite, limits=limits)
    if _infrastructure_failure(verdict):  # once more: a grade must be about the candidate
        verdict = verification.run(program, suite, limits=limits)
    return verdict


def grade_code(item, codes: list[str], *, limits: Limits | None = None) -> list[Grade]:
    """Every code string graded on the item's hidden suite (all of them run: pass@k needs every verdict).

    One at a time: grading is not what a benchmark measures, and concurrent sandbox runs of numpy-heavy programs
    have been seen to lose the sandbox's server; a run lost that way is retried once."""
    suite = item.grading.suite
    limits = limits or item.grading.limits
    by_program: dict[str, Verdict] = {}
    grades = []
    for code in codes:
        program = program_for(item, code)
        if program not in by_program:  # identical candidates are graded once
            by_program[program] = sandbox_verdict(program, suite, limits)
        verdict = by_program[program]
        grades.append(Grade(verdict.passed, _summary(verdict)))
    return grades


def grade_choice(item, letters: list[str | None]) -> list[Grade]:
    answer = item.grading.answer
    return [Grade(letter == answer, "" if letter == answer else f"answered {letter or 'nothing'}")
            for letter in letters]
