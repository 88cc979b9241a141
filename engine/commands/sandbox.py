"""`atlas-ls sandbox CANDIDATE.py --tests TESTS.json`: run one candidate against tests in the sandbox.

TESTS.json for stdin/functional tests is a list of `{"input", "output", "testtype"}` objects, as LiveCodeBench's
`public_test_cases` (which that dataset stores as a JSON string: a string holding the list is accepted too). For
assert tests it is `{"assert_code": "...", "entry": "name"}` (HumanEval's `test` and `entry_point` are accepted as
names too); for pytest `{"workspace": DIR, "target_file": FILE, "function": "Class.method", "node_ids": [...]}`
with a relative workspace taken from the tests file's folder.

Exit status: 0 when every test passes, 1 when any fails, 2 on bad input (the message names the file, the test and
the field).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any


class BadInput(Exception):
    """What was wrong with the command's input; exit status 2."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sandbox", help="run a candidate against tests in the sandbox",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("candidate", type=Path, help="the candidate's source file")
    parser.add_argument("--tests", type=Path, required=True, help="the tests (JSON, see above)")
    parser.add_argument("--kind", choices=("stdin", "functional", "assert", "pytest"),
                        help="test kind (default: the tests' `testtype`, or assert/pytest from the file's shape)")
    parser.add_argument("--entry", help="function or `class Solution` method to call (functional, assert)")
    parser.add_argument("--timeout", type=float, default=6.0, help="wall-clock seconds per test (default 6)")
    parser.add_argument("--memory-mb", type=int, default=1024, help="address-space limit per test (default 1024)")
    parser.add_argument("--isolation", choices=("bwrap", "namespaces", "rlimits"),
                        help="force an isolation level (default: the strongest available)")
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sandbox

    try:
        code = _read_text(args.candidate, "candidate")
        suite = build_suite(args.tests, _read_json(args.tests), args.kind, args.entry)
        if not args.timeout > 0 or not args.memory_mb > 0:
            raise BadInput("--timeout and --memory-mb must be positive")
        limits = sandbox.Limits.for_timeout(args.timeout, memory_mb=args.memory_mb)
        verdict = sandbox.run(code, suite, limits=limits, isolation=args.isolation)
    except sandbox.TestFormatError as exc:
        print(f"atlas-ls sandbox: {args.tests}: {exc}", file=sys.stderr)
        return 2
    except (BadInput, sandbox.IsolationUnavailable) as exc:
        print(f"atlas-ls sandbox: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(dataclasses.asdict(verdict), indent=2))
    else:
        print_verdict(verdict)
    return 0 if verdict.passed else 1


def print_verdict(verdict) -> None:
    for test in verdict.tests:
        line = f"{test.status.upper():<12} {test.name}  ({test.seconds:.3f} s)"
        if test.status != "pass" and (test.expected or test.got):
            line += f"\n    expected: {test.expected.rstrip()}\n    got:      {test.got.rstrip()}"
        if test.status not in ("pass", "fail", "skipped") and test.stderr_tail:
            line += "\n    " + test.stderr_tail.strip().splitlines()[-1]
        print(line)
    if verdict.error:
        print(f"error: {verdict.error}")
    print(f"{'PASSED' if verdict.passed else 'FAILED'}: {verdict.passed_count}/{verdict.total} tests passed "
          f"in {verdict.seconds:.2f} s (isolation: {verdict.isolation})")


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read the {what} file {path}: {exc}") from exc


def _read_json(path: Path) -> Any:
    text = _read_text(path, "tests")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise BadInput(f"{path} is not valid JSON: {exc}") from exc


def build_suite(path: Path, data: Any, kind: str | None, entry: str | None):
    """A TestSuite from the tests file's content; BadInput names what is wrong."""
    from sandbox import PytestTarget, TestSuite

    if isinstance(data, str):  # LiveCodeBench keeps public_test_cases as a JSON string
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise BadInput(f"{path}: the string it holds is not JSON: {exc}") from exc
    if isinstance(data, list):
        cases, found_kind = _cases(path, data)
        kind = kind or found_kind or "stdin"
        if kind not in ("stdin", "functional"):
            raise BadInput(f"{path} holds a list of test cases, which fits --kind stdin or functional, not {kind}")
        if kind == "functional" and not entry:
            raise BadInput("functional tests need --entry NAME (the function or Solution method to call)")
        return TestSuite(kind, cases=cases, entry=entry)
    if not isinstance(data, dict):
        raise BadInput(f"{path} must hold a list of test cases or an object, not {type(data).__name__}")
    kind = kind or ("pytest" if "workspace" in data else "assert")
    if kind == "assert":
        code = data.get("assert_code", data.get("test"))
        if not isinstance(code, str) or not code.strip():
            raise BadInput(f"{path}: field 'assert_code' is missing or not a string")
        return TestSuite("assert", assert_code=code, entry=entry or data.get("entry") or data.get("entry_point"))
    if kind == "pytest":
        fields = {name: data.get(name) for name in ("workspace", "target_file", "function")}
        for name, value in fields.items():
            if not isinstance(value, str) or not value:
                raise BadInput(f"{path}: field {name!r} is missing or not a string")
        node_ids = data.get("node_ids", [])
        if not isinstance(node_ids, list) or not all(isinstance(n, str) for n in node_ids):
            raise BadInput(f"{path}: field 'node_ids' must be a list of strings")
        workspace = (path.parent / fields["workspace"]).resolve()
        return TestSuite("pytest", pytest=PytestTarget(workspace, Path(fields["target_file"]), fields["function"],
                                                       tuple(node_ids)))
    raise BadInput(f"{path} holds an object, which fits --kind assert or pytest, not {kind}")


def _cases(path: Path, items: list) -> tuple[tuple, str | None]:
    from sandbox import TestCase

    if not items:
        raise BadInput(f"{path} holds no test cases")
    cases, kinds = [], set()
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise BadInput(f"{path}: test {number} must be an object with 'input' and 'output'")
        for name in ("input", "output"):
            if name not in item:
                raise BadInput(f"{path}: test {number}: field {name!r} is missing")
            if not isinstance(item[name], str):
                raise BadInput(f"{path}: test {number}: field {name!r} must be a string, "
                               f"not {type(item[name]).__name__}")
        testtype = item.get("testtype")
        if testtype is not None:
            if testtype not in ("stdin", "functional"):
                raise BadInput(f"{path}: test {number}: field 'testtype' is {testtype!r}; "
                               "expected 'stdin' or 'functional'")
            kinds.add(testtype)
        cases.append(TestCase(item["input"], item["output"], name=str(item.get("name", ""))))
    if len(kinds) > 1:
        raise BadInput(f"{path}: the tests mix testtypes {sorted(kinds)}; give one kind per file")
    return tuple(cases), (kinds.pop() if kinds else None)
