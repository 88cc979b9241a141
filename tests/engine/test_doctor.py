"""`atlas-ls doctor` as a user runs it: a real child process on the real default model."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO_ROOT


def doctor(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "atlas_ls", "doctor", *args], capture_output=True, text=True,
                          cwd=REPO_ROOT, env={**os.environ, **env}, timeout=300)


def test_doctor_json_describes_the_default_model_and_directories(default_model_path):
    done = doctor("--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["model"]["path"] == str(default_model_path)
    assert report["model"]["n_embd"] == 896 and report["model"]["quantization"] == "Q4_K_M"
    assert report["model"]["profile"] == "qwen2.5-coder-0.5b"
    assert report["draft_model"] is None  # the default profile has no natural draft
    assert report["backend"] in ("CPU", "CUDA", "Metal", "Vulkan", "ROCm", "SYCL", "OpenCL")
    assert report["n_threads"] >= 1
    assert report["weight_repacking"] is ("AMX_INT8 = 1" not in report["system_info"])
    assert report["data_dir"] == os.environ["ATLAS_DATA_DIR"]
    assert report["cache_dir"] == str(default_model_path.parent.parent)
    assert set(report["optional"]) == {"bubblewrap", "sandbox_isolation"}


def test_doctor_text_names_the_draft_of_a_profile_that_has_one(default_model_path):
    done = doctor("--draft-model", str(default_model_path))
    assert done.returncode == 0, done.stderr
    assert f"draft model  {default_model_path}" in done.stdout
    assert "n_embd 896" in done.stdout and "threads" in done.stdout
    assert ("weight repacking off" in done.stdout) is ("AMX_INT8 = 1" in doctor("--json").stdout)


def test_doctor_fails_cleanly_on_an_unresolvable_model(tmp_path):
    done = doctor("--json", ATLAS_MODEL=str(tmp_path / "gone.gguf"))
    assert done.returncode == 1
    assert json.loads(done.stdout)["model"]["error"] == f"model file {tmp_path / 'gone.gguf'} does not exist"
    assert "the model cannot be used" in done.stderr and "Traceback" not in done.stderr
    bad = tmp_path / "bad.gguf"
    bad.write_text("not a model at all, just text " * 4)
    done = doctor("--model", str(bad))
    assert done.returncode == 1 and "NOT USABLE" in done.stdout and "not a GGUF model file" in done.stderr
