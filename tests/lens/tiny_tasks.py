"""Tiny Python functions with known tests, for gathering a real labelled set from the default model.

Chosen so that a 0.5B model sampled at a high temperature gets each right sometimes and wrong sometimes: a mix of
easy ones and ones with a trap (an edge case, an off-by-one, an ordering rule)."""

from __future__ import annotations

TASKS: list[tuple[str, str, str]] = [  # (entry point, signature and docstring, assertions)
    ("second_largest", 'def second_largest(xs: list[int]) -> int | None:\n    """The second largest DISTINCT value '
     'in xs, or None when there is none."""',
     "assert second_largest([3, 1, 3, 2]) == 2\nassert second_largest([5, 5]) is None\n"
     "assert second_largest([]) is None\nassert second_largest([-1, -7]) == -7"),
    ("run_length", 'def run_length(s: str) -> list[tuple[str, int]]:\n    """Run-length encode s: consecutive '
     'equal characters become (char, count), in order."""',
     "assert run_length('aaabcc') == [('a', 3), ('b', 1), ('c', 2)]\nassert run_length('') == []\n"
     "assert run_length('abab') == [('a', 1), ('b', 1), ('a', 1), ('b', 1)]"),
    ("balanced", 'def balanced(s: str) -> bool:\n    """True when the brackets ()[]{} in s are balanced and properly '
     'nested; other characters are ignored."""',
     "assert balanced('a(b[c]{d})')\nassert not balanced('(]')\nassert not balanced('((')\n"
     "assert balanced('')\nassert not balanced(')(')"),
    ("to_roman", 'def to_roman(n: int) -> str:\n    """Roman numeral for 1 <= n <= 3999."""',
     "assert to_roman(4) == 'IV'\nassert to_roman(9) == 'IX'\nassert to_roman(1994) == 'MCMXCIV'\n"
     "assert to_roman(3999) == 'MMMCMXCIX'"),
    ("chunk", 'def chunk(xs: list, size: int) -> list[list]:\n    """Split xs into consecutive lists of `size` items; '
     'the last may be shorter."""',
     "assert chunk([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]\nassert chunk([], 3) == []\n"
     "assert chunk([1, 2], 5) == [[1, 2]]"),
    ("is_leap", 'def is_leap(year: int) -> bool:\n    """Gregorian leap year."""',
     "assert is_leap(2000)\nassert not is_leap(1900)\nassert is_leap(2024)\nassert not is_leap(2023)"),
    ("title_case", 'def title_case(s: str) -> str:\n    """Capitalise the first letter of every word (words are '
     'separated by single spaces) and lower-case the rest."""',
     "assert title_case('hello WORLD') == 'Hello World'\nassert title_case('a') == 'A'\n"
     "assert title_case('') == ''"),
    ("digits_sum", 'def digits_sum(n: int) -> int:\n    """Sum of the decimal digits of n (n may be negative)."""',
     "assert digits_sum(123) == 6\nassert digits_sum(-45) == 9\nassert digits_sum(0) == 0"),
    ("merge_intervals", 'def merge_intervals(xs: list[tuple[int, int]]) -> list[tuple[int, int]]:\n    """Merge '
     'overlapping or touching closed intervals; the result is sorted by start."""',
     "assert merge_intervals([(5, 6), (1, 3), (2, 4)]) == [(1, 4), (5, 6)]\n"
     "assert merge_intervals([(1, 2), (2, 3)]) == [(1, 3)]\nassert merge_intervals([]) == []"),
    ("rotate", 'def rotate(xs: list, k: int) -> list:\n    """Rotate xs to the right by k places (k may exceed '
     'len(xs) or be negative)."""',
     "assert rotate([1, 2, 3, 4], 1) == [4, 1, 2, 3]\nassert rotate([1, 2, 3], 4) == [3, 1, 2]\n"
     "assert rotate([1, 2, 3], -1) == [2, 3, 1]\nassert rotate([], 3) == []"),
    ("vowel_count", 'def vowel_count(s: str) -> int:\n    """Number of vowels (a, e, i, o, u, either case) in s."""',
     "assert vowel_count('Hello World') == 3\nassert vowel_count('xyz') == 0\nassert vowel_count('AEIOU') == 5"),
    ("flatten", 'def flatten(xs: list) -> list:\n    """Flatten arbitrarily nested lists into one list, in order."""',
     "assert flatten([1, [2, [3, [4]]], 5]) == [1, 2, 3, 4, 5]\nassert flatten([]) == []\n"
     "assert flatten([[], [[]]]) == []"),
    ("median", 'def median(xs: list[float]) -> float:\n    """Median of a non-empty list (mean of the two middle values '
     'when the length is even); xs is not modified."""',
     "data = [3, 1, 2]\nassert median(data) == 2\nassert data == [3, 1, 2]\nassert median([4, 1, 3, 2]) == 2.5"),
    ("word_freq", 'def word_freq(text: str) -> list[tuple[str, int]]:\n    """Words of text (lower-cased, split on '
     'whitespace) with their counts, most frequent first, ties in alphabetical order."""',
     "assert word_freq('b a B c a b') == [('b', 3), ('a', 2), ('c', 1)]\nassert word_freq('') == []"),
    ("caesar", 'def caesar(s: str, shift: int) -> str:\n    """Shift letters by `shift` places in the alphabet, '
     'wrapping around and keeping case; other characters unchanged."""',
     "assert caesar('abc', 1) == 'bcd'\nassert caesar('XyZ', 2) == 'ZaB'\nassert caesar('a-b', -1) == 'z-a'"),
    ("primes_below", 'def primes_below(n: int) -> list[int]:\n    """All primes p with p < n, ascending."""',
     "assert primes_below(10) == [2, 3, 5, 7]\nassert primes_below(2) == []\nassert primes_below(3) == [2]"),
]
