"""The sandbox: runs untrusted candidate code against tests, isolated and bounded, and decides pass or fail.

Stdlib only on the parent side. It owns the test kinds (stdin/stdout, functional, assert-style, pytest), process
isolation (rlimits, process groups, namespaces, bubblewrap when present), verdicts, and running many candidates in
ranked order with early exit. Nothing a candidate does may change a verdict falsely or touch the user's files.

    run(code, suite, *, limits=Limits(), isolation=None) -> Verdict
    run_ranked(codes, suite, *, stop_at_first_pass=True, workers=None, cancel=None, on_result=None,
               limits=Limits(), isolation=None) -> list[Verdict | None]
    isolation_level() -> "bwrap" | "namespaces" | "rlimits"     (the strongest available here)
    describe() -> dict                                          (every level, and what it stops here)
"""

from sandbox.grading import TestFormatError
from sandbox.isolation import describe, isolation_level, protections
from sandbox.runner import run, run_ranked
from sandbox.server import IsolationUnavailable
from sandbox.types import (ISOLATION_LEVELS, STATUSES, TEST_KINDS, Limits, PytestTarget, TestCase, TestResult,
                           TestSuite, Verdict)

__all__ = ["run", "run_ranked", "isolation_level", "describe", "protections", "IsolationUnavailable",
           "TestFormatError", "Limits", "PytestTarget", "TestCase", "TestResult", "TestSuite", "Verdict",
           "ISOLATION_LEVELS", "STATUSES", "TEST_KINDS"]
