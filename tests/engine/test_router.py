"""The router: difficulty from its signals, tier choice by Thompson sampling, escalation, persisted posteriors."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from pathlib import Path

import pytest

from engine.config import Settings
from engine.router import (TIER_ORDER, Router, Signals, difficulty, plan_for_k, retrieval_confidence, task_complexity,
                           tier_plan)
from engine.task import Task
from lens.db import open_database

EASY = Task(prompt='def add(a: int, b: int) -> int:\n    """Return a + b."""\n', entry_point="add")
HARD = Task(
    prompt="You are given an array of n integers a_1..a_n and q queries. Each query (l, r, x) asks for the number of "
    "indices i with l <= i <= r such that a_i is divisible by x, unless x = 1, in which case print -1.\n"
    "Constraints:\n- 1 <= n, q <= 2*10^5\n  - 1 <= a_i <= 10^9\n    - queries must be answered online\n"
    "The answer must be printed modulo 998244353 and must fit the time limit of 2 seconds. " * 3,
    kind="program")


@pytest.fixture
def router(tmp_path: Path) -> Router:
    return Router(open_database(tmp_path / "db.sqlite3"), Settings(), rng=random.Random(7))


def test_difficulty_is_the_weighted_mean_of_present_signals():
    weights = (0.30, 0.25, 0.20, 0.25)
    everything = Signals(cache_similarity=1.0, retrieval_confidence=1.0, complexity=1.0, lens_difficulty=1.0)
    assert difficulty(everything, weights) == pytest.approx((0.20 + 0.25) / 1.0)
    # Two signals missing: their weights drop out and the other two renormalise.
    partial = Signals(complexity=0.8, lens_difficulty=0.2)
    assert difficulty(partial, weights) == pytest.approx((0.20 * 0.8 + 0.25 * 0.2) / 0.45)
    assert difficulty(Signals(), weights) == 0.5


def test_complexity_orders_a_one_liner_below_a_long_constrained_statement():
    easy, hard = task_complexity(EASY), task_complexity(HARD)
    assert 0.0 <= easy < 0.3 < 0.8 < hard < 1.0


def test_retrieval_confidence_is_the_share_of_task_names_the_context_mentions():
    task = Task(prompt='def area(shape: Polygon) -> float:\n    """Use `shoelace_sum` on shape.points."""\n',
                entry_point="area", context=("def shoelace_sum(points): ...",))
    assert retrieval_confidence(task) == pytest.approx(0.5)  # shoelace_sum yes, Polygon no
    assert retrieval_confidence(EASY) is None  # nothing to look up, no context: the signal drops out
    assert retrieval_confidence(dataclasses.replace(task, context=())) == 0.0


def _tiers(router: Router, d: float, n: int = 300) -> Counter:
    return Counter(router.route(Signals(complexity=d)).tier for _ in range(n))


def test_prior_sends_easy_tasks_to_fast_and_hard_ones_to_hard(router: Router):
    easy, middle, hard = _tiers(router, 0.05), _tiers(router, 0.5), _tiers(router, 0.95)
    assert easy.most_common(1)[0][0] == "FAST"
    assert middle.most_common(1)[0][0] == "STANDARD"
    assert hard.most_common(1)[0][0] == "HARD"
    # Thompson sampling keeps exploring: the other tiers are still tried sometimes.
    assert sum(easy.values()) - easy["FAST"] > 0


def test_route_reports_the_plan_and_its_basis(router: Router):
    route = router.route(Signals(complexity=0.9, lens_difficulty=0.9))
    assert route.difficulty == pytest.approx(0.9)
    assert route.bin == 4
    assert route.plan == tier_plan(router.settings, route.tier)
    assert set(route.utilities) == set(TIER_ORDER)
    u = route.utilities
    assert route.tier == max(u, key=u.get)


def test_outcomes_move_the_choice(router: Router):
    before = _tiers(router, 0.05)
    for _ in range(30):
        router.record(0, "FAST", False)
        router.record(0, "STANDARD", True)
    after = _tiers(router, 0.05)
    assert after["FAST"] < before["FAST"] and after["STANDARD"] > before["STANDARD"]
    assert after.most_common(1)[0][0] == "STANDARD"


def test_posteriors_persist_across_restarts(tmp_path: Path):
    path = tmp_path / "db.sqlite3"
    first = Router(open_database(path), Settings())
    for success in (True, True, False):
        first.record(2, "HARD", success)
    prior = first.prior(2, "HARD")
    first.conn.close()
    again = Router(open_database(path), Settings())
    alpha, beta = again.posterior(2, "HARD")
    assert (alpha - prior[0], beta - prior[1]) == pytest.approx((2.0, 1.0))
    assert again.posterior(2, "FAST") == again.prior(2, "FAST")


def test_escalation_goes_up_one_tier_while_the_budget_allows(router: Router):
    fast = tier_plan(router.settings, "FAST")
    standard = router.next_plan(fast, escalations=0, tokens_used=100)
    assert standard.tier == "STANDARD"
    assert router.next_plan(standard, escalations=1, tokens_used=1000).tier == "HARD"
    assert router.next_plan(tier_plan(router.settings, "HARD"), escalations=0, tokens_used=0) is None
    assert router.next_plan(fast, escalations=2, tokens_used=0) is None  # max_escalations = 2
    limited = Router(router.conn, Settings(escalation_token_budget=3000))
    assert limited.next_plan(fast, escalations=0, tokens_used=400) is not None  # 400 + 5 x 512 fits
    assert limited.next_plan(fast, escalations=0, tokens_used=600) is None


def test_a_fixed_k_takes_the_smallest_tier_that_covers_it():
    settings = Settings()
    assert plan_for_k(settings, 1).tier == "FAST"
    assert plan_for_k(settings, 3) == dataclasses.replace(tier_plan(settings, "STANDARD"), k=3)
    assert plan_for_k(settings, 40).tier == "HARD" and plan_for_k(settings, 40).k == 40
