"""What the server tells the user: the client's log for everything (model loading, Lens state, errors), a visible
message once for failures the user must act on (no model, bad config), and the `atlas/status` notification.

Solves run on worker threads; LSP writes must happen on the event loop's thread, so every send goes through
`call_soon_threadsafe` when it comes from elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING, Any, Callable

from lsprotocol import types

from atlas_ls.protocol import STATUS_NOTIFICATION

if TYPE_CHECKING:
    from atlas_ls.server import AtlasLanguageServer

LEVELS = {"error": types.MessageType.Error, "warning": types.MessageType.Warning, "info": types.MessageType.Info,
          "debug": types.MessageType.Log}
# Loggers whose records also reach the client's log (pygls's own stay on stderr: they echo every message).
FORWARDED_LOGGERS = ("atlas_ls", "engine", "lens", "sandbox", "bench")


class Messenger:
    def __init__(self, ls: AtlasLanguageServer) -> None:
        self.ls = ls
        self.loop: asyncio.AbstractEventLoop | None = None
        self._shown: set[str] = set()
        self._lock = threading.Lock()

    def bind_loop(self) -> None:
        """Remember the event loop (called from a handler, on the loop's thread)."""
        self.loop = asyncio.get_running_loop()

    def _on_loop(self, fn: Callable[[], Any]) -> None:
        loop = self.loop
        if loop is None or not loop.is_running():
            fn()
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            fn()
        else:
            loop.call_soon_threadsafe(fn)

    def log(self, text: str, level: str = "info") -> None:
        params = types.LogMessageParams(type=LEVELS[level], message=text)
        self._on_loop(lambda: self.ls.window_log_message(params))

    def show(self, text: str, level: str = "info") -> None:
        params = types.ShowMessageParams(type=LEVELS[level], message=text)
        self._on_loop(lambda: self.ls.window_show_message(params))

    def show_once(self, text: str, level: str = "warning", *, key: str | None = None) -> bool:
        """Show a message the first time only (it also goes to the log every time). True when it was shown."""
        self.log(text, level)
        with self._lock:
            key = key or text
            if key in self._shown:
                return False
            self._shown.add(key)
        self.show(text, level)
        return True

    def status(self, payload: dict[str, Any]) -> None:
        self._on_loop(lambda: self.ls.protocol.notify(STATUS_NOTIFICATION, payload))


class ClientLogHandler(logging.Handler):
    """Forwards log records of the engine and the server to `window/logMessage`."""

    def __init__(self, messenger: Messenger) -> None:
        super().__init__()
        self.messenger = messenger

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = "error" if record.levelno >= logging.ERROR else "warning" if record.levelno >= logging.WARNING \
                else "info" if record.levelno >= logging.INFO else "debug"
            self.messenger.log(f"{record.name}: {record.getMessage()}", level)
        except Exception:  # a log line must never break the server
            self.handleError(record)


def install_client_logging(messenger: Messenger, level: str) -> ClientLogHandler:
    handler = ClientLogHandler(messenger)
    set_log_level(handler, level)
    for name in FORWARDED_LOGGERS:
        logging.getLogger(name).addHandler(handler)
    return handler


def set_log_level(handler: logging.Handler, level: str) -> None:
    python_level = getattr(logging, level.upper(), logging.INFO)
    handler.setLevel(python_level)
    for name in FORWARDED_LOGGERS:
        logging.getLogger(name).setLevel(python_level)
