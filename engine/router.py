"""The router: how hard a task is, and how much test-time compute it deserves.

Difficulty D in [0, 1] blends four signals (weights are the setting `router_weights`, 0.30/0.25/0.20/0.25):
the pattern cache's best match (a similar solved task makes a task easier), how well the workspace context covers
the names the task mentions, the task's own complexity (length, constraints, nesting), and the Lens's calibrated
difficulty. A signal that is missing drops out and the weights of the others renormalise.

The tier (FAST k=1, STANDARD k=5, HARD k=20; CACHE_HIT is decided by the pipeline before routing) is chosen by
Thompson sampling over Beta posteriors of P(success), one per (difficulty bin, tier), kept in the per-user database.
For each tier a success rate theta is drawn from its posterior, and the tier with the largest expected utility wins:

    U(tier) = theta(tier) - lambda * k(tier) / k(HARD)

i.e. a success is worth 1 and the HARD tier's whole compute costs lambda (`router_cost_weight`, default 0.4): going
from STANDARD to HARD must buy at least lambda * 15/20 = 0.3 success probability. Success minus priced cost keeps the
hard tier reachable; the seed's success / cost divided by 20 for k=20 and so almost never chose it.

The prior of each (bin, tier) is a best-of-k model: one candidate passes with q(D) = 1 / (1 + exp(8 (D - 0.5))), so
k candidates succeed with 1 - (1 - q)^k, worth `router_prior_strength` outcomes. At the default settings it picks
FAST below D = 0.2, STANDARD up to 0.6 and HARD above, until outcomes move the posteriors.
"""

from __future__ import annotations

import ast
import builtins
import keyword
import math
import random
import re
import sqlite3
import threading
import time
from dataclasses import dataclass, field

from engine.config import Settings
from engine.task import Task

TIER_ORDER = ("FAST", "STANDARD", "HARD")
SIGNAL_NAMES = ("cache_similarity", "retrieval_confidence", "complexity", "lens_difficulty")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS router_posteriors (
    bin INTEGER NOT NULL,
    tier TEXT NOT NULL,
    successes REAL NOT NULL DEFAULT 0,
    failures REAL NOT NULL DEFAULT 0,
    updated REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (bin, tier)
)
"""


@dataclass(frozen=True)
class Signals:
    """The router's inputs, each in [0, 1], None when unknown."""

    cache_similarity: float | None = None  # best pattern-cache match, retention-weighted
    retrieval_confidence: float | None = None  # share of the task's names that the context defines
    complexity: float | None = None  # see task_complexity
    lens_difficulty: float | None = None  # the Lens's calibrated difficulty

    def difficulties(self) -> tuple[float | None, ...]:
        """Each signal turned into a difficulty (high = harder), in SIGNAL_NAMES order."""
        flip = lambda v: None if v is None else 1.0 - v  # noqa: E731 - similarity and coverage make tasks easier
        return (flip(self.cache_similarity), flip(self.retrieval_confidence), self.complexity, self.lens_difficulty)

    def as_dict(self) -> dict[str, float | None]:
        return {name: getattr(self, name) for name in SIGNAL_NAMES}


def difficulty(signals: Signals, weights: tuple[float, ...]) -> float:
    """Weighted mean over the signals present; 0.5 (no opinion) when none is."""
    pairs = [(w, _clip(d)) for w, d in zip(weights, signals.difficulties()) if d is not None and w > 0]
    total = sum(w for w, _ in pairs)
    if total <= 0:
        return 0.5
    return sum(w * d for w, d in pairs) / total


def _clip(x: float, lo: float = 0.0, hi: float = 1.0) -> float:
    return min(hi, max(lo, float(x)))


# --- task complexity -------------------------------------------------------------------------------------------------

_CONSTRAINT = re.compile(
    r"(<=|>=|≤|≥|\b10\^\d|\b1e\d|\bat (?:most|least)\b|\bmust\b|\bshould\b|\bconstraints?\b|\bguaranteed\b"
    r"|\bunless\b|\bexcept\b|\botherwise\b|\bif\b|\bonly\b|\bexactly\b)", re.IGNORECASE)


def task_complexity(task: Task) -> float:
    """Length, constraints and nesting of the spec, squashed into [0, 1).

    Scales are set so that a one-line HumanEval-style docstring lands near 0.2 and a long competitive-programming
    statement with many constraints above 0.8.
    """
    text = task.prompt
    words = len(re.findall(r"\w+", text))
    constraints = len(_CONSTRAINT.findall(text))
    x = words / 300 + constraints / 10 + max(0, _nesting(text) - 2) / 3 + max(0, _parameters(task) - 1) / 8
    return 1.0 - math.exp(-x)


def _nesting(text: str) -> int:
    """Deepest bracket nesting or number of bullet levels; doctest lines left out, since an example call's brackets
    say nothing about the spec. A signature with a generic type (`f(xs: list[int])`) is 2, the baseline."""
    spec = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith(">>>"))
    depth = deepest = 0
    for ch in spec:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth = max(0, depth - 1)
    bullet_levels = {len(m.group(1)) for m in re.finditer(r"^(\s*)[-*•]\s", spec, re.MULTILINE)}
    return max(deepest, len(bullet_levels))


def _parameters(task: Task) -> int:
    if task.kind != "function":
        return 1
    match = re.search(rf"def\s+{re.escape(task.entry_point or '')}\s*\((.*?)\)\s*(->|:)", task.prompt, re.DOTALL)
    if not match or not match.group(1).strip():
        return 0
    names = [p for p in re.split(r",(?![^\[]*\])", match.group(1)) if p.strip() not in ("self", "cls", "*", "/")]
    return len(names)


# --- retrieval confidence --------------------------------------------------------------------------------------------

_KNOWN = set(keyword.kwlist) | set(dir(builtins))
_KNOWN |= {"self", "cls", "List", "Dict", "Tuple", "Set", "Optional", "Union", "Any", "Callable", "Iterable",
           "Iterator", "Sequence", "Mapping", "typing", "None", "True", "False"}


def task_names(task: Task) -> set[str]:
    """Names the task refers to that Python itself does not define: annotation types, backticked or code-like words
    (snake_case, CamelCase) of the docstring, other than the function and its own parameters."""
    text = task.prompt
    names = set(re.findall(r"`([A-Za-z_]\w*)", text))
    names |= {w for w in re.findall(r"\b[A-Za-z_]\w*\b", text) if "_" in w.strip("_") or re.match(r"[A-Z][a-z]+[A-Z]", w)}
    names |= _annotation_names(task)
    return {n for n in names if n not in _KNOWN and n != task.entry_point} - _parameter_names(task)


def _annotation_names(task: Task) -> set[str]:
    try:
        tree = ast.parse(task.prompt + ("\n    ..." if task.prompt.rstrip().endswith(":") else ""))
    except SyntaxError:
        return set()
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            annotations = [a.annotation for a in node.args.args + node.args.kwonlyargs] + [node.returns]
            for ann in filter(None, annotations):
                found |= {n.id for n in ast.walk(ann) if isinstance(n, ast.Name)}
    return found


def _parameter_names(task: Task) -> set[str]:
    match = re.search(r"def\s+\w+\s*\((.*?)\)\s*(->|:)", task.prompt, re.DOTALL)
    if not match:
        return set()
    return set(re.findall(r"(?:^|,)\s*\**([A-Za-z_]\w*)", match.group(1)))


def retrieval_confidence(task: Task) -> float | None:
    """Share of the task's own names that its context snippets mention; None when the task names nothing beyond
    Python itself (coverage of nothing says nothing about difficulty)."""
    names = task_names(task)
    if not names:
        return None
    if not task.context:
        return 0.0
    context = "\n".join(task.context)
    covered = sum(1 for n in names if re.search(rf"\b{re.escape(n)}\b", context))
    return covered / len(names)


# --- tiers and posteriors --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TierPlan:
    tier: str
    k: int
    temperature: float
    max_tokens: int

    @property
    def token_budget(self) -> int:
        return self.k * self.max_tokens


def tier_plan(settings: Settings, tier: str) -> TierPlan:
    i = TIER_ORDER.index(tier)
    return TierPlan(tier, int(settings.tier_k[i]), float(settings.tier_temperature[i]),
                    int(settings.tier_max_tokens[i]))


def plan_for_k(settings: Settings, k: int) -> TierPlan:
    """A caller-fixed k (`--k`): the smallest tier whose k covers it gives the temperature and token budget."""
    for tier in TIER_ORDER:
        plan = tier_plan(settings, tier)
        if k <= plan.k or tier == "HARD":
            return TierPlan(tier, k, plan.temperature, plan.max_tokens)
    raise AssertionError("unreachable")


def candidate_pass_prior(d: float) -> float:
    """Prior P(one candidate passes) at difficulty d."""
    return 1.0 / (1.0 + math.exp(8.0 * (d - 0.5)))


@dataclass
class Route:
    """The router's decision, with what it was based on (for results, logs and the tests)."""

    plan: TierPlan
    difficulty: float
    bin: int
    signals: Signals
    utilities: dict[str, float] = field(default_factory=dict)
    draws: dict[str, float] = field(default_factory=dict)

    @property
    def tier(self) -> str:
        return self.plan.tier

    @property
    def k(self) -> int:
        return self.plan.k

    def as_dict(self) -> dict:
        return {"tier": self.tier, "k": self.k, "difficulty": round(self.difficulty, 4), "bin": self.bin,
                "signals": self.signals.as_dict(), "utilities": {t: round(u, 4) for t, u in self.utilities.items()},
                "draws": {t: round(p, 4) for t, p in self.draws.items()}}


class Router:
    """Difficulty, tier choice by Thompson sampling, escalation, and the persisted posteriors behind them.

    `conn` is the per-user database (lens.db.open_database); its use is serialised by `lock`.
    """

    def __init__(self, conn: sqlite3.Connection, settings: Settings, *, rng: random.Random | None = None,
                 clock=time.time, lock: threading.Lock | None = None) -> None:
        self.conn = conn
        self.settings = settings
        self.rng = rng or random.Random()
        self.clock = clock
        self.lock = lock or threading.Lock()
        with self.lock:
            conn.execute(_SCHEMA)

    def bin_of(self, d: float) -> int:
        bins = self.settings.router_bins
        return min(bins - 1, int(_clip(d) * bins))

    def prior(self, bin_index: int, tier: str) -> tuple[float, float]:
        center = (bin_index + 0.5) / self.settings.router_bins
        q = candidate_pass_prior(center)
        mean = _clip(1.0 - (1.0 - q) ** tier_plan(self.settings, tier).k, 0.02, 0.98)
        strength = self.settings.router_prior_strength
        return strength * mean, strength * (1.0 - mean)

    def posterior(self, bin_index: int, tier: str) -> tuple[float, float]:
        """Beta(alpha, beta): the prior plus the recorded outcomes."""
        alpha, beta = self.prior(bin_index, tier)
        with self.lock:
            row = self.conn.execute("SELECT successes, failures FROM router_posteriors WHERE bin=? AND tier=?",
                                    (bin_index, tier)).fetchone()
        if row:
            alpha, beta = alpha + row[0], beta + row[1]
        return alpha, beta

    def route(self, signals: Signals) -> Route:
        d = difficulty(signals, self.settings.router_weights)
        b = self.bin_of(d)
        k_hard = tier_plan(self.settings, "HARD").k
        draws, utilities = {}, {}
        for tier in TIER_ORDER:
            theta = self.rng.betavariate(*self.posterior(b, tier))
            draws[tier] = theta
            utilities[tier] = theta - self.settings.router_cost_weight * tier_plan(self.settings, tier).k / k_hard
        best = max(TIER_ORDER, key=lambda t: (utilities[t], -TIER_ORDER.index(t)))
        return Route(tier_plan(self.settings, best), d, b, signals, utilities, draws)

    def next_plan(self, current: TierPlan, escalations: int, tokens_used: int) -> TierPlan | None:
        """The tier to try after `current` failed, or None when the escalation budget does not allow one."""
        if escalations >= self.settings.max_escalations:
            return None
        later = [t for t in TIER_ORDER if TIER_ORDER.index(t) > TIER_ORDER.index(current.tier)]
        for tier in later:
            plan = tier_plan(self.settings, tier)
            if plan.k <= current.k:
                continue  # a caller's k may already exceed this tier's
            if tokens_used + plan.token_budget <= self.settings.escalation_token_budget:
                return plan
            return None
        return None

    def record(self, bin_index: int, tier: str, success: bool) -> None:
        """One outcome of a tier at a difficulty bin; one atomic statement, so two servers can record at once."""
        if tier not in TIER_ORDER:
            return
        with self.lock:
            self.conn.execute(
                "INSERT INTO router_posteriors (bin, tier, successes, failures, updated) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (bin, tier) DO UPDATE SET successes = successes + excluded.successes, "
                "failures = failures + excluded.failures, updated = excluded.updated",
                (bin_index, tier, 1.0 if success else 0.0, 0.0 if success else 1.0, self.clock()))

    def table(self) -> list[dict]:
        """Every (bin, tier) posterior, for `atlas-ls cache stats` and the benchmark report."""
        rows = []
        for b in range(self.settings.router_bins):
            for tier in TIER_ORDER:
                alpha, beta = self.posterior(b, tier)
                prior = sum(self.prior(b, tier))
                rows.append({"bin": b, "tier": tier, "alpha": round(alpha, 3), "beta": round(beta, 3),
                             "mean": round(alpha / (alpha + beta), 4), "outcomes": round(alpha + beta - prior)})
        return rows
