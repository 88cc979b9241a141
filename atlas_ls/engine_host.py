"""The engine behind the server: one Solver (and with it one model on its worker thread), created on first need or
at start-up, replaced when a setting it depends on changes.

Creating it loads the model, which takes seconds: that happens on a thread, and every solve that arrives meanwhile
waits for the same load. A failure (no model, a bad GGUF) is shown to the user once with what to do, and each
later solve reports it again in the log until the settings change.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, Protocol

from engine.config import Settings

if TYPE_CHECKING:
    from atlas_ls.messages import Messenger
    from engine.task import SolveResult, Task

log = logging.getLogger(__name__)


class SolverLike(Protocol):
    def solve(self, task: Task, *, progress=None, cancel=None, k=None) -> SolveResult: ...


SolverFactory = Callable[[Settings], SolverLike]


class EngineUnavailable(RuntimeError):
    """The engine could not be created; the message says what to do."""


def default_solver_factory(settings: Settings) -> SolverLike:
    """The engine's Solver, with its model (on the Solver's ModelWorker thread) and Lens loaded now, so that a
    model that cannot load fails here, at start-up, with its ModelError."""
    from engine.paths import database_path
    from engine.pipeline import Solver

    solver = Solver(settings, db_path=database_path())
    try:
        solver.warm_up()
    except BaseException:
        solver.close()
        raise
    return solver


class EngineHost:
    def __init__(self, messenger: Messenger, factory: SolverFactory | None = None) -> None:
        self.messenger = messenger
        self.factory = factory or default_solver_factory
        self.settings = Settings()
        self.state = "unloaded"  # unloaded | loading | ready | error
        self.error = ""
        self.lens = "not loaded yet"
        self.solving = 0
        self._solver: SolverLike | None = None
        self._loading: asyncio.Future | None = None
        # One thread for loading and one per concurrent solve; the model itself serialises on its own worker.
        self.executor = ThreadPoolExecutor(max_workers=3, thread_name_prefix="atlas-engine")

    # --- status ---

    def status(self, message: str = "") -> dict[str, Any]:
        return {"model": self.settings.model, "modelState": self.state, "lens": self.lens,
                "solving": self.solving, "message": message or self.error}

    def publish(self, message: str = "") -> None:
        self.messenger.status(self.status(message))

    async def describe_lens(self, solver: SolverLike) -> None:
        """Read the Lens state (a database query, maybe a checkpoint load: on a thread) and log it if it changed."""
        describe = getattr(solver, "lens_state", None)
        if not callable(describe):
            return
        try:
            lens = str(await asyncio.get_running_loop().run_in_executor(self.executor, describe))
        except Exception as exc:  # a status line must not fail a solve
            lens = f"unknown ({type(exc).__name__}: {exc})"
        if lens != self.lens:
            self.lens = lens
            self.messenger.log(f"Lens: {lens}")
            self.publish()

    def model_name(self) -> str:
        """The configured model, with the loaded file's own name and quantization once known."""
        info = getattr(self._solver, "info", None) if self._solver is not None else None
        name = getattr(info, "name", "")
        return f"{self.settings.model} ({name}, {info.quantization})" if name else self.settings.model

    # --- life cycle ---

    def configure(self, settings: Settings, *, engine_changed: bool) -> None:
        self.settings = settings
        if engine_changed and (self._solver is not None or self.state == "error"):
            self.messenger.log("engine settings changed: the model is reloaded on next use")
            self._drop()
        self.publish()

    def _drop(self) -> None:
        solver, self._solver = self._solver, None
        self._loading = None
        self.state, self.error = "unloaded", ""
        close = getattr(solver, "close", None)
        if callable(close):
            self.executor.submit(close)

    async def get(self) -> SolverLike:
        """The solver, loading it first if needed (on a thread)."""
        if self._solver is not None:
            return self._solver
        if self.state == "error":
            raise EngineUnavailable(self.error)
        if self._loading is None:
            self._loading = asyncio.ensure_future(self._load(self.settings))
        return await asyncio.shield(self._loading)

    async def _load(self, settings: Settings) -> SolverLike:
        self.state = "loading"
        self.publish(f"loading {settings.model}")
        self.messenger.log(f"loading model {settings.model} ...")
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        try:
            solver = await loop.run_in_executor(self.executor, self.factory, settings)
        except Exception as exc:
            self._loading = None
            self.state, self.error = "error", _failure_text(exc)
            self.messenger.show_once(f"ATLAS: {self.error}", "error", key=f"engine:{self.error}")
            self.publish()
            raise EngineUnavailable(self.error) from exc
        if settings is not self.settings:  # settings changed while loading: this one is stale
            self._loading = None
            close = getattr(solver, "close", None)
            if callable(close):
                self.executor.submit(close)
            return await self.get()
        self._solver, self.state, self.error = solver, "ready", ""
        self.messenger.log(f"model {settings.model} ready in {time.monotonic() - started:.1f} s")
        self.publish()
        await self.describe_lens(solver)
        return solver

    def preload(self) -> None:
        """Start loading in the background; failures are reported by `_load`."""
        if self._solver is None and self._loading is None and self.state != "error":
            self._loading = asyncio.ensure_future(self._load(self.settings))
            self._loading.add_done_callback(lambda f: f.cancelled() or f.exception())

    def close(self) -> None:
        self._drop()
        self.executor.shutdown(wait=False, cancel_futures=True)


def _failure_text(exc: Exception) -> str:
    """The exception's own words when it is one of ours (they say what to do), else its type and a hint."""
    name = type(exc).__name__
    if name == "ModelError":
        return (f"the model cannot be loaded: {exc}. Set atlas.model (editor settings, pyproject.toml [tool.atlas] "
                f"or ATLAS_MODEL) to a profile name or a GGUF file, then restart the server.")
    if name == "EngineUnavailable":
        return str(exc)
    if isinstance(exc, ImportError):
        return (f"the engine cannot start: {exc}. Reinstall atlas-ls with its dependencies "
                "(pip install -e '.[dev]' in a checkout).")
    return f"the engine failed to start ({name}: {exc}); see the ATLAS output for details"
