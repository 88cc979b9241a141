import sqlite3

import numpy as np
import pytest

from lens.db import open_database
from lens.store import SampleStore


def vector(seed: int, dim: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=dim).astype(np.float32)


def test_samples_round_trip_and_deduplicate(tmp_path):
    store = SampleStore(open_database(tmp_path / "atlas.sqlite3"))
    assert store.add("m1", "t1", "c1", vector(1), True, "editor", mean_logprob=-0.5)
    assert not store.add("m1", "t1", "c1", vector(2), False, "bench")  # same (model, task, candidate)
    assert store.add("m1", "t2", "c1", vector(3), False, "bench")  # same candidate text, other task
    assert store.add("m2", "t1", "c1", vector(4, dim=8), True, "bench")  # other model
    X, y, keys, logprobs = store.dataset("m1", with_logprobs=True)
    assert X.shape == (2, 16) and X.dtype == np.float32
    np.testing.assert_allclose(X[0], vector(1), rtol=1e-3, atol=1e-3)  # float16 storage
    assert y.tolist() == [True, False] and keys == ["t1", "t2"]
    assert logprobs[0] == -0.5 and np.isnan(logprobs[1])
    counts = store.counts("m1")
    assert counts == {"samples": 2, "passed": 1, "failed": 1, "tasks": 2, "mixed_tasks": 0,
                      "by_source": {"bench": 1, "editor": 1}, "last_recorded": counts["last_recorded"]}
    assert store.models() == ["m1", "m2"]
    _, y_bench, keys_bench = store.dataset("m1", source="bench")
    assert y_bench.tolist() == [False] and keys_bench == ["t2"]


def test_samples_survive_reopening(tmp_path):
    path = tmp_path / "atlas.sqlite3"
    store = SampleStore(open_database(path))
    assert store.add_many("m", "t", [("a", vector(1), True), ("b", vector(2), False, -1.0)], "editor") == 2
    store.conn.close()
    again = SampleStore(open_database(path))
    assert again.counts("m")["mixed_tasks"] == 1


def test_bad_input_stores_nothing(tmp_path):
    store = SampleStore(open_database(tmp_path / "atlas.sqlite3"))
    with pytest.raises(ValueError, match="finite"):
        store.add_many("m", "t", [("a", vector(1), True), ("b", np.full(16, np.nan), False)], "editor")
    assert store.counts("m")["samples"] == 0
    store.add("m", "t", "a", vector(1), True, "editor")
    with pytest.raises(ValueError, match="same size"):
        store.add("m", "t", "b", vector(2, dim=32), False, "editor")
    assert store.counts("m")["samples"] == 1


def test_out_of_range_values_saturate_instead_of_becoming_infinite(tmp_path):
    store = SampleStore(open_database(tmp_path / "atlas.sqlite3"))
    store.add("m", "t", "a", np.array([1e6, -1e6, 1.0]), True, "editor")
    X, _, _ = store.dataset("m")
    assert np.isfinite(X).all() and X[0, 0] > 6e4 and X[0, 1] < -6e4


def test_corrupt_database_is_kept_aside_and_a_fresh_store_starts(tmp_path):
    path = tmp_path / "atlas.sqlite3"
    path.write_bytes(b"not a database at all" * 200)
    messages: list[str] = []
    store = SampleStore(open_database(path, report=messages.append))
    assert store.add("m", "t", "a", vector(1), True, "editor")
    kept = list(tmp_path.glob("atlas.sqlite3.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == b"not a database at all" * 200
    assert len(messages) == 1 and "fresh" in messages[0] and str(kept[0]) in messages[0]


def test_labelled_set_files_round_trip_and_bad_ones_are_named(tmp_path):
    from lens.store import read_labelled_set, write_labelled_set

    X = np.stack([vector(i) for i in range(4)])
    write_labelled_set(tmp_path / "set.npz", X, [True, False, True, False], ["a", "a", "b", "b"], [-1, -2, -3, -4])
    X2, y2, keys2, logprobs2 = read_labelled_set(tmp_path / "set.npz")
    np.testing.assert_allclose(X2, X, atol=1e-2)
    assert y2.tolist() == [True, False, True, False] and keys2 == ["a", "a", "b", "b"]
    assert logprobs2.tolist() == [-1, -2, -3, -4]
    with pytest.raises(ValueError, match="n long"):
        write_labelled_set(tmp_path / "bad.npz", X, [True], ["a"] * 4)
    np.savez(tmp_path / "odd.npz", X=X, y=np.array([1, 0, 1, 0]))
    with pytest.raises(ValueError, match="lacks task_keys"):
        read_labelled_set(tmp_path / "odd.npz")


def test_a_batch_that_fails_halfway_stores_none_of_its_rows(tmp_path):
    conn = open_database(tmp_path / "atlas.sqlite3")
    store = SampleStore(conn)
    conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON lens_samples WHEN NEW.candidate_hash = 'bad' "
                 "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")  # a write failure SQLite itself raises
    rows = [("good-1", vector(1), True), ("bad", vector(2), False), ("good-2", vector(3), False)]
    with pytest.raises(sqlite3.DatabaseError, match="refused by the test"):
        store.add_many("m", "t", rows, "bench")
    assert not conn.in_transaction and store.counts("m")["passed"] == store.counts("m")["failed"] == 0
    conn.execute("DROP TRIGGER refuse")
    assert store.add_many("m", "t", rows, "bench") == 3  # the connection is usable and the batch goes in whole


def test_labelled_set_files_that_cannot_be_used_are_named(tmp_path):
    from lens.store import read_labelled_set, write_labelled_set

    X = np.stack([vector(i) for i in range(4)])
    labels, keys = [True, False, True, False], ["a", "a", "b", "b"]
    write_labelled_set(tmp_path / "mean-only.npz", X, labels, keys)
    with pytest.raises(ValueError, match="features must be one of mean, last, both"):
        read_labelled_set(tmp_path / "mean-only.npz", features="max")
    with pytest.raises(ValueError, match="lacks X_last"):
        read_labelled_set(tmp_path / "mean-only.npz", features="last")
    (tmp_path / "text.npz").write_text("a text file named .npz")
    with pytest.raises(ValueError, match="text.npz is not a labelled set"):
        read_labelled_set(tmp_path / "text.npz")
    bad = X.copy()
    bad[1, 3] = np.nan
    np.savez(tmp_path / "nan.npz", X=bad, y=np.array(labels), task_keys=np.array(keys))
    with pytest.raises(ValueError, match="not finite"):
        read_labelled_set(tmp_path / "nan.npz")
    write_labelled_set(tmp_path / "both.npz", X, labels, keys, X_last=X[:, ::-1])
    assert read_labelled_set(tmp_path / "both.npz", features="both")[0].shape == (4, 2 * X.shape[1])
