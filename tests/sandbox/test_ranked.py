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


def test_an_unexpected_sandbox_error_fails_that_candidate_only_and_names_the_error(monkeypatch):
    # Once, CPython's ast.parse raised SystemError inside a worker thread: the thread died and its candidate was left
    # untested (None) with no word. Now that candidate gets a failed verdict naming the error; the rest still run.
    from sandbox import runner

    real = runner.run_candidate

    def flaky(code, *args, **kwargs):
        if code == WRONG:
            raise SystemError("AST constructor recursion depth mismatch")
        return real(code, *args, **kwargs)

    monkeypatch.setattr(runner, "run_candidate", flaky)
    seen = []
    results = sandbox.run_ranked([WRONG, RIGHT, RIGHT], SUITE, stop_at_first_pass=False, workers=2, limits=LIMITS,
                                 on_result=lambda i, v: seen.append(i))
    assert not results[0].passed
    assert "SystemError" in results[0].error and "recursion depth mismatch" in results[0].error
    assert [t.status for t in results[0].tests] == ["crash", "crash"]
    assert results[1].passed and results[2].passed
    assert sorted(seen) == [0, 1, 2]
