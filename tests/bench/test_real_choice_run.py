"""A short real multiple-choice run: the default model through `solve_choice` (k replies, a letter from each, a
vote) on two GPQA-format questions, graded by letter, with every reply's label kept for the Lens."""

import json
import sqlite3
from pathlib import Path

from bench import runner
from bench.datasets import gpqa
from bench.runner import RunConfig, weighted_vote
from lens.store import SampleStore, read_labelled_set

FIXTURES = Path(__file__).parent / "fixtures"


def test_real_choice_run_votes_grades_by_letter_and_keeps_every_label(tmp_path, default_model_path):
    out = tmp_path / "run"
    dataset = gpqa.load(FIXTURES / "gpqa_small.csv")
    config = RunConfig(dataset=dataset.name, mode="atlas", k=3, epochs=1, model=str(default_model_path), limit=2,
                       max_tokens=64)
    engine = runner.Engine(config, out / "state", report_problem=print)
    summary = runner.run(dataset, config, out, engine=engine, stream=open("/dev/null", "w"))

    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    answers = {item.id: item.grading.answer for item in dataset.items[:2]}
    assert [r["id"] for r in records] == list(answers)
    for record in records:
        replies = record["candidates"]
        assert record["tier"] == "VOTE-3" and record["k"] == 3 and len(replies) == 3
        assert [c["greedy"] for c in replies] == [True, False, False]
        assert sorted(c["rank"] for c in replies) == [1, 2, 3]
        assert all(c["reply_tail"] and c["tokens"] > 0 for c in replies)
        correct = answers[record["id"]]
        assert [c["hidden"] for c in replies] == [c["answer"] == correct for c in replies]
        # no Lens yet on two questions: an unweighted vote, ties to the likeliest reply's letter
        assert record["ranking"] == "vote"
        assert record["answer"] == weighted_vote([c["answer"] for c in replies], None,
                                                 [c["mean_logprob"] for c in replies])
        assert record["pass_at_1"] == (record["answer"] == correct)
        assert record["pass_at_k"] == any(c["hidden"] for c in replies)
    assert summary["tasks"] == 2 and summary["complete"]

    X, y, keys, _ = read_labelled_set(out / "lens_set.npz")
    assert X.shape == (6, 896)
    assert list(y) == [c["hidden"] for r in records for c in r["candidates"]]
    assert set(keys) == {r["task_key"] for r in records}
    engine.close()

    # atlas mode: each graded question's replies teach the Lens, in the run's own SQLite file (one row per distinct
    # reply: the store deduplicates by task and text)
    store = SampleStore(sqlite3.connect(out / "state" / "atlas.sqlite3"))
    [model_fp] = store.models()
    counts = store.counts(model_fp)
    distinct_tails = sum(len({c["reply_tail"] for c in r["candidates"]}) for r in records)
    assert distinct_tails <= counts["samples"] <= 6 and counts["tasks"] == 2
    assert counts["by_source"] == {"bench": counts["samples"]}
