"""A short real run: the default model through the full Solver on two small HumanEval-style tasks (one per epoch), graded in the
sandbox, with every output written; and the honesty check that no hidden test text reached any prompt."""

import json
from pathlib import Path

import numpy as np
import pytest

from bench import runner
from bench.cli import main
from bench.datasets import humaneval
from bench.runner import RunConfig

FIXTURES = Path(__file__).parent / "fixtures"
HIDDEN_ONLY = ("hidden marker text", "candidate(12345, 67890)", "candidate(-7, -8)")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, default_model_path):
    out = tmp_path_factory.mktemp("bench") / "run"
    dataset = humaneval.load(FIXTURES / "humaneval_small.jsonl")
    config = RunConfig(dataset=dataset.name, mode="atlas", k=2, epochs=2, model=str(default_model_path), limit=2,
                       max_tokens=96)
    engine = runner.Engine(config, out / "state", report_problem=print)
    prompts: list[str] = []
    take = engine.prompts.take

    def keep_and_take():
        texts = take()
        prompts.extend(texts)
        return texts

    engine.prompts.take = keep_and_take
    summary = runner.run(dataset, config, out, engine=engine, stream=open("/dev/null", "w"))
    return out, summary, prompts, dataset


def test_real_run_writes_every_output(finished_run):
    out, summary, _, _ = finished_run
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == ["Fixture/0", "Fixture/1"]
    assert [r["epoch"] for r in records] == [1, 2]
    for record in records:
        assert 1 <= len(record["candidates"]) and record["tokens"] > 0 and record["seconds"] > 0
        assert sum(a["k"] for a in record["attempts"]) == len(record["candidates"])  # each tier (or repair) tried
        assert all(isinstance(c["hidden"], bool) for c in record["candidates"])
    assert summary["tasks"] == 2 and summary["complete"]
    assert 0.0 <= summary["pass_at_1"] <= summary["pass_at_k"] <= 1.0
    assert summary["tasks_per_hour"] > 0 and summary["tokens_per_s"] > 0
    assert summary["graded_on"] == "hidden tests"
    assert [row["epoch"] for row in summary["learning_curve"]] == [1, 2]
    assert "1" in summary["lens_retrains"]
    labelled = summary["labelled_set"]  # every candidate, with its hidden verdict, for `atlas-ls lens cv --data`
    assert labelled["samples"] == sum(len(r["candidates"]) for r in records) and labelled["tasks"] == 2
    from lens.store import read_labelled_set
    X, y, keys, logprobs = read_labelled_set(out / "lens_set.npz")
    assert X.shape == (labelled["samples"], 896)
    X_last = read_labelled_set(out / "lens_set.npz", features="last")[0]
    assert X_last.shape == X.shape and not np.allclose(X_last, X)  # the last token's state, not the mean again
    assert all(c["code"].strip() for r in records for c in r["candidates"])  # every candidate's code is kept
    # each candidate's kept lines were scored apart from its whole reply, at most as likely as its likeliest token
    assert all(c["body_logprob"] is not None and c["body_logprob"] <= 0 for r in records for c in r["candidates"])
    assert "body_logprob_first_pick_accuracy" in summary
    assert list(y) == [c["hidden"] for r in records for c in r["candidates"]]
    assert set(keys) == {r["task_key"] for r in records}
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3


def test_no_hidden_test_text_reaches_any_prompt(finished_run):
    out, summary, prompts, dataset = finished_run
    assert prompts, "the audit recorded nothing: the check would be vacuous"
    everything = "\n".join(prompts)
    assert 'shout("hi")' in everything  # the public docstring examples are in the prompt...
    for hidden in HIDDEN_ONLY:  # ...the hidden checks are not
        assert hidden not in everything
    assert summary["hidden_text_in_prompts"] == []
    for item in dataset.items[:2]:
        assert item.grading.suite.assert_code not in everything


def test_cli_resumes_a_finished_run_and_prints_the_summary(finished_run, capsys):
    out, summary, _, _ = finished_run
    config = json.loads((out / "run.json").read_text())
    argv = [f"humaneval:{FIXTURES / 'humaneval_small.jsonl'}", "--limit", "2", "--k", "2", "--epochs", "2",
            "--model", config["model"], "--max-tokens", "96", "--out", str(out), "--json"]
    assert main(argv) == 0  # every task is finished: nothing to solve, no model loaded
    printed = json.loads(capsys.readouterr().out)
    assert printed["pass_at_1"] == summary["pass_at_1"] and printed["tasks"] == 2


def test_cli_text_headline_of_a_finished_run(finished_run, capsys):
    out, summary, _, _ = finished_run
    config = json.loads((out / "run.json").read_text())
    argv = [f"humaneval:{FIXTURES / 'humaneval_small.jsonl'}", "--limit", "2", "--k", "2", "--epochs", "2",
            "--model", config["model"], "--max-tokens", "96", "--out", str(out)]
    assert main(argv) == 0  # resumes a finished run: nothing to solve, the headline from its summary
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{summary['dataset']} (atlas, {config['model']}): 2 tasks, graded on hidden tests")
    assert f"pass@1 {100 * summary['pass_at_1']:.1f}%" in lines[1]
    assert f"pass@k {100 * summary['pass_at_k']:.1f}%" in lines[1]
    assert lines[2].startswith("  first pick ") and f"on {summary.get('mixed_tasks', 0)} mixed tasks" in lines[2]
    assert f"{summary['tasks_per_hour']:.1f} tasks/hour" in lines[3]
    labelled = summary["labelled_set"]
    assert any(f"Lens labels: {labelled['samples']} candidates of 2 tasks" in line for line in lines)
    assert lines[-3:] == [f"results: {out / 'results.jsonl'}", f"summary: {out / 'summary.json'}",
                          f"report:  {out / 'report.html'}"]


def test_ctrl_c_keeps_every_finished_task_and_the_same_command_resumes(tmp_path, default_model_path):
    """A real run interrupted as a user would (SIGINT after its first graded task): exit 130 with the resume hint,
    every finished task kept; the same command then finishes the rest without redoing any."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    ids = [item.id for item in humaneval.load(FIXTURES / "humaneval_small.jsonl").items]
    command = [sys.executable, "-m", "atlas_ls", "--bench", f"humaneval:{FIXTURES / 'humaneval_small.jsonl'}",
               "--k", "2", "--max-tokens", "64", "--model", str(default_model_path), "--out", str(out)]
    results = out / "results.jsonl"
    # A suite started in the background (`nohup pytest &`) passes on an ignored SIGINT, and Python then never
    # raises KeyboardInterrupt; the child gets the terminal's default, as a user's run has.
    running = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "ATLAS_N_THREADS": "2"},
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while not (results.exists() and results.read_text().count("\n") >= 1) and running.poll() is None:
        assert time.monotonic() < deadline, "no task finished within 300 s"
        time.sleep(0.05)
    running.send_signal(signal.SIGINT)
    _, stderr = running.communicate(timeout=300)
    assert running.returncode == 130, stderr
    kept = [json.loads(line) for line in results.read_text().splitlines()]
    assert 1 <= len(kept) < len(ids)
    assert f"interrupted: {len(kept)} of {len(ids)} tasks are in {out}; run the same command again to resume" in stderr
    assert "Traceback" not in stderr

    resumed = subprocess.run(command + ["--json"], capture_output=True, text=True, timeout=600,
                             env={**os.environ, "ATLAS_N_THREADS": "2"})
    assert resumed.returncode == 0, resumed.stderr
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["id"] for r in records] == ids
    assert records[:len(kept)] == kept  # finished tasks are neither lost nor solved again
    assert json.loads(resumed.stdout)["tasks"] == len(ids)
