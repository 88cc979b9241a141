import sqlite3
import subprocess
import sys
from pathlib import Path

from lens.db import open_database


def test_fresh_database_is_wal(tmp_path: Path):
    conn = open_database(tmp_path / "a.sqlite3")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_corrupt_file_kept_aside_and_replaced(tmp_path: Path):
    path = tmp_path / "atlas.sqlite3"
    garbage = b"this is not a database" * 100
    path.write_bytes(garbage)
    messages: list[str] = []
    conn = open_database(path, report=messages.append)
    conn.execute("CREATE TABLE t (x)")
    kept = list(tmp_path.glob("atlas.sqlite3.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == garbage
    assert len(messages) == 1 and str(kept[0]) in messages[0] and "fresh" in messages[0]


def test_healthy_database_survives_reopen(tmp_path: Path):
    path = tmp_path / "atlas.sqlite3"
    conn = open_database(path)
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.close()
    again = open_database(path, report=lambda m: (_ for _ in ()).throw(AssertionError(m)))
    assert again.execute("SELECT x FROM t").fetchall() == [(1,)]


def test_locked_database_is_not_treated_as_corrupt(tmp_path: Path):
    path = tmp_path / "atlas.sqlite3"
    first = open_database(path)
    first.execute("CREATE TABLE t (x)")
    first.close()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3,sys,time; c=sqlite3.connect(sys.argv[1], isolation_level=None);"
        "c.execute('PRAGMA locking_mode=EXCLUSIVE'); c.execute('BEGIN EXCLUSIVE'); c.execute('INSERT INTO t VALUES (1)');"
        "print('locked', flush=True); time.sleep(30)"), str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        import lens.db as db
        old = db.BUSY_TIMEOUT_MS
        db.BUSY_TIMEOUT_MS = 200
        try:
            open_database(path)
        except sqlite3.OperationalError as exc:
            assert "locked" in str(exc)
        finally:
            db.BUSY_TIMEOUT_MS = old
    finally:
        holder.kill()
        holder.wait()
    assert not list(tmp_path.glob("*.corrupt-*"))
