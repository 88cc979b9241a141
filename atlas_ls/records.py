"""What the server remembers about each function it solved or is solving: state, phase, the result and its
candidates. Hover and the alternative-candidate actions read it; the solve command writes it (on the event loop's
thread only, so it needs no lock).
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

from engine.task import CandidateReport, SolveResult, normalise

STATES = ("queued", "solving", "solved", "failed", "cancelled")


@dataclass
class SolveRecord:
    uri: str
    qualname: str
    stub_text: str  # the function as it was when the solve began: the edit applies only over this
    model: str
    tests: str  # what judges it: "3 pytest tests", "doctest examples", "no tests"
    state: str = "queued"
    phase: str = "queued"
    detail: str = ""
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    result: SolveResult | None = None
    applied_rank: int | None = None
    outcome: str = ""  # one line for the user: what happened at the end
    cancel: threading.Event = field(default_factory=threading.Event)  # read by the engine's threads
    _waiters: list[asyncio.Future] = field(default_factory=list, repr=False)

    @property
    def active(self) -> bool:
        return self.state in ("queued", "solving")

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def request_cancel(self) -> None:
        """Stop this solve: the engine sees the event, and whoever awaits `cancelled_future` wakes up."""
        self.cancel.set()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    def cancelled_future(self) -> asyncio.Future:
        """A future of the running loop that completes when the solve is cancelled."""
        waiter = asyncio.get_running_loop().create_future()
        if self.cancel.is_set():
            waiter.set_result(None)
        else:
            self._waiters.append(waiter)
        return waiter

    def candidate(self, rank: int) -> CandidateReport | None:
        if self.result is None:
            return None
        return next((c for c in self.result.candidates if c.rank == rank), None)

    def alternatives(self, limit: int) -> list[CandidateReport]:
        """Distinct candidates other than the one applied, best rank first (a sampled candidate often repeats
        another word for word)."""
        if self.result is None or limit <= 0:
            return []
        applied = self.candidate(self.applied_rank) if self.applied_rank is not None else None
        seen = {normalise(applied.code)} if applied is not None else set()
        others = []
        for candidate in sorted(self.result.candidates, key=lambda c: c.rank):
            key = normalise(candidate.code)
            if candidate.code.strip() and key not in seen:
                seen.add(key)
                others.append(candidate)
        return others[:limit]


class SolveBook:
    """Records keyed by (document uri, function qualname)."""

    def __init__(self) -> None:
        self._records: dict[tuple[str, str], SolveRecord] = {}

    def get(self, uri: str, qualname: str) -> SolveRecord | None:
        return self._records.get((uri, qualname))

    def put(self, record: SolveRecord) -> None:
        self._records[(record.uri, record.qualname)] = record

    def active(self) -> list[SolveRecord]:
        return [r for r in self._records.values() if r.active]

    def in_document(self, uri: str) -> list[SolveRecord]:
        return [r for r in self._records.values() if r.uri == uri]
