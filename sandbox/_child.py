"""The child side of the sandbox: a fork server, the per-test process set-up, and the harness that runs one
candidate against one test.

This file is loaded by path into a fresh interpreter (`python -I -c BOOT`, see sandbox/server.py), inside bubblewrap
at the "bwrap" level; it never imports the rest of the package. Stdlib only.

Processes, per test (F = this fork server, one per worker of the parent P):

    F  (subreaper; in its own user+net namespace at "namespaces", inside bwrap at "bwrap")
    └─ C  supervisor: new session, unshares a pid+mount namespace where it can, reports G's fate to F
       └─ G  the test: pid 1 of that namespace; fresh /proc, read-only binds, rlimits, no capabilities,
             then the harness runs the candidate in this very process.

G writes what the harness observed (a serialised return value, assertion operands, pytest reports) as JSON lines
on fd 3, a pipe only F reads; stdout and stderr go to two more pipes, capped. F enforces the wall clock, watches the
process count, kills everything the test left behind (process group, pid namespace, then every descendant, found
through /proc since F is a child subreaper) and answers P. P grades: expected outputs never enter this process.
"""

from __future__ import annotations

import builtins
import collections
import ctypes
import io
import json
import linecache
import os
import resource
import select
import signal
import struct
import sys
import tempfile
import time
import traceback

LCB_PREAMBLE = (
    # LiveCodeBench's `import_string`, executed before stdin and functional candidates as its grader does
    # (lcb_runner/evaluation/testing_util.py): programs written for it may lean on these names. F runs it once at
    # start-up (PREAMBLE_BUILTINS), so the modules are warm in every forked test.
    "from string import *\nfrom re import *\nfrom datetime import *\nfrom collections import *\n"
    "from heapq import *\nfrom bisect import *\nfrom copy import *\nfrom math import *\nfrom random import *\n"
    "from statistics import *\nfrom itertools import *\nfrom functools import *\nfrom operator import *\n"
    "from io import *\nfrom sys import *\nfrom json import *\nfrom builtins import *\nfrom typing import *\n"
    "import string\nimport re\nimport datetime\nimport collections\nimport heapq\nimport bisect\nimport copy\n"
    "import math\nimport random\nimport statistics\nimport itertools\nimport functools\nimport operator\n"
    "import io\nimport sys\nimport json\nsys.setrecursionlimit(50000)\n"
)

RESULT_FD = 3
RESULT_CAP = 8 << 20  # bytes of result records F keeps from one test
STDERR_TAIL = 4096
WATCH_INTERVAL = 0.02  # seconds between process-count checks
PROCESS_SLACK = 4  # F's own helpers (C, G) on top of Limits.processes

# --- Linux plumbing (ctypes) ---------------------------------------------------------------------------------------

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWIPC = (
    0x00020000, 0x10000000, 0x20000000, 0x40000000, 0x08000000)
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    1, 2, 4, 8, 32, 4096, 16384, 1 << 18)
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_SET_CHILD_SUBREAPER = 1, 38, 36
PR_CAPBSET_DROP, PR_SET_SECUREBITS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 24, 28, 47, 4
SECURE_ALL_BITS_LOCKED = 0x2F  # NOROOT, NO_SETUID_FIXUP, KEEP_CAPS_LOCKED... with their locks

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int) -> None:
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    _check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), None), f"mount {target}")


def prctl(option: int, arg: int = 0) -> int:
    return _libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0),
                       ctypes.c_ulong(0))


def write_file(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def map_ids(pid: str, inside: int, outside_uid: int, outside_gid: int) -> None:
    """Map one uid and gid into a fresh user namespace (the only mapping an unprivileged process may write)."""
    try:
        write_file(f"/proc/{pid}/setgroups", "deny")
    except FileNotFoundError:
        pass
    write_file(f"/proc/{pid}/uid_map", f"{inside} {outside_uid} 1")
    write_file(f"/proc/{pid}/gid_map", f"{inside} {outside_gid} 1")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _last_capability() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as fh:
            return int(fh.read())
    except (OSError, ValueError):
        return 40


def _has_capabilities() -> bool:
    try:
        with open("/proc/self/status") as fh:
            return any(line.startswith("CapEff:") and int(line.split()[1], 16) != 0 for line in fh)
    except (OSError, ValueError):
        return True


LAST_CAPABILITY = _last_capability()


def drop_capabilities(held: bool = True) -> None:
    """No capabilities, none to regain: lock securebits, empty the bounding set, clear ambient, set no_new_privs.
    (`held` False: there is nothing to drop, only no_new_privs to set.)"""
    if held:
        prctl(PR_SET_SECUREBITS, SECURE_ALL_BITS_LOCKED)
        for cap in range(LAST_CAPABILITY + 1):
            prctl(PR_CAPBSET_DROP, cap)
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
        _libc.capset(ctypes.byref(_CapHeader(0x20080522, 0)), ctypes.byref((_CapData * 2)()))
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def mount_flags(path: str) -> int:
    """The flags a remount of `path` must keep (a user namespace may not clear locked ones)."""
    st = os.statvfs(path).f_flag
    flags = 0
    for st_bit, ms_bit in ((1, MS_RDONLY), (2, MS_NOSUID), (4, MS_NODEV), (8, MS_NOEXEC), (1024, MS_NOATIME),
                           (2048, MS_NODIRATIME), (4096, MS_RELATIME)):
        if st & st_bit:
            flags |= ms_bit
    return flags


def bind_readonly(path: str) -> None:
    mount(path, path, None, MS_BIND | MS_REC)
    mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | mount_flags(path))


# --- framing between P and F ---------------------------------------------------------------------------------------

def read_exact(fd: int, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, n - got)
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_message(fd: int) -> dict | None:
    head = read_exact(fd, 4)
    if head is None:
        return None
    body = read_exact(fd, struct.unpack(">I", head)[0])
    return None if body is None else json.loads(body)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_message(fd: int, message: dict) -> None:
    body = json.dumps(message).encode()
    write_all(fd, struct.pack(">I", len(body)) + body)


# --- plain data: what a candidate's values may be sent as ----------------------------------------------------------

class NotPlain(Exception):
    """A value that is not plain data (a custom object, a generator...): it cannot be graded, so it fails."""


def plain(value, depth: int = 0, budget: list | None = None):
    """A JSON-able, tagged copy of `value` built only from builtin types' own methods, so that overridden dunders
    (`__eq__`, `__iter__`, `__str__`...) on subclasses play no part. Lists are JSON arrays; other containers are
    tagged objects: {"t": tuple}, {"s": set}, {"f": frozenset}, {"d": [[k, v], ...]}, {"b": bytes hex},
    {"c": [re, im]}, {"i": big int as hex}. The parent decodes them (sandbox.grading.decode)."""
    budget = [200_000] if budget is None else budget
    budget[0] -= 1
    if budget[0] < 0 or depth > 200:
        raise NotPlain("value too large or too deeply nested")
    if value is None or value is True or value is False:
        return value
    kind = type(value)
    if isinstance(value, int):
        number = int.__int__(value)
        return number if abs(number) < 10 ** 4000 else {"i": hex(number)}
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, (bytes, bytearray)):
        return {"b": bytes(value).hex()}
    if isinstance(value, complex):
        return {"c": [complex.real.__get__(value), complex.imag.__get__(value)]}
    if isinstance(value, list):
        return [plain(item, depth + 1, budget) for item in list.__iter__(value)]
    if isinstance(value, tuple):
        return {"t": [plain(item, depth + 1, budget) for item in tuple.__iter__(value)]}
    if isinstance(value, frozenset):
        return {"f": [plain(item, depth + 1, budget) for item in frozenset.__iter__(value)]}
    if isinstance(value, set):
        return {"s": [plain(item, depth + 1, budget) for item in set.__iter__(value)]}
    if isinstance(value, dict):
        return {"d": [[plain(k, depth + 1, budget), plain(v, depth + 1, budget)] for k, v in dict.items(value)]}
    if (getattr(kind, "__module__", "") or "").split(".")[0] == "numpy" and hasattr(value, "tolist"):
        # numpy scalars and arrays: their Python value (whatever tolist returns is checked again)
        return plain(value.tolist(), depth + 1, budget)
    raise NotPlain(f"a {kind.__name__} object is not plain data")


# --- the harness (runs in G, after the sandbox is set up) ----------------------------------------------------------

def record(message: dict) -> None:
    try:
        write_all(RESULT_FD, (json.dumps(message) + "\n").encode())
    except (OSError, ValueError, TypeError):
        pass  # a closed channel just means no result: the parent grades that as a failure


def record_error(where: str, exc: BaseException) -> None:
    record({"t": "error", "where": where, "type": type(exc).__name__, "msg": str(exc)[:500]})
    try:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001 - the report above is what matters
        pass


def compile_candidate(code: str, filename: str = "<candidate>"):
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    return compile(code, filename, "exec")


def preamble_builtins() -> dict:
    """Builtins plus the names LiveCodeBench's preamble imports, built once in F. Candidates see the preamble's
    names as builtins rather than as globals: copying them into each test's globals would touch (and so copy, after
    the fork) hundreds of pages of F's memory per test."""
    names: dict = {}
    exec(LCB_PREAMBLE.replace("sys.setrecursionlimit(50000)\n", ""), names)
    return {**builtins.__dict__, **{k: v for k, v in names.items() if k != "__builtins__"}}


PREAMBLE_BUILTINS = preamble_builtins()


def fresh_globals(name: str, preamble: bool = False) -> dict:
    if preamble:
        sys.setrecursionlimit(50000)  # the preamble's one side effect
        # `from sys import *` bound F's streams: the test's own are the ones reopened on fds 0-2
        PREAMBLE_BUILTINS.update(stdin=sys.stdin, stdout=sys.stdout, stderr=sys.stderr)
    return {"__name__": name, "__builtins__": PREAMBLE_BUILTINS if preamble else builtins, "__doc__": None}


def finish(code: int = 0) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001
            pass
    os._exit(code)


def harness_stdin(req: dict) -> None:
    """A program reading stdin: run as __main__ after LiveCodeBench's preamble; exits (any code) end it normally,
    as LiveCodeBench's grader swallows SystemExit."""
    namespace = fresh_globals("__main__", preamble=True)
    try:
        exec(compile_candidate(req["code"]), namespace)
    except SystemExit:
        pass
    except BaseException as exc:  # noqa: BLE001
        record_error("candidate", exc)
        finish(1)
    sys.stdout.flush()
    record({"t": "done"})
    finish(0)


def find_entry(namespace: dict, entry: str):
    solution = namespace.get("Solution")
    if isinstance(solution, type) and hasattr(solution, entry):
        return getattr(solution(), entry)  # LeetCode: a method of `class Solution`
    if entry in namespace:
        return namespace[entry]
    raise NameError(f"the candidate defines neither {entry!r} nor class Solution with a method {entry!r}")


def harness_functional(req: dict) -> None:
    """Call the entry point with the test's arguments and send its return value, as plain data, to the parent."""
    namespace = fresh_globals("solution", preamble=True)
    try:
        exec(compile_candidate(req["code"]), namespace)
        function = find_entry(namespace, req["entry"])
    except BaseException as exc:  # noqa: BLE001 - SystemExit too: exiting before the test is no result
        record_error("candidate", exc)
        finish(1)
    try:
        value = function(*req["args"])
    except BaseException as exc:  # noqa: BLE001
        record_error("call", exc)
        finish(1)
    try:
        record({"t": "value", "v": plain(value)})
    except NotPlain as exc:
        record({"t": "value", "error": str(exc)})
    finish(0)


def harness_assert(req: dict) -> None:
    """Run the candidate, then the (rewritten) assert code: each assert sends its operands to the parent, which
    holds the literal expected values and decides. `check(entry)` is called when the tests define `check`."""
    namespace = fresh_globals("solution")
    try:
        exec(compile_candidate(req["code"]), namespace)
    except BaseException as exc:  # noqa: BLE001 - SystemExit before the tests is a failure, not a pass
        record_error("candidate", exc)
        finish(1)

    sent_messages = collections.Counter()

    def send(site, *operands, message=None):
        values, item = [], {"t": "assert", "i": site}
        if message is not None and sent_messages[site] < 3:  # the assert's own message, for a failure report
            sent_messages[site] += 1
            try:
                item["m"] = str(message())[:1000]
            except Exception:  # noqa: BLE001 - a message that fails to build is just left out
                pass
        for operand in operands:
            try:
                values.append(plain(operand))
            except NotPlain as exc:
                record(dict(item, error=str(exc)))
                return
        record(dict(item, v=values))

    namespace["__atlas_assert__"] = send  # set after the candidate ran, so it cannot pre-empt the name
    try:
        exec(compile_candidate(req["tests"], "<tests>"), namespace)
        if req.get("entry") and callable(namespace.get("check")):
            namespace["check"](find_entry(namespace, req["entry"]))
    except BaseException as exc:  # noqa: BLE001
        record_error("tests", exc)
        finish(1)
    record({"t": "done"})
    finish(0)


class PytestReports:
    """A pytest plugin sending each test's reports to the parent."""

    def pytest_collectreport(self, report):
        if report.failed:
            record({"t": "collect-error", "node": report.nodeid, "msg": str(report.longrepr)[-2000:]})

    def pytest_runtest_logreport(self, report):
        marked = any(name in report.keywords for name in ("skip", "skipif", "xfail"))
        record({"t": "report", "node": report.nodeid, "when": report.when, "outcome": report.outcome,
                "marked": marked, "msg": str(report.longrepr)[-2000:] if report.failed else ""})


def warm_pytest() -> None:
    """Import pytest and its installed plugins once in F (plugins such as pytest-lsp take a second or more to
    import), so that each forked pytest run starts warm."""
    import pytest  # noqa: F401,PLC0415
    from importlib.metadata import entry_points  # noqa: PLC0415

    for entry in entry_points(group="pytest11"):
        try:
            entry.load()
        except Exception:  # noqa: BLE001 - a plugin that cannot load here will say so in the test run itself
            pass


def harness_pytest(req: dict) -> None:
    import pytest  # noqa: PLC0415 - only this kind needs it (F imports it on first use, so it is warm)

    sys.path.insert(0, req["root"])
    # The plugins were imported before pytest could rewrite their asserts (warm_pytest): nothing to warn about.
    args = ["-q", "--tb=short", "-p", "no:cacheprovider", "-o", "console_output_style=classic",
            "-W", "ignore::pytest.PytestAssertRewriteWarning", *req.get("node_ids", [])]
    try:
        code = pytest.main(args, plugins=[PytestReports()])
    except BaseException as exc:  # noqa: BLE001
        record_error("pytest", exc)
        finish(1)
    record({"t": "done", "exit": int(code)})
    finish(0)


HARNESSES = {"stdin": harness_stdin, "functional": harness_functional, "assert": harness_assert,
             "pytest": harness_pytest}


# --- G: the test process -------------------------------------------------------------------------------------------

def count_own_processes() -> int:
    uid, count = os.getuid(), 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                count += os.stat(f"/proc/{name}").st_uid == uid
            except OSError:
                pass
    return count


def set_limits(limits: dict, cap_pids: bool) -> None:
    cpu = int(limits["cpu_s"])
    memory = int(limits["memory_mb"]) << 20
    for what, value in ((resource.RLIMIT_CPU, (cpu, cpu + 1)), (resource.RLIMIT_AS, (memory, memory)),
                        (resource.RLIMIT_FSIZE, (int(limits["file_bytes"]),) * 2),
                        (resource.RLIMIT_NOFILE, (int(limits["open_files"]),) * 2),
                        (resource.RLIMIT_CORE, (0, 0))):
        resource.setrlimit(what, value)
    if cap_pids:
        # RLIMIT_NPROC counts every process of this uid (in this user namespace): allow that many more.
        nproc = count_own_processes() + int(limits["processes"]) + PROCESS_SLACK
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def isolate_namespace(req: dict, features: dict) -> None:
    """In G, pid 1 of a fresh pid+mount namespace: private mounts, a /proc showing only this test, a pid cap, and
    read-only views of the paths the parent asked for (the pytest workspace copy)."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    try:
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        if features.get("pid_max"):
            # Kernel >= 6.14 keeps pid_max per pid namespace; 301 is the smallest it accepts. This is what holds a
            # fork bomb where RLIMIT_NPROC does not apply (a process that is root outside).
            write_file("/proc/sys/kernel/pid_max", "301")
    except OSError:
        if features.get("proc"):
            raise
    for path in req.get("readonly", []):
        bind_readonly(path)


def reopen_stdio(stdin_path: str | None, out_fd: int, err_fd: int, res_fd: int) -> None:
    stdin_fd = os.open(stdin_path or os.devnull, os.O_RDONLY)
    for source, target in ((stdin_fd, 0), (out_fd, 1), (err_fd, 2), (res_fd, RESULT_FD)):
        if source != target:
            os.dup2(source, target)
    os.closerange(RESULT_FD + 1, 1 << 16)
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8", errors="replace")
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="backslashreplace")
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace",
                                  line_buffering=True)
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr


def run_test(req: dict, features: dict, fds: dict) -> None:
    """G: finish the sandbox, then hand over to the harness. Never returns."""
    try:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if features.get("pidns"):
            isolate_namespace(req, features)
        reopen_stdio(req.get("stdin_path"), fds["out"], fds["err"], fds["res"])
        os.chdir(req["dir"])
        os.environ.clear()
        os.environ.update(req["env"])
        tempfile.tempdir = None  # F may have cached its own; the test's TMPDIR applies
        set_limits(req["limits"], cap_pids=features.get("nproc", False))
        drop_capabilities(features.get("caps", True))
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(number, signal.SIG_DFL if number != signal.SIGXFSZ else signal.SIG_IGN)
        harness = HARNESSES[req["kind"]]
    except BaseException as exc:  # noqa: BLE001
        record({"t": "setup-error", "msg": f"{type(exc).__name__}: {exc}"})
        os._exit(71)
    harness(req)
    finish(0)


# --- C: the supervisor ---------------------------------------------------------------------------------------------

def supervise(req: dict, features: dict, fds: dict) -> None:
    """C: a new session, the per-test namespaces, then G; reports G's pid and fate on the status pipe. It is also
    the disposable parent a candidate's os.kill(os.getppid()) reaches at the weakest level."""
    status = fds["status"]
    try:
        os.setsid()
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        for fd in (0, 1):  # F's channel to the parent: no test process keeps it
            os.close(fd)
        flags = features.get("unshare", 0)
        if flags:
            unshare(flags)
            if flags & CLONE_NEWUSER:
                map_ids("self", 0, features["uid"], features["gid"])
        pid = os.fork()
    except BaseException as exc:  # noqa: BLE001
        write_all(status, f"setup {type(exc).__name__}: {exc}\n".encode())
        os._exit(70)
    if pid == 0:
        os.close(status)
        run_test(req, features, fds)
    for name in ("out", "err", "res"):
        os.close(fds[name])
    _, wait_status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(wait_status):
        write_all(status, f"signal {os.WTERMSIG(wait_status)}\n".encode())
    else:
        write_all(status, f"exit {os.WEXITSTATUS(wait_status)}\n".encode())
    os._exit(0)


# --- F: the fork server --------------------------------------------------------------------------------------------

def descendants(root: int) -> list[int]:
    """Every process below `root` (children lists in /proc; orphans come back to F, which is a subreaper)."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as fh:
                    kids = [int(x) for x in fh.read().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def kill_everything(c_pid: int) -> None:
    """SIGKILL the test's process group and every descendant of F (G among them: as init of the test's pid
    namespace, its death takes the namespace with it), until none is left; reap them all."""
    try:
        os.killpg(c_pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        left = descendants(os.getpid())
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        reaped = reap()
        if not left:
            return
        if not reaped:
            time.sleep(0.001)


def reap() -> int:
    count = 0
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return count
        if pid == 0:
            return count
        count += 1


class Outputs:
    """The test's stdout, stderr and results: plain files in the test's own io folder (no pipe to drain, so F
    wakes only when the test ends, is due a check, or the parent cancels). Their sizes are checked on every watch
    tick and at the end; RLIMIT_FSIZE bounds how far one can grow between two checks."""

    NAMES = ("out", "err", "res")

    def __init__(self, folder: str, output_cap: int):
        self.fds = {name: os.open(os.path.join(folder, name), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
                    for name in self.NAMES}
        self.caps = {"out": output_cap, "err": output_cap * 4, "res": RESULT_CAP}

    def over(self) -> str:
        for name, fd in self.fds.items():
            if os.fstat(fd).st_size > self.caps[name]:
                return "output-limit"
        return ""

    def read(self, name: str, tail: int | None = None) -> bytes:
        fd = self.fds[name]
        size = os.fstat(fd).st_size
        if tail is not None:
            return os.pread(fd, tail, max(0, size - tail))
        return os.pread(fd, min(size, self.caps[name]), 0)

    def records(self) -> list:
        out = []
        for line in self.read("res").decode(errors="replace").splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict):
                out.append(item)
        return out

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)


def read_status(fd: int) -> dict:
    data = b""
    while chunk := os.read(fd, 4096):
        data += chunk
    os.close(fd)
    lines = {}
    for line in data.decode(errors="replace").splitlines():
        key, _, value = line.partition(" ")
        lines[key] = value
    return lines


class ForkServer:
    def __init__(self, level: str, outer_uid: int, outer_gid: int):
        self.level = level
        self.outer_uid = outer_uid
        self.features: dict = {"uid": os.getuid(), "gid": os.getgid()}
        self.pytest_ready = False
        self.queue: collections.deque = collections.deque()  # tests sent ahead by the parent
        self.cancelled: set = set()

    # set-up -------------------------------------------------------------------------------------------------------
    def enter_level(self) -> None:
        if self.level == "namespaces":
            uid, gid = os.geteuid(), os.getegid()
            unshare(CLONE_NEWUSER | CLONE_NEWNET)
            map_ids("self", 0, uid, gid)
            self.features.update(uid=0, gid=0)
        self.features["nproc"] = self.outer_uid != 0  # RLIMIT_NPROC never binds a process that is root outside
        self.features["caps"] = _has_capabilities()

    def probe(self) -> None:
        """Find which per-test namespaces work here (the parent reports them and the tests rely on them)."""
        candidates = [CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC]
        if self.level == "bwrap":  # inside bwrap without capabilities, a nested user namespace gives them back
            candidates.append(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC)
        for flags in ([] if self.level == "rlimits" else candidates):
            found = self.probe_flags(flags)
            if found.get("pidns"):
                self.features.update(found, unshare=flags)
                return
        self.features.update(pidns=False, proc=False, pid_max=False, unshare=0)

    def probe_flags(self, flags: int) -> dict:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            found = {}
            try:
                unshare(flags)
                if flags & CLONE_NEWUSER:
                    map_ids("self", 0, self.features["uid"], self.features["gid"])
                inner = os.fork()
                if inner == 0:
                    found["pidns"] = os.getpid() == 1
                    mount(None, "/", None, MS_REC | MS_PRIVATE)
                    try:
                        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
                        found["proc"] = True
                        write_file("/proc/sys/kernel/pid_max", "301")
                        found["pid_max"] = open("/proc/sys/kernel/pid_max").read().strip() == "301"
                    except OSError:
                        pass
                    write_all(write_fd, json.dumps(found).encode())
                    os._exit(0)
                os.waitpid(inner, 0)
            except BaseException:  # noqa: BLE001
                pass
            os._exit(0)
        os.close(write_fd)
        data = b""
        while chunk := os.read(read_fd, 4096):
            data += chunk
        os.close(read_fd)
        os.waitpid(pid, 0)
        try:
            return json.loads(data) if data else {}
        except ValueError:
            return {}

    # one test -----------------------------------------------------------------------------------------------------
    def run(self, req: dict) -> dict:
        if req["kind"] == "pytest" and not self.pytest_ready:
            warm_pytest()
            self.pytest_ready = True
        limits = req["limits"]
        outputs = Outputs(req["io_dir"], int(limits["output_bytes"]))
        status_read, status_write = os.pipe()
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(status_read)
                supervise(req, self.features, dict(outputs.fds, status=status_write))
            finally:
                os._exit(70)
        os.close(status_write)
        reason = self.watch(pid, status_read, outputs, started, limits, req.get("id"))
        max_rss, cpu = 0, 0.0
        if reason is None:  # C has reported and is exiting: its usage includes G's
            usage = os.wait4(pid, 0)[2]
            max_rss, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
        kill_everything(pid)
        status = read_status(status_read)
        reply = {
            "id": req.get("id"), "reason": reason or outputs.over() or None,
            "exit": int(status["exit"]) if "exit" in status else None,
            "signal": int(status["signal"]) if "signal" in status else None,
            "setup": status.get("setup"),
            "stdout": outputs.read("out").decode("utf-8", errors="replace"),
            "stderr": outputs.read("err", tail=STDERR_TAIL).decode("utf-8", errors="replace"),
            "records": outputs.records(), "seconds": time.monotonic() - started, "max_rss_kb": max_rss,
            "cpu_s": cpu,
        }
        outputs.close()
        return reply

    def watch(self, pid: int, status_fd: int, outputs: Outputs, started: float, limits: dict,
              req_id) -> str | None:
        """Wait for C to end (its status pipe closes), the wall clock to run out, the output to overflow, too many
        processes, or the parent to cancel."""
        deadline = started + float(limits["timeout_s"])
        max_processes = int(limits["processes"]) + PROCESS_SLACK
        next_watch = started + WATCH_INTERVAL
        while True:
            now = time.monotonic()
            if now >= deadline:
                return "timeout"
            ready, _, _ = select.select([status_fd, 0], [], [], max(0.0, min(deadline, next_watch) - now))
            if 0 in ready:
                message = read_message(0)
                if message is None:  # the parent is gone
                    kill_everything(pid)
                    os._exit(0)
                if message.get("op") == "cancel" and message.get("id") == req_id:
                    return "cancelled"
                self.take(message)  # the next test (the parent keeps one queued), or a cancel for a queued one
            if status_fd in ready:
                return None
            if time.monotonic() >= next_watch:
                next_watch = time.monotonic() + WATCH_INTERVAL
                if outputs.over():
                    return "output-limit"
                if len(descendants(os.getpid())) > max_processes:
                    return "processes"

    def take(self, message: dict) -> None:
        """Queue a test that arrived while another ran, or note a cancel for one not running."""
        if message.get("op") == "run":
            self.queue.append(message)
        elif message.get("op") == "cancel":
            if len(self.cancelled) > 10_000:  # cancels of tests long finished
                self.cancelled.clear()
            self.cancelled.add(message.get("id"))

    def serve(self, once: bool) -> None:
        while True:
            req = self.queue.popleft() if self.queue else read_message(0)
            if req is None:
                return
            if req.get("op") != "run":
                self.take(req)
                continue
            if req.get("id") in self.cancelled:
                self.cancelled.discard(req.get("id"))
                write_message(1, {"id": req.get("id"), "reason": "cancelled"})
                continue
            write_message(1, self.run(req))
            if once:
                return


def main(argv: list[str]) -> int:
    args = dict(zip(argv[::2], argv[1::2]))
    parent = int(args.get("--parent", "0"))
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if parent and os.getppid() != parent and args.get("--level") != "bwrap":
        return 1  # the parent died before the death signal was armed
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    server = ForkServer(args.get("--level", "rlimits"), int(args.get("--outer-uid", os.getuid())),
                        int(args.get("--outer-gid", os.getgid())))
    try:
        server.enter_level()
        if "--features" in args:  # already probed by an earlier server of this level (a one-test server)
            server.features.update(json.loads(args["--features"]))
        else:
            server.probe()
    except OSError as exc:
        write_message(1, {"ready": False, "error": str(exc)})
        return 1
    write_message(1, {"ready": True, "level": server.level, "features": server.features, "pid": os.getpid(),
                      "python": sys.version.split()[0]})
    server.serve(once=args.get("--once") == "1")
    return 0
