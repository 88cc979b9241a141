"""The parent's handle on fork servers when things go wrong: a level that cannot start, a server that died or went
silent, one that ignores being told to stop, and the pool's dead servers. Real server processes throughout."""

from __future__ import annotations

import os
import signal

import pytest

from sandbox import server as server_module
from sandbox.server import IsolationUnavailable, Pool, Server, ServerDied, start_server

LEVEL = "rlimits"  # the weakest level starts everywhere; these tests are about the parent's side


def kill(server: Server) -> None:
    os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait()


def test_bwrap_missing_is_named_with_how_to_install_it(monkeypatch):
    monkeypatch.setattr(server_module.shutil, "which", lambda name: None)
    with pytest.raises(IsolationUnavailable, match="bwrap is not installed.*apt-get install bubblewrap"):
        Server("bwrap")


def test_an_interpreter_that_cannot_start_is_an_unavailable_level(tmp_path):
    with pytest.raises(IsolationUnavailable, match=f"the '{LEVEL}' sandbox could not start"):
        Server(LEVEL, python=str(tmp_path / "no-such-python"))


def test_a_server_that_exits_before_ready_says_what_it_printed(tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'cannot set up: out of cheese' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(IsolationUnavailable, match="exited with status 3.*out of cheese"):
        Server(LEVEL, python=str(fake))


def test_a_dead_server_refuses_work_and_cancel_is_harmless():
    server = start_server(LEVEL)
    base = server.base
    kill(server)
    server.cancel("gone")  # nothing to cancel on a dead server, and no error either
    with pytest.raises(ServerDied, match="stopped answering"):
        server.run({"op": "noop", "id": "x"}, timeout_s=1)
    assert not base.exists()  # the failed call closed it and removed its scratch folder


def test_a_silent_server_times_out(monkeypatch):
    monkeypatch.setattr(server_module, "RESPONSE_GRACE_S", 0.0)
    server = start_server(LEVEL)
    os.killpg(server.proc.pid, signal.SIGSTOP)  # alive but answering nothing
    try:
        with pytest.raises(ServerDied, match="no answer in 1 s"):
            server.receive("never-sent", timeout_s=1)
        assert server.proc.poll() is not None  # closing killed the stopped server
    finally:
        if server.proc.poll() is None:
            kill(server)


def test_close_kills_a_server_that_ignores_its_closed_input():
    server = start_server(LEVEL)
    os.killpg(server.proc.pid, signal.SIGSTOP)  # a stopped process cannot see its stdin close
    server.close()
    assert server.proc.returncode == -signal.SIGKILL and not server.base.exists()


def test_the_pool_replaces_dead_servers_and_closes_what_it_keeps():
    pool = Pool(LEVEL, keep=1)
    first = pool.acquire()
    pool.release(first)
    kill(first)
    second = pool.acquire()  # the dead idle one is dropped, a fresh one started
    assert second is not first and second.alive and not first.base.exists()
    extra = pool.acquire()
    pool.release(second)
    pool.release(extra)  # beyond `keep`: closed at once
    assert extra.proc.poll() is not None
    kill(second)
    pool.release(second)  # dead: not kept
    pool.close()
    fresh = pool.acquire()
    assert fresh is not second and fresh.alive
    fresh.close()


def test_the_pools_close_at_exit(monkeypatch):
    monkeypatch.setattr(server_module, "_pools", {})
    kept = server_module.pool(LEVEL)
    server = kept.acquire()
    kept.release(server)
    server_module.close_pools()
    assert server.proc.poll() is not None and not server.base.exists()


def test_a_log_that_cannot_be_read_gives_an_empty_tail():
    server = start_server(LEVEL)
    server.close()  # closes the log file too
    assert server.log_tail() == ""
