"""What the sandbox is asked to run and what it answers: the contract between the sandbox and its callers.

These are plain data (no behaviour), so the engine, the benchmark and the tests can build them without starting
anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

TEST_KINDS = ("stdin", "functional", "assert", "pytest")
# "skipped": not counted either way (a pytest test skipped by its marker, or a test not run after a failure when
# Limits.fail_fast is set); a verdict passes when every test is "pass" or "skipped" and at least one is "pass".
STATUSES = ("pass", "fail", "timeout", "crash", "memory", "output-limit", "skipped")
ISOLATION_LEVELS = ("bwrap", "namespaces", "rlimits")  # strongest first


@dataclass(frozen=True)
class TestCase:
    """One stdin/stdout or functional test, as in LiveCodeBench's `public_test_cases`.

    stdin: `input` is fed to the program, `output` is the expected stdout.
    functional: `input` holds one JSON value per line (one per argument), `output` the JSON expected result.
    """

    __test__ = False  # not a pytest test class

    input: str
    output: str
    name: str = ""


@dataclass(frozen=True)
class PytestTarget:
    """The workspace's own pytest tests for one function.

    The sandbox copies `workspace` into a temporary directory, replaces the function `function` (a dotted name for a
    method, e.g. "Stack.push") in `target_file` (relative to the workspace) by the candidate, and runs `node_ids`.
    """

    workspace: Path
    target_file: Path
    function: str
    node_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class TestSuite:
    """The tests a candidate must pass, of one kind.

    kind "stdin":      `cases`
    kind "functional": `cases`, `entry` (a plain function, or a method of `class Solution`)
    kind "assert":     `assert_code` run after the candidate (HumanEval `check(candidate)` with `entry`, MBPP asserts)
    kind "pytest":     `pytest`
    """

    __test__ = False  # not a pytest test class

    kind: str
    cases: tuple[TestCase, ...] = ()
    entry: str | None = None
    assert_code: str = ""
    pytest: PytestTarget | None = None

    def __post_init__(self) -> None:
        if self.kind not in TEST_KINDS:
            raise ValueError(f"unknown test kind {self.kind!r}; expected one of {', '.join(TEST_KINDS)}")

    @property
    def size(self) -> int:
        if self.kind in ("stdin", "functional"):
            return len(self.cases)
        if self.kind == "pytest" and self.pytest is not None:
            return max(1, len(self.pytest.node_ids))
        return 1


@dataclass(frozen=True)
class Limits:
    """Bounds on one test run. Wall-clock timeout kills the whole process group."""

    timeout_s: float = 6.0
    cpu_s: int = 10
    memory_mb: int = 1024
    output_bytes: int = 1 << 20
    file_bytes: int = 16 << 20
    open_files: int = 256
    processes: int = 64
    fail_fast: bool = False  # stop a candidate's tests at its first failure (the rest are "skipped")

    @classmethod
    def for_timeout(cls, timeout_s: float, **others) -> "Limits":
        """Limits with this wall clock; CPU time may use all of it plus a second (never less than the default), so
        the wall clock, not the CPU limit, is what a slow test meets. One rule for the solve path and the CLI."""
        return cls(timeout_s=timeout_s, cpu_s=max(cls.cpu_s, math.ceil(timeout_s) + 1), **others)


@dataclass
class TestResult:
    __test__ = False  # not a pytest test class

    name: str
    status: str  # one of STATUSES
    seconds: float
    expected: str = ""  # truncated
    got: str = ""  # truncated
    stderr_tail: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "pass"


@dataclass
class Verdict:
    passed: bool
    tests: list[TestResult] = field(default_factory=list)
    isolation: str = "rlimits"
    seconds: float = 0.0
    error: str = ""  # why nothing could run (e.g. the candidate does not parse), if that happened

    @property
    def passed_count(self) -> int:
        return sum(1 for t in self.tests if t.passed)

    @property
    def total(self) -> int:
        return len(self.tests)
