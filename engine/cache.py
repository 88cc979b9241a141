"""The pattern cache: verified solutions kept per user, remembered the way people remember (Ebbinghaus).

An entry holds a task's normalised signature, its embedding (the model's own, tagged with the model fingerprint), the
verified solution, a short strategy hint, a tier (short- or long-term), a strength S, the last access time and use
and success counts. Retention is R = exp(-elapsed / S). A successful reuse multiplies S (spaced repetition) and
refreshes the access time; `cache_promote_after` successful reuses promote an entry to long-term, which is never
pruned; short-term entries whose retention has fallen below `cache_prune_below` are pruned.

Retrieval blends BM25 (SQLite FTS5's bm25(), turned into a similarity in [0, 1] by dividing by the score the query
would give itself) with the embeddings' cosine similarity (rescaled from the floor that unrelated tasks already reach,
since a language model's mean hidden states share a common direction), and weights the blend by retention. An equivalent task (the
same normalised signature) can be answered from the cache outright once its tests pass again (the CACHE_HIT tier);
similar ones lend the prompt their strategy hints.

Everything lives in the per-user SQLite file (WAL); each change is one short transaction, so two servers share it.
"""

from __future__ import annotations

import ast
import math
import re
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import numpy as np

from engine.config import Settings
from engine.task import Task, normalise

SHORT, LONG = "short", "long"
COSINE_FLOOR = 0.75  # cosine of unrelated tasks' embeddings, assumed until the cache holds three to measure it
_BM25_K1, _BM25_B = 1.2, 0.75  # FTS5's bm25() constants

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS pattern_cache (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        entry_point TEXT,
        signature TEXT NOT NULL,
        n_terms INTEGER NOT NULL,
        solution TEXT NOT NULL,
        hint TEXT NOT NULL,
        model_fp TEXT,
        embedding BLOB,
        tier TEXT NOT NULL DEFAULT 'short',
        strength REAL NOT NULL,
        created REAL NOT NULL,
        last_access REAL NOT NULL,
        uses INTEGER NOT NULL DEFAULT 0,
        successes INTEGER NOT NULL DEFAULT 0)""",
    "CREATE VIRTUAL TABLE IF NOT EXISTS pattern_fts USING fts5(signature, content='pattern_cache', "
    "content_rowid='id')",
    "CREATE VIRTUAL TABLE IF NOT EXISTS pattern_vocab USING fts5vocab(pattern_fts, 'row')",
    """CREATE TRIGGER IF NOT EXISTS pattern_cache_ai AFTER INSERT ON pattern_cache BEGIN
        INSERT INTO pattern_fts (rowid, signature) VALUES (new.id, new.signature); END""",
    """CREATE TRIGGER IF NOT EXISTS pattern_cache_ad AFTER DELETE ON pattern_cache BEGIN
        INSERT INTO pattern_fts (pattern_fts, rowid, signature) VALUES ('delete', old.id, old.signature); END""",
    """CREATE TRIGGER IF NOT EXISTS pattern_cache_au AFTER UPDATE OF signature ON pattern_cache BEGIN
        INSERT INTO pattern_fts (pattern_fts, rowid, signature) VALUES ('delete', old.id, old.signature);
        INSERT INTO pattern_fts (rowid, signature) VALUES (new.id, new.signature); END""",
)

_COLUMNS = ("id", "key", "kind", "entry_point", "signature", "solution", "hint", "model_fp", "embedding", "tier",
            "strength", "created", "last_access", "uses", "successes")


def terms(text: str) -> list[str]:
    """Lower-cased runs of letters and digits: what FTS5's default tokenizer (unicode61) indexes."""
    return re.findall(r"[^\W_]+", text.lower())


def signature_of(task: Task) -> str:
    """The normalised text an entry is found by: entry point, then the whitespace-normalised prompt."""
    return normalise(f"{task.entry_point or ''} {task.prompt}")


@dataclass
class Entry:
    id: int
    key: str
    kind: str
    entry_point: str | None
    signature: str
    solution: str
    hint: str
    model_fp: str | None
    embedding: np.ndarray | None
    tier: str
    strength: float  # seconds
    created: float
    last_access: float
    uses: int
    successes: int

    def retention(self, now: float) -> float:
        return math.exp(-max(0.0, now - self.last_access) / self.strength)

    def as_dict(self, now: float, *, embedding: bool = False) -> dict:
        out = {name: getattr(self, name) for name in _COLUMNS if name != "embedding"}
        out["retention"] = round(self.retention(now), 6)
        if embedding and self.embedding is not None:
            out["embedding"] = [float(x) for x in self.embedding]
        return out


@dataclass
class Match:
    entry: Entry
    lexical: float  # BM25 relative to the query's own score, [0, 1]
    cosine: float | None  # embedding cosine above the floor unrelated tasks reach, [0, 1]; None without embeddings
    retention: float
    similarity: float  # lexical and cosine blended by `cache_lexical_weight` (lexical alone without embeddings)

    @property
    def score(self) -> float:
        """Similarity weighted by retention: what ranks matches and what the router sees."""
        return self.similarity * self.retention


class PatternCache:
    """The pattern cache over the per-user database `conn`; `clock` is injectable (tests move time forward)."""

    def __init__(self, conn: sqlite3.Connection, settings: Settings | None = None, *,
                 clock: Callable[[], float] = time.time, lock: threading.Lock | None = None) -> None:
        self.conn = conn
        self.settings = settings or Settings()
        self.clock = clock
        self.lock = lock or threading.Lock()
        with self.lock, _transaction(conn):
            for statement in _SCHEMA:
                conn.execute(statement)

    # --- reading ---

    def get(self, key: str) -> Entry | None:
        with self.lock:
            row = self.conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM pattern_cache WHERE key = ?",
                                    (key,)).fetchone()
        return _entry(row) if row else None

    def entries(self) -> list[Entry]:
        with self.lock:
            rows = self.conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM pattern_cache ORDER BY id").fetchall()
        return [_entry(r) for r in rows]

    def count(self) -> int:
        with self.lock:
            return self.conn.execute("SELECT count(*) FROM pattern_cache").fetchone()[0]

    def similar(self, text: str, embedding: np.ndarray | None = None, model_fp: str | None = None, *,
                limit: int = 5, exclude_key: str | None = None, candidates: int = 50) -> list[Match]:
        """Entries like `text`, best first by retention-weighted similarity."""
        query = sorted(set(terms(text)))
        if not query:
            return []
        now = self.clock()
        with self.lock:
            rows = self.conn.execute(
                f"SELECT {', '.join('c.' + c for c in _COLUMNS)}, -bm25(pattern_fts) FROM pattern_fts "
                "JOIN pattern_cache c ON c.id = pattern_fts.rowid WHERE pattern_fts MATCH ? "
                "ORDER BY rank LIMIT ?", (" OR ".join(f'"{t}"' for t in query), candidates)).fetchall()
            own = self._self_score(terms(text)) if rows else 1.0
            floor = self._cosine_floor(model_fp) if embedding is not None and model_fp else 0.0
        matches = []
        for row in rows:
            entry = _entry(row[:-1])
            if entry.key == exclude_key:
                continue
            lexical = min(1.0, row[-1] / own) if own > 0 else 0.0
            cosine = _cosine(embedding, entry.embedding, floor) if model_fp and model_fp == entry.model_fp else None
            weight = self.settings.cache_lexical_weight
            similarity = lexical if cosine is None else weight * lexical + (1.0 - weight) * cosine
            matches.append(Match(entry, lexical, cosine, entry.retention(now), similarity))
        matches.sort(key=lambda m: m.score, reverse=True)
        return matches[:limit]

    def _cosine_floor(self, model_fp: str) -> float:
        """The cosine that unrelated tasks already reach with this model's embeddings (mean hidden states of a
        language model share a large common direction: two unrelated stubs measured 0.78 on the default model): the
        mean pairwise cosine of the stored embeddings, or COSINE_FLOOR before there are enough. Caller holds the
        lock."""
        rows = self.conn.execute("SELECT embedding FROM pattern_cache WHERE model_fp = ? AND embedding IS NOT NULL "
                                 "ORDER BY last_access DESC LIMIT 64", (model_fp,)).fetchall()
        vectors = [np.frombuffer(r[0], dtype=np.float32) for r in rows]
        if len(vectors) < 3 or len({len(v) for v in vectors}) != 1:
            return COSINE_FLOOR
        unit = np.stack(vectors) / np.maximum(np.linalg.norm(np.stack(vectors), axis=1, keepdims=True), 1e-12)
        gram = unit @ unit.T
        n = len(vectors)
        return float(min(0.95, max(0.0, (gram.sum() - np.trace(gram)) / (n * (n - 1)))))

    def _self_score(self, query_terms: list[str]) -> float:
        """The BM25 score a document made of the query itself would get: the ceiling that makes scores comparable.
        Caller holds the lock."""
        n_rows, avg_len = self.conn.execute("SELECT count(*), avg(n_terms) FROM pattern_cache").fetchone()
        if not n_rows:
            return 0.0
        counts = Counter(query_terms)
        marks = ",".join("?" * len(counts))
        df = dict(self.conn.execute(f"SELECT term, doc FROM pattern_vocab WHERE term IN ({marks})", list(counts)))
        norm = _BM25_K1 * (1 - _BM25_B + _BM25_B * len(query_terms) / max(avg_len or 1.0, 1e-9))
        score = 0.0
        for term, tf in counts.items():
            n = df.get(term, 0)
            idf = math.log((n_rows - n + 0.5) / (n + 0.5))
            idf = idf if idf > 0 else 1e-6  # as FTS5 does
            score += idf * tf * (_BM25_K1 + 1) / (tf + norm)
        return score

    # --- writing ---

    def insert(self, task: Task, solution: str, *, embedding: np.ndarray | None = None,
               model_fp: str | None = None, hint: str | None = None) -> Entry:
        """Keep a verified solution. An entry for the same task is refreshed, and counts as a successful reuse."""
        now = self.clock()
        signature = signature_of(task)
        blob = None if embedding is None else np.asarray(embedding, dtype=np.float32).tobytes()
        hint = hint if hint is not None else strategy_hint(solution, task.entry_point)
        with self.lock, _transaction(self.conn):
            existed = self.conn.execute("SELECT 1 FROM pattern_cache WHERE key = ?", (task.key,)).fetchone()
            if existed:
                self.conn.execute(
                    "UPDATE pattern_cache SET solution = ?, hint = ?, signature = ?, n_terms = ?, "
                    "model_fp = coalesce(?, model_fp), embedding = coalesce(?, embedding) WHERE key = ?",
                    (solution, hint, signature, len(terms(signature)), model_fp, blob, task.key))
            else:
                self.conn.execute(
                    "INSERT INTO pattern_cache (key, kind, entry_point, signature, n_terms, solution, hint, "
                    "model_fp, embedding, tier, strength, created, last_access) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (task.key, task.kind, task.entry_point, signature, len(terms(signature)), solution, hint,
                     model_fp, blob, SHORT, self.settings.cache_strength_hours * 3600.0, now, now))
        if existed:
            self.reinforce(task.key, True)
        self.prune()
        return self.get(task.key)

    def reinforce(self, key: str, success: bool) -> Entry | None:
        """A reuse of an entry. Success multiplies its strength and may promote it; failure divides the strength and
        sends it back to short-term (its solution no longer passes what it is asked to pass)."""
        growth = self.settings.cache_strength_growth
        now = self.clock()
        with self.lock, _transaction(self.conn):
            if success:
                self.conn.execute(
                    "UPDATE pattern_cache SET uses = uses + 1, successes = successes + 1, strength = strength * ?, "
                    "last_access = ?, tier = CASE WHEN successes + 1 >= ? THEN 'long' ELSE tier END WHERE key = ?",
                    (growth, now, self.settings.cache_promote_after, key))
            else:
                self.conn.execute(
                    "UPDATE pattern_cache SET uses = uses + 1, strength = max(strength / ?, 1.0), tier = 'short' "
                    "WHERE key = ?", (growth, key))
        return self.get(key)

    def prune(self) -> int:
        """Forget short-term entries whose retention is below the threshold. Returns how many went."""
        threshold = self.settings.cache_prune_below
        if threshold <= 0:
            return 0
        # R < t  <=>  elapsed > -ln(t) * S (no exp() needed in SQL)
        with self.lock, _transaction(self.conn):
            cursor = self.conn.execute(
                "DELETE FROM pattern_cache WHERE tier = 'short' AND (? - last_access) > ? * strength",
                (self.clock(), -math.log(threshold)))
        return cursor.rowcount

    def clear(self) -> int:
        with self.lock, _transaction(self.conn):
            cursor = self.conn.execute("DELETE FROM pattern_cache")
        return cursor.rowcount

    # --- reporting ---

    def stats(self) -> dict:
        now = self.clock()
        entries = self.entries()
        retentions = [e.retention(now) for e in entries]
        return {
            "entries": len(entries),
            "short_term": sum(1 for e in entries if e.tier == SHORT),
            "long_term": sum(1 for e in entries if e.tier == LONG),
            "uses": sum(e.uses for e in entries),
            "successes": sum(e.successes for e in entries),
            "mean_retention": round(sum(retentions) / len(retentions), 4) if retentions else None,
            "min_retention": round(min(retentions), 4) if retentions else None,
            "prune_below": self.settings.cache_prune_below,
        }

    def export(self, *, embeddings: bool = False) -> list[dict]:
        now = self.clock()
        return [e.as_dict(now, embedding=embeddings) for e in self.entries()]


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT: take the write lock up front, so two processes queue instead of deadlocking."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


def _entry(row: tuple) -> Entry:
    values = dict(zip(_COLUMNS, row))
    blob = values["embedding"]
    values["embedding"] = None if blob is None else np.frombuffer(blob, dtype=np.float32)
    return Entry(**values)


def _cosine(a: np.ndarray | None, b: np.ndarray | None, floor: float = 0.0) -> float | None:
    """Cosine similarity rescaled so that `floor` (what unrelated tasks reach) maps to 0 and identity to 1."""
    if a is None or b is None or len(a) != len(b):
        return None
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    if denom <= 0:
        return None
    return max(0.0, (float(np.dot(a, b)) / denom - floor) / (1.0 - floor))


# --- strategy hints --------------------------------------------------------------------------------------------------

_CALL_HINTS = {
    "sorted": "sorting", "sort": "sorting", "Counter": "counting with collections.Counter",
    "defaultdict": "grouping with a defaultdict", "heappush": "a heap", "heappop": "a heap", "heapify": "a heap",
    "bisect_left": "binary search", "bisect_right": "binary search", "bisect": "binary search",
    "deque": "a deque (queue/BFS)", "lru_cache": "memoised recursion", "cache": "memoised recursion",
    "permutations": "itertools permutations", "combinations": "itertools combinations",
    "product": "itertools product", "accumulate": "prefix sums", "split": "splitting strings",
    "join": "joining strings", "zip": "pairing with zip", "enumerate": "enumerate over indices",
    "set": "a set for membership", "dict": "a dictionary", "reversed": "reversal",
}


def strategy_hint(code: str, entry_point: str | None) -> str:
    """A short description of how `code` works, from its syntax tree: what a similar task's prompt is told."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return "a direct implementation"
    found: list[str] = []

    def add(text: str) -> None:
        if text not in found:
            found.append(text)

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name == entry_point:
                add("recursion")
            elif name in _CALL_HINTS:
                add(_CALL_HINTS[name])
        elif isinstance(node, (ast.Dict, ast.DictComp)):
            add("a dictionary")
        elif isinstance(node, (ast.Set, ast.SetComp)):
            add("a set for membership")
        elif isinstance(node, (ast.ListComp, ast.GeneratorExp)):
            add("a comprehension")
        elif isinstance(node, ast.While):
            add("a while loop")
        elif isinstance(node, (ast.For, ast.AsyncFor)) and any(isinstance(n, ast.For) for n in ast.walk(node)
                                                                if n is not node):
            add("nested loops")
        elif isinstance(node, ast.Slice) and node.step is not None:
            add("slicing with a step")
        elif isinstance(node, ast.Import) or isinstance(node, ast.ImportFrom):
            module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
            if module in ("re", "math", "itertools", "functools", "heapq", "bisect", "collections", "string"):
                add(f"the {module} module")
    return ", ".join(found[:5]) if found else "a direct computation"
