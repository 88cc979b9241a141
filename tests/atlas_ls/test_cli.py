import subprocess
import sys

from atlas_ls import __version__
from atlas_ls.cli import _bench_argv


def test_version_prints_and_exits_zero():
    done = subprocess.run([sys.executable, "-m", "atlas_ls", "--version"], capture_output=True, text=True)
    assert done.returncode == 0
    assert done.stdout.strip() == f"atlas-ls {__version__}"


def test_the_command_line_builds_without_heavy_libraries():
    """Every subcommand registers its parser at start-up, the server's included; numpy, torch and llama.cpp wait
    until a command needs them (engine.commands' rule), so `atlas-ls` starts fast."""
    probe = ("import sys\nfrom atlas_ls import cli\ntry:\n    cli.main(['--version'])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in ('numpy', 'torch', 'llama_cpp', 'lens.metrics') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"


def test_bench_spellings():
    assert _bench_argv(["--bench", "humaneval", "--limit", "3"]) == ["humaneval", "--limit", "3"]
    assert _bench_argv(["--bench=sandbox", "--json"]) == ["sandbox", "--json"]
    assert _bench_argv(["bench", "throughput"]) == ["throughput"]
    assert _bench_argv(["doctor"]) is None


def test_bench_without_target_is_bad_input():
    done = subprocess.run([sys.executable, "-m", "atlas_ls", "--bench"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "name what to benchmark" in done.stderr
