"""Probe inputs: new calls made by varying the literal arguments of a task's own tests, and what each candidate
returns on them, so candidates that all pass weak tests can be compared by behaviour (engine.agreement).

Docstring examples are weak tests: on HumanEval with the 1.5B, half of the tasks lost had a wrong candidate that
passed every example. Two candidates that pass the same examples but answer a varied input differently cannot both
be right; the varied inputs need no expected value, only the candidates' answers.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import math
import random
from pathlib import Path

from sandbox.grading import parse_functional
from sandbox.types import Limits, TestCase, TestSuite

MAX_PROBES = 24  # calls per candidate: one sandbox run each, its answers hashed onto one line (300 characters kept)
ANSWER_DIGITS = 8  # hex digits of each answer's hash
MARKER = "ATLAS-PROBE:"


def public_calls(suite: TestSuite | None, entry: str | None) -> list[tuple]:
    """The argument tuples of the calls the tests make to the entry point with literal arguments only."""
    if suite is None or not entry:
        return []
    if suite.kind == "functional":
        return _functional_calls(suite.cases)
    if suite.kind == "assert":
        return _literal_calls(suite.assert_code, {entry, "candidate"})
    if suite.kind == "pytest" and suite.pytest is not None:
        return _pytest_calls(suite, entry)
    return []


def _functional_calls(cases: tuple[TestCase, ...]) -> list[tuple]:
    calls = []
    for index, case in enumerate(cases):
        try:
            calls.append(tuple(parse_functional(case, index).args))
        except ValueError:  # a malformed case (TestFormatError) seeds no probe
            continue
    return calls


def _literal_calls(source: str, names: set[str]) -> list[tuple]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    calls = []
    found = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    for node in sorted(found, key=lambda n: (n.lineno, n.col_offset)):  # in the tests' order
        if _called_name(node) in names and not node.keywords:
            try:
                calls.append(tuple(ast.literal_eval(arg) for arg in node.args))
            except (ValueError, TypeError, SyntaxError, RecursionError):
                continue
    return calls


def _called_name(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):  # module.function(...) in a workspace test
        return node.func.attr
    return None


def _pytest_calls(suite: TestSuite, entry: str) -> list[tuple]:
    target = suite.pytest
    files = {node.split("::")[0] for node in target.node_ids}
    calls = []
    for name in sorted(files):
        try:
            source = (Path(target.workspace) / name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        calls += _literal_calls(source, {entry.split(".")[-1]})
    return calls


def written_tests(text: str, entry: str, limit: int) -> list[tuple[tuple, object]]:
    """(arguments, expected) of the first `limit` lines `assert entry(<literals>) == <literal>` in a model's
    reply; other lines (and one cut off by the token budget) are skipped."""
    tests: list[tuple[tuple, object]] = []
    for line in text.splitlines():
        test = _written_test(line.strip(), entry)
        if test is not None and _key(test[0]) is not None:
            tests.append(test)
        if len(tests) >= limit:
            break
    return tests


def _written_test(line: str, entry: str) -> tuple[tuple, object] | None:
    try:
        node = ast.parse(line).body[0]
    except (SyntaxError, IndexError, ValueError, RecursionError):
        return None
    if not (isinstance(node, ast.Assert) and isinstance(node.test, ast.Compare) and len(node.test.ops) == 1
            and isinstance(node.test.ops[0], ast.Eq) and isinstance(node.test.left, ast.Call)
            and _called_name(node.test.left) == entry and not node.test.left.keywords):
        return None
    try:
        args = tuple(ast.literal_eval(arg) for arg in node.test.left.args)
        return args, ast.literal_eval(node.test.comparators[0])
    except (ValueError, TypeError, SyntaxError, RecursionError):
        return None


# --- varying the arguments -------------------------------------------------------------------------------------------

def variants(value) -> list:
    """Values of the same type near `value`: the edges (empty, zero) and small edits."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1, 0, -value, 2 * value + 1]
    if isinstance(value, float):
        return [value + 0.5, -value, 0.0, value * 2] if math.isfinite(value) else []
    if isinstance(value, str):
        return _text_variants(value)
    if isinstance(value, (list, tuple)):
        return [type(value)(v) for v in _sequence_variants(list(value))]
    if isinstance(value, dict):
        keys = list(value)
        return [{}] + ([{k: value[k] for k in keys[1:]}] if keys else [])
    return []


# Digits put in after the first character, one and then four: checks like isalpha, "contains a digit" or "more than
# three digits" are common in string tasks, and a task's own examples rarely carry digits where they matter
# (HumanEval/141 was lost in every 1.5B run so: its examples could not tell those rules apart).
DIGITS_PUT_IN = ("1", "1234")


def _text_variants(text: str) -> list[str]:
    out = ["", text[::-1], text[: len(text) // 2], text + text[-1:], text.swapcase()]
    out += [text[:1] + digits + text[1:] for digits in DIGITS_PUT_IN]
    if " " in text:
        out.append(text.replace(" ", "  ", 1))
    return out


def _sequence_variants(items: list) -> list[list]:
    out = [[], items[::-1], items[: len(items) // 2], items + items[:1]]
    try:
        out.append(sorted(items))
    except TypeError:
        pass
    for i, item in enumerate(items[:3]):  # one element changed at a time
        for changed in variants(item)[:2]:
            out.append(items[:i] + [changed] + items[i + 1:])
    return out


def probe_calls(calls: list[tuple], *, seed: str, limit: int = MAX_PROBES) -> list[tuple]:
    """Up to `limit` new argument tuples, each one argument of a test's call varied; none equal to a test's call.
    The same calls and seed give the same probes."""
    seen = {_key(c) for c in calls}
    probes: list[tuple] = []
    for call in calls:
        for position, argument in enumerate(call):
            for changed in variants(argument):
                probe = call[:position] + (changed,) + call[position + 1:]
                key = _key(probe)
                if key is not None and key not in seen:
                    seen.add(key)
                    probes.append(probe)
    random.Random(seed).shuffle(probes)
    return probes[:limit]


def _key(call: tuple) -> str | None:
    """A literal spelling of the call (None when it has no round-trip literal, e.g. a NaN)."""
    text = repr(call)
    try:
        return text if ast.literal_eval(text) == call else None
    except (ValueError, SyntaxError, RecursionError, MemoryError):
        return None


# --- running them ----------------------------------------------------------------------------------------------------

PER_CALL_S = 0.5  # a probe call running longer answers "timeout" (a varied input can make a slow program slower)


def plain_answer(value):
    """What two answers are compared by: floats to 6 decimals (0.1 + 0.2 and 0.3 agree), containers element-wise."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, (list, tuple)):
        return type(value)(plain_answer(v) for v in value)
    return value


def answer_digest(value) -> str:
    return hashlib.sha256(repr(plain_answer(value)).encode()).hexdigest()[:ANSWER_DIGITS]


DRIVER = '''
import contextlib, hashlib, io, signal
ANSWER_DIGITS = %d
%s
%s
def on_alarm(*_):
    raise TimeoutError("probe call took too long")
def run_probes(code, entry, probes, per_call):
    space = {"__name__": "candidate"}
    answers = []
    signal.signal(signal.SIGALRM, on_alarm)
    with contextlib.redirect_stdout(io.StringIO()):
        exec(code, space)
        function = space[entry]
        for args in probes:
            signal.setitimer(signal.ITIMER_REAL, per_call)
            try:
                answers.append(answer_digest(function(*args)))
            except BaseException as exc:
                answers.append("!" + hashlib.sha256(type(exc).__name__.encode()).hexdigest()[:ANSWER_DIGITS])
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
    print(%r + ",".join(answers))
run_probes(%r, %r, %s, %r)
'''


def answers_program(code: str, entry: str, probes: list[tuple]) -> str:
    """A program that runs the candidate (not as __main__, so its own demo code stays quiet), calls it on each
    probe, and prints one line: the marker and each answer's digest (an exception's type after a "!")."""
    helpers = (inspect.getsource(plain_answer), inspect.getsource(answer_digest))
    return DRIVER % (ANSWER_DIGITS, *helpers, MARKER, code, entry, repr(probes), PER_CALL_S)


def answers(code: str, entry: str, probes: list[tuple], limits: Limits) -> list[str] | None:
    """The candidate's answer hashes, one per probe; None when it produced none (crash, timeout, no entry)."""
    import sandbox

    suite = TestSuite(kind="stdin", cases=(TestCase(input="", output=MARKER, name="probes"),))
    verdict = sandbox.run(answers_program(code, entry, probes), suite, limits=limits)
    return parse_answers(verdict.tests[0].got if verdict.tests else "", len(probes))


def parse_answers(stdout: str, count: int) -> list[str] | None:
    """The driver's line: the last marked one (it prints after the candidate's own code has run)."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARKER):
            found = line[len(MARKER):].strip().split(",")
            return found if len(found) == count else None
    return None

