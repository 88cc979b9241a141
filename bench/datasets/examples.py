"""Public examples from a function's docstring: `>>>` doctests and the prose forms HumanEval uses
(`f(x) == y`, `f(x) ➞ y`, `f(x) => y`, `f(x) returns y`, "For lst = [...] the output should be y",
"Input: ... / Output: ...", "arr = [...] ... return [...]"). Only unambiguous examples are kept: the call's
arguments and the expected value must be Python literals, the called name must be the entry point, and nothing but a
comment or a full stop may follow the value, except a worked result whose arithmetic gives the value it states
(`f(x) -> 19 - 5 - 6 = 8`). Whether an example agrees with the reference solution is checked by the caller (in the
sandbox).
"""

from __future__ import annotations

import ast
import doctest
import inspect
import io
import math
import re
import tokenize
from dataclasses import dataclass

# Examples whose expected value holds a float are compared with a tolerance, containers element by element, so that
# an example written as 6.00 or 0.5 is not lost to float rounding; the others are plain `==` asserts.
CLOSE_HELPER = '''
def _bench_close(got, want):
    import math
    if isinstance(want, float) or isinstance(got, float):
        try:
            return math.isclose(float(got), float(want), rel_tol=1e-6, abs_tol=1e-6)
        except (TypeError, ValueError):
            return False
    if isinstance(want, (list, tuple)) and isinstance(got, (list, tuple)) and type(got) == type(want):
        return len(got) == len(want) and all(_bench_close(g, w) for g, w in zip(got, want))
    return type(got) == type(want) and got == want if isinstance(want, bool) or isinstance(got, bool) else got == want
'''


@dataclass(frozen=True)
class Example:
    call: str  # a Python expression calling the entry point with literal arguments
    expected: str  # a Python literal
    source: str  # "doctest" or "prose"
    name: str = ""  # the entry point's name

    def assertion(self, target: str = "candidate") -> str:
        """One assert line with the entry point's name replaced by `target` (HumanEval's `check(candidate)`)."""
        call = ast.parse(self.call, mode="eval")
        for node in ast.walk(call):
            if isinstance(node, ast.Name) and node.id == self.entry_point:
                node.id = target
        shown = f"{self.call} == {self.expected}"
        if self.has_float:
            return f"assert _bench_close({ast.unparse(call)}, {self.expected}), {shown!r}"
        # A plain `==` with a literal: the sandbox compares it in the parent, out of the candidate's reach.
        return f"assert {ast.unparse(call)} == {self.expected}, {shown!r}"

    @property
    def has_float(self) -> bool:
        """Whether the expected value holds a float (compared with a tolerance, like 6.00 against 6.0000001)."""
        return any(isinstance(n, ast.Constant) and isinstance(n.value, float)
                   for n in ast.walk(ast.parse(self.expected, mode="eval")))

    @property
    def entry_point(self) -> str:
        return self.name


def check_code(examples: list[Example]) -> str:
    """HumanEval-style test code: `check(candidate)` asserting every example."""
    lines = [CLOSE_HELPER, "def check(candidate):"]
    lines += [f"    {example.assertion()}" for example in examples] or ["    pass"]
    return "\n".join(lines) + "\n"


def docstring_of(prompt: str, entry_point: str) -> tuple[str, list[str]]:
    """The entry point's docstring as written in the source (so `"a\\nb"` stays two characters, as the model
    reads it) and its parameter names; ("", []) when the prompt does not parse or there is no docstring."""
    try:
        tree = ast.parse(prompt)
    except SyntaxError:
        return "", []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == entry_point:
            params = [a.arg for a in node.args.posonlyargs + node.args.args]
            # The first bare string, after any imports (HumanEval/115 imports math above its docstring).
            first = next((s for s in node.body if not isinstance(s, (ast.Import, ast.ImportFrom))), None)
            if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                return "", params
            segment = ast.get_source_segment(prompt, first.value) or ""
            body = re.sub(r"^[rRuU]?(\"\"\"|\'\'\'|\"|\')", "", segment)
            body = re.sub(r"(\"\"\"|\'\'\'|\"|\')$", "", body)
            return inspect.cleandoc(body), params
    return "", []


def extract_examples(prompt: str, entry_point: str) -> list[Example]:
    """Every unambiguous example in the entry point's docstring, doctests first, without duplicates."""
    doc, params = docstring_of(prompt, entry_point)
    if not doc:
        return []
    found = doctest_examples(doc, entry_point)
    if not found:
        found = prose_call_examples(doc, entry_point) + for_the_output_examples(doc, entry_point, params) \
            + input_output_examples(doc, entry_point, params) + assignment_return_examples(doc, entry_point, params)
    unique: dict[tuple[str, str], Example] = {}
    for example in found:
        unique.setdefault((example.call, example.expected), example)
    return list(unique.values())


# --- doctests ---------------------------------------------------------------------------------------------------

def doctest_examples(doc: str, entry_point: str) -> list[Example]:
    try:
        parsed = doctest.DocTestParser().get_examples(doc)
    except ValueError:  # inconsistent indentation inside the docstring
        return []
    examples = []
    for item in parsed:
        source, want = item.source.strip(), item.want.strip()
        if want in ("", "True"):  # `>>> f(x) == y`, written as a claim rather than a call and its output
            claim = _claimed_equality(source, entry_point)
            if claim:
                examples.append(Example(*claim, "doctest", entry_point))
                continue
        call = _literal_call(source, entry_point) or _wrapped_call(source, entry_point)
        expected = _literal(want)
        if call and expected is not None:
            examples.append(Example(call, expected, "doctest", entry_point))
    return examples


def _claimed_equality(source: str, entry_point: str) -> tuple[str, str] | None:
    try:
        node = ast.parse(source, mode="eval").body
    except SyntaxError:
        return None
    if not (isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq)):
        return None
    call = _literal_call(ast.unparse(node.left), entry_point)
    expected = _literal(ast.unparse(node.comparators[0]))
    return (call, expected) if call and expected is not None else None


# --- prose: `f(args) <separator> value` -------------------------------------------------------------------------

SEPARATOR = re.compile(r"\s*(?:#\s*)?(?:==>|=>|==|➞|->|⇒|=|should\s+return|returns|return)\s*", re.IGNORECASE)


def prose_call_examples(doc: str, entry_point: str) -> list[Example]:
    examples = []
    for match in re.finditer(rf"(?<![\w.]){re.escape(entry_point)}\s*\(", doc):
        end = _balanced_end(doc, match.end() - 1)
        if end is None:
            continue
        call = _literal_call(doc[match.start():end], entry_point)
        separator = SEPARATOR.match(doc, end)
        if not call or not separator:
            continue
        expected = _value_at(doc, separator.end())
        if expected is None and "\n" not in separator.group():  # a worked result stays on the call's line
            expected = _worked_result(doc[separator.end():].split("\n", 1)[0])
        if expected is not None:
            examples.append(Example(call, expected, "prose", entry_point))
    return examples


ARITHMETIC = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Add, ast.Sub, ast.Mult, ast.Div,
              ast.FloorDiv, ast.Mod, ast.USub, ast.UAdd)


def _worked_result(line: str) -> str | None:
    """"19 - 5 - 6 = 8": the number a worked result states, kept only when its arithmetic (number literals and
    + - * / // % alone) gives that number; a worked result that does not add up leaves the example out."""
    worked, equals, stated = line.rpartition("=")
    value = _literal(_without_full_stop(stated.strip()))
    number = ast.literal_eval(value) if value is not None else None
    if not equals or not _is_number(number):
        return None
    try:
        tree = ast.parse(worked.strip(), mode="eval")
    except SyntaxError:
        return None
    nodes = list(ast.walk(tree))
    # Numbers only: a string constant could be multiplied into gigabytes by a hostile dataset.
    if not all(isinstance(n, ARITHMETIC) and (not isinstance(n, ast.Constant) or _is_number(n.value))
               for n in nodes) or isinstance(tree.body, ast.Constant) or len(nodes) > 60:
        return None
    try:
        result = eval(compile(tree, "<worked>", "eval"), {"__builtins__": {}})  # number literals and operators only
    except ArithmeticError:
        return None
    return value if math.isclose(result, number, rel_tol=1e-9, abs_tol=1e-9) else None


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --- prose: "For x = ..., y = ... the output should be value" -------------------------------------------------

FOR_THE_OUTPUT = re.compile(r"For\s+(?P<args>.+?)\s*,?\s+the\s+(?:output|result)\s+should\s+be\s+", re.IGNORECASE)


def for_the_output_examples(doc: str, entry_point: str, params: list[str]) -> list[Example]:
    examples = []
    for match in FOR_THE_OUTPUT.finditer(doc):
        call = _call_from_assignments(match.group("args"), entry_point, params)
        expected = _value_at(doc, match.end())
        if call and expected is not None:
            examples.append(Example(call, expected, "prose", entry_point))
    return examples


# --- prose: "Input: ... / Output: ..." ----------------------------------------------------------------------------

def input_output_examples(doc: str, entry_point: str, params: list[str]) -> list[Example]:
    """"Input: a = 1, b = 2" or an "Input:" line followed by one "name : value" line per parameter, then an
    "Output: value" line."""
    examples = []
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        head = line.strip()
        if not head.lower().startswith("input:"):
            continue
        output_line = next((j for j in range(i + 1, min(i + 2 + max(len(params), 1), len(lines)))
                            if lines[j].strip().lower().startswith("output:")), None)
        if output_line is None:
            continue
        call = _call_from_input(head[len("input:"):].strip(), lines[i + 1:output_line], entry_point, params)
        text = lines[output_line]
        expected = _value_at(text, text.lower().index("output:") + len("output:"))
        if call and expected is not None:
            examples.append(Example(call, expected, "prose", entry_point))
    return examples


def _call_from_input(given: str, named_lines: list[str], entry_point: str, params: list[str]) -> str | None:
    if given:
        if any(line.strip() for line in named_lines):
            return None  # more than the one line said: not a form read here
        call = _call_from_assignments(given, entry_point, params)
        if call is None and len(params) == 1 and _literal(given) is not None:
            call = _literal_call(f"{entry_point}({given})", entry_point)
        return call
    # "grid : [[0,1]]" then "bucket_capacity : 1", one line per parameter
    pairs = [re.match(r"\s*(\w+)\s*[:=]\s*(.+?)\s*$", line) for line in named_lines if line.strip()]
    if not pairs or not all(pairs):
        return None
    named = {_parameter_named(m.group(1), params): m.group(2) for m in pairs}
    if None in named or len(named) != len(pairs):
        return None
    return _call_from_assignments(", ".join(f"{name} = {value}" for name, value in named.items()), entry_point,
                                  params)


def _parameter_named(name: str, params: list[str]) -> str | None:
    """The parameter a docstring's name stands for: the same name, or one that ends with the other after an
    underscore ("bucket_capacity" for `capacity`) when exactly one parameter does."""
    if name in params:
        return name
    close = [p for p in params if name.endswith("_" + p) or p.endswith("_" + name)]
    return close[0] if len(close) == 1 else None


# --- prose: "arr = [...]", worked steps ("-> sort arr -> [...]"), then "return [...]" ------------------------------

def assignment_return_examples(doc: str, entry_point: str, params: list[str]) -> list[Example]:
    examples = []
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        call = _call_from_assignments(line, entry_point, params) if "=" in line else None
        if call is None:
            continue
        j = i + 1
        while j < len(lines) and lines[j].strip().startswith("->"):
            j += 1
        result = re.match(r"\s*return\s*=?\s*", lines[j]) if j < len(lines) else None
        expected = _value_at(lines[j], result.end()) if result else None
        if expected is not None:
            examples.append(Example(call, expected, "prose", entry_point))
    return examples


# --- `assert f(x) == y` lines (MBPP prompts) ---------------------------------------------------------------------

def assert_line_examples(text: str, entry_point: str) -> list[Example]:
    """`assert f(x) == y`, `assert set(f(x)) == set(y)`, `assert f(x)` and `assert not f(x)` lines."""
    examples = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("assert "):
            continue
        try:
            test = ast.parse(stripped).body[0].test
        except (SyntaxError, IndexError, AttributeError):
            continue
        expected: str | None = None
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq):
            side, expected = test.left, _pure_value(ast.unparse(test.comparators[0]))
        elif isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            side, expected = test.operand, "False"
        else:
            side, expected = test, "True"
        text_of_call = ast.unparse(side)
        call = _literal_call(text_of_call, entry_point) or _wrapped_call(text_of_call, entry_point)
        if call and expected is not None:
            examples.append(Example(call, expected, "prose", entry_point))
    return examples


def _pure_value(text: str) -> str | None:
    """A literal, or a literal passed through the safe builtins (`set((4, 5))`)."""
    literal = _literal(text)
    if literal is not None:
        return literal
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return None
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    allowed = (ast.Expression, ast.Call, ast.Name, ast.Load, ast.Constant, ast.List, ast.Tuple, ast.Dict, ast.Set,
               ast.UnaryOp, ast.USub, ast.UAdd)
    if names <= SAFE_WRAPPERS and all(isinstance(n, allowed) for n in ast.walk(tree)):
        return ast.unparse(tree)
    return None


# --- helpers ------------------------------------------------------------------------------------------------------

def _literal(text: str) -> str | None:
    """`text` normalised if it is one Python literal, else None. Lower-case true/false are read as booleans."""
    if text in ("true", "false"):
        return text.capitalize()
    try:
        tree = ast.parse(text, mode="eval")
        ast.literal_eval(tree)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        return None
    return ast.unparse(tree)


def _literal_call(text: str, entry_point: str) -> str | None:
    """`text` normalised if it is a call of the entry point with literal arguments only, else None."""
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        return None
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == entry_point):
        return None
    try:
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            ast.literal_eval(arg)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
        return None
    return ast.unparse(node)


# Builtins a doctest may wrap around the call (`round(find_zero([1, 2]), 2)`) without making it ambiguous.
SAFE_WRAPPERS = frozenset({"round", "sorted", "len", "list", "tuple", "set", "abs", "sum", "str", "int", "float",
                           "bool", "max", "min"})


def _wrapped_call(text: str, entry_point: str) -> str | None:
    """An expression built from one literal-argument call of the entry point and a few pure builtins."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return None
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
             and n.func.id == entry_point]
    allowed = (ast.Expression, ast.Call, ast.Name, ast.Load, ast.Constant, ast.List, ast.Tuple, ast.Dict, ast.Set,
               ast.UnaryOp, ast.USub, ast.UAdd, ast.keyword)
    if len(calls) != 1 or not names <= SAFE_WRAPPERS | {entry_point} \
            or not all(isinstance(n, allowed) for n in ast.walk(tree)):
        return None
    if _literal_call(ast.unparse(calls[0]), entry_point) is None:
        return None
    return ast.unparse(tree)


def _call_from_assignments(text: str, entry_point: str, params: list[str]) -> str | None:
    """"lst = [1, 2], k = 3" -> "f([1, 2], 3)" when the names are exactly the function's parameters."""
    text = text.strip().rstrip(",")
    try:
        node = ast.parse(f"_f({text})", mode="eval").body
    except SyntaxError:
        return None
    if not isinstance(node, ast.Call) or node.args or not node.keywords:
        return None
    given = {k.arg: k.value for k in node.keywords}
    if sorted(given) != sorted(params):
        return None
    ordered = ", ".join(ast.unparse(given[name]) for name in params)
    return _literal_call(f"{entry_point}({ordered})", entry_point)


def _balanced_end(text: str, open_index: int) -> int | None:
    """Index just past the bracket that closes text[open_index], skipping brackets inside string literals."""
    depth, quote, i = 0, None, open_index
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


def _value_at(text: str, start: int) -> str | None:
    """The literal that starts at text[start], if it is all that the line says there (bar a comment, a full stop or
    a parenthesised explanation after a string). A bracketed value may span lines."""
    rest = text[start:]
    if rest[:1] and rest[0] in "([{":
        end = _balanced_end(text, start)  # a bracketed value may span lines
        if end is None:
            return None
        value, after = text[start:end], text[end:].split("\n", 1)[0]
    else:
        line = _without_full_stop(rest.split("\n", 1)[0])
        value, after = _leading_literal(line)
    literal = _literal(value.strip())
    if literal is None:
        return None
    after = after.strip()
    if after in ("", ".") or after.startswith("#") or (after.startswith("(") and literal[:1] in "'\""):
        return literal
    return None


def _without_full_stop(line: str) -> str:
    """"should be 16." ends a sentence: the full stop after a number is not part of it."""
    return re.sub(r"(?<=\d)\.\s*$", "", line)


def _leading_literal(line: str) -> tuple[str, str]:
    """Split a line into its longest leading run of tokens that reads as one literal, and the rest."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(line).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return line, ""
    best = ("", line)
    for token in tokens:
        if token.type in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.COMMENT):
            break
        end = token.end[1]
        if _literal(line[:end].strip()) is not None or line[:end].strip() in ("true", "false"):
            best = (line[:end], line[end:])
    return best
