"""The atlas-ls language server (pygls 2.x)."""

from __future__ import annotations

import logging

from pygls.lsp.server import LanguageServer

from atlas_ls import __version__

log = logging.getLogger(__name__)


class AtlasLanguageServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__(name="atlas-ls", version=__version__)


def create_server() -> AtlasLanguageServer:
    return AtlasLanguageServer()


def serve_stdio() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    create_server().start_io()
