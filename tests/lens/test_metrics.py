import json
import math

import numpy as np
import pytest

from lens import metrics


def test_auc_counts_ties_half_and_is_nan_with_one_class():
    assert metrics.auc([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0]) == 1.0
    assert metrics.auc([0.1, 0.2, 0.9, 0.8], [1, 1, 0, 0]) == 0.0
    assert metrics.auc([0.5, 0.5, 0.5], [1, 0, 0]) == 0.5
    # one pass at 0.7 beats the fail at 0.3, ties the fail at 0.7: (1 + 0.5) / 2
    assert metrics.auc([0.7, 0.3, 0.7], [1, 0, 0]) == pytest.approx(0.75)
    assert math.isnan(metrics.auc([1.0, 2.0], [1, 1]))


def test_auc_matches_pairwise_definition_on_random_data():
    rng = np.random.default_rng(3)
    scores, labels = rng.integers(0, 5, 60).astype(float), rng.random(60) < 0.4
    pairs = [(1.0 if p > f else 0.5 if p == f else 0.0) for p in scores[labels] for f in scores[~labels]]
    assert metrics.auc(scores, labels) == pytest.approx(np.mean(pairs))


def test_first_pick_counts_mixed_tasks_only_and_splits_ties():
    groups = [
        (np.array([3.0, 1.0, 2.0]), np.array([1, 0, 0])),  # top passes
        (np.array([1.0, 3.0]), np.array([1, 0])),  # top fails
        (np.array([2.0, 2.0, 0.0, 2.0]), np.array([1, 0, 1, 0])),  # three tied at the top, one passes: 1/3
        (np.array([5.0, 1.0]), np.array([1, 1])),  # not mixed: ignored
    ]
    assert metrics.first_pick_accuracy(groups) == pytest.approx((1 + 0 + 1 / 3) / 3)
    assert metrics.random_pick_expectation(groups) == pytest.approx((1 / 3 + 1 / 2 + 1 / 2) / 3)
    assert math.isnan(metrics.first_pick_accuracy([(np.array([1.0]), np.array([1]))]))


def test_constant_scores_give_exactly_the_random_expectation():
    rng = np.random.default_rng(0)
    groups = [(np.zeros(6), rng.random(6) < 0.5) for _ in range(30)]
    assert metrics.first_pick_accuracy(groups) == pytest.approx(metrics.random_pick_expectation(groups))


def test_energy_gap_and_quartiles():
    energies = np.arange(8, dtype=float)
    labels = np.array([1, 1, 1, 0, 1, 0, 0, 0], dtype=bool)
    assert metrics.energy_gap(energies, labels) == pytest.approx((3 + 5 + 6 + 7) / 4 - (0 + 1 + 2 + 4) / 4)
    quartiles = metrics.energy_quartiles(energies, labels)
    assert [q["n"] for q in quartiles] == [2, 2, 2, 2]
    assert [q["pass_rate"] for q in quartiles] == [1.0, 0.5, 0.5, 0.0]
    assert quartiles[0]["low"] == 0 and quartiles[-1]["high"] == 7


def test_task_folds_never_split_a_task_and_cover_everything():
    keys = [f"t{i % 13}" for i in range(100)]
    folds = metrics.task_folds(keys, k=5, seed=1)
    assert len(folds) == 5
    seen = np.concatenate([test for _, test in folds])
    assert sorted(seen) == list(range(100))
    for train, test in folds:
        assert not {keys[i] for i in train} & {keys[i] for i in test}
        assert len(train) + len(test) == 100
    with pytest.raises(ValueError, match="at least 2 tasks"):
        metrics.task_folds(["only"] * 5)


def test_selection_report_is_json_ready_and_compares_to_baselines():
    energies = np.array([0.1, 0.9, 0.2, 0.8, 0.5, 0.5])
    labels = np.array([1, 0, 1, 0, 1, 1], dtype=bool)
    keys = ["a", "a", "b", "b", "c", "c"]
    logprobs = np.array([-2.0, -1.0, -1.0, -2.0, -1.0, -1.0])
    report = metrics.selection_report(energies, labels, keys, logprobs)
    json.dumps(report, allow_nan=False)
    assert report["tasks"] == 3 and report["mixed_tasks"] == 2
    assert report["first_pick"] == 1.0 and report["random_pick"] == 0.5
    assert report["logprob_first_pick"] == 0.5
    assert report["energy_gap"] > 0
    assert metrics.selection_report([0.1, 0.2], [1, 1], ["a", "a"])["auc"] is None


def test_unmeasured_figures_are_null_in_json_and_n_a_in_print():
    assert [metrics.finite_or_none(v) for v in (None, math.nan, math.inf, np.float32(0.25), 1)] == [
        None, None, None, 0.25, 1.0]
    assert [metrics.percent(v) for v in (None, math.nan, 0.5, 0.1234)] == ["n/a", "n/a", "50.0%", "12.3%"]
