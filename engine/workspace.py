"""The workspace side of a solve: finding stub functions with `ast`, turning one into a Task with its tests, and
splicing a candidate back into the source.

Lines and columns here are 0-based (as in LSP); `ast` counts lines from 1, and the conversion happens once, in
`_site`. A file that does not parse yields nothing: the editor says nothing rather than guess.

Test discovery (pytest tests that reference the function, kept fresh by a watchdog-backed index) lives in
`engine.testindex`; `discover_tests` here chooses between those, the function's doctest examples, and nothing.
"""

from __future__ import annotations

import ast
import io
import textwrap
from dataclasses import dataclass
from pathlib import Path

from engine.task import Task
from sandbox.types import PytestTarget, TestSuite

STUB_KINDS = ("pass", "ellipsis", "raise", "docstring")
# Decorated this way, an empty body is the point (an interface or a typing stub), not a function to write.
_INTENTIONAL_STUB_DECORATORS = {"abstractmethod", "overload", "abstractproperty"}
_MODULE_CONTEXT_CHARS = 4000


class SpliceError(ValueError):
    """The candidate cannot replace the function (it does not parse, or defines something else)."""


@dataclass(frozen=True)
class FunctionSite:
    """Where one function sits in a source file (0-based lines, inclusive ends)."""

    name: str
    qualname: str  # dotted: "Stack.push", "outer.inner"
    start_line: int  # first decorator, or the `def` line
    def_line: int
    end_line: int
    body_start_line: int  # first statement after the docstring (the stub's body)
    indent: str  # of the `def` line
    body_indent: str
    signature_text: str  # decorators and the `def ...:` header, as written
    docstring: str | None  # cleaned (ast.get_docstring)
    docstring_text: str  # the docstring statement as written, with its indentation; "" when none
    text: str  # the whole function as written
    stub_kind: str | None  # one of STUB_KINDS, None when the function has a real body
    is_async: bool = False
    in_class: str | None = None  # the enclosing class's qualname for a method

    @property
    def is_stub(self) -> bool:
        return self.stub_kind is not None

    @property
    def line_count(self) -> int:
        return self.end_line - self.start_line + 1


# --- stub detection ---


def _is_docstring(stmt: ast.stmt) -> bool:
    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
            and isinstance(stmt.value.value, str))


def _is_not_implemented(stmt: ast.stmt) -> bool:
    if not isinstance(stmt, ast.Raise) or stmt.exc is None:
        return False
    exc = stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc
    return isinstance(exc, ast.Name) and exc.id in ("NotImplementedError", "NotImplemented")


def _decorator_names(func: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    names = set()
    for dec in func.decorator_list:
        target = dec.func if isinstance(dec, ast.Call) else dec
        if isinstance(target, ast.Attribute):
            names.add(target.attr)
        elif isinstance(target, ast.Name):
            names.add(target.id)
    return names


def stub_kind(func: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    """What makes this function a stub ("pass", "ellipsis", "raise", "docstring"), or None when it has a body."""
    if _decorator_names(func) & _INTENTIONAL_STUB_DECORATORS:
        return None
    body = list(func.body)
    has_docstring = bool(body) and _is_docstring(body[0])
    if has_docstring:
        body = body[1:]
    if not body:
        return "docstring" if has_docstring else None
    if len(body) != 1:
        return None
    stmt = body[0]
    if isinstance(stmt, ast.Pass):
        return "pass"
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and stmt.value.value is Ellipsis:
        return "ellipsis"
    if _is_not_implemented(stmt):
        return "raise"
    return None


def is_stub(func_node: ast.AST) -> bool:
    """True when a function's body is only `pass`, `...`, `raise NotImplementedError` or a docstring."""
    if not isinstance(func_node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    return stub_kind(func_node) is not None


# --- sites ---


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):  # ValueError: null bytes
        return None


def _walk_functions(tree: ast.Module):
    """(function node, qualname, enclosing class qualname or None) for every def, outer ones first. Only statement
    lists are walked: functions live in bodies, never inside expressions."""
    queue: list[tuple[list[ast.stmt], str, str | None]] = [(tree.body, "", None)]
    for body, prefix, owner in queue:  # grows while iterating: breadth first
        for child in body:
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                qualname = prefix + child.name
                yield child, qualname, owner
                queue.append((child.body, qualname + ".", None))
            elif isinstance(child, ast.ClassDef):
                queue.append((child.body, prefix + child.name + ".", prefix + child.name))
            else:
                for block in _blocks(child):  # defs under if/try/with/for belong to the same scope
                    queue.append((block, prefix, owner))


def _blocks(stmt: ast.stmt) -> list[list[ast.stmt]]:
    blocks = [getattr(stmt, name) for name in ("body", "orelse", "finalbody") if getattr(stmt, name, None)]
    blocks += [handler.body for handler in getattr(stmt, "handlers", ())]
    blocks += [case.body for case in getattr(stmt, "cases", ())]
    return [b for b in blocks if isinstance(b, list)]


def source_lines(source: str) -> list[str]:
    """Lines with their endings, split where `ast` and LSP split them (\\n, \\r\\n, \\r) and nowhere else."""
    return io.StringIO(source, newline="").readlines()


def _byte_col_to_str(line: str, byte_col: int) -> int:
    return len(line.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))


def _leading_ws(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _first_row(stmt: ast.stmt) -> int:
    decorators = getattr(stmt, "decorator_list", None)
    return (decorators[0].lineno if decorators else stmt.lineno) - 1


def _starts_line(lines: list[str], stmt: ast.stmt) -> bool:
    """True when nothing but indentation precedes the statement on its line."""
    line = lines[stmt.lineno - 1]
    return not line[: _byte_col_to_str(line, stmt.col_offset)].strip()


def _header_and_docstring(lines: list[str], func: ast.FunctionDef | ast.AsyncFunctionDef,
                          start: int) -> tuple[str, str, int]:
    """(decorators + `def ...:` as written, the docstring statement indented as the body, index of the first line
    after the docstring). Comment lines between the header and the body belong to the old body."""
    first = func.body[0]
    body_row = first.lineno - 1
    if _starts_line(lines, first):
        header_end = body_row
        while header_end - 1 > func.lineno - 1 and lines[header_end - 1].strip()[:1] in ("#", ""):
            header_end -= 1
        header = "".join(lines[start:header_end]).rstrip()
    else:  # `def f(): pass`, or a body on the line of the colon
        line = lines[body_row]
        header = ("".join(lines[start:body_row]) + line[: _byte_col_to_str(line, first.col_offset)]).rstrip()
    if not _is_docstring(first):
        return header, "", body_row
    if _starts_line(lines, first):
        docstring_text = "".join(lines[body_row: first.end_lineno]).rstrip()
    else:
        body_indent = _leading_ws(lines[func.lineno - 1]) + "    "
        docstring_text = body_indent + (ast.get_source_segment("".join(lines), first) or "")
    after = first.end_lineno if len(func.body) == 1 else func.body[1].lineno - 1
    return header, docstring_text, after


def _site(lines: list[str], func: ast.FunctionDef | ast.AsyncFunctionDef, qualname: str,
          owner: str | None) -> FunctionSite:
    start = _first_row(func)
    end = func.end_lineno - 1
    header, docstring_text, body_line = _header_and_docstring(lines, func, start)
    def_line_text = lines[func.lineno - 1]
    indent = _leading_ws(def_line_text)
    first = func.body[0]
    body_indent = _leading_ws(lines[first.lineno - 1]) if _starts_line(lines, first) else indent + "    "
    return FunctionSite(
        name=func.name, qualname=qualname, start_line=start, def_line=func.lineno - 1, end_line=end,
        body_start_line=min(body_line, end), indent=indent, body_indent=body_indent, signature_text=header,
        docstring=ast.get_docstring(func), docstring_text=docstring_text,
        text="".join(lines[start:end + 1]), stub_kind=stub_kind(func),
        is_async=isinstance(func, ast.AsyncFunctionDef), in_class=owner)


def function_sites(source: str) -> list[FunctionSite] | None:
    """Every function and method of a module, outer ones first; None when the source does not parse."""
    tree = _parse(source)
    if tree is None:
        return None
    lines = source_lines(source)
    return [_site(lines, func, qualname, owner) for func, qualname, owner in _walk_functions(tree)]


def innermost_at(sites: list[FunctionSite], line: int) -> FunctionSite | None:
    """The innermost function whose lines (decorators included) contain `line`."""
    containing = [s for s in sites if s.start_line <= line <= s.end_line]
    return min(containing, key=lambda s: s.line_count) if containing else None


def find_stub_function(source: str, line: int) -> FunctionSite | None:
    """The stub function at `line` (0-based): the innermost function there, if its body is a stub. None when the
    source does not parse, or the innermost function at that line has a real body."""
    sites = function_sites(source)
    if not sites:
        return None
    site = innermost_at(sites, line)
    return site if site is not None and site.is_stub else None


def find_function(source: str, qualname: str) -> FunctionSite | None:
    """The function with this dotted qualname (the first, if redefined); None if absent or unparsable."""
    for site in function_sites(source) or []:
        if site.qualname == qualname:
            return site
    return None


# --- splicing a candidate in ---


@dataclass(frozen=True)
class _CandidateParts:
    header: str | None  # the candidate's own `def ...:` (dedented); None when it gave a body only
    params_match: bool
    body: str  # dedented statements, helpers first
    decorated: bool


def _param_names(args: ast.arguments) -> tuple:
    return (tuple(a.arg for a in args.posonlyargs + args.args), args.vararg and args.vararg.arg,
            tuple(a.arg for a in args.kwonlyargs), args.kwarg and args.kwarg.arg)


def _find_def(tree: ast.Module, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return node
    for node in tree.body:  # the model wrapped the method in its class
        if isinstance(node, ast.ClassDef):
            found = _find_def(ast.Module(body=node.body, type_ignores=[]), name)
            if found is not None:
                return found
    return None


def _statements_text(text: str, lines: list[str], stmts: list[ast.stmt]) -> str:
    """Dedented source of consecutive statements, comments between them kept; segments for a one-line body."""
    if not stmts:
        return ""
    if _starts_line(lines, stmts[0]):
        return textwrap.dedent("".join(lines[_first_row(stmts[0]): stmts[-1].end_lineno])).rstrip() + "\n"
    return "\n".join(ast.get_source_segment(text, s) or "" for s in stmts) + "\n"


def _is_helper(stmt: ast.stmt) -> bool:
    """Statements of a candidate worth keeping beside its function: imports, helpers, constants. Example calls,
    prints, asserts and `if __name__ == "__main__":` blocks are the model showing off, not the solution."""
    return isinstance(stmt, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
                             ast.Assign, ast.AnnAssign))


def _candidate_parts(candidate: str, site: FunctionSite, module_imports: set[str]) -> _CandidateParts:
    text = textwrap.dedent(candidate.expandtabs(8) if "\t" in candidate else candidate).strip("\n") + "\n"
    tree = _parse(text)
    if tree is None:
        return _body_only(text)
    func = _find_def(tree, site.name)
    if func is None:
        if any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in tree.body):
            names = ", ".join(n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))
            raise SpliceError(f"the candidate defines {names}, not {site.name}")
        return _body_only(text)
    lines = source_lines(text)
    helpers = [s for s in tree.body if s is not func and _is_helper(s) and not _contains(s, func)
               and ast.unparse(s) not in module_imports]
    own = [s for s in func.body if not _is_docstring(s)]
    body = "".join(_statements_text(text, lines, [h]) for h in helpers)
    body += _statements_text(text, lines, own) if own else "pass\n"
    start = _first_row(func)
    header, _, _ = _header_and_docstring(lines, func, start)
    original = _parse(textwrap.dedent(site.text))
    original_def = _find_def(original, site.name) if original else None
    params_match = original_def is not None and _param_names(original_def.args) == _param_names(func.args)
    return _CandidateParts(textwrap.dedent(header), params_match, body, bool(func.decorator_list))


def _contains(outer: ast.stmt, inner: ast.AST) -> bool:
    return outer is not inner and any(n is inner for n in ast.walk(outer))


def _body_only(text: str) -> _CandidateParts:
    wrapped = "def _atlas_body():\n" + textwrap.indent(text, "    ")
    if _parse(wrapped) is None:
        raise SpliceError("the candidate is not valid Python")
    return _CandidateParts(None, True, text, False)


def _module_imports(source: str) -> set[str]:
    tree = _parse(source)
    if tree is None:
        return set()
    return {ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))}


def function_replacement(source: str, site: FunctionSite, candidate_code: str) -> str:
    """The new text of the function (whole lines, ending with a newline): the user's decorators, signature and
    docstring kept, the body replaced by the candidate's. When the candidate changed the parameters, its own
    signature is used, so that the code applied is the code that was tested."""
    parts = _candidate_parts(candidate_code, site, _module_imports(source))
    if parts.header is None or parts.params_match:
        header = site.signature_text
    else:
        decorators = "" if parts.decorated else _decorators_text(site)
        header = decorators + textwrap.indent(parts.header, site.indent)
    out = header.rstrip() + "\n"
    if site.docstring_text:
        out += site.docstring_text + "\n"
    return out + textwrap.indent(parts.body, site.body_indent, lambda line: bool(line.strip()))


def _decorators_text(site: FunctionSite) -> str:
    lines = source_lines(site.text)
    return "".join(lines[: site.def_line - site.start_line])


def splice(source: str, site: FunctionSite, candidate_code: str) -> str:
    """The source with exactly that function (decorators to last line) replaced by the candidate."""
    lines = source_lines(source)
    replacement = function_replacement(source, site, candidate_code)
    tail = lines[site.end_line + 1:]
    if site.end_line + 1 >= len(lines) and not source.endswith("\n"):
        replacement = replacement.rstrip("\n")
    return "".join(lines[: site.start_line]) + replacement + "".join(tail)


# --- tasks ---


def module_context(source: str, site: FunctionSite) -> tuple[str, ...]:
    """Snippets the model may use: the module's imports, the enclosing class (for a method), the rest of the
    module (without this function and without `if __name__ == "__main__":` blocks), truncated."""
    tree = _parse(source)
    if tree is None:
        return ()
    imports = [ast.get_source_segment(source, n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    snippets = []
    if imports:
        snippets.append("\n".join(s for s in imports if s))
    if site.in_class:
        klass = _class_node(tree, site.in_class)
        if klass is not None:
            snippets.append(_class_outline(source, klass, site.name))
    rest = _module_rest(source, tree, site)
    if rest.strip():
        snippets.append(rest[:_MODULE_CONTEXT_CHARS])
    return tuple(snippets)


def _class_node(tree: ast.Module, qualname: str) -> ast.ClassDef | None:
    scope: list[ast.stmt] = tree.body
    found = None
    for part in qualname.split("."):
        found = next((n for n in scope if isinstance(n, ast.ClassDef) and n.name == part), None)
        if found is None:
            return None
        scope = found.body
    return found


def _class_outline(source: str, klass: ast.ClassDef, skip: str) -> str:
    """The class with its attributes and other methods' signatures (bodies elided), to show the method's world."""
    lines = source_lines(source)
    out = [lines[klass.lineno - 1].rstrip()]
    for node in klass.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name == skip:
                continue
            header, _, _ = _header_and_docstring(lines, node, _first_row(node))
            out.append(header)
            out.append(_leading_ws(lines[node.lineno - 1]) + "    ...")
        elif not _is_docstring(node):
            out.append(ast.get_source_segment(source, node, padded=True) or "")
    return textwrap.dedent("\n".join(out))


def _is_main_guard(node: ast.stmt) -> bool:
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")


def _module_rest(source: str, tree: ast.Module, site: FunctionSite) -> str:
    """Top-level statements other than imports, this function's own, and the main guard."""
    lines = source_lines(source)
    kept = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)) or _is_main_guard(node) or _is_docstring(node):
            continue
        start = _first_row(node)
        if start == site.start_line:
            continue
        kept.append("".join(lines[start: node.end_lineno]))
    return "\n".join(k.rstrip() + "\n" for k in kept)


def prompt_of(site: FunctionSite) -> str:
    """The task's prompt: the function's decorators, signature and docstring, dedented."""
    text = site.signature_text + ("\n" + site.docstring_text if site.docstring_text else "")
    return textwrap.dedent(text).rstrip() + "\n"


class WorkspaceError(ValueError):
    """The function to solve cannot be found or read."""


def build_task(workspace: Path, file: Path, qualname: str, source: str | None = None, *,
               index=None) -> Task:
    """The Task for one stub function: its prompt, the module around it, and the tests that can judge it.
    `index` is an `engine.testindex.TestIndex` to reuse (the server keeps one); without it the workspace is
    scanned once."""
    workspace, file = Path(workspace), Path(file)
    if source is None:
        try:
            source = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise WorkspaceError(f"cannot read {file}: {exc}") from exc
    if _parse(source) is None:
        raise WorkspaceError(f"{file} does not parse; fix its syntax first")
    site = find_function(source, qualname)
    if site is None:
        raise WorkspaceError(f"no function {qualname} in {file}")
    tests = discover_tests(workspace, file, qualname, source=source, index=index)
    return Task(prompt=prompt_of(site), kind="function", entry_point=site.name, tests=tests,
                context=module_context(source, site), source="editor")


# --- tests: pytest first, then doctests ---


def discover_tests(workspace: Path, file: Path, qualname: str, *, source: str | None = None,
                   index=None) -> TestSuite | None:
    """The pytest tests in the workspace that reference the function; else its doctest examples as an
    "assert"-kind suite; else None (the result will be unverified)."""
    from engine.testindex import TestIndex

    workspace, file = Path(workspace).resolve(), Path(file).resolve()
    if source is None:
        source = file.read_text(encoding="utf-8")
    site = find_function(source, qualname)
    if site is None:
        return None
    if index is None:
        index = TestIndex(workspace)
        index.scan()
    node_ids = index.tests_for(file, qualname, source=source)
    if node_ids:
        target = PytestTarget(workspace=workspace, target_file=file.relative_to(workspace), function=qualname,
                              node_ids=tuple(node_ids))
        return TestSuite(kind="pytest", pytest=target)
    return doctest_suite(workspace, file, source, site)


def doctest_suite(workspace: Path, file: Path, source: str, site: FunctionSite) -> TestSuite | None:
    """The docstring's `>>>` examples, run with doctest after the candidate and the module's other code."""
    import doctest

    nested = "." in site.qualname and site.in_class is None
    if not site.docstring or nested or not doctest.DocTestParser().get_examples(site.docstring):
        return None  # a nested function cannot be called from outside its parent
    tree = _parse(source)
    if site.in_class is not None and _class_node(tree, site.in_class) is None:
        return None  # a class inside a function: nothing to bind the candidate to
    prelude = _module_prelude(source, tree, site, workspace, file)
    runner = _DOCTEST_RUNNER.format(docstring=repr(site.docstring), name=repr(site.qualname),
                                    filename=repr(str(file)))
    return TestSuite(kind="assert", assert_code=prelude + runner)


def _module_prelude(source: str, tree: ast.Module, site: FunctionSite, workspace: Path, file: Path) -> str:
    """The module's own code for the examples to run in: everything but this function (and the main guard). A
    method's class keeps its stub and then gets the candidate bound in its place."""
    lines = source_lines(source)
    out = ["import sys as _atlas_sys\n",
           f"_atlas_sys.path[:0] = [{str(file.parent)!r}, {str(workspace)!r}]\n"]
    for node in tree.body:
        if _is_main_guard(node) or _is_docstring(node):
            continue
        start = _first_row(node)
        if site.in_class is None and start == site.start_line:
            continue
        out.append("".join(lines[start: node.end_lineno]).rstrip() + "\n")
    if site.in_class is not None:
        decorators = _decorator_names_of(site)
        wrap = "staticmethod" if "staticmethod" in decorators else "classmethod" if "classmethod" in decorators \
            else ""
        value = f"{wrap}({site.name})" if wrap else site.name
        out.append(f"{site.in_class}.{site.name} = {value}\n")
    return "".join(out)


def _decorator_names_of(site: FunctionSite) -> set[str]:
    tree = _parse(textwrap.dedent(site.text))
    func = _find_def(tree, site.name) if tree else None
    return _decorator_names(func) if func else set()


_DOCTEST_RUNNER = """
import doctest as _atlas_doctest
_atlas_report = []
_atlas_test = _atlas_doctest.DocTestParser().get_doctest({docstring}, dict(globals()), {name}, {filename}, 0)
_atlas_runner = _atlas_doctest.DocTestRunner(
    optionflags=_atlas_doctest.ELLIPSIS | _atlas_doctest.NORMALIZE_WHITESPACE, verbose=False)
_atlas_runner.run(_atlas_test, out=_atlas_report.append)
assert _atlas_runner.failures == 0, "doctest examples failed:\\n" + "".join(_atlas_report)
"""
