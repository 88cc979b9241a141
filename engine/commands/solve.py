"""`atlas-ls solve FILE.py::FUNCTION`: solve one function headlessly, the way the editor would.

The workspace's tests that import or call the function are found as the language server finds them (or named with
`--tests`); the candidates are printed with their energies and verdicts (JSON with `--json`); `--apply` writes the
chosen solution into the file, and only when it passed. Exit status: 0 verified, 1 no candidate passed (or nothing
could verify it), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

WORKSPACE_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", "pytest.ini", "tox.ini", "conftest.py", ".git")


class BadInput(Exception):
    """What the user asked for cannot be done; the message says what was wrong."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "solve", help="solve one stub function with the workspace's tests",
        description="Solve one function: route, generate candidates, rank them with the Lens, run them against the "
                    "tests in the sandbox. Exit 0 when a candidate passed, 1 when none did, 2 on bad input.")
    parser.add_argument("target", metavar="FILE.py::FUNCTION", help="the function (Class.method for a method)")
    parser.add_argument("--tests", nargs="+", metavar="PATH_OR_NODEID",
                        help="pytest files or node ids to judge it by (default: the workspace tests that use it, "
                             "else its docstring examples)")
    parser.add_argument("--k", type=int, help="number of candidates (default: the router decides)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--apply", action="store_true", help="write the solution into the file if it passed")
    parser.add_argument("--workspace", type=Path,
                        help="workspace folder (default: the nearest folder above the file with a pyproject.toml, "
                             "conftest.py, setup.cfg, .git or similar)")
    parser.add_argument("--no-cache", action="store_true",
                        help="generate even when the pattern cache holds a verified solution for this function")
    parser.add_argument("--model", help="model profile or GGUF path (default: the `model` setting)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        file, qualname = parse_target(args.target)
        workspace = (args.workspace or find_workspace(file)).resolve()
        if args.k is not None and args.k < 1:
            raise BadInput(f"--k must be at least 1 (got {args.k})")
        settings = _settings(workspace, args)
        task, source = _task(workspace, file, qualname, args.tests)
    except BadInput as exc:
        print(f"atlas-ls solve: {exc}", file=sys.stderr)
        return 2
    result = _solve(settings, task, args)
    if result is None:
        return 2
    applied = _apply(file, qualname, source, result) if args.apply else None
    if args.json:
        print(json.dumps(result_json(result, file, qualname, applied), indent=2))
    else:
        print(render(result, file, qualname, applied))
    return 0 if result.verified else 1


def parse_target(target: str) -> tuple[Path, str]:
    if "::" not in target:
        raise BadInput(f"expected FILE.py::FUNCTION, got {target!r}")
    path_text, qualname = target.rsplit("::", 1)
    file = Path(path_text)
    if not qualname or not all(part.isidentifier() for part in qualname.split(".")):
        raise BadInput(f"{qualname!r} is not a function name (use FUNCTION or Class.method)")
    if file.suffix != ".py":
        raise BadInput(f"{file} is not a Python file")
    if not file.is_file():
        raise BadInput(f"no such file: {file}")
    return file.resolve(), qualname


def find_workspace(file: Path) -> Path:
    """The nearest folder above the file that looks like a project root; the file's own folder otherwise."""
    for folder in file.resolve().parents:
        if any((folder / marker).exists() for marker in WORKSPACE_MARKERS):
            return folder
    return file.resolve().parent


def _settings(workspace: Path, args: argparse.Namespace):
    from engine import config

    overrides = [config.ConfigLayer("--model", {"model": args.model})] if args.model else []
    settings, problems = config.load(workspace, overrides=overrides)
    for problem in problems:
        print(f"atlas-ls: {problem}", file=sys.stderr)
    return settings


def _task(workspace: Path, file: Path, qualname: str, tests: list[str] | None):
    import dataclasses

    from engine import workspace as ws

    try:
        file.relative_to(workspace)
    except ValueError:
        raise BadInput(f"{file} is not inside the workspace {workspace}") from None
    try:
        source = file.read_text(encoding="utf-8")
        task = ws.build_task(workspace, file, qualname, source)
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read {file}: {exc}") from None
    except ws.WorkspaceError as exc:
        raise BadInput(str(exc)) from None
    if tests:
        task = dataclasses.replace(task, tests=_named_tests(workspace, file, qualname, tests))
    return task, source


def _named_tests(workspace: Path, file: Path, qualname: str, tests: list[str]):
    """--tests: paths or node ids, relative to here or to the workspace, as a pytest suite."""
    from sandbox.types import PytestTarget, TestSuite

    node_ids = []
    for item in tests:
        path_text, sep, rest = item.partition("::")
        for base in (Path.cwd(), workspace):
            path = (base / path_text).resolve()
            if path.exists():
                break
        else:
            raise BadInput(f"--tests: no such file or folder: {path_text}")
        try:
            relative = path.relative_to(workspace)
        except ValueError:
            raise BadInput(f"--tests: {path_text} is outside the workspace {workspace}") from None
        node_ids.append(relative.as_posix() + sep + rest)
    target = PytestTarget(workspace=workspace, target_file=file.relative_to(workspace), function=qualname,
                          node_ids=tuple(node_ids))
    return TestSuite(kind="pytest", pytest=target)


def _solve(settings, task, args: argparse.Namespace):
    from engine.pipeline import Solver

    last = None

    def progress(p) -> None:
        nonlocal last
        if (p.phase, p.done) == last:
            return  # a line when a phase starts or a candidate finishes; one per token would drown the result
        last = (p.phase, p.done)
        print(f"  {p.phase:<10} {p.done}/{p.total}  {p.message}", file=sys.stderr)

    try:
        solver = Solver(settings, report=lambda m: print(m, file=sys.stderr))
    except Exception as exc:
        print(f"atlas-ls solve: cannot open the per-user database: {exc}", file=sys.stderr)
        return None
    try:
        return solver.solve(task, k=args.k, use_cache=not args.no_cache, progress=None if args.quiet else progress)
    except Exception as exc:
        if type(exc).__name__ == "ModelError":
            print(f"atlas-ls solve: {exc}", file=sys.stderr)
            return None
        raise
    finally:
        solver.close()


def _apply(file: Path, qualname: str, source: str, result) -> str:
    """Write the solution into the file: only a verified one, and only if the file did not change meanwhile."""
    from engine import workspace as ws

    if not result.verified:
        return "not applied: no candidate passed the tests"
    current = file.read_text(encoding="utf-8")
    if current != source:
        return f"not applied: {file} changed while solving"
    site = ws.find_function(current, qualname)
    if site is None:
        return f"not applied: {qualname} is no longer in {file}"
    try:
        file.write_text(ws.splice(current, site, result.code), encoding="utf-8")
    except (ws.SpliceError, OSError) as exc:
        return f"not applied: {exc}"
    return f"applied to {file}"


# --- output ---


def candidate_json(c) -> dict:
    v = c.verdict
    return {"rank": c.rank, "energy": c.energy, "confidence": c.confidence, "mean_logprob": round(c.mean_logprob, 4),
            "passed": c.passed, "tests_passed": v.passed_count if v else None, "tests_total": v.total if v else None,
            "greedy": c.greedy, "tokens": c.tokens, "error": v.error if v else "", "code": c.code}


def result_json(result, file: Path, qualname: str, applied: str | None) -> dict:
    return {"file": str(file), "function": qualname, "verified": result.verified, "tier": result.tier,
            "k": result.k, "difficulty": round(result.difficulty, 4), "ranking": result.ranking,
            "code": result.code, "seconds": round(result.seconds, 3), "tokens": result.tokens, "note": result.note,
            "candidates": [candidate_json(c) for c in result.candidates], "timings": result.timings,
            "route": result.extra.get("route"), "tiers": result.extra.get("tiers"),
            "hints": result.extra.get("hints"), "cancelled": result.cancelled, "applied": applied}


def _fmt(value: float | None, width: int, digits: int = 3) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def _verdict_text(c) -> str:
    v = c.verdict
    if v is None:
        return "not run"
    status = "PASS" if v.passed else "fail"
    if v.error and not v.tests:
        return f"{status} ({v.error[:40]})"
    failing = next((t.status for t in v.tests if not t.passed), "")
    return f"{status} {v.passed_count}/{v.total}" + (f" ({failing})" if failing and failing != "fail" else "")


def render(result, file: Path, qualname: str, applied: str | None) -> str:
    ranking = {"lens": "ranked by the Lens", "logprob": "ranked by log-probability",
               "none": "from the pattern cache"}.get(result.ranking, result.ranking)
    tiers = " -> ".join(f"{t['tier']} k={t['k']}" for t in result.extra.get("tiers") or []) or result.tier
    lines = [f"{qualname} in {file.name}: {tiers}, difficulty {result.difficulty:.2f}, {ranking}, "
             f"{result.seconds:.1f} s, {result.tokens} tokens",
             "  rank   energy  P(pass)  logprob  tokens  verdict"]
    for c in result.candidates:
        lines.append(f"  {c.rank:>4} {_fmt(c.energy, 8)} {_fmt(c.confidence, 8, 2)} {_fmt(c.mean_logprob, 8)} "
                     f"{c.tokens:>7}  {_verdict_text(c)}{'  (greedy)' if c.greedy else ''}")
    verdict = "VERIFIED: it passed the tests" if result.verified else "not verified"
    lines.append(f"{verdict}{'; ' + result.note if result.note else ''}")
    if result.code:
        lines += ["--- chosen solution ---", result.code.rstrip()]
    if applied:
        lines.append(applied)
    return "\n".join(lines)
