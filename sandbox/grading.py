"""Deciding pass or fail, in the parent, from what a test's process sent back. Nothing here runs candidate code.

stdin tests follow LiveCodeBench's `grade_stdio` (lcb_runner/evaluation/testing_util.py): both outputs are
stripped, split on newlines and each line stripped; the line counts must match; each line must match exactly or,
failing that, as a whitespace-separated list of `Decimal`s that compare equal. That is exact decimal equality, not a
float tolerance: "0.5" matches "0.50" and "5e-1", but "0.3333333" does not match "0.333333". (The issue asked
for "floats within a small tolerance"; we match LiveCodeBench instead, so that our pass/fail agrees with its grader.)

functional tests follow LiveCodeBench's `grade_call_based`: each line of `input` is one JSON argument, `output` is
JSON; a tuple result becomes a list (at the top level only, as there), and the result must `==` the expected value.
The difference: the `==` runs here on plain data the child serialised (see _child.plain), so a value that is not
plain data (a custom object, e.g. one whose `__eq__` always says True) fails instead of being compared, and numpy
values are compared by their Python value.

assert tests (HumanEval `check(candidate)`, MBPP asserts) are rewritten before they run (`rewrite_asserts`): each
`assert` becomes a call sending its operands to the parent, and a literal expected operand is stripped from the
code the child sees and compared here. So the child never holds the expected values of literal asserts, and a
candidate that overrides `__eq__` or patches the harness cannot make them pass. Limits: an expected value computed
by the test code (`assert f(x) == g(x)`, a loop over cases) is evaluated in the child, and so is the truth of an
assert that is not a single comparison; a candidate that tampers with the interpreter it runs in could forge those.
pytest reports likewise come from pytest running beside the candidate (sandbox/pytest_kind.py).
"""

from __future__ import annotations

import ast
import json
import operator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sandbox.types import TestCase

TRUNCATE = 300


class TestFormatError(ValueError):
    """A test case is malformed; the message names the test and the field."""

    __test__ = False


def show(value: Any, length: int = TRUNCATE) -> str:
    """A value as Python would write it (strings quoted), truncated."""
    return truncate(repr(value), length)


def truncate(text: Any, length: int = TRUNCATE) -> str:
    """LiveCodeBench's truncatefn: head and tail of long text."""
    text = text if isinstance(text, str) else repr(text)
    if len(text) <= length:
        return text
    return text[: length // 2] + "...(truncated) ..." + text[-length // 2:]


# --- stdin/stdout ----------------------------------------------------------------------------------------------------

def stripped_lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().split("\n")]


def _decimals(line: str) -> list[Decimal] | None:
    try:
        return [Decimal(item) for item in line.split()]
    except (InvalidOperation, ValueError):
        return None


def stdout_matches(got: str, expected: str) -> tuple[bool, str]:
    """LiveCodeBench's line-by-line comparison; the second item says where it failed."""
    got_lines, expected_lines = stripped_lines(got), stripped_lines(expected)
    if len(got_lines) != len(expected_lines):
        return False, f"wrong answer: {len(got_lines)} lines, expected {len(expected_lines)}"
    for index, (line, want) in enumerate(zip(got_lines, expected_lines)):
        if line == want:
            continue
        got_numbers, want_numbers = _decimals(line), _decimals(want)
        try:
            same = got_numbers is not None and want_numbers is not None and got_numbers == want_numbers
        except InvalidOperation:  # signalling NaN
            same = False
        if not same:
            return False, f"wrong answer at line {index + 1}: {truncate(line)} != {truncate(want)}"
    return True, ""


# --- plain data sent by the child ----------------------------------------------------------------------------------

def decode(value: Any) -> Any:
    """The inverse of _child.plain: JSON with tagged containers back to Python values (raises ValueError)."""
    if isinstance(value, list):
        return [decode(item) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) != 1:
        raise ValueError("malformed value from the sandbox")
    (tag, inner), = value.items()
    try:
        if tag == "t":
            return tuple(decode(item) for item in inner)
        if tag == "s":
            return {decode(item) for item in inner}
        if tag == "f":
            return frozenset(decode(item) for item in inner)
        if tag == "d":
            return {decode(k): decode(v) for k, v in inner}
        if tag == "b":
            return bytes.fromhex(inner)
        if tag == "c":
            return complex(inner[0], inner[1])
        if tag == "i":
            return int(inner, 16)
    except (TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"malformed value from the sandbox: {exc}") from exc
    raise ValueError(f"malformed value from the sandbox: tag {tag!r}")


# --- functional ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FunctionalCase:
    args: list
    expected: Any


def parse_functional(case: TestCase, index: int) -> FunctionalCase:
    label = f"test {index + 1}" + (f" ({case.name})" if case.name else "")
    if not isinstance(case.input, str) or not isinstance(case.output, str):
        raise TestFormatError(f"{label}: fields 'input' and 'output' must be strings of JSON")
    args = []
    for number, line in enumerate(case.input.split("\n"), start=1):
        try:
            args.append(json.loads(line))
        except ValueError as exc:
            raise TestFormatError(f"{label}: field 'input' line {number} is not JSON ({exc}): "
                                  f"{truncate(line, 80)}") from exc
    try:
        expected = json.loads(case.output)
    except ValueError as exc:
        raise TestFormatError(f"{label}: field 'output' is not JSON ({exc}): {truncate(case.output, 80)}") from exc
    return FunctionalCase(args, expected)


def functional_matches(sent: Any, expected: Any) -> tuple[bool, Any]:
    """LiveCodeBench's call-based comparison on the decoded value; returns (passed, the value got)."""
    got = decode(sent)
    if isinstance(got, tuple):
        got = list(got)  # "don't penalize model if it produces tuples instead of lists" (top level only, as there)
    try:
        return bool(got == expected), got
    except (TypeError, ValueError, RecursionError):
        return False, got


# --- assert --------------------------------------------------------------------------------------------------------

RECORDER = "__atlas_assert__"
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
            ast.NotIn: lambda a, b: a not in b, ast.Is: lambda a, b: _same(a, b),
            ast.IsNot: lambda a, b: not _same(a, b)}
_MISSING = object()


def _same(a: Any, b: Any) -> bool:
    """`is` on values that crossed a process boundary: identity for singletons, else same type and equal."""
    if a is None or b is None or isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return type(a) is type(b) and a == b


def _literal(node: ast.AST) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _MISSING


@dataclass(frozen=True)
class AssertSite:
    """One `assert` of the test code: how to judge what its call sends."""

    index: int
    line: int
    text: str
    mode: str  # "compare" | "truth" | "falsy" | "constant"
    op: Any = None  # the comparison, for mode "compare"
    expected: Any = _MISSING  # the literal operand kept here, if any
    expected_side: str = ""  # "right" | "left": which operand `expected` was
    negate: bool = False  # `assert not a == b`

    def judge(self, values: list) -> tuple[bool, str, str]:
        """(passed, expected text, got text) for one execution of this assert."""
        try:
            decoded = [decode(v) for v in values]
            if self.mode == "constant":
                return bool(self.expected), truncate(self.text), "constant"
            if self.mode in ("truth", "falsy"):
                value = decoded[0]
                ok = bool(value) if self.mode == "truth" else not bool(value)
                return ok, truncate(self.text), show(value)
            if self.expected is _MISSING:
                left, right = decoded
                got, want = left, right
            elif self.expected_side == "right":
                left, right = decoded[0], self.expected
                got, want = left, right
            else:
                left, right = self.expected, decoded[0]
                got, want = right, left
            held = bool(self.op(left, right)) != self.negate
            return held, ("not " if self.negate else "") + show(want), show(got)
        except (TypeError, ValueError, IndexError, RecursionError) as exc:
            return False, truncate(self.text), f"cannot compare: {exc}"


class _AssertRewriter(ast.NodeTransformer):
    def __init__(self) -> None:
        self.sites: list[AssertSite] = []

    def visit_Assert(self, node: ast.Assert) -> ast.AST:
        site, operands = self._site(node)
        self.sites.append(site)
        keywords = []
        if node.msg is not None:  # sent along (lazily, by the recorder) so a failure can show it
            thunk = ast.Lambda(ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]),
                               node.msg)
            keywords.append(ast.keyword("message", thunk))
        call = ast.Call(func=ast.Name(RECORDER, ast.Load()),
                        args=[ast.Constant(site.index), *operands], keywords=keywords)
        return ast.copy_location(ast.Expr(call), node)

    def _site(self, node: ast.Assert) -> tuple[AssertSite, list[ast.expr]]:
        test, index = node.test, len(self.sites)
        base = {"index": index, "line": node.lineno, "text": ast.unparse(test)}
        negated = isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not) and _single_compare(test.operand)
        if negated:  # `not a == b`: compared here too, then negated
            test = test.operand
            base["negate"] = True
        if _single_compare(test):
            op = _COMPARE[type(test.ops[0])]
            left, right = test.left, test.comparators[0]
            if (value := _literal(right)) is not _MISSING:
                return AssertSite(**base, mode="compare", op=op, expected=value, expected_side="right"), [left]
            if (value := _literal(left)) is not _MISSING:
                return AssertSite(**base, mode="compare", op=op, expected=value, expected_side="left"), [right]
            return AssertSite(**base, mode="compare", op=op), [left, right]
        if (value := _literal(test)) is not _MISSING:
            return AssertSite(**base, mode="constant", expected=value), []
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            return AssertSite(**base, mode="falsy"), [test.operand]
        return AssertSite(**base, mode="truth"), [test]


def _single_compare(node: ast.AST) -> bool:
    return isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE


def rewrite_asserts(source: str) -> tuple[str, list[AssertSite]]:
    """The test code with every `assert` turned into a report to the parent, and what each one expects.
    Raises SyntaxError when the test code does not parse."""
    tree = ast.parse(source)
    rewriter = _AssertRewriter()
    tree = ast.fix_missing_locations(rewriter.visit(tree))
    return ast.unparse(tree), rewriter.sites


def judge_asserts(sites: list[AssertSite], records: list[dict]) -> tuple[bool, str, str]:
    """All asserts ran and held: (passed, expected, got) with the first failure's details."""
    reached = set()
    for item in records:
        if item.get("t") != "assert":
            continue
        index = item.get("i")
        if not isinstance(index, int) or not 0 <= index < len(sites):
            continue
        site = sites[index]
        reached.add(index)
        if "error" in item:
            return False, truncate(site.text), f"line {site.line}: {truncate(str(item['error']))}"
        ok, want, got = site.judge(item.get("v") or [])
        if not ok:
            message = f"\n{truncate(str(item['m']), 1000)}" if item.get("m") else ""
            return False, f"line {site.line}: {site.text if site.mode != 'compare' else want}", got + message
    missing = [site for site in sites if site.index not in reached]
    if missing:
        site = missing[0]
        return False, f"line {site.line}: {truncate(site.text)}", "this assert never ran"
    return True, "", ""
