"""Hidden-test labels for the Lens. Each graded task's candidates (their self-embeddings, the hidden verdicts and
their mean log-probabilities) go to `OUT/embeddings/<task key>.npz` as soon as the task is graded, so a resumed run
keeps them; at the end they are gathered into `OUT/lens_set.npz`, the file `atlas-ls lens cv --data` measures the
Lens on (split by task), with the log-probability baseline beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from engine.selection_metrics import group_by_task, is_mixed, write_labelled_set

FOLDER = "embeddings"
LABELLED_SET = "lens_set.npz"


def save_task_samples(out: Path, task_key: str, embeddings: Sequence, hidden: Sequence[bool],
                      mean_logprobs: Sequence[float], last_states: Sequence | None = None) -> bool:
    """Store one task's labelled candidates (with their last-token states when every candidate has one); False
    (nothing written) when a candidate has no embedding, as a cached answer does."""
    if not embeddings or any(e is None for e in embeddings):
        return False
    folder = Path(out) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    logprobs = [float(v) if v is not None and np.isfinite(v) else -1e9 for v in mean_logprobs]
    arrays = {"X": _half(embeddings), "y": np.asarray(hidden, dtype=bool),
              "mean_logprobs": np.asarray(logprobs, dtype=np.float64)}
    if last_states is not None and len(last_states) == len(embeddings) and all(v is not None for v in last_states):
        arrays["X_last"] = _half(last_states)
    tmp = folder / f"{task_key}.tmp.npz"
    np.savez_compressed(tmp, **arrays)
    tmp.replace(folder / f"{task_key}.npz")
    return True


def _half(vectors: Sequence) -> np.ndarray:
    return np.stack([np.asarray(v, dtype=np.float16) for v in vectors])


def gather_labelled_set(out: Path, task_keys: Sequence[str]) -> dict | None:
    """Write `lens_set.npz` from the stored tasks among `task_keys`; its counts, or None when nothing is stored."""
    X, X_last, y, keys, logprobs = [], [], [], [], []
    for key in dict.fromkeys(task_keys):
        path = Path(out) / FOLDER / f"{key}.npz"
        if not path.is_file():
            continue
        with np.load(path, allow_pickle=False) as data:
            X.append(data["X"].astype(np.float32))
            X_last.append(data["X_last"].astype(np.float32) if "X_last" in data else None)
            y.extend(bool(v) for v in data["y"])
            logprobs.extend(float(v) for v in data["mean_logprobs"])
        keys.extend([key] * len(X[-1]))
    if not X:
        return None
    path = Path(out) / LABELLED_SET
    # The last-token states go in only when every task has them (a run resumed across versions may lack some).
    last = None if any(v is None for v in X_last) else np.concatenate(X_last)
    write_labelled_set(path, np.concatenate(X), y, keys, logprobs, X_last=last)
    by_task = group_by_task(keys, y)
    return {"path": str(path), "samples": len(y), "passing": int(sum(y)), "tasks": len(by_task),
            "mixed_tasks": sum(is_mixed(labels) for (labels,) in by_task.values())}
