import numpy as np
import pytest

from lens.model import CostField, Lens
from lens.train import (NotEnoughData, TrainConfig, cross_validate, cross_validate_seeds, fit_calibration,
                        learning_curve, split_tasks, train, _mean_or_none)
from tests.lens.synthetic import labelled_set


def test_separable_set_is_separated_on_held_out_tasks():
    X, y, keys, logprobs = labelled_set(n_tasks=40, separation=1.5)
    result = train(X, y, keys, model_fingerprint="fp", mean_logprobs=logprobs)
    m = result.metrics
    assert m["tasks"] == 8 and m["mixed_tasks"] == 8  # 20% of 40 tasks held out, whole
    assert m["auc"] > 0.85
    assert m["first_pick"] >= 0.85 > m["random_pick"] + 0.2
    assert m["logprob_first_pick"] is not None
    assert m["energy_gap"] > 0
    # the held-out tasks are whole tasks the training never saw
    assert not set(result.heldout_tasks) & set(result.lens.metadata["train_tasks"])


def test_unrelated_labels_stay_near_chance_on_held_out_tasks():
    X, y, keys, _ = labelled_set(n_tasks=48, k=6, separation=0.0, seed=5)
    metrics = cross_validate(X, y, keys, k=3, config=TrainConfig(max_epochs=10, patience=5))
    # memorising training tasks must not look like skill on new ones
    assert 0.3 < metrics["auc"] < 0.7
    assert abs(metrics["first_pick"] - metrics["random_pick"]) < 0.25


def test_training_is_deterministic_with_a_seed():
    X, y, keys, _ = labelled_set(n_tasks=20, seed=2)
    config = TrainConfig(max_epochs=8, seed=7)
    first = train(X, y, keys, model_fingerprint="fp", config=config)
    second = train(X, y, keys, model_fingerprint="fp", config=config)
    np.testing.assert_allclose(first.lens.energies(X), second.lens.energies(X), rtol=1e-5)
    assert first.lens.calibration == pytest.approx(second.lens.calibration, rel=1e-5)
    assert first.heldout_tasks == second.heldout_tasks
    other = train(X, y, keys, model_fingerprint="fp", config=TrainConfig(max_epochs=8, seed=8))
    assert not np.allclose(first.lens.energies(X), other.lens.energies(X), rtol=1e-3)


def test_calibration_turns_low_energy_into_high_confidence():
    X, y, keys, _ = labelled_set(n_tasks=30, seed=3)
    lens = train(X, y, keys, model_fingerprint="fp").lens
    a, b = lens.calibration
    assert b < 0
    energies = lens.energies(X)
    confidence = lens.confidence(energies)
    assert ((confidence >= 0) & (confidence <= 1)).all()
    # This set's held-out AUC is ~0.77 (noisy on purpose), so the calibrated confidences overlap; passes still sit
    # clearly higher on average (0.29 with the training defaults, 0.31 with the old, weaker regularisation).
    assert confidence[y].mean() > confidence[~y].mean() + 0.25
    assert (energies >= 0).all()  # Softplus


def test_calibration_fit_recovers_a_logistic_relation():
    rng = np.random.default_rng(0)
    energies = rng.uniform(0, 4, 4000)
    labels = rng.random(4000) < 1 / (1 + np.exp(-(2.0 - 1.5 * energies)))
    a, b = fit_calibration(energies, labels, ridge=1e-6)
    assert a == pytest.approx(2.0, abs=0.25) and b == pytest.approx(-1.5, abs=0.2)
    # perfectly separated data still gives a finite slope
    a, b = fit_calibration(np.array([0.0, 0.1, 1.0, 1.1]), np.array([1, 1, 0, 0], dtype=bool))
    assert np.isfinite([a, b]).all() and b < 0


def test_split_keeps_tasks_whole_and_prefers_the_given_tasks():
    X, y, keys, _ = labelled_set(n_tasks=10, seed=4)
    prefer = {"task3", "task7"}
    train_rows, held_rows = split_tasks(keys, y, 0.2, seed=0, prefer=prefer)
    assert {keys[i] for i in held_rows} == prefer
    assert not {keys[i] for i in train_rows} & prefer
    with pytest.raises(NotEnoughData, match="at least 2 tasks"):
        split_tasks(["one"] * 6, np.array([1, 0] * 3, dtype=bool), 0.2, seed=0)
    with pytest.raises(NotEnoughData, match="passing and failing"):
        split_tasks(["a", "a", "b", "b"], np.array([1, 1, 0, 0], dtype=bool), 0.5, seed=0)


def test_the_cost_field_has_the_specified_shape():
    field = CostField(896)
    n_params = sum(p.numel() for p in field.parameters())
    assert n_params == 896 * 512 + 512 + 512 * 128 + 128 + 128 + 1  # about 0.5M
    lens = Lens(field, model_fingerprint="fp")
    assert lens.energies(np.zeros((3, 896), dtype=np.float32)).shape == (3,)


def test_cross_validation_over_seeds_reports_each_seed_and_their_mean():
    X, y, keys, logprobs = labelled_set(n_tasks=30, separation=0.6, seed=8)
    config = TrainConfig(max_epochs=10, patience=5)
    report = cross_validate_seeds(X, y, keys, (2, 5), k=3, config=config, mean_logprobs=logprobs)
    singles = [cross_validate(X, y, keys, k=3, config=TrainConfig(max_epochs=10, patience=5, seed=seed),
                              mean_logprobs=logprobs) for seed in (2, 5)]
    assert report["seeds"] == [2, 5]
    assert report["first_picks"] == [r["first_pick"] for r in singles]
    assert report["first_pick"] == pytest.approx(np.mean(report["first_picks"]))
    assert report["auc"] == pytest.approx(np.mean([r["auc"] for r in singles]))
    assert report["random_pick"] == singles[0]["random_pick"] and report["mixed_tasks"] == singles[0]["mixed_tasks"]
    assert "fold_aucs" not in report  # one seed's folds do not describe the mean
    # one seed is exactly that seed's report, fold AUCs included
    assert cross_validate_seeds(X, y, keys, (5,), k=3, config=config, mean_logprobs=logprobs) == {**singles[1],
                                                                                                   "seeds": [5]}
    with pytest.raises(ValueError, match="at least one seed"):
        cross_validate_seeds(X, y, keys, (), k=3)


def test_a_fold_without_a_figure_is_left_out_of_the_mean():
    # a fold with no mixed task has no first pick (None); one class only gives NaN; neither may pull the mean
    assert _mean_or_none([0.5, None, float("nan"), float("inf"), 0.7]) == pytest.approx(0.6)
    assert _mean_or_none([None, float("nan")]) is None


def test_learning_curve_ends_at_plain_cross_validation():
    X, y, keys, logprobs = labelled_set(n_tasks=40, separation=1.5, seed=3)
    config = TrainConfig(max_epochs=10, patience=5)
    curve = learning_curve(X, y, keys, [1.0, 0.01, 0.5], k=4, seeds=(0, 1), config=config, mean_logprobs=logprobs)
    tiny, half, full = curve["points"]
    assert [p["fraction"] for p in curve["points"]] == [0.01, 0.5, 1.0]
    assert tiny["train_tasks"] == 2 < half["train_tasks"] == 15 < full["train_tasks"] == 30
    # the whole training side is plain cross-validation, seed for seed
    for seed, pick in zip((0, 1), full["first_picks"]):
        seeded = TrainConfig(max_epochs=10, patience=5, seed=seed)
        assert pick == pytest.approx(cross_validate(X, y, keys, k=4, config=seeded)["first_pick"])
    assert full["untrained_folds"] == 0 and full["first_pick"] > curve["random_pick"] + 0.2
    assert curve["logprob_first_pick"] is not None and curve["mixed_tasks"] == 40


def test_a_fold_without_both_labels_scores_as_the_random_pick():
    X, y, keys, _ = labelled_set(n_tasks=10, seed=4)
    y = np.array([label or key != "task0" for label, key in zip(y, keys)])  # task0 mixed, task1..9 all pass
    y[:2] = [True, False]
    curve = learning_curve(X, y, keys, [1.0], k=5, seeds=(0, 1), config=TrainConfig(max_epochs=5))
    (point,) = curve["points"]
    # one failing candidate cannot sit on both sides of a training split, so no fold gets a Lens: all scores tie
    assert curve["mixed_tasks"] == 1 and point["untrained_folds"] == 10  # 5 folds x 2 seeds
    assert point["first_pick"] == pytest.approx(curve["random_pick"])


def test_learning_curve_refuses_what_it_cannot_measure():
    X, y, keys, _ = labelled_set(n_tasks=10)
    with pytest.raises(ValueError, match=r"fractions must lie in \(0, 1\], got \[0.5, 1.5\]"):
        learning_curve(X, y, keys, [0.5, 1.5])
    with pytest.raises(ValueError, match="no task has both a passing and a failing candidate"):
        learning_curve(X, np.ones(len(y), dtype=bool), keys, [1.0])
