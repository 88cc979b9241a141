"""The engine-side door onto the sandbox for callers outside the engine (the benchmark): run one code string
against a test suite, or many, and re-export the test and verdict types, so that `bench` imports `engine` only."""

from __future__ import annotations

import threading
from typing import Callable, Sequence

from sandbox.types import Limits, TestCase, TestResult, TestSuite, Verdict

__all__ = ["Limits", "TestCase", "TestResult", "TestSuite", "Verdict", "ReferenceFailed", "run", "run_many",
           "isolation_level", "reference_values"]


def run(code: str, suite: TestSuite, *, limits: Limits | None = None) -> Verdict:
    """Run `code` against `suite` in the sandbox, at the strongest isolation available."""
    import sandbox

    return sandbox.run(code, suite, limits=limits or Limits())


def run_many(codes: Sequence[str], suite: TestSuite, *, limits: Limits | None = None, stop_at_first_pass=False,
             cancel: threading.Event | None = None,
             on_result: Callable[[int, Verdict], None] | None = None) -> list[Verdict | None]:
    """Run every code string against the same suite on the sandbox's worker pool; by default all of them run (a
    benchmark grades every candidate), in the order given."""
    import sandbox

    return sandbox.run_ranked(codes, suite, stop_at_first_pass=stop_at_first_pass, cancel=cancel,
                              on_result=on_result, limits=limits or Limits())


def isolation_level() -> str:
    import sandbox

    return sandbox.isolation_level()


class ReferenceFailed(Exception):
    """Trusted reference code (a dataset's canonical solution) failed to produce its values."""


# Runs inside the child: execute the reference program, then hand back the value it left in `__values__`.
_REFERENCE_RUNNER = r"""
import base64, pickle, sys
source = sys.stdin.read()
scope = {"__name__": "__main__"}
exec(compile(source, "<reference>", "exec"), scope)
sys.stdout.write("\n__VALUES__" + base64.b64encode(pickle.dumps(scope["__values__"], protocol=4)).decode())
"""


def reference_values(program: str, *, limits: Limits | None = None):
    """The value a trusted reference program (a dataset's canonical or ground-truth code) leaves in `__values__`.

    The sandbox answers verdicts, not values, so expected outputs and SciCode targets are computed here: in a fresh
    child interpreter, in a temporary directory, with an empty environment, under the same time and memory limits.
    Only dataset code runs this way, never a model's candidate.
    """
    import base64
    import os
    import pickle
    import resource
    import subprocess
    import sys
    import tempfile

    limits = limits or Limits()

    def bound() -> None:  # in the child, before exec: the same ceilings a test run gets
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s))
        memory = limits.memory_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        os.setsid()

    with tempfile.TemporaryDirectory(prefix="atlas-reference-") as workdir:
        env = {"PATH": os.defpath, "HOME": workdir, "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1",
               "OMP_NUM_THREADS": "1"}
        try:
            done = subprocess.run([sys.executable, "-I", "-c", _REFERENCE_RUNNER], input=program, text=True,
                                  capture_output=True, cwd=workdir, env=env, timeout=limits.timeout_s,
                                  preexec_fn=bound)
        except subprocess.TimeoutExpired:
            raise ReferenceFailed(f"reference code ran past {limits.timeout_s:g} s") from None
    marker = done.stdout.rfind("\n__VALUES__")
    if done.returncode != 0 or marker < 0:
        tail = (done.stderr or done.stdout)[-600:].strip()
        raise ReferenceFailed(f"reference code failed (exit {done.returncode}): {tail}")
    return pickle.loads(base64.b64decode(done.stdout[marker + len("\n__VALUES__"):]))
