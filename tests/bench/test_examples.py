"""Public examples read from docstrings: doctests and HumanEval's prose forms, only where unambiguous."""

from bench.datasets.examples import assert_line_examples, check_code, extract_examples


def pairs(prompt: str, entry: str) -> list[tuple[str, str]]:
    return [(e.call, e.expected) for e in extract_examples(prompt, entry)]


def test_doctests_are_read_with_their_expected_values():
    prompt = 'def f(xs, n):\n    """Doc.\n    >>> f([1, 2], 3)\n    [1, 2, 3]\n    >>> f([], 0)\n    []\n    """\n'
    assert pairs(prompt, "f") == [("f([1, 2], 3)", "[1, 2, 3]"), ("f([], 0)", "[]")]


def test_doctest_wrapped_in_a_pure_builtin_is_kept_and_other_calls_are_not():
    prompt = ('def g(xs):\n    """Doc.\n    >>> round(g([1, 2]), 2)\n    -0.5\n    >>> helper(g([1]))\n    1\n'
              '    """\n')
    assert pairs(prompt, "g") == [("round(g([1, 2]), 2)", "-0.5")]


def test_escaped_newline_in_a_docstring_example_stays_as_written():
    prompt = 'def r(text):\n    """Doc.\n    >>> r("ab\\ncd")\n    \'b\\nd\'\n    """\n'
    assert pairs(prompt, "r") == [("r('ab\\ncd')", "'b\\nd'")]


def test_prose_separators():
    prompt = ('def h(a, b):\n    """Doc.\n    h(1, 2) ➞ 3\n    h(2, 2) == 4\n    h(3, 2) => 5\n    h(4, 2) ==> 6\n'
              '    h(5, 2) -> 7\n    h(6, 2) returns 8\n    h(7, 2) should return 9.\n    h(8, 2) = 10\n'
              '    h(9, 2) # => 11\n    """\n')
    assert [e for _, e in pairs(prompt, "h")] == [str(n) for n in range(3, 12)]


def test_for_the_output_should_be_and_input_output_blocks():
    prompt = ('def k(lst, n):\n    """Doc.\n    For lst = [1,2], n = 3 the output should be 9.\n'
              '    Example 1:\n        Input: lst = [4], n = 1\n        Output: [4] # only one\n    """\n')
    assert pairs(prompt, "k") == [("k([1, 2], 3)", "9"), ("k([4], 1)", "[4]")]


def test_single_argument_input_block_and_lower_case_booleans():
    prompt = 'def p(x):\n    """Doc.\n    Input: [4,2,3]\n    Output: [2, 1]\n    p(5) => true\n    """\n'
    assert sorted(pairs(prompt, "p")) == [("p(5)", "True"), ("p([4, 2, 3])", "[2, 1]")]


def test_ambiguous_examples_are_left_out():
    # A worked result that does not add up, one that is not arithmetic, and one on the next line are left out too.
    prompt = ('def q(s, n):\n    """Doc.\n    q(a) => False\n    q("x", 1) -> 19 - 5 - 6 = 9\n'
              '    other_name("x", 1) == 3\n    q("y", 2) == len("ab") = 2\n    q("w", 4)\n      = 1 + 1 = 2\n'
              '    q("u", 5) == "ab" * 3 = 6\n    q("t", 6) == 1 // 0 = 1\n    q("z", 3) == "ok"\n    """\n')
    assert pairs(prompt, "q") == [("q('z', 3)", "'ok'")]


def test_a_worked_result_that_adds_up_is_kept():
    prompt = ('def q(s, n):\n    """Doc.\n    q("x", 19) -> 19 - 5 - 6 = 8\n    q("y", 2) == 1 + 9 + 0 = 10.\n'
              '    q("v", 7) => 7 // 2 * 1.5 = 4.5\n    """\n')
    assert pairs(prompt, "q") == [("q('x', 19)", "8"), ("q('y', 2)", "10"), ("q('v', 7)", "4.5")]


def test_input_block_with_one_named_line_per_parameter():
    # HumanEval/115's form: the docstring after an import, names that end with the parameter's name.
    prompt = ('def fill(grid, capacity):\n    import math\n    """Doc.\n    Example 1:\n        Input: \n'
              '            grid : [[0,1], [1,1]]\n            bucket_capacity : 2\n        Output: 2\n'
              '    Example 2:\n        Input:\n            grid : [[1]]\n            size : 2\n        Output: 1\n'
              '    """\n')
    assert pairs(prompt, "fill") == [("fill([[0, 1], [1, 1]], 2)", "2")]


def test_assignment_worked_steps_then_return():
    prompt = ('def by_length(arr):\n    """Doc.\n      arr = [2, 1, 3]\n            -> sort arr -> [1, 2, 3]\n'
              '            -> reverse arr -> [3, 2, 1]\n      return ["Three", "Two", "One"]\n\n'
              '      arr = []\n      return []\n      arr = [1, -1 , 55]\n      return = [\'One\']\n'
              '      other = [4]\n      return [1]\n    """\n')
    assert pairs(prompt, "by_length") == [("by_length([2, 1, 3])", "['Three', 'Two', 'One']"),
                                          ("by_length([])", "[]"), ("by_length([1, -1, 55])", "['One']")]


def test_multi_line_call_and_a_string_followed_by_an_explanation():
    prompt = ('def m(rows, x):\n    """Doc.\n    m([\n      [1, 2],\n      [3, 1]\n    ], 1) == [(0, 0), (1, 1)]\n'
              '    m([], 1) # => \'No\' (nothing to find)\n    """\n')
    assert pairs(prompt, "m") == [("m([[1, 2], [3, 1]], 1)", "[(0, 0), (1, 1)]"), ("m([], 1)", "'No'")]


def test_mbpp_assert_lines():
    prompt = ('"""\nWrite a function.\nassert set(sim((3, 4), (4, 5))) == set((4,))\nassert not odd(2)\n'
              'assert math.isclose(area(1), 3.14, rel_tol=0.01)\n"""\n')
    assert [(e.call, e.expected) for e in assert_line_examples(prompt, "sim")] == [("set(sim((3, 4), (4, 5)))",
                                                                                    "set((4,))")]
    assert [(e.call, e.expected) for e in assert_line_examples(prompt, "odd")] == [("odd(2)", "False")]
    assert assert_line_examples(prompt, "area") == []


def test_check_code_runs_the_examples_against_a_candidate():
    prompt = 'def f(x):\n    """Doc.\n    >>> f(2)\n    4.0\n    >>> f(3)\n    (9, 1)\n    """\n'
    code = check_code(extract_examples(prompt, "f"))
    good, bad = {}, {}
    exec(code, good)
    exec(code, bad)

    def right(x):
        return 4.0000001 if x == 2 else (9, 1)

    def wrong(x):
        return 4.0 if x == 2 else [9, 1]  # a list is not the tuple the example shows

    good["check"](right)
    try:
        bad["check"](wrong)
    except AssertionError as exc:
        assert "f(3) == (9, 1)" in str(exc)
    else:
        raise AssertionError("the wrong candidate passed")


def test_doctest_written_as_an_equality_claim():
    prompt = 'def s(xs):\n    """Doc.\n    >>> s([3, 1]) == [1, 3]\n    >>> s([]) []\n    """\n'
    examples = extract_examples(prompt, "s")
    assert [(e.call, e.expected, e.source) for e in examples] == [("s([3, 1])", "[1, 3]", "doctest")]


def test_malformed_prompts_give_no_examples_and_no_error():
    # A dataset row whose prompt is broken must cost that task its public tests, not the run.
    doctest_of_f = '    """Doc.\n    >>> f(1)\n    1\n    """\n'
    broken = {
        "does not parse": 'def f(:\n' + doctest_of_f,
        "no docstring": 'def f(x):\n    return x\n',
        "a statement before the string": 'def f(x):\n    x = 1\n' + doctest_of_f,
        "doctest output indented less than its prompt": 'def f(x):\n    """Doc.\n        >>> f(1)\n      1\n    """\n',
        "unbalanced prose call": 'def f(x):\n    """Doc.\n    f(1, 2 => 3\n    """\n',
        "doctest claim that does not parse": 'def f(x):\n    """Doc.\n    >>> f(1) == (\n    True\n    """\n',
    }
    for why, prompt in broken.items():
        assert extract_examples(prompt, "f") == [], why
    assert extract_examples('def f(x):\n' + doctest_of_f, "g") == []  # the entry point is not in the prompt
    assert pairs('def f(x):\n' + doctest_of_f, "f") == [("f(1)", "1")]  # the same docstring, well formed, is read
