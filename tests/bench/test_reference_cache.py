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


def test_the_reference_check_runs_in_the_sandbox_and_singles_out_wrong_examples():
    """Which prompt examples HumanEval's own solution satisfies, run for real: all at once when it passes them all;
    when it does not, one by one, so only the wrong example is dropped."""
    from bench.datasets.examples import Example
    from bench.datasets.humaneval import sandbox_checker

    program = "def double(x):\n    return 2 * x\n"
    right = [Example("double(2)", "4", "doctest", "double"), Example("double(-1)", "-2", "prose", "double")]
    wrong = Example("double(3)", "7", "prose", "double")  # a typo in a docstring, say
    assert sandbox_checker(program, "double", right) == [True, True]
    assert sandbox_checker(program, "double", [right[0], wrong, right[1]]) == [True, False, True]
    assert sandbox_checker("def double(x):\n    raise SystemExit(3)\n", "double", right) == [False, False]
