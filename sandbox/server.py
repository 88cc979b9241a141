"""The parent's handle on fork servers (sandbox/_child.py): start one at an isolation level, send it tests, cancel
one, and keep a pool of warm servers per level.

A server is a fresh interpreter (`python -I -B`) started with a scrubbed environment in its own session, with its
own scratch directory (`base`) where the parent puts each test's working directory. At the "bwrap" level the server
runs inside bubblewrap: a read-only view of the filesystem, private /tmp, no network, its own pid namespace, and
only `base` writable.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import json
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CHILD = Path(__file__).with_name("_child.py")
BOOT = ("import importlib.util, sys; s = importlib.util.spec_from_file_location('atlas_sandbox_child', sys.argv[1]); "
        "m = importlib.util.module_from_spec(s); sys.modules[s.name] = m; s.loader.exec_module(m); "
        "sys.exit(m.main(sys.argv[2:]))")
START_TIMEOUT_S = 30.0
RESPONSE_GRACE_S = 10.0  # beyond the test's own timeout, before the parent gives up on a server


class IsolationUnavailable(RuntimeError):
    """The isolation level asked for cannot be set up here; the message says why."""


class ServerDied(RuntimeError):
    """A fork server stopped answering (a candidate may have killed it); the test it ran counts as a crash."""


def bwrap_prefix(base: Path, python: str) -> list[str]:
    """bubblewrap: every namespace, a read-only root, fresh /dev, /proc and /tmp, and only `base` writable."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise IsolationUnavailable("bwrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)")
    return [bwrap, "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session",
            "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
            *readonly_binds_under_tmp(python), "--bind", str(base), str(base), "--chdir", str(base), "--"]


def readonly_binds_under_tmp(python: str) -> list[str]:
    """The fresh /tmp would hide an interpreter or a checkout that lives under /tmp (a CI clone, a throwaway
    venv): bind those back, read-only, so the server can start there too."""
    venv_root = Path(os.path.abspath(python)).parent.parent  # pyvenv.cfg and site-packages
    needed = {p.resolve() for p in (venv_root, Path(python).resolve().parent.parent, CHILD.parent)}
    under_tmp = sorted((p for p in needed if p.is_relative_to("/tmp")), key=lambda p: len(p.parts))
    kept: list[Path] = []
    for path in under_tmp:  # a folder already bound brings its subfolders along
        if not any(path.is_relative_to(outer) for outer in kept):
            kept.append(path)
    return [arg for path in kept for arg in ("--ro-bind", str(path), str(path))]


def server_env(base: Path) -> dict[str, str]:
    """Nothing of the parent's environment: no tokens, keys or paths leak into a test."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": str(base),
            "TMPDIR": str(base), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1"}


def remove_tree(path: Path) -> None:
    """Remove a test's directory even where the candidate took permissions away."""
    def retry(func, target, _exc):
        try:
            os.chmod(os.path.dirname(target), 0o700)
            os.chmod(target, 0o700)
        except OSError:
            pass
        try:
            func(target)
        except OSError:
            pass
    shutil.rmtree(path, onerror=retry)


class Server:
    """One fork server: tests go in one at a time; `cancel` (from any thread) stops the test in flight."""

    def __init__(self, level: str, *, once: bool = False, python: str | None = None, features: dict | None = None):
        self.level = level
        self.base = Path(tempfile.mkdtemp(prefix="atlas-sandbox-"))
        os.chmod(self.base, 0o755)
        self.log = tempfile.TemporaryFile()
        self._write_lock = threading.Lock()
        self._buffer = b""
        python = python or sys.executable
        argv = [python, "-I", "-B", "-c", BOOT, str(CHILD), "--level", level,
                "--outer-uid", str(os.geteuid()), "--outer-gid", str(os.getegid()), "--parent", str(os.getpid()),
                "--once", "1" if once else "0"] + (["--features", json.dumps(features)] if features else [])
        try:
            if level == "bwrap":
                argv = bwrap_prefix(self.base, python) + argv
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                         env=server_env(self.base), cwd=self.base, start_new_session=True)
            ready = self._read(START_TIMEOUT_S)
        except (OSError, IsolationUnavailable, ServerDied) as exc:
            self.close()
            raise IsolationUnavailable(f"the {level!r} sandbox could not start: {exc}") from exc
        if not ready.get("ready"):
            self.close()
            raise IsolationUnavailable(f"the {level!r} sandbox could not start: {ready.get('error')}")
        self.features: dict = ready["features"]

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, request: dict) -> None:
        """Queue one test (the server runs them in the order sent). Raises ServerDied when the server is gone."""
        try:
            self._send(request)
        except (OSError, ValueError) as exc:
            self.close()
            raise ServerDied(f"the sandbox server stopped answering ({exc})") from exc

    def receive(self, request_id, timeout_s: float) -> dict:
        """The response to one sent test (see _child.ForkServer.run), skipping stale ones (of tests cancelled and
        abandoned earlier). Raises ServerDied when the server is gone or silent too long."""
        deadline = time.monotonic() + timeout_s + RESPONSE_GRACE_S
        try:
            while True:
                response = self._read(max(0.0, deadline - time.monotonic()))
                if response.get("id") == request_id:
                    return response
        except (OSError, ValueError, ServerDied) as exc:
            self.close()
            raise ServerDied(f"the sandbox server stopped answering ({exc})") from exc

    def run(self, request: dict, timeout_s: float) -> dict:
        self.send(request)
        return self.receive(request.get("id"), timeout_s)

    def cancel(self, request_id) -> None:
        try:
            self._send({"op": "cancel", "id": request_id})
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        proc = getattr(self, "proc", None)
        if proc is not None and proc.poll() is None:
            try:
                proc.stdin.close()
                proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                proc.wait()
        for stream in (getattr(proc, "stdin", None), getattr(proc, "stdout", None), self.log):
            try:
                stream and stream.close()
            except OSError:
                pass
        remove_tree(self.base)

    def log_tail(self, size: int = 2000) -> str:
        try:
            self.log.seek(0)
            return self.log.read().decode(errors="replace")[-size:]
        except (OSError, ValueError):
            return ""

    def _send(self, message: dict) -> None:
        body = json.dumps(message).encode()
        with self._write_lock:
            self.proc.stdin.write(struct.pack(">I", len(body)) + body)
            self.proc.stdin.flush()

    def _read(self, timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        fd = self.proc.stdout.fileno()
        while True:
            if len(self._buffer) >= 4:
                size = struct.unpack(">I", self._buffer[:4])[0]
                if len(self._buffer) >= 4 + size:
                    body, self._buffer = self._buffer[4:4 + size], self._buffer[4 + size:]
                    return json.loads(body)
            left = deadline - time.monotonic()
            if left <= 0:
                raise ServerDied(f"no answer in {timeout_s:.0f} s")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    raise ServerDied(f"it exited with status {self.proc.wait()} "
                                     f"({self.log_tail(500).strip() or 'no message'})")
                self._buffer += chunk


# Servers die with the thread that started them (PR_SET_PDEATHSIG, bwrap --die-with-parent: both follow the
# parent *thread*), so they are all started by one long-lived thread rather than by short-lived workers.
_spawner = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-spawner")


def start_server(level: str, *, once: bool = False, features: dict | None = None) -> Server:
    return _spawner.submit(Server, level, once=once, features=features).result()


class Pool:
    """Warm servers of one level, shared by the threads of this process."""

    def __init__(self, level: str, keep: int):
        self.level = level
        self.keep = keep
        self._idle: list[Server] = []
        self._lock = threading.Lock()

    def acquire(self) -> Server:
        with self._lock:
            while self._idle:
                server = self._idle.pop()
                if server.alive:
                    return server
                server.close()
        return start_server(self.level)

    def release(self, server: Server) -> None:
        if server.alive:
            with self._lock:
                if len(self._idle) < self.keep:
                    self._idle.append(server)
                    return
        server.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for server in idle:
            server.close()


_pools: dict[str, Pool] = {}
_pools_lock = threading.Lock()


def pool(level: str) -> Pool:
    with _pools_lock:
        if level not in _pools:
            _pools[level] = Pool(level, keep=max(2, os.cpu_count() or 1))
        return _pools[level]


@atexit.register
def close_pools() -> None:
    with _pools_lock:
        pools = list(_pools.values())
    for each in pools:
        each.close()
