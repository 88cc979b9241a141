"""The pattern cache: retrieval, Ebbinghaus decay, spaced-repetition promotion, pruning, sharing between processes."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from engine.cache import LONG, SHORT, PatternCache, signature_of, strategy_hint
from engine.config import Settings
from engine.task import Task
from lens.db import open_database
from tests.conftest import REPO_ROOT

HOUR = 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, hours: float) -> None:
        self.now += hours * HOUR


def task(name: str, doc: str) -> Task:
    return Task(prompt=f'def {name}(values):\n    """{doc}"""\n', entry_point=name)


SUM = task("total", "Return the sum of all the numbers in values.")
MAX = task("largest", "Return the largest of the numbers in values.")
PAL = task("is_palindrome", "Whether the string reads the same backwards, ignoring case and spaces.")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(tmp_path: Path, clock: Clock) -> PatternCache:
    return PatternCache(open_database(tmp_path / "db.sqlite3"), Settings(), clock=clock)


def test_entry_keeps_what_the_issue_lists(cache: PatternCache):
    embedding = np.arange(8, dtype=np.float32)
    entry = cache.insert(SUM, "def total(values):\n    return sum(values)\n", embedding=embedding, model_fp="m1")
    assert entry.key == SUM.key and entry.signature == signature_of(SUM)
    assert entry.solution.startswith("def total") and entry.hint
    assert np.array_equal(entry.embedding, embedding) and entry.model_fp == "m1"
    assert (entry.tier, entry.uses, entry.successes) == (SHORT, 0, 0)
    assert entry.strength == pytest.approx(72 * HOUR)
    assert cache.get(MAX.key) is None


def test_retrieval_ranks_the_similar_task_first(cache: PatternCache):
    for t, code in ((SUM, "def total(values):\n    return sum(values)\n"),
                    (MAX, "def largest(values):\n    return max(values)\n"),
                    (PAL, "def is_palindrome(s):\n    s = s.lower()\n    return s == s[::-1]\n")):
        cache.insert(t, code)
    query = task("smallest", "Return the smallest of the numbers in values.")
    matches = cache.similar(signature_of(query))
    assert matches[0].entry.key == MAX.key
    assert 0.0 < matches[0].lexical < 1.0
    assert cache.similar(signature_of(MAX))[0].lexical == pytest.approx(1.0)  # the same text scores itself
    assert cache.similar(signature_of(MAX), exclude_key=MAX.key)[0].entry.key != MAX.key
    assert cache.similar("zebra quagga") == []


def test_embedding_cosine_blends_in_only_for_the_same_model(cache: PatternCache):
    cache.insert(SUM, "def total(values):\n    return sum(values)\n", embedding=np.array([1, 0, 0, 0.0]),
                 model_fp="m1")
    query = task("add_up", "Add up every number.")
    same = cache.similar(signature_of(query), np.array([1, 0, 0, 0.0]), "m1")
    other = cache.similar(signature_of(query), np.array([1, 0, 0, 0.0]), "m2")
    assert same and same[0].cosine == pytest.approx(1.0)
    assert same[0].similarity == pytest.approx(0.5 * same[0].lexical + 0.5)
    assert other and other[0].cosine is None and other[0].similarity == pytest.approx(other[0].lexical)


def test_cosine_is_measured_above_the_common_direction_of_the_embeddings(cache: PatternCache):
    """Mean hidden states share one large direction, so raw cosines of unrelated tasks are high; similarity counts
    only what rises above the mean pairwise cosine of the stored embeddings."""
    rng = np.random.default_rng(0)
    common = rng.normal(size=64) * 3
    vectors = {t.key: common + rng.normal(size=64) for t in (SUM, MAX, PAL)}
    for t in (SUM, MAX, PAL):
        cache.insert(t, f"def {t.entry_point}(values):\n    return 0\n", embedding=vectors[t.key], model_fp="m")
    unrelated = common + rng.normal(size=64)
    near_max = vectors[MAX.key] + 0.1 * rng.normal(size=64)
    raw = float(unrelated @ vectors[SUM.key] / np.linalg.norm(unrelated) / np.linalg.norm(vectors[SUM.key]))
    assert raw > 0.8  # what a plain cosine would call similar
    text = signature_of(MAX)
    by_key = {m.entry.key: m for m in cache.similar(text, unrelated, "m")}
    assert by_key[SUM.key].cosine < 0.2
    assert {m.entry.key: m for m in cache.similar(text, near_max, "m")}[MAX.key].cosine > 0.9


def test_retention_decays_exponentially_and_weights_the_score(cache: PatternCache, clock: Clock):
    cache.insert(SUM, "def total(values):\n    return sum(values)\n")
    fresh = cache.similar(signature_of(SUM))[0]
    clock.advance(72)  # one strength
    later = cache.similar(signature_of(SUM))[0]
    assert later.retention == pytest.approx(math.exp(-1))
    assert later.score == pytest.approx(fresh.score * math.exp(-1))


def test_successful_reuse_strengthens_and_three_promote(cache: PatternCache, clock: Clock):
    cache.insert(SUM, "def total(values):\n    return sum(values)\n")
    strengths = []
    for _ in range(3):
        clock.advance(24)
        entry = cache.reinforce(SUM.key, True)
        strengths.append(entry.strength)
        assert entry.retention(clock()) == 1.0  # access refreshed
    assert strengths == pytest.approx([72 * HOUR * 2.5 ** n for n in (1, 2, 3)])
    assert entry.tier == LONG and entry.successes == 3 and entry.uses == 3
    failed = cache.reinforce(SUM.key, False)
    assert failed.tier == SHORT and failed.strength == pytest.approx(strengths[-1] / 2.5) and failed.uses == 4


def test_pruning_forgets_faded_short_term_entries_only(cache: PatternCache, clock: Clock):
    cache.insert(SUM, "def total(values):\n    return sum(values)\n")
    cache.insert(MAX, "def largest(values):\n    return max(values)\n")
    for _ in range(3):
        cache.reinforce(MAX.key, True)  # long-term now
    # R = exp(-t / 72 h) < 0.05 once t > 72 h x ln 20 = 215.7 h
    clock.advance(200)
    assert cache.prune() == 0
    clock.advance(20)
    assert cache.prune() == 1
    assert cache.get(SUM.key) is None and cache.get(MAX.key).tier == LONG
    assert [m.entry.key for m in cache.similar(signature_of(SUM))] == [MAX.key]  # the FTS index forgot it too


def test_inserting_the_same_task_again_counts_as_a_successful_reuse(cache: PatternCache):
    cache.insert(SUM, "def total(values):\n    return sum(values)\n")
    again = cache.insert(SUM, "def total(values):\n    return sum(v for v in values)\n")
    assert cache.count() == 1 and again.successes == 1 and "sum(v for v" in again.solution


def test_stats_clear_export(cache: PatternCache):
    cache.insert(SUM, "def total(values):\n    return sum(values)\n", embedding=np.ones(3), model_fp="m")
    stats = cache.stats()
    assert stats["entries"] == 1 and stats["short_term"] == 1 and stats["mean_retention"] == 1.0
    exported = cache.export()
    assert exported[0]["key"] == SUM.key and "embedding" not in exported[0]
    assert cache.export(embeddings=True)[0]["embedding"] == [1.0, 1.0, 1.0]
    assert cache.clear() == 1 and cache.count() == 0 and cache.similar(signature_of(SUM)) == []


def test_strategy_hint_names_the_techniques():
    code = "from collections import Counter\ndef f(xs):\n    return sorted(Counter(xs).items())\n"
    hint = strategy_hint(code, "f")
    assert "sorting" in hint and "Counter" in hint
    assert "recursion" in strategy_hint("def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n", "fib")
    assert strategy_hint("def broken(:", "broken") == "a direct implementation"


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from engine.cache import PatternCache
    from engine.config import Settings
    from engine.router import Router
    from engine.task import Task
    from lens.db import open_database

    path, name = Path(sys.argv[1]), sys.argv[2]
    conn = open_database(path)
    cache, router = PatternCache(conn, Settings()), Router(conn, Settings())
    for i in range(150):
        cache.insert(Task(prompt=f"def {name}_{i}(x):\\n    '''Return x plus {i}.'''\\n", entry_point=f"{name}_{i}"),
                     f"def {name}_{i}(x):\\n    return x + {i}\\n")
        router.record(i % 5, "STANDARD", i % 2 == 0)
""")


def test_two_processes_write_the_database_at_once(tmp_path: Path):
    path = tmp_path / "shared.sqlite3"
    PatternCache(open_database(path))  # schema exists before the race, as it would for two servers
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), name], cwd=REPO_ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name in ("a", "b")]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    conn = open_database(path)
    assert PatternCache(conn).count() == 300
    successes, failures = conn.execute("SELECT sum(successes), sum(failures) FROM router_posteriors").fetchone()
    assert (successes, failures) == (150, 150)


def test_corrupt_database_is_kept_aside_and_the_cache_starts_fresh(tmp_path: Path):
    path = tmp_path / "atlas.sqlite3"
    path.write_bytes(b"not a database at all" * 200)
    messages: list[str] = []
    cache = PatternCache(open_database(path, report=messages.append))
    cache.insert(SUM, "def total(values):\n    return sum(values)\n")
    assert cache.count() == 1
    assert len(list(tmp_path.glob("atlas.sqlite3.corrupt-*"))) == 1
    assert messages and "kept as" in messages[0]
