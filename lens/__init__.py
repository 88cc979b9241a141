"""The Lens: a small torch network C(x) that maps a candidate's self-embedding (the generating model's own hidden
states over task + candidate) to an energy, low meaning likely correct.

It owns the cost field and its training, calibration to P(pass), the labelled sample store in the per-user SQLite
file (and the helper that opens that file), checkpoints per model fingerprint, and the selection metrics the
benchmark reports. It knows nothing of the model runtime or of LSP: it sees vectors, labels and task keys.
"""

from __future__ import annotations

import importlib
from typing import Any

# Exported names and the module each lives in. Loaded on first use, so that `lens.db` (which the whole engine uses
# to open the database) does not pay for importing torch.
_EXPORTS = {
    "Lens": "lens.model", "LensMismatch": "lens.model", "CheckpointError": "lens.model",
    "checkpoint_path": "lens.model",
    "SampleStore": "lens.store",
    "Learner": "lens.learner", "Ranking": "lens.learner", "RetrainOutcome": "lens.learner",
    "TrainConfig": "lens.train", "TrainResult": "lens.train", "NotEnoughData": "lens.train",
    "cross_validate": "lens.train",
}
__all__ = sorted(_EXPORTS) + ["metrics"]


def __getattr__(name: str) -> Any:
    if name == "metrics":
        return importlib.import_module("lens.metrics")
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lens' has no attribute {name!r}")
