"""The headless run: every task through the engine, graded on the bench's hidden record, one line of results.jsonl
per task as soon as it is graded, a summary and a report at the end.

Modes. `baseline`: the Solver with k=1 (its one candidate is greedy), no pattern cache, no Lens retraining: one greedy
sample per task through the same prompt and code extraction as the editor. `atlas`: the full Solver path (pattern
cache, router, adaptive k or a fixed --k, Lens ranking, sandbox on the public tests with early exit, escalation,
learning). Multiple-choice tasks (GPQA) have no tests: k samples (the first greedy) are read for an option letter
and combined by vote, weighted by the Lens's calibrated confidence once a Lens exists.

Honesty. The pipeline sees only `item.task` (public tests). Every candidate is graded on the hidden tests after the
pipeline has committed; hidden outcomes never reach the pipeline for that task. Each run keeps its own per-user state
(database, Lens checkpoints) under OUT/state, so no earlier run can hand it verified solutions. GPQA is the one place
hidden outcomes teach anything: after a question is graded, its samples' labels go to the Lens store, so only later
questions can benefit (the labels a user would get by being told the answer).

Epochs. `--epochs E` splits the tasks into E consecutive chunks; between chunks the Lens is retrained on everything
learned so far, and the summary's learning curve has one row per chunk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TextIO

from bench import metrics, report
from bench.audit import AuditingWorker, PromptLog, hidden_fingerprints, leaked
from bench.datasets.base import BenchItem, Dataset
from bench.datasets.gpqa import extract_letter
from bench.grading import Grade, grade_choice, grade_code
from bench.labels import gather_labelled_set, save_task_samples
from bench.progress import ProgressBar
from bench.results import RunFolder
from engine.selection_metrics import finite_or_none

MODES = ("baseline", "atlas")
CHOICE_K = 5  # GPQA samples in atlas mode when --k is not given (the seed's k)


@dataclass
class RunConfig:
    dataset: str
    mode: str = "atlas"
    k: int | None = None
    epochs: int = 1
    model: str | None = None
    limit: int | None = None
    seed: int = 0
    max_tokens: int | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Interrupted(Exception):
    """Ctrl-C: the finished tasks are on disk; the summary covers them."""

    def __init__(self, summary: dict[str, Any]):
        super().__init__("interrupted")
        self.summary = summary


@contextlib.contextmanager
def own_state(folder: Path) -> Iterator[None]:
    """Point the per-user data directory (database, Lens checkpoints) at the run's own folder for the run."""
    folder.mkdir(parents=True, exist_ok=True)
    previous = os.environ.get("ATLAS_DATA_DIR")
    os.environ["ATLAS_DATA_DIR"] = str(folder)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("ATLAS_DATA_DIR", None)
        else:
            os.environ["ATLAS_DATA_DIR"] = previous


def chunks(items: Sequence[BenchItem], epochs: int) -> list[list[BenchItem]]:
    """E consecutive chunks whose sizes differ by at most one."""
    epochs = max(1, min(epochs, len(items) or 1))
    size, extra = divmod(len(items), epochs)
    out, start = [], 0
    for e in range(epochs):
        end = start + size + (1 if e < extra else 0)
        out.append(list(items[start:end]))
        start = end
    return out


# --- the engine, as the bench drives it ---------------------------------------------------------------------------

def engine_settings(config: RunConfig):
    """The user's settings with the run's overrides; baseline turns off what would make it more than greedy."""
    from engine import config as engine_config

    settings, problems = engine_config.load(None)
    changes: dict[str, Any] = {"seed": config.seed}
    if config.model:
        changes["model"] = config.model
    if config.max_tokens:
        changes["tier_max_tokens"] = (config.max_tokens,) * 3
    if config.mode == "baseline":
        changes.update(cache_enabled=False, lens_retrain_every=1_000_000)
    return dataclasses.replace(settings, **changes), problems


class Engine:
    """The Solver behind an audited model worker; created on first use (a resumed, finished run loads no model)."""

    def __init__(self, config: RunConfig, state: Path, *, report_problem: Callable[[str], None]):
        self.config = config
        self.state = state
        self.report_problem = report_problem
        self.prompts = PromptLog()
        self._solver = None
        self._worker = None

    @property
    def solver(self):
        if self._solver is None:
            from engine.pipeline import Solver
            from engine.runtime import ModelWorker

            settings, problems = engine_settings(self.config)
            for problem in problems:
                self.report_problem(problem)
            self._worker = ModelWorker.from_settings(settings)
            self._solver = Solver(settings, worker=AuditingWorker(self._worker, self.prompts),
                                  db_path=self.state / "atlas.sqlite3", report=self.report_problem)
        return self._solver

    @property
    def settings(self):
        """The engine settings in force (building the Solver on first use, like `solver`)."""
        return self.solver.settings

    def close(self) -> None:
        if self._solver is not None:
            with contextlib.suppress(Exception):
                self._solver.learner.close()
            self._solver.close()
        if self._worker is not None:
            self._worker.close()

    def solve_item(self, item: BenchItem, cancel: threading.Event) -> dict[str, Any]:
        """Solve one task and grade what came out (the fields of its results.jsonl line)."""
        solve = solve_choice if item.task.kind == "choice" else solve_code
        return solve(self, item, cancel)

    def retrain_lens(self) -> dict[str, Any]:
        learner = self.solver.learner
        learner.wait_idle()
        try:
            outcome = learner.retrain()
        except Exception as exc:  # not enough labels yet is an answer, not a failure
            return {"retrained": False, "reason": str(exc)}
        return {"retrained": bool(outcome.swapped), "reason": outcome.reason, "auc": outcome.auc}


# --- one task -----------------------------------------------------------------------------------------------------

def _candidate_row(c, grade: Grade, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    row = {"rank": c.rank, "energy": c.energy, "confidence": c.confidence,
           "mean_logprob": finite_or_none(c.mean_logprob),
           "body_logprob": finite_or_none(c.body_logprob),
           "greedy": bool(c.greedy), "tokens": int(c.tokens), "public": c.passed,
           "hidden": bool(grade.passed), "detail": grade.detail[:300]}
    row.update(extra or {})
    return row


def solve_code(engine: Engine, item: BenchItem, cancel: threading.Event) -> dict[str, Any]:
    k = 1 if engine.config.mode == "baseline" else engine.config.k
    result = engine.solver.solve(item.task, k=k, cancel=cancel, use_cache=engine.config.mode != "baseline")
    if result.cancelled:
        raise KeyboardInterrupt
    started = time.monotonic()
    codes = [c.code for c in result.candidates]
    grades = grade_code(item, codes) if codes else []
    if result.code is None:
        committed = Grade(False, "no answer")
    elif result.code in codes:
        committed = grades[codes.index(result.code)]
    else:
        committed = grade_code(item, [result.code])[0]
    save_task_samples(engine.state.parent, item.task.key, [c.embedding for c in result.candidates],
                      [g.passed for g in grades], [c.mean_logprob for c in result.candidates],
                      [c.last_hidden for c in result.candidates])
    return {
        "pass_at_1": committed.passed, "pass_at_k": any(g.passed for g in grades) or committed.passed,
        "committed_detail": committed.detail[:300], "verified": bool(result.verified), "tier": result.tier,
        "k": result.k, "difficulty": result.difficulty, "ranking": result.ranking, "seconds": result.seconds,
        "grade_seconds": time.monotonic() - started, "tokens": result.tokens,
        "generate_seconds": float(result.timings.get("generate", 0.0)), "note": result.note,
        "attempts": result.extra.get("tiers", []), "agreement": result.extra.get("agreement"),
        "doubt": result.extra.get("doubt") or [],
        "code": (result.code or "")[:6000],
        "candidates": [_candidate_row(c, g, {"code": c.code[:6000]}) for c, g in zip(result.candidates, grades)],
    }


def _sample_seed(config: RunConfig, key: str, index: int) -> int:
    digest = hashlib.sha256(f"{config.seed}:{key}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def weighted_vote(letters: Sequence[str | None], weights: Sequence[float] | None,
                  tie_break: Sequence[float]) -> str | None:
    """The letter with the most votes (each sample weighted by the Lens's P(pass) when there is a Lens); ties go to
    the letter whose best sample has the highest tie_break score."""
    totals: dict[str, float] = {}
    best: dict[str, float] = {}
    for i, letter in enumerate(letters):
        if not letter:
            continue
        totals[letter] = totals.get(letter, 0.0) + (weights[i] if weights is not None else 1.0)
        best[letter] = max(best.get(letter, float("-inf")), tie_break[i])
    if not totals:
        return None
    return max(totals, key=lambda letter: (round(totals[letter], 9), best[letter]))


def solve_choice(engine: Engine, item: BenchItem, cancel: threading.Event) -> dict[str, Any]:
    """k samples (the first greedy), an option letter from each, a vote. Not the code pipeline: there is nothing
    to run, and the answer is the votes' choice rather than one candidate's."""
    from engine.pipeline import stacked_embeddings

    config, task = engine.config, item.task
    k = 1 if config.mode == "baseline" else (config.k or CHOICE_K)
    started = time.monotonic()
    generations = _generate_choices(engine, task, k, cancel)
    generate_seconds = time.monotonic() - started
    letters = [extract_letter(g.text) for g in generations]
    logprobs = [g.mean_logprob for g in generations]
    X = stacked_embeddings(generations)
    ranking = engine.solver.learner.rank(X, logprobs) if config.mode == "atlas" else None
    confidences = None if ranking is None or ranking.confidences is None else [float(c) for c in ranking.confidences]
    answer = weighted_vote(letters, confidences, logprobs)
    seconds = time.monotonic() - started
    grades = grade_choice(item, letters)
    committed = grade_choice(item, [answer])[0]
    _learn_from_choices(engine, task, generations, X, grades, logprobs)
    return {
        "pass_at_1": committed.passed, "pass_at_k": any(g.passed for g in grades), "committed_detail":
        committed.detail, "answer": answer, "verified": False, "tier": f"VOTE-{k}", "k": k, "difficulty": None,
        "ranking": "lens" if confidences is not None else "vote", "seconds": seconds, "grade_seconds": 0.0,
        "tokens": sum(len(g.token_ids) for g in generations), "generate_seconds": generate_seconds,
        "note": "", "candidates": _choice_rows(generations, ranking, confidences, letters, grades),
    }


def _generate_choices(engine: Engine, task, k: int, cancel: threading.Event) -> list:
    """The k replies with their self-embeddings, on the model worker; a cancelled run surfaces as KeyboardInterrupt."""
    from engine import prompts
    from engine.runtime import Sampling

    settings = engine.settings
    samplings = [Sampling(temperature=0.0, seed=_sample_seed(engine.config, task.key, 0))]
    samplings += [Sampling(temperature=settings.tier_temperature[1], top_p=settings.top_p,
                           seed=_sample_seed(engine.config, task.key, i)) for i in range(1, k)]
    messages = prompts.build_messages(task)
    max_tokens = engine.config.max_tokens or settings.tier_max_tokens[1]

    def job(runtime):
        prompt = runtime.format_chat(messages) + prompts.assistant_prefill(task)
        return runtime.generate(prompt, samplings, max_tokens=max_tokens, stop=prompts.stop_sequences(task),
                                cancel=cancel, embed=True)

    try:
        return engine.solver.worker.submit(job).result()
    except Exception as exc:
        if cancel.is_set():
            raise KeyboardInterrupt from exc
        raise


def _learn_from_choices(engine: Engine, task, generations, X, grades: list[Grade], logprobs: list[float]) -> None:
    """Keep the question's labelled samples in the run folder, and (atlas mode) teach the Lens with them: the labels
    of this finished question teach later ones only."""
    save_task_samples(engine.state.parent, task.key, [] if X is None else list(X), [g.passed for g in grades],
                      logprobs, [g.last_hidden for g in generations])
    if engine.config.mode == "atlas" and X is not None:
        engine.solver.learner.record(task.key, [(hashlib.sha256(g.text.encode()).hexdigest()[:32], X[i],
                                                 grades[i].passed, logprobs[i]) for i, g in enumerate(generations)],
                                     source="bench")


def _choice_rows(generations, ranking, confidences: list[float] | None, letters: list[str | None],
                 grades: list[Grade]) -> list[dict[str, Any]]:
    """One results row per reply, in generation order, with its rank under the Lens (or generation order)."""
    order = ranking.order if ranking is not None else list(range(len(generations)))
    rank_of = {index: position + 1 for position, index in enumerate(order)}
    rows = []
    for i, g in enumerate(generations):
        energy = None if ranking is None or ranking.energies is None else float(ranking.energies[i])
        confidence = None if confidences is None else confidences[i]
        report_like = _ChoiceCandidate(rank_of[i], energy, confidence, g.mean_logprob, g.greedy, len(g.token_ids))
        rows.append(_candidate_row(report_like, grades[i], {"answer": letters[i], "reply_tail": g.text[-300:]}))
    return rows


@dataclass
class _ChoiceCandidate:
    rank: int
    energy: float | None
    confidence: float | None
    mean_logprob: float
    greedy: bool
    tokens: int
    passed: bool | None = None  # no public tests for a choice
    body_logprob: float | None = None  # a letter has no code lines to score apart


def _public_text(item: BenchItem) -> str:
    task = item.task
    parts = [task.prompt, task.starter_code, *task.context]
    if task.tests is not None:
        parts.append(task.tests.assert_code)
        parts += [f"{c.input}\n{c.output}" for c in task.tests.cases]
    return "\n".join(parts)


def _hidden_texts(item: BenchItem) -> list[str]:
    suite = item.grading.suite
    if suite is None:
        return []
    return [suite.assert_code, *(c.input for c in suite.cases), *(c.output for c in suite.cases)]


def run_item(engine: Engine, item: BenchItem, epoch: int, cancel: threading.Event) -> dict[str, Any]:
    engine.prompts.take()  # forget what earlier tasks sent
    outcome = engine.solve_item(item, cancel)
    found = leaked(hidden_fingerprints(_hidden_texts(item), _public_text(item)), engine.prompts.take())
    return {"id": item.id, "epoch": epoch, "task_key": item.task.key, "kind": item.task.kind,
            "graded_on": item.grading.graded_on, "public_tests": item.task.tests is not None,
            "hidden_text_in_prompt": found[:3], **outcome, "meta": item.meta}


# --- the run ------------------------------------------------------------------------------------------------------

def run(dataset: Dataset, config: RunConfig, out: Path, *, stream: TextIO | None = None,
        engine: Engine | None = None) -> dict[str, Any]:
    """Run (or resume) the benchmark into `out`; returns the summary. Raises Interrupted on Ctrl-C after writing
    the summary of what finished."""
    import sys

    stream = stream or sys.stderr
    folder = RunFolder(out)
    folder.start(config.as_dict())
    items = dataset.items[:config.limit] if config.limit else list(dataset.items)
    done = _resumed(folder, items, stream)
    bar = ProgressBar(len(items), already_done=len(done), stream=stream)
    bar.graded = len(done)
    bar.passed = sum(bool(r.get("pass_at_1")) for r in done.values())
    engine = engine or Engine(config, out / "state", report_problem=lambda m: stream.write(m + "\n"))
    retrains = _read_retrains(folder)
    cancel = threading.Event()
    try:
        with own_state(out / "state"):
            _run_epochs(engine, folder, items, config, done, retrains, bar, cancel)
    except KeyboardInterrupt:
        cancel.set()
        bar.close()
        summary = finish(folder, dataset, config, items, done, retrains, interrupted=True)
        engine.close()
        raise Interrupted(summary) from None
    bar.close()
    summary = finish(folder, dataset, config, items, done, retrains)
    engine.close()
    return summary


def _resumed(folder: RunFolder, items: list[BenchItem], stream: TextIO) -> dict[str, dict[str, Any]]:
    """The records of this run's items that an earlier, stopped run already finished."""
    wanted = {item.id for item in items}
    done = {k: v for k, v in folder.finished().items() if k in wanted}
    if folder.dropped_partial:
        stream.write("results.jsonl ended in a partial line (a task in flight when the run stopped): dropped\n")
    if folder.damaged_lines:
        lines = ", ".join(map(str, folder.damaged_lines[:10])) + (" ..." if len(folder.damaged_lines) > 10 else "")
        stream.write(f"results.jsonl: {len(folder.damaged_lines)} damaged line(s) skipped (line {lines}), left in "
                     "the file; their tasks run again\n")
    return done


def _run_epochs(engine: Engine, folder: RunFolder, items: list[BenchItem], config: RunConfig,
                done: dict[str, dict[str, Any]], retrains: dict[str, Any], bar: ProgressBar,
                cancel: threading.Event) -> None:
    """Solve every unfinished item, epoch by epoch, appending each record as it finishes; in atlas mode the Lens
    retrains between epochs (once per epoch, remembered across resumes)."""
    for epoch, chunk in enumerate(chunks(items, config.epochs), start=1):
        for item in chunk:
            if item.id in done:
                continue
            bar.show(f"solving {item.id}")
            record = run_item(engine, item, epoch, cancel)
            folder.append(record)
            done[item.id] = record
            bar.advance(record["pass_at_1"], f"{item.id}: {'pass' if record['pass_at_1'] else 'fail'}")
        if epoch < config.epochs and str(epoch) not in retrains and config.mode == "atlas":
            retrains[str(epoch)] = engine.retrain_lens()
            folder.write("lens_retrains.json", _json(retrains))


def _read_retrains(folder: RunFolder) -> dict[str, Any]:
    import json

    path = folder.path / "lens_retrains.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _json(value: Any) -> str:
    import json

    return json.dumps(value, indent=2, default=str) + "\n"


def finish(folder: RunFolder, dataset: Dataset, config: RunConfig, items: Sequence[BenchItem],
           done: dict[str, dict], retrains: dict[str, Any], *, interrupted: bool = False) -> dict[str, Any]:
    records = [done[i.id] for i in items if i.id in done]
    notes = list(dataset.notes) + list(config.notes)
    if interrupted:
        notes.append(f"interrupted after {len(records)} of {len(items)} tasks; run again with the same --out to "
                     "resume")
    leaks = [r["id"] for r in records if r.get("hidden_text_in_prompt")]
    if leaks:
        notes.append(f"WARNING: hidden test text found in the prompts of {len(leaks)} tasks: {', '.join(leaks[:5])}")
    summary = metrics.summarise(records, graded_on=dataset.graded_on, config=config.as_dict(), notes=notes,
                                dataset_stats=dataset.stats, skipped=dataset.skipped)
    summary["planned_tasks"] = len(items)
    summary["complete"] = len(records) == len(items)
    summary["hidden_text_in_prompts"] = leaks
    summary["lens_retrains"] = retrains
    summary["labelled_set"] = gather_labelled_set(folder.path, [r["task_key"] for r in records])
    folder.write("summary.json", _json(summary))
    folder.write("report.html", report.render(summary, records))
    return summary
