"""Synthetic labelled embeddings with the structure of real ones: each task has its own centre (tasks differ far more
than candidates do), and passing candidates lie a step along one hidden direction from failing ones."""

from __future__ import annotations

import numpy as np


def labelled_set(n_tasks: int = 40, k: int = 8, dim: int = 64, separation: float = 1.5, seed: int = 0,
                 prefix: str = "task"):
    """(X float32, y bool, task_keys, mean_logprobs). separation 0 gives labels unrelated to the embeddings. The
    log-probabilities are weakly informative, like the real baseline."""
    rng = np.random.default_rng(seed)
    direction = np.random.default_rng(12345).normal(size=dim)  # the same "correctness" direction for every set
    direction /= np.linalg.norm(direction)
    X, y, keys, logprobs = [], [], [], []
    for t in range(n_tasks):
        centre = rng.normal(size=dim) * 2.0
        pass_rate = rng.uniform(0.2, 0.8)
        labels = rng.random(k) < pass_rate
        labels[0], labels[1] = True, False  # every task mixed: selection matters everywhere
        for label in labels:
            X.append(centre + rng.normal(size=dim) + (separation if label else -separation) * direction)
            y.append(bool(label))
            keys.append(f"{prefix}{t}")
            logprobs.append(-1.0 + 0.1 * label + 0.3 * rng.normal())
    return np.asarray(X, dtype=np.float32), np.asarray(y), keys, np.asarray(logprobs)
