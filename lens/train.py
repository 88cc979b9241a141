"""Training the Lens: margin ranking over (pass, fail) pairs, early stopping on held-out AUC, logistic calibration.

The decision the Lens makes is "which of this task's candidates first", so the loss is a margin ranking over pairs of
one task's candidates (a pass should sit at least `margin` below a fail), plus, weighted less, pairs across tasks
(which teaches an absolute scale: energy as a difficulty signal). Held-out data is a set of whole tasks, never some
candidates of a task. Training stops when held-out AUC has not improved for `patience` epochs and keeps the best
epoch; a logistic fit on the held-out energies then maps energy to P(pass). Everything random is drawn from `seed`.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Sequence

import numpy as np
import torch

from lens.metrics import auc, finite_or_none, selection_report, task_folds
from lens.model import HIDDEN, CostField, Lens


class NotEnoughData(ValueError):
    """The samples cannot support a training run with an honest held-out set yet."""


@dataclass(frozen=True)
class TrainConfig:
    hidden: tuple[int, ...] = HIDDEN
    # Strong decay and a slower rate: a few hundred labelled candidates against ~0.5M weights overfit otherwise.
    # Task-split 5-fold cv on the 0.5B's HumanEval labels (1,388 candidates, 75 mixed tasks), three fold seeds:
    # first-pick 63-65 % with these against 59-60 % with lr 1e-3, decay 1e-2.
    lr: float = 3e-4
    weight_decay: float = 0.3
    margin: float = 1.0
    cross_task_weight: float = 0.25  # a cross-task pair counts this much relative to a same-task pair
    pairs_per_epoch: int = 2048  # same-task pairs sampled per epoch (all of them when there are fewer)
    batch_pairs: int = 256
    max_epochs: int = 100
    patience: int = 15
    holdout_fraction: float = 0.2
    seed: int = 0


@dataclass
class TrainResult:
    lens: Lens
    metrics: dict[str, Any]
    heldout_tasks: list[str] = field(default_factory=list)


# --- data: task split and pairs ---

def split_tasks(task_keys: Sequence[str], labels: np.ndarray, fraction: float, seed: int,
                prefer: set[str] | None = None, attempts: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """(train_rows, heldout_rows) with whole tasks on each side and both labels on both sides.

    Held-out tasks are drawn first from `prefer` (tasks the current Lens never trained on, so that two Lenses can be
    compared on ground new to both), then from the rest.
    """
    labels = np.asarray(labels, dtype=bool)
    tasks = sorted(set(task_keys))
    if len(tasks) < 2:
        raise NotEnoughData(f"training needs candidates from at least 2 tasks (whole tasks are held out); "
                            f"have {len(tasks)}")
    n_hold = min(len(tasks) - 1, max(1, round(fraction * len(tasks))))
    preferred = sorted(set(tasks) & (prefer or set()))
    others = sorted(set(tasks) - set(preferred))
    keys = np.asarray(task_keys)
    rng = np.random.default_rng(seed)
    for _ in range(attempts):
        ordered = list(rng.permutation(preferred)) + list(rng.permutation(others))
        held = np.isin(keys, ordered[:n_hold])
        if len(set(labels[held])) == 2 and len(set(labels[~held])) == 2:
            return np.flatnonzero(~held), np.flatnonzero(held)
    raise NotEnoughData(f"no split of {len(tasks)} tasks puts passing and failing candidates on both the training "
                        f"and the held-out side; more labelled tasks are needed")


def same_task_pairs(labels: np.ndarray, task_keys: Sequence[str], rows: np.ndarray) -> np.ndarray:
    """Every (pass_row, fail_row) pair within one task, over `rows`."""
    by_task: dict[str, list[int]] = {}
    for row in rows:
        by_task.setdefault(task_keys[row], []).append(int(row))
    pairs = []
    for members in by_task.values():
        members = np.asarray(members)
        passes, fails = members[labels[members]], members[~labels[members]]
        if len(passes) and len(fails):
            pairs.append(np.stack(np.meshgrid(passes, fails, indexing="ij"), -1).reshape(-1, 2))
    return np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=np.int64)


def cross_task_pairs(labels: np.ndarray, task_ids: np.ndarray, rows: np.ndarray, n: int,
                     rng: np.random.Generator) -> np.ndarray:
    """About n random (pass_row, fail_row) pairs whose candidates come from different tasks."""
    passes, fails = rows[labels[rows]], rows[~labels[rows]]
    if n <= 0 or not len(passes) or not len(fails):
        return np.zeros((0, 2), dtype=np.int64)
    pairs = np.stack([rng.choice(passes, n), rng.choice(fails, n)], -1)
    return pairs[task_ids[pairs[:, 0]] != task_ids[pairs[:, 1]]]


def epoch_pairs(within: np.ndarray, labels: np.ndarray, task_ids: np.ndarray, rows: np.ndarray,
                config: TrainConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """This epoch's shuffled pairs and their weights."""
    if len(within) > config.pairs_per_epoch:
        within = within[rng.choice(len(within), config.pairs_per_epoch, replace=False)]
    n_cross = max(len(within), config.batch_pairs)
    cross = cross_task_pairs(labels, task_ids, rows, n_cross, rng)
    pairs = np.concatenate([within, cross]).astype(np.int64)
    weights = np.concatenate([np.ones(len(within)), np.full(len(cross), config.cross_task_weight)])
    order = rng.permutation(len(pairs))
    return pairs[order], weights[order].astype(np.float32)


# --- optimisation ---

def ranking_loss(field: CostField, X: torch.Tensor, pairs: torch.Tensor, weights: torch.Tensor,
                 margin: float) -> torch.Tensor:
    """Weighted hinge: a pass should sit at least `margin` below its paired fail."""
    energy_pass, energy_fail = field(X[pairs[:, 0]]), field(X[pairs[:, 1]])
    hinge = torch.relu(margin - (energy_fail - energy_pass))
    return (weights * hinge).sum() / weights.sum()


def energies_of(field: CostField, X: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return field(X).numpy().astype(np.float64)


def fit_calibration(energies: np.ndarray, labels: np.ndarray, ridge: float = 1.0,
                    iterations: int = 50) -> tuple[float, float]:
    """(a, b) of P(pass) = sigmoid(a + b * energy), by Newton's method on the log-likelihood. The ridge keeps b
    finite when the energies separate the labels perfectly (then the maximum-likelihood slope is infinite)."""
    energies, labels = np.asarray(energies, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    centre, scale = energies.mean(), energies.std() or 1.0
    Z = np.stack([np.ones_like(energies), (energies - centre) / scale], axis=1)
    w = np.zeros(2)
    penalty = np.diag([0.0, ridge])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(Z @ w, -60, 60)))
        gradient = Z.T @ (p - labels) + penalty @ w
        hessian = (Z * (p * (1 - p))[:, None]).T @ Z + penalty + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    slope = w[1] / scale
    return float(w[0] - slope * centre), float(slope)


def fit(field: CostField, X_all: torch.Tensor, y: np.ndarray, task_ids: np.ndarray, train_rows: np.ndarray,
        held_rows: np.ndarray, within: np.ndarray, config: TrainConfig, rng: np.random.Generator) -> tuple[int, int]:
    """Optimise `field` on the training rows' pairs until held-out AUC has not improved for `patience` epochs, then
    restore its best epoch; returns (epochs run, best epoch)."""
    optimiser = torch.optim.AdamW(field.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    X_held = X_all[held_rows]
    best = (-math.inf, 0, {k: v.clone() for k, v in field.state_dict().items()})
    epoch = 0
    for epoch in range(1, config.max_epochs + 1):
        field.train()
        pairs, weights = epoch_pairs(within, y, task_ids, train_rows, config, rng)
        for start in range(0, len(pairs), config.batch_pairs):
            batch = torch.from_numpy(pairs[start:start + config.batch_pairs])
            loss = ranking_loss(field, X_all, batch, torch.from_numpy(weights[start:start + config.batch_pairs]),
                                config.margin)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        field.eval()
        held_auc = auc(-energies_of(field, X_held), y[held_rows])
        if held_auc > best[0]:
            best = (held_auc, epoch, {k: v.clone() for k, v in field.state_dict().items()})
        elif epoch - best[1] >= config.patience:
            break
    field.load_state_dict(best[2])
    field.eval()
    return epoch, best[1]


def train(X: np.ndarray, y: np.ndarray, task_keys: Sequence[str], *, model_fingerprint: str,
          config: TrainConfig = TrainConfig(), mean_logprobs: np.ndarray | None = None,
          prefer_heldout: set[str] | None = None) -> TrainResult:
    """Train a Lens on labelled embeddings; returns it with its held-out metrics."""
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=bool)
    task_keys = list(task_keys)
    train_rows, held_rows = split_tasks(task_keys, y, config.holdout_fraction, config.seed, prefer_heldout)
    task_index = {key: i for i, key in enumerate(sorted(set(task_keys)))}
    task_ids = np.array([task_index[key] for key in task_keys])
    rng = np.random.default_rng(config.seed)

    field = CostField(X.shape[1], config.hidden)
    field.reset_parameters(torch.Generator().manual_seed(config.seed))
    field.set_standardisation(X[train_rows])
    X_all = torch.from_numpy(X)
    within = same_task_pairs(y, task_keys, train_rows)
    epoch, best_epoch = fit(field, X_all, y, task_ids, train_rows, held_rows, within, config, rng)

    held_energies = energies_of(field, X_all[held_rows])
    calibration = fit_calibration(held_energies, y[held_rows])
    held_logprobs = None if mean_logprobs is None else np.asarray(mean_logprobs, dtype=np.float64)[held_rows]
    report = selection_report(held_energies, y[held_rows], [task_keys[i] for i in held_rows], held_logprobs)
    train_tasks = sorted({task_keys[i] for i in train_rows})
    heldout_tasks = sorted({task_keys[i] for i in held_rows})
    metrics = {
        **report,
        "train_samples": int(len(train_rows)),
        "train_tasks": len(train_tasks),
        "same_task_pairs": int(len(within)),
        "epochs": epoch,
        "best_epoch": best_epoch,
        "train_auc": finite_or_none(auc(-energies_of(field, X_all[train_rows]), y[train_rows])),
    }
    metadata = _lens_metadata(metrics, task_keys, train_tasks, heldout_tasks, len(held_rows), config)
    lens = Lens(field, model_fingerprint=model_fingerprint, calibration=calibration, metadata=metadata)
    return TrainResult(lens=lens, metrics=metrics, heldout_tasks=heldout_tasks)


def _lens_metadata(metrics: dict, task_keys: list[str], train_tasks: list[str], heldout_tasks: list[str],
                   heldout_samples: int, config: TrainConfig) -> dict:
    """What a checkpoint says about itself: its data, its held-out figures (the ranking rule reads first_pick
    against logprob_first_pick, over heldout_mixed_tasks), when it was trained and with which settings."""
    return {
        "samples": len(task_keys),
        "tasks": len(set(task_keys)),
        "auc": metrics["auc"],
        "first_pick": metrics["first_pick"],
        "random_pick": metrics["random_pick"],
        "logprob_first_pick": metrics.get("logprob_first_pick"),
        "heldout_mixed_tasks": metrics["mixed_tasks"],
        "heldout_samples": int(heldout_samples),
        "heldout_tasks": len(heldout_tasks),
        "trained_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "train_tasks": train_tasks,
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()},
    }


def _mean_or_none(values: Sequence[float | None]) -> float | None:
    """The mean of the measured figures; a fold without one (None, NaN, infinity) is left out, not averaged in."""
    finite = [v for v in values if finite_or_none(v) is not None]
    return float(np.mean(finite)) if finite else None


def cross_validate(X: np.ndarray, y: np.ndarray, task_keys: Sequence[str], *, k: int = 5,
                   config: TrainConfig = TrainConfig(), mean_logprobs: np.ndarray | None = None,
                   model_fingerprint: str = "cross-validation") -> dict[str, Any]:
    """Task-split k-fold: each fold's Lens scores tasks it never saw; selection metrics are pooled over all
    out-of-fold tasks. AUC is the mean of per-fold AUCs, since energies of different Lenses are not on one scale."""
    X, y, task_keys = np.asarray(X, dtype=np.float32), np.asarray(y, dtype=bool), list(task_keys)
    out_of_fold = np.full(len(y), np.nan)
    fold_aucs = []
    for fold, (train_rows, test_rows) in enumerate(task_folds(task_keys, k, config.seed)):
        result = train(X[train_rows], y[train_rows], [task_keys[i] for i in train_rows],
                       model_fingerprint=model_fingerprint, config=config)
        out_of_fold[test_rows] = result.lens.energies(X[test_rows])
        fold_aucs.append(auc(-out_of_fold[test_rows], y[test_rows]))
    report = selection_report(out_of_fold, y, task_keys, mean_logprobs)
    report["auc"] = _mean_or_none(fold_aucs)
    report["fold_aucs"] = [finite_or_none(a) for a in fold_aucs]
    report["folds"] = len(fold_aucs)
    return report


def cross_validate_seeds(X: np.ndarray, y: np.ndarray, task_keys: Sequence[str], seeds: Sequence[int], *,
                         k: int = 5, config: TrainConfig = TrainConfig(),
                         mean_logprobs: np.ndarray | None = None) -> dict[str, Any]:
    """`cross_validate` once per seed (each draws its own folds and training), reported as the seed means with each
    seed's first pick and AUC beside them: on a few dozen mixed tasks one seed's first pick moves by ten points or
    more, so a single figure says little. With one seed it is that seed's report."""
    if not seeds:
        raise ValueError("cross-validation needs at least one seed")
    reports = [cross_validate(X, y, task_keys, k=k, mean_logprobs=mean_logprobs,
                              config=replace(config, seed=seed)) for seed in seeds]
    if len(reports) == 1:
        return {**reports[0], "seeds": list(seeds)}
    first_picks, aucs = [r["first_pick"] for r in reports], [r["auc"] for r in reports]
    # Fold AUCs and energy quartiles belong to one seed's Lenses; the rest is either data (counts, random and
    # log-probability picks, the same for every seed) or averaged here.
    report = {key: value for key, value in reports[0].items() if key not in ("fold_aucs", "energy_quartiles")}
    report.update(seeds=list(seeds), first_picks=first_picks, aucs=aucs, first_pick=_mean_or_none(first_picks),
                  auc=_mean_or_none(aucs), energy_gap=_mean_or_none([r["energy_gap"] for r in reports]))
    return report


def subsample_tasks(rows: np.ndarray, task_keys: Sequence[str], fraction: float,
                    rng: np.random.Generator) -> np.ndarray:
    """The rows of a random `fraction` of the tasks among `rows` (at least 2 tasks), whole tasks only."""
    tasks = sorted({task_keys[i] for i in rows})
    keep = set(rng.choice(tasks, size=min(len(tasks), max(2, round(fraction * len(tasks)))), replace=False))
    return np.array([i for i in rows if task_keys[i] in keep], dtype=np.int64)


def learning_curve(X: np.ndarray, y: np.ndarray, task_keys: Sequence[str], fractions: Sequence[float], *,
                   k: int = 5, seeds: Sequence[int] = (0, 1, 2), config: TrainConfig = TrainConfig(),
                   mean_logprobs: np.ndarray | None = None) -> dict[str, Any]:
    """Task-split k-fold first pick against the amount of training data: in each fold the Lens trains on a random
    `fraction` of that fold's training tasks and scores the held-out fold, for every seed (which draws both the folds
    and the subsample). A curve that has flattened says more labels of the same kind will not raise the first pick;
    one still rising says they will. A fold whose subsample lacks a class gets no Lens: its tasks score as ties, the
    random expectation, and are counted in `untrained_folds`."""
    bad = [f for f in fractions if not 0 < f <= 1]
    if not fractions or bad:
        raise ValueError(f"learning-curve fractions must lie in (0, 1], got {list(fractions)}")
    X, y, task_keys = np.asarray(X, dtype=np.float32), np.asarray(y, dtype=bool), list(task_keys)
    baseline = selection_report(np.zeros(len(y)), y, task_keys, mean_logprobs)
    if not baseline["mixed_tasks"]:
        raise ValueError("no task has both a passing and a failing candidate, so there is no first pick to measure")
    points = []
    for fraction in sorted(fractions):
        picks, train_tasks, untrained = [], [], 0
        for seed in seeds:
            seeded = replace(config, seed=seed)
            energies = np.zeros(len(y))
            for fold, (train_rows, test_rows) in enumerate(task_folds(task_keys, k, seed)):
                rows = subsample_tasks(train_rows, task_keys, fraction, np.random.default_rng([seed, fold]))
                train_tasks.append(len({task_keys[i] for i in rows}))
                try:
                    result = train(X[rows], y[rows], [task_keys[i] for i in rows], model_fingerprint="curve",
                                   config=seeded)
                except NotEnoughData:
                    untrained += 1
                    continue
                energies[test_rows] = result.lens.energies(X[test_rows])
            picks.append(selection_report(energies, y, task_keys)["first_pick"])
        points.append({"fraction": fraction, "train_tasks": float(np.mean(train_tasks)),
                       "first_pick": float(np.mean(picks)),
                       "first_picks": picks, "untrained_folds": untrained})
    return {"samples": int(len(y)), "tasks": len(set(task_keys)), "mixed_tasks": baseline["mixed_tasks"],
            "folds": min(k, len(set(task_keys))), "seeds": list(seeds), "random_pick": baseline["random_pick"],
            "logprob_first_pick": baseline.get("logprob_first_pick"), "points": points}
