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


def _damage_pages(path: Path) -> bytes:
    """A real database whose header is intact but whose later pages are overwritten, as a bad disk would leave it."""
    conn = open_database(path)
    conn.execute("CREATE TABLE t (x TEXT)")
    conn.execute("CREATE INDEX t_x ON t (x)")
    conn.executemany("INSERT INTO t VALUES (?)", [(f"row {i} " * 20,) for i in range(2000)])
    conn.close()
    data = bytearray(path.read_bytes())
    page = 4096
    data[3 * page:len(data) - page] = b"\xa5" * (len(data) - 4 * page)
    path.write_bytes(bytes(data))
    return bytes(data)


def test_a_database_with_damaged_pages_fails_the_quick_check_and_is_kept_aside(tmp_path: Path):
    path = tmp_path / "atlas.sqlite3"
    damaged = _damage_pages(path)
    messages: list[str] = []
    conn = open_database(path, report=messages.append)
    assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    kept = list(tmp_path.glob("atlas.sqlite3.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == damaged
    assert len(messages) == 1 and str(kept[0]) in messages[0]


def test_the_write_ahead_log_of_an_unreadable_database_goes_aside_with_it(tmp_path: Path):
    path = tmp_path / "atlas.sqlite3"
    path.write_bytes(b"not a database " * 100)
    (tmp_path / "atlas.sqlite3-wal").write_bytes(b"its log")
    open_database(path, report=lambda m: None).close()
    kept = {p.name: p.read_bytes() for p in tmp_path.glob("atlas.sqlite3.corrupt-*")}
    main = next(name for name in kept if not name.endswith(("-wal", "-shm")))
    assert kept[main] == b"not a database " * 100 and kept[main + "-wal"] == b"its log"
    assert set(kept) <= {main, main + "-wal", main + "-shm"}  # SQLite's shared-memory index, if made, goes too


def test_each_corrupt_file_is_kept_even_within_the_same_second(tmp_path: Path):
    path = tmp_path / "atlas.sqlite3"
    for text in (b"first garbage " * 100, b"second garbage " * 100):
        path.unlink(missing_ok=True)
        for companion in tmp_path.glob("atlas.sqlite3-*"):
            companion.unlink()
        path.write_bytes(text)
        open_database(path, report=lambda m: None).close()
    kept = sorted(p.read_bytes() for p in tmp_path.glob("atlas.sqlite3.corrupt-*"))
    assert kept == sorted([b"first garbage " * 100, b"second garbage " * 100])
