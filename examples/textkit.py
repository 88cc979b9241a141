"""Small text utilities, left for atlas-ls to write."""


def slugify(title: str) -> str:
    """Turn a title into a URL slug: lower-case words joined by single hyphens.

    Characters other than letters, digits and spaces are dropped; runs of spaces count as one.

    >>> slugify("Hello, World!")
    'hello-world'
    """
    ...


def is_palindrome(text: str) -> bool:
    """Whether text reads the same backwards, ignoring case and every character that is not a letter."""
    raise NotImplementedError


def run_length_encode(text: str) -> str:
    """Each run of one repeated character becomes the character followed by the run's length.

    >>> run_length_encode("aaabcc")
    'a3b1c2'
    """
    pass
