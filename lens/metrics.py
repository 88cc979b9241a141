"""Selection metrics: the numbers the Lens is judged by, the same functions the benchmark reports.

Conventions. `scores` are "higher = picked first" (pass `-energies` for a Lens, mean log-probabilities for the
baseline); `energies` are "lower = better". A group is one task's candidates: `(scores, labels)`. A task is mixed when
it has at least one passing and one failing candidate: only there does selection matter, so first-pick accuracy is
measured on mixed tasks only. Evaluation always splits by task (`task_folds`), never by candidate.
Undefined values (an AUC with one class, an accuracy with no mixed task) are NaN; `selection_report` turns them into
None so it can go straight to JSON.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np

Group = tuple[np.ndarray, np.ndarray]


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_values = values[order]
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start:end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    return ranks


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """P(score of a random pass > score of a random fail), ties counting half (Mann-Whitney). NaN with one class."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    n_pass, n_fail = int(labels.sum()), int((~labels).sum())
    if n_pass == 0 or n_fail == 0:
        return math.nan
    rank_sum = _ranks(scores)[labels].sum()
    return float((rank_sum - n_pass * (n_pass + 1) / 2.0) / (n_pass * n_fail))


def group_by_task(task_keys: Sequence[str], *arrays: Sequence) -> dict[str, tuple[np.ndarray, ...]]:
    """{task: (array1[rows of task], array2[rows of task], ...)}, tasks in first-seen order."""
    rows: dict[str, list[int]] = {}
    for i, key in enumerate(task_keys):
        rows.setdefault(key, []).append(i)
    columns = [np.asarray(a) for a in arrays]
    return {key: tuple(c[idx] for c in columns) for key, idx in rows.items()}


def is_mixed(labels: np.ndarray) -> bool:
    labels = np.asarray(labels, dtype=bool)
    return bool(labels.any() and (~labels).any())


def first_pick_accuracy(groups: Iterable[Group]) -> float:
    """Fraction of mixed tasks whose top-scored candidate passes. A tie at the top counts as a uniform pick among the
    tied candidates, so constant scores give exactly the random expectation."""
    hits = []
    for scores, labels in groups:
        scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
        if not is_mixed(labels):
            continue
        top = scores == scores.max()
        hits.append(labels[top].mean())
    return float(np.mean(hits)) if hits else math.nan


def random_pick_expectation(groups: Iterable[Group]) -> float:
    """Expected first-pick accuracy of a uniform random pick on the same mixed tasks."""
    rates = [np.asarray(labels, dtype=bool).mean() for _, labels in groups if is_mixed(labels)]
    return float(np.mean(rates)) if rates else math.nan


def energy_gap(energies: Sequence[float], labels: Sequence[bool]) -> float:
    """Mean fail energy minus mean pass energy: positive when the Lens puts passes lower."""
    energies, labels = np.asarray(energies, dtype=np.float64), np.asarray(labels, dtype=bool)
    if not is_mixed(labels):
        return math.nan
    return float(energies[~labels].mean() - energies[labels].mean())


def energy_quartiles(energies: Sequence[float], labels: Sequence[bool]) -> list[dict[str, float]]:
    """Pass rate in each energy quartile, lowest energies first: falling pass rates mean energy is a difficulty
    signal. Each entry: low, high (energy bounds), n, pass_rate."""
    energies, labels = np.asarray(energies, dtype=np.float64), np.asarray(labels, dtype=bool)
    if len(energies) == 0:
        return []
    order = np.argsort(energies, kind="mergesort")
    quartiles = []
    for part in np.array_split(order, 4):
        if len(part) == 0:
            continue
        quartiles.append({"low": float(energies[part].min()), "high": float(energies[part].max()),
                          "n": int(len(part)), "pass_rate": float(labels[part].mean())})
    return quartiles


def task_folds(task_keys: Sequence[str], k: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """k (train_rows, test_rows) splits with every task's candidates on one side only. Tasks are shuffled with `seed`
    and dealt round-robin, so fold sizes (in tasks) differ by at most one."""
    tasks = sorted(set(task_keys))
    if len(tasks) < 2:
        raise ValueError(f"task-split cross-validation needs at least 2 tasks, got {len(tasks)}")
    k = min(k, len(tasks))
    shuffled = np.random.default_rng(seed).permutation(len(tasks))
    fold_of = {tasks[t]: i % k for i, t in enumerate(shuffled)}
    folds = np.array([fold_of[key] for key in task_keys])
    return [(np.flatnonzero(folds != f), np.flatnonzero(folds == f)) for f in range(k)]


def finite_or_none(value: float | None) -> float | None:
    """JSON has no NaN or infinity: an unmeasured figure is null."""
    return None if value is None or not math.isfinite(value) else float(value)


def percent(value: float | None) -> str:
    """A fraction as the reports print it: one decimal, or n/a when it was not measured."""
    value = finite_or_none(value)
    return "n/a" if value is None else f"{100 * value:.1f}%"


def selection_report(energies: Sequence[float], labels: Sequence[bool], task_keys: Sequence[str],
                     mean_logprobs: Sequence[float] | None = None) -> dict[str, Any]:
    """Every selection metric at once, JSON-ready (NaN -> None)."""
    energies = np.asarray(energies, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    by_task = group_by_task(task_keys, -energies, labels)
    groups = list(by_task.values())
    report: dict[str, Any] = {
        "samples": int(len(labels)),
        "tasks": len(by_task),
        "mixed_tasks": sum(is_mixed(g[1]) for g in groups),
        "auc": finite_or_none(auc(-energies, labels)),
        "first_pick": finite_or_none(first_pick_accuracy(groups)),
        "random_pick": finite_or_none(random_pick_expectation(groups)),
        "energy_gap": finite_or_none(energy_gap(energies, labels)),
        "energy_quartiles": energy_quartiles(energies, labels),
    }
    if mean_logprobs is not None:
        logprobs = np.asarray(mean_logprobs, dtype=np.float64)
        known = ~np.isnan(logprobs)
        if known.all():
            report["logprob_first_pick"] = finite_or_none(
                first_pick_accuracy(group_by_task(task_keys, logprobs, labels).values()))
            report["logprob_auc"] = finite_or_none(auc(logprobs, labels))
        else:
            report["logprob_first_pick"] = report["logprob_auc"] = None
    return report
