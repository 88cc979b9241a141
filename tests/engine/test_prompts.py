"""What the model is asked and how its code is read back: the cases the pipeline tests do not reach (methods,
LeetCode classes, long context, replies in several blocks, replies that never parse, option letters)."""

from engine import prompts
from engine.task import Task

HEADER = 'def area(w, h):\n    """Area of a w by h rectangle."""\n'


def function_task(**kw) -> Task:
    return Task(prompt=kw.pop("prompt", HEADER), entry_point=kw.pop("entry_point", "area"), **kw)


# --- the request ---

def test_a_method_is_asked_for_as_a_method():
    method = Task(prompt="    def size(self):\n        \"\"\"Number of items.\"\"\"\n", entry_point="size")
    text = prompts.user_message(method)
    assert "Python method `size`" in text and "complete method" in text
    assert "Python function `area`" in prompts.user_message(function_task())


def test_long_context_is_cut_at_a_line_and_marked():
    lines = tuple(f"CONSTANT_{i} = {i}" for i in range(400))
    text = prompts.user_message(function_task(context=("\n".join(lines),)))
    shown = text.split("The code around it, which it may use:\n```python\n")[1].split("\n```")[0]
    assert shown.endswith("\n# ...")
    assert len(shown) <= prompts.MAX_CONTEXT_CHARS + len("\n# ...")
    assert all(line in lines for line in shown.splitlines()[:-1])  # whole lines only
    assert "The code around it" not in prompts.user_message(function_task(context=("  ", "")))


def test_a_program_with_starter_code_asks_to_complete_it():
    task = Task(prompt="Return the sum of nums.", kind="program",
                starter_code="class Solution:\n    def total(self, nums):\n")
    text = prompts.user_message(task)
    assert "Complete this code" in text and "class Solution:" in text and "standard input" not in text
    assert prompts.assistant_prefill(task) == prompts.PREFILL


def test_hints_are_listed_as_optional():
    text = prompts.user_message(function_task(), ["use a set", "sort first"])
    assert "follow one only if it fits" in text and "- use a set\n- sort first" in text
    assert "Hints" not in prompts.user_message(function_task())


def test_a_choice_asks_for_an_answer_line_and_has_no_prefill_or_stop():
    task = Task(prompt="Which is a noble gas?\nA) Ne\nB) Na", kind="choice")
    assert "'Answer: X'" in prompts.user_message(task)
    assert prompts.assistant_prefill(task) == "" and prompts.stop_sequences(task) == ()
    assert prompts.stop_sequences(function_task()) == prompts.STOP


def test_the_header_is_prefilled_only_when_the_prompt_ends_with_the_entry_point():
    assert prompts.assistant_prefill(function_task()) == prompts.PREFILL + HEADER
    followed = function_task(prompt=HEADER + "    pass\n\ndef other():\n    pass\n")
    assert prompts.assistant_prefill(followed) == prompts.PREFILL
    broken = function_task(prompt="def area(w, h:\n")
    assert prompts.assistant_prefill(broken) == prompts.PREFILL


def test_the_repair_request_says_how_the_first_attempt_failed_without_its_code():
    messages = prompts.build_repair_messages(function_task(), [], "test_area: assert 6 == 5\n")
    assert messages[0]["role"] == "system"
    assert messages[-1]["content"].endswith("Careful: a first attempt failed these tests:\ntest_area: assert 6 == 5")
    assert messages[-1]["content"].startswith(prompts.user_message(function_task()))


def test_written_tests_are_requested_by_count_and_prefilled_with_an_assert():
    messages = prompts.build_test_messages(function_task(), 4)
    assert "Write 4 test cases for `area`" in messages[-1]["content"] and HEADER.strip() in messages[-1]["content"]
    assert prompts.test_prefill(function_task()) == prompts.PREFILL + "assert area("


# --- reading the reply (it continues the prefill, which opened a code block) ---

def test_of_several_blocks_the_one_defining_the_entry_point_wins():
    task = function_task(prompt="Write area(w, h).")
    reply = ("print(area(2, 3))\n```\nThe function:\n```python\ndef area(w, h):\n    return w * h\n```\n"
             "```python\ndef area(w, h):\n    return 0\n```")
    assert prompts.extract(reply, task) == "def area(w, h):\n    return w * h\n"


def test_without_a_defining_block_the_longest_that_parses_wins():
    task = Task(prompt="Read n.", kind="program")
    reply = "this is ( not python at all !!\n```\nor:\n```python\nn = int(input())\nprint(n * 2)\n```"
    assert prompts.extract(reply, task) == "n = int(input())\nprint(n * 2)\n"
    assert prompts.extract("```", task) == "\n"  # an empty block: nothing to run, nothing invented


def test_a_body_only_reply_without_a_header_to_wrap_it_stays_as_written():
    unwrappable = function_task(prompt="Compute the area.")  # no def in the prompt to wrap the body in
    assert prompts.extract("return w * h\n```", unwrappable) == "return w * h\n"


def test_a_reply_that_never_parses_comes_back_unchanged():
    task = function_task(prompt="Compute the area.")
    assert prompts.extract("def area(w, h)\n    return w *\n```", task) == "def area(w, h)\n    return w *\n"


def test_a_method_in_a_class_is_kept_with_its_class_and_decorators():
    task = Task(prompt="class Solution:\n    def area(self, w, h):\n", kind="function", entry_point="area")
    reply = ("import functools\n\nclass Solution:\n    def area(self, w, h):\n        return w * h\n\n"
             "print(Solution().area(2, 3))\n```")
    assert prompts.extract(reply, task) == (
        "import functools\n\nclass Solution:\n    def area(self, w, h):\n        return w * h\n")
    decorated = "@functools.cache\ndef area(w, h):\n    return w * h\n\nLIMIT = 10\nx = area(1, 2)\n```"
    assert prompts.extract(decorated, function_task(prompt="Area.")) == (
        "@functools.cache\ndef area(w, h):\n    return w * h\n\nLIMIT = 10\n")


def test_option_letters_from_answer_lines_or_the_last_lone_letter():
    assert prompts.extract_choice("A looks right, but the answer is: b") == "B"
    assert prompts.extract_choice("Answer: C\n...on reflection, Answer = D") == "D"
    assert prompts.extract_choice("Between A and E, I pick E.") == "E"
    assert prompts.extract_choice("no idea") == ""


def _kept_text(reply: str, code: str) -> list[str]:
    data = reply.encode()
    return [data[start:end].decode() for start, end in prompts.kept_reply_spans(reply, code)]


def test_kept_spans_are_the_body_lines_without_the_demonstration():
    task = Task(prompt='def add(a, b):\n    """Add."""\n', entry_point="add")
    reply = "    total = a + b\n\n    return total\n\n# Example usage\nprint(add(1, 2))\nassert add(0, 0) == 0\n"
    code = prompts.extract(reply, task)
    assert "print" not in code and "total = a + b" in code  # extraction dropped the demonstration
    assert _kept_text(reply, code) == ["    total = a + b\n", "    return total\n"]  # the blank line scores nothing


def test_kept_spans_are_utf8_byte_offsets():
    task = Task(prompt='def add(a, b):\n    """Add."""\n', entry_point="add")
    reply = '    # é: the sum\n    return a + b\n\nprint("résumé", add(1, 2))\n'
    comment = len("    # é: the sum\n".encode())
    assert comment == len("    # é: the sum\n") + 1  # "é" is two bytes
    assert prompts.kept_reply_spans(reply, prompts.extract(reply, task)) == [(0, comment), (comment, comment + 17)]


def test_no_kept_spans_when_nothing_was_kept():
    assert prompts.kept_reply_spans("Sorry, I cannot help with that.", "def f():\n    pass\n") == []
