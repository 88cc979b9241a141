"""GPQA Diamond CSV (original columns `Question`, `Correct Answer`, `Incorrect Answer 1..3`, `Record ID`): four-way
multiple choice. Options are shuffled with a fixed seed per record (the correct answer is not always A), the answer
letter is read from free-form model output, and k samples are combined by vote."""

from __future__ import annotations

import csv
import random
import re
from collections import Counter
from pathlib import Path
from typing import Sequence

from bench.datasets.base import HIDDEN, BenchItem, Dataset, DatasetError, Grading
from engine.task import Task

LETTERS = "ABCD"
COLUMNS = ("Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")
SHUFFLE_SEED = 0

# The question and its options only: how to answer (reason, then "Answer: X") is the engine's prompt's business, the
# same for every multiple-choice task.
TEMPLATE = "{question}\n\n{options}"


def shuffled_options(correct: str, incorrect: Sequence[str], record_id: str, seed: int = SHUFFLE_SEED):
    """The four options in a fixed pseudo-random order for this record, and the letter of the correct one."""
    options = [correct, *incorrect]
    order = list(range(4))
    random.Random(f"{seed}:{record_id}").shuffle(order)
    shuffled = [options[i] for i in order]
    return shuffled, LETTERS[order.index(0)]


def load(path: str | Path, *, seed: int = SHUFFLE_SEED) -> Dataset:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"GPQA file not found: {path} (pass gpqa:PATH to the GPQA Diamond CSV)")
    dataset = Dataset(name=f"gpqa:{path}", items=[])
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DatasetError(f"{path} is not a GPQA CSV: missing columns {', '.join(missing)}")
        start = reader.line_num + 1
        for number, row in enumerate(reader, start=1):
            where = f"{path} record {number} (line {start})"
            start = reader.line_num + 1
            empty = [c for c in COLUMNS if not (row.get(c) or "").strip()]
            if empty:
                dataset.skipped.append(f"{where}: empty {', '.join(empty)}")
                continue
            dataset.items.append(_item(row, number, seed))
    dataset.notes.append(f"options shuffled with seed {seed}; answers graded by letter")
    dataset.stats.update(questions=len(dataset.items), skipped=len(dataset.skipped))
    return dataset


def _item(row: dict, number: int, seed: int) -> BenchItem:
    record_id = (row.get("Record ID") or "").strip() or f"record-{number}"
    options, answer = shuffled_options(row["Correct Answer"].strip(),
                                       [row[f"Incorrect Answer {i}"].strip() for i in (1, 2, 3)], record_id, seed)
    listed = "\n".join(f"{letter}) {text}" for letter, text in zip(LETTERS, options))
    prompt = TEMPLATE.format(question=row["Question"].strip(), options=listed)
    task = Task(prompt=prompt, kind="choice", source="bench", key=f"gpqa:{record_id}")
    meta = {"domain": row.get("High-level domain") or "", "subdomain": row.get("Subdomain") or "",
            "options": options}
    return BenchItem(record_id, task, Grading(HIDDEN, answer=answer), meta)


# Strongest signals first; the last match in the text wins within a pattern (models restate, then conclude).
# Strongest signals first; the last match in the text wins within a pattern (models restate, then conclude). Words
# are matched in any case, letters in upper case only ("the answer is a bit subtle" names no option).
ANSWER_PATTERNS = (
    r"(?i:answer)\s*(?:(?i:is)|:)?\s*[:\-]?\s*\**\s*[\(\[]?\s*([ABCD])\b",
    r"\\boxed\{\s*(?:\\text\{)?\s*\(?([ABCD])\)?",
    r"(?i:option|choice)\s*\(?([ABCD])\)?\s*(?i:is\s+(?:the\s+)?(?:correct|right|best))",
    r"(?:^|\n)\s*\**\s*\(?([ABCD])\)\s*\**\s*$",
    r"(?:^|\n)\s*\**([ABCD])\**\s*[.)]?\s*$",
)


def extract_letter(text: str) -> str | None:
    """The option letter a free-form answer commits to, or None when it commits to none."""
    for pattern in ANSWER_PATTERNS:
        found = re.findall(pattern, text)
        if found:
            return found[-1]
    return None


def majority_vote(letters: Sequence[str | None], tie_break: Sequence[float] | None = None) -> str | None:
    """The most frequent letter among the samples that gave one; ties go to the letter whose best sample has the
    highest `tie_break` score (e.g. minus Lens energy, or mean log-probability), else to the earliest sample."""
    counts = Counter(letter for letter in letters if letter)
    if not counts:
        return None
    top = max(counts.values())
    tied = [letter for letter in counts if counts[letter] == top]
    if len(tied) == 1:
        return tied[0]

    def best(letter: str) -> tuple[float, int]:
        rows = [i for i, x in enumerate(letters) if x == letter]
        score = max(tie_break[i] for i in rows) if tie_break is not None else 0.0
        return score, -rows[0]

    return max(tied, key=best)
