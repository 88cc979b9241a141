"""The cost field C(x) and the Lens that wraps it: energies, calibrated confidence, difficulty, checkpoints.

C(x) is a small MLP over a candidate's self-embedding (the generating model's mean final hidden state over the
candidate's tokens): standardise -> n_embd -> 512 -> 128 -> 1, SiLU between layers, Softplus at the end so that the
energy is >= 0. Low energy means likely correct. At n_embd 896 that is about 0.5M parameters.

A checkpoint is one torch file holding the weights, the standardisation statistics, the calibration (a logistic map
from energy to P(pass)) and metadata (model fingerprint, n_embd, samples, tasks, AUC, date). A Lens belongs to one
model: loading it for another fingerprint or another n_embd is refused.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

CHECKPOINT_FORMAT = 1
HIDDEN = (512, 128)


class LensMismatch(ValueError):
    """A checkpoint was offered to a model it was not trained on."""


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read as a Lens."""


class CostField(nn.Module):
    """C(x): energy >= 0, low = likely correct. Standardisation lives in buffers so it travels with the weights."""

    def __init__(self, n_embd: int, hidden: tuple[int, ...] = HIDDEN):
        super().__init__()
        self.n_embd = n_embd
        self.hidden = tuple(hidden)
        self.register_buffer("mean", torch.zeros(n_embd))
        self.register_buffer("std", torch.ones(n_embd))
        widths = (n_embd, *self.hidden)
        layers: list[nn.Module] = []
        for fan_in, fan_out in zip(widths, widths[1:]):
            layers += [nn.Linear(fan_in, fan_out), nn.SiLU()]
        layers += [nn.Linear(widths[-1], 1), nn.Softplus()]
        self.net = nn.Sequential(*layers)

    def reset_parameters(self, generator: torch.Generator) -> None:
        """PyTorch's default Linear init, but drawn from `generator` so a seed fixes it without the global RNG."""
        for layer in self.net:
            if isinstance(layer, nn.Linear):
                bound = 1.0 / math.sqrt(layer.in_features)
                with torch.no_grad():
                    layer.weight.uniform_(-bound, bound, generator=generator)
                    layer.bias.uniform_(-bound, bound, generator=generator)

    def set_standardisation(self, X: np.ndarray) -> None:
        mean = X.mean(axis=0)
        std = X.std(axis=0)
        # A constant feature carries nothing; dividing by a tiny std would only amplify float16 rounding noise.
        std = np.where(std < 1e-6, 1.0, std)
        self.mean.copy_(torch.from_numpy(mean.astype(np.float32)))
        self.std.copy_(torch.from_numpy(std.astype(np.float32)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std).squeeze(-1)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60.0, 60.0)))


class Lens:
    """A trained C(x) for one model, with its calibration and metadata.

    calibration: (a, b) with P(pass | energy e) = sigmoid(a + b * e); b is negative for a useful Lens.
    """

    def __init__(self, field: CostField, *, model_fingerprint: str, calibration: tuple[float, float] = (0.0, -1.0),
                 metadata: dict[str, Any] | None = None):
        self.field = field.eval()
        self.model_fingerprint = model_fingerprint
        self.calibration = (float(calibration[0]), float(calibration[1]))
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.metadata.update(model_fingerprint=model_fingerprint, n_embd=field.n_embd)

    @property
    def n_embd(self) -> int:
        return self.field.n_embd

    def energies(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        if X.ndim == 1:
            X = X[None, :]
        if X.shape[-1] != self.n_embd:
            raise LensMismatch(f"embeddings have {X.shape[-1]} dimensions but this Lens reads {self.n_embd}")
        with torch.no_grad():
            return self.field(torch.from_numpy(np.ascontiguousarray(X))).numpy().astype(np.float64)

    def confidence(self, energies: np.ndarray) -> np.ndarray:
        """Calibrated P(pass) for each energy."""
        a, b = self.calibration
        return sigmoid(a + b * np.asarray(energies, dtype=np.float64))

    def difficulty(self, X: np.ndarray) -> float:
        """1 - mean calibrated P(pass) over a task's candidate embeddings: how unlikely a sampled candidate is to pass.

        Read from candidates, not from a prompt-only embedding: the Lens was trained on states pooled over candidate
        tokens, and a prompt alone is a different distribution on which its calibration means nothing.
        """
        confidences = self.confidence(self.energies(X))
        return float(np.clip(1.0 - confidences.mean(), 0.0, 1.0))

    # --- checkpoints ---

    def save(self, path: Path) -> Path:
        payload = {
            "format": CHECKPOINT_FORMAT,
            "n_embd": self.n_embd,
            "hidden": list(self.field.hidden),
            "model_fingerprint": self.model_fingerprint,
            "calibration": list(self.calibration),
            "metadata": self.metadata,
            "state_dict": self.field.state_dict(),
        }
        return write_atomically(Path(path), lambda fh: torch.save(payload, fh))

    @classmethod
    def load(cls, path: Path, *, model_fingerprint: str | None = None, n_embd: int | None = None) -> "Lens":
        """Read a checkpoint; refuse it (LensMismatch) when it was trained for another model or embedding size."""
        payload = read_checkpoint(path)
        lens_fp, lens_dim = payload["model_fingerprint"], int(payload["n_embd"])
        if model_fingerprint is not None and lens_fp != model_fingerprint:
            raise LensMismatch(
                f"the Lens in {path} was trained on the model with fingerprint {lens_fp}, not on the current model "
                f"({model_fingerprint}); a Lens reads one model's hidden states and is never applied to another")
        if n_embd is not None and lens_dim != n_embd:
            raise LensMismatch(f"the Lens in {path} reads {lens_dim}-dimensional embeddings but the current model "
                               f"gives {n_embd}; it was trained on another model")
        field = CostField(lens_dim, tuple(payload["hidden"]))
        field.load_state_dict(payload["state_dict"])
        return cls(field, model_fingerprint=lens_fp, calibration=tuple(payload["calibration"]),
                   metadata=payload["metadata"])


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The raw checkpoint dict. weights_only: a shared checkpoint is data, never code to run."""
    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # torch raises many types for a file that is not a checkpoint
        raise CheckpointError(f"{path} is not a readable Lens checkpoint ({type(exc).__name__}: {exc})") from exc
    needed = ("format", "n_embd", "hidden", "model_fingerprint", "calibration", "metadata", "state_dict")
    if not isinstance(payload, dict) or any(key not in payload for key in needed):
        raise CheckpointError(f"{path} is not a Lens checkpoint (missing fields)")
    if payload["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} has checkpoint format {payload['format']}; this version reads "
                              f"{CHECKPOINT_FORMAT}")
    return payload


def checkpoint_path(checkpoint_dir: Path, model_fingerprint: str) -> Path:
    """One file per model fingerprint; characters unsafe in a file name are replaced."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", model_fingerprint)[:128] or "unnamed"
    return Path(checkpoint_dir) / f"{safe}.pt"


def write_atomically(path: Path, write) -> Path:
    """Write to a temporary file in the same folder, fsync, then rename over `path`: readers see old or new, never
    half a file, even when two servers share the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
