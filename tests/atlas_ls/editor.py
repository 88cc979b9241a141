"""A small editor around pytest-lsp's client: it starts atlas-ls over stdio with a real client's capabilities,
keeps the open documents' text, applies `workspace/applyEdit` like an editor does (and tells the server with
didChange), and waits for what the server sends."""

from __future__ import annotations

import asyncio
import copy
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Union

from lsprotocol import types
from atlas_ls import protocol
from pytest_lsp import LanguageClient, client_capabilities, make_test_lsp_client

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SCRIPTED_SERVER = [sys.executable, str(HERE / "scripted_server.py")]
REAL_SERVER = [sys.executable, "-m", "atlas_ls"]
FIXTURE = HERE / "fixtures" / "lsp_workspace"
CLIENTS = ("visual-studio-code", "neovim")


def capabilities(name: str) -> types.ClientCapabilities:
    """A shipped client's capabilities; "no-progress" is VS Code's without window.workDoneProgress."""
    if name == "no-progress":
        caps = copy.deepcopy(client_capabilities("visual-studio-code"))
        caps.window.work_done_progress = False
        return caps
    return client_capabilities(name)


def copy_fixture(tmp_path: Path) -> Path:
    """A fresh copy of the fixture workspace (solves edit it, the watcher and the sandbox read it)."""
    copy = tmp_path / "workspace"
    shutil.copytree(FIXTURE, copy)
    return copy


def titles(actions: list[Any]) -> list[str]:
    return [a.title for a in actions]


def solve_action(actions: list[Any]) -> types.CodeAction:
    """The one "Solve with ATLAS" action of a listing, with our kind."""
    found = [a for a in actions if a.title == protocol.SOLVE_TITLE]
    assert len(found) == 1, titles(actions)
    assert found[0].kind == protocol.CODE_ACTION_KIND
    return found[0]


def offset_of(text: str, position: types.Position) -> int:
    lines = text.splitlines(keepends=True)
    if position.line >= len(lines):
        return len(text)
    return sum(len(line) for line in lines[: position.line]) + position.character


class Editor:
    def __init__(self, client: LanguageClient, workspace: Path) -> None:
        self.client = client
        self.workspace = workspace
        self.texts: dict[str, str] = {}
        self.versions: dict[str, int] = {}
        self.edits: list[types.ApplyWorkspaceEditParams] = []
        self.accept_edits = True
        self.statuses: list[Any] = []

    # documents

    def uri(self, relative: str) -> str:
        return (self.workspace / relative).as_uri()

    def open(self, relative: str, language_id: str = "python", text: str | None = None) -> str:
        uri = self.uri(relative)
        text = (self.workspace / relative).read_text() if text is None else text
        self.texts[uri], self.versions[uri] = text, 1
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
            uri=uri, language_id=language_id, version=1, text=text)))
        return uri

    def change(self, uri: str, text: str) -> None:
        self.texts[uri] = text
        self.versions[uri] += 1
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=self.versions[uri]),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))

    def save(self, uri: str) -> None:
        Path(uri.removeprefix("file://")).write_text(self.texts[uri])

    def apply(self, params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        self.edits.append(params)
        if not self.accept_edits:
            return types.ApplyWorkspaceEditResult(applied=False, failure_reason="refused by the test")
        changes: dict[str, list[types.TextEdit]] = dict(params.edit.changes or {})
        for doc_edit in params.edit.document_changes or []:
            version = doc_edit.text_document.version
            if version is not None and version != self.versions[doc_edit.text_document.uri]:
                return types.ApplyWorkspaceEditResult(applied=False, failure_reason="version mismatch")
            changes.setdefault(doc_edit.text_document.uri, []).extend(doc_edit.edits)
        for uri, edits in changes.items():
            text = self.texts[uri]
            for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
                start, end = offset_of(text, edit.range.start), offset_of(text, edit.range.end)
                text = text[:start] + edit.new_text + text[end:]
            self.change(uri, text)
        return types.ApplyWorkspaceEditResult(applied=True)

    # requests

    def line_of(self, uri: str, needle: str) -> int:
        return next(i for i, line in enumerate(self.texts[uri].splitlines()) if needle in line)

    async def code_actions(self, uri: str, line: int, only: list[str] | None = None) -> list[Any]:
        position = types.Position(line=line, character=4)
        return await self.client.text_document_code_action_async(types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), range=types.Range(start=position, end=position),
            context=types.CodeActionContext(diagnostics=[], only=only))) or []

    async def hover(self, uri: str, line: int, character: int = 6) -> types.Hover | None:
        return await self.client.text_document_hover_async(types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=character)))

    async def execute(self, command: types.Command) -> Any:
        return await self.client.workspace_execute_command_async(types.ExecuteCommandParams(
            command=command.command, arguments=command.arguments))

    async def wait_until(self, condition: Callable[[], Any], timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            await asyncio.sleep(0.02)
        raise AssertionError(f"timed out after {timeout} s waiting for {condition}")

    def shown(self, needle: str) -> list[str]:
        return [m.message for m in self.client.messages if needle in m.message]

    def logged(self, needle: str) -> list[str]:
        return [m.message for m in self.client.log_messages if needle in m.message]

    def progress(self) -> list[Any]:
        return [value for values in self.client.progress_reports.values() for value in values]


def _fix_code_action_decoding(client: LanguageClient) -> None:
    """lsprotocol's client-side hook decodes any result item with a `command` field as a Command, so a CodeAction
    that carries a command comes back as a Command whose command is the stringified object. Editors tell them
    apart by the field's type (a string for a Command); so does this."""
    converter = client.protocol._converter

    def structure(item: Any, _: type) -> types.Command | types.CodeAction:
        kind = types.Command if isinstance(item.get("command"), str) else types.CodeAction
        return converter.structure(item, kind)

    converter.register_structure_hook(Union[types.Command, types.CodeAction], structure)


async def start_editor(workspace: Path, client_name: str, *, server: list[str] = SCRIPTED_SERVER,
                       init_options: dict | None = None, env: dict[str, str] | None = None,
                       configuration: dict | None = None) -> Editor:
    client = make_test_lsp_client()
    _fix_code_action_decoding(client)
    editor = Editor(client, workspace)

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams):
        return editor.apply(params)

    @client.feature(protocol.STATUS_NOTIFICATION)
    def status(params: Any):
        # pygls hands unknown notifications' params over as named tuples
        editor.statuses.append(params._asdict() if hasattr(params, "_asdict") else dict(params))

    if configuration is not None:
        client.set_configuration(configuration)
    server_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    await client.start_io(*server, env=server_env, cwd=str(workspace))
    await client.initialize_session(types.InitializeParams(
        capabilities=capabilities(client_name), root_uri=workspace.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=workspace.as_uri(), name=workspace.name)],
        initialization_options=init_options))
    return editor


async def stop_editor(editor: Editor) -> None:
    await editor.client.shutdown_session()
    await editor.client.stop()
