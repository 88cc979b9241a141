"""Many candidates in ranked order: early exit at the first that passes, run-all, cancellation, callbacks."""

from __future__ import annotations

import threading
import time

import sandbox
from sandbox import Limits, TestCase, TestSuite

SUITE = TestSuite("stdin", cases=(TestCase("2\n", "4\n"), TestCase("5\n", "10\n")))
RIGHT = "print(int(input()) * 2)"
WRONG = "print(int(input()) + 2)"  # right on the first test only
SLOW_RIGHT = "import time\ntime.sleep(0.3)\n" + RIGHT
LIMITS = Limits(timeout_s=10)


def test_sequential_early_exit_leaves_the_rest_unrun(strongest):
    seen = []
    results = sandbox.run_ranked([WRONG, RIGHT, RIGHT, WRONG], SUITE, workers=1, limits=LIMITS,
                                 on_result=lambda i, v: seen.append((i, v.passed)))
    assert [None if r is None else r.passed for r in results] == [False, True, None, None]
    assert seen == [(0, False), (1, True)]
    assert results[0].tests[1].status == "fail" and results[1].isolation == strongest


def test_parallel_early_exit_keeps_rank_order(strongest):
    codes = [WRONG, WRONG, SLOW_RIGHT] + [SLOW_RIGHT] * 7
    results = sandbox.run_ranked(codes, SUITE, workers=2, limits=LIMITS)
    first_pass = next(i for i, r in enumerate(results) if r is not None and r.passed)
    assert first_pass == 2
    assert all(r is not None and not r.passed for r in results[:2])  # higher-ranked ones always finish
    assert sum(r is None for r in results[3:]) >= 5  # the tail was cancelled, not run


def test_run_all_runs_everything(strongest):
    results = sandbox.run_ranked([RIGHT, WRONG, RIGHT], SUITE, stop_at_first_pass=False, workers=2, limits=LIMITS)
    assert [r.passed for r in results] == [True, False, True]


def test_cancel_event_stops_running_tests(strongest):
    cancel = threading.Event()
    sleeper = "import time\ntime.sleep(8)\n" + RIGHT
    threading.Timer(0.5, cancel.set).start()
    started = time.monotonic()
    results = sandbox.run_ranked([sleeper] * 4, SUITE, workers=2, cancel=cancel, limits=LIMITS)
    assert results == [None] * 4
    assert time.monotonic() - started < 4


def test_verdicts_after_a_cancel_still_work(strongest):
    cancel = threading.Event()
    cancel.set()
    assert sandbox.run_ranked([RIGHT], SUITE, cancel=cancel, limits=LIMITS) == [None]
    assert sandbox.run_ranked([RIGHT], SUITE, limits=LIMITS)[0].passed
