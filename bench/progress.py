"""A progress bar with an ETA on stderr: redrawn in place on a terminal, one line per task in a log file."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class ProgressBar:
    def __init__(self, total: int, *, already_done: int = 0, stream: TextIO | None = None, width: int = 24,
                 clock=time.monotonic) -> None:
        self.total = total
        self.done = already_done
        self.passed = 0
        self.graded = 0
        self.stream = stream or sys.stderr
        self.width = width
        self.clock = clock
        self.started = clock()
        self.done_here = 0  # tasks finished in this session: only they measure speed (resumed ones took no time)
        self.interactive = getattr(self.stream, "isatty", lambda: False)()

    def eta_seconds(self) -> float | None:
        if self.done_here == 0:
            return None
        per_task = (self.clock() - self.started) / self.done_here
        return per_task * max(0, self.total - self.done)

    def line(self, status: str = "") -> str:
        fraction = self.done / self.total if self.total else 1.0
        filled = int(round(fraction * self.width))
        bar = "#" * filled + "." * (self.width - filled)
        eta = self.eta_seconds()
        rate = f" pass@1 {100 * self.passed / self.graded:.1f}%" if self.graded else ""
        when = f" ETA {format_duration(eta)}" if eta is not None else " ETA --"
        return f"[{bar}] {self.done}/{self.total} {100 * fraction:5.1f}%{rate}{when} {status}".rstrip()

    def show(self, status: str = "") -> None:
        if self.interactive:
            self.stream.write("\r\033[K" + self.line(status))
        else:
            self.stream.write(self.line(status) + "\n")
        self.stream.flush()

    def advance(self, passed: bool | None, status: str = "") -> None:
        self.done += 1
        self.done_here += 1
        if passed is not None:
            self.graded += 1
            self.passed += bool(passed)
        self.show(status)

    def close(self) -> None:
        if self.interactive:
            self.stream.write("\n")
            self.stream.flush()
