import subprocess
import sys

from atlas_ls import __version__
from atlas_ls.cli import _bench_argv


def test_version_prints_and_exits_zero():
    done = subprocess.run([sys.executable, "-m", "atlas_ls", "--version"], capture_output=True, text=True)
    assert done.returncode == 0
    assert done.stdout.strip() == f"atlas-ls {__version__}"


def test_bench_spellings():
    assert _bench_argv(["--bench", "humaneval", "--limit", "3"]) == ["humaneval", "--limit", "3"]
    assert _bench_argv(["--bench=sandbox", "--json"]) == ["sandbox", "--json"]
    assert _bench_argv(["bench", "throughput"]) == ["throughput"]
    assert _bench_argv(["doctor"]) is None


def test_bench_without_target_is_bad_input():
    done = subprocess.run([sys.executable, "-m", "atlas_ls", "--bench"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "name what to benchmark" in done.stderr
