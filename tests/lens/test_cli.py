"""`atlas-ls lens ...` as a user runs it: a child process on a throwaway data directory with a real SQLite file."""

import json
import os
import subprocess
import sys

import pytest

from lens.db import open_database
from lens.store import SampleStore
from tests.lens.synthetic import labelled_set


def atlas(data_dir, *args):
    env = {**os.environ, "ATLAS_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "atlas_ls", "lens", *args], capture_output=True, text=True,
                          env=env, timeout=300)


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory):
    """A data directory holding 40 labelled tasks for model fpA, trained once with `lens train`."""
    data_dir = tmp_path_factory.mktemp("data")
    store = SampleStore(open_database(data_dir / "atlas.sqlite3"))
    X, y, keys, logprobs = labelled_set(n_tasks=40, dim=64, seed=11)
    for i, key in enumerate(keys):
        store.add("fpA", key, f"cand{i}", X[i], y[i], "bench", mean_logprob=logprobs[i])
    store.conn.close()
    before = json.loads(atlas(data_dir, "stats", "--json", "--model-fingerprint", "fpA").stdout)
    assert before["samples"] == 320 and before["auc"] is None and before["trained_at"] is None
    done = atlas(data_dir, "train", "--json", "--model-fingerprint", "fpA")
    assert done.returncode == 0, done.stderr
    return data_dir, json.loads(done.stdout)


def test_train_reports_held_out_metrics_against_baselines(trained_dir):
    data_dir, result = trained_dir
    assert result["swapped"] and result["model_fingerprint"] == "fpA"
    assert result["auc"] > 0.7 and result["first_pick"] > result["random_pick"] + 0.2
    assert result["logprob_first_pick"] is not None and len(result["energy_quartiles"]) == 4
    assert (data_dir / "lens" / "fpA.pt").exists()
    # a good Lens, but measured on 8 held-out tasks: too few to take over the ranking, and the result says so
    assert result["ranks"] == "logprob" and "covers 8 tasks" in result["ranking_note"]


def test_stats_after_training(trained_dir):
    data_dir, result = trained_dir
    stats = json.loads(atlas(data_dir, "stats", "--json", "--model-fingerprint", "fpA").stdout)
    assert stats["samples"] == 320 and stats["auc"] == result["auc"] and stats["trained_at"]
    assert stats["selection_accuracy"] == result["first_pick"]
    model = stats["models"]["fpA"]
    assert (model["passed"], model["failed"], model["tasks"]) == (int(sum(labelled_set(40, dim=64, seed=11)[1])),
                                                                  320 - model["passed"], 40)
    assert model["last_training"]["swapped"] is True
    # 40 tasks hold out 8: a comparison on 8 mixed tasks is too small for the Lens to take over the ranking
    assert model["checkpoint"]["heldout_mixed_tasks"] == 8 and stats["ranks"] == "logprob"
    text = atlas(data_dir, "stats", "--model-fingerprint", "fpA")
    assert text.returncode == 0 and "model fpA (current)" in text.stdout and "held-out AUC" in text.stdout
    assert "on 8 mixed held-out tasks" in text.stdout and "  ranked by mean token log-probability: " in text.stdout


def test_export_then_import_on_another_machine(trained_dir, tmp_path):
    data_dir, _ = trained_dir
    shared = tmp_path / "shared-lens.pt"
    done = atlas(data_dir, "export", str(shared), "--model-fingerprint", "fpA")
    assert done.returncode == 0, done.stderr
    assert shared.read_bytes() == (data_dir / "lens" / "fpA.pt").read_bytes()

    other = tmp_path / "other-machine"
    refused = atlas(other, "import", str(shared), "--model-fingerprint", "fpB")
    assert refused.returncode == 1
    assert "refused" in refused.stderr and "fpA" in refused.stderr and "fpB" in refused.stderr
    assert not (other / "lens").exists() or not list((other / "lens").iterdir())

    done = atlas(other, "import", str(shared), "--model-fingerprint", "fpA")
    assert done.returncode == 0, done.stderr
    assert (other / "lens" / "fpA.pt").read_bytes() == shared.read_bytes()
    again = atlas(other, "import", str(shared), "--model-fingerprint", "fpA")
    assert again.returncode == 0 and "previous one was kept" in again.stdout
    assert len(list((other / "lens").glob("fpA.pt.before-import-*"))) == 1
    stats = json.loads(atlas(other, "stats", "--json", "--model-fingerprint", "fpA").stdout)
    assert stats["samples"] == 0 and stats["auc"] is not None  # a Lens without local samples


def test_bad_requests_get_clear_messages(tmp_path):
    empty = tmp_path / "empty"
    done = atlas(empty, "train", "--model-fingerprint", "fpZ")
    assert done.returncode == 1 and "no labelled samples for model fpZ" in done.stderr
    done = atlas(empty, "export", str(tmp_path / "x.pt"), "--model-fingerprint", "fpZ")
    assert done.returncode == 1 and "no Lens for model fpZ" in done.stderr
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    done = atlas(empty, "import", str(junk), "--model-fingerprint", "fpZ")
    assert done.returncode == 1 and "not a readable Lens checkpoint" in done.stderr
    done = atlas(empty, "import", str(tmp_path / "missing.pt"), "--model-fingerprint", "fpZ")
    assert done.returncode == 1 and "is not a file" in done.stderr


def test_cross_validation_over_the_store_and_over_an_exported_set(trained_dir, tmp_path):
    data_dir, _ = trained_dir
    done = atlas(data_dir, "cv", "--json", "--folds", "4", "--model-fingerprint", "fpA", "--source", "bench")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["folds"] == 4 and report["tasks"] == 40 and report["samples"] == 320
    assert report["first_pick"] > report["random_pick"] + 0.2
    assert report["logprob_first_pick"] is not None and len(report["fold_aucs"]) == 4

    bad = tmp_path / "set.npz"
    import numpy as np

    np.savez(bad, X=np.zeros((3, 4)), y=np.array([1, 0, 1]))
    done = atlas(data_dir, "cv", "--data", str(bad))
    assert done.returncode == 1 and "lacks task_keys" in done.stderr
    missing = tmp_path / "missing.npz"
    done = atlas(data_dir, "cv", "--data", str(missing))
    assert done.returncode == 1 and f"atlas-ls lens cv: cannot read {missing}" in done.stderr
    assert "Traceback" not in done.stderr
    done = atlas(data_dir, "cv", "--features", "last", "--model-fingerprint", "fpA")
    assert done.returncode == 2 and "--features needs --data" in done.stderr


def cv_report(data_dir, *args) -> dict:
    """`atlas-ls lens cv --json ARGS` on model fpA's stored samples, which must succeed."""
    done = atlas(data_dir, "cv", "--json", *args, "--model-fingerprint", "fpA")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_cross_validation_over_several_seeds(trained_dir):
    data_dir, _ = trained_dir
    report = cv_report(data_dir, "--folds", "4", "--seeds", "2", "--seed", "7")
    assert report["seeds"] == [7, 8] and len(report["first_picks"]) == 2 and len(report["aucs"]) == 2
    assert report["first_pick"] == pytest.approx(sum(report["first_picks"]) / 2)
    text = atlas(data_dir, "cv", "--folds", "4", "--seeds", "2", "--model-fingerprint", "fpA")
    assert text.returncode == 0 and "(mean of seeds 0..1: " in text.stdout
    done = atlas(data_dir, "cv", "--seeds", "0", "--model-fingerprint", "fpA")
    assert done.returncode == 2 and "--seeds must be at least 1" in done.stderr


def test_learning_curve_over_the_store(trained_dir):
    data_dir, _ = trained_dir
    report = cv_report(data_dir, "--folds", "4", "--curve", "1,0.1", "--seeds", "1")
    assert report["seeds"] == [0] and report["tasks"] == 40 and report["folds"] == 4
    small, full = report["points"]
    assert (small["fraction"], small["train_tasks"]) == (0.1, 3) and (full["fraction"], full["train_tasks"]) == (1, 30)
    assert full["first_pick"] > report["random_pick"] + 0.2
    text = atlas(data_dir, "cv", "--folds", "4", "--curve", "1", "--seeds", "1", "--model-fingerprint", "fpA")
    assert text.returncode == 0 and "100% of training tasks (~30): first pick" in text.stdout


def test_learning_curve_names_a_bad_fraction(trained_dir):
    data_dir, _ = trained_dir
    done = atlas(data_dir, "cv", "--curve", "0.5,0", "--model-fingerprint", "fpA")
    assert done.returncode == 2 and "each fraction must lie in (0, 1], not 0.0" in done.stderr
    done = atlas(data_dir, "cv", "--curve", "half", "--model-fingerprint", "fpA")
    assert done.returncode == 2 and "'half' is not a comma-separated list of numbers" in done.stderr
    done = atlas(data_dir, "cv", "--curve", "1", "--seeds", "0", "--model-fingerprint", "fpA")
    assert done.returncode == 2 and "--seeds must be at least 1" in done.stderr


def test_without_a_fingerprint_the_configured_model_is_the_current_one(tmp_path, default_model_path):
    """As a user types it: no --model-fingerprint, so the default model's GGUF is read for its fingerprint."""
    from engine.models import validate_gguf

    done = atlas(tmp_path / "data", "stats", "--json")
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout)
    fingerprint = validate_gguf(default_model_path).fingerprint
    assert stats["model_fingerprint"] == fingerprint and stats["current_model"] is True
    assert stats["samples"] == 0 and stats["models"][fingerprint]["checkpoint"] is None
    text = atlas(tmp_path / "data", "stats").stdout
    assert f"model {fingerprint} (current)" in text and "ranked by mean token log-probability" in text


def test_a_model_that_cannot_be_fingerprinted_is_named(tmp_path):
    missing = tmp_path / "nowhere.gguf"
    done = atlas(tmp_path / "data", "train", "--model", str(missing))
    assert done.returncode == 2
    assert done.stderr.startswith(f"atlas-ls lens: cannot fingerprint the model '{missing}'")
    assert "or pass --model-fingerprint" in done.stderr and "Traceback" not in done.stderr


def test_train_in_text_form_reports_held_out_metrics(trained_dir, tmp_path):
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(trained_dir[0], copy)  # the module's trained store stays as the other tests expect it
    done = atlas(copy, "train", "--model-fingerprint", "fpA")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1].startswith("held-out (") and "first-pick" in lines[1] and "log-prob" in lines[1]
    assert lines[2].startswith("trained on ") and "best epoch" in lines[2]
    assert lines[3].startswith("energy quartiles (low -> high), pass rate: ") and lines[3].count("%") == 4
    assert lines[-1].startswith("ranked by mean token log-probability: the Lens's held-out comparison covers")
