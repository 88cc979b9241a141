"""What every dataset loader returns: bench items (the pipeline's Task plus the bench's own grading record) and a
load report (skipped records with their line numbers, notes that must travel into every output)."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from engine.task import Task
from engine.verification import Limits, TestSuite

# What a score was graded on; every output carries it.
HIDDEN = "hidden tests"
PUBLIC_ONLY = "public tests only"


@dataclass(frozen=True)
class Grading:
    """The bench's private grading record for one task. It never goes into the Task the pipeline sees.

    Code tasks: `suite` (hidden tests) and `harness` (code placed before the candidate when grading, e.g. HumanEval's
    imports and helper functions). Choice tasks: `answer` (the correct option letter).
    """

    graded_on: str
    suite: TestSuite | None = None
    harness: str = ""
    answer: str | None = None
    limits: Limits | None = None  # per-test bounds when the defaults are too tight (SciCode simulations)


@dataclass(frozen=True)
class BenchItem:
    id: str  # the dataset's own name for the task (HumanEval/0, v5w-005, 10.1, gpqa record id)
    task: Task
    grading: Grading
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Dataset:
    name: str
    items: list[BenchItem]
    skipped: list[str] = field(default_factory=list)  # "PATH line N: why", one per malformed record
    notes: list[str] = field(default_factory=list)  # said in every output (e.g. "public tests only")
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def graded_on(self) -> str:
        kinds = sorted({item.grading.graded_on for item in self.items})
        if not kinds:
            return "nothing"
        if len(kinds) == 1:
            return kinds[0]
        counts = {k: sum(1 for i in self.items if i.grading.graded_on == k) for k in kinds}
        return "mixed: " + ", ".join(f"{n} on {k}" for k, n in counts.items())


class DatasetError(Exception):
    """The dataset as a whole cannot be read (missing file, unknown name); its message says what to do."""


def jsonl_records(path: Path, skipped: list[str]) -> Iterator[tuple[int, Any]]:
    """(line number, decoded value) for each non-blank line of a JSONL file (gzipped when it ends in .gz); a line
    that is not JSON is reported in `skipped` with its number and passed over."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield line_no, json.loads(line)
            except json.JSONDecodeError as exc:
                skipped.append(f"{path} line {line_no}: not JSON ({exc})")
