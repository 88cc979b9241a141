"""End to end on the real default model: `python -m atlas_ls` over stdio, the VS Code and Neovim capability sets,
the engine's Solver on the model, the sandbox running the workspace's own tests. Few and small (short token
budgets, one easy function each), since every solve costs real CPU time."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lsprotocol import types

from tests.atlas_ls.editor import (CLIENTS, REAL_SERVER, Editor, copy_fixture, solve_action, start_editor,
                                   stop_editor, titles)

SMALL = {"nThreads": 2, "tierK": [1, 2, 2], "tierMaxTokens": [128, 128, 128], "maxEscalations": 1,
         "escalationTokenBudget": 2048}
# Many candidates at once, so that a cancel surely arrives while generating.
LONG = {**SMALL, "tierK": [6, 6, 6], "tierMaxTokens": [256, 256, 256], "cacheEnabled": False}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return copy_fixture(tmp_path)


async def start(workspace: Path, client: str, options: dict) -> Editor:
    # Fresh per-user state per test: no pattern-cache hit from an earlier test, no Lens trained by one.
    env = {"ATLAS_DATA_DIR": str(workspace.parent / "data")}
    return await start_editor(workspace, client, server=REAL_SERVER, init_options=options, env=env)


def workspace_tests(workspace: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=workspace,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("client", CLIENTS)
async def test_solve_applies_an_edit_that_makes_the_workspace_tests_pass(workspace: Path, client: str):
    assert workspace_tests(workspace, "-k", "add").returncode != 0, "the fixture's tests fail before the solve"
    editor = await start(workspace, client, SMALL)
    try:
        uri = editor.open("mathutils.py")
        line = editor.line_of(uri, "def add")
        answer = await editor.execute(solve_action(await editor.code_actions(uri, line)).command)
        hover = (await editor.hover(uri, editor.line_of(uri, "def add"))).contents.value
        assert answer["applied"] and answer["verified"], (answer, hover)

        progress = editor.progress()
        assert isinstance(progress[0], types.WorkDoneProgressBegin) and progress[0].cancellable
        assert isinstance(progress[-1], types.WorkDoneProgressEnd) and "applied" in progress[-1].message
        reports = " | ".join(p.message for p in progress if isinstance(p, types.WorkDoneProgressReport))
        for phase in ("routing", "generating", "scoring", "testing 1/1"):
            assert phase in reports, reports

        for expected in ("solved `add` (verified by the tests)", "energy:", "confidence:", "difficulty:", "tier ",
                         "k = ", "tests: 2/2 passed (2 pytest tests)", "test_add_small", "test_add_negative",
                         "model: qwen2.5-coder-0.5b (", "time:"):
            assert expected in hover, hover

        editor.save(uri)
        passing = workspace_tests(workspace, "-k", "add")
        assert passing.returncode == 0, editor.texts[uri] + passing.stdout + passing.stderr
        assert editor.logged("Lens: cold start"), "the Lens state went to the log"
    finally:
        await stop_editor(editor)


@pytest.mark.parametrize("client", CLIENTS)
async def test_cancel_stops_promptly_and_leaves_the_document_untouched(workspace: Path, client: str):
    editor = await start(workspace, client, LONG)
    try:
        uri = editor.open("mathutils.py")
        before = editor.texts[uri]
        line = editor.line_of(uri, "def maximum")
        running = asyncio.ensure_future(editor.execute(solve_action(await editor.code_actions(uri, line)).command))
        await editor.wait_until(lambda: any("generating" in (getattr(p, "message", "") or "")
                                            for p in editor.progress()), timeout=300)
        token = next(iter(editor.client.progress_reports))
        editor.client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
        cancelled_at = time.monotonic()
        await editor.wait_until(lambda: isinstance(editor.progress()[-1], types.WorkDoneProgressEnd), timeout=30)
        ended_after = time.monotonic() - cancelled_at
        answer = await asyncio.wait_for(running, 120)
        assert not answer["applied"] and "cancelled" in answer["message"], answer
        assert ended_after < 5, f"progress ended {ended_after:.1f} s after the cancel"
        assert editor.edits == [] and editor.texts[uri] == before
        hover = (await editor.hover(uri, line)).contents.value
        assert "cancelled" in hover, hover
    finally:
        await stop_editor(editor)


async def test_when_nothing_passes_the_candidates_are_offered(workspace: Path):
    (workspace / "tests" / "test_impossible.py").write_text(
        "from mathutils import add\n\n\ndef test_add_impossible():\n    assert add(1, 1) == 3\n")
    editor = await start(workspace, "visual-studio-code", {**SMALL, "maxEscalations": 0})
    try:
        uri = editor.open("mathutils.py")
        before = editor.texts[uri]
        line = editor.line_of(uri, "def add")
        answer = await editor.execute(solve_action(await editor.code_actions(uri, line)).command)
        assert not answer["applied"] and "no candidate passed" in answer["message"], answer
        assert editor.texts[uri] == before and editor.shown("no candidate passed")

        offered = await editor.code_actions(uri, line)
        alternatives = [a for a in offered if a.title.startswith("ATLAS candidate")]
        assert alternatives, titles(offered)
        title = re.compile(r"ATLAS candidate \d+: (energy|log-prob) -?\d+\.\d+, (tests \d+/\d+|does not run)")
        for action in alternatives:
            assert title.fullmatch(action.title), action.title
        applied = await editor.execute(alternatives[0].command)
        assert applied["applied"] and editor.texts[uri] != before
        assert "def add(a: int, b: int) -> int:" in editor.texts[uri]
    finally:
        await stop_editor(editor)


async def test_client_without_work_done_progress(workspace: Path):
    editor = await start(workspace, "no-progress", SMALL)
    try:
        uri = editor.open("mathutils.py")
        line = editor.line_of(uri, "def maximum")
        answer = await editor.execute(solve_action(await editor.code_actions(uri, line)).command)
        assert answer["applied"] and answer["verified"], answer
        assert editor.client.progress_reports == {}
        assert editor.shown("ATLAS: solving maximum") and editor.shown("ATLAS applied candidate")
        assert editor.logged("maximum: generating")
        editor.save(uri)
        doctests = subprocess.run([sys.executable, "-m", "doctest", "-v", "mathutils.py"], cwd=workspace,
                                  capture_output=True, text=True, timeout=60)
        assert doctests.returncode == 0 and "maximum(5, -3)" in doctests.stdout, doctests.stdout + doctests.stderr
    finally:
        await stop_editor(editor)
