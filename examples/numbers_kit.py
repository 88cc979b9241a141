"""Small number utilities, left for atlas-ls to write."""


def second_largest(values: list[int]) -> int | None:
    """The second largest distinct value in values, or None when there are fewer than two distinct values."""
    ...


def running_max(values: list[int]) -> list[int]:
    """The largest value seen so far, at every position of values.

    >>> running_max([1, 3, 2, 5, 4])
    [1, 3, 3, 5, 5]
    """
    ...
