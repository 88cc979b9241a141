"""Grading in the parent, without running anything: LiveCodeBench's stdout and call-based comparisons, the plain-data
round trip between child and parent, and the assert rewrite that keeps expected values out of the child."""

from __future__ import annotations

import collections
import json

import pytest

from sandbox import _child, grading
from sandbox.types import TestCase


@pytest.mark.parametrize("got, expected, passes", [
    ("3\n", "3", True),  # trailing newline
    ("  3  \r\n", "3\n", True),  # whitespace around lines, CRLF
    ("1 2 3\n4\n", "1 2 3\n4", True),
    ("1  2 3", "1 2 3", True),  # numbers compared as decimals: spacing between them does not matter
    ("0.50", "0.5", True),  # equal decimals
    ("5e-1", "0.5", True),
    ("0.3333333", "0.333333", False),  # LiveCodeBench: exact Decimal equality, no tolerance
    ("3\n\n", "3", True),  # trailing blank lines are stripped with the whole output
    ("3\n\n4", "3\n4", False),  # an inner blank line changes the line count
    ("Yes", "yes", False),
    ("yes no", "yes  no", False),  # non-numeric lines must match exactly after stripping
    ("", "", True),
    ("sNaN", "sNaN", True),  # identical lines match before any number parsing
    ("sNaN 1", "sNaN 2", False),  # a signalling NaN does not crash the grader
])
def test_stdout_comparison_follows_livecodebench(got, expected, passes):
    ok, detail = grading.stdout_matches(got, expected)
    assert ok is passes
    assert (detail == "") is passes


def test_stdout_mismatch_says_where():
    ok, detail = grading.stdout_matches("1\n2\n", "1\n3\n")
    assert not ok and "line 2" in detail


@pytest.mark.parametrize("value", [
    None, True, 0, -7, 10 ** 5000, 1.5, float("inf"), "text", b"\x00\xff", 3 + 4j, [1, [2, (3, 4)]], (1,),
    {1, 2}, frozenset({"a"}), {"k": [1, 2], 3: (4, 5), (6, 7): None}, collections.Counter("abca"),
    collections.OrderedDict(a=1),
], ids=lambda v: type(v).__name__)
def test_plain_data_round_trip(value):
    sent = json.loads(json.dumps(_child.plain(value)))
    back = grading.decode(sent)
    assert back == value
    assert type(back) is type(value) or isinstance(value, (collections.Counter, collections.OrderedDict))


def test_plain_ignores_overridden_dunders():
    class Liar(int):
        def __eq__(self, other):
            return True

        __hash__ = int.__hash__

    class Shifty(list):
        def __iter__(self):
            return iter([99])

    assert grading.decode(_child.plain(Liar(5))) == 5 and type(grading.decode(_child.plain(Liar(5)))) is int
    assert grading.decode(_child.plain(Shifty([1, 2]))) == [1, 2]


@pytest.mark.parametrize("value", [object(), (x for x in ()), lambda: 1, type("Eq", (), {"__eq__": lambda s, o: True})()])
def test_plain_refuses_objects(value):
    with pytest.raises(_child.NotPlain):
        _child.plain(value)


def test_plain_refuses_cycles():
    loop = []
    loop.append(loop)
    with pytest.raises((_child.NotPlain, RecursionError)):
        _child.plain(loop)


def test_decode_rejects_forged_tags():
    for forged in ({"zz": 1}, {"t": 1, "s": 2}, {"i": "not hex"}):
        with pytest.raises(ValueError):
            grading.decode(forged)


def test_functional_comparison_follows_livecodebench():
    assert grading.functional_matches({"t": [1, 2]}, [1, 2]) == (True, [1, 2])  # top-level tuple -> list
    assert grading.functional_matches([{"t": [1, 2]}], [[1, 2]])[0] is False  # nested tuples stay tuples
    assert grading.functional_matches(1, 1.0)[0] is True  # Python ==, as there
    assert grading.functional_matches(True, 1)[0] is True
    assert grading.functional_matches("1", 1)[0] is False


def test_functional_cases_parse_with_clear_errors():
    parsed = grading.parse_functional(TestCase('[1, 2]\n"x"', "3"), 0)
    assert parsed.args == [[1, 2], "x"] and parsed.expected == 3
    with pytest.raises(grading.TestFormatError, match=r"test 2: field 'input' line 2 is not JSON"):
        grading.parse_functional(TestCase("[1]\nnot json", "3"), 1)
    with pytest.raises(grading.TestFormatError, match=r"test 1 \(named\): field 'output' is not JSON"):
        grading.parse_functional(TestCase("1", "{oops", name="named"), 0)


CHECK = '''
METADATA = {"author": "x"}

def check(candidate):
    assert candidate([1, 2, 3]) == [3, 2, 1]
    assert 6 == candidate([6])[0]
    assert candidate([]) is not None
    assert not candidate([0]) == [1]
    assert True, "always"
    for n in range(3):
        assert len(candidate(list(range(n)))) == n
'''


def test_assert_rewrite_strips_literal_expectations():
    code, sites = grading.rewrite_asserts(CHECK)
    assert "assert " not in code and grading.RECORDER in code
    assert "[3, 2, 1]" not in code  # the expected literal stays in the parent
    assert [s.mode for s in sites] == ["compare", "compare", "compare", "compare", "constant", "compare"]
    assert sites[3].negate and sites[3].expected == [1]
    assert sites[0].expected == [3, 2, 1] and sites[1].expected == 6 and sites[1].expected_side == "left"
    assert sites[5].expected is grading._MISSING  # `n` is not a literal: both operands come from the child


def test_assert_judging():
    _, sites = grading.rewrite_asserts(CHECK)
    good = [{"t": "assert", "i": 0, "v": [[3, 2, 1]]}, {"t": "assert", "i": 1, "v": [6]},
            {"t": "assert", "i": 2, "v": [[]]}, {"t": "assert", "i": 3, "v": [[0]]},
            {"t": "assert", "i": 4, "v": []}] + [{"t": "assert", "i": 5, "v": [n, n]} for n in range(3)]
    assert grading.judge_asserts(sites, good) == (True, "", "")
    wrong = [dict(good[0], v=[[1, 2, 3]])] + good[1:]
    ok, expected, got = grading.judge_asserts(sites, wrong)
    assert not ok and "[3, 2, 1]" in expected and "[1, 2, 3]" in got
    ok, _, got = grading.judge_asserts(sites, good[1:])
    assert not ok and got == "this assert never ran"
    ok, _, got = grading.judge_asserts(sites, [dict(good[0], v=None, error="a E object is not plain data")]
                                       + good[1:])
    assert not ok and "not plain data" in got
