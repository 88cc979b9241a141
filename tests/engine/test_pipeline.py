"""The solve pipeline. Unit tests drive it with a scripted model (a fake Runtime behind a synchronous worker) and the
real sandbox, Lens learner and SQLite file; the end-to-end tests at the bottom use the real default model."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import random
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import numpy as np
import pytest

from engine import prompts
from engine.cache import signature_of
from engine.config import Settings
from engine.pipeline import Progress, Solver, _canonical
from engine.runtime import Cancelled, Generation, Sampling
from engine.task import Task
from engine.workspace import build_task
from sandbox.types import TestSuite
from tests.conftest import REPO_ROOT

ADD_PROMPT = 'def add(a, b):\n    """Return the sum of a and b."""\n'
ADD_TESTS = TestSuite(kind="assert", entry="add", assert_code="assert add(2, 3) == 5\nassert add(-1, 1) == 0\n")
RIGHT = "def add(a, b):\n    return a + b\n```"
WRONG = "def add(a, b):\n    return a - b\n```"
ALSO_WRONG = "def add(a, b):\n    return a * b\n```"


def add_task(**changes) -> Task:
    return dataclasses.replace(Task(prompt=ADD_PROMPT, entry_point="add", tests=ADD_TESTS), **changes)


def _vector(text: str, n: int = 8) -> np.ndarray:
    digest = hashlib.sha256(text.encode()).digest()
    return np.frombuffer(digest[: 4 * n], dtype=np.uint32).astype(np.float32) / 2**32


class ScriptedRuntime:
    """Answers each sampling with `reply(sampling)`; greedy is the most probable by mean log-probability."""

    def __init__(self, reply: Callable[[Sampling], str]):
        self.reply = reply
        self.info = SimpleNamespace(fingerprint="scripted-model", n_embd=8, name="scripted")
        self.calls: list[dict] = []
        self.pause: threading.Event | None = None  # set by a test to hold generation mid-way
        self.logprob_of: Callable[[Sampling], float] = lambda s: -0.1 if s.temperature == 0 else -0.5

    def format_chat(self, messages: list[dict]) -> str:
        return "\n".join(f"<{m['role']}>{m['content']}" for m in messages) + "\n<assistant>"

    def generate(self, prompt, samplings, *, max_tokens, stop=(), cancel=None, on_step=None, embed=True):
        self.calls.append({"prompt": prompt, "samplings": list(samplings), "max_tokens": max_tokens})
        self.prompt = prompt  # a reply may depend on it
        for step in range(1, 4):
            if self.pause is not None:
                self.pause.wait(5)
            if cancel is not None and cancel.is_set():
                raise Cancelled([])
            if on_step:
                on_step(step, max_tokens, len(samplings) if step == 3 else 0)
        out = []
        for s in samplings:
            text = self.reply(s)
            lp = self.logprob_of(s)
            out.append(Generation(text=text, token_ids=list(range(len(text) // 4)), logprobs=[lp] * 5,
                                  finish_reason="stop", sampling=s, embedding=_vector(text) if embed else None))
        return out

    def embed(self, prompt, completions):
        return np.stack([_vector(c) for c in completions])


class SyncWorker:
    def __init__(self, runtime):
        self._runtime = runtime

    def submit(self, fn):
        future: Future = Future()
        try:
            future.set_result(fn(self._runtime))
        except BaseException as exc:
            future.set_exception(exc)
        return future

    def runtime(self, timeout=None):
        return self._runtime

    def close(self):
        pass


def make_solver(tmp_path: Path, reply, **settings) -> tuple[Solver, ScriptedRuntime]:
    runtime = ScriptedRuntime(reply)
    solver = Solver(Settings(**settings), worker=SyncWorker(runtime), db_path=tmp_path / "atlas.sqlite3",
                    rng=random.Random(3))
    return solver, runtime


def always(text: str):
    return lambda s: text


def greedy_wrong_one_sample_right(s: Sampling) -> str:
    if s.temperature == 0:
        return WRONG
    return RIGHT if s.seed % 3 == 0 else ALSO_WRONG


FAST_FIRST = {"router_cost_weight": 10.0}  # compute priced so high that routing always starts at FAST


def test_easy_task_is_verified_with_the_greedy_candidate_first(tmp_path: Path):
    solver, runtime = make_solver(tmp_path, always(RIGHT))
    result = solver.solve(add_task(), k=3)
    assert result.verified and result.code.strip() == "def add(a, b):\n    return a + b"
    assert result.k == 3 and result.tier == "STANDARD" and result.ranking == "logprob"
    first = result.candidates[0]
    assert first.rank == 1 and first.greedy and first.passed
    # Equal code runs once; every copy shows the verdict.
    assert all(c.passed for c in result.candidates)
    samplings = runtime.calls[0]["samplings"]
    assert samplings[0].temperature == 0 and all(s.temperature > 0 for s in samplings[1:])
    assert len({s.seed for s in samplings}) == 3


def test_ranked_by_log_probability_a_likelier_sample_goes_before_the_greedy_candidate(tmp_path: Path):
    solver, runtime = make_solver(tmp_path, greedy_wrong_one_sample_right, agreement_enabled=False)
    runtime.logprob_of = lambda s: -0.3 if s.temperature == 0 else -0.1  # every sample outranks greedy
    result = solver.solve(add_task(), k=4)
    assert result.ranking == "logprob" and not result.candidates[0].greedy
    assert result.candidates[0].mean_logprob == max(c.mean_logprob for c in result.candidates)
    assert result.candidates[-1].greedy  # the least likely, so tried last
    assert result.note.startswith("cold start") and "greedy" not in result.note


def test_with_the_lens_ranking_greedy_goes_first_only_when_the_lens_cannot_separate_them():
    from engine.pipeline import GREEDY_TIE, _greedy_preferred

    def candidates(greedy_confidence: float):
        return [SimpleNamespace(greedy=False, confidence=0.8), SimpleNamespace(greedy=False, confidence=0.6),
                SimpleNamespace(greedy=True, confidence=greedy_confidence)]

    assert _greedy_preferred([0, 1, 2], candidates(0.8 - GREEDY_TIE / 2)) == [2, 0, 1]  # within the tie
    assert _greedy_preferred([0, 1, 2], candidates(0.7)) == [0, 1, 2]  # the Lens prefers the sample clearly
    assert _greedy_preferred([2, 0, 1], candidates(0.9)) == [2, 0, 1]  # already first


def test_ranked_by_log_probability_greedy_stays_first_when_it_is_the_likeliest(tmp_path: Path):
    solver, _ = make_solver(tmp_path, always(RIGHT))
    result = solver.solve(add_task(), k=3)
    assert result.candidates[0].greedy and "greedy" not in result.note


def test_sandbox_stops_at_the_first_passing_candidate_without_agreement(tmp_path: Path):
    solver, _ = make_solver(tmp_path, greedy_wrong_one_sample_right, agreement_enabled=False)
    result = solver.solve(add_task(), k=6)
    assert result.verified
    ranks = {c.rank: c for c in result.candidates}
    winner = next(c for c in result.candidates if c.passed)
    assert result.code == winner.code
    assert all(c.verdict is None for c in result.candidates if c.rank > winner.rank and c.code != winner.code
               and c.code not in {ranks[r].code for r in range(1, winner.rank)})
    assert ranks[1].greedy and not ranks[1].passed  # greedy was tried first and failed


def test_escalation_when_the_first_tier_fails(tmp_path: Path):
    solver, runtime = make_solver(tmp_path, greedy_wrong_one_sample_right, tier_k=(1, 4, 8), **FAST_FIRST)
    result = solver.solve(add_task())
    tiers = result.extra["tiers"]
    assert [t["tier"] for t in tiers][:2] == ["FAST", "STANDARD"]
    assert tiers[0] == {**tiers[0], "k": 1, "passed": False}
    assert result.verified and result.tier == tiers[-1]["tier"]
    # The escalated batch is all sampled: a greedy candidate would only repeat the first one.
    assert all(s.temperature > 0 for s in runtime.calls[1]["samplings"])
    assert result.k == sum(t["k"] for t in tiers)
    # Both outcomes reached the router's posteriors.
    outcomes = dict(((row[0], row[1]), row[2:]) for row in solver.conn.execute(
        "SELECT bin, tier, successes, failures FROM router_posteriors"))
    assert sum(f for (_, tier), (s, f) in outcomes.items() if tier == "FAST") == 1
    assert sum(s for (_, tier), (s, f) in outcomes.items() if tier == tiers[-1]["tier"]) == 1


def test_escalation_stops_at_the_budget(tmp_path: Path):
    solver, runtime = make_solver(tmp_path, always(WRONG), tier_k=(1, 4, 8), max_escalations=1, repair_k=0,
                                  **FAST_FIRST)
    result = solver.solve(add_task())
    assert [t["tier"] for t in result.extra["tiers"]] == ["FAST", "STANDARD"]
    assert not result.verified and "no candidate passed" in result.note
    assert result.code is not None  # the best failure is still shown, never claimed verified
    solver2, _ = make_solver(tmp_path / "b", always(WRONG), tier_k=(1, 4, 8), escalation_token_budget=100,
                             repair_k=0, **FAST_FIRST)
    assert [t["tier"] for t in solver2.solve(add_task()).extra["tiers"]] == ["FAST"]


def test_after_the_last_tier_a_repair_prompt_tells_how_the_tests_failed(tmp_path: Path):
    runtimes = []
    fixed_when_shown = lambda s: RIGHT if "failed these tests" in runtimes[0].prompt else WRONG  # noqa: E731
    solver, runtime = make_solver(tmp_path, fixed_when_shown, tier_k=(1, 4, 8), max_escalations=1, repair_k=3,
                                  **FAST_FIRST)
    runtimes.append(runtime)
    result = solver.solve(add_task())
    tiers = result.extra["tiers"]
    assert [(t["tier"], t["repair"], t["passed"]) for t in tiers] == [
        ("FAST", False, False), ("STANDARD", False, False), ("STANDARD", True, True)]
    assert result.verified and result.code.strip().endswith("return a + b") and result.k == 1 + 4 + 3
    repair = runtime.calls[-1]
    shown = repair["prompt"].split("failed these tests:")[1]  # what the test saw, added to the request
    assert "- assert: fail" in shown and "expected: line 1: 5" in shown and "got: -1" in shown
    assert "return a - b" not in repair["prompt"]  # the failed code itself is left out: a small model copies it
    assert repair["samplings"][0].temperature == 0 and len(repair["samplings"]) == 3  # a new prompt: greedy first
    # The repair's success is not the STANDARD tier's: the router saw two failures and no success.
    rows = solver.conn.execute("SELECT tier, successes, failures FROM router_posteriors").fetchall()
    assert sorted((tier, s, f) for _, tier, s, f in [(0, *r) for r in rows]) == [("FAST", 0, 1), ("STANDARD", 0, 1)]

    solver2, runtime2 = make_solver(tmp_path / "off", fixed_when_shown, tier_k=(1, 4, 8), max_escalations=1,
                                    repair_k=0, **FAST_FIRST)
    runtimes[0] = runtime2
    assert not solver2.solve(add_task()).verified and len(runtime2.calls) == 2


ABS_PROMPT = 'def absolute(x):\n    """The absolute value of x: absolute(0) == 0, absolute(3) == 3."""\n'
ABS_WEAK_TESTS = TestSuite(kind="assert", entry="absolute",
                           assert_code="assert absolute(0) == 0\nassert absolute(3) == 3\n")
ABS_IDENTITY = "def absolute(x):\n    return x\n```"  # passes the weak tests, wrong on negatives
ABS_BUILTIN = "def absolute(x):\n    return abs(x)\n```"
ABS_BRANCH = "def absolute(x):\n    return x if x > 0 else -x\n```"


def abs_replies(runtimes: list):
    """Greedy writes the identity; samples write two different right programs; asked for tests, two asserts."""
    sampled = itertools.cycle([ABS_BUILTIN, ABS_BRANCH])

    def reply(s: Sampling) -> str:
        if "test cases" in runtimes[0].prompt:
            return "-2) == 2\nassert absolute(5) == 5\n```"
        return ABS_IDENTITY if s.temperature == 0 else next(sampled)
    return reply


def test_agreement_picks_the_passing_candidate_most_samples_and_written_tests_back(tmp_path: Path):
    runtimes: list = []
    solver, runtime = make_solver(tmp_path, abs_replies(runtimes))
    runtimes.append(runtime)
    task = Task(prompt=ABS_PROMPT, entry_point="absolute", tests=ABS_WEAK_TESTS)
    result = solver.solve(task, k=4)
    assert result.verified and all(c.passed for c in result.candidates)  # every one passes the weak tests
    assert result.candidates[0].code.strip().endswith("return x")  # ranked first, as greedy
    assert result.code.strip() != result.candidates[0].code.strip()  # ...but not chosen
    assert "return x\n" not in result.code + "\n" and ("abs(x)" in result.code or "else -x" in result.code)
    agreed = result.extra["agreement"]
    assert agreed["candidates"] == 3 and agreed["model_tests"] == 2 and agreed["changed"]
    assert agreed["tests_met"][0] == 1 and max(agreed["tests_met"]) == 2  # identity meets absolute(5) == 5 only
    asked = runtime.calls[-1]
    assert "test cases" in asked["prompt"] and ABS_PROMPT.strip() in asked["prompt"]
    assert asked["samplings"][0].temperature == 0 and len(asked["samplings"]) == 1
    # The chosen candidate, not the first passing one, is what the pattern cache keeps.
    assert solver.cache.get(task.key).solution.strip() == result.code.strip()

    off, runtime_off = make_solver(tmp_path / "off", abs_replies(runtimes), agreement_enabled=False)
    runtimes[0] = runtime_off
    plain = off.solve(task, k=4)
    assert plain.code.strip().endswith("return x") and plain.extra["agreement"] is None
    assert len(runtime_off.calls) == 1  # no tests were asked for


def test_agreement_without_written_tests_and_not_for_one_program(tmp_path: Path):
    runtimes: list = []
    solver, runtime = make_solver(tmp_path, abs_replies(runtimes), agreement_tests=0)
    runtimes.append(runtime)
    task = Task(prompt=ABS_PROMPT, entry_point="absolute", tests=ABS_WEAK_TESTS)
    result = solver.solve(task, k=4)
    agreed = result.extra["agreement"]
    assert agreed["model_tests"] == 0 and agreed["probes"] > 0 and len(runtime.calls) == 1
    assert agreed["changed"] and not result.code.strip().endswith("return x")  # the two right ones agree
    # The setting is how many tests are asked for and kept (the scripted reply has two).
    one, runtime_one = make_solver(tmp_path / "one", abs_replies(runtimes), agreement_tests=1)
    runtimes[0] = runtime_one
    assert one.solve(task, k=4).extra["agreement"]["model_tests"] == 1
    asked = runtime_one.calls[-1]
    assert "Write 1 test cases" in asked["prompt"] and asked["max_tokens"] == 32
    # One distinct program passing: nothing to compare, no extra generation.
    same, runtime_same = make_solver(tmp_path / "same", always(RIGHT))
    assert same.solve(add_task(), k=3).extra["agreement"] is None and len(runtime_same.calls) == 1


ABS_NEGATE = "def absolute(x):\n    return -x\n```"  # fails absolute(3) == 3


def weakly_supported_replies(runtimes: list, escalated: list[str]):
    """FAST (temperature 0.7): greedy writes the identity, which passes the weak tests, and both samples fail them;
    a later tier (0.8 and up) writes `escalated` in turn; asked for tests, two asserts."""
    later = itertools.cycle(escalated)

    def reply(s: Sampling) -> str:
        if "test cases" in runtimes[0].prompt:
            return "-2) == 2\nassert absolute(5) == 5\n```"
        if s.temperature == 0:
            return ABS_IDENTITY
        return ABS_NEGATE if s.temperature < 0.75 else next(later)
    return reply


def test_a_pass_few_samples_support_escalates_and_the_choice_is_made_again(tmp_path: Path):
    runtimes: list = []
    settings = dict(tier_k=(3, 4, 8), tier_temperature=(0.7, 0.8, 1.0), **FAST_FIRST)
    solver, runtime = make_solver(tmp_path, weakly_supported_replies(runtimes, [ABS_BUILTIN, ABS_BRANCH]),
                                  min_support=0.5, **settings)
    runtimes.append(runtime)
    task = Task(prompt=ABS_PROMPT, entry_point="absolute", tests=ABS_WEAK_TESTS)
    result = solver.solve(task)
    tiers = result.extra["tiers"]
    # One sample of three passed: too little support, so STANDARD was tried although FAST had passed.
    assert [(t["tier"], t["passed"], t["reason"]) for t in tiers] == [
        ("FAST", True, "route"), ("STANDARD", True, "weak support")]
    assert result.extra["doubt"] == [{"tier": "FAST", "supported": 1, "samples": 3, "choice_rank": 1,
                                      "next": "STANDARD"}]
    # Chosen among every passing candidate of both tiers: the four right samples agree; the identity is left.
    assert result.verified and ("abs(x)" in result.code or "else -x" in result.code)
    assert result.extra["agreement"]["support"] == 4 and result.k == 7
    assert sum("test cases" in call["prompt"] for call in runtime.calls) == 1  # tests written once per solve

    # min_support 0 (the default): the first pass is committed.
    fast, runtime_fast = make_solver(tmp_path / "off", weakly_supported_replies(runtimes, [ABS_BUILTIN]),
                                     **settings)
    runtimes[0] = runtime_fast
    plain = fast.solve(task)
    assert [t["tier"] for t in plain.extra["tiers"]] == ["FAST"] and plain.code.strip().endswith("return x")
    assert plain.extra["doubt"] == []


def test_a_weakly_supported_pass_is_kept_when_the_higher_tiers_fail(tmp_path: Path):
    runtimes: list = []
    solver, runtime = make_solver(tmp_path, weakly_supported_replies(runtimes, [ABS_NEGATE]), tier_k=(3, 4, 8),
                                  tier_temperature=(0.7, 0.8, 1.0), repair_k=3, min_support=0.5, **FAST_FIRST)
    runtimes.append(runtime)
    result = solver.solve(Task(prompt=ABS_PROMPT, entry_point="absolute", tests=ABS_WEAK_TESTS))
    tiers = result.extra["tiers"]
    assert [(t["tier"], t["passed"]) for t in tiers] == [("FAST", True), ("STANDARD", False), ("HARD", False)]
    assert not any(t["repair"] for t in tiers)  # something passed: no repair prompt
    assert result.verified and result.code.strip().endswith("return x") and "no candidate passed" not in result.note
    assert [d["tier"] for d in result.extra["doubt"]] == ["FAST", "STANDARD"]


def test_failure_report_names_the_failing_test_and_why_nothing_ran():
    from engine.pipeline import failure_report
    from sandbox.types import TestResult, Verdict

    crashed = Verdict(False, [TestResult("test_add", "pass", 0.1),
                              TestResult("test_neg", "crash", 0.1, stderr_tail="Traceback ...\nIndexError: boom"),
                              TestResult("test_big", "fail", 0.1, expected="5", got="x" * 1000)])
    report = failure_report(crashed)
    assert "test_add" not in report and "- test_neg: crash" in report and "IndexError: boom" in report
    assert "- test_big: fail" in report and "expected: 5" in report and len(report) < 1000
    assert failure_report(Verdict(False, [], error="the candidate does not parse")) == "the candidate does not parse"


def test_second_identical_request_is_a_cache_hit(tmp_path: Path):
    solver, runtime = make_solver(tmp_path, always(RIGHT))
    first = solver.solve(add_task(), k=2)
    assert first.verified and first.tier != "CACHE_HIT"
    calls = len(runtime.calls)
    second = solver.solve(add_task(prompt="def add(a, b):\n        \"\"\"Return the sum of a and b.\"\"\"\n"))
    assert (second.tier, second.k, second.verified) == ("CACHE_HIT", 0, True)
    assert second.code == first.code and len(runtime.calls) == calls  # no generation at all
    assert solver.cache.get(add_task().key).successes == 1


def test_a_cached_solution_that_fails_its_tests_now_is_not_returned(tmp_path: Path):
    solver, runtime = make_solver(tmp_path, always(RIGHT))
    solver.cache.insert(add_task(), "def add(a, b):\n    return 0\n")
    result = solver.solve(add_task(), k=1)
    assert result.tier != "CACHE_HIT" and result.verified and len(runtime.calls) == 1
    assert solver.cache.get(add_task().key).solution.strip().endswith("return a + b")


def test_no_tests_means_ranked_but_never_verified(tmp_path: Path):
    solver, _ = make_solver(tmp_path, always(RIGHT))
    result = solver.solve(add_task(tests=None), k=2)
    assert not result.verified and result.code and "no tests" in result.note
    assert all(c.verdict is None for c in result.candidates)
    assert solver.cache.count() == 0  # nothing verified, nothing cached


def test_similar_solved_task_lends_a_hint_to_the_prompt(tmp_path: Path):
    solver, runtime = make_solver(tmp_path, always(RIGHT))
    # The scripted model embeds a text as _vector(text): give add3 the very embedding of the add task.
    solver.cache.insert(Task(prompt='def add3(a, b, c):\n    """Return the sum of a, b and c."""\n',
                             entry_point="add3"), "def add3(a, b, c):\n    return sum((a, b, c))\n",
                        embedding=_vector(signature_of(add_task())), model_fp="scripted-model")
    solver.cache.insert(Task(prompt='def shout(text):\n    """Upper-case the text and add an exclamation mark."""\n',
                             entry_point="shout"), "def shout(text):\n    return text.upper() + '!'\n",
                        embedding=_vector("unrelated"), model_fp="scripted-model")
    result = solver.solve(add_task(), k=1)
    assert len(result.extra["hints"]) == 1 and "add3" in result.extra["hints"][0]
    assert "add3" in runtime.calls[0]["prompt"] and "shout" not in runtime.calls[0]["prompt"]
    assert result.extra["route"]["signals"]["cache_similarity"] >= 0.5


def test_only_unrelated_solved_tasks_leave_the_cache_signal_out(tmp_path: Path):
    solver, _ = make_solver(tmp_path, always(RIGHT))
    solver.cache.insert(Task(prompt='def shout(text):\n    """Upper-case the text and add an exclamation mark."""\n',
                             entry_point="shout"), "def shout(text):\n    return text.upper() + '!'\n",
                        embedding=_vector("unrelated"), model_fp="scripted-model")
    result = solver.solve(add_task(), k=1)
    signals = result.extra["route"]["signals"]
    assert signals["cache_similarity"] is None  # no opinion, rather than "no similar task, so hard"
    assert signals["complexity"] is not None


def test_progress_phases_in_order(tmp_path: Path):
    solver, _ = make_solver(tmp_path, always(RIGHT))
    seen: list[Progress] = []
    solver.solve(add_task(), k=2, progress=seen.append)
    phases = [p.phase for p in seen]
    order = ["routing", "generating", "scoring", "testing", "learning", "done"]
    assert [p for p in dict.fromkeys(phases)] == order
    generating = [p for p in seen if p.phase == "generating"]
    assert all(p.total == 2 for p in generating)  # "generating i/k": candidates finished of k
    assert [p.done for p in generating] == [0, 0, 0, 2, 2]  # none, steps 1 and 2, step 3 stops both, the end
    fractions = [p.fraction for p in generating]
    assert fractions == sorted(fractions) and 0 < fractions[1] < fractions[2] < 1 == fractions[-1]  # per step


def test_cancel_during_generation_stops_before_the_sandbox(tmp_path: Path):
    solver, runtime = make_solver(tmp_path, always(RIGHT))
    cancel = threading.Event()

    def progress(p: Progress) -> None:
        if p.phase == "generating" and p.message.startswith("token 1 "):
            cancel.set()

    result = solver.solve(add_task(), k=2, cancel=cancel, progress=progress)
    assert result.cancelled and not result.verified
    assert "cancelled" in result.note and all(c.verdict is None for c in result.candidates)
    assert solver.conn.execute("SELECT count(*) FROM router_posteriors").fetchone()[0] == 0  # nothing learnt


def test_cancel_during_testing_stops_the_sandbox_promptly(tmp_path: Path):
    def slow(s: Sampling) -> str:  # two distinct candidates, each outlasting the sandbox's 6 s timeout
        return f"import time\n\ndef add(a, b):\n    time.sleep(30 + {s.temperature})\n    return a + b\n```"

    solver, _ = make_solver(tmp_path, slow)
    cancel = threading.Event()

    def progress(p: Progress) -> None:
        if p.phase == "testing" and p.done == 0:
            threading.Timer(0.5, cancel.set).start()

    started = time.monotonic()
    result = solver.solve(add_task(), k=2, cancel=cancel, progress=progress)
    assert result.cancelled and not result.verified
    # Generous, and still well under the 12 s the sandbox would spend waiting out both candidates' timeouts.
    assert time.monotonic() - started < 8


def test_corrupt_database_is_kept_aside_with_a_message(tmp_path: Path):
    path = tmp_path / "atlas.sqlite3"
    path.write_bytes(b"\x00garbage" * 500)
    messages: list[str] = []
    solver = Solver(Settings(), worker=SyncWorker(ScriptedRuntime(always(RIGHT))), db_path=path,
                    report=messages.append)
    assert solver.solve(add_task(), k=1).verified
    assert len(messages) == 1 and "kept as" in messages[0]
    assert len(list(tmp_path.glob("atlas.sqlite3.corrupt-*"))) == 1


def test_extraction_keeps_the_solution_and_drops_the_demonstration():
    task = add_task()
    assert prompts.assistant_prefill(task) == "```python\n" + ADD_PROMPT  # the model writes the body
    reply = ("    return a + b\n\nresult = add(1, 2)\nprint(add(1, 2))\n"
             "if __name__ == '__main__':\n    print(1)\n```\nThis adds.")
    assert prompts.extract(reply, task) == ADD_PROMPT + "    return a + b\n"
    # A reply that starts the function over: imports kept, the last definition wins.
    again = "import math\n\ndef add(a, b):\n    return a + b\n```"
    assert prompts.extract(again, task) == "import math\n\ndef add(a, b):\n    return a + b\n"
    # A reply cut off by the token budget is trimmed back to what parses.
    cut = "    return a + b\n\ndef helper(x):\n    return (x +\n"
    assert prompts.extract(cut, task) == ADD_PROMPT + "    return a + b\n"
    # Without a prefilled header (a prompt that is not a def), a body alone gets nothing to wrap and stays as is.
    loose = Task(prompt="Write add(a, b) returning the sum.", entry_point="add")
    assert prompts.extract("def add(a, b):\n    return a + b\n", loose) == "def add(a, b):\n    return a + b\n"
    program = Task(prompt="Read n, print 2n.", kind="program")
    assert prompts.extract("n = int(input())\nprint(2 * n)\n```", program) == "n = int(input())\nprint(2 * n)\n"
    assert prompts.extract("The answer is (c).", Task(prompt="Q?", kind="choice")) == "C"


def test_prompt_asks_for_the_complete_function_with_its_context():
    task = add_task(context=("import math",))
    text = prompts.user_message(task, ["`add3`: solved with a comprehension"])
    assert "complete function" in text and ADD_PROMPT.strip() in text and "import math" in text
    assert "add3" in text
    assert "standard input" in prompts.user_message(Task(prompt="Read n.", kind="program"))


# --- end to end with the real default model (the session's shared Runtime, called from the test's thread) ---

EXAMPLES = REPO_ROOT / "examples"
SHORT = (160, 160, 160)  # token budgets: the examples' bodies take 30-110 tokens


def example_task(module: str, name: str) -> Task:
    return build_task(EXAMPLES, EXAMPLES / f"{module}.py", name)


def test_real_model_solves_an_easy_function_then_answers_from_the_cache(tmp_path: Path, runtime):
    solver = Solver(Settings(tier_max_tokens=SHORT), worker=SyncWorker(runtime), db_path=tmp_path / "db.sqlite3")
    task = example_task("textkit", "is_palindrome")
    first = solver.solve(task, k=1)
    assert first.verified and first.k == 1 and first.candidates[0].greedy and first.candidates[0].passed
    assert first.ranking == "logprob" and "cold start" in first.note  # no Lens for this model yet: said so
    second = solver.solve(task)
    assert (second.tier, second.k, second.verified) == ("CACHE_HIT", 0, True)
    assert second.code == first.code


def test_real_model_tries_the_first_attempt_in_log_probability_order(tmp_path: Path, runtime):
    """second_largest at k=5 with no Lens: the five candidates, greedy among them, run in the order of their mean
    log-probability alone; greedy gets no place of its own. Which candidate is the likeliest depends on the CPU's
    arithmetic (a sample led on earlier machines, greedy on a 2 GHz AMD EPYC), so this asserts the order, not the
    leader; the fake-model tests above pin both leaders."""
    solver = Solver(Settings(tier_max_tokens=SHORT), worker=SyncWorker(runtime), db_path=tmp_path / "db.sqlite3")
    result = solver.solve(example_task("numbers_kit", "second_largest"), k=5)
    first_attempt = result.candidates[:result.extra["tiers"][0]["k"]]  # in rank order
    logprobs = [c.mean_logprob for c in first_attempt]
    assert result.ranking == "logprob" and len(first_attempt) == 5
    assert sum(c.greedy for c in first_attempt) == 1
    assert logprobs == sorted(logprobs, reverse=True) and len(set(logprobs)) > 1


def test_real_model_escalates_past_a_failing_greedy_candidate(tmp_path: Path, runtime):
    """second_largest: the 0.5B's greedy answer ignores duplicates and fails; sampled candidates (fixed seeds) pass.
    Compute priced high makes routing start at FAST, so the first tier fails and the solve escalates."""
    settings = Settings(tier_k=(1, 4, 8), tier_max_tokens=SHORT, max_escalations=1, router_cost_weight=10.0)
    solver = Solver(settings, worker=SyncWorker(runtime), db_path=tmp_path / "db.sqlite3")
    result = solver.solve(example_task("numbers_kit", "second_largest"))
    tiers = result.extra["tiers"]
    assert [t["tier"] for t in tiers] == ["FAST", "STANDARD"]
    assert not tiers[0]["passed"] and tiers[1]["passed"] and result.verified
    greedy, winner = result.candidates[0], next(c for c in result.candidates if c.passed)
    assert greedy.greedy and not greedy.passed and not winner.greedy
    assert result.code == winner.code and result.k == 5
    # Learnt: labelled Lens samples of both kinds, both tiers' outcomes, the verified solution cached.
    counts = solver.learner.store.counts(runtime.info.fingerprint)
    assert counts["passed"] >= 1 and counts["failed"] >= 1
    assert solver.conn.execute("SELECT sum(successes), sum(failures) FROM router_posteriors").fetchone() == (1, 1)
    entry = solver.cache.get(example_task("numbers_kit", "second_largest").key)
    assert entry is not None and entry.solution == result.code


class PromptRecorder:
    """The real runtime, with the prompts it was given kept."""

    def __init__(self, runtime):
        self._runtime, self.prompts = runtime, []

    def generate(self, prompt, *args, **kwargs):
        self.prompts.append(prompt)
        return self._runtime.generate(prompt, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._runtime, name)


def test_real_model_repairs_after_the_last_tier_with_the_real_failure(tmp_path: Path, runtime):
    """second_largest again: FAST's greedy answer fails and no escalation is allowed, so the repair batch follows,
    its prompt carrying what the real sandbox reported; the router learns FAST's failure only."""
    settings = Settings(tier_k=(1, 4, 8), tier_max_tokens=SHORT, max_escalations=0, router_cost_weight=10.0,
                        repair_k=2)
    recorder = PromptRecorder(runtime)
    solver = Solver(settings, worker=SyncWorker(recorder), db_path=tmp_path / "db.sqlite3")
    result = solver.solve(example_task("numbers_kit", "second_largest"))
    tiers = result.extra["tiers"]
    assert [(t["tier"], t["k"], t["repair"]) for t in tiers] == [("FAST", 1, False), ("FAST", 2, True)]
    assert not tiers[0]["passed"] and result.k == 3 and len(recorder.prompts) == 2
    failure = recorder.prompts[1].split("a first attempt failed these tests:")[1]
    assert "fail" in failure and ("expected" in failure or "error output" in failure)
    assert "failed these tests" not in recorder.prompts[0]
    first, repaired = result.candidates[0], result.candidates[1:]
    assert first.verdict is not None and not first.passed and all(c.code.strip() for c in repaired)
    assert repaired[0].verdict is not None  # the repair batch went to the sandbox, best-ranked first
    assert result.verified == any(c.passed for c in repaired)
    assert solver.conn.execute("SELECT tier, sum(successes), sum(failures) FROM router_posteriors "
                               "GROUP BY tier").fetchall() == [("FAST", 0, 1)]


def test_real_model_escalates_past_a_weakly_supported_pass(tmp_path: Path, runtime):
    """is_palindrome: FAST's greedy answer passes, but min_support 1.0 asks for more support than one sample can
    give, so the solve escalates to STANDARD. If STANDARD passes something, the choice is made again among both
    tiers' passing programs; if not (the 0.5B's sampled answers fail here), FAST's answer stands and no repair runs.
    The model-written tests are asked for at most once."""
    settings = Settings(tier_k=(1, 3, 8), tier_max_tokens=SHORT, max_escalations=1, router_cost_weight=10.0,
                        min_support=1.0)
    recorder = PromptRecorder(runtime)
    solver = Solver(settings, worker=SyncWorker(recorder), db_path=tmp_path / "db.sqlite3")
    task = example_task("textkit", "is_palindrome")
    result = solver.solve(task, use_cache=False)
    tiers = result.extra["tiers"]
    assert [(t["tier"], t["reason"]) for t in tiers] == [("FAST", "route"), ("STANDARD", "weak support")]
    assert tiers[0]["passed"] and result.verified and result.k == 4
    assert result.extra["doubt"] == [{"tier": "FAST", "supported": 1, "samples": 1, "choice_rank": 1,
                                      "next": "STANDARD"}]
    fast, standard = result.candidates[0], result.candidates[1:]
    passing = [c for c in result.candidates if c.passed]
    assert result.code in {c.code for c in passing}
    assert all(c.verdict is not None for c in standard)  # every STANDARD candidate was tested
    assert sum(p.endswith(prompts.test_prefill(task)) for p in recorder.prompts) <= 1
    programs = {_canonical(c.code) for c in passing}
    if len(programs) > 1:  # every passing program of both tiers was compared
        assert result.extra["agreement"]["candidates"] == len(programs)
    else:  # nothing new passed: the earlier answer stands
        assert result.code == fast.code and len(recorder.prompts) == 2


def test_the_test_timeout_setting_bounds_each_test_run(tmp_path: Path):
    """`test_timeout_s` reaches the sandbox: a 2-second test times out under a 1-second limit and passes under 8."""
    slow = "def add(a, b):\n    import time\n    time.sleep(2)\n    return a + b\n```"
    tight, _ = make_solver(tmp_path / "tight", always(slow), test_timeout_s=1.0)
    result = tight.solve(add_task(), k=1, use_cache=False)
    assert not result.verified
    assert result.candidates[0].verdict.tests[0].status == "timeout"
    roomy, _ = make_solver(tmp_path / "roomy", always(slow), test_timeout_s=8.0, max_escalations=0)
    assert roomy.solve(add_task(), k=1, use_cache=False).verified


def test_real_model_writes_tests_that_tell_candidates_apart(tmp_path: Path, runtime):
    """The tests agreement asks for, from the real default model: parseable asserts of the function whose inputs a
    right program answers (they become probes), and some of whose expected values it meets (the 0.5B gets many
    wrong, which is why they only break ties)."""
    from engine.pipeline import _Run
    from engine.probes import answer_digest, answers

    solver = Solver(Settings(), worker=SyncWorker(runtime), db_path=tmp_path / "db.sqlite3")
    task = example_task("textkit", "run_length_encode")
    written = solver._written_tests(_Run(task, None, None), Settings().agreement_tests)
    assert len(written) >= 3 and all(isinstance(args, tuple) and len(args) == 1 for args, _ in written)
    right = ("def run_length_encode(text):\n    out, i = [], 0\n    while i < len(text):\n        j = i\n"
             "        while j < len(text) and text[j] == text[i]:\n            j += 1\n"
             "        out.append(f'{text[i]}{j - i}')\n        i = j\n    return ''.join(out)\n")
    got = answers(right, "run_length_encode", [args for args, _ in written], solver._limits())
    assert got is not None and len(got) == len(written)
    assert sum(not g.startswith("!") for g in got) >= len(got) / 2, written  # mostly valid inputs, not errors
    assert any(g == answer_digest(want) for g, (_, want) in zip(got, written)), written
