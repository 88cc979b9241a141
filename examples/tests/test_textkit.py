from textkit import is_palindrome, run_length_encode, slugify


def test_slugify_joins_lower_case_words():
    assert slugify("Hello World") == "hello-world"


def test_slugify_drops_punctuation_and_extra_spaces():
    assert slugify("  Ready,   Set...  Go! ") == "ready-set-go"
    assert slugify("Python 3.12 is out") == "python-312-is-out"


def test_is_palindrome():
    assert is_palindrome("A man, a plan, a canal: Panama")
    assert is_palindrome("")
    assert not is_palindrome("atlas")


def test_run_length_encode():
    assert run_length_encode("aaabcc") == "a3b1c2"
    assert run_length_encode("") == ""
    assert run_length_encode("zzzzzzzzzzzz") == "z12"
