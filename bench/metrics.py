"""From per-task results to the run's figures: pass@1 (the answer the pipeline committed to, graded on the hidden
tests), pass@k (any candidate passed them), selection quality on mixed tasks (the pipeline's first pick, the Lens's
energies, the log-probability baseline, a random pick), throughput, tiers, and the per-epoch learning curve."""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Sequence

import numpy as np

from engine import selection_metrics as sm


def _rate(values: Iterable[bool]) -> float | None:
    values = list(values)
    return sum(bool(v) for v in values) / len(values) if values else None


def _whole_task(record: dict) -> list[list[dict]]:
    return [record.get("candidates") or []]


def _by_attempt(record: dict) -> list[list[dict]]:
    """A task's candidates split by the attempt (tier, or repair) that made them. One attempt's candidates share a
    prompt and are ranked against each other only: that is the choice the pipeline makes, trying them in that order
    before it escalates. Ranks run on through a task's attempts, so rank order and each attempt's k give the split;
    a record whose attempts do not add up stays whole."""
    candidates = sorted(record.get("candidates") or [], key=lambda c: c["rank"])
    sizes = [int(a.get("k") or 0) for a in record.get("attempts") or []]
    if sum(sizes) != len(candidates):
        return [candidates]
    starts = np.cumsum([0] + sizes)
    return [candidates[a:b] for a, b in zip(starts[:-1], starts[1:])]


def _groups(records: Sequence[dict], score, split=_whole_task) -> list[tuple[np.ndarray, np.ndarray]]:
    """(scores, hidden labels) per group of candidates (a task, or with `split=_by_attempt` an attempt) with at
    least two candidates, where `score(candidate)` is known for all."""
    groups = []
    for record in records:
        for candidates in split(record):
            if len(candidates) < 2:
                continue
            scores = [score(c) for c in candidates]
            if any(s is None for s in scores):
                continue
            groups.append((np.asarray(scores, dtype=float), np.asarray([bool(c["hidden"]) for c in candidates])))
    return groups


def _energy_score(c: dict) -> float | None:
    return None if c.get("energy") is None else -float(c["energy"])


def within_attempt(records: Sequence[dict]) -> dict[str, Any]:
    """First pick among one attempt's candidates, on attempts with at least one candidate passing the hidden tests
    and one failing: the ranking decision as the pipeline makes it (see `_by_attempt`)."""
    pipeline = _groups(records, lambda c: -float(c["rank"]), _by_attempt)
    return {
        "mixed_attempts": sum(sm.is_mixed(labels) for _, labels in pipeline),
        "first_pick_accuracy": sm.finite_or_none(sm.first_pick_accuracy(pipeline)),
        "random_pick_expectation": sm.finite_or_none(sm.random_pick_expectation(pipeline)),
        "logprob_first_pick_accuracy": sm.finite_or_none(sm.first_pick_accuracy(
            _groups(records, lambda c: c.get("mean_logprob"), _by_attempt))),
        "lens_first_pick_accuracy": sm.finite_or_none(sm.first_pick_accuracy(
            _groups(records, _energy_score, _by_attempt))),
    }


def selection(records: Sequence[dict]) -> dict[str, Any]:
    """Selection metrics on mixed tasks (at least one candidate passing the hidden tests and one failing)."""
    pipeline = _groups(records, lambda c: -float(c["rank"]))
    by_logprob = _groups(records, lambda c: c.get("mean_logprob"))
    by_body_logprob = _groups(records, lambda c: c.get("body_logprob"))
    by_energy = _groups(records, _energy_score)
    energies = [(c["energy"], bool(c["hidden"])) for r in records for c in r.get("candidates") or []
                if c.get("energy") is not None]
    e_values = np.asarray([e for e, _ in energies], dtype=float)
    e_labels = np.asarray([label for _, label in energies], dtype=bool)
    return {
        "mixed_tasks": sum(sm.is_mixed(labels) for _, labels in pipeline),
        "first_pick_accuracy": sm.finite_or_none(sm.first_pick_accuracy(pipeline)),
        "random_pick_expectation": sm.finite_or_none(sm.random_pick_expectation(pipeline)),
        "logprob_first_pick_accuracy": sm.finite_or_none(sm.first_pick_accuracy(by_logprob)),
        # the same mean over the kept lines only; tasks where a candidate has none are left out of it
        "body_logprob_first_pick_accuracy": sm.finite_or_none(sm.first_pick_accuracy(by_body_logprob)),
        "body_logprob_mixed_tasks": sum(sm.is_mixed(labels) for _, labels in by_body_logprob),
        "lens_first_pick_accuracy": sm.finite_or_none(sm.first_pick_accuracy(by_energy)),
        "lens_mixed_tasks": sum(sm.is_mixed(labels) for _, labels in by_energy),
        "auc": sm.finite_or_none(sm.auc(-e_values, e_labels)) if len(e_values) else None,
        "energy_gap": sm.finite_or_none(sm.energy_gap(e_values, e_labels)) if len(e_values) else None,
        "energy_quartiles": sm.energy_quartiles(e_values, e_labels) if len(e_values) else [],
        "candidates_with_energy": int(len(e_values)),
    }


def throughput(records: Sequence[dict]) -> dict[str, Any]:
    solve_seconds = sum(float(r.get("seconds") or 0.0) for r in records)
    wall_seconds = solve_seconds + sum(float(r.get("grade_seconds") or 0.0) for r in records)
    tokens = sum(int(r.get("tokens") or 0) for r in records)
    generate_seconds = sum(float(r.get("generate_seconds") or 0.0) for r in records)
    per_task = [float(r.get("seconds") or 0.0) for r in records]
    median = float(np.median(per_task)) if per_task else 0.0
    return {
        "tasks_per_hour": 3600.0 * len(records) / solve_seconds if solve_seconds else None,
        # 3600 / the median task's seconds: steadier than the mean on a machine shared with other work
        "tasks_per_hour_median": 3600.0 / median if median else None,
        "tasks_per_hour_with_grading": 3600.0 * len(records) / wall_seconds if wall_seconds else None,
        "tokens_per_s": tokens / (generate_seconds or solve_seconds) if tokens and (generate_seconds or solve_seconds)
        else None,
        "tokens": tokens,
        "solve_seconds": solve_seconds,
        "generate_seconds": generate_seconds,
    }


def difficulty_bins(records: Sequence[dict], bins: int = 5) -> list[dict[str, Any]]:
    """Pass@1 per difficulty bin: does the router's difficulty predict failure?"""
    known = [(float(r["difficulty"]), bool(r["pass_at_1"])) for r in records if r.get("difficulty") is not None]
    rows = []
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        inside = [p for d, p in known if low <= d < high or (b == bins - 1 and d == 1.0)]
        rows.append({"low": low, "high": high, "n": len(inside), "pass_rate": _rate(inside)})
    return rows


def learning_curve(records: Sequence[dict]) -> list[dict[str, Any]]:
    """The seed's table: per epoch, tasks, pass rate, first-pick accuracy, energy gap."""
    epochs = sorted({int(r.get("epoch", 1)) for r in records})
    curve = []
    for epoch in epochs:
        chunk = [r for r in records if int(r.get("epoch", 1)) == epoch]
        chosen = selection(chunk)
        curve.append({"epoch": epoch, "tasks": len(chunk), "pass_rate": _rate(r["pass_at_1"] for r in chunk),
                      "pass_at_k": _rate(r["pass_at_k"] for r in chunk),
                      "first_pick_accuracy": chosen["first_pick_accuracy"],
                      "lens_first_pick_accuracy": chosen["lens_first_pick_accuracy"],
                      "energy_gap": chosen["energy_gap"], "auc": chosen["auc"]})
    return curve


def agreement(records: Sequence[dict]) -> dict[str, Any]:
    """What choosing by agreement did: tasks where several different candidates passed the public tests and were
    compared, how often the choice left the best-ranked one, and whether that gained or lost a hidden-test pass."""
    compared = [r for r in records if r.get("agreement")]
    changed = []
    for r in compared:
        if r["agreement"].get("changed"):  # what the best-ranked passing candidate would have scored
            passing = [c for c in r.get("candidates") or [] if c.get("public")]
            changed.append((r, min(passing, key=lambda c: c["rank"])["hidden"] if passing else None))
    return {"tasks_compared": len(compared), **_changes(changed)}


def doubt(records: Sequence[dict]) -> dict[str, Any]:
    """What escalating past a weakly supported pass did (min_support): tasks escalated, how often the committed code
    differs from the choice before the first such escalation, and whether that gained or lost a hidden-test pass."""
    escalated = [r for r in records if r.get("doubt")]
    changed = []
    for r in escalated:
        before = [c for c in r.get("candidates") or [] if c["rank"] == r["doubt"][0].get("choice_rank")]
        if before and before[0].get("code") != r.get("code"):
            changed.append((r, before[0]["hidden"]))
    return {"tasks_escalated": len(escalated), **_changes(changed)}


def _changes(changed: list[tuple[dict, bool | None]]) -> dict[str, int]:
    """Changed choices, given each task's record and whether the choice it replaced passed the hidden tests (None:
    unknown): how many, and how many gained or lost a hidden-test pass."""
    gained = sum(1 for r, before in changed if r["pass_at_1"] and before is False)
    lost = sum(1 for r, before in changed if not r["pass_at_1"] and before is True)
    return {"changed": len(changed), "gained": gained, "lost": lost}


def summarise(records: Sequence[dict], *, graded_on: str, config: dict[str, Any],
              notes: Sequence[str] = (), dataset_stats: dict[str, Any] | None = None,
              skipped: Sequence[str] = ()) -> dict[str, Any]:
    records = list(records)
    chosen = selection(records)
    speed = throughput(records)
    summary: dict[str, Any] = {
        "dataset": config.get("dataset"),
        "mode": config.get("mode"),
        "model": config.get("model"),
        "tasks": len(records),
        "graded_on": graded_on,
        "pass_at_1": _rate(r["pass_at_1"] for r in records),
        "pass_at_k": _rate(r["pass_at_k"] for r in records),
        "k_mean": float(np.mean([len(r.get("candidates") or []) for r in records])) if records else None,
        "verified_rate": _rate(bool(r.get("verified")) for r in records),
        **{key: chosen[key] for key in ("first_pick_accuracy", "random_pick_expectation",
                                        "logprob_first_pick_accuracy", "body_logprob_first_pick_accuracy",
                                        "lens_first_pick_accuracy", "auc", "energy_gap", "mixed_tasks",
                                        "lens_mixed_tasks", "body_logprob_mixed_tasks")},
        "energy_quartiles": chosen["energy_quartiles"],
        "within_attempt": within_attempt(records),
        "tasks_per_hour": speed["tasks_per_hour"],
        "tasks_per_hour_with_grading": speed["tasks_per_hour_with_grading"],
        "tasks_per_hour_median": speed["tasks_per_hour_median"],
        "tokens_per_s": speed["tokens_per_s"],
        "tokens": speed["tokens"],
        "solve_seconds": speed["solve_seconds"],
        "agreement": agreement(records),
        "doubt": doubt(records),
        "tier_counts": dict(Counter(str(r.get("tier")) for r in records)),
        "ranking_counts": dict(Counter(str(r.get("ranking")) for r in records)),
        "learning_curve": learning_curve(records),
        "difficulty_vs_pass_rate": difficulty_bins(records),
        "notes": list(notes),
        "skipped_records": list(skipped),
        "dataset_stats": dataset_stats or {},
        "config": config,
    }
    return summary
