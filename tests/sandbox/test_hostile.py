"""Hostile candidates, at every isolation level (forced): each must fail or time out, with no side effect, no process
left behind and the workspace untouched; correct candidates must pass at every level.

Where a level cannot stop a case, the test is marked xfail(strict=True) from `sandbox.protections(level)`: the mark
is the sandbox's own claim, and strictness checks it both ways (a case that a weaker level does stop makes the run
fail until the claim is corrected). Every hostile candidate names its processes "atlas-hostile" so that survivors
can be found.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

import sandbox
from sandbox import Limits, PytestTarget, TestCase, TestSuite
from tests.conftest import REPO_ROOT
from tests.sandbox.conftest import HOSTILE_NAME, hostile_processes
from tests.sandbox.test_pytest_kind import make_workspace, snapshot

LIMITS = Limits(timeout_s=1, cpu_s=1, memory_mb=256, output_bytes=64 << 10, processes=32)
NAME_ITSELF = f"import ctypes\nctypes.CDLL(None).prctl(15, b'{HOSTILE_NAME}', 0, 0, 0)\n"
ANSWER = TestSuite("stdin", cases=(TestCase("2\n", "4\n"),))


def expect_stopped(request, level: str, threat: str) -> None:
    """Mark the test xfail (strict) where the sandbox says this level does not stop the threat."""
    if not sandbox.protections(level)[threat]:
        request.applymarker(pytest.mark.xfail(strict=True, reason=f"the {level} level does not stop: "
                                                                  f"{sandbox.isolation.THREATS[threat]}"))


@pytest.fixture(autouse=True)
def nothing_survives():
    yield
    deadline = time.monotonic() + 2
    while hostile_processes() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hostile_processes() == [], "a hostile candidate's process survived the run"


def run(code: str, level: str, suite: TestSuite = ANSWER, limits: Limits = LIMITS) -> sandbox.Verdict:
    return sandbox.run(NAME_ITSELF + code, suite, limits=limits, isolation=level)


# --- correct candidates ----------------------------------------------------------------------------------------------

def test_correct_candidates_pass(level, tmp_path):
    assert run("print(int(input()) * 2)", level).passed
    functional = TestSuite("functional", entry="double", cases=(TestCase("21", "42"),))
    assert run("def double(x):\n    return 2 * x", level, functional).passed
    asserts = TestSuite("assert", assert_code="def check(f):\n    assert f(2) == 4\n", entry="double")
    assert run("def double(x):\n    return 2 * x", level, asserts).passed
    workspace = make_workspace(tmp_path / "ws")
    target = PytestTarget(workspace, Path("calc/ops.py"), "add", ("tests/test_ops.py::test_add",))
    verdict = sandbox.run("return a + b", TestSuite("pytest", pytest=target), limits=Limits(timeout_s=20),
                          isolation=level)
    assert verdict.passed and verdict.isolation == level


# --- resources -------------------------------------------------------------------------------------------------------

def test_infinite_loop_times_out(level):
    started = time.monotonic()
    verdict = run("while True:\n    pass", level)
    assert [t.status for t in verdict.tests] == ["timeout"]
    assert time.monotonic() - started < LIMITS.timeout_s + 3


def test_fork_bomb_is_contained(level, request):
    expect_stopped(request, level, "fork-bomb")
    before = len([p for p in os.listdir("/proc") if p.isdigit()])
    verdict = run("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n", level)
    assert not verdict.passed and verdict.tests[0].status in ("crash", "timeout")
    time.sleep(0.2)
    assert len([p for p in os.listdir("/proc") if p.isdigit()]) < before + 20


def test_memory_bomb_hits_the_limit(level):
    # a slower clock than the others: filling 256 MB on a busy machine may take a while
    verdict = run("hoard = []\nwhile True:\n    hoard.append(bytearray(1 << 24))\n", level,
                  limits=dataclasses.replace(LIMITS, timeout_s=10, cpu_s=10))
    assert [t.status for t in verdict.tests] == ["memory"]


def test_huge_output_is_cut(level):
    verdict = run("while True:\n    print('x' * 4096)\n", level)
    assert [t.status for t in verdict.tests] == ["output-limit"]


def test_deep_recursion_crashes_alone(level):
    verdict = run("import sys\nsys.setrecursionlimit(10 ** 7)\ndef down(n):\n    return down(n + 1) + 1\n"
                  "down(0)\n", level)
    assert not verdict.passed and verdict.tests[0].status in ("crash", "memory", "timeout")


# --- faking a pass ---------------------------------------------------------------------------------------------------

CHECK = TestSuite("assert", assert_code="def check(f):\n    assert f(2) == 4\n    assert f(3) == 6\n", entry="double")
PAIRS = TestSuite("functional", entry="double", cases=(TestCase("2", "4"), TestCase("3", "6")))


@pytest.mark.parametrize("exit_call", ["import sys\nsys.exit(0)", "import os\nos._exit(0)"])
@pytest.mark.parametrize("suite", [CHECK, PAIRS], ids=["assert", "functional"])
def test_exit_before_the_tests_is_no_pass(level, exit_call, suite):
    verdict = run(f"def double(x):\n    return x\n{exit_call}\n", level, suite)
    assert not verdict.passed and {t.status for t in verdict.tests} == {"crash"}


def test_printing_a_fake_verdict_is_no_pass(level):
    code = "def double(x):\n    return x\nprint('All tests passed!')\nprint('OK')\nimport os\nos._exit(0)\n"
    assert not run(code, level, CHECK).passed


def test_fake_pytest_summary_is_no_pass(level, tmp_path):
    workspace = make_workspace(tmp_path / "ws")
    before = snapshot(workspace)
    code = "print('===== 2 passed in 0.01s =====')\nimport os\nos._exit(0)\n"
    target = PytestTarget(workspace, Path("calc/ops.py"), "add",
                          ("tests/test_ops.py::test_add", "tests/test_ops.py::test_add_negative"))
    verdict = sandbox.run(NAME_ITSELF + code, TestSuite("pytest", pytest=target), limits=Limits(timeout_s=20),
                          isolation=level)
    assert not verdict.passed
    assert snapshot(workspace) == before


EQ_TRICKS = {
    "always-equal object": "class Same:\n    def __eq__(self, other):\n        return True\n"
                           "    __hash__ = object.__hash__\ndef double(x):\n    return Same()\n",
    "int subclass": "class Liar(int):\n    def __eq__(self, other):\n        return True\n"
                    "    __hash__ = int.__hash__\ndef double(x):\n    return Liar(0)\n",
    "patched builtins": "import builtins\nbuiltins.isinstance = lambda *a: True\nbuiltins.len = lambda x: 0\n"
                        "def double(x):\n    return None\n",
}


@pytest.mark.parametrize("trick", sorted(EQ_TRICKS))
@pytest.mark.parametrize("suite", [CHECK, PAIRS], ids=["assert", "functional"])
def test_eq_overrides_do_not_fake_equality(level, trick, suite):
    verdict = run(EQ_TRICKS[trick], level, suite)
    assert not verdict.passed and "pass" not in {t.status for t in verdict.tests}


# --- reaching outside ------------------------------------------------------------------------------------------------

def test_writing_outside_the_temp_dir(level, request):
    expect_stopped(request, level, "write-outside")
    outside = Path(tempfile.mkdtemp(prefix="atlas-hostile-", dir="/var/tmp" if os.path.isdir("/var/tmp")
                                    else REPO_ROOT))
    target = outside / "pwned.txt"
    try:
        code = (f"try:\n    open({str(target)!r}, 'w').write('x')\n    print('wrote')\n"
                "except OSError:\n    print('blocked')\n")
        verdict = run(code, level, TestSuite("stdin", cases=(TestCase("", "wrote"),)))
        assert not verdict.passed
        assert not target.exists()
    finally:
        shutil.rmtree(outside, ignore_errors=True)


def test_deleting_the_copied_workspace_touches_only_the_copy(level, tmp_path):
    workspace = make_workspace(tmp_path / "ws")
    before = snapshot(workspace)
    code = "import os, shutil\nshutil.rmtree('tests', ignore_errors=True)\nshutil.rmtree('calc', ignore_errors=True)\n" \
           "return a - b\n"
    target = PytestTarget(workspace, Path("calc/ops.py"), "add", ("tests/test_ops.py::test_add",))
    verdict = sandbox.run(NAME_ITSELF + code, TestSuite("pytest", pytest=target), limits=Limits(timeout_s=20),
                          isolation=level)
    assert not verdict.passed
    assert snapshot(workspace) == before


def test_editing_the_copied_tests_to_skip_them(level, request, tmp_path):
    """A wrong candidate rewrites the test file that would catch it, before pytest imports it."""
    expect_stopped(request, level, "workspace-copy")
    workspace = make_workspace(tmp_path / "ws")
    (workspace / "tests" / "test_zzz.py").write_text("from calc.ops import add\n\ndef test_sub():\n"
                                                       "    assert add(5, 3) == 8\n")
    before = snapshot(workspace)
    code = ("try:\n    open('tests/test_zzz.py', 'w').write('def test_sub():\\n    pass\\n')\nexcept OSError:\n"
            "    pass\n")
    candidate = f"{NAME_ITSELF}{code}\ndef add(a, b):\n    return 3 if (a, b) == (1, 2) else -3\n"
    target = PytestTarget(workspace, Path("calc/ops.py"), "add",
                          ("tests/test_ops.py::test_add", "tests/test_ops.py::test_add_negative",
                           "tests/test_zzz.py::test_sub"))
    verdict = sandbox.run(candidate, TestSuite("pytest", pytest=target), limits=Limits(timeout_s=20),
                          isolation=level)
    assert snapshot(workspace) == before
    assert not verdict.passed


SECRET_SCRIPT = """
import json, sys
import sandbox
secret_reader = '''
import os
found = os.environ.get("ATLAS_HOSTILE_SECRET")
for pid in ([] if found else os.listdir("/proc")):
    try:
        data = open(f"/proc/{pid}/environ", "rb").read()
    except OSError:
        continue
    for item in data.split(b"\\\\0"):
        if item.startswith(b"ATLAS_HOSTILE_SECRET="):
            found = item.split(b"=", 1)[1].decode()
print(found or "none")
'''
suite = sandbox.TestSuite("stdin", cases=(sandbox.TestCase("", sys.argv[2]),))
verdict = sandbox.run(secret_reader, suite, limits=sandbox.Limits(timeout_s=5), isolation=sys.argv[1])
print(json.dumps({"passed": verdict.passed, "got": verdict.tests[0].got}))
"""


def test_reading_the_parents_secret(level, request):
    """The parent holds a secret in its environment from its start (as a user's shell would give it)."""
    expect_stopped(request, level, "environ-secret")
    secret = uuid.uuid4().hex
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
           "ATLAS_HOSTILE_SECRET": secret}
    done = subprocess.run([sys.executable, "-c", SECRET_SCRIPT, level, secret], capture_output=True, text=True,
                          cwd=REPO_ROOT, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert secret not in outcome["got"]
    assert not outcome["passed"]


class Listener:
    """A local TCP listener that answers "4" and counts who connected."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.sendall(b"4\n")
            conn.close()

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


def test_connecting_to_a_local_listener(level, request):
    expect_stopped(request, level, "network")
    listener = Listener()
    try:
        code = ("import socket\nwith socket.create_connection(('127.0.0.1', %d), timeout=1) as s:\n"
                "    print(s.recv(16).decode().strip())\n" % listener.port)
        verdict = run(code, level)
        assert not verdict.passed
        assert listener.accepted == 0
    finally:
        listener.close()


def test_killing_the_parent(level):
    verdict = run("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nprint(4)\n", level)
    assert not verdict.passed
    assert run("print(int(input()) * 2)", level).passed  # the sandbox itself carries on


def test_signalling_other_processes_of_the_user(level, request):
    expect_stopped(request, level, "signal-others")
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        code = (f"import os, signal\ntry:\n    os.kill({victim.pid}, signal.SIGKILL)\n    print('killed')\n"
                "except OSError:\n    print('blocked')\n")
        verdict = run(code, level, TestSuite("stdin", cases=(TestCase("", "killed"),)))
        time.sleep(0.1)
        alive = victim.poll() is None
        assert alive and not verdict.passed
    finally:
        victim.kill()
        victim.wait()


def test_background_processes_are_killed(level):
    code = ("import os, sys, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
            "        time.sleep(0.5)\n        print(4, flush=True)\n        time.sleep(30)\n    os._exit(0)\n")
    verdict = run(code, level)
    assert not verdict.passed  # the answer would only come from the daemon, which must be gone by then


def test_killing_the_fork_server_costs_only_that_test():
    """At the rlimits level a candidate can reach the fork server (its grandparent); the test that does fails, the
    tests queued behind it run on a fresh server, and the sandbox carries on."""
    from tests.sandbox.conftest import available_level

    level = available_level("rlimits")
    killer = ("import os, signal, sys\nif input().strip() == '3':\n"
              "    server = int(open(f'/proc/{os.getppid()}/stat').read().rsplit(')', 1)[1].split()[1])\n"
              "    os.kill(server, signal.SIGKILL)\nprint(4)\n")
    suite = TestSuite("stdin", cases=tuple(TestCase(f"{n}\n", "4\n") for n in (1, 2, 3, 4, 5)))
    verdict = run(killer, level, suite)
    assert [t.status for t in verdict.tests] == ["pass", "pass", "crash", "pass", "pass"]
    assert "server died" in verdict.tests[2].stderr_tail
    assert run("print(int(input()) * 2)", level).passed


def test_bwrap_server_starts_with_an_interpreter_under_tmp(tmp_path_factory):
    """bwrap gives each test a fresh /tmp; an interpreter that lives under /tmp (a CI clone's venv) must still be
    visible inside, read-only, or the strongest level silently falls back to a weaker one."""
    from sandbox.server import Server
    from tests.sandbox.conftest import available_level

    available_level("bwrap")
    venv = Path(tempfile.mkdtemp(prefix="atlas-venv-", dir="/tmp"))
    try:
        subprocess.run([sys.executable, "-m", "venv", "--copies", "--without-pip", str(venv)], check=True)
        server = Server("bwrap", python=str(venv / "bin" / "python"))
        try:
            assert server.alive and server.features is not None
        finally:
            server.close()
    finally:
        shutil.rmtree(venv)
