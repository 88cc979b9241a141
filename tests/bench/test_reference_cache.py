"""`bench.datasets.reference.ReferenceCache`: values computed from a dataset's reference code are kept per data file
under the cache directory; a second run reads them, a damaged entry is recomputed, a changed file starts afresh."""

import pytest

from bench.datasets.reference import ReferenceCache


@pytest.fixture
def source(tmp_path, monkeypatch):
    monkeypatch.setenv("ATLAS_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "data.jsonl"
    path.write_text('{"task": 1}\n')
    return path


def counting(value):
    calls = []

    def compute():
        calls.append(1)
        return value

    return compute, calls


def test_a_value_is_computed_once_and_read_back_by_a_later_run(source):
    compute, calls = counting({"out": [1, 2]})
    assert ReferenceCache("demo", source, 1).get("program A", compute) == {"out": [1, 2]}
    again = ReferenceCache("demo", source, 1)  # as a second run would open it
    assert again.get("program A", compute) == {"out": [1, 2]}
    assert len(calls) == 1
    assert again.folder.parent == source.parent / "cache" / "bench"


def test_keys_do_not_collide(source):
    cache = ReferenceCache("demo", source, 1)
    assert cache.get("program A", lambda: "a") == "a"
    assert cache.get("program B", lambda: "b") == "b"
    assert cache.get("program A", lambda: "wrong") == "a"


def test_a_damaged_entry_is_recomputed_and_rewritten(source):
    cache = ReferenceCache("demo", source, 1)
    cache.get("program A", lambda: [1])
    [entry] = list(cache.folder.glob("*.pickle"))
    entry.write_bytes(b"\x80\x04truncated")
    compute, calls = counting([1])
    assert cache.get("program A", compute) == [1] and len(calls) == 1
    assert ReferenceCache("demo", source, 1).get("program A", lambda: "wrong") == [1]
    assert not list(cache.folder.glob("*.tmp*"))  # written atomically: no temporary file left behind


def test_a_changed_data_file_or_version_gets_a_fresh_cache(source):
    first = ReferenceCache("demo", source, 1)
    first.get("program A", lambda: "old")
    assert ReferenceCache("demo", source, 2).get("program A", lambda: "new version") == "new version"
    source.write_text('{"task": 2}\n')
    changed = ReferenceCache("demo", source, 1)
    assert changed.folder != first.folder
    assert changed.get("program A", lambda: "new data") == "new data"
