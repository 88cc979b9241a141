"""The per-user SQLite file: opened in WAL mode, and replaced (never silently) when it is corrupt.

It lives here because the Lens's sample store is the lowest layer that keeps state; the engine's pattern cache and
router posteriors open the same file through `open_database`.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 30_000


def _connect(path: Path) -> sqlite3.Connection:
    # check_same_thread=False: a connection is handed between the worker and background threads, each use under the
    # owner's lock; isolation_level=None so that transactions are explicit (BEGIN IMMEDIATE for writers).
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        log.warning("SQLite refused WAL mode for %s (got %s); two servers may block each other", path, mode)
    conn.execute("PRAGMA synchronous=NORMAL")
    status = conn.execute("PRAGMA quick_check").fetchone()[0]
    if status != "ok":
        conn.close()
        raise sqlite3.DatabaseError(f"integrity check failed: {status}")
    return conn


def _keep_aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while aside.exists():
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        n += 1
    path.rename(aside)
    for suffix in ("-wal", "-shm"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.rename(aside.with_name(aside.name + suffix))
    return aside


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    """A locked or busy database is healthy and must never be moved aside; only unreadable content is."""
    text = str(exc).lower()
    return not any(word in text for word in ("locked", "busy", "unable to open", "readonly", "disk i/o"))


def open_database(path: Path, report: Callable[[str], None] | None = None) -> sqlite3.Connection:
    """Open (or create) the database at `path`.

    A file that is not a database or fails SQLite's quick check is renamed to `<name>.corrupt-<time>` (so nothing is
    lost), a fresh database is started in its place, and `report` (default: the log) receives a message that says so.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return _connect(path)
    except sqlite3.DatabaseError as exc:
        if not _is_corruption(exc):
            raise
        aside = _keep_aside(path)
        message = (
            f"atlas-ls: the database {path} could not be read ({exc}); it was kept as {aside} "
            f"and a fresh database was started"
        )
        (report or log.error)(message)
        return _connect(path)
