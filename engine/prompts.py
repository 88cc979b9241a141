"""What the model is asked, and how code is read back out of what it says.

The prompt is a chat in the model's own template (`Runtime.format_chat`), with the assistant's reply prefilled with
the opening of a Python code block (for a function, with its header and docstring too): a small model then writes
code at once instead of prose, and the closing fence is the stop sequence. A "function" task asks for the complete function (signature included), a "program" task for
a whole program reading stdin (or the completed `class Solution` of a LeetCode-style starter), a "choice" task for
an option letter.

Extraction keeps what a solution needs (imports, helpers, constants, the entry point's `def`) and drops what a model
adds to show off (example calls, prints, asserts, `if __name__ == "__main__":` blocks); a reply cut off by the token
budget is trimmed back to its last complete statement.
"""

from __future__ import annotations

import ast
import difflib
import re
import textwrap
from typing import Sequence

from engine.task import Task

FENCE = "```"
PREFILL = "```python\n"
STOP = ("\n```",)
SYSTEM = ("You are an expert Python programmer. You write correct, simple and efficient code that passes the "
          "user's tests.")
MAX_CONTEXT_CHARS = 3000

_KEEP = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign)


def build_messages(task: Task, hints: Sequence[str] = ()) -> list[dict[str, str]]:
    """The chat for one task: a system line and one user turn."""
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user_message(task, hints)}]


def build_repair_messages(task: Task, hints: Sequence[str], failure: str) -> list[dict[str, str]]:
    """The task's chat with how an earlier answer failed the tests added to the request. The failed code itself is
    left out: shown its failed code, the 1.5B copied it back in 18 of 24 replies (6 HumanEval tasks no candidate had
    passed) and fixed none; told only how it failed, it copied 3 and solved one. (The 0.5B, on 15 such tasks: 52
    and 11 copies of 60, none solved either way.)"""
    messages = build_messages(task, hints)
    request = messages[-1]["content"] + f"\n\nCareful: a first attempt failed these tests:\n{failure.strip()}"
    return messages[:-1] + [{"role": "user", "content": request}]


def build_test_messages(task: Task, count: int) -> list[dict[str, str]]:
    """A request for `count` test calls of a function task, written from its specification alone: their inputs tell
    candidates apart, their expected values (often wrong from a small model) break ties among them."""
    entry = task.entry_point
    request = (f"Here is a Python function's specification:\n```python\n{task.prompt.rstrip()}\n```\n\n"
               f"Write {count} test cases for `{entry}`, one per line, each as `assert {entry}(...) == ...` with "
               f"literal arguments and the exact result the specification asks for. Cover the edge cases it "
               f"describes. Reply with only the asserts in one ```python code block.")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": request}]


def test_prefill(task: Task) -> str:
    """The reply starts inside a code block with the first assert's opening, so the model writes calls at once."""
    return f"{PREFILL}assert {task.entry_point}("


def user_message(task: Task, hints: Sequence[str] = ()) -> str:
    if task.kind == "choice":
        return (f"{task.prompt.strip()}\n\nThink briefly, then give your final answer on the last line as "
                f"'Answer: X', where X is the letter of the correct option.")
    parts = []
    if task.kind == "program":
        parts.append(_program_request(task))
    else:
        parts.append(_function_request(task))
    if hints:
        parts.append("Hints from similar tasks solved before (follow one only if it fits this task):\n"
                     + "\n".join(f"- {h}" for h in hints))
    return "\n\n".join(parts)


def _function_request(task: Task) -> str:
    what = "method" if re.search(r"def\s+\w+\s*\(\s*(self|cls)\b", task.prompt) else "function"
    text = (f"Complete the Python {what} `{task.entry_point}` below. Reply with the complete {what}, signature "
            f"included, in one ```python code block; keep its name and parameters.")
    context = _context_text(task)
    if context:
        text += f"\n\nThe code around it, which it may use:\n```python\n{context}\n```"
    return text + f"\n\n```python\n{task.prompt.rstrip()}\n```"


def _program_request(task: Task) -> str:
    if task.starter_code.strip():
        return (f"{task.prompt.strip()}\n\nComplete this code and reply with all of it in one ```python code "
                f"block:\n```python\n{task.starter_code.rstrip()}\n```")
    return (f"{task.prompt.strip()}\n\nWrite a complete Python 3 program that reads the input from standard input "
            f"and prints the answer to standard output. Reply with the program in one ```python code block.")


def _context_text(task: Task) -> str:
    text = "\n\n".join(s.strip() for s in task.context if s.strip())
    return text if len(text) <= MAX_CONTEXT_CHARS else text[:MAX_CONTEXT_CHARS].rsplit("\n", 1)[0] + "\n# ..."


def assistant_prefill(task: Task) -> str:
    """The start of the reply, written for the model: it continues from inside a code block. For a function the
    block already holds the task's own header and docstring, so the model writes only the body: fewer tokens (the
    docstring is not copied out again), and the name and parameters cannot drift."""
    if task.kind == "choice":
        return ""
    if task.kind == "function" and _header_prefillable(task):
        return PREFILL + task.prompt.rstrip() + "\n"
    return PREFILL


def _header_prefillable(task: Task) -> bool:
    """The prompt ends with the entry point's header (and docstring): a body can follow it directly."""
    try:
        tree = ast.parse(task.prompt.rstrip() + "\n    pass\n")
    except SyntaxError:
        return False
    last = tree.body[-1] if tree.body else None
    return isinstance(last, (ast.FunctionDef, ast.AsyncFunctionDef)) and last.name == task.entry_point


def stop_sequences(task: Task) -> tuple[str, ...]:
    return () if task.kind == "choice" else STOP


# --- reading the reply ---


def extract(reply: str, task: Task) -> str:
    """The answer in a generated reply (which continues the prefill): code, or an option letter for "choice"."""
    if task.kind == "choice":
        return extract_choice(reply)
    text = assistant_prefill(task) + reply
    code = _pick_block(_code_blocks(text), task.entry_point) if FENCE in text else text
    code = _complete_statements(textwrap.dedent(code).strip("\n") + "\n")
    if task.kind == "program":
        return code
    return _function_code(code, task)


def kept_reply_spans(reply: str, code: str) -> list[tuple[int, int]]:
    """Byte ranges ([start, end) of the reply's UTF-8 text) of the lines that extraction kept in `code`: what the
    model wrote as its solution, without the closing fence, prose or the demonstrations extraction dropped. Lines are
    matched in order, ignoring indentation (a body-only reply is indented under the task's header) and blank lines."""
    lines = reply.splitlines(keepends=True)
    wanted = [line.strip() for line in code.splitlines()]
    written = [line.strip() or None for line in lines]  # None matches nothing: blank lines are not kept
    matcher = difflib.SequenceMatcher(None, written, wanted, autojunk=False)
    kept = {i for block in matcher.get_matching_blocks() for i in range(block.a, block.a + block.size)}
    spans, offset = [], 0
    for i, line in enumerate(lines):
        size = len(line.encode("utf-8"))
        if i in kept:
            spans.append((offset, offset + size))
        offset += size
    return spans


def extract_choice(reply: str) -> str:
    found = re.findall(r"answer\s*(?:is)?\s*[:=]?\s*\(?([A-J])\)?\b", reply, re.IGNORECASE)
    if found:
        return found[-1].upper()
    letters = re.findall(r"\b([A-J])\b", reply)
    return letters[-1] if letters else ""


def _code_blocks(text: str) -> list[str]:
    """Contents of ``` fences; an unclosed last fence (cut off, or stopped at its closing) still counts."""
    return [m.group(1) for m in re.finditer(r"```[\w+-]*[^\S\n]*\n(.*?)(?:```|\Z)", text, re.DOTALL)]


def _pick_block(blocks: list[str], entry_point: str | None) -> str:
    """The first block that defines the entry point; else the longest that parses; else the longest."""
    if not blocks:
        return ""
    if entry_point:
        defining = [b for b in blocks if re.search(rf"\bdef\s+{re.escape(entry_point)}\s*\(", b)]
        if defining:
            return defining[0]
    return max(blocks, key=lambda b: (_parses(b), len(b)))


def _parses(code: str) -> bool:
    try:
        ast.parse(textwrap.dedent(code))
        return True
    except SyntaxError:
        return False


def _complete_statements(code: str) -> str:
    """Drop trailing lines until the code parses (a reply cut off mid-statement), if that ever happens."""
    lines = code.splitlines(keepends=True)
    for end in range(len(lines), 0, -1):
        candidate = "".join(lines[:end])
        try:
            ast.parse(candidate)
            return candidate
        except SyntaxError:
            continue
    return code


def _function_code(code: str, task: Task) -> str:
    """Imports, helpers and the entry point's def; a reply that is only a body gets the task's signature."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    if task.entry_point and task.entry_point not in names and not _defined_in_class(tree, task.entry_point):
        wrapped = _with_signature(code, task)
        return wrapped if wrapped is not None else code
    lines = code.splitlines(keepends=True)
    entry_defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                  and n.name == task.entry_point]
    # A reply that wrote the function again after the prefilled header: the last definition is the one that runs.
    superseded = {id(n) for n in entry_defs[:-1]}
    kept = [_segment(lines, node) for node in tree.body
            if _belongs(node, task.entry_point) and id(node) not in superseded]
    return "\n".join(k.rstrip() + "\n" for k in kept) if kept else code


def _belongs(node: ast.stmt, entry_point: str | None) -> bool:
    """Part of the solution, not a demonstration: `result = f(3)` calls the entry point at import time."""
    if not isinstance(node, _KEEP):
        return False
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        return not any(isinstance(n, ast.Call) and getattr(n.func, "id", None) == entry_point for n in ast.walk(node))
    return True


def _defined_in_class(tree: ast.Module, name: str) -> bool:
    return any(isinstance(n, ast.ClassDef) and any(getattr(m, "name", None) == name for m in n.body)
               for n in tree.body)


def _segment(lines: list[str], node: ast.stmt) -> str:
    decorators = getattr(node, "decorator_list", None)
    start = (decorators[0].lineno if decorators else node.lineno) - 1
    return "".join(lines[start: node.end_lineno])


def _with_signature(body: str, task: Task) -> str | None:
    """The task's own header and docstring around a body-only reply, if that makes a valid definition."""
    header = task.prompt.rstrip()
    if not re.search(rf"\bdef\s+{re.escape(task.entry_point or '')}\s*\(", header):
        return None
    candidate = header + "\n" + textwrap.indent(body, "    ")
    try:
        ast.parse(candidate)
    except SyntaxError:
        return None
    return candidate
