"""The real atlas-ls server, with a scripted Solver in place of the model: for the fast, deterministic tests of the
editor flow (progress, cancellation, version checks, alternatives). The end-to-end tests beside them run the real
engine on the default model.

The script is a JSON file named by ATLAS_TEST_SCRIPT, read at each solve:
  {"candidates": [{"code": str, "energy": float, "confidence": float, "passed": [bool, ...]}],
   "step_s": float, "block": bool (run until cancelled), "load_error": str (the Solver cannot be created),
   "verified": bool | null}
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script from anywhere

from atlas_ls.server import create_server  # noqa: E402
from engine.pipeline import Progress  # noqa: E402
from engine.task import CandidateReport, SolveResult  # noqa: E402
from sandbox.types import TestResult, Verdict  # noqa: E402


def read_script() -> dict:
    return json.loads(Path(os.environ["ATLAS_TEST_SCRIPT"]).read_text())


class ScriptedSolver:
    def __init__(self, settings) -> None:
        self.settings = settings
        error = read_script().get("load_error")
        if error:
            raise RuntimeError(error)

    def lens_state(self) -> str:
        return "scripted: no Lens"

    def solve(self, task, *, progress=None, cancel: threading.Event | None = None, k=None) -> SolveResult:
        script = read_script()
        step = script.get("step_s", 0.05)
        report = progress or (lambda p: None)
        cancel = cancel or threading.Event()
        specs = script["candidates"]
        # Like the engine, a cancelled solve returns what it has, marked cancelled.
        stopped = SolveResult(verified=False, code=None, tier="FAST", k=0, difficulty=0.4, cancelled=True)
        report(Progress("routing", 0, 1))
        while script.get("block") and not cancel.wait(0.05):
            pass
        reports = []
        for i, spec in enumerate(specs, start=1):
            if cancel.wait(step):
                return stopped
            report(Progress("generating", i, len(specs)))
            reports.append(CandidateReport(code=spec["code"], energy=spec.get("energy"),
                                           confidence=spec.get("confidence"), mean_logprob=-0.5, rank=i))
        report(Progress("scoring", 0, 1))
        for i, (spec, candidate) in enumerate(zip(specs, reports), start=1):
            if cancel.wait(step):
                return stopped
            results = [TestResult(name=f"test_{j}", status="pass" if ok else "fail", seconds=0.01)
                       for j, ok in enumerate(spec.get("passed", []))]
            candidate.verdict = Verdict(passed=bool(results) and all(r.passed for r in results), tests=results)
            report(Progress("testing", i, len(specs)))
        winner = next((c for c in reports if c.passed), None)
        return SolveResult(verified=winner is not None, code=(winner or reports[0]).code, tier="STANDARD",
                           k=len(specs), difficulty=0.4, candidates=reports, ranking="lens", seconds=0.5)


if __name__ == "__main__":
    create_server(solver_factory=ScriptedSolver).start_io()
