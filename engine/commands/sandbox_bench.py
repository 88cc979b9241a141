"""`atlas-ls --bench sandbox [--json]`: tests per second through the sandbox, three ways.

  baseline  `subprocess.run([python, file])` per test: a fresh interpreter, no isolation, no limits
  fresh     the sandbox, with a fresh interpreter (and at "bwrap", a fresh bubblewrap) per test
  fork      the sandbox's warm fork server: one fork per test from a clean parent with the harness imported

for a trivial stdin test and a trivial functional test, one test at a time (so the figure is the per-test cost).
The issue's target: fork >= 3x baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SPEEDUP = 3.0
WAYS = ("baseline", "fresh", "fork")
STDIN_CODE = "print(int(input()) * 2)\n"
FUNCTION_CODE = "def double(x):\n    return 2 * x\n"
# The baseline's functional test: the candidate plus a driver that reads the JSON arguments and prints the result.
DRIVER = "\nimport json, sys\nprint(json.dumps(double(*[json.loads(l) for l in sys.stdin.read().split('\\n')])))\n"


def suites(count: int):
    from sandbox import TestCase, TestSuite

    cases = tuple(TestCase("21\n", "42\n") for _ in range(count))
    return {"stdin": (STDIN_CODE, TestSuite("stdin", cases=cases)),
            "functional": (FUNCTION_CODE, TestSuite("functional", cases=tuple(TestCase("21", "42")
                                                                            for _ in range(count)), entry="double"))}


def baseline(kind: str, code: str, count: int) -> int:
    """`subprocess.run([python, file])` per test; returns how many passed."""
    passed = 0
    with tempfile.TemporaryDirectory(prefix="atlas-bench-") as folder:
        path = Path(folder) / "candidate.py"
        path.write_text(code if kind == "stdin" else code + DRIVER)
        for _ in range(count):
            done = subprocess.run([sys.executable, str(path)], input="21\n" if kind == "stdin" else "21",
                                  capture_output=True, text=True, timeout=30)
            passed += done.returncode == 0 and done.stdout.strip() == "42"
    return passed


def through_sandbox(way: str, code: str, suite, level: str) -> int:
    from sandbox.runner import FreshLease, Lease, Plan, run_candidate
    from sandbox.types import Limits

    lease = FreshLease(level) if way == "fresh" else Lease(level)
    try:
        verdict = run_candidate(code, Plan(suite, Limits()), level, lease)
    finally:
        lease.release()
    return verdict.passed_count


def measure(way: str, kind: str, count: int, level: str) -> float:
    code, suite = suites(count)[kind]
    warm_code, warm_suite = suites(1)[kind]
    run_way = (lambda c, s, n: baseline(kind, c, n)) if way == "baseline" \
        else (lambda c, s, n: through_sandbox(way, c, s, level))
    run_way(warm_code, warm_suite, 1)  # first use: page cache, and for "fork" the warm server it is about
    started = time.perf_counter()
    passed = run_way(code, suite, count)
    seconds = time.perf_counter() - started
    if passed != count:
        raise RuntimeError(f"{way}/{kind}: only {passed} of {count} trivial tests passed")
    return count / seconds


def bench_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="atlas-ls --bench sandbox", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tests", type=int, default=40, help="tests per way and kind (default 40)")
    parser.add_argument("--isolation", choices=("bwrap", "namespaces", "rlimits"),
                        help="isolation level for fresh and fork (default: the strongest available)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.tests < 1:
        parser.error("--tests must be at least 1")
    import sandbox
    from sandbox.isolation import resolve

    try:
        level = resolve(args.isolation)
    except (sandbox.IsolationUnavailable, ValueError) as exc:
        print(f"atlas-ls --bench sandbox: {exc}", file=sys.stderr)
        return 2
    by_kind = {kind: {way: measure(way, kind, args.tests, level) for way in WAYS} for kind in ("stdin", "functional")}
    # Over both kinds: all tests / all time, per way.
    overall = {way: 2 / sum(1 / by_kind[kind][way] for kind in by_kind) for way in WAYS}
    speedup = {way: overall[way] / overall["baseline"] for way in ("fresh", "fork")}
    report = {"tests_per_s": overall, "by_kind": by_kind, "speedup_vs_baseline": speedup,
              "target_speedup": TARGET_SPEEDUP, "meets_target": speedup["fork"] >= TARGET_SPEEDUP,
              "isolation": level, "tests_per_way_and_kind": args.tests, "python": sys.version.split()[0],
              "load_average": list(os.getloadavg())}  # a busy machine slows the fork way's many hand-offs most
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"sandbox tests per second (isolation {level}, {args.tests} tests per way and kind)")
    print(f"{'way':<10}{'stdin':>10}{'functional':>12}{'overall':>10}{'vs baseline':>13}")
    for way in WAYS:
        ratio = "" if way == "baseline" else f"{speedup[way]:.1f}x"
        print(f"{way:<10}{by_kind['stdin'][way]:>10.1f}{by_kind['functional'][way]:>12.1f}{overall[way]:>10.1f}"
              f"{ratio:>13}")
    print(f"target: fork >= {TARGET_SPEEDUP:g}x baseline: {'met' if report['meets_target'] else 'NOT met'} "
          f"(load average {report['load_average'][0]:.1f})")
    return 0
