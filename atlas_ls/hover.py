"""Hover on the header of a function ATLAS solved or is solving: what it chose and why. Nothing on other symbols,
so that the Python server the user also runs keeps the hover to itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from atlas_ls.actions import site_at
from atlas_ls.records import SolveRecord
from engine.task import CandidateReport

if TYPE_CHECKING:
    from atlas_ls.server import AtlasLanguageServer

_MAX_TESTS_LISTED = 12


def _number(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def _tests_lines(candidate: CandidateReport | None, record: SolveRecord) -> list[str]:
    if candidate is None or candidate.verdict is None:
        return [f"- tests: not run ({record.tests})"]
    verdict = candidate.verdict
    if verdict.error:
        return [f"- tests: could not run: {verdict.error}"]
    lines = [f"- tests: {verdict.passed_count}/{verdict.total} passed ({record.tests})"]
    for test in verdict.tests[:_MAX_TESTS_LISTED]:
        lines.append(f"  - {'✓' if test.passed else '✗'} `{test.name}` {test.status}")
    if verdict.total > _MAX_TESTS_LISTED:
        lines.append(f"  - … {verdict.total - _MAX_TESTS_LISTED} more")
    return lines


def chosen_candidate(record: SolveRecord) -> CandidateReport | None:
    result = record.result
    if result is None or not result.candidates:
        return None
    if record.applied_rank is not None:
        return record.candidate(record.applied_rank)
    return next((c for c in result.candidates if c.code == result.code), result.candidates[0])


def solving_text(record: SolveRecord) -> str:
    return "\n".join([f"**ATLAS** is solving `{record.qualname}`",
                      f"- phase: {record.phase}{': ' + record.detail if record.detail else ''}",
                      f"- tests: {record.tests}", f"- model: {record.model}",
                      f"- elapsed: {record.elapsed:.1f} s"])


def solved_text(record: SolveRecord) -> str:
    result = record.result
    if result is None:
        return "\n".join([f"**ATLAS** {record.state} `{record.qualname}`", record.outcome,
                          f"- model: {record.model}", f"- time: {record.elapsed:.1f} s"])
    chosen = chosen_candidate(record)
    if record.applied_rank is None:
        lines = [f"**ATLAS** tried `{record.qualname}`: no candidate applied"]
    else:
        status = "verified by the tests" if result.verified else "not verified"
        lines = [f"**ATLAS** solved `{record.qualname}` ({status})"]
    if record.outcome:
        lines.append(record.outcome)
    if chosen is not None:
        lines.append(f"- candidate: {chosen.rank} of {len(result.candidates)}, ranked by {result.ranking}")
        lines.append(f"- energy: {_number(chosen.energy, '.2f')}")
        lines.append(f"- confidence: {_number(chosen.confidence, '.0%')} (calibrated P(pass))")
    lines.append(f"- difficulty: {result.difficulty:.2f}, tier {result.tier}, k = {result.k}")
    lines += _tests_lines(chosen, record)
    lines.append(f"- model: {record.model}")
    lines.append(f"- time: {result.seconds or record.elapsed:.1f} s")
    if result.note:
        lines.append(f"- note: {result.note}")
    return "\n".join(lines)


def hover_text(record: SolveRecord) -> str:
    return solving_text(record) if record.active else solved_text(record)


def _markup_kind(ls: AtlasLanguageServer) -> types.MarkupKind:
    text = ls.client_capabilities.text_document
    formats = text.hover.content_format if text and text.hover else None
    if formats and types.MarkupKind.Markdown not in formats:
        return types.MarkupKind.PlainText
    return types.MarkupKind.Markdown


def hover(ls: AtlasLanguageServer, params: types.HoverParams) -> types.Hover | None:
    uri, line = params.text_document.uri, params.position.line
    site = site_at(ls, uri, line)
    if site is None:
        return None
    header_lines = site.signature_text.count("\n") + 1
    if not site.start_line <= line < site.start_line + header_lines:
        return None  # only on the decorators and `def` line(s), not inside the body
    record = ls.book.get(uri, site.qualname)
    if record is None:
        return None
    kind = _markup_kind(ls)
    text = hover_text(record)
    if kind == types.MarkupKind.PlainText:
        text = text.replace("**", "").replace("`", "")
    return types.Hover(contents=types.MarkupContent(kind=kind, value=text))


def register(ls: AtlasLanguageServer) -> None:
    @ls.feature(types.TEXT_DOCUMENT_HOVER)
    def on_hover(ls: AtlasLanguageServer, params: types.HoverParams):
        return hover(ls, params)
