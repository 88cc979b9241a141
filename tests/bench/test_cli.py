"""`atlas-ls --bench DATASET`: bad input is a clear message and exit 2, before any model is loaded."""

import subprocess
import sys
from pathlib import Path

from bench.cli import main

FIXTURES = Path(__file__).parent / "fixtures"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "atlas_ls", "--bench", *args], capture_output=True, text=True,
                          timeout=120)


def test_unknown_dataset_is_bad_input():
    done = run_cli("nosuchset")
    assert done.returncode == 2
    assert "unknown dataset 'nosuchset'" in done.stderr


def test_missing_file_names_the_path(tmp_path):
    done = run_cli(f"lcb:{tmp_path / 'absent.jsonl'}", "--limit", "1")
    assert done.returncode == 2
    assert "absent.jsonl" in done.stderr and "not found" in done.stderr


def test_bad_option_values_are_bad_input(capsys):
    assert main(["humaneval", "--limit", "0"]) == 2
    assert "must be at least 1" in capsys.readouterr().err
    assert main(["humaneval", "--mode", "best"]) == 2
    assert main([f"lcb:{FIXTURES / 'lcb_small.jsonl'}", "--since", "yesterday"]) == 2
    assert "not a date" in capsys.readouterr().err


def test_baseline_with_k_is_refused(capsys):
    assert main(["humaneval", "--mode", "baseline", "--k", "5"]) == 2
    assert "needs --mode atlas" in capsys.readouterr().err


def test_a_file_with_only_malformed_records_reports_them_and_stops(tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text("not json\n{\"question_content\": 3}\n")
    assert main([f"lcb:{path}", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{path} line 1: not JSON" in err and f"{path} line 2: missing public_test_cases" in err
    assert "has no tasks to run" in err
