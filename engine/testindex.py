"""Which pytest tests of a workspace reference which functions, kept fresh by watchdog.

Each test file (`test_*.py`, `*_test.py`, or any module under a `tests`/`test` folder) is parsed once with `ast`
into what it imports and, per test, which names, dotted names and attributes it uses. Asking for the tests of a
function is then a lookup: a test references `pkg.mod.func` when it uses a name bound by `from pkg.mod import func`,
an attribute `m.func` of `import pkg.mod as m`, a star import of the module, or calls `func` where the test file
binds that name to nothing else. A method `Cls.meth` needs the class bound that way and `.meth` used in the test.

The index watches the workspace with watchdog and re-reads changed test files after a quiet period (debounce), so a
burst of saves costs one refresh. Without watching (a headless run) `scan()` reads everything once.
"""

from __future__ import annotations

import ast
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from watchdog.events import FileSystemEventHandler

log = logging.getLogger(__name__)

MAX_SCANNED_FILES = 50_000
TEST_DIRS = frozenset({"tests", "test"})
SKIP_DIRS = frozenset({".git", ".hg", ".svn", ".venv", "venv", "env", ".env", "node_modules", "__pycache__",
                       "build", "dist", ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache",
                       "site-packages", ".eggs", ".idea", ".vscode"})


def is_test_file(path: Path, workspace: Path) -> bool:
    """Named like a pytest test module, or a module inside a `tests` folder (conftest and __init__ aside)."""
    if path.suffix != ".py":
        return False
    try:
        parts = path.relative_to(workspace).parts
    except ValueError:
        return False
    if any(p in SKIP_DIRS or (p.startswith(".") and p not in (".",)) for p in parts[:-1]):
        return False
    name = path.name
    if name in ("conftest.py", "__init__.py"):
        return False
    return name.startswith("test_") or name.endswith("_test.py") or any(p in TEST_DIRS for p in parts[:-1])


def module_names(path: Path, workspace: Path) -> frozenset[str]:
    """Dotted names a module may be imported by: every suffix of its path (`src/pkg/mod.py` -> `src.pkg.mod`,
    `pkg.mod`, `mod`), since the import root (src layout, rootdir, sys.path tweaks) is not known for sure."""
    parts = list(path.relative_to(workspace).with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    return frozenset(".".join(parts[i:]) for i in range(len(parts)))


# --- what one test file references ---


@dataclass(frozen=True)
class References:
    names: frozenset[str] = frozenset()  # bare names read
    dotted: frozenset[str] = frozenset()  # attribute chains on names: "m.func", "pkg.mod.Cls"
    attrs: frozenset[str] = frozenset()  # attribute names used anywhere: "push"


@dataclass(frozen=True)
class TestRefs:
    __test__ = False

    node_id: str
    refs: References


@dataclass(frozen=True)
class TestFileInfo:
    __test__ = False

    rel: str  # posix path relative to the workspace
    from_imports: dict[str, tuple[str, str]] = field(default_factory=dict)  # local -> (module, name)
    module_aliases: dict[str, str] = field(default_factory=dict)  # local dotted name -> module
    star_modules: tuple[str, ...] = ()
    local_names: frozenset[str] = frozenset()  # defined at module level in the test file
    tests: tuple[TestRefs, ...] = ()
    module_refs: References = References()  # fixtures, helpers, module-level code


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _references(nodes: Iterable[ast.AST]) -> References:
    names, dotted, attrs = set(), set(), set()
    for root in nodes:
        for node in ast.walk(root):
            if isinstance(node, ast.Name):
                names.add(node.id)
            elif isinstance(node, ast.Attribute):
                attrs.add(node.attr)
                chain = _dotted(node)
                if chain:
                    dotted.add(chain)
    return References(frozenset(names), frozenset(dotted), frozenset(attrs))


def _resolve_relative(rel_parts: tuple[str, ...], module: str | None, level: int) -> str:
    """`from ..pkg import x` in tests/unit/test_a.py -> `tests.pkg`."""
    if level == 0:
        return module or ""
    package = list(rel_parts[:-1])
    base = package[: len(package) - (level - 1)] if level > 1 else package
    return ".".join([*base, module] if module else base)


def _is_test_function(node: ast.stmt) -> bool:
    return isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test")


def _is_test_class(node: ast.stmt) -> bool:
    return isinstance(node, ast.ClassDef) and node.name.startswith("Test")


def parse_test_file(path: Path, workspace: Path) -> TestFileInfo | None:
    """The references of one test file; None when it cannot be read or parsed."""
    try:
        tree = ast.parse(path.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return None
    rel_path = path.relative_to(workspace)
    rel = rel_path.as_posix()
    from_imports: dict[str, tuple[str, str]] = {}
    aliases: dict[str, str] = {}
    stars: list[str] = []
    local: set[str] = set()
    tests: list[TestRefs] = []
    other: list[ast.AST] = []
    for node in ast.walk(tree):  # imports anywhere (inside tests too) bind names for the file
        if isinstance(node, ast.ImportFrom):
            module = _resolve_relative(rel_path.with_suffix("").parts, node.module, node.level)
            for alias in node.names:
                if alias.name == "*":
                    stars.append(module)
                else:
                    from_imports[alias.asname or alias.name] = (module, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                aliases[alias.asname or alias.name] = alias.name
    for node in tree.body:
        if _is_test_function(node):
            tests.append(TestRefs(f"{rel}::{node.name}", _references([node])))
        elif _is_test_class(node):
            class_refs = [n for n in node.body if not _is_test_function(n)] + list(node.decorator_list)
            for method in node.body:
                if _is_test_function(method):
                    tests.append(TestRefs(f"{rel}::{node.name}::{method.name}", _references([method, *class_refs])))
        elif not isinstance(node, (ast.Import, ast.ImportFrom)):
            other.append(node)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            local.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            local.update(t.id for t in targets if isinstance(t, ast.Name))
    return TestFileInfo(rel=rel, from_imports=from_imports, module_aliases=aliases, star_modules=tuple(stars),
                        local_names=frozenset(local), tests=tuple(tests), module_refs=_references(other))


# --- matching a function against a test file ---


@dataclass(frozen=True)
class Target:
    """What a test must use to reference the function: `top` (a module-level function or class) imported from
    one of `modules`, and for a method, the attribute `member`."""

    modules: frozenset[str]
    top: str
    member: str | None = None


def _bindings(info: TestFileInfo, target: Target) -> tuple[set[str], set[str]]:
    """(local names bound to `top`, dotted prefixes that reach `top` as an attribute)."""
    names = {local for local, (module, name) in info.from_imports.items()
             if name == target.top and module in target.modules}
    prefixes = {local for local, module in info.module_aliases.items() if module in target.modules}
    prefixes |= {local for local, (module, name) in info.from_imports.items()
                 if f"{module}.{name}" in target.modules}
    if any(module in target.modules for module in info.star_modules):
        names.add(target.top)
    bound_elsewhere = target.top in info.from_imports or target.top in info.local_names
    if not bound_elsewhere and not names:
        names.add(target.top)  # called by its bare name, bound by conftest, a star import or sys.path set-up
    return names, prefixes


def _uses(refs: References, names: set[str], prefixes: set[str], target: Target) -> bool:
    reached = bool(names & refs.names) or any(f"{p}.{target.top}" in refs.dotted for p in prefixes)
    return reached and (target.member is None or target.member in refs.attrs)


def matching_tests(info: TestFileInfo, target: Target) -> list[str]:
    """Node ids of the tests in this file that reference the target; the whole file when only its module-level
    code (a fixture, a helper) does."""
    names, prefixes = _bindings(info, target)
    found = [t.node_id for t in info.tests if _uses(t.refs, names, prefixes, target)]
    if not found and info.tests and _uses(info.module_refs, names, prefixes, target):
        explicitly_imported = bool(names - {target.top}) or bool(prefixes) or target.top in info.from_imports
        if explicitly_imported:
            return [info.rel]
    return found


def target_for(file: Path, workspace: Path, qualname: str, source: str | None = None) -> Target:
    """A method's tests are found through its class; a nested function's through the function it lives in."""
    from engine.workspace import find_function

    parts = qualname.split(".")
    site = find_function(source, qualname) if source is not None else None
    is_method = site.in_class is not None if site is not None else len(parts) > 1 and parts[0][:1].isupper()
    member = parts[-1] if is_method and len(parts) > 1 else None
    return Target(module_names(file, workspace), parts[0], member)


# --- the index ---


class TestIndex:
    """Parsed test files of one workspace, refreshed on change (debounced) when watching."""

    __test__ = False

    def __init__(self, workspace: Path, *, debounce_s: float = 0.3,
                 on_refresh: Callable[[set[Path]], None] | None = None) -> None:
        self.workspace = Path(workspace).resolve()
        self.debounce_s = debounce_s
        self.on_refresh = on_refresh
        self.refresh_count = 0  # how many debounced refreshes ran (not how many events arrived)
        self._files: dict[Path, TestFileInfo] = {}
        self._lock = threading.Lock()
        self._pending: set[Path] = set()
        self._timer: threading.Timer | None = None
        self._observer = None
        self._scanned = False

    # reading

    def scan(self) -> None:
        """Read every test file of the workspace (once; later changes come from the watcher or `refresh`)."""
        found = {}
        for path in self._walk():
            info = parse_test_file(path, self.workspace)
            if info is not None:
                found[path] = info
        with self._lock:
            self._files = found
            self._scanned = True

    def _walk(self) -> Iterable[Path]:
        """Test files under the workspace; at most MAX_SCANNED_FILES files are looked at (a file opened outside
        any project may have the home folder as its workspace)."""
        seen = 0
        for root, dirs, files in os.walk(self.workspace):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".")]
            seen += len(files)
            if seen > MAX_SCANNED_FILES:
                log.warning("%s holds more than %d files: the test index stops there", self.workspace,
                            MAX_SCANNED_FILES)
                return
            for name in files:
                path = Path(root) / name
                if is_test_file(path, self.workspace):
                    yield path

    def files(self) -> dict[Path, TestFileInfo]:
        if not self._scanned:
            self.scan()
        with self._lock:
            return dict(self._files)

    def tests_for(self, file: Path, qualname: str, *, source: str | None = None) -> list[str]:
        """Node ids (relative to the workspace) of the tests that reference the function, sorted."""
        file = Path(file).resolve()
        if is_test_file(file, self.workspace):
            return []
        try:
            target = target_for(file, self.workspace, qualname, source)
        except ValueError:  # the file is outside the workspace
            return []
        found: list[str] = []
        for path, info in sorted(self.files().items()):
            if path != file:
                found.extend(matching_tests(info, target))
        return found

    # refreshing

    def refresh(self, paths: Iterable[Path]) -> None:
        """Re-read these paths now: parse test files that exist, forget the rest (and anything under a deleted
        folder)."""
        changed = set()
        with self._lock:
            for path in paths:
                path = Path(path)
                if path.is_file() and is_test_file(path, self.workspace):
                    info = parse_test_file(path, self.workspace)
                    if info is not None:
                        self._files[path] = info
                    else:
                        self._files.pop(path, None)  # mid-edit syntax error: it references nothing for now
                    changed.add(path)
                elif not path.exists():
                    gone = [p for p in self._files if p == path or path in p.parents]
                    for p in gone:
                        del self._files[p]
                    changed.update(gone)
                elif path.is_dir():
                    for p in Path(path).rglob("*.py"):
                        if is_test_file(p, self.workspace) and (info := parse_test_file(p, self.workspace)):
                            self._files[p] = info
                            changed.add(p)
            self.refresh_count += 1
        log.debug("test index refreshed: %d paths", len(changed))
        if self.on_refresh is not None:
            self.on_refresh(changed)

    def notice(self, path: Path) -> None:
        """A path changed: refresh it after `debounce_s` without further changes."""
        with self._lock:
            self._pending.add(Path(path))
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self.debounce_s, self._flush)
            self._timer.daemon = True
            self._timer.start()

    def _flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, set()
            self._timer = None
        if pending:
            self.refresh(pending)

    # watching

    def start_watching(self) -> bool:
        """Watch the workspace with watchdog; False (and a log line) when it cannot."""
        if self._observer is not None:
            return True
        from watchdog.observers import Observer

        if not self._scanned:
            self.scan()
        observer = Observer()
        handler = _Handler(self)
        try:
            # The root alone, then each folder worth watching: a recursive watch on the root would also take an
            # inotify watch per folder of .venv or node_modules.
            observer.schedule(handler, str(self.workspace), recursive=False)
            for child in self.workspace.iterdir():
                if child.is_dir() and child.name not in SKIP_DIRS and not child.name.startswith("."):
                    observer.schedule(handler, str(child), recursive=True)
            observer.daemon = True
            observer.start()
        except OSError as exc:
            log.warning("cannot watch %s (%s); the test index is read once", self.workspace, exc)
            return False
        self._observer = observer
        self._handler = handler
        return True

    def watch_folder(self, path: Path) -> None:
        """A folder appeared at the workspace root: watch it too."""
        if self._observer is not None and path.parent == self.workspace and path.name not in SKIP_DIRS:
            try:
                self._observer.schedule(self._handler, str(path), recursive=True)
            except OSError as exc:
                log.warning("cannot watch %s: %s", path, exc)

    def stop(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None


class _Handler(FileSystemEventHandler):
    """Forwards watchdog events on Python files and folders to the index."""

    def __init__(self, index: TestIndex) -> None:
        super().__init__()
        self.index = index

    def on_any_event(self, event) -> None:
        if event.event_type in ("opened", "closed", "closed_no_write"):
            return
        paths = [Path(os.fsdecode(event.src_path))]
        if getattr(event, "dest_path", ""):
            paths.append(Path(os.fsdecode(event.dest_path)))
        for path in paths:
            if event.is_directory:
                if event.event_type == "created":
                    self.index.watch_folder(path)
                if event.event_type in ("created", "deleted", "moved"):
                    self.index.notice(path)
            elif path.suffix == ".py":
                self.index.notice(path)
