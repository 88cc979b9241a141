"""The solve pipeline: the one path from a task to a verified answer, for the editor and the benchmark alike.

    pattern cache (CACHE_HIT: an equivalent task's verified solution, re-tested) ->
    route (difficulty from its signals -> tier and k) -> generate k candidates in one batch (the first candidate of a
    solve greedy) -> self-embeddings (from the generation) -> Lens ranking (log-probability before a Lens exists) ->
    sandbox in that order, first pass wins (when several different ones pass: the one that answers probe inputs as
    most samples do and meets most model-written tests, engine.agreement) -> escalate to a higher tier while the
    budget allows, when nothing passed or when the pass has weak support (no more than min_support of the samples
    pass and answer as it does: weak tests let a wrong program through), choosing again among every pass ->
    repair (after the last tier: a batch from a prompt that adds how the best failed candidate failed the tests) ->
    learn (Lens samples, router posteriors, pattern cache) -> SolveResult

When the Lens ranks, the greedy candidate goes first if its confidence is within GREEDY_TIE of the best: greedy
decoding beats a single sampled candidate on HumanEval. Ranked by log-probability, the order stands: over two full
0.5B HumanEval runs, the top log-probability was right first where the greedy candidate was wrong on 7 mixed attempts
and never the reverse (lens/EXPERIMENTS.md). An escalated batch is all sampled, since a greedy candidate would only
repeat the first one. Before generation the Lens's difficulty is unknown (it reads candidates), so the first route
uses the other three signals; an escalation routes again among the higher tiers with the Lens's difficulty of the
candidates that failed.

A task without tests is ranked and answered, never verified, and teaches nothing (there is no label). A cancelled
solve stops generation and the sandbox at their next step and returns what it has, marked `cancelled`.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import functools
import hashlib
import logging
import random
import textwrap
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from engine import agreement, probes, prompts
from engine.cache import PatternCache, signature_of
from engine.config import Settings
from engine.router import TIER_ORDER, Route, Router, Signals, TierPlan, plan_for_k, retrieval_confidence, \
    task_complexity
from engine.task import CandidateReport, SolveResult, Task
from sandbox.grading import truncate
from sandbox.types import Limits, Verdict

log = logging.getLogger(__name__)

PHASES = ("routing", "generating", "scoring", "testing", "escalating", "learning", "done")
GREEDY_TIE = 0.05  # calibrated P(pass) within which the greedy candidate counts as tied with the best
TASK_EMBED_PROMPT = "Task:\n"  # what a task's signature is read after, for its pattern-cache embedding
MAX_BATCH = 32  # sequences one Runtime.generate call decodes together (Runtime.load's max_sequences)
WRITTEN_TEST_TOKENS = 32  # per test call agreement asks the model to write (a short assert line)


@dataclass(frozen=True)
class Progress:
    phase: str  # one of PHASES
    done: int = 0
    total: int = 0
    message: str = ""
    fraction: float | None = None  # of the phase's work, where done/total is coarser (candidates finishing together)


class _Stop(Exception):
    """The caller cancelled."""


@dataclass
class _Candidate:
    code: str
    text: str
    tier: str
    greedy: bool
    mean_logprob: float
    tokens: int
    embedding: np.ndarray | None
    last_hidden: np.ndarray | None = None
    body_logprob: float | None = None  # over the kept lines only (CandidateReport.body_logprob)
    energy: float | None = None
    confidence: float | None = None
    rank: int = 0
    verdict: Verdict | None = None

    @property
    def passed(self) -> bool:
        return self.verdict is not None and self.verdict.passed

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.code.encode()).hexdigest()[:32]

    @functools.cached_property
    def canonical(self) -> str:
        """Its code up to formatting and comments (parsed once: testing and agreement both group by it)."""
        return _canonical(self.code)


@dataclass
class _Attempt:
    """One tier tried within a solve."""

    plan: TierPlan
    difficulty: float
    bin: int
    candidates: list[_Candidate] = field(default_factory=list)
    ranking: str = "logprob"
    note: str = ""
    repair_of: _Candidate | None = None  # set for a repair batch: the failed candidate whose failure its prompt shows
    reason: str = "route"  # why this tier was tried: route, no pass (the one before failed), weak support, repair

    @property
    def passed(self) -> bool:
        return any(c.passed for c in self.candidates)


class _Run:
    """The state of one solve: progress reporting, cancellation, timings."""

    def __init__(self, task: Task, progress: Callable[[Progress], None] | None, cancel: threading.Event | None):
        self.task = task
        self.progress = progress
        self.cancel = cancel or threading.Event()
        self.started = time.perf_counter()
        self.timings: dict[str, float] = {}
        self.attempts: list[_Attempt] = []
        self.hints: list[str] = []
        self.route: Route | None = None
        self.task_embedding: np.ndarray | None = None
        self.chosen: _Candidate | None = None  # the passing candidate agreement chose, when it compared several
        self.agreement: dict[str, Any] | None = None
        self.written: list[tuple[tuple, Any]] | None = None  # the model-written tests, asked for once per solve
        self.answers: dict[str, list[str] | None] = {}  # probe answers per canonical program
        self.doubts: list[dict[str, Any]] = []  # each escalation past a passing answer with weak support

    def emit(self, phase: str, done: int = 0, total: int = 0, message: str = "",
             fraction: float | None = None) -> None:
        if self.progress is not None:
            try:
                self.progress(Progress(phase, done, total, message, fraction))
            except Exception:  # a broken progress callback must not lose the solve
                log.exception("progress callback failed")

    def check(self) -> None:
        if self.cancel.is_set():
            raise _Stop

    @contextlib.contextmanager
    def timed(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t0

    @property
    def candidates(self) -> list[_Candidate]:
        return [c for a in self.attempts for c in a.candidates]

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started


class Solver:
    """Solves tasks with one model. Thread-safe: the model is reached through its ModelWorker (one context, jobs
    queue), the database through one lock. `clock` drives the pattern cache's retention (tests inject one)."""

    def __init__(self, settings: Settings, *, worker=None, db_path: Path | None = None,
                 clock: Callable[[], float] = time.time, report: Callable[[str], None] | None = None,
                 rng: random.Random | None = None, learner=None) -> None:
        from engine import paths
        from lens.db import open_database

        self.settings = settings
        self.db_path = Path(db_path) if db_path is not None else paths.database_path()
        self.report = report or log.warning
        self.conn = open_database(self.db_path, report=self.report)
        self.lock = threading.Lock()
        self.cache = PatternCache(self.conn, settings, clock=clock, lock=self.lock)
        self.router = Router(self.conn, settings, rng=rng or random.Random(settings.seed), clock=clock,
                             lock=self.lock)
        self._worker = worker
        self._owns_worker = worker is None
        self._learner = learner
        self._info = None
        self._setup_lock = threading.RLock()  # the learner needs the model info, which needs the worker

    # --- the model and the Lens, on first use ---

    @property
    def worker(self):
        with self._setup_lock:
            if self._worker is None:
                from engine.runtime import ModelWorker

                self._worker = ModelWorker.from_settings(self.settings)  # loads on its own thread
            return self._worker

    def _call(self, fn: Callable[[Any], Any], cancel: threading.Event | None = None) -> Any:
        """Run fn(runtime) on the model's worker thread and wait for it (a queued job is dropped if cancelled)."""
        def guarded(runtime):
            if cancel is not None and cancel.is_set():
                raise _Stop
            return fn(runtime)

        from engine.runtime import Cancelled

        future: Future = self.worker.submit(guarded)
        try:
            return future.result()
        except Cancelled:
            raise _Stop from None

    @property
    def info(self):
        """The model's ModelInfo (waits for the model to load; a load failure raises its ModelError)."""
        if self._info is None:
            self._info = self.worker.runtime().info
        return self._info

    @property
    def learner(self):
        # Read the model info before taking the lock: waiting for the model to load while holding it would block a
        # job on the worker thread that needs the learner, and that job blocks the load.
        info = self.info if self._learner is None else None
        with self._setup_lock:
            if self._learner is None:
                from engine import paths
                from lens import Learner
                from lens.db import open_database

                s = self.settings
                # Its own connection: the Learner writes from a background thread, and SQLite transactions on one
                # shared connection would interleave.
                self._learner = Learner(open_database(self.db_path, report=self.report), paths.lens_dir(),
                                        info.fingerprint, info.n_embd,
                                        retrain_every=s.lens_retrain_every, min_per_class=s.lens_min_per_class,
                                        train_threads=s.lens_train_threads, report=self.report)
            return self._learner

    def warm_up(self) -> None:
        """Load the model and the Lens now (the language server calls this at start-up, off its event loop)."""
        self.info
        self.learner.lens

    def lens_state(self) -> str:
        """One line for a status bar: the Lens in use, or why candidates are ranked by log-probability."""
        if not self.settings.lens_enabled:
            return "off (ranked by log-probability)"
        lens = self.learner.lens
        if lens is None:
            counts = self.learner.store.counts(self.info.fingerprint)
            return (f"cold start: ranked by log-probability ({counts['passed']} passing, {counts['failed']} failing "
                    f"samples so far)")
        auc = lens.metadata.get("auc")
        return f"trained on {lens.metadata.get('samples', '?')} samples" + (f", held-out AUC {auc:.2f}" if auc else "")

    def close(self) -> None:
        """Free the model (if this Solver loaded it), let a background Lens training finish, close the database."""
        if self._owns_worker and self._worker is not None:
            self._worker.close()
        if self._learner is not None and hasattr(self._learner, "close"):
            self._learner.close()
        self.conn.close()

    # --- solving ---

    def solve(self, task: Task, *, progress: Callable[[Progress], None] | None = None,
              cancel: threading.Event | None = None, k: int | None = None, use_cache: bool = True) -> SolveResult:
        """Solve one task. `k` fixes the number of candidates (no routing, no escalation); `use_cache=False` skips
        the CACHE_HIT tier (similar tasks still give hints)."""
        run = _Run(task, progress, cancel)
        try:
            run.emit("routing", 0, 1, "looking for an equivalent solved task")
            if use_cache and self.settings.cache_enabled:
                hit = self._cache_hit(run)
                if hit is not None:
                    return hit
            with run.timed("route"):
                route = self._route(run, k)
            run.emit("routing", 1, 1, f"{route.tier}, k={route.k}, difficulty {route.difficulty:.2f}")
            self._attempt_tiers(run, route, fixed=k is not None)
            self._learn(run)
            return self._result(run)
        except _Stop:
            return self._result(run, cancelled=True)
        finally:
            run.emit("done", 1, 1, f"{run.seconds:.1f} s")

    # --- CACHE_HIT ---

    def _cache_hit(self, run: _Run) -> SolveResult | None:
        entry = self.cache.get(run.task.key)
        if entry is None:
            return None
        tests = run.task.tests
        if tests is None:
            return self._cached_result(run, entry.solution, None,
                                       "from the pattern cache: verified on an earlier request; no tests here to "
                                       "re-run, so not verified now")
        run.emit("testing", 0, 1, "re-running the tests on the cached solution")
        with run.timed("test"):
            verdict = _sandbox_run(entry.solution, tests, self._limits())
        run.check()
        self.cache.reinforce(entry.key, verdict.passed)
        if not verdict.passed:
            log.info("cached solution for %s no longer passes; generating", run.task.entry_point or run.task.key)
            return None
        run.emit("testing", 1, 1, "the cached solution passes")
        return self._cached_result(run, entry.solution, verdict, "from the pattern cache; its tests passed again")

    def _cached_result(self, run: _Run, code: str, verdict: Verdict | None, note: str) -> SolveResult:
        report = CandidateReport(code=code, energy=None, confidence=None, mean_logprob=0.0, rank=1, verdict=verdict)
        return SolveResult(verified=bool(verdict and verdict.passed), code=code, tier="CACHE_HIT", k=0,
                           difficulty=0.0, candidates=[report], ranking="none", seconds=run.seconds, note=note,
                           timings=dict(run.timings), extra={"route": {"tier": "CACHE_HIT", "k": 0}})

    # --- routing ---

    def _route(self, run: _Run, k: int | None) -> Route:
        signals = self._signals(run)
        if k is None:
            run.route = self.router.route(signals)
        else:
            route = self.router.route(signals)  # for the difficulty and its bin; the caller fixed k
            run.route = Route(plan_for_k(self.settings, k), route.difficulty, route.bin, signals)
        return run.route

    def _signals(self, run: _Run) -> Signals:
        task = run.task
        similarity = None
        if self.settings.cache_enabled and self.cache.count():
            matches = self._similar(run)
            # A related solved task makes a task easier; having solved only unrelated ones says nothing about it
            # (as 0 similarity it read as "hard" and sent easy tasks to HARD), so a weak best match drops out.
            best = matches[0].score if matches else 0.0
            similarity = best if best >= self.settings.cache_hint_similarity else None
            run.hints = [_hint_text(m) for m in matches if m.score >= self.settings.cache_hint_similarity]
            run.hints = run.hints[: self.settings.cache_max_hints]
        return Signals(cache_similarity=similarity, retrieval_confidence=retrieval_confidence(task),
                       complexity=task_complexity(task))

    def _similar(self, run: _Run) -> list:
        """BM25 first; the task's embedding (a forward pass) only when some lexical match has one to compare."""
        text, fp = signature_of(run.task), self.info.fingerprint
        matches = self.cache.similar(text, exclude_key=run.task.key)
        if any(m.entry.model_fp == fp and m.entry.embedding is not None for m in matches):
            run.task_embedding = self._task_embedding(run)
            matches = self.cache.similar(text, run.task_embedding, fp, exclude_key=run.task.key)
        return matches

    def _task_embedding(self, run: _Run) -> np.ndarray | None:
        """The model's own embedding of the task's signature, for pattern-cache similarity."""
        text = signature_of(run.task)
        try:
            with run.timed("embed"):
                vectors = self._call(lambda rt: rt.embed(TASK_EMBED_PROMPT, [text]), run.cancel)
            return np.asarray(vectors[0], dtype=np.float32)
        except _Stop:
            raise
        except Exception as exc:  # similarity falls back to BM25 alone
            log.warning("could not embed the task for the pattern cache: %s", exc)
            return None

    # --- generate, rank, test, escalate ---

    def _attempt_tiers(self, run: _Run, route: Route, *, fixed: bool) -> None:
        plan, d, b, reason = route.plan, route.difficulty, route.bin, "route"
        while True:
            attempt = _Attempt(plan, d, b, reason=reason)
            run.attempts.append(attempt)
            self._generate(run, attempt)
            self._rank(run, attempt)
            if not run.task.tests:
                return
            self._test(run, attempt)
            passed = any(c.passed for c in run.candidates)
            supported = self._agree(run) if passed else 0
            if fixed or (passed and self._convinced(run, supported)):
                return
            following = self._escalation(run, attempt, sum(c.tokens for c in run.candidates))
            if following is None:
                if not passed:
                    self._repair(run, attempt)
                return
            plan, d, b = following
            if passed:
                self._doubt(run, attempt, supported, plan)
                reason, cause = "weak support", f"only {supported} of {len(run.candidates)} samples pass and agree"
            else:
                reason, cause = "no pass", f"no candidate passed at {attempt.plan.tier}"
            run.emit("escalating", len(run.attempts), len(run.attempts) + 1, f"{cause}; trying {plan.tier} (k={plan.k})")

    def _convinced(self, run: _Run, supported: int) -> bool:
        """Commit to the chosen answer: enough of the samples pass and answer as it does, or support is not asked
        for (min_support 0) or cannot be judged (agreement off or impossible for this task)."""
        share = self.settings.min_support
        return share <= 0 or not self._can_agree(run.task) or supported > share * len(run.candidates)

    def _doubt(self, run: _Run, attempt: _Attempt, supported: int, following: TierPlan) -> None:
        winner = _winner(run)
        run.doubts.append({"tier": attempt.plan.tier, "supported": supported, "samples": len(run.candidates),
                           "choice_rank": winner.rank if winner else None, "next": following.tier})

    def _escalation(self, run: _Run, failed: _Attempt, tokens_used: int) -> tuple[TierPlan, float, int] | None:
        """The next tier: re-route among the tiers above with the Lens's view of the failures added."""
        following = self.router.next_plan(failed.plan, len(run.attempts) - 1, tokens_used)
        if following is None:
            return None
        X = stacked_embeddings(failed.candidates)
        lens_difficulty = self._lens_difficulty(X)
        signals = dataclasses.replace(run.route.signals, lens_difficulty=lens_difficulty)
        again = self.router.route(signals)
        if TIER_ORDER.index(again.tier) > TIER_ORDER.index(following.tier):
            budget = self.settings.escalation_token_budget - tokens_used
            if again.plan.token_budget <= budget:
                following = again.plan
        return following, again.difficulty, again.bin

    def _repair(self, run: _Run, failed: _Attempt) -> None:
        """One last batch, from a prompt that adds how the failing candidate that passed the most tests failed: the
        test output can name the mistake that more samples of the first prompt keep repeating."""
        broken = _most_passing(run.candidates)
        if self.settings.repair_k <= 0 or broken is None or broken.verdict is None:
            return
        attempt = _Attempt(dataclasses.replace(failed.plan, k=self.settings.repair_k), failed.difficulty, failed.bin,
                           repair_of=broken, reason="repair")
        run.attempts.append(attempt)
        run.emit("escalating", len(run.attempts), len(run.attempts),
                 f"no candidate passed at {failed.plan.tier}; repairing the best failed one (k={attempt.plan.k})")
        self._generate(run, attempt)
        self._rank(run, attempt)
        if self._test(run, attempt):
            self._agree(run)

    # --- agreement among passing candidates ---

    def _can_agree(self, task: Task) -> bool:
        """Agreement is on and the task is a plain function (the probe driver cannot call a method on its own)."""
        return (self.settings.agreement_enabled and task.kind == "function" and bool(task.entry_point)
                and "." not in task.entry_point)

    def _agree(self, run: _Run) -> int:
        """Among the different candidates that passed (in every tier so far), take the one that answers probe inputs
        as most samples do and meets most model-written tests (engine.agreement); the best-ranked one when they
        cannot be told apart. Returns its support: the samples that pass and answer as it does."""
        groups = _passing_groups(run.candidates)
        if len(groups) < 2 or not self._can_agree(run.task):
            return len(groups[0]) if groups else 0
        task = run.task
        with run.timed("agree"):
            if run.written is None:
                run.written = self._written_tests(run, self.settings.agreement_tests) \
                    if self.settings.agreement_tests else []
            written = run.written
            calls = [args for args, _ in written]
            seed_calls = probes.public_calls(task.tests, task.entry_point) + calls
            calls += probes.probe_calls(seed_calls, seed=task.key, limit=probes.MAX_PROBES - len(calls))
            expected = [probes.answer_digest(want) for _, want in written]
            if not calls:  # nothing tells them apart: all of them answer alike as far as can be seen
                return sum(len(g) for g in groups)
            run.emit("testing", 0, len(groups), f"comparing {len(groups)} passing candidates on {len(calls)} inputs")
            answers = [self._answers(run, group[0], calls) for group in groups]
            choice = agreement.choose(answers, [len(g) for g in groups], expected)
        run.chosen = groups[choice.index][0]
        run.agreement = {"candidates": len(groups), "probes": len(calls), "model_tests": len(written),
                         "changed": choice.changed, "scores": [round(x, 3) for x in choice.scores],
                         "tests_met": list(choice.tests_met), "chosen_rank": run.chosen.rank,
                         "support": choice.support}
        run.emit("testing", len(groups), len(groups), f"rank {run.chosen.rank} agrees best")
        return choice.support

    def _answers(self, run: _Run, candidate: _Candidate, calls: list[tuple]) -> list[str] | None:
        """A program's probe answers, run once per solve (a later tier's agreement compares it again)."""
        if candidate.canonical not in run.answers:
            run.check()
            run.answers[candidate.canonical] = probes.answers(candidate.code, run.task.entry_point, calls,
                                                              self._limits())
        return run.answers[candidate.canonical]

    def _written_tests(self, run: _Run, count: int) -> list[tuple[tuple, Any]]:
        """Up to `count` test calls the model writes from the task's specification (greedy, one short generation)."""
        from engine.runtime import Sampling

        task = run.task
        prefill = prompts.test_prefill(task)

        def job(rt):
            prompt = rt.format_chat(prompts.build_test_messages(task, count)) + prefill
            return rt.generate(prompt, [Sampling(temperature=0.0, seed=self._seed(task, 0))],
                               max_tokens=WRITTEN_TEST_TOKENS * count, stop=prompts.stop_sequences(task),
                               cancel=run.cancel, embed=False)

        try:
            reply = self._call(job, run.cancel)[0]
        except _Stop:
            raise
        except Exception as exc:  # varied inputs alone still compare the candidates
            log.warning("could not have the model write tests: %s", exc)
            return []
        run.check()
        return probes.written_tests(prefill[len(prompts.PREFILL):] + reply.text, task.entry_point, count)

    def _lens_difficulty(self, X: np.ndarray | None) -> float | None:
        if X is None:
            return None
        try:
            return self.learner.difficulty(X)
        except Exception as exc:
            log.warning("Lens difficulty unavailable: %s", exc)
            return None

    def _generate(self, run: _Run, attempt: _Attempt) -> None:
        from engine.runtime import Sampling

        task, plan = run.task, attempt.plan
        # One greedy candidate per prompt: a later batch of the same prompt would only repeat it.
        greedy_first = not run.candidates or attempt.repair_of is not None
        offset = len(run.candidates)
        samplings = [Sampling(temperature=0.0, seed=self._seed(task, 0))] if greedy_first else []
        samplings += [Sampling(temperature=plan.temperature, top_p=self.settings.top_p,
                               seed=self._seed(task, offset + i + 1)) for i in range(plan.k - len(samplings))]
        messages = _messages(run, attempt)
        k = len(samplings)
        run.emit("generating", 0, k, f"{plan.tier}: token 0 of at most {plan.max_tokens}", 0.0)

        def job(rt):
            prompt = rt.format_chat(messages) + prompts.assistant_prefill(task)
            out = []
            for start in range(0, k, MAX_BATCH):  # one batch unless k exceeds the runtime's sequence ids
                batch = samplings[start:start + MAX_BATCH]
                out += rt.generate(prompt, batch, max_tokens=plan.max_tokens, stop=prompts.stop_sequences(task),
                                   cancel=run.cancel, on_step=_on_step(run, k, start, len(batch)), embed=True)
            return out

        with run.timed("generate"):
            generations = self._call(job, run.cancel)
        run.check()
        for g in generations:
            code = prompts.extract(g.text, task)
            attempt.candidates.append(_Candidate(
                code=code, text=g.text, tier=plan.tier, greedy=g.greedy,
                mean_logprob=float(g.mean_logprob), tokens=len(g.token_ids),
                embedding=_floats(g.embedding), last_hidden=_floats(g.last_hidden),
                body_logprob=g.mean_logprob_within(prompts.kept_reply_spans(g.text, code))))
        run.emit("generating", k, k, f"{k} generated", 1.0)

    def _seed(self, task: Task, index: int) -> int:
        """Fixed per (setting seed, task, candidate index): the same request gives the same candidates."""
        digest = hashlib.sha256(f"{self.settings.seed}:{task.key}:{index}".encode()).digest()
        return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF

    def _rank(self, run: _Run, attempt: _Attempt) -> None:
        run.emit("scoring", 0, 1, "ranking the candidates")
        candidates = attempt.candidates
        X = stacked_embeddings(candidates)
        with run.timed("score"):
            order, energies, confidences = self._ranking(attempt, X)
        for i, c in enumerate(candidates):
            c.energy = None if energies is None else float(energies[i])
            c.confidence = None if confidences is None else float(confidences[i])
        if attempt.ranking == "lens":
            order = _greedy_preferred(order, candidates)
        first = len(run.candidates) - len(candidates)
        attempt.candidates = [candidates[i] for i in order]
        for position, c in enumerate(attempt.candidates):
            c.rank = first + position + 1
        run.emit("scoring", 1, 1, attempt.ranking)

    def _ranking(self, attempt: _Attempt, X: np.ndarray | None) -> tuple[list[int], Any, Any]:
        """(order, energies, confidences) from the Lens; by mean log-probability when it is off or fails."""
        candidates = attempt.candidates
        by_logprob = sorted(range(len(candidates)), key=lambda i: -candidates[i].mean_logprob)
        if not self.settings.lens_enabled:
            attempt.ranking, attempt.note = "logprob", "the Lens is off (lens_enabled = false); ranked by log-probability"
            return by_logprob, None, None
        try:
            ranking = self.learner.rank(X, [c.mean_logprob for c in candidates])
        except Exception as exc:  # the Lens failing must not lose the solve
            log.warning("Lens ranking failed (%s); ranking by log-probability", exc)
            attempt.ranking, attempt.note = "logprob", f"Lens unavailable ({exc}); ranked by log-probability"
            return by_logprob, None, None
        attempt.ranking, attempt.note = ranking.method, ranking.note
        return ranking.order, ranking.energies, ranking.confidences

    def _limits(self) -> Limits:
        return Limits.for_timeout(self.settings.test_timeout_s)

    def _test(self, run: _Run, attempt: _Attempt) -> bool:
        """Run the candidates in rank order, equal code once, until one passes (all of them when agreement will
        compare those that pass). True when one did."""
        unique: dict[str, list[_Candidate]] = {}
        for c in attempt.candidates:
            unique.setdefault(c.canonical, []).append(c)
        groups = list(unique.values())
        codes = [group[0].code for group in groups]
        # Agreement compares every candidate that passes, so all of them run; otherwise the first pass ends it.
        stop_at_first_pass = len(groups) < 2 or not self._can_agree(run.task)
        run.emit("testing", 0, len(codes), f"{len(codes)} distinct candidate{'s' * (len(codes) != 1)}")
        counter = {"done": 0}

        def on_result(index: int, verdict: Verdict) -> None:
            counter["done"] += 1
            status = "passed" if verdict.passed else f"{verdict.passed_count}/{verdict.total} tests"
            run.emit("testing", counter["done"], len(codes), f"rank {groups[index][0].rank}: {status}")

        with run.timed("test"):
            verdicts = _sandbox_ranked(codes, run.task.tests, run.cancel, on_result, self._limits(),
                                       stop_at_first_pass)
        for group, verdict in zip(groups, verdicts):
            for c in group:
                c.verdict = verdict
        run.check()
        return attempt.passed

    # --- learning ---

    def _learn(self, run: _Run) -> None:
        if run.task.tests is None or not run.candidates:
            return  # nothing was judged: no labels to learn from
        run.emit("learning", 0, 3, "Lens samples")
        with run.timed("learn"):
            judged = [c for c in run.candidates if c.verdict is not None and c.embedding is not None]
            if judged:
                try:
                    self.learner.record(run.task.key, [(c.digest, c.embedding, c.passed, c.mean_logprob)
                                                       for c in judged], source=run.task.source)
                except Exception as exc:
                    log.warning("could not store Lens samples: %s", exc)
            run.emit("learning", 1, 3, "router posteriors")
            for attempt in run.attempts:
                if attempt.repair_of is None:  # a repair's outcome says nothing about its tier's first prompt
                    self.router.record(attempt.bin, attempt.plan.tier, attempt.passed)
            run.emit("learning", 2, 3, "pattern cache")
            winner = _winner(run)
            if winner is not None and winner.passed and self.settings.cache_enabled:
                if run.task_embedding is None:
                    run.task_embedding = self._task_embedding(run)
                self.cache.insert(run.task, winner.code, embedding=run.task_embedding,
                                  model_fp=self.info.fingerprint)
        run.emit("learning", 3, 3, "done")

    # --- the result ---

    def _result(self, run: _Run, *, cancelled: bool = False) -> SolveResult:
        winner = _winner(run)
        route = run.route
        last = run.attempts[-1] if run.attempts else None
        verified = bool(winner and winner.passed and run.task.tests)
        return SolveResult(
            verified=verified, code=winner.code if winner else None,
            tier=last.plan.tier if last else (route.tier if route else "FAST"), k=len(run.candidates),
            difficulty=route.difficulty if route else 0.5,
            candidates=[_report(c) for c in run.candidates], ranking=last.ranking if last else "none",
            seconds=run.seconds, tokens=sum(c.tokens for c in run.candidates),
            note=_note(run, verified, cancelled), timings={k: round(v, 4) for k, v in run.timings.items()},
            extra={"route": route.as_dict() if route else None, "hints": run.hints,
                   "tiers": [{"tier": a.plan.tier, "k": len(a.candidates), "passed": a.passed,
                              "difficulty": round(a.difficulty, 4), "ranking": a.ranking,
                              "repair": a.repair_of is not None, "reason": a.reason} for a in run.attempts],
                   "agreement": run.agreement, "doubt": run.doubts},
            cancelled=cancelled)


# --- helpers ---------------------------------------------------------------------------------------------------------


def _on_step(run: _Run, k: int, batch_start: int, batch_size: int) -> Callable[[int, int, int], None]:
    """Runtime steps as "generating i/k" progress (i candidates finished); the token count, which moves every
    step, goes in the message and the fraction, since candidates decoded together tend to finish together."""
    def step(done: int, budget: int, finished: int) -> None:
        finished += batch_start
        by_tokens = (batch_start + batch_size * min(done, budget) / max(budget, 1)) / k
        run.emit("generating", finished, k, f"token {done} of at most {budget}", max(by_tokens, finished / k))
    return step


def _floats(vector) -> np.ndarray | None:
    return None if vector is None else np.asarray(vector, dtype=np.float32)


def _messages(run: _Run, attempt: _Attempt) -> list[dict[str, str]]:
    broken = attempt.repair_of
    if broken is None:
        return prompts.build_messages(run.task, run.hints)
    return prompts.build_repair_messages(run.task, run.hints, failure_report(broken.verdict))


def stacked_embeddings(candidates: Sequence) -> np.ndarray | None:
    """(k, n_embd) of the candidates' (or generations') self-embeddings; None when any lacks one, or there are none."""
    if not candidates or any(c.embedding is None for c in candidates):
        return None
    return np.stack([c.embedding for c in candidates])


def _greedy_preferred(order: list[int], candidates: list[_Candidate]) -> list[int]:
    """The Lens's order with the greedy candidate moved first when the Lens's confidence in it is within GREEDY_TIE
    of the best candidate's: the Lens does not separate them, and greedy decoding is the stronger single guess."""
    greedy = [i for i in order if candidates[i].greedy]
    if not greedy or order[0] == greedy[0]:
        return list(order)
    g, best = candidates[greedy[0]], candidates[order[0]]
    if g.confidence is not None and best.confidence is not None and best.confidence - g.confidence <= GREEDY_TIE:
        return [greedy[0]] + [i for i in order if i != greedy[0]]
    return list(order)


def _canonical(code: str) -> str:
    """Code that differs only in formatting or comments is the same candidate."""
    try:
        return ast.dump(ast.parse(code))
    except SyntaxError:
        return code.strip()


def _winner(run: _Run) -> _Candidate | None:
    """The passing candidate agreement chose, or the first that passed; else the one that passed most tests (ties:
    best rank); without tests, the best-ranked."""
    candidates = run.candidates
    if not candidates:
        return None
    if run.chosen is not None:
        return run.chosen
    passed = [c for c in candidates if c.passed]
    if passed:
        return min(passed, key=lambda c: c.rank)
    return _most_passing(candidates)


def _passing_groups(candidates: list[_Candidate]) -> list[list[_Candidate]]:
    """The passing candidates, equal code together, best rank first (a group's size: how many samples wrote that
    program)."""
    groups: dict[str, list[_Candidate]] = {}
    for c in sorted(candidates, key=lambda c: c.rank):
        if c.passed:
            groups.setdefault(c.canonical, []).append(c)
    return list(groups.values())


def _most_passing(candidates: list[_Candidate]) -> _Candidate | None:
    """The candidate that passed the most tests; ties go to the better rank (an untested one counts as none)."""
    if not candidates:
        return None
    return min(candidates, key=lambda c: (-(c.verdict.passed_count if c.verdict else 0), c.rank))


REPORTED_FAILURES = 2  # failing tests a repair prompt shows
REPORTED_CHARS = 400  # of each field of a failing test (its head and tail, as the sandbox truncates)


def failure_report(verdict: Verdict) -> str:
    """How a candidate failed, for the model: the first failing tests' names, statuses, expected and actual
    values, and the end of their error output (or why nothing ran)."""
    if verdict.error:
        return verdict.error[:REPORTED_CHARS]
    lines = []
    for test in [t for t in verdict.tests if t.status not in ("pass", "skipped")][:REPORTED_FAILURES]:
        lines.append(f"- {test.name}: {test.status}")
        for label, text in (("expected", test.expected), ("got", test.got)):
            if text.strip():
                lines.append(f"  {label}: {truncate(text.strip(), REPORTED_CHARS)}")
        if test.stderr_tail.strip() and test.stderr_tail.strip() not in test.got:
            error_output = truncate(test.stderr_tail.strip(), REPORTED_CHARS)
            lines.append("  error output:\n" + textwrap.indent(error_output, "    "))
    return "\n".join(lines) or "the tests did not pass"


def _report(c: _Candidate) -> CandidateReport:
    return CandidateReport(code=c.code, energy=c.energy, confidence=c.confidence, mean_logprob=c.mean_logprob,
                           rank=c.rank, verdict=c.verdict, greedy=c.greedy, tokens=c.tokens,
                           body_logprob=c.body_logprob, embedding=c.embedding, last_hidden=c.last_hidden)


def _note(run: _Run, verified: bool, cancelled: bool) -> str:
    parts = []
    if cancelled:
        parts.append("cancelled")
    ranking = run.attempts[-1].ranking if run.attempts else None
    if run.task.tests is None:
        parts.append("no tests: ranked by the Lens alone, not verified" if ranking == "lens"
                     else "no tests and no Lens yet: ranked by log-probability alone, not verified")
    elif run.attempts and not verified and not cancelled:
        parts.append("no candidate passed the tests")
    if run.attempts and run.attempts[-1].ranking == "logprob" and run.attempts[-1].note:
        parts.append(run.attempts[-1].note)
    return "; ".join(parts)


def _hint_text(match) -> str:
    """The technique only: a related task's own docstring in the prompt made the 0.5B model solve that task
    instead (running_max written as second_largest, 26 candidates out of 26)."""
    return f"a similar task (`{match.entry.entry_point or 'unnamed'}`) was solved with {match.entry.hint}"


def _sandbox_run(code: str, suite, limits: Limits) -> Verdict:
    import sandbox

    return sandbox.run(code, suite, limits=limits)


def _sandbox_ranked(codes: list[str], suite, cancel: threading.Event, on_result: Callable[[int, Verdict], None],
                    limits: Limits, stop_at_first_pass: bool = True) -> list[Verdict | None]:
    import sandbox

    return sandbox.run_ranked(codes, suite, stop_at_first_pass=stop_at_first_pass, cancel=cancel,
                              on_result=on_result, limits=limits)
