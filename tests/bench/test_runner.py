"""The run folder: results appended per task, resume after an interruption, summary and report from the results.
The engine here is a scripted stand-in (the real one is exercised in test_real_run.py)."""

import io
import json
import threading
from pathlib import Path

import pytest

from bench import runner
from bench.datasets import gpqa
from bench.results import RunFolder, RunMismatch
from bench.runner import Interrupted, RunConfig

FIXTURES = Path(__file__).parent / "fixtures"


class ScriptedEngine(runner.Engine):
    """Answers every task with three candidates; interrupts (as Ctrl-C would) on the task named `stop_at`."""

    def __init__(self, config, state, stop_at=None):
        super().__init__(config, state, report_problem=lambda m: None)
        self.stop_at = stop_at
        self.solved = []
        self.retrains = 0

    def solve_item(self, item, cancel: threading.Event):
        if item.id == self.stop_at:
            raise KeyboardInterrupt
        self.solved.append(item.id)
        index = len(self.solved)
        labels = [index % 2 == 0, True, False]
        candidates = [{"rank": r + 1, "energy": 0.5 + r if index > 1 else None, "confidence": None,
                       "mean_logprob": -0.1 * (r + 1), "greedy": r == 0, "tokens": 10, "public": None,
                       "hidden": labels[r], "detail": ""} for r in range(3)]
        return {"pass_at_1": labels[0], "pass_at_k": True, "committed_detail": "", "verified": False,
                "tier": "STANDARD", "k": 3, "difficulty": 0.1 * index, "ranking": "lens", "seconds": 2.0,
                "grade_seconds": 0.5, "tokens": 30, "generate_seconds": 1.5, "note": "", "candidates": candidates}

    def retrain_lens(self):
        self.retrains += 1
        return {"retrained": True, "reason": "scripted"}

    def close(self):
        pass


@pytest.fixture
def dataset():
    return gpqa.load(FIXTURES / "gpqa_small.csv")


def config(**changes):
    base = dict(dataset="gpqa-fixture", mode="atlas", k=3, epochs=1, model="scripted")
    base.update(changes)
    return RunConfig(**base)


def test_interrupted_run_resumes_where_it_stopped(dataset, tmp_path):
    out = tmp_path / "run"
    stopped = dataset.items[2].id
    first = ScriptedEngine(config(), out / "state", stop_at=stopped)
    with pytest.raises(Interrupted) as caught:
        runner.run(dataset, config(), out, engine=first, stream=open("/dev/null", "w"))
    assert first.solved == [dataset.items[0].id, dataset.items[1].id]
    lines = (out / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == first.solved
    assert caught.value.summary["tasks"] == 2 and not caught.value.summary["complete"]
    assert any("interrupted" in note for note in caught.value.summary["notes"])

    second = ScriptedEngine(config(), out / "state")
    summary = runner.run(dataset, config(), out, engine=second, stream=open("/dev/null", "w"))
    assert second.solved == [stopped]  # finished tasks are not solved again
    assert summary["tasks"] == 3 and summary["complete"]
    assert len((out / "results.jsonl").read_text().splitlines()) == 3


def test_a_line_cut_short_by_a_kill_is_dropped_and_redone(dataset, tmp_path):
    out = tmp_path / "run"
    runner.run(dataset, config(limit=2), out, engine=ScriptedEngine(config(), out / "state"),
               stream=open("/dev/null", "w"))
    text = (out / "results.jsonl").read_text()
    (out / "results.jsonl").write_text(text[:-25])  # the second line loses its end, as in a kill mid-write
    again = ScriptedEngine(config(limit=2), out / "state")
    summary = runner.run(dataset, config(limit=2), out, engine=again, stream=open("/dev/null", "w"))
    assert again.solved == [dataset.items[1].id]
    assert summary["tasks"] == 2


def test_resuming_with_other_options_is_refused(dataset, tmp_path):
    out = tmp_path / "run"
    runner.run(dataset, config(limit=1), out, engine=ScriptedEngine(config(), out / "state"),
               stream=open("/dev/null", "w"))
    with pytest.raises(RunMismatch, match="mode"):
        runner.run(dataset, config(limit=1, mode="baseline"), out,
                   engine=ScriptedEngine(config(), out / "state"), stream=open("/dev/null", "w"))


def test_epochs_retrain_between_chunks_and_give_a_learning_curve(dataset, tmp_path):
    out = tmp_path / "run"
    engine = ScriptedEngine(config(epochs=3), out / "state")
    summary = runner.run(dataset, config(epochs=3), out, engine=engine, stream=open("/dev/null", "w"))
    assert engine.retrains == 2  # between chunks 1-2 and 2-3
    assert [row["epoch"] for row in summary["learning_curve"]] == [1, 2, 3]
    assert [row["tasks"] for row in summary["learning_curve"]] == [1, 1, 1]
    assert set(summary["lens_retrains"]) == {"1", "2"}


def test_summary_and_report_are_written(dataset, tmp_path):
    out = tmp_path / "run"
    summary = runner.run(dataset, config(), out, engine=ScriptedEngine(config(), out / "state"),
                         stream=open("/dev/null", "w"))
    on_disk = json.loads((out / "summary.json").read_text())
    for key in ("pass_at_1", "pass_at_k", "first_pick_accuracy", "random_pick_expectation", "auc", "energy_gap",
                "tasks_per_hour", "tokens_per_s", "graded_on", "tasks", "logprob_first_pick_accuracy",
                "tier_counts"):
        assert key in on_disk, key
    assert on_disk == json.loads(json.dumps(summary, default=str))
    # tasks 1 and 3 have a failing greedy first pick among mixed candidates, task 2 a passing one
    assert summary["mixed_tasks"] == 3
    assert summary["first_pick_accuracy"] == pytest.approx(1 / 3)
    assert summary["random_pick_expectation"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 3) / 3)
    assert summary["pass_at_k"] == 1.0
    assert summary["tasks_per_hour"] == pytest.approx(3600 / 2.0)
    assert summary["tokens_per_s"] == pytest.approx(30 / 1.5)
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3
    assert "learning curve" in html and "energy histograms" in html and "difficulty vs pass rate" in html


def test_chunks_are_consecutive_and_balanced():
    assert [len(c) for c in runner.chunks(list(range(10)), 3)] == [4, 3, 3]
    assert sum(runner.chunks(list(range(10)), 3), []) == list(range(10))
    assert runner.chunks([1, 2], 5) == [[1], [2]]


def test_run_folder_append_is_on_disk_at_once(tmp_path):
    folder = RunFolder(tmp_path)
    folder.start({"dataset": "x", "mode": "atlas"})
    folder.append({"id": "a", "pass_at_1": True})
    assert json.loads((tmp_path / "results.jsonl").read_text()) == {"id": "a", "pass_at_1": True}


def test_weighted_vote():
    assert runner.weighted_vote(["A", "B", "B"], None, [0, 0, 0]) == "B"
    assert runner.weighted_vote(["A", "B", "B"], [0.9, 0.2, 0.2], [0, 0, 0]) == "A"
    assert runner.weighted_vote(["A", "B"], None, [-2.0, -1.0]) == "B"
    assert runner.weighted_vote([None], None, [0.0]) is None


def test_agreement_summary_counts_changed_choices_that_gained_or_lost():
    from bench.metrics import agreement

    def record(changed, committed_passes, first_passing_hidden):
        candidates = [{"rank": 1, "public": False, "hidden": False},
                      {"rank": 2, "public": True, "hidden": first_passing_hidden},
                      {"rank": 3, "public": True, "hidden": not first_passing_hidden}]
        return {"pass_at_1": committed_passes, "candidates": candidates,
                "agreement": {"changed": changed, "candidates": 2}}

    records = [record(True, True, False),  # left a wrong best-ranked pass for a right one: gained
               record(True, False, True),  # left a right one for a wrong one: lost
               record(False, True, True),  # compared, kept the best-ranked
               {"pass_at_1": True, "candidates": [], "agreement": None}]  # nothing to compare
    assert agreement(records) == {"tasks_compared": 3, "changed": 2, "gained": 1, "lost": 1}


def test_selection_reports_the_kept_lines_log_probability_beside_the_whole_replys():
    from bench.metrics import selection

    def candidate(rank, hidden, mean, body):
        return {"rank": rank, "hidden": hidden, "mean_logprob": mean, "body_logprob": body}

    records = [
        # the whole reply's mean picks the failing candidate (its demonstration is easy text), the body's the passing
        {"candidates": [candidate(1, False, -0.1, -0.5), candidate(2, True, -0.2, -0.3)]},
        {"candidates": [candidate(1, True, -0.1, -0.2), candidate(2, False, -0.3, -0.4)]},  # both pick the pass
        {"candidates": [candidate(1, True, -0.1, None), candidate(2, False, -0.3, -0.4)]},  # no kept line: left out
        {"candidates": [candidate(1, True, -0.1, -0.1), candidate(2, True, -0.3, -0.4)]},  # not mixed
    ]
    chosen = selection(records)
    assert chosen["mixed_tasks"] == 3 and chosen["logprob_first_pick_accuracy"] == pytest.approx(2 / 3)
    assert chosen["body_logprob_mixed_tasks"] == 2 and chosen["body_logprob_first_pick_accuracy"] == 1.0


def test_within_attempt_selection_ranks_each_attempts_candidates_apart():
    from bench.metrics import selection, within_attempt

    def candidate(rank, hidden, logprob, energy=None):
        return {"rank": rank, "hidden": hidden, "mean_logprob": logprob, "energy": energy}

    escalated = {  # the greedy FAST candidate failed; the STANDARD batch after it had a pass, ranked first there
        "attempts": [{"k": 1}, {"k": 3}],
        "candidates": [candidate(3, False, -0.5, 2.0), candidate(1, False, -0.1, 1.0), candidate(2, True, -0.3, 0.5),
                       candidate(4, False, -0.4, 3.0)]}
    inconsistent = {"attempts": [{"k": 5}],  # does not add up: the task stays one group
                    "candidates": [candidate(1, True, -0.2), candidate(2, False, -0.1)]}
    across = selection([escalated])
    assert across["first_pick_accuracy"] == 0.0 and across["logprob_first_pick_accuracy"] == 0.0
    within = within_attempt([escalated, inconsistent])
    assert within["mixed_attempts"] == 2
    assert within["first_pick_accuracy"] == 1.0  # rank 2 first within its attempt, and the other group's rank 1
    assert within["logprob_first_pick_accuracy"] == 0.5  # -0.3 beats -0.4 in the batch; -0.1 fails in the other
    assert within["lens_first_pick_accuracy"] == 1.0  # energies known for the batch only; lowest (0.5) passes
    assert within["random_pick_expectation"] == (1 / 3 + 1 / 2) / 2


def test_doubt_summary_counts_escalations_that_changed_the_committed_code():
    from bench.metrics import doubt

    def record(committed_rank, committed_passes, before_hidden):
        candidates = [{"rank": 1, "code": "first", "hidden": before_hidden},
                      {"rank": 2, "code": "second", "hidden": committed_passes},
                      {"rank": 3, "code": "first", "hidden": before_hidden}]  # the same program sampled again
        code = {1: "first", 2: "second", 3: "first"}[committed_rank]
        return {"pass_at_1": committed_passes, "code": code, "candidates": candidates,
                "doubt": [{"tier": "STANDARD", "supported": 1, "samples": 5, "choice_rank": 1, "next": "HARD"}]}

    records = [record(2, True, False),  # escalated, a right program replaced a wrong one: gained
               record(2, False, True),  # escalated, a wrong one replaced a right one: lost
               record(3, True, True),  # escalated; the same program, sampled again, still chosen: unchanged
               {"pass_at_1": True, "code": "x", "candidates": [], "doubt": []}]  # committed at once
    assert doubt(records) == {"tasks_escalated": 3, "changed": 2, "gained": 1, "lost": 1}


def test_choice_rows_follow_the_lens_ranking_with_its_energies_and_confidences():
    """The Lens-ranked branch of the multiple-choice rows (the real run in test_real_choice_run.py has no Lens yet)."""
    import numpy as np

    from bench.grading import Grade
    from lens.learner import Ranking

    class Reply:
        def __init__(self, text, greedy):
            self.text, self.greedy, self.mean_logprob, self.token_ids = text, greedy, -0.5, [1, 2, 3]

    replies = [Reply("so the answer is A", True), Reply("answer: B", False), Reply("I pick C", False)]
    ranking = Ranking(order=[2, 0, 1], energies=np.array([1.5, 2.5, 0.5]), confidences=np.array([0.4, 0.1, 0.8]),
                      method="lens")
    grades = [Grade(False, "answered A"), Grade(True, ""), Grade(False, "answered C")]
    rows = runner._choice_rows(replies, ranking, [0.4, 0.1, 0.8], ["A", "B", "C"], grades)
    assert [r["rank"] for r in rows] == [2, 3, 1]
    assert [r["energy"] for r in rows] == [1.5, 2.5, 0.5] and [r["confidence"] for r in rows] == [0.4, 0.1, 0.8]
    assert [r["answer"] for r in rows] == ["A", "B", "C"] and [r["hidden"] for r in rows] == [False, True, False]
    assert [r["greedy"] for r in rows] == [True, False, False] and rows[0]["reply_tail"] == "so the answer is A"
    unranked = runner._choice_rows(replies, None, None, ["A", "B", "C"], grades)
    assert [r["rank"] for r in unranked] == [1, 2, 3] and all(r["energy"] is None for r in unranked)


def test_damaged_lines_inside_the_results_are_named_kept_and_their_tasks_redone(dataset, tmp_path):
    out = tmp_path / "run"
    runner.run(dataset, config(limit=3), out, engine=ScriptedEngine(config(), out / "state"),
               stream=open("/dev/null", "w"))
    lines = (out / "results.jsonl").read_bytes().splitlines(keepends=True)
    lines[0] = b'{"id": "cut in the mid\n'  # bad JSON
    lines[1] = b'{"id": "\xff\xfe"}\n'  # bad UTF-8
    (out / "results.jsonl").write_bytes(b"".join(lines))
    again, said = ScriptedEngine(config(limit=3), out / "state"), io.StringIO()
    summary = runner.run(dataset, config(limit=3), out, engine=again, stream=said)
    assert again.solved == [dataset.items[0].id, dataset.items[1].id]
    assert "2 damaged line(s) skipped (line 1, 2)" in said.getvalue()
    assert summary["tasks"] == 3
    assert (out / "results.jsonl").read_bytes().startswith(lines[0] + lines[1])  # nothing deleted


def test_an_unreadable_run_file_beside_results_is_refused_and_kept(dataset, tmp_path):
    out = tmp_path / "run"
    runner.run(dataset, config(limit=1), out, engine=ScriptedEngine(config(), out / "state"),
               stream=open("/dev/null", "w"))
    (out / "run.json").write_text("{not json")
    results = (out / "results.jsonl").read_text()
    with pytest.raises(RunMismatch, match=r"run\.json is unreadable .*repair or remove it"):
        runner.run(dataset, config(limit=1), out, engine=ScriptedEngine(config(), out / "state"),
                   stream=open("/dev/null", "w"))
    assert (out / "run.json").read_text() == "{not json" and (out / "results.jsonl").read_text() == results


def test_an_unreadable_run_file_without_results_is_replaced(dataset, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text("[1, 2]")  # JSON, but not the object a run file holds
    summary = runner.run(dataset, config(limit=1), out, engine=ScriptedEngine(config(), out / "state"),
                         stream=open("/dev/null", "w"))
    assert summary["tasks"] == 1 and json.loads((out / "run.json").read_text())["mode"] == "atlas"
