"""Probe inputs (engine.probes) and the choice among passing candidates (engine.agreement); answers come from the
real sandbox."""

from __future__ import annotations

from sandbox.types import Limits, TestCase, TestSuite

from engine import agreement, probes

LIMITS = Limits.for_timeout(10.0)


def test_public_calls_read_literal_calls_from_asserts_and_functional_cases():
    suite = TestSuite(kind="assert", entry="f", assert_code=(
        "def check(candidate):\n    assert candidate([1, 2], 'a') == 3\n    assert candidate(x) == 1\n"
        "assert f(4, key=1) == 2\nassert f((1, 2), {'k': None}) is None\n"))
    # A call with a non-literal argument or a keyword is not a probe's seed.
    assert probes.public_calls(suite, "f") == [([1, 2], "a"), ((1, 2), {"k": None})]
    functional = TestSuite(kind="functional", entry="g", cases=(TestCase('[1, 2]\n"x"', "3"), TestCase("not json", "1")))
    assert probes.public_calls(functional, "g") == [([1, 2], "x")]
    assert probes.public_calls(TestSuite(kind="stdin", cases=(TestCase("1", "1"),)), "f") == []
    assert probes.public_calls(None, "f") == []


def test_probe_calls_vary_one_argument_and_never_repeat_a_test():
    calls = [([3, 1, 2], 2), ("ab c", 0)]
    found = probes.probe_calls(calls, seed="task", limit=100)
    assert found and all(c not in calls for c in found)
    assert len({repr(c) for c in found}) == len(found)  # no duplicates
    # Exactly one argument differs from some test's call, and each keeps its type.
    for call in found:
        assert any(len(call) == len(seed) and sum(a != b for a, b in zip(call, seed)) == 1 for seed in calls)
        assert any(all(type(a) is type(b) for a, b in zip(call, seed)) for seed in calls)
    assert ([], 2) in found and ([3, 1, 2], 3) in found and ("", 0) in found
    assert ("a1b c", 0) in found and ("a1234b c", 0) in found  # digits put in: one, then four
    assert probes.probe_calls(calls, seed="task", limit=5) == probes.probe_calls(calls, seed="task", limit=5)
    assert len(probes.probe_calls(calls, seed="task", limit=5)) == 5
    assert probes.probe_calls([(float("nan"),)], seed="s") == []  # no literal to send: left out


def test_written_tests_keep_literal_asserts_of_the_function_only():
    reply = ("f(1) == 2\n"  # the prefill's opening is prepended by the caller; here it is whole lines
             "assert f(1, [2]) == [3]\n"
             "assert f(x) == 1\n"  # not literal
             "assert g(1) == 1\n"  # another function
             "assert f(2) != 3\n"  # not an equality
             "# a comment\n"
             "assert f('a') == 'b'\n"
             "assert f(3) == ")  # cut off by the token budget
    assert probes.written_tests(reply, "f", 10) == [((1, [2]), [3]), (("a",), "b")]
    assert probes.written_tests(reply, "f", 1) == [((1, [2]), [3])]


def test_answers_come_from_the_sandbox_one_per_probe():
    code = ("def f(x):\n    print('noise on stdout')\n    while x == 7:\n        pass\n"
            "    return [x / 10, (x,)]\n\nprint('demo code at import')\n")
    calls = [(1,), (7,), ("a",), (1,)]
    found = probes.answers(code, "f", calls, LIMITS)
    assert found is not None and len(found) == 4
    assert found[0] == probes.answer_digest([0.1, (1,)]) == found[3]
    assert found[1].startswith("!") and found[2].startswith("!")  # a call over its time, a TypeError
    assert found[1] != found[2]  # different exceptions answer differently
    assert probes.answers("def f(:\n", "f", calls, LIMITS) is None  # does not compile: no answers
    assert probes.answers("def g(x):\n    return x\n", "f", calls, LIMITS) is None  # no entry point


def test_hostile_candidate_cannot_forge_answers_for_others():
    # It prints a line that looks like the driver's; only the driver's own line, after its run, is read.
    code = ("import os\nos.write(1, b'ATLAS-PROBE:aaaaaaaa\\n')\nprint('ATLAS-PROBE:bbbbbbbb')\n"
            "def f(x):\n    return x\n")
    found = probes.answers(code, "f", [(1,)], LIMITS)
    assert found == [probes.answer_digest(1)]


def test_float_answers_agree_to_six_decimals():
    assert probes.answer_digest(0.1 + 0.2) == probes.answer_digest(0.3)
    assert probes.answer_digest([1.0000001]) == probes.answer_digest([1.0])
    assert probes.answer_digest((1, 2)) != probes.answer_digest([1, 2])


# HumanEval/141's rule, and two programs that pass its two examples but are wrong, as the 1.5B wrote them.
FILE_NAME_CHECK = """def check(name):
    stem, dot, ext = name.partition(".")
    ok = dot and "." not in ext and stem[:1].isalpha() and ext in ("txt", "exe", "dll")
    return "Yes" if ok and sum(c.isdigit() for c in name) <= 3 else "No"
"""
IGNORES_DIGITS = FILE_NAME_CHECK.replace(" and sum(c.isdigit() for c in name) <= 3", "")
NO_DIGITS_AT_ALL = FILE_NAME_CHECK.replace("stem[:1].isalpha()", "stem.isalpha()")


def test_probes_with_digits_put_in_tell_digit_rules_apart():
    suite = TestSuite(kind="assert", entry="check",
                      assert_code="assert check('example.txt') == 'Yes'\nassert check('1example.dll') == 'No'\n")
    calls = probes.probe_calls(probes.public_calls(suite, "check"), seed="HumanEval/141")
    programs = [IGNORES_DIGITS, NO_DIGITS_AT_ALL, FILE_NAME_CHECK]
    found = [probes.answers(code, "check", calls, LIMITS) for code in programs]
    # The right program was sampled twice; each wrong one once, and the best-ranked is wrong.
    choice = agreement.choose(found, [1, 1, 2])
    assert choice.index == 2 and choice.support == 2
    assert len(set(map(tuple, found))) == 3  # the probes told all three apart


def test_choose_prefers_what_most_samples_answer():
    right, wrong = ["a", "b", "c"], ["a", "x", "c"]
    # The best-ranked candidate is wrong; two other samples agree with each other.
    choice = agreement.choose([wrong, right, right], [1, 1, 1])
    assert choice.index == 1 and choice.changed and choice.probes_used == 3
    # Written twice by the model, the same program counts twice.
    assert agreement.choose([wrong, right], [1, 2]).index == 1
    # Nothing to tell them apart: the best rank stays.
    assert agreement.choose([right, right], [1, 1]).index == 0


def test_choose_counts_the_samples_that_answer_as_the_chosen_one_does():
    right, wrong, other = ["a", "b", "c"], ["a", "x", "c"], ["z", "b", "c"]
    assert agreement.choose([wrong, right, right, other], [1, 2, 1, 1]).support == 3
    assert agreement.choose([right], [4]).support == 4
    # A probe most candidates raise on is left out of the support as it is of the consensus.
    assert agreement.choose([["!e", "y"], ["!f", "y"], ["1", "n"]], [1, 1, 1]).support == 2
    assert agreement.choose([None, ["1"]], [5, 1]).support == 1


def test_choose_lets_model_written_tests_break_a_tie():
    a, b = ["1", "2"], ["1", "3"]
    assert agreement.choose([a, b], [1, 1]).index == 0  # one each: a tie, best rank
    choice = agreement.choose([a, b], [1, 1], expected=["1", "3"])
    assert choice.index == 1 and choice.tests_met == (1, 2)
    # ...but they do not outvote the samples: two agreeing candidates beat one that meets more written tests.
    right, wrong = ["a", "b"], ["a", "x"]
    choice = agreement.choose([wrong, right, right], [1, 1, 1], expected=["a", "x"])
    assert choice.index == 1 and choice.tests_met == (2, 1, 1)


def test_choose_leaves_out_probes_most_candidates_raise_on_and_never_prefers_no_answers():
    # Probe 0 is out of the task's domain (two of three raise); only probe 1 counts.
    choice = agreement.choose([["!e", "x"], ["!e", "y"], ["5", "y"]], [1, 1, 1])
    assert choice.probes_used == 1 and choice.index == 1
    choice = agreement.choose([None, ["1"], ["2"]], [5, 1, 1])
    assert choice.index == 1 and choice.scores[0] == -1
