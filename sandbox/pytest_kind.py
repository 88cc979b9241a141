"""The pytest kind, parent side: copy the workspace, splice the candidate into the copy, and read pytest's reports.

The user's files are only ever read: the copy is made with reads, the splice edits the copy, and the copy is
removed afterwards. The copy leaves out version-control and environment folders (COPY_SKIP); symlinks to files
inside the workspace are copied as files, symlinks to directories or to anything outside are left out (following
them could copy the whole disk, or let a test write through them into the original).
"""

from __future__ import annotations

import ast
import os
import shutil
import textwrap
from pathlib import Path

from sandbox.grading import truncate
from sandbox.types import TestResult

COPY_SKIP = {".git", ".hg", ".svn", ".venv", "venv", ".tox", ".nox", "node_modules", "__pycache__",
             ".mypy_cache", ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints"}
COPY_LIMIT_BYTES = 256 << 20


class CandidateError(ValueError):
    """The candidate cannot be put in place (it does not parse, or has no function of that name)."""


class WorkspaceError(ValueError):
    """The workspace cannot be copied (missing, too big, target file absent); the message says which."""


# --- copy ----------------------------------------------------------------------------------------------------------

def copy_workspace(source: Path, target: Path) -> None:
    source = source.resolve()
    if not source.is_dir():
        raise WorkspaceError(f"the workspace {source} is not a directory")
    budget = [COPY_LIMIT_BYTES]

    def skip(folder: str, names: list[str]) -> set[str]:
        skipped = set()
        for name in names:
            path = os.path.join(folder, name)
            if name in COPY_SKIP or name.endswith(".pyc"):
                skipped.add(name)
            elif os.path.islink(path):
                real = os.path.realpath(path)
                if os.path.isdir(real) or not real.startswith(str(source) + os.sep) or not os.path.isfile(real):
                    skipped.add(name)
        return skipped

    def copy_file(src: str, dst: str) -> str:
        budget[0] -= os.path.getsize(src)
        if budget[0] < 0:
            raise WorkspaceError(f"the workspace {source} holds more than {COPY_LIMIT_BYTES >> 20} MB to copy")
        return shutil.copy2(src, dst)

    try:
        shutil.copytree(source, target, ignore=skip, copy_function=copy_file, dirs_exist_ok=True)
    except shutil.Error as exc:
        raise WorkspaceError(f"could not copy the workspace {source}: {exc.args[0][:3]}") from exc


# --- splice --------------------------------------------------------------------------------------------------------

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


def find_function(tree: ast.Module, qualname: str) -> ast.FunctionDef | ast.AsyncFunctionDef:
    """The function named by a dotted path (`Stack.push`); the last definition wins, as at run time."""
    body: list[ast.stmt] = tree.body
    node = None
    parts = qualname.split(".")
    for depth, part in enumerate(parts):
        wanted = _FUNCTIONS if depth == len(parts) - 1 else (ast.ClassDef, *_FUNCTIONS)
        matches = [n for n in body if isinstance(n, wanted) and n.name == part]
        if not matches:
            raise CandidateError(f"no function {qualname!r} in the target file")
        node = matches[-1]
        body = node.body
    return node


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _module_insert_line(tree: ast.Module) -> int:
    """0-based line after the module docstring and `from __future__` imports."""
    line = 0
    for index, node in enumerate(tree.body):
        is_doc = index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) \
            and isinstance(node.value.value, str)
        if is_doc or (isinstance(node, ast.ImportFrom) and node.module == "__future__"):
            line = node.end_lineno
        else:
            break
    return line


def splice(source: str, qualname: str, candidate: str) -> str:
    """`source` with the function `qualname` replaced by the candidate: a whole `def` of that name (plus any imports
    and helpers around it) or just a body. Raises CandidateError when it does not fit."""
    tree = ast.parse(source)
    target = find_function(tree, qualname)
    name = qualname.split(".")[-1]
    candidate = textwrap.dedent(candidate).strip("\n") + "\n"
    try:
        cand_tree = ast.parse(candidate)
    except SyntaxError as exc:
        raise CandidateError(f"the candidate does not parse: {exc}") from exc
    lines = source.splitlines(keepends=True)
    indent = _indent_of(lines[target.lineno - 1])
    defs = [n for n in cand_tree.body if isinstance(n, _FUNCTIONS) and n.name == name]
    if defs:
        new_lines, start = _whole_def(tree, target, cand_tree, candidate, indent, lines)
    else:
        new_lines, start = _body_only(target, cand_tree, candidate, indent, lines)
    result = "".join(new_lines)
    try:
        ast.parse(result)
    except SyntaxError as exc:
        raise CandidateError(f"the file does not parse with the candidate in place: {exc}") from exc
    return result


def _whole_def(tree, target, cand_tree, candidate: str, indent: str, lines: list[str]):
    cand_lines = candidate.splitlines(keepends=True)
    imports: list[str] = []
    if indent:  # a method: imports go to the module's top, where the method's code can see them
        keep = []
        import_lines = {ln for n in cand_tree.body if isinstance(n, (ast.Import, ast.ImportFrom))
                        for ln in range(n.lineno, n.end_lineno + 1)}
        for number, line in enumerate(cand_lines, start=1):
            (imports if number in import_lines else keep).append(line)
        cand_lines = keep
    new_def = _indented("".join(cand_lines), indent)
    has_decorators = any(n.decorator_list for n in cand_tree.body if isinstance(n, _FUNCTIONS))
    start = min([d.lineno for d in target.decorator_list], default=target.lineno) if has_decorators \
        else target.lineno
    out = lines[: start - 1] + new_def + lines[target.end_lineno:]
    if imports:
        at = _module_insert_line(tree)
        out = out[:at] + imports + out[at:]
    return out, start


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _body_only(target, cand_tree, candidate: str, indent: str, lines: list[str]):
    """Replace the body, keeping the stub's docstring unless the candidate brings its own."""
    first = target.body[0]
    if first.lineno == target.lineno:  # `def f(): ...` on one line: rebuild the header, then the body
        header = lines[target.lineno - 1][: first.col_offset].rstrip() + "\n"
        new_body = _indented(candidate, indent + "    ")
        return lines[: target.lineno - 1] + [header] + new_body + lines[target.end_lineno:], target.lineno
    new_body = _indented(candidate, _indent_of(lines[first.lineno - 1]))
    if _is_docstring(first) and not (cand_tree.body and _is_docstring(cand_tree.body[0])):
        return lines[: first.end_lineno] + new_body + lines[target.end_lineno:], first.end_lineno + 1
    return lines[: first.lineno - 1] + new_body + lines[target.end_lineno:], first.lineno


def _indented(text: str, indent: str) -> list[str]:
    return [indent + line if line.strip() else line for line in text.splitlines(keepends=True)]


# --- reports -------------------------------------------------------------------------------------------------------

def _node_status(phases: dict[str, dict]) -> tuple[str, str]:
    """pass / fail / skipped for one test from its setup/call/teardown reports, and a message."""
    for when in ("setup", "call", "teardown"):
        report = phases.get(when)
        if report is None:
            continue
        if report["outcome"] == "failed":
            return "fail", report.get("msg", "")
        if report["outcome"] == "skipped":
            # Skipped by a marker (skip/skipif/xfail) or at set-up: the test does not count. A skip raised from
            # inside an unmarked test body could come from the candidate (pytest.skip()): that fails.
            if when == "setup" or report.get("marked"):
                return "skipped", report.get("msg", "")
            return "fail", "skipped from inside the test"
    if "call" not in phases:
        return "fail", "the test did not run to the end"
    return "pass", ""


def _matches(node: str, wanted: str) -> bool:
    return node == wanted or node.startswith(wanted + "::") or node.startswith(wanted + "[")


def judge_reports(records: list[dict], node_ids: tuple[str, ...], seconds: float,
                  stderr_tail: str) -> list[TestResult]:
    """One TestResult per test pytest ran, one failure per asked-for node id that never ran, and a crash when the
    session did not finish."""
    phases: dict[str, dict[str, dict]] = {}
    collect_errors: list[str] = []
    done = None
    for item in records:
        if item.get("t") == "report" and isinstance(item.get("node"), str):
            phases.setdefault(item["node"], {})[str(item.get("when"))] = item
        elif item.get("t") == "collect-error":
            collect_errors.append(f"{item.get('node')}: {item.get('msg', '')}")
        elif item.get("t") == "done":
            done = item
    share = seconds / max(1, len(phases))
    results = []
    for node, node_phases in phases.items():
        status, message = _node_status(node_phases)
        results.append(TestResult(node, status, share, expected="pass" if status == "fail" else "",
                                  got=truncate(message), stderr_tail=truncate(message, 2000) if message else ""))
    for wanted in node_ids:
        if not any(_matches(node, wanted) for node in phases):
            why = "; ".join(collect_errors) or "not collected"
            results.append(TestResult(wanted, "fail", 0.0, expected="pass", got=truncate(f"did not run: {why}")))
    if done is None or (not node_ids and not phases):
        exit_note = "the pytest session did not finish" if done is None else "pytest collected no tests"
        results.append(TestResult("pytest session", "crash", seconds, got=exit_note,
                                  stderr_tail="\n".join(collect_errors)[-2000:] or stderr_tail))
    return results
