"""Isolation levels: which ones work on this machine, the strongest, and what each one stops.

"bwrap"      bubblewrap around the fork server: read-only filesystem, private /tmp, no network, own pid namespace;
             per test a further pid+mount namespace (fresh /proc, pid cap, read-only workspace copy).
"namespaces" the fork server enters its own user+network namespace (no network: not even loopback is up); per test
             a pid+mount namespace as above. The filesystem is the real one, with the user's permissions.
"rlimits"    process group, rlimits, scrubbed environment, temporary working directory, no capabilities; nothing
             else.

At every level each test runs in a new session with rlimits (CPU, address space, file size, open files, and
processes where RLIMIT_NPROC applies), under a wall clock, with its output capped, under a fork server that counts the
test's processes every 20 ms and kills them all past `Limits.processes`, and that kills every process the test left
behind. Probing starts a server of the level (kept warm for later use), once per process.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

from sandbox.server import IsolationUnavailable, pool
from sandbox.types import ISOLATION_LEVELS


@dataclass(frozen=True)
class LevelStatus:
    level: str
    available: bool
    reason: str = ""  # why not, when not
    features: dict = field(default_factory=dict)  # what the server found it could do (see _child.ForkServer.probe)


_status: dict[str, LevelStatus] = {}
_lock = threading.Lock()


def probe(level: str) -> LevelStatus:
    """Whether `level` works here (cached). The server started to find out stays in the pool."""
    if level not in ISOLATION_LEVELS:
        raise ValueError(f"unknown isolation level {level!r}; expected one of {', '.join(ISOLATION_LEVELS)}")
    with _lock:
        if level in _status:
            return _status[level]
        levels_pool = pool(level)
        try:
            server = levels_pool.acquire()
        except IsolationUnavailable as exc:
            status = LevelStatus(level, False, str(exc))
        else:
            status = LevelStatus(level, True, features=dict(server.features))
            levels_pool.release(server)
        _status[level] = status
        return status


def isolation_level() -> str:
    """The strongest level available here: "bwrap" | "namespaces" | "rlimits"."""
    for level in ISOLATION_LEVELS:
        if probe(level).available:
            return level
    raise IsolationUnavailable("no sandbox level works here: " + "; ".join(probe(lv).reason
                                                                           for lv in ISOLATION_LEVELS))


def resolve(isolation: str | None) -> str:
    """The level to use: the one asked for (a clear error when it is not available here), else the strongest."""
    if isolation is None:
        return isolation_level()
    status = probe(isolation)
    if not status.available:
        raise IsolationUnavailable(f"isolation level {isolation!r} was asked for but is not available here: "
                                   f"{status.reason}")
    return isolation


# What a hostile candidate may try, and whether a level stops it (README "Sandbox and isolation" explains each).
THREATS = {
    "loop": "an infinite loop (wall clock, CPU rlimit)",
    "memory": "a memory bomb (address-space rlimit)",
    "output": "flooding stdout/stderr (capped pipes)",
    "recursion": "unbounded recursion (crash of its own process)",
    "fork-bomb": "a fork bomb (process watchdog; RLIMIT_NPROC where it binds; pid_max of the test's pid namespace)",
    "exit": "sys.exit(0)/os._exit(0) before the tests (verdicts need the harness's own results)",
    "fake-output": "printing a fake 'all passed' (stdout is never the verdict channel for non-stdin tests)",
    "eq-override": "__eq__ overrides and patched builtins (comparison in the parent on serialised plain data)",
    "background": "processes left behind (process group, pid namespace, subreaper sweep)",
    "kill-parent": "os.kill(os.getppid()) (the parent is a disposable per-test supervisor)",
    "signal-others": "signalling other processes of the same user, e.g. the editor (pid namespace)",
    "environ-secret": "reading the parent's secrets (scrubbed environment; other processes' /proc hidden)",
    "network": "connecting to a local listener (empty network namespace)",
    "write-outside": "writing files outside its temporary directory (read-only filesystem view)",
    "workspace-copy": "deleting or editing the copied workspace to skip tests (read-only bind of the copy)",
}


def protections(level: str) -> dict[str, bool]:
    """For each threat in THREATS, whether `level` stops it on this machine (from what its server found)."""
    status = probe(level)
    features = status.features
    stopped = {name: status.available for name in THREATS}
    private_proc = bool(features.get("proc"))
    stopped.update({
        "network": status.available and level != "rlimits",
        "write-outside": status.available and level == "bwrap",
        # bwrap's own /proc shows only the sandbox; elsewhere a fresh /proc in the test's pid namespace hides the
        # parent, or else the capabilities the test dropped do: a process with fewer capabilities may not read the
        # environment of one with more (which is what a parent running as root holds, not an ordinary user's)
        "environ-secret": status.available and (level == "bwrap" or private_proc or os.geteuid() == 0),
        "workspace-copy": status.available and bool(features.get("pidns")),
        "signal-others": status.available and (level == "bwrap" or bool(features.get("pidns"))),
    })
    return stopped


def describe() -> dict:
    """For `atlas-ls doctor` and the sandbox command: the level in force and what every level stops here."""
    levels = {}
    for level in ISOLATION_LEVELS:
        status = probe(level)
        levels[level] = {"available": status.available, "reason": status.reason,
                         "stops": sorted(k for k, v in protections(level).items() if v) if status.available else [],
                         "does_not_stop": sorted(k for k, v in protections(level).items() if not v)
                         if status.available else []}
    return {"level": isolation_level(), "levels": levels, "threats": THREATS}
