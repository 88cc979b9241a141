"""The atlas-ls language server (pygls 2.x): the server object and its life cycle.

Each editor feature lives in its own module and registers its handlers here (esbonio style): `actions` (code
actions), `solving` (the commands), `hover`, `settings` (configuration). This module holds the state they share:
the settings, the engine host, the solve records, the parsed documents and the per-workspace test indexes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from pathlib import Path

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from atlas_ls import __version__, actions, hover, settings, solving
from atlas_ls.documents import SiteCache
from atlas_ls.engine_host import EngineHost, SolverFactory
from atlas_ls.messages import Messenger, install_client_logging, set_log_level
from atlas_ls.records import SolveBook
from engine.config import Settings
from engine.testindex import TestIndex

log = logging.getLogger(__name__)

PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")


class AtlasLanguageServer(LanguageServer):
    def __init__(self, solver_factory: SolverFactory | None = None) -> None:
        super().__init__(name="atlas-ls", version=__version__)
        self.messenger = Messenger(self)
        self.host = EngineHost(self.messenger, solver_factory)
        self.book = SolveBook()
        self.sites = SiteCache()
        self.settings = Settings()
        self.init_options = settings.InitializationOptions()
        self.init_problems: list[str] = []
        self.solve_lock = asyncio.Lock()
        self._indexes: dict[Path, TestIndex] = {}
        self._indexes_lock = threading.Lock()
        self._log_handler = None

    # --- workspace ---

    def folders(self) -> list[Path]:
        from pygls.uris import to_fs_path

        roots = [Path(to_fs_path(f.uri)) for f in self.workspace.folders.values() if to_fs_path(f.uri)]
        root = self.workspace.root_path
        if root and Path(root) not in roots:
            roots.append(Path(root))
        return roots

    def root_path(self) -> Path | None:
        folders = self.folders()
        return folders[0] if folders else None

    def root_for(self, path: Path) -> Path:
        """The workspace folder holding the file (the deepest one); for a file outside them, the nearest folder
        above it with a project marker, else its own folder."""
        path = path.resolve()
        holding = [f.resolve() for f in self.folders() if f.resolve() in path.parents]
        if holding:
            return max(holding, key=lambda f: len(f.parts))
        marked = next((p for p in path.parents if any((p / m).exists() for m in PROJECT_MARKERS)), None)
        return marked or path.parent

    def test_index(self, root: Path) -> TestIndex:
        """The test index of a workspace folder, watched when `watch_tests` is on. It reads the workspace's test
        files the first time: call it on a worker thread."""
        with self._indexes_lock:
            index = self._indexes.get(root)
            if index is None:
                index = TestIndex(root, debounce_s=self.settings.watch_debounce_ms / 1000)
                index.scan()
                if self.settings.watch_tests and not index.start_watching():
                    self.messenger.log(f"cannot watch {root} for test changes; the test index is read once",
                                       "warning")
                self._indexes[root] = index
            return index

    # --- settings ---

    def apply_settings(self, new: Settings) -> None:
        old, self.settings = self.settings, new
        changed = {f.name for f in dataclasses.fields(Settings) if getattr(old, f.name) != getattr(new, f.name)}
        if self._log_handler is not None:
            set_log_level(self._log_handler, new.log_level)
        if changed & {"watch_tests", "watch_debounce_ms"}:
            self._stop_indexes()  # rebuilt on next use with the new settings
        engine_changed = bool(changed - settings.SERVER_ONLY)
        self.host.configure(new, engine_changed=engine_changed)
        if engine_changed and new.preload_model and self.messenger.loop is not None:
            self.host.preload()

    # --- life cycle ---

    async def on_initialized(self) -> None:
        self.messenger.bind_loop()
        self._log_handler = install_client_logging(self.messenger, self.settings.log_level)
        await settings.reload(self)
        for folder in self.folders():  # read the tests now, so that the first solve does not wait for it
            asyncio.get_running_loop().run_in_executor(self.host.executor, self.test_index, folder.resolve())
        if self.settings.preload_model:
            self.host.preload()
        else:
            self.messenger.log(f"model {self.settings.model} loads on the first solve (preload_model is off)")

    def on_shutdown(self) -> None:
        for record in self.book.active():
            record.request_cancel()
        self._stop_indexes()
        self.host.close()

    def _stop_indexes(self) -> None:
        with self._indexes_lock:
            indexes, self._indexes = list(self._indexes.values()), {}
        for index in indexes:
            index.stop()


def _register_lifecycle(ls: AtlasLanguageServer) -> None:
    @ls.feature(types.INITIALIZE)
    def on_initialize(ls: AtlasLanguageServer, params: types.InitializeParams):
        ls.init_options, ls.init_problems = settings.InitializationOptions.parse(params.initialization_options)

    @ls.feature(types.INITIALIZED)
    async def on_initialized(ls: AtlasLanguageServer, params: types.InitializedParams):
        await ls.on_initialized()

    @ls.feature(types.SHUTDOWN)
    def on_shutdown(ls: AtlasLanguageServer, params: None):
        ls.on_shutdown()

    @ls.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def on_did_close(ls: AtlasLanguageServer, params: types.DidCloseTextDocumentParams):
        ls.sites.forget(params.text_document.uri)


def create_server(solver_factory: SolverFactory | None = None) -> AtlasLanguageServer:
    """The server with every feature registered. `solver_factory(settings)` builds the engine's Solver; the
    default is `engine.pipeline.Solver` on the configured model."""
    ls = AtlasLanguageServer(solver_factory)
    _register_lifecycle(ls)
    for feature in (settings, actions, solving, hover):
        feature.register(ls)
    return ls


def serve_stdio() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("pygls").setLevel(logging.WARNING)  # it logs every message it sends at INFO
    create_server().start_io()
