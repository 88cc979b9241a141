"""Progress of one solve, as the client can show it.

With `window.workDoneProgress` the server creates a cancellable work-done progress (begin, a report per phase,
end); the user's cancel reaches the solve's cancel event. Without it the start and the end are shown as messages,
the phases go to the log, and the `atlas.cancel` command stops the solve.
"""

from __future__ import annotations

import itertools
import logging
import time
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from atlas_ls.protocol import CANCEL_COMMAND
from atlas_ls.records import SolveRecord

if TYPE_CHECKING:
    from atlas_ls.server import AtlasLanguageServer

log = logging.getLogger(__name__)

# Percentage spans of the engine's phases; escalating starts a new round of generation, and percentages must not
# go back, so the bar holds while the message says what happens.
SPANS = {"routing": (0, 5), "generating": (5, 60), "scoring": (60, 65), "testing": (65, 95),
         "escalating": (5, 60), "learning": (95, 99), "done": (99, 100)}
REPORT_INTERVAL_S = 0.1
_tokens = itertools.count(1)


def phase_text(progress: Any) -> str:
    """e.g. "generating 1/3 (token 12 of at most 128)", "testing 1/3 (rank 1: passed)",
    "escalating (STANDARD, k=5)", "routing"."""
    phase, done, total = progress.phase, progress.done, progress.total
    text = f"{phase} {done}/{total}" if phase in ("generating", "testing") and total else phase
    message = getattr(progress, "message", "")
    return f"{text} ({message})" if message else text


def phase_percentage(progress: Any) -> int:
    low, high = SPANS.get(progress.phase, (0, 0))
    if progress.fraction is not None:  # finer than done/total (generating: tokens move before candidates finish)
        return int(low + (high - low) * min(max(progress.fraction, 0.0), 1.0))
    if progress.total:
        return int(low + (high - low) * min(progress.done, progress.total) / progress.total)
    return low


class Reporter:
    """Shared bookkeeping: the record's phase for hover, one message per change, an idempotent end."""

    def __init__(self, ls: AtlasLanguageServer, record: SolveRecord, title: str) -> None:
        self.ls, self.record, self.title = ls, record, title
        self.percentage = 0
        self.last_text = self.last_phase = ""
        self.last_sent = 0.0
        self.ended = False

    def phase(self, progress: Any) -> None:
        """One `engine.pipeline.Progress` from the engine (on the event loop's thread)."""
        if self.ended:
            return
        self.record.phase = progress.phase
        self.record.detail = phase_text(progress)
        finished = bool(progress.total) and progress.done >= progress.total
        self.report(self.record.detail, phase_percentage(progress), force=finished)

    def report(self, text: str, percentage: int, *, force: bool = False) -> None:
        """Send a change; within one phase at most one per REPORT_INTERVAL_S (the engine reports every token),
        except the step that completes the phase."""
        if self.ended or text == self.last_text:
            return
        phase = text.split(" ", 1)[0]
        now = time.monotonic()
        if not force and phase == self.last_phase and now - self.last_sent < REPORT_INTERVAL_S:
            return
        self.last_text, self.last_phase, self.last_sent = text, phase, now
        self.percentage = max(self.percentage, min(100, percentage))
        self._send_report(text)

    def end(self, message: str) -> None:
        if self.ended:
            return
        self.ended = True
        self._send_end(message)

    def _send_report(self, text: str) -> None:
        raise NotImplementedError

    def _send_end(self, message: str) -> None:
        raise NotImplementedError


class WorkDoneReporter(Reporter):
    def __init__(self, ls: AtlasLanguageServer, record: SolveRecord, title: str, token: str) -> None:
        super().__init__(ls, record, title)
        self.token = token

    def begin(self) -> None:
        self.ls.work_done_progress.begin(self.token, types.WorkDoneProgressBegin(
            title=self.title, cancellable=True, message="starting", percentage=0))
        # pygls cancels this future when the client sends window/workDoneProgress/cancel.
        future = self.ls.work_done_progress.tokens.get(self.token)
        if future is not None:
            future.add_done_callback(lambda f: f.cancelled() and self.record.request_cancel())

    def _send_report(self, text: str) -> None:
        self.ls.work_done_progress.report(self.token, types.WorkDoneProgressReport(
            message=text, percentage=self.percentage, cancellable=True))

    def _send_end(self, message: str) -> None:
        self.ls.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message=message))
        self.ls.work_done_progress.tokens.pop(self.token, None)


class MessageReporter(Reporter):
    def begin(self) -> None:
        self.ls.messenger.show(f"{self.title} (run the command '{CANCEL_COMMAND}' to cancel)", "info")

    def _send_report(self, text: str) -> None:
        self.ls.messenger.log(f"{self.record.qualname}: {text}")

    def _send_end(self, message: str) -> None:
        self.ls.messenger.show(message, "info")


def supports_work_done_progress(ls: AtlasLanguageServer) -> bool:
    window = ls.client_capabilities.window
    return bool(window and window.work_done_progress)


async def make_reporter(ls: AtlasLanguageServer, record: SolveRecord, title: str) -> Reporter:
    """A work-done progress when the client supports it (and creating one works), else messages."""
    if supports_work_done_progress(ls):
        token = f"atlas-solve-{next(_tokens)}"
        try:
            await ls.work_done_progress.create_async(token)
        except Exception as exc:  # the client refused: fall back rather than fail the solve
            ls.messenger.log(f"window/workDoneProgress/create failed ({exc}); reporting with messages", "warning")
        else:
            reporter: Reporter = WorkDoneReporter(ls, record, title, token)
            reporter.begin()
            return reporter
    reporter = MessageReporter(ls, record, title)
    reporter.begin()
    return reporter
