"""The solve flow over a real LSP session on stdio, with the real server and a scripted Solver (see
scripted_server.py): fast and deterministic, so they can pin down progress, cancellation, version checks and
alternatives on the VS Code and Neovim capability sets. test_end_to_end.py runs the same flow on the model."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from lsprotocol import types

from atlas_ls import protocol
from tests.atlas_ls.editor import CLIENTS, Editor, copy_fixture, solve_action, start_editor, stop_editor, titles

GOOD_ADD = "def add(a: int, b: int) -> int:\n    return a + b\n"
BAD_ADD = "def add(a: int, b: int) -> int:\n    return a - b\n"
SCRIPT = {"step_s": 0.05, "candidates": [
    {"code": GOOD_ADD, "energy": 1.2, "confidence": 0.91, "passed": [True, True]},
    {"code": BAD_ADD, "energy": 3.1, "confidence": 0.2, "passed": [False, True]},
]}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return copy_fixture(tmp_path)


@pytest.fixture
def script(tmp_path: Path):
    path = tmp_path / "script.json"

    def write(content: dict) -> dict[str, str]:
        path.write_text(json.dumps(content))
        return {"ATLAS_TEST_SCRIPT": str(path)}

    return write


@pytest.fixture(params=CLIENTS)
async def editor(request, workspace, script):
    env = script(SCRIPT)
    started = await start_editor(workspace, request.param, env=env, init_options={"preloadModel": False})
    yield started
    await stop_editor(started)


# --- solving ---

async def solve_in_background(editor: Editor, needle: str, until: str) -> tuple[str, asyncio.Future]:
    """Start solving the function on the line with `needle`; return once the progress says `until`."""
    uri = editor.open("mathutils.py")
    line = editor.line_of(uri, needle)
    running = asyncio.ensure_future(editor.execute(solve_action(await editor.code_actions(uri, line)).command))
    await editor.wait_until(lambda: editor.progress() and until in (editor.progress()[-1].message or ""))
    return uri, running


async def test_solve_reports_progress_applies_the_edit_and_explains_it(editor: Editor):
    uri = editor.open("mathutils.py")
    before = editor.texts[uri]
    line = editor.line_of(uri, "def add")
    answer = await editor.execute(solve_action(await editor.code_actions(uri, line)).command)
    assert answer["applied"] and answer["verified"] and answer["rank"] == 1, answer

    after = editor.texts[uri]
    assert "    return a + b\n" in after and '"""Return the sum of a and b."""' in after
    assert after.replace('    return a + b\n', '    pass\n') == before, "exactly the function changed"

    kinds = [type(v).__name__ for v in editor.progress()]
    assert kinds[0] == "WorkDoneProgressBegin" and kinds[-1] == "WorkDoneProgressEnd", kinds
    reports = [v.message for v in editor.progress() if isinstance(v, types.WorkDoneProgressReport)]
    for expected in ("routing", "generating 1/2", "generating 2/2", "scoring", "testing 1/2", "testing 2/2"):
        assert expected in reports, reports
    percentages = [getattr(v, "percentage", None) for v in editor.progress()]
    percentages = [p for p in percentages if p is not None]
    assert percentages == sorted(percentages), "never goes back"
    assert editor.progress()[0].cancellable

    hover = await editor.hover(uri, line)
    text = hover.contents.value
    for expected in ("energy: 1.20", "confidence: 91%", "difficulty: 0.40", "tier STANDARD", "k = 2",
                     "tests: 2/2 passed", "test_0", "2 pytest tests", "model: qwen2.5-coder-0.5b", "time:"):
        assert expected in text, text
    assert await editor.hover(uri, editor.line_of(uri, "def double")) is None
    assert await editor.hover(uri, editor.line_of(uri, "return a + b")) is None, "only on the header"

    alternatives = await editor.code_actions(uri, line)
    assert titles(alternatives) == ["ATLAS candidate 2: energy 3.1, tests 1/2"]
    applied = await editor.execute(alternatives[0].command)
    assert applied["applied"] and "return a - b" in editor.texts[uri]


async def test_cancel_leaves_the_document_untouched(editor: Editor, script):
    script({**SCRIPT, "block": True})
    before = (editor.workspace / "mathutils.py").read_text()
    uri, running = await solve_in_background(editor, "def add", until="routing")
    line = editor.line_of(uri, "def add")
    token = next(iter(editor.client.progress_reports))
    assert titles(await editor.code_actions(uri, line)) == ["Cancel ATLAS solve of add"]
    hover = await editor.hover(uri, line)
    assert "is solving `add`" in hover.contents.value and "phase: routing" in hover.contents.value
    editor.client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
    started = time.monotonic()
    answer = await asyncio.wait_for(running, 30)
    assert time.monotonic() - started < 5
    assert not answer["applied"] and "cancelled" in answer["message"]
    assert editor.edits == [] and editor.texts[uri] == before
    assert isinstance(editor.progress()[-1], types.WorkDoneProgressEnd)
    assert "cancelled" in editor.progress()[-1].message
    assert protocol.SOLVE_TITLE in titles(await editor.code_actions(uri, line)), "can be solved again"


async def test_document_changed_during_the_solve(editor: Editor, script):
    script({**SCRIPT, "step_s": 0.3})
    uri, running = await solve_in_background(editor, "def add", until="generating")

    # An edit elsewhere: the function is found again by name (it moved down two lines) and replaced.
    editor.change(uri, "import os\n\n" + editor.texts[uri])
    answer = await asyncio.wait_for(running, 30)
    assert answer["applied"], answer
    assert editor.texts[uri].startswith("import os\n\n") and "    return a + b\n" in editor.texts[uri]


async def test_stub_changed_during_the_solve_is_not_overwritten(editor: Editor, script):
    script({**SCRIPT, "step_s": 0.3})
    uri, running = await solve_in_background(editor, "def add", until="generating")
    mine = editor.texts[uri].replace("    pass\n", "    return b + a  # mine\n", 1)
    editor.change(uri, mine)
    answer = await asyncio.wait_for(running, 30)
    assert not answer["applied"] and "changed while ATLAS was solving" in answer["message"]
    assert editor.texts[uri] == mine and editor.edits == []
    assert editor.shown("changed while ATLAS was solving")


async def test_nothing_passed_means_nothing_applied_and_candidates_offered(editor: Editor, script):
    script({"step_s": 0.01, "candidates": [
        {"code": BAD_ADD, "energy": 2.0, "passed": [False, True]},
        {"code": "def add(a, b):\n    return 0\n", "energy": 4.5, "passed": [False, False]}]})
    uri = editor.open("mathutils.py")
    before = editor.texts[uri]
    line = editor.line_of(uri, "def add")
    answer = await editor.execute(solve_action(await editor.code_actions(uri, line)).command)
    assert not answer["applied"] and "no candidate passed" in answer["message"]
    assert editor.texts[uri] == before
    offered = titles(await editor.code_actions(uri, line))
    assert offered == [protocol.SOLVE_TITLE, "ATLAS candidate 1: energy 2.0, tests 1/2",
                       "ATLAS candidate 2: energy 4.5, tests 0/2"]
    hover = (await editor.hover(uri, line)).contents.value
    assert "tried `add`: no candidate applied" in hover and "tests: 1/2 passed" in hover, hover


# --- clients and configuration ---

async def test_client_without_work_done_progress(workspace: Path, script):
    editor = await start_editor(workspace, "no-progress", env=script(SCRIPT), init_options={"preloadModel": False})
    try:
        uri = editor.open("mathutils.py")
        line = editor.line_of(uri, "def add")
        answer = await editor.execute(solve_action(await editor.code_actions(uri, line)).command)
        assert answer["applied"]
        assert editor.client.progress_reports == {}, "no progress without the capability"
        assert editor.shown("ATLAS: solving add") and editor.shown(protocol.CANCEL_COMMAND)
        assert editor.shown("ATLAS applied candidate 1 of 2 for add")
        assert editor.logged("add: generating 2/2")

        script({**SCRIPT, "block": True})
        maximum = editor.line_of(uri, "def maximum")
        running = asyncio.ensure_future(editor.execute(solve_action(await editor.code_actions(uri, maximum)).command))
        await editor.wait_until(lambda: editor.logged("maximum: routing"))
        cancelled = await editor.execute(types.Command(title="cancel", command=protocol.CANCEL_COMMAND,
                                                       arguments=[]))
        assert cancelled == {"cancelled": ["maximum"]}
        assert not (await asyncio.wait_for(running, 30))["applied"]
        assert "raise NotImplementedError" in editor.texts[uri]
    finally:
        await stop_editor(editor)
