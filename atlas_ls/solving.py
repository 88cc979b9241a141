"""The solve command: find the tests, run the engine's Solver off the event loop with cancellable progress, and
apply the chosen candidate with `workspace/applyEdit`; plus the commands to apply another candidate, to cancel,
and to read the status.

The edit replaces exactly the function (decorators to last line) and only if the function is still the stub the
solve began from: the document may have changed meanwhile, so the function is found again by name and compared.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from atlas_ls.documents import document_path, is_python
from atlas_ls.engine_host import EngineUnavailable
from atlas_ls.progress import Reporter, make_reporter
from atlas_ls.protocol import APPLY_CANDIDATE_COMMAND, CANCEL_COMMAND, SOLVE_COMMAND, STATUS_COMMAND
from atlas_ls.records import SolveRecord
from engine.task import SolveResult, normalise
from engine.workspace import SpliceError, WorkspaceError, build_task, find_function, function_replacement, \
    source_lines

if TYPE_CHECKING:
    from atlas_ls.server import AtlasLanguageServer
    from sandbox.types import TestSuite

log = logging.getLogger(__name__)


# --- command arguments ---


def _argument(args: tuple, command: str) -> Mapping[str, Any]:
    if len(args) != 1 or not isinstance(args[0], Mapping):
        raise JsonRpcInvalidParams(f"{command} takes one object argument, got {list(args)!r}")
    return args[0]


def _field(raw: Mapping[str, Any], name: str, kind: type, command: str, required: bool = True) -> Any:
    value = raw.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise JsonRpcInvalidParams(f"{command}: '{name}' must be {kind.__name__}, got {value!r}")
    return value


@dataclass(frozen=True)
class SolveArgs:
    uri: str
    qualname: str
    version: int | None = None
    line: int | None = None

    @classmethod
    def parse(cls, args: tuple) -> SolveArgs:
        raw = _argument(args, SOLVE_COMMAND)
        return cls(_field(raw, "uri", str, SOLVE_COMMAND), _field(raw, "qualname", str, SOLVE_COMMAND),
                   _field(raw, "version", int, SOLVE_COMMAND, False), _field(raw, "line", int, SOLVE_COMMAND, False))


@dataclass(frozen=True)
class CandidateArgs:
    uri: str
    qualname: str
    rank: int

    @classmethod
    def parse(cls, args: tuple) -> CandidateArgs:
        raw = _argument(args, APPLY_CANDIDATE_COMMAND)
        return cls(_field(raw, "uri", str, APPLY_CANDIDATE_COMMAND),
                   _field(raw, "qualname", str, APPLY_CANDIDATE_COMMAND),
                   _field(raw, "rank", int, APPLY_CANDIDATE_COMMAND))


def outcome(applied: bool, message: str, *, verified: bool = False, rank: int | None = None) -> dict[str, Any]:
    """What the solve command answers when it ends."""
    return {"applied": applied, "verified": verified, "rank": rank, "message": message}


# --- applying an edit ---


def _end_position(doc_lines: list[str], source: str, end_line: int, codec) -> tuple[types.Position, bool]:
    """Where a whole-lines replacement ends; False when it ends inside the last line (no newline after it)."""
    if end_line + 1 < len(doc_lines) or source.endswith(("\n", "\r")):
        return types.Position(line=end_line + 1, character=0), True
    last = doc_lines[end_line]
    return types.Position(line=end_line, character=codec.client_num_units(last)), False


def replacement_edit(ls: AtlasLanguageServer, uri: str, qualname: str, code: str,
                     expected_text: str | None) -> tuple[types.WorkspaceEdit | None, str]:
    """The edit that puts `code` in place of the function, or None and why not."""
    doc = ls.workspace.get_text_document(uri)
    source = doc.source
    site = find_function(source, qualname)
    if site is None:
        return None, f"{qualname} is no longer in the document (or it does not parse); nothing applied"
    if expected_text is not None and normalise(site.text) != normalise(expected_text):
        return None, f"{qualname} changed while ATLAS was solving it; nothing applied"
    try:
        text = function_replacement(source, site, code)
    except SpliceError as exc:
        return None, f"the candidate cannot replace {qualname}: {exc}; nothing applied"
    end, whole_lines = _end_position(source_lines(source), source, site.end_line, doc.position_codec)
    if not whole_lines:
        text = text.rstrip("\n")
    edit = types.TextEdit(range=types.Range(start=types.Position(line=site.start_line, character=0), end=end),
                          new_text=text)
    return _workspace_edit(ls, uri, doc.version, edit), ""


def _workspace_edit(ls: AtlasLanguageServer, uri: str, version: int | None,
                    edit: types.TextEdit) -> types.WorkspaceEdit:
    capabilities = ls.client_capabilities.workspace
    edit_caps = capabilities.workspace_edit if capabilities else None
    if edit_caps and edit_caps.document_changes:
        # With the version, the client itself refuses the edit if the document moved on since we looked.
        return types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(
            text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version), edits=[edit])])
    return types.WorkspaceEdit(changes={uri: [edit]})


async def apply_code(ls: AtlasLanguageServer, uri: str, qualname: str, code: str, expected_text: str | None,
                     label: str) -> tuple[bool, str]:
    edit, why_not = replacement_edit(ls, uri, qualname, code, expected_text)
    if edit is None:
        return False, why_not
    answer = await ls.workspace_apply_edit_async(types.ApplyWorkspaceEditParams(edit=edit, label=label))
    if not answer.applied:
        return False, f"the editor did not apply the edit ({answer.failure_reason or 'no reason given'})"
    return True, ""


# --- the solve ---


def describe_tests(suite: TestSuite | None) -> str:
    if suite is None:
        return "no tests or doctests: the result is unverified"
    if suite.kind == "pytest" and suite.pytest is not None:
        n = len(suite.pytest.node_ids)
        return f"{n} pytest test{'s' if n != 1 else ''}"
    if suite.kind == "assert":
        return "the docstring's doctest examples"
    return f"{suite.size} {suite.kind} tests"


def should_apply(result: SolveResult, has_tests: bool, policy: str) -> bool:
    """Verified code always; unverified code by the `apply_unverified` policy."""
    if not result.code:
        return False
    if result.verified:
        return True
    return policy == "always" or (policy == "no-tests" and not has_tests)


def chosen_rank(result: SolveResult) -> int | None:
    return next((c.rank for c in result.candidates if c.code == result.code), None)


def summary(record: SolveRecord, result: SolveResult, applied: bool, why_not: str) -> str:
    rank = chosen_rank(result)
    chosen = record.candidate(rank) if rank else None
    tests = (f"tests {chosen.verdict.passed_count}/{chosen.verdict.total}"
             if chosen is not None and chosen.verdict is not None and chosen.verdict.total else record.tests)
    head = f"ATLAS {'applied' if applied else 'did not apply'} candidate {rank} of {len(result.candidates)} " \
           f"for {record.qualname} ({tests}, tier {result.tier}, {result.seconds:.1f} s)" if rank else \
           f"ATLAS found no usable candidate for {record.qualname} ({result.note or 'nothing generated'})"
    if not applied and why_not:
        head += f": {why_not}"
    return head


async def _until_cancelled(awaitable, record: SolveRecord):
    """Await `awaitable`, or stop waiting as soon as the record is cancelled (returns None then)."""
    task = asyncio.ensure_future(awaitable)
    cancelled = record.cancelled_future()
    try:
        await asyncio.wait({task, cancelled}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        cancelled.cancel()
    if task.done() and not record.cancel.is_set():
        return task.result()
    # Left running (a model load, a shielded solve): whoever needs its result awaits it elsewhere.
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    return None


async def run_solve(ls: AtlasLanguageServer, args: SolveArgs) -> dict[str, Any]:
    doc = ls.workspace.get_text_document(args.uri)
    if not is_python(doc):
        return outcome(False, "not a Python document")
    source = doc.source
    site = find_function(source, args.qualname)
    if site is None or not site.is_stub:
        return outcome(False, f"{args.qualname} is not a stub function in this document (any more)")
    existing = ls.book.get(args.uri, args.qualname)
    if existing is not None and existing.active:
        return outcome(False, f"{args.qualname} is already being solved")
    path = document_path(args.uri)
    if path is None:
        return outcome(False, "only files on disk can be solved (the tests run from the workspace)")
    record = SolveRecord(args.uri, args.qualname, stub_text=site.text, model=ls.host.model_name(),
                         tests="finding tests")
    ls.book.put(record)
    reporter = await make_reporter(ls, record, f"ATLAS: solving {args.qualname}")
    ls.host.solving += 1
    ls.host.publish()
    try:
        result = await _solve(ls, record, reporter, path, source)
        if result is None:
            return _finish(record, reporter, "cancelled", cancelled_message(record))
        return await _apply_result(ls, record, reporter, result)
    except asyncio.CancelledError:  # the client cancelled the executeCommand request itself
        record.request_cancel()
        _finish(record, reporter, "cancelled", cancelled_message(record))
        raise
    except (EngineUnavailable, WorkspaceError) as exc:
        return _finish(record, reporter, "failed", f"ATLAS could not solve {args.qualname}: {exc}")
    except Exception as exc:  # the engine failed: say so, keep serving
        log.exception("solve of %s failed", args.qualname)
        return _finish(record, reporter, "failed", f"ATLAS failed on {args.qualname}: {type(exc).__name__}: {exc}")
    finally:
        ls.host.solving -= 1
        ls.host.publish()


def cancelled_message(record: SolveRecord) -> str:
    return f"ATLAS: solve of {record.qualname} cancelled; the document is untouched"


def _finish(record: SolveRecord, reporter: Reporter, state: str, message: str, **extra) -> dict[str, Any]:
    record.state, record.outcome, record.finished = state, message, time.monotonic()
    record.phase = state
    reporter.end(message)
    return outcome(False, message, **extra) if state != "solved" else outcome(True, message, **extra)


async def _solve(ls: AtlasLanguageServer, record: SolveRecord, reporter: Reporter, path,
                 source: str) -> SolveResult | None:
    loop = asyncio.get_running_loop()
    root = ls.root_for(path)
    reporter.report("finding tests", 0)
    index = await loop.run_in_executor(ls.host.executor, ls.test_index, root)
    task = await loop.run_in_executor(ls.host.executor, functools.partial(
        build_task, root, path, record.qualname, source, index=index))
    record.tests = task_tests = describe_tests(task.tests)
    ls.messenger.log(f"solving {record.qualname}: {task_tests}")
    if ls.host.state != "ready":
        reporter.report(f"loading model {ls.settings.model}", 0)
    solver = await _until_cancelled(ls.host.get(), record)
    if solver is None:
        return None
    record.model = ls.host.model_name()
    if ls.solve_lock.locked():
        reporter.report("waiting for another solve to finish", 0)
    async with ls.solve_lock:  # the model is one context: solves take turns
        if record.cancel.is_set():
            return None
        record.state = "solving"
        on_progress = functools.partial(loop.call_soon_threadsafe, reporter.phase)
        running = loop.run_in_executor(ls.host.executor, functools.partial(
            solver.solve, task, progress=on_progress, cancel=record.cancel))
        result = await _until_cancelled(asyncio.shield(running), record)
        if result is None:
            _finish(record, reporter, "cancelled", cancelled_message(record))  # tell the user at once
            await _settle(running)  # keep the model's turn until the engine has actually stopped
            return None
    await ls.host.describe_lens(solver)
    if result.cancelled:  # the engine stopped on its own account of the cancel event
        return None
    return result


async def _settle(running: asyncio.Future) -> None:
    try:
        await running
    except Exception as exc:  # the engine's way of stopping (Cancelled) is expected here
        log.debug("cancelled solve ended with %s", type(exc).__name__)


async def _apply_result(ls: AtlasLanguageServer, record: SolveRecord, reporter: Reporter,
                        result: SolveResult) -> dict[str, Any]:
    record.result = result
    has_tests = not record.tests.startswith("no tests")
    rank = chosen_rank(result)
    applied, why_not = False, ""
    if should_apply(result, has_tests, ls.settings.apply_unverified):
        applied, why_not = await apply_code(ls, record.uri, record.qualname, result.code, record.stub_text,
                                            f"ATLAS: solve {record.qualname}")
    elif result.code:
        why_not = ("no candidate passed the tests; the candidates are offered as code actions"
                   if has_tests else "the result is unverified and atlas.apply_unverified is 'never'")
    record.applied_rank = rank if applied else None
    message = summary(record, result, applied, why_not)
    if applied and not result.verified:
        message += " - unverified: " + (result.note or "no test confirmed it")
    state = "solved" if applied else "failed"
    done = _finish(record, reporter, state, message, verified=result.verified, rank=rank)
    if not applied:
        ls.messenger.show(message, "warning")
    return done


# --- other commands ---


async def apply_candidate(ls: AtlasLanguageServer, args: CandidateArgs) -> dict[str, Any]:
    record = ls.book.get(args.uri, args.qualname)
    candidate = record.candidate(args.rank) if record is not None else None
    if candidate is None:
        return outcome(False, f"no candidate {args.rank} for {args.qualname}: solve it first")
    applied, why_not = await apply_code(ls, args.uri, args.qualname, candidate.code, None,
                                        f"ATLAS: candidate {args.rank} for {args.qualname}")
    if applied:
        record.applied_rank = args.rank
        record.outcome = f"candidate {args.rank} applied by hand"
    else:
        ls.messenger.show(f"ATLAS: {why_not}", "warning")
    return outcome(applied, why_not or record.outcome, rank=args.rank,
                   verified=bool(candidate.verdict and candidate.verdict.passed))


def cancel(ls: AtlasLanguageServer, args: tuple) -> dict[str, Any]:
    raw = args[0] if args and isinstance(args[0], Mapping) else {}
    targets = [r for r in ls.book.active()
               if raw.get("uri") in (None, r.uri) and raw.get("qualname") in (None, r.qualname)]
    for record in targets:
        record.request_cancel()
    return {"cancelled": [r.qualname for r in targets]}


def register(ls: AtlasLanguageServer) -> None:
    # No annotations on the handlers: pygls evaluates them to convert arguments, and the server class is only
    # imported for type checking here. `*args` receives the raw JSON arguments, checked by the *Args classes.
    @ls.command(SOLVE_COMMAND)
    async def solve_command(ls, *args):
        return await run_solve(ls, SolveArgs.parse(args))

    @ls.command(APPLY_CANDIDATE_COMMAND)
    async def apply_candidate_command(ls, *args):
        return await apply_candidate(ls, CandidateArgs.parse(args))

    @ls.command(CANCEL_COMMAND)
    def cancel_command(ls, *args):
        return cancel(ls, args)

    @ls.command(STATUS_COMMAND)
    def status_command(ls, *args):
        return ls.host.status()
