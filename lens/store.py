"""Labelled samples for the Lens, in the shared per-user SQLite file (opened by `lens.db.open_database`).

One row per (model fingerprint, task, candidate): the candidate's self-embedding as a float16 blob, its label
(passed the tests or not), where it came from (editor / bench), its mean token log-probability when known (the
baseline the Lens is compared against) and when it was recorded. A candidate seen again is not stored twice.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import zipfile
from typing import Any, Iterable, Sequence

import numpy as np

FLOAT16_MAX = float(np.finfo(np.float16).max)

SCHEMA = """
CREATE TABLE IF NOT EXISTS lens_samples (
    model_fp TEXT NOT NULL,
    task_key TEXT NOT NULL,
    candidate_hash TEXT NOT NULL,
    n_embd INTEGER NOT NULL,
    embedding BLOB NOT NULL,
    label INTEGER NOT NULL,
    source TEXT NOT NULL,
    mean_logprob REAL,
    created REAL NOT NULL,
    PRIMARY KEY (model_fp, task_key, candidate_hash)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lens_trainings (
    model_fp TEXT NOT NULL,
    finished REAL NOT NULL,
    samples INTEGER NOT NULL,
    auc REAL,
    previous_auc REAL,
    swapped INTEGER NOT NULL,
    reason TEXT NOT NULL
);
"""


def encode_embedding(embedding: np.ndarray) -> bytes:
    """float16, little-endian. Values beyond float16's range saturate rather than becoming inf."""
    vector = np.asarray(embedding, dtype=np.float64).reshape(-1)
    if vector.size == 0 or not np.isfinite(vector).all():
        raise ValueError("an embedding must be a non-empty vector of finite numbers")
    return np.clip(vector, -FLOAT16_MAX, FLOAT16_MAX).astype("<f2").tobytes()


def decode_embedding(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f2").astype(np.float32)


class SampleStore:
    """Thread-safe over one connection: the server's request thread records while a background thread trains."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self._lock = threading.Lock()
        with self._lock:
            self.conn.executescript(SCHEMA)

    def add(self, model_fp: str, task_key: str, candidate_hash: str, embedding: np.ndarray, label: bool,
            source: str, *, mean_logprob: float | None = None) -> bool:
        """Store one labelled sample; False when (model, task, candidate) is already there."""
        return self.add_many(model_fp, task_key, [(candidate_hash, embedding, label, mean_logprob)], source) == 1

    def add_many(self, model_fp: str, task_key: str, candidates: Iterable[Sequence[Any]], source: str) -> int:
        """Store (candidate_hash, embedding, label[, mean_logprob]) rows of one task in one transaction; returns how
        many were new. Every row is checked before any is written, so bad input stores nothing."""
        now = time.time()
        rows = []
        for candidate in candidates:
            candidate_hash, embedding, label = candidate[0], candidate[1], candidate[2]
            logprob = candidate[3] if len(candidate) > 3 else None
            blob = encode_embedding(embedding)
            rows.append((model_fp, task_key, str(candidate_hash), len(blob) // 2, blob, int(bool(label)), source,
                         None if logprob is None else float(logprob), now))
        self._check_width(model_fp, {row[3] for row in rows})
        insert = ("INSERT OR IGNORE INTO lens_samples (model_fp, task_key, candidate_hash, n_embd, embedding, "
                  "label, source, mean_logprob, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
        with self._lock:
            # A caller that shares the connection may already be inside its own transaction: join it then.
            own_transaction = not self.conn.in_transaction
            if own_transaction:
                self.conn.execute("BEGIN IMMEDIATE")
            try:
                before = self.conn.total_changes
                self.conn.executemany(insert, rows)
                added = self.conn.total_changes - before
                if own_transaction:
                    self.conn.execute("COMMIT")
            except BaseException:
                if own_transaction:
                    self.conn.execute("ROLLBACK")
                raise
        return added

    def _check_width(self, model_fp: str, widths: set[int]) -> None:
        """One model has one embedding size; a second size means the caller mixed up models."""
        with self._lock:
            row = self.conn.execute("SELECT n_embd FROM lens_samples WHERE model_fp = ? LIMIT 1",
                                    (model_fp,)).fetchone()
        expected = widths | ({row[0]} if row else set())
        if len(expected) > 1:
            raise ValueError(f"embeddings of {sorted(expected)} dimensions offered for model {model_fp}; one model's "
                             f"embeddings all have the same size")

    def dataset(self, model_fp: str, *, with_logprobs: bool = False, source: str | None = None):
        """(X float32 (n, n_embd), y bool (n,), task_keys list) in recording order; with_logprobs adds the mean
        log-probabilities (NaN where unknown) as a fourth item; `source` keeps only samples from there."""
        query = "SELECT embedding, label, task_key, mean_logprob FROM lens_samples WHERE model_fp = ?"
        params: tuple = (model_fp,)
        if source is not None:
            query, params = query + " AND source = ?", (model_fp, source)
        with self._lock:
            rows = self.conn.execute(query + " ORDER BY created, task_key, candidate_hash", params).fetchall()
        if rows:
            X = np.stack([decode_embedding(r[0]) for r in rows])
        else:
            X = np.zeros((0, 0), dtype=np.float32)
        y = np.array([bool(r[1]) for r in rows], dtype=bool)
        keys = [r[2] for r in rows]
        if not with_logprobs:
            return X, y, keys
        logprobs = np.array([np.nan if r[3] is None else r[3] for r in rows], dtype=np.float64)
        return X, y, keys, logprobs

    def counts(self, model_fp: str) -> dict[str, Any]:
        """samples, passed, failed, tasks, mixed_tasks (>= 1 pass and >= 1 fail), by_source, last_recorded."""
        with self._lock:
            total, passed, tasks, last = self.conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(label), 0), COUNT(DISTINCT task_key), MAX(created) "
                "FROM lens_samples WHERE model_fp = ?", (model_fp,)).fetchone()
            mixed = self.conn.execute(
                "SELECT COUNT(*) FROM (SELECT task_key FROM lens_samples WHERE model_fp = ? GROUP BY task_key "
                "HAVING MIN(label) = 0 AND MAX(label) = 1)", (model_fp,)).fetchone()[0]
            by_source = dict(self.conn.execute(
                "SELECT source, COUNT(*) FROM lens_samples WHERE model_fp = ? GROUP BY source ORDER BY source",
                (model_fp,)).fetchall())
        return {"samples": total, "passed": passed, "failed": total - passed, "tasks": tasks, "mixed_tasks": mixed,
                "by_source": by_source, "last_recorded": last}

    def models(self) -> list[str]:
        """Every model fingerprint with samples, most samples first."""
        with self._lock:
            rows = self.conn.execute(
                "SELECT model_fp FROM lens_samples GROUP BY model_fp ORDER BY COUNT(*) DESC, model_fp").fetchall()
        return [r[0] for r in rows]

    # --- training log: every attempt, swapped in or not, so `lens stats` can say what happened last ---

    def log_training(self, model_fp: str, *, samples: int, auc: float | None, previous_auc: float | None,
                     swapped: bool, reason: str) -> None:
        with self._lock:
            self.conn.execute("INSERT INTO lens_trainings VALUES (?, ?, ?, ?, ?, ?, ?)",
                              (model_fp, time.time(), samples, auc, previous_auc, int(swapped), reason))

    def last_training(self, model_fp: str) -> dict[str, Any] | None:
        with self._lock:
            row = self.conn.execute(
                "SELECT finished, samples, auc, previous_auc, swapped, reason FROM lens_trainings "
                "WHERE model_fp = ? ORDER BY finished DESC LIMIT 1", (model_fp,)).fetchone()
        if row is None:
            return None
        return {"finished": row[0], "samples": row[1], "auc": row[2], "previous_auc": row[3],
                "swapped": bool(row[4]), "reason": row[5]}


# --- labelled sets as files: how a benchmark hands its candidates (graded on hidden tests) to `lens cv` ---

def write_labelled_set(path, X: np.ndarray, y: Sequence[bool], task_keys: Sequence[str],
                       mean_logprobs: Sequence[float] | None = None, X_last: np.ndarray | None = None) -> None:
    """An .npz with X (n, n_embd) float16, y, task_keys and, when given, mean_logprobs and X_last (the states at
    each candidate's last token, the other pooling `lens cv --features` can compare)."""
    arrays = {"X": np.asarray(X, dtype=np.float16), "y": np.asarray(y, dtype=bool),
              "task_keys": np.asarray([str(k) for k in task_keys])}
    if mean_logprobs is not None:
        arrays["mean_logprobs"] = np.asarray(mean_logprobs, dtype=np.float64)
    _check_set(path, arrays["X"], arrays["y"], list(arrays["task_keys"]), arrays.get("mean_logprobs"))
    if X_last is not None:
        arrays["X_last"] = np.asarray(X_last, dtype=np.float16)
        _check_set(path, arrays["X_last"], arrays["y"], list(arrays["task_keys"]), None)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


FEATURES = ("mean", "last", "both")  # mean-pooled states, last-token states, the two side by side


def read_labelled_set(path, features: str = "mean"):
    """(X float32, y bool, task_keys, mean_logprobs or None) from `write_labelled_set`'s file, X made of the chosen
    `features`; ValueError naming what is wrong otherwise."""
    if features not in FEATURES:
        raise ValueError(f"features must be one of {', '.join(FEATURES)}, not {features!r}")
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"{path} is not a labelled set (.npz): {exc}") from exc
    with data:
        missing = [name for name in ("X", "y", "task_keys") if name not in data]
        if features != "mean" and "X_last" not in data:
            missing.append("X_last (the last-token states, which older benchmark runs did not store)")
        if missing:
            raise ValueError(f"{path} lacks {', '.join(missing)} (needs X, y, task_keys[, mean_logprobs, X_last])")
        X, y = _pooled(data, features), data["y"].astype(bool)
        keys = [str(k) for k in data["task_keys"]]
        logprobs = data["mean_logprobs"].astype(np.float64) if "mean_logprobs" in data else None
    _check_set(path, X, y, keys, logprobs)
    return X, y, keys, logprobs


def _pooled(data, features: str) -> np.ndarray:
    if features == "mean":
        return data["X"].astype(np.float32)
    if features == "last":
        return data["X_last"].astype(np.float32)
    return np.concatenate([data["X"], data["X_last"]], axis=1).astype(np.float32)


def _check_set(path, X: np.ndarray, y: np.ndarray, keys: list[str], logprobs: np.ndarray | None) -> None:
    if X.ndim != 2 or not len(X) == len(y) == len(keys) or (logprobs is not None and len(logprobs) != len(y)):
        raise ValueError(f"{path}: X must be (n, n_embd) and y, task_keys, mean_logprobs n long; got X {X.shape}, "
                         f"y {len(y)}, task_keys {len(keys)}")
    if not np.isfinite(X).all():
        raise ValueError(f"{path}: X holds values that are not finite")
