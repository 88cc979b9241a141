"""`atlas-ls --bench throughput` run for real on the default model, briefly (8 tokens, one round): the report's
shape and its internal consistency, speculative decoding's unchanged output, and a missing model's message. Speed
itself is what the command measures, so nothing here asserts a speed."""

import json
import subprocess
import sys

import pytest

from engine.commands.throughput import format_report


def throughput(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "atlas_ls", "--bench", "throughput", *args], capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def report(default_model_path) -> dict:
    done = throughput("--model", str(default_model_path), "--draft-model", str(default_model_path),
                      "--max-tokens", "8", "--repeat", "1", "--n-threads", "2", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_report_counts_every_measurement_within_its_token_budget(report):
    assert report["n_embd"] == 896 and report["max_tokens"] == 8 and report["repeat"] == 1
    tokens = report["tokens"]
    assert 0 < tokens["single"] <= 8
    assert 0 < tokens["5"] <= 5 * 8 and 0 < tokens["8"] <= 8 * 8 and 0 < tokens["sequential"] <= 5 * 8
    assert report["single_tok_s"] > 0 and report["sequential_tok_s"] > 0
    assert report["batched_tok_s"]["5"] > 0 and report["batched_tok_s"]["8"] > 0


def test_ratios_and_embedding_fraction_agree_with_the_rates(report):
    ratios, batched = report["ratios"], report["batched_tok_s"]
    assert ratios["batched_5_over_single"] == pytest.approx(batched["5"] / report["single_tok_s"], rel=0.01)
    assert ratios["batched_5_over_sequential"] == pytest.approx(batched["5"] / report["sequential_tok_s"], rel=0.01)
    assert report["embed_strategy"] in ("decode", "reread")
    assert report["embed_fraction"] == report[f"embed_fraction_{report['embed_strategy']}"]
    assert report["embed_fraction_reread"] > 0  # re-reading five candidates takes time


def test_speculative_decoding_leaves_greedy_output_unchanged(report):
    speculative = report["speculative"]
    assert speculative["same_output"] is True
    assert speculative["speedup"] == pytest.approx(speculative["speculative_tok_s"] / speculative["greedy_tok_s"],
                                                   rel=0.01)


def test_text_report_names_each_measurement_and_its_target(report):
    text = format_report(report)
    for label in ("(a) single sequence", "(b) batched k=5", "(c) k=5 sequential calls", "(d) embeddings",
                  "(e) speculative greedy"):
        assert label in text
    assert f"target >= {report['targets']['batched_5_over_single']}x" in text


def test_missing_model_is_named_with_exit_1(tmp_path):
    missing = tmp_path / "nowhere.gguf"
    done = throughput("--model", str(missing), "--max-tokens", "4", "--repeat", "1")
    assert done.returncode == 1
    assert done.stderr.startswith("atlas-ls --bench throughput: ") and str(missing) in done.stderr
    assert "Traceback" not in done.stderr
