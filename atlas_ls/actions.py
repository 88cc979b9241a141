"""Code actions: "Solve with ATLAS" on a stub function, and after a solve the other candidates.

Listing must be cheap (VS Code drops providers that take about 2 s; the issue asks for < 100 ms): it reads the
cached `ast` sites of the document version and the solve records, nothing else. The work runs behind a command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from atlas_ls.documents import is_python
from atlas_ls.protocol import (APPLY_CANDIDATE_COMMAND, CANCEL_COMMAND, CODE_ACTION_KIND, SOLVE_COMMAND,
                               SOLVE_TITLE)
from atlas_ls.records import SolveRecord
from engine.task import CandidateReport
from engine.workspace import FunctionSite, innermost_at

if TYPE_CHECKING:
    from atlas_ls.server import AtlasLanguageServer


def kind_requested(only: list[str] | None) -> bool:
    """Whether a client's `context.only` filter admits our kind (`refactor` admits `refactor.rewrite.atlas`)."""
    if not only:
        return True
    return any(CODE_ACTION_KIND == k or CODE_ACTION_KIND.startswith(str(k) + ".") for k in only)


def site_at(ls: AtlasLanguageServer, uri: str, line: int) -> FunctionSite | None:
    """The innermost function at a line of an open Python document; None on other documents, lines outside any
    function, and versions that do not parse."""
    doc = ls.workspace.get_text_document(uri)
    if not is_python(doc):
        return None
    try:
        sites = ls.sites.sites(doc)
    except OSError:  # neither open nor on disk
        return None
    return innermost_at(sites, line) if sites else None


def candidate_title(candidate: CandidateReport, tests_total: int | None) -> str:
    """e.g. "ATLAS candidate 2: energy 3.1, tests 4/5"."""
    if candidate.energy is not None:
        score = f"energy {candidate.energy:.1f}"
    else:
        score = f"log-prob {candidate.mean_logprob:.2f}"
    if candidate.verdict is not None and candidate.verdict.total:
        tests = f"tests {candidate.verdict.passed_count}/{candidate.verdict.total}"
    elif candidate.verdict is not None and candidate.verdict.error:
        tests = "does not run"
    else:
        tests = "tests not run" if tests_total else "no tests"
    return f"ATLAS candidate {candidate.rank}: {score}, {tests}"


def _action(title: str, command: str, argument: dict, preferred: bool = False) -> types.CodeAction:
    return types.CodeAction(title=title, kind=CODE_ACTION_KIND, is_preferred=preferred or None,
                            command=types.Command(title=title, command=command, arguments=[argument]))


def solve_action(uri: str, site: FunctionSite, version: int | None) -> types.CodeAction:
    argument = {"uri": uri, "qualname": site.qualname, "version": version, "line": site.def_line}
    return _action(SOLVE_TITLE, SOLVE_COMMAND, argument, preferred=True)


def record_actions(record: SolveRecord, limit: int) -> list[types.CodeAction]:
    if record.active:
        return [_action(f"Cancel ATLAS solve of {record.qualname}", CANCEL_COMMAND,
                        {"uri": record.uri, "qualname": record.qualname})]
    tests_total = record.result.candidates[0].verdict.total if record.result and record.result.candidates and \
        record.result.candidates[0].verdict else None
    return [_action(candidate_title(c, tests_total), APPLY_CANDIDATE_COMMAND,
                    {"uri": record.uri, "qualname": record.qualname, "rank": c.rank})
            for c in record.alternatives(limit)]


def code_actions(ls: AtlasLanguageServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    if not kind_requested(params.context.only):
        return []
    uri = params.text_document.uri
    site = site_at(ls, uri, params.range.start.line)
    if site is None and params.range.end.line != params.range.start.line:
        site = site_at(ls, uri, params.range.end.line)
    if site is None:
        return []
    actions = []
    record = ls.book.get(uri, site.qualname)
    if site.is_stub and (record is None or not record.active):
        actions.append(solve_action(uri, site, ls.workspace.get_text_document(uri).version))
    if record is not None:
        actions += record_actions(record, ls.settings.max_alternatives)
    return actions


def as_commands(actions: list[types.CodeAction]) -> list[types.Command]:
    """For clients without code-action literals (LSP < 3.8): the bare commands."""
    return [a.command for a in actions if a.command is not None]


def supports_literals(ls: AtlasLanguageServer) -> bool:
    text = ls.client_capabilities.text_document
    return bool(text and text.code_action and text.code_action.code_action_literal_support)


def register(ls: AtlasLanguageServer) -> None:
    @ls.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                types.CodeActionOptions(code_action_kinds=[CODE_ACTION_KIND], resolve_provider=False))
    def on_code_action(ls: AtlasLanguageServer, params: types.CodeActionParams):
        actions = code_actions(ls, params)
        return actions if supports_literals(ls) else as_commands(actions)
