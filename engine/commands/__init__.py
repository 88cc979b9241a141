"""Subcommands of `atlas-ls`, one module each, registered here.

Each module listed in `MODULES` has `register(subparsers)`, which adds its parser and sets `func` (taking the parsed
arguments, returning an exit code). Each entry of `BENCHES` names a module with `bench_main(argv) -> int` for
`atlas-ls --bench NAME`. Modules import heavy libraries inside their functions, not at the top.
"""

from __future__ import annotations

import argparse
import importlib

MODULES: tuple[str, ...] = ("config", "doctor", "lens", "solve", "cache", "sandbox")

BENCHES: dict[str, str] = {"throughput": "throughput", "sandbox": "sandbox_bench",
                           "code-actions": "code_actions_bench"}


def register_all(subparsers: argparse._SubParsersAction) -> None:
    for name in MODULES:
        importlib.import_module(f"engine.commands.{name}").register(subparsers)


def run_bench(name: str, argv: list[str]) -> int:
    return importlib.import_module(f"engine.commands.{BENCHES[name]}").bench_main(argv)
