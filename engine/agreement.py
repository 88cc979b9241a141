"""Choosing among candidates that all pass the same tests, by how they behave on probe inputs (engine.probes):
the inputs of tests the model wrote from the specification, and variations of the tests' own inputs.

Consensus decides (execution-based minimum Bayes risk: how many of the model's samples answer the probes as this
candidate does; wrong programs tend to be wrong in different ways, right ones agree). The model-written tests'
expected values only break a tie: the 1.5B gets the expected values of tricky cases wrong about as often as its code
(measured on the 12 HumanEval tasks of a run whose passing candidates were mixed: as votes multiplied in, CodeT's
way, they gained one task and lost two; as tie-breakers after consensus, two gained, none lost). Each distinct
program counts as often as the model sampled it.

A probe on which most answering candidates raise is left out of the consensus: it is likely outside what the task
allows (an empty list where the docstring promises a non-empty one), and how a program fails there says nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class Choice:
    index: int  # into the candidates given (best rank first)
    scores: tuple[float, ...]  # each candidate's consensus; -1 for one that gave no answers
    tests_met: tuple[int, ...]  # model-written tests each candidate met
    probes_used: int  # probes in the consensus (at most half the candidates raised on them)
    support: int = 0  # samples answering every usable probe as the chosen candidate does (its own included)

    @property
    def changed(self) -> bool:
        """The choice differs from the best-ranked candidate."""
        return self.index != 0


def choose(answers: Sequence[Sequence[str] | None], counts: Sequence[int],
           expected: Sequence[str | None] = ()) -> Choice:
    """The candidate with the highest consensus; among equals, the one meeting most model-written tests, then the
    better rank. `answers[i][p]` is candidate i's answer digest on probe p ("!" first when it raised), None when it
    gave none; `counts[i]` how many samples produced candidate i; `expected[p]` the digest a model-written test
    expects on probe p, or None."""
    answered = [a for a in answers if a is not None]
    used = _usable_probes(answered)
    scores, met = [], []
    for mine in answers:
        if mine is None:
            scores.append(-1.0)
            met.append(0)
            continue
        consensus = sum(count * _agreement(mine, theirs, used) for theirs, count in zip(answers, counts)
                        if theirs is not None)
        tests = sum(1 for p, want in enumerate(expected) if want is not None and p < len(mine) and mine[p] == want)
        scores.append(consensus)
        met.append(tests)
    # Rounded: equal consensus reached by different sums of shares must tie.
    best = max(range(len(answers)), key=lambda i: (round(scores[i], 9), met[i], -i)) if answers else 0
    return Choice(best, tuple(scores), tuple(met), len(used), _support(answers, counts, best, used))


def _support(answers: Sequence[Sequence[str] | None], counts: Sequence[int], best: int, used: list[int]) -> int:
    """How many samples answer as candidate `best` does on every usable probe."""
    mine = answers[best] if answers else None
    if mine is None:
        return counts[best] if answers else 0
    return sum(count for theirs, count in zip(answers, counts)
               if theirs is not None and _agreement(mine, theirs, used) == 1.0)


def _usable_probes(answered: list[Sequence[str]]) -> list[int]:
    if not answered:
        return []
    width = min(len(a) for a in answered)
    return [p for p in range(width) if 2 * sum(a[p].startswith("!") for a in answered) <= len(answered)]


def _agreement(mine: Sequence[str], theirs: Sequence[str], used: list[int]) -> float:
    """The share of usable probes two candidates answer alike (1 when there are none: they are indistinguishable)."""
    if not used:
        return 1.0
    return sum(1 for p in used if mine[p] == theirs[p]) / len(used)
