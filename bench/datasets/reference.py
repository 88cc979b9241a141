"""Values computed by running a dataset's own reference code (canonical solutions, SciCode ground truth), cached per
data file under the per-user cache directory so a second run does not recompute them."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Any, Callable

from engine.paths import cache_dir


class ReferenceCache:
    """{key: value} for one data file; a changed file (different sha256) gets a fresh cache."""

    def __init__(self, dataset: str, source: Path, version: int) -> None:
        digest = hashlib.sha256(Path(source).read_bytes()).hexdigest()[:16]
        self.folder = cache_dir() / "bench" / f"{dataset}-{digest}-v{version}"

    def get(self, key: str, compute: Callable[[], Any]) -> Any:
        name = hashlib.sha256(key.encode()).hexdigest()[:32]
        path = self.folder / f"{name}.pickle"
        try:
            # Our own cache file, written below by this process or an earlier run.
            return pickle.loads(path.read_bytes())
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
            pass
        value = compute()
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{id(value)}")
        tmp.write_bytes(pickle.dumps(value, protocol=4))
        tmp.replace(path)  # atomic: two runs computing the same key both end with a whole file
        return value
