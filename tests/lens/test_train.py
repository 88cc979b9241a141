import numpy as np
import pytest

from lens.model import CostField, Lens
from lens.train import NotEnoughData, TrainConfig, cross_validate, fit_calibration, split_tasks, train
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
