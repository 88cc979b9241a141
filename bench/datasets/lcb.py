"""LiveCodeBench `code_generation_lite` JSONL: stdin programs (AtCoder, Codeforces) and LeetCode-style functional
problems. Public tests steer selection; private tests (base64 of zlib of pickle of JSON in the published files) grade.
A record whose private tests are present but cannot be decoded is malformed and skipped, never graded on its public
tests instead (the seed system did that and inflated its scores). A record with no private tests at all is graded on
its public tests and labelled "public tests only".
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import zlib
from datetime import date
from pathlib import Path
from typing import Any

from bench.datasets.base import HIDDEN, PUBLIC_ONLY, BenchItem, Dataset, DatasetError, Grading, jsonl_records
from engine.task import Task
from engine.verification import TestCase, TestSuite

REQUIRED = ("question_content", "public_test_cases")


class MalformedRecord(ValueError):
    pass


class _NoGlobals(pickle.Unpickler):
    """Unpickles plain data only: the private tests are a pickled JSON string, and a pickle from a file a user
    downloaded must not be able to run code."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only plain data is accepted")


def decode_tests(raw: Any, field: str) -> list[dict]:
    """A test list from its stored form: a list, a JSON string, or base64(zlib(pickle(JSON string)))."""
    if isinstance(raw, list):
        tests = raw
    elif isinstance(raw, str):
        tests = _decode_text(raw.strip(), field)
    else:
        raise MalformedRecord(f"{field} is a {type(raw).__name__}, expected a list or a string")
    if not isinstance(tests, list) or not all(isinstance(t, dict) for t in tests):
        raise MalformedRecord(f"{field} does not decode to a list of test objects")
    for i, test in enumerate(tests):
        for key in ("input", "output"):
            if not isinstance(test.get(key), str):
                raise MalformedRecord(f"{field}[{i}].{key} is missing or not a string")
    return tests


def _decode_text(text: str, field: str) -> Any:
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise MalformedRecord(f"{field} is not valid JSON ({exc})") from None
    try:
        packed = zlib.decompress(base64.b64decode(text, validate=True))
        value = _NoGlobals(io.BytesIO(packed)).load()
        return json.loads(value) if isinstance(value, (str, bytes)) else value
    except (ValueError, zlib.error, pickle.UnpicklingError, EOFError, json.JSONDecodeError) as exc:
        raise MalformedRecord(f"{field} could not be decoded as JSON or base64/zlib/pickle ({exc})") from None


def _metadata(record: dict) -> dict:
    meta = record.get("metadata") or {}
    if isinstance(meta, str):
        try:
            meta = json.loads(meta) if meta.strip() else {}
        except json.JSONDecodeError as exc:
            raise MalformedRecord(f"metadata is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise MalformedRecord("metadata is not an object")
    return meta


def _contest_date(record: dict) -> date | None:
    text = str(record.get("contest_date") or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise MalformedRecord(f"contest_date {text!r} is not an ISO date") from None


def _suite(tests: list[dict], func_name: str | None, field: str) -> TestSuite:
    kinds = {t.get("testtype", "stdin") for t in tests}
    if len(kinds) > 1:
        raise MalformedRecord(f"{field} mixes test types {sorted(kinds)}")
    kind = kinds.pop() if kinds else ("functional" if func_name else "stdin")
    if kind not in ("stdin", "functional"):
        raise MalformedRecord(f"{field} has unknown testtype {kind!r}")
    if kind == "functional" and not func_name:
        raise MalformedRecord("functional tests but metadata.func_name is missing")
    cases = tuple(TestCase(t["input"], t["output"], f"{field}[{i}]") for i, t in enumerate(tests))
    return TestSuite(kind=kind, cases=cases, entry=func_name if kind == "functional" else None)


def parse_record(record: Any, line: int) -> BenchItem:
    if not isinstance(record, dict):
        raise MalformedRecord("not a JSON object")
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        raise MalformedRecord("missing " + ", ".join(missing))
    meta = _metadata(record)
    func_name = meta.get("func_name") or None
    public = decode_tests(record["public_test_cases"], "public_test_cases")
    raw_private = record.get("private_test_cases")
    private = decode_tests(raw_private, "private_test_cases") if raw_private not in (None, "", []) else []
    public_suite = _suite(public, func_name, "public_test_cases") if public else None
    if private:
        grading = Grading(HIDDEN, suite=_suite(private, func_name, "private_test_cases"))
    elif public_suite is not None:
        grading = Grading(PUBLIC_ONLY, suite=public_suite)
    else:
        raise MalformedRecord("no tests at all (public and private test lists are both empty)")
    ident = str(record.get("question_id") or f"line-{line}")
    task = Task(prompt=str(record["question_content"]), kind="program", entry_point=func_name,
                tests=public_suite, starter_code=str(record.get("starter_code") or ""), source="bench")
    info = {"platform": record.get("platform") or "", "difficulty": record.get("difficulty") or "",
            "contest_date": str(record.get("contest_date") or ""), "title": record.get("question_title") or "",
            "public_tests": len(public), "private_tests": len(private)}
    return BenchItem(ident, task, grading, info)


def load(path: str | Path, *, since: date | None = None, until: date | None = None) -> Dataset:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"LiveCodeBench file not found: {path} (pass lcb:PATH to a code_generation_lite JSONL)")
    dataset = Dataset(name=f"lcb:{path}", items=[])
    undated = outside = 0
    for line_no, record in jsonl_records(path, dataset.skipped):
        try:
            item = parse_record(record, line_no)
            day = _contest_date(record)
        except MalformedRecord as exc:
            dataset.skipped.append(f"{path} line {line_no}: {exc}")
            continue
        if since or until:
            if day is None:
                undated += 1
                continue
            if (since and day < since) or (until and day > until):
                outside += 1
                continue
        dataset.items.append(item)
    _add_notes(dataset, since, until, undated, outside)
    return dataset


def _add_notes(dataset: Dataset, since: date | None, until: date | None, undated: int, outside: int) -> None:
    public_only = sum(1 for i in dataset.items if i.grading.graded_on == PUBLIC_ONLY)
    if public_only:
        dataset.notes.append(
            f"{public_only} of {len(dataset.items)} problems have no private tests: graded on public tests only "
            "(the same tests that steer selection); not comparable to the LiveCodeBench leaderboard")
    if undated:
        dataset.notes.append(f"{undated} problems without a contest_date were left out by --since/--until")
    if outside:
        dataset.notes.append(f"{outside} problems outside {since or '...'} .. {until or '...'} were left out")
    kinds: dict[str, int] = {}
    for item in dataset.items:
        kinds[item.grading.suite.kind] = kinds.get(item.grading.suite.kind, 0) + 1
    dataset.stats.update(problems=len(dataset.items), by_test_kind=kinds, public_tests_only=public_only,
                         skipped=len(dataset.skipped))
