"""The server's pure pieces, without a session: settings layers, progress text, titles, policies, arguments."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from pygls.exceptions import JsonRpcInvalidParams
from pygls.workspace.position_codec import PositionCodec

from atlas_ls.actions import candidate_title, kind_requested
from atlas_ls.progress import Reporter, phase_percentage, phase_text
from atlas_ls.records import SolveRecord
from atlas_ls.settings import InitializationOptions, resolve_settings, without_defaults
from atlas_ls.solving import SolveArgs, _end_position, describe_tests, should_apply
from engine.task import CandidateReport, SolveResult
from sandbox.types import PytestTarget, TestResult, TestSuite, Verdict


# --- settings ---

def test_initialization_options_flat_nested_and_bad():
    assert InitializationOptions.parse({"nCtx": 1024})[0].settings == {"nCtx": 1024}
    assert InitializationOptions.parse({"atlas": {"model": "x.gguf"}})[0].settings == {"model": "x.gguf"}
    options, problems = InitializationOptions.parse(["model"])
    assert options.settings == {} and "should be an object" in problems[0]


def test_defaults_from_the_editor_do_not_hide_lower_layers():
    from engine.config import Settings
    default_n_ctx = Settings().n_ctx
    assert without_defaults({"n_ctx": default_n_ctx, "nThreads": 2, "tierK": [1, 5, 20], "model": "other"}) == \
        {"nThreads": 2, "model": "other"}
    assert without_defaults({"n_ctx": default_n_ctx + 1}) == {"n_ctx": default_n_ctx + 1}


def test_layers_in_order(tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text("[tool.atlas]\nn_ctx = 2048\nn_threads = 3\nseed = 7\n")
    user = tmp_path / "config.toml"
    user.write_text("n_ctx = 1024\nn_threads = 5\nseed = 9\nmax_alternatives = 2\n")
    environ = {"ATLAS_SEED": "11", "ATLAS_MAX_ALTERNATIVES": "3"}
    init = InitializationOptions({"nCtx": 8192})
    settings, problems = resolve_settings(tmp_path, init, {"n_ctx": 1536, "n_threads": 4}, environ, user)
    assert problems == []
    assert settings.n_ctx == 8192  # initializationOptions
    assert settings.n_threads == 4  # workspace/configuration
    assert settings.seed == 7  # pyproject.toml beats the environment
    assert settings.max_alternatives == 3  # the environment beats the user file


def test_invalid_values_name_the_key_and_what_is_accepted(tmp_path: Path):
    settings, problems = resolve_settings(tmp_path, InitializationOptions({"applyUnverified": "maybe"}),
                                          {"watch_debounce_ms": -5}, {}, None)
    assert settings.apply_unverified == "no-tests" and settings.watch_debounce_ms == 300
    assert any("'apply_unverified'" in p and "'never', 'no-tests', 'always'" in p for p in problems)
    assert any("'watch_debounce_ms'" in p and "from 0 to 10000" in p for p in problems)
    _, problems = resolve_settings(tmp_path, InitializationOptions(), "atlas", {}, None)
    assert "should be an object" in problems[0]


# --- progress ---

def Progress(phase: str, done: int = 0, total: int = 0, message: str = "",
             fraction: float | None = None) -> SimpleNamespace:
    """The fields of engine.pipeline.Progress, which the reporter reads."""
    return SimpleNamespace(phase=phase, done=done, total=total, message=message, fraction=fraction)


def test_phase_text_and_percentage():
    assert phase_text(Progress("generating", 1, 3, "token 12 of at most 128")) == \
        "generating 1/3 (token 12 of at most 128)"
    # the fraction (tokens) moves the bar while no candidate has finished yet
    assert phase_percentage(Progress("generating", 0, 3, "token 64 of at most 128", 0.5)) == 32
    assert phase_text(Progress("testing", 1, 2)) == "testing 1/2"
    assert phase_text(Progress("escalating", 0, 0, "STANDARD, k=5")) == "escalating (STANDARD, k=5)"
    assert phase_percentage(Progress("routing")) == 0
    assert phase_percentage(Progress("generating", 64, 128)) == 32
    assert phase_percentage(Progress("testing", 2, 2)) == 95


class RecordingReporter(Reporter):
    def __init__(self):
        super().__init__(None, SolveRecord("file:///m.py", "f", "def f(): pass\n", "m", "no tests"), "t")
        self.sent: list[tuple[str, int]] = []

    def _send_report(self, text):
        self.sent.append((text, self.percentage))

    def _send_end(self, message):
        self.sent.append(("END " + message, self.percentage))


def test_reports_are_throttled_within_a_phase_and_never_go_back():
    reporter = RecordingReporter()
    for token in range(1, 51):
        reporter.phase(Progress("generating", token, 50))
    reporter.phase(Progress("escalating", 0, 0, "STANDARD"))
    reporter.phase(Progress("generating", 1, 50))
    reporter.end("done")
    reporter.end("twice")
    texts = [t for t, _ in reporter.sent]
    assert texts[0] == "generating 1/50" and "generating 50/50" in texts, "first and completing steps get through"
    assert len([t for t in texts if t.startswith("generating")]) < 10
    assert texts[-1] == "END done"
    percentages = [p for _, p in reporter.sent]
    assert percentages == sorted(percentages)
    assert reporter.record.phase == "generating" and reporter.record.detail == "generating 1/50"


# --- actions and records ---

def test_kind_filter():
    assert kind_requested(None) and kind_requested([])
    assert kind_requested(["refactor"]) and kind_requested(["refactor.rewrite"])
    assert kind_requested(["refactor.rewrite.atlas"])
    assert not kind_requested(["quickfix"]) and not kind_requested(["refactor.rewr"])


def verdict(*statuses: str) -> Verdict:
    tests = [TestResult(name=f"t{i}", status=s, seconds=0.1) for i, s in enumerate(statuses)]
    return Verdict(passed=all(s == "pass" for s in statuses), tests=tests)


def candidate(rank: int, code: str, energy=None, result=None) -> CandidateReport:
    return CandidateReport(code=code, energy=energy, confidence=None, mean_logprob=-0.25, rank=rank, verdict=result)


def test_candidate_titles():
    assert candidate_title(candidate(2, "x", 3.14, verdict("pass", "pass", "fail", "pass", "pass")), 5) == \
        "ATLAS candidate 2: energy 3.1, tests 4/5"
    assert candidate_title(candidate(3, "x"), 5) == "ATLAS candidate 3: log-prob -0.25, tests not run"
    assert candidate_title(candidate(1, "x"), None) == "ATLAS candidate 1: log-prob -0.25, no tests"
    broken = Verdict(passed=False, error="does not parse")
    assert candidate_title(candidate(1, "x", result=broken), 2).endswith("does not run")


def test_alternatives_are_distinct_and_exclude_the_applied_one():
    record = SolveRecord("file:///m.py", "f", "def f(): pass\n", "m", "2 pytest tests")
    record.result = SolveResult(verified=True, code="return 1", tier="STANDARD", k=4, difficulty=0.5, candidates=[
        candidate(1, "return 1"), candidate(2, "return  1"), candidate(3, "return 2"), candidate(4, "return 2")])
    record.applied_rank = 1
    assert [c.rank for c in record.alternatives(5)] == [3]
    record.applied_rank = None
    assert [c.rank for c in record.alternatives(5)] == [1, 3]
    assert record.alternatives(0) == []


# --- solving policies and arguments ---

def result(verified: bool, code: str | None = "return 1") -> SolveResult:
    return SolveResult(verified=verified, code=code, tier="FAST", k=1, difficulty=0.1)


@pytest.mark.parametrize("policy, has_tests, verified, applies", [
    ("never", True, True, True), ("never", False, False, False), ("no-tests", False, False, True),
    ("no-tests", True, False, False), ("always", True, False, True),
])
def test_apply_policy(policy, has_tests, verified, applies):
    assert should_apply(result(verified), has_tests, policy) is applies


def test_nothing_to_apply_without_code():
    assert not should_apply(result(False, code=None), False, "always")


def test_describe_tests():
    target = PytestTarget(workspace=Path("/w"), target_file=Path("m.py"), function="f", node_ids=("a", "b"))
    assert describe_tests(TestSuite("pytest", pytest=target)) == "2 pytest tests"
    assert describe_tests(TestSuite("assert", assert_code="assert 1")) == "the docstring's doctest examples"
    assert describe_tests(None).startswith("no tests")


def test_solve_arguments():
    args = SolveArgs.parse(({"uri": "file:///m.py", "qualname": "f", "version": 3},))
    assert args == SolveArgs("file:///m.py", "f", 3, None)
    for bad in ((), ({"uri": "file:///m.py"},), ({"uri": "u", "qualname": "f", "version": True},), ("f",)):
        with pytest.raises(JsonRpcInvalidParams):
            SolveArgs.parse(bad)


def test_edit_end_positions():
    codec = PositionCodec()
    lines = ["def f():\n", "    pass\n", "x = 1\n"]
    assert _end_position(lines, "".join(lines), 1, codec)[0].line == 2
    last = ["def f():\n", "    pass  # é😀"]
    position, whole = _end_position(last, "".join(last), 1, codec)
    assert not whole and (position.line, position.character) == (1, len("    pass  # é") + 2)
