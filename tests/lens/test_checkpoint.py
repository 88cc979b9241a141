import numpy as np
import pytest

from lens.model import CheckpointError, Lens, LensMismatch, checkpoint_path
from lens.train import TrainConfig, train
from tests.lens.synthetic import labelled_set


@pytest.fixture(scope="module")
def trained():
    X, y, keys, _ = labelled_set(n_tasks=20, seed=1)
    return X, train(X, y, keys, model_fingerprint="abc123", config=TrainConfig(max_epochs=10)).lens


def test_round_trip_keeps_energies_calibration_and_metadata(tmp_path, trained):
    X, lens = trained
    path = lens.save(checkpoint_path(tmp_path / "lens", "abc123"))
    assert path == tmp_path / "lens" / "abc123.pt"
    assert [p.name for p in path.parent.iterdir()] == ["abc123.pt"]  # no temporary file left behind
    loaded = Lens.load(path, model_fingerprint="abc123", n_embd=X.shape[1])
    np.testing.assert_allclose(loaded.energies(X), lens.energies(X), rtol=1e-5)  # BLAS order may differ
    assert loaded.calibration == lens.calibration
    for key in ("samples", "tasks", "auc", "trained_at", "n_embd", "model_fingerprint"):
        assert loaded.metadata[key] == lens.metadata[key]
    assert loaded.metadata["n_embd"] == X.shape[1]


def test_another_models_checkpoint_is_refused(tmp_path, trained):
    _, lens = trained
    path = lens.save(tmp_path / "lens.pt")
    with pytest.raises(LensMismatch, match="fingerprint abc123.*never applied to another"):
        Lens.load(path, model_fingerprint="def456")
    with pytest.raises(LensMismatch, match="64-dimensional.*gives 896"):
        Lens.load(path, model_fingerprint="abc123", n_embd=896)


def test_embeddings_of_the_wrong_size_are_refused(trained):
    _, lens = trained
    with pytest.raises(LensMismatch, match="896 dimensions"):
        lens.energies(np.zeros((2, 896), dtype=np.float32))


def test_a_file_that_is_not_a_checkpoint_says_so(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage" * 50)
    with pytest.raises(CheckpointError, match="not a readable Lens checkpoint"):
        Lens.load(bad)


def test_fingerprints_become_safe_file_names(tmp_path):
    assert checkpoint_path(tmp_path, "../../etc/passwd").parent == tmp_path
