"""The functions of each open Python document, parsed once per document version.

Code actions are asked for on every cursor move; parsing is the only real cost, so it happens once per version
and every later question about that version is a scan of a short list.
"""

from __future__ import annotations

from pathlib import Path

from pygls.uris import to_fs_path
from pygls.workspace import TextDocument

from engine.workspace import FunctionSite, function_sites

_PYTHON_SUFFIXES = (".py", ".pyw")


def is_python(doc: TextDocument) -> bool:
    """A Python source file (not a `.pyi` typing stub, where every body is `...` on purpose)."""
    if doc.uri.endswith(".pyi"):
        return False
    if doc.language_id:
        return doc.language_id == "python"
    return doc.uri.endswith(_PYTHON_SUFFIXES)


def document_path(uri: str) -> Path | None:
    path = to_fs_path(uri)
    return Path(path) if path else None


class SiteCache:
    """uri -> (version, sites); `sites` is None when that version does not parse."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[object, list[FunctionSite] | None]] = {}

    def sites(self, doc: TextDocument) -> list[FunctionSite] | None:
        source = doc.source
        # Documents read from disk (not opened) have no version: their text is the key.
        key = doc.version if doc.version is not None else hash(source)
        cached = self._entries.get(doc.uri)
        if cached is not None and cached[0] == key:
            return cached[1]
        sites = function_sites(source)
        self._entries[doc.uri] = (key, sites)
        return sites

    def forget(self, uri: str) -> None:
        self._entries.pop(uri, None)
