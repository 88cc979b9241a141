"""`run` one candidate against a suite, `run_ranked` many in the Lens's order with early exit.

Each test is one request to a warm fork server (sandbox/server.py), run in its own processes, in its own temporary
directory under the server's scratch folder, removed afterwards. The request carries the candidate and the test's
inputs only; expected outputs stay here, where grading happens (sandbox/grading.py).
"""

from __future__ import annotations

import ast
import dataclasses
import itertools
import os
import signal
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from sandbox import grading, isolation as levels, pytest_kind
from sandbox.server import ServerDied, pool, remove_tree, start_server
from sandbox.types import Limits, TestResult, TestSuite, Verdict

MAX_CODE_BYTES = 1 << 20
# One candidate parsed at a time: run_ranked's workers parse concurrently, and CPython 3.11's ast.parse raised
# "SystemError: AST constructor recursion depth mismatch" in one of them once (the worker thread died, its candidate
# left untested). Parsing a candidate takes well under a millisecond, so the lock costs nothing measurable.
_PARSE_LOCK = threading.Lock()
_request_ids = itertools.count(1)


class Cancelled(Exception):
    """The run was cancelled (early exit or the caller's event); its verdict is None."""


@dataclass
class Job:
    """One test of one candidate: the request fields it adds, how to grade its response, its stdin, and for pytest
    the spliced target file to write into the workspace copy."""

    name: str
    request: dict
    grade: Callable[[dict], TestResult]
    stdin: str | None = None
    spliced: tuple[Path, Path, str] | None = None  # (workspace, target file relative to it, new source)


# --- planning ------------------------------------------------------------------------------------------------------

def check_limits(limits: Limits) -> None:
    for name in ("timeout_s", "cpu_s", "memory_mb", "output_bytes", "file_bytes", "open_files", "processes"):
        if not getattr(limits, name) > 0:
            raise ValueError(f"Limits.{name} must be positive, got {getattr(limits, name)!r}")


def test_names(suite: TestSuite) -> list[str]:
    if suite.kind in ("stdin", "functional"):
        return [case.name or f"test {index + 1}" for index, case in enumerate(suite.cases)]
    if suite.kind == "pytest" and suite.pytest is not None and suite.pytest.node_ids:
        return list(suite.pytest.node_ids)
    return [suite.kind]


class Plan:
    """What a suite needs once for all candidates: parsed cases, rewritten asserts, the pytest target's source.
    Building it raises grading.TestFormatError (a ValueError naming the test and field) for a malformed suite."""

    def __init__(self, suite: TestSuite, limits: Limits):
        self.suite = suite
        self.limits = limits
        self.cases = []
        self.sites: list[grading.AssertSite] = []
        if suite.kind in ("stdin", "functional") and not suite.cases:
            raise grading.TestFormatError(f"the {suite.kind} suite has no test cases")
        if suite.kind == "stdin":
            for index, case in enumerate(suite.cases):
                for field_name in ("input", "output"):
                    if not isinstance(getattr(case, field_name), str):
                        raise grading.TestFormatError(f"test {index + 1}: field {field_name!r} must be a string")
        elif suite.kind == "functional":
            if not suite.entry:
                raise grading.TestFormatError("a functional suite needs `entry` (the function or method name)")
            self.cases = [grading.parse_functional(case, index) for index, case in enumerate(suite.cases)]
        elif suite.kind == "assert":
            if not suite.assert_code.strip():
                raise grading.TestFormatError("the assert suite has no assert_code")
            try:
                self.assert_code, self.sites = grading.rewrite_asserts(suite.assert_code)
            except SyntaxError as exc:
                raise grading.TestFormatError(f"field 'assert_code' does not parse: {exc}") from exc
        elif suite.kind == "pytest":
            self._plan_pytest()

    def _plan_pytest(self) -> None:
        target = self.suite.pytest
        if target is None:
            raise grading.TestFormatError("a pytest suite needs `pytest` (a PytestTarget)")
        path = Path(target.workspace) / target.target_file
        try:
            self.target_source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise grading.TestFormatError(f"pytest target file {path} cannot be read: {exc}") from exc
        try:
            pytest_kind.find_function(ast.parse(self.target_source), target.function)
        except SyntaxError as exc:
            raise grading.TestFormatError(f"pytest target file {path} does not parse: {exc}") from exc
        except pytest_kind.CandidateError as exc:
            raise grading.TestFormatError(f"pytest target file {path}: {exc}") from exc

    def jobs(self, code: str) -> list[Job]:
        """The candidate's jobs; raises pytest_kind.CandidateError when the candidate cannot run at all."""
        if len(code.encode()) > MAX_CODE_BYTES:
            raise pytest_kind.CandidateError(f"the candidate is larger than {MAX_CODE_BYTES} bytes")
        if self.suite.kind != "pytest":
            try:
                with _PARSE_LOCK:
                    ast.parse(code)
            except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
                raise pytest_kind.CandidateError(f"the candidate does not parse: {exc}") from exc
        return getattr(self, f"_jobs_{self.suite.kind}")(code)

    def _jobs_stdin(self, code: str) -> list[Job]:
        names = test_names(self.suite)
        return [Job(name, {"kind": "stdin", "code": code}, self._grade_stdin(name, case), stdin=case.input)
                for name, case in zip(names, self.suite.cases)]

    def _jobs_functional(self, code: str) -> list[Job]:
        names = test_names(self.suite)
        return [Job(name, {"kind": "functional", "code": code, "entry": self.suite.entry, "args": case.args},
                    self._grade_functional(name, case)) for name, case in zip(names, self.cases)]

    def _jobs_assert(self, code: str) -> list[Job]:
        request = {"kind": "assert", "code": code, "tests": self.assert_code, "entry": self.suite.entry}
        return [Job("assert", request, self._grade_assert)]

    def _jobs_pytest(self, code: str) -> list[Job]:
        target = self.suite.pytest
        spliced = pytest_kind.splice(self.target_source, target.function, code)
        request = {"kind": "pytest", "node_ids": list(target.node_ids)}
        return [Job("pytest", request, self._grade_pytest,
                    spliced=(Path(target.workspace), Path(target.target_file), spliced))]

    # grading ------------------------------------------------------------------------------------------------------
    def _grade_stdin(self, name: str, case) -> Callable[[dict], TestResult]:
        def grade(response: dict) -> TestResult:
            failure = failure_status(response, self.limits)
            got = grading.truncate(response["stdout"])
            if failure:
                return result(name, failure, response, expected=grading.truncate(case.output), got=got)
            ok, detail = grading.stdout_matches(response["stdout"], case.output)
            if ok:
                return result(name, ("pass", ""), response)
            return result(name, ("fail", detail), response, expected=grading.truncate(case.output), got=got)
        return grade

    def _grade_functional(self, name: str, case: grading.FunctionalCase) -> Callable[[dict], TestResult]:
        def grade(response: dict) -> TestResult:
            expected = grading.show(case.expected)
            failure = failure_status(response, self.limits)
            if failure:
                return result(name, failure, response, expected=expected)
            sent = next((r for r in response["records"] if r.get("t") == "value"), None)
            if sent is None:
                return result(name, ("crash", "no result: the candidate ended before returning"), response,
                              expected=expected)
            if "error" in sent:
                return result(name, ("fail", str(sent["error"])), response, expected=expected,
                              got=grading.truncate(str(sent["error"])))
            try:
                ok, got = grading.functional_matches(sent.get("v"), case.expected)
            except ValueError as exc:
                return result(name, ("fail", str(exc)), response, expected=expected)
            status = ("pass", "") if ok else ("fail", "wrong answer")
            return result(name, status, response, expected="" if ok else expected,
                          got="" if ok else grading.show(got))
        return grade

    def _grade_assert(self, response: dict) -> TestResult:
        failure = failure_status(response, self.limits)
        if failure:
            return result("assert", failure, response)
        if not any(r.get("t") == "done" for r in response["records"]):
            return result("assert", ("crash", "the tests did not run to the end (the candidate exited early?)"),
                          response)
        ok, expected, got = grading.judge_asserts(self.sites, response["records"])
        return result("assert", ("pass", "") if ok else ("fail", got), response, expected=expected, got=got)

    def _grade_pytest(self, response: dict) -> list[TestResult]:
        results = pytest_kind.judge_reports(response["records"], tuple(self.suite.pytest.node_ids),
                                            response["seconds"], response["stderr"][-2000:])
        failure = failure_status(response, self.limits)
        if failure:
            session = [r for r in results if r.name == "pytest session"]
            if session:
                session[0].status, session[0].got = failure
            else:
                results.append(result("pytest session", failure, response))
        if not results:
            results.append(result("pytest session", ("crash", "no report"), response))
        return results


def failure_status(response: dict, limits: Limits) -> tuple[str, str] | None:
    """Why a test's process did not end normally, as (status, message); None when it did."""
    reason = response.get("reason")
    if reason == "timeout":
        return "timeout", f"over the {limits.timeout_s:g} s wall clock"
    if reason == "output-limit":
        return "output-limit", f"more than {limits.output_bytes} bytes of output"
    if reason == "processes":
        return "crash", f"more than {limits.processes} processes"
    if response.get("setup"):
        return "crash", f"sandbox set-up failed: {response['setup']}"
    records = response["records"]
    setup = next((r for r in records if r.get("t") == "setup-error"), None)
    if setup:
        return "crash", f"sandbox set-up failed: {setup.get('msg')}"
    errors = [r for r in records if r.get("t") == "error"]
    if any(e.get("type") == "MemoryError" for e in errors) or "MemoryError" in response["stderr"][-2000:]:
        return "memory", f"over the {limits.memory_mb} MB memory limit"
    number = response.get("signal")
    if number == signal.SIGXCPU or (number == signal.SIGKILL and response.get("cpu_s", 0) >= limits.cpu_s):
        return "timeout", f"over the {limits.cpu_s} s CPU limit"
    if number:
        return "crash", f"killed by {signal.Signals(number).name if number in signal.valid_signals() else number}"
    if response.get("exit") is None:
        return "crash", "the test's process died with its supervisor"
    if errors:
        first = errors[0]
        return "crash", f"{first.get('type')}: {first.get('msg')}"
    if response["exit"] != 0:
        return "crash", f"exit code {response['exit']}"
    return None


def result(name: str, status: tuple[str, str], response: dict, *, expected: str = "", got: str = "") -> TestResult:
    code, message = status
    tail = response.get("stderr", "")[-2000:]
    if message and code != "pass" and message not in tail:
        tail = (tail + ("\n" if tail else "") + message)[-2000:]
    return TestResult(name, code, float(response.get("seconds", 0.0)), expected=expected, got=got,
                      stderr_tail=tail if code != "pass" else tail[-500:])


# --- running -------------------------------------------------------------------------------------------------------

def child_env(folder: Path, tmp: Path) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(folder), "TMPDIR": str(tmp), "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8", "USER": "sandbox",
            "LOGNAME": "sandbox", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class Lease:
    """A server borrowed from the level's pool for one worker; replaced when a candidate kills it."""

    def __init__(self, level: str):
        self.pool = pool(level)
        self.server = None
        self.outstanding: set = set()  # ids of tests sent and not yet answered
        self._lock = threading.Lock()

    def get(self):
        if self.server is None or not self.server.alive:
            self.server = self.pool.acquire()
        return self.server

    def cancel(self) -> None:
        with self._lock:
            server, ids = self.server, list(self.outstanding)
        for request_id in ids:
            if server is not None:
                server.cancel(request_id)

    def release(self) -> None:
        if self.server is not None:
            self.pool.release(self.server)
            self.server = None

    def discard(self) -> None:
        """Close the server instead of pooling it: after an unexpected error its state is unknown."""
        server, self.server = self.server, None
        self.outstanding.clear()
        if server is not None:
            server.close()


class FreshLease(Lease):
    """A fresh interpreter for every test: the slow way, kept to measure the fork server against
    (`atlas-ls --bench sandbox`)."""

    def __init__(self, level: str):
        super().__init__(level)
        self.level = level

    def get(self):
        if self.server is not None:
            self.server.close()
        self.server = start_server(self.level, once=True, features=levels.probe(self.level).features)
        return self.server

    def release(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None


@dataclass
class Sent:
    """A test sent to a server and not yet answered, with the folder it runs in."""

    job: Job
    request: dict
    folder: Path
    server: object
    started: float


def prepare(server, job: Job, limits: Limits) -> tuple[dict, Path]:
    """The test's folder under the server's scratch directory (home = its cwd, tmp, io = its stdin, stdout,
    stderr and results) and the request naming them."""
    folder = Path(tempfile.mkdtemp(prefix="t-", dir=server.base))
    home, tmp, io = folder / "home", folder / "tmp", folder / "io"
    for each in (home, tmp, io):
        each.mkdir()
    request = {"op": "run", "id": next(_request_ids), **job.request, "dir": str(home), "io_dir": str(io),
               "env": child_env(home, tmp), "limits": dataclasses.asdict(limits)}
    try:
        if job.stdin is not None:
            (io / "stdin").write_text(job.stdin, encoding="utf-8")
            request["stdin_path"] = str(io / "stdin")
        if job.spliced is not None:
            workspace, target_file, source = job.spliced
            copy = folder / "workspace"
            pytest_kind.copy_workspace(workspace, copy)
            (copy / target_file).write_text(source, encoding="utf-8")
            request.update(dir=str(copy), root=str(copy), readonly=[str(copy)])
    except BaseException:
        remove_tree(folder)
        raise
    return request, folder


def send(lease: Lease, job: Job, limits: Limits) -> Sent:
    server = lease.get()
    request, folder = prepare(server, job, limits)
    with lease._lock:
        lease.outstanding.add(request["id"])
    sent = Sent(job, request, folder, server, time.monotonic())
    try:
        server.send(request)
    except ServerDied:
        pass  # receive() reports it
    return sent


def receive(lease: Lease, sent: Sent, limits: Limits) -> list[TestResult]:
    """Wait for one sent test and grade it. Raises Cancelled when it was cancelled."""
    try:
        response = sent.server.receive(sent.request["id"], limits.timeout_s)
    except ServerDied as exc:
        if lease.server is sent.server:
            lease.server = None
        gone = {"seconds": time.monotonic() - sent.started, "stderr": str(exc)}
        return [result(sent.job.name, ("crash", "the sandbox server died (killed by the candidate?)"), gone)]
    finally:
        with lease._lock:
            lease.outstanding.discard(sent.request["id"])
        remove_tree(sent.folder)
    if response.get("reason") == "cancelled":
        raise Cancelled()
    graded = sent.job.grade(response)
    return graded if isinstance(graded, list) else [graded]


def abandon(lease: Lease, pending: list[Sent], limits: Limits) -> None:
    """Cancel tests sent ahead and wait for their (cancelled) answers, so their folders can go."""
    for sent in pending:
        sent.server.cancel(sent.request["id"])
    for sent in pending:
        try:
            receive(lease, sent, limits)
        except Cancelled:
            pass


SEND_AHEAD = 2  # tests queued at the server: it starts the next as soon as one ends, while this side grades


def run_candidate(code: str, plan: Plan, level: str, lease: Lease,
                  stop: Callable[[], bool] = lambda: False) -> Verdict | None:
    """All tests of one candidate on the leased server; None when stopped or cancelled before the end."""
    started = time.monotonic()
    try:
        jobs = plan.jobs(code)
    except pytest_kind.CandidateError as exc:
        return crashed(plan.suite, level, str(exc), time.monotonic() - started)
    tests: list[TestResult] = []
    pending: list[Sent] = []
    waiting = list(jobs)
    window = 1 if isinstance(lease, FreshLease) else SEND_AHEAD
    while waiting or pending:
        failed = any(t.status not in ("pass", "skipped") for t in tests)
        if stop() or (plan.limits.fail_fast and failed):
            abandon(lease, pending, plan.limits)
            if stop():
                return None
            tests += [TestResult(s.job.name, "skipped", 0.0, got="not run: an earlier test failed")
                      for s in pending]
            tests += [TestResult(job.name, "skipped", 0.0, got="not run: an earlier test failed")
                      for job in waiting]
            break
        while waiting and len(pending) < window:
            pending.append(send(lease, waiting.pop(0), plan.limits))
        current = pending.pop(0)
        try:
            tests += receive(lease, current, plan.limits)
        except Cancelled:
            abandon(lease, pending, plan.limits)
            return None
        if not lease.server or not lease.server.alive:  # a dead server: resend what it had queued
            resend, pending = pending, []
            for sent in resend:
                remove_tree(sent.folder)
                with lease._lock:
                    lease.outstanding.discard(sent.request["id"])
            waiting[:0] = [sent.job for sent in resend]
    passed = any(t.passed for t in tests) and all(t.status in ("pass", "skipped") for t in tests)
    return Verdict(passed, tests, level, time.monotonic() - started)


def crashed(suite: TestSuite, level: str, error: str, seconds: float = 0.0) -> Verdict:
    """The verdict of a candidate none of whose tests could run: failed, every test marked as a crash, the error
    named (a candidate that does not parse, or the sandbox's own fault)."""
    tests = [TestResult(name, "crash", 0.0, stderr_tail=error) for name in test_names(suite)]
    return Verdict(False, tests, level, seconds, error=error)


def run(code: str, suite: TestSuite, *, limits: Limits = Limits(), isolation: str | None = None) -> Verdict:
    """Run one candidate against a suite. Raises ValueError (grading.TestFormatError) for a malformed suite and
    IsolationUnavailable when the forced level cannot be set up here."""
    check_limits(limits)
    level = levels.resolve(isolation)
    plan = Plan(suite, limits)
    lease = Lease(level)
    try:
        return run_candidate(code, plan, level, lease)
    finally:
        lease.release()


def run_ranked(codes: Sequence[str], suite: TestSuite, *, stop_at_first_pass: bool = True,
               workers: int | None = None, cancel: threading.Event | None = None,
               on_result: Callable[[int, Verdict], None] | None = None, limits: Limits = Limits(),
               isolation: str | None = None) -> list[Verdict | None]:
    """Run candidates in their ranked order on a pool of workers (one per core by default). With
    `stop_at_first_pass`, once candidate i passes, candidates after i are cancelled (those before it still finish,
    since they rank higher). Returns one Verdict per candidate, None where it did not run to the end. `on_result`
    is called from worker threads as each verdict is known."""
    check_limits(limits)
    level = levels.resolve(isolation)
    plan = Plan(suite, limits)
    return _Ranked(codes, plan, level, stop_at_first_pass, cancel, on_result).run(workers)


class _Ranked:
    def __init__(self, codes, plan, level, stop_at_first_pass, cancel, on_result):
        self.codes, self.plan, self.level = list(codes), plan, level
        self.stop_at_first_pass, self.cancel, self.on_result = stop_at_first_pass, cancel, on_result
        self.results: list[Verdict | None] = [None] * len(self.codes)
        self.lock = threading.Lock()
        self.next_index = 0
        self.best_pass = len(self.codes)  # lowest index that passed so far
        self.running: dict[int, Lease] = {}

    def wanted(self, index: int) -> bool:
        if self.cancel is not None and self.cancel.is_set():
            return False
        return not (self.stop_at_first_pass and index > self.best_pass)

    def run(self, workers: int | None) -> list[Verdict | None]:
        count = min(len(self.codes), max(1, workers or os.cpu_count() or 1))
        threads = [threading.Thread(target=self.worker, name=f"sandbox-{n}", daemon=True) for n in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.02)
                if self.cancel is not None and self.cancel.is_set():
                    self.cancel_running(lambda index: True)
        return self.results

    def cancel_running(self, which: Callable[[int], bool]) -> None:
        with self.lock:
            leases = [lease for index, lease in self.running.items() if which(index)]
        for lease in leases:
            lease.cancel()

    def worker(self) -> None:
        lease = Lease(self.level)
        try:
            while True:
                with self.lock:
                    index = self.next_index
                    self.next_index += 1
                    if index >= len(self.codes):
                        return
                    if not self.wanted(index):
                        continue
                    self.running[index] = lease
                try:
                    verdict = run_candidate(self.codes[index], self.plan, self.level, lease,
                                            stop=lambda i=index: not self.wanted(i))
                except Exception as exc:  # a fault of ours or of the interpreter: say so instead of dying silently
                    lease.discard()
                    verdict = crashed(self.plan.suite, self.level,
                                      f"sandbox error (not the candidate's fault): {type(exc).__name__}: {exc}")
                finally:
                    with self.lock:
                        self.running.pop(index, None)
                if verdict is None:  # stopped part-way: early exit or the caller's cancel
                    continue
                self.results[index] = verdict
                if verdict.passed and self.stop_at_first_pass:
                    with self.lock:
                        self.best_pass = min(self.best_pass, index)
                    self.cancel_running(lambda other: other > self.best_pass)
                if self.on_result is not None:
                    self.on_result(index, verdict)
        finally:
            lease.release()
