"""Where per-user state lives: platformdirs directories for the app name `atlas-ls`.

`ATLAS_DATA_DIR`, `ATLAS_CACHE_DIR` and `ATLAS_CONFIG_DIR` override them, which is how the tests keep a user's real
state out of reach and how two profiles can live side by side.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "atlas-ls"


def _dir(env_name: str, default: str) -> Path:
    chosen = os.environ.get(env_name) or default
    path = Path(chosen).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    """The SQLite database and Lens checkpoints."""
    return _dir("ATLAS_DATA_DIR", platformdirs.user_data_dir(APP_NAME, appauthor=False))


def cache_dir() -> Path:
    """Assembled and downloaded model files: large, and safe to delete."""
    return _dir("ATLAS_CACHE_DIR", platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def config_dir() -> Path:
    """The user config file, `config.toml`."""
    return _dir("ATLAS_CONFIG_DIR", platformdirs.user_config_dir(APP_NAME, appauthor=False))


def database_path() -> Path:
    """One SQLite file shared by the pattern cache, the router's posteriors and the Lens samples."""
    return data_dir() / "atlas.sqlite3"


def lens_dir() -> Path:
    """Lens checkpoints, one file per model fingerprint."""
    path = data_dir() / "lens"
    path.mkdir(parents=True, exist_ok=True)
    return path


def user_config_path() -> Path:
    return config_dir() / "config.toml"
