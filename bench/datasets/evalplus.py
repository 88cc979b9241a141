"""EvalPlus JSONL (HumanEval+ / MBPP+: `task_id`, `prompt`, `entry_point`, `canonical_solution`, `base_input`,
`plus_input`, `atol`). The expected outputs are not in the file: they come from running the canonical solution on
every base and plus input (once, cached per file). The prompt's own examples (docstring or `assert` lines), where
the canonical solution satisfies them, are the public tests; base + plus inputs grade.
"""

from __future__ import annotations

import base64
import json
import pickle
from pathlib import Path

from bench.datasets.base import HIDDEN, BenchItem, Dataset, DatasetError, Grading, jsonl_records
from bench.datasets.examples import check_code as examples_check_code
from bench.datasets.examples import assert_line_examples, extract_examples
from bench.datasets.humaneval import cached_sandbox_checker
from bench.datasets.reference import ReferenceCache
from bench.grading import assert_suite
from engine.task import Task
from engine.verification import Limits, ReferenceFailed, reference_values

REQUIRED = ("task_id", "prompt", "entry_point", "canonical_solution")
OUTPUTS_VERSION = 1
LIMITS = Limits(timeout_s=120.0, cpu_s=240, memory_mb=4096)

OUTPUTS_PROGRAM = '''
import copy, json
__values__ = []
for _args in json.loads({inputs!r}):
    try:
        __values__.append(("ok", {entry}(*copy.deepcopy(_args))))
    except BaseException as _exc:  # an input the reference rejects is not a test
        __values__.append(("error", type(_exc).__name__))
'''

# EvalPlus compares floats with a tolerance (atol from the record) and everything else exactly.
CHECK_TEMPLATE = '''
import base64 as _bench_b64, copy as _bench_copy, math as _bench_math, pickle as _bench_pickle
_BENCH_CASES = _bench_pickle.loads(_bench_b64.b64decode({cases!r}))
_BENCH_ATOL = {atol!r}

def _bench_same(got, want):
    if isinstance(want, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        if _bench_math.isnan(want):
            return _bench_math.isnan(got)
        return _bench_math.isclose(got, want, rel_tol=1e-7, abs_tol=_BENCH_ATOL)
    if isinstance(want, (list, tuple)) and isinstance(got, (list, tuple)) and type(got) == type(want):
        return len(got) == len(want) and all(_bench_same(g, w) for g, w in zip(got, want))
    return got == want

def check(candidate):
    for _index, (_args, _want) in enumerate(_BENCH_CASES):
        _got = candidate(*_bench_copy.deepcopy(_args))
        assert _bench_same(_got, _want), f"input {{_index}}: got {{_got!r:.200}}, expected {{_want!r:.200}}"
'''


def check_code(cases: list[tuple[list, object]], atol: float) -> str:
    packed = base64.b64encode(pickle.dumps(cases, protocol=4)).decode()
    return CHECK_TEMPLATE.format(cases=packed, atol=float(atol or 0.0))


def load(path: str | Path, *, check=None) -> Dataset:
    """All tasks; `check(program, entry_point, examples)` (default: the cached sandbox check) says which prompt
    examples the canonical solution satisfies."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"EvalPlus file not found: {path} (pass evalplus:PATH to a HumanEval+/MBPP+ JSONL)")
    dataset = Dataset(name=f"evalplus:{path}", items=[])
    cache = ReferenceCache("evalplus-outputs", path, OUTPUTS_VERSION)
    checker = check or cached_sandbox_checker(path)
    rejected_inputs = 0
    for line_no, record in jsonl_records(path, dataset.skipped):
        try:
            item, rejected = _item(record, cache, checker)
        except (ValueError, ReferenceFailed) as exc:
            dataset.skipped.append(f"{path} line {line_no}: {exc}")
            continue
        rejected_inputs += rejected
        dataset.items.append(item)
    with_public = sum(1 for i in dataset.items if i.task.tests is not None)
    dataset.notes.append("expected outputs computed by running each canonical solution (the file carries none); "
                         f"public tests (prompt examples) for {with_public} of {len(dataset.items)} tasks")
    if rejected_inputs:
        dataset.notes.append(f"{rejected_inputs} inputs on which the canonical solution raised were not used")
    dataset.stats.update(tasks=len(dataset.items), tasks_with_public_tests=with_public,
                         inputs_rejected_by_reference=rejected_inputs, skipped=len(dataset.skipped))
    return dataset


def _item(record: dict, cache: ReferenceCache, checker) -> tuple[BenchItem, int]:
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    missing = [k for k in REQUIRED if not isinstance(record.get(k), str)]
    if missing:
        raise ValueError(f"missing or non-string {', '.join(missing)}")
    inputs = [*(record.get("base_input") or []), *(record.get("plus_input") or [])]
    if not isinstance(inputs, list) or not inputs or not all(isinstance(a, list) for a in inputs):
        raise ValueError("base_input/plus_input must be non-empty lists of argument lists")
    entry, prompt = record["entry_point"], record["prompt"]
    reference = prompt + record["canonical_solution"]
    program = reference + OUTPUTS_PROGRAM.format(inputs=json.dumps(inputs), entry=entry)
    outputs = cache.get(program, lambda: reference_values(program, limits=LIMITS))
    cases = [(args, value) for args, (status, value) in zip(inputs, outputs) if status == "ok"]
    if not cases:
        raise ValueError("the canonical solution raised on every input")
    examples = extract_examples(prompt, entry) or assert_line_examples(prompt, entry)
    agrees = checker(reference, entry, examples) if examples else []
    kept = [e for e, ok in zip(examples, agrees) if ok]
    task = Task(prompt=prompt, kind="function", entry_point=entry, source="bench",
                tests=assert_suite(examples_check_code(kept), entry) if kept else None)
    grading = Grading(HIDDEN, suite=assert_suite(check_code(cases, record.get("atol") or 0.0), entry),
                      harness=prompt, limits=LIMITS)
    meta = {"inputs": len(cases), "public_examples": len(kept)}
    return BenchItem(str(record["task_id"]), task, grading, meta), len(inputs) - len(cases)
