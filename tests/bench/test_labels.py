"""The hidden-labelled set the bench leaves for `atlas-ls lens cv --data`."""

import numpy as np
import pytest

from bench.labels import gather_labelled_set, save_task_samples
from lens.store import read_labelled_set


def test_tasks_are_gathered_in_order_and_cached_answers_are_left_out(tmp_path):
    rng = np.random.default_rng(0)
    assert save_task_samples(tmp_path, "a", list(rng.normal(size=(3, 8))), [True, False, False], [-0.1, -0.5, -0.9])
    assert save_task_samples(tmp_path, "b", list(rng.normal(size=(2, 8))), [True, True], [-0.2, float("nan")])
    assert not save_task_samples(tmp_path, "c", [None], [True], [0.0])  # a cache hit carries no embedding
    counts = gather_labelled_set(tmp_path, ["b", "a", "c", "missing"])
    assert counts == {"path": str(tmp_path / "lens_set.npz"), "samples": 5, "passing": 3, "tasks": 2,
                      "mixed_tasks": 1}
    X, y, keys, logprobs = read_labelled_set(tmp_path / "lens_set.npz")
    assert X.shape == (5, 8) and keys == ["b", "b", "a", "a", "a"]
    assert list(y) == [True, True, True, False, False]
    assert logprobs[1] == -1e9  # a non-finite log-probability ranks last instead of breaking the file


def test_nothing_stored_writes_nothing(tmp_path):
    assert gather_labelled_set(tmp_path, ["a"]) is None
    assert not (tmp_path / "lens_set.npz").exists()


def test_last_token_states_travel_only_when_every_task_has_them(tmp_path):
    rng = np.random.default_rng(1)
    mean, last = rng.normal(size=(2, 8)), rng.normal(size=(2, 8))
    assert save_task_samples(tmp_path, "a", list(mean), [True, False], [-0.1, -0.5], list(last))
    gather_labelled_set(tmp_path, ["a"])
    np.testing.assert_allclose(read_labelled_set(tmp_path / "lens_set.npz", features="last")[0], last, atol=1e-2)
    both = read_labelled_set(tmp_path / "lens_set.npz", features="both")[0]
    assert both.shape == (2, 16)
    np.testing.assert_allclose(both[:, :8], mean, atol=1e-2)

    assert save_task_samples(tmp_path, "b", list(mean), [True, True], [-0.2, -0.3], [None, None])
    gather_labelled_set(tmp_path, ["a", "b"])  # "b" has no last-token states: the set keeps the mean ones only
    assert read_labelled_set(tmp_path / "lens_set.npz")[0].shape == (4, 8)
    with pytest.raises(ValueError, match="X_last"):
        read_labelled_set(tmp_path / "lens_set.npz", features="last")
