"""A task and its result: the contract between the solve pipeline and its two front doors (editor, benchmark)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from sandbox.types import TestSuite, Verdict

TASK_KINDS = ("function", "program", "choice")
TIERS = ("CACHE_HIT", "FAST", "STANDARD", "HARD")


@dataclass(frozen=True)
class Task:
    """One thing to solve.

    kind "function": complete a Python function; `prompt` is its signature and docstring, `entry_point` its name.
    kind "program":  a program reading stdin (competitive programming), or a LeetCode-style `class Solution`.
    kind "choice":   a multiple-choice question (GPQA); answers are option letters, no sandbox.
    `tests` are only those a user would have (workspace tests, public examples, docstring examples): a benchmark's
    hidden tests never go here. `context` holds snippets (imports, neighbouring code, strategy hints).
    """

    prompt: str
    kind: str = "function"
    entry_point: str | None = None
    tests: TestSuite | None = None
    context: tuple[str, ...] = ()
    starter_code: str = ""
    source: str = "editor"  # editor | bench
    key: str = ""  # stable identity; derived from the prompt when empty

    def __post_init__(self) -> None:
        if self.kind not in TASK_KINDS:
            raise ValueError(f"unknown task kind {self.kind!r}; expected one of {', '.join(TASK_KINDS)}")
        if not self.key:
            object.__setattr__(self, "key", task_key(self.prompt, self.entry_point))


def normalise(text: str) -> str:
    """Whitespace-insensitive form of a task's text, so that re-indenting a stub does not make it a new task."""
    return re.sub(r"\s+", " ", text).strip()


def task_key(prompt: str, entry_point: str | None) -> str:
    digest = hashlib.sha256(f"{entry_point or ''}\0{normalise(prompt)}".encode()).hexdigest()
    return digest[:32]


@dataclass
class CandidateReport:
    """One candidate as the pipeline saw it."""

    code: str
    energy: float | None  # None when ranked without a Lens
    confidence: float | None  # calibrated P(pass), None without a Lens
    mean_logprob: float
    rank: int  # 1 = tried first
    verdict: Verdict | None = None  # None when the sandbox never ran it (early exit, no tests)
    greedy: bool = False
    tokens: int = 0
    # Mean log-probability of the reply's lines that extraction kept (no fence, no dropped demonstrations); None
    # when no token lies in them. Measured beside mean_logprob as a ranking signal; it ranks nothing yet.
    body_logprob: float | None = None
    # The model's own reading of this candidate (mean final hidden state, n_embd floats); the bench stores it with
    # the hidden-test label so the Lens can be measured on real labels. Never shown to a client.
    embedding: Any = field(default=None, repr=False, compare=False)
    last_hidden: Any = field(default=None, repr=False, compare=False)  # the state at its last content token

    @property
    def passed(self) -> bool | None:
        return None if self.verdict is None else self.verdict.passed


@dataclass
class SolveResult:
    verified: bool  # the chosen code passed every available test; never True without tests
    code: str | None  # the chosen candidate (the first that passed, or the Lens's best when nothing could verify)
    tier: str
    k: int
    difficulty: float
    candidates: list[CandidateReport] = field(default_factory=list)
    ranking: str = "lens"  # lens | logprob (cold start) | none
    seconds: float = 0.0
    tokens: int = 0
    note: str = ""  # e.g. "no tests: ranked by the Lens alone, not verified"
    timings: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    cancelled: bool = False  # the caller cancelled; `code` is whatever was chosen by then (None before any candidate)
