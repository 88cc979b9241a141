"""`atlas-ls --bench code-actions`: how fast the server lists its code actions (the issue's target: 100 ms).

It starts the server as an editor does (`python -m atlas_ls` over stdio, model not loaded) and times
`textDocument/codeAction` round trips on the line of a stub: on a new document version each time (parsed again) and
on the same version (cached). It also times the parse alone, in process. Two documents: a small module and a large
generated one (`--functions`), or a file of yours (`--file`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

SMALL_MODULE = '''"""Small functions, one left to write."""


def double(x):
    return 2 * x


def add(a, b):
    """Return the sum of a and b."""
    pass
'''


def generated_module(functions: int) -> str:
    """A module of real functions and one stub in the middle (the cursor's place)."""
    parts = ['"""Generated for the code-action benchmark."""\n\nimport math\n']
    for i in range(functions):
        if i == functions // 2:
            parts.append('\ndef target(values):\n    """Return the mean of values."""\n    ...\n')
        parts.append(f"\ndef helper_{i}(x, y=1):\n    \"\"\"Helper {i}.\"\"\"\n    total = 0\n"
                     f"    for k in range(y):\n        total += math.sqrt(abs(x)) * k\n    return total + {i}\n")
    return "".join(parts)


def stub_line(source: str) -> int:
    from engine.workspace import function_sites

    sites = [s for s in function_sites(source) or [] if s.is_stub]
    if not sites:
        raise SystemExit("atlas-ls --bench code-actions: the document has no stub function to point at")
    return sites[0].def_line


def summary(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {"n": len(ordered), "median_ms": 1000 * statistics.median(ordered),
            "p95_ms": 1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
            "max_ms": 1000 * ordered[-1]}


def parse_times(source: str, repeats: int) -> list[float]:
    from engine.workspace import function_sites, innermost_at

    line = stub_line(source)
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        innermost_at(function_sites(source) or [], line)
        out.append(time.perf_counter() - started)
    return out


async def round_trips(documents: dict[str, str], requests: int) -> dict[str, dict[str, list[float]]]:
    with tempfile.TemporaryDirectory(prefix="atlas-bench-actions-") as workspace:
        folder = Path(workspace)
        client = await _start_server(folder)
        results: dict[str, dict[str, list[float]]] = {}
        for name, source in documents.items():
            params = await _open_stub(client, folder / f"{name}.py", source)
            results[name] = await _time_requests(client, params, source, requests)
        await client.shutdown_async(None)
        client.exit(None)
        await client.stop()
    return results


async def _start_server(folder: Path):
    """A real server over stdio, initialised on `folder`, with no model loaded and no test watching."""
    from lsprotocol import types
    from pygls.lsp.client import LanguageClient

    client = LanguageClient("atlas-bench", "1")
    await client.start_io(sys.executable, "-m", "atlas_ls")
    await client.initialize_async(types.InitializeParams(
        capabilities=types.ClientCapabilities(text_document=types.TextDocumentClientCapabilities(
            code_action=types.CodeActionClientCapabilities(code_action_literal_support=types.ClientCodeActionLiteralOptions(
                code_action_kind=types.ClientCodeActionKindOptions(value_set=["refactor.rewrite"]))))),
        root_uri=folder.as_uri(), initialization_options={"preloadModel": False, "watchTests": False}))
    client.initialized(types.InitializedParams())
    return client


async def _open_stub(client, path: Path, source: str):
    """Open `source` at `path`; the code-action request on its stub line, after checking one action is offered."""
    from lsprotocol import types

    path.write_text(source)
    uri, line = path.as_uri(), stub_line(source)
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri=uri, language_id="python", version=1, text=source)))
    params = types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        range=types.Range(start=types.Position(line=line, character=4), end=types.Position(line=line, character=4)),
        context=types.CodeActionContext(diagnostics=[]))
    if not await client.text_document_code_action_async(params):
        raise SystemExit(f"atlas-ls --bench code-actions: no action offered on the stub of {path.stem}")
    return params


async def _time_requests(client, params, source: str, requests: int) -> dict[str, list[float]]:
    """Seconds per request: after each edit (a new document version) and again on the same version."""
    from lsprotocol import types

    uri = params.text_document.uri
    uncached, cached = [], []
    for version in range(2, requests + 2):
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=source + "\n" * (version % 2))]))
        started = time.perf_counter()
        await client.text_document_code_action_async(params)
        uncached.append(time.perf_counter() - started)
        started = time.perf_counter()
        await client.text_document_code_action_async(params)
        cached.append(time.perf_counter() - started)
    return {"new version": uncached, "same version": cached}


def bench_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="atlas-ls --bench code-actions",
                                     description="Time the server's code-action listing (target: 100 ms).")
    parser.add_argument("--requests", type=int, default=50, help="requests per document and case (default 50)")
    parser.add_argument("--functions", type=int, default=400, help="functions in the large generated module")
    parser.add_argument("--file", type=Path, help="time this Python file (it needs a stub function) instead")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    logging.getLogger("pygls").setLevel(logging.ERROR)  # the server's status and log notifications are not ours
    if args.file is not None:
        documents = {args.file.stem: args.file.read_text(encoding="utf-8")}
    else:
        documents = {"small": SMALL_MODULE, f"large_{args.functions}_functions": generated_module(args.functions)}
    trips = asyncio.run(round_trips(documents, args.requests))
    report = {name: {"lines": source.count("\n") + 1, "parse in process": summary(parse_times(source, args.requests)),
                     **{case: summary(times) for case, times in trips[name].items()}}
              for name, source in documents.items()}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print("code-action listing over stdio (target 100 ms), milliseconds")
    print(f"{'document':34} {'case':18} {'median':>8} {'p95':>8} {'max':>8}")
    for name, cases in report.items():
        for case, stats in cases.items():
            if case != "lines":
                print(f"{name + ' (' + str(cases['lines']) + ' lines)':34} {case:18} {stats['median_ms']:8.1f} "
                      f"{stats['p95_ms']:8.1f} {stats['max_ms']:8.1f}")
    return 0
