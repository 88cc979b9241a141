"""The `atlas-ls` command.

With no arguments it serves LSP over stdio. Subcommands (`doctor`, `solve`, `sandbox`, `lens`, `cache`, ...) are
registered by `engine.commands`; `--bench TARGET` (or `bench TARGET`) runs a benchmark: the engine's own
(`throughput`, `sandbox`) or a dataset run by the `bench` package. Heavy imports (torch, llama.cpp) happen inside
the commands, so `atlas-ls --version` and server start-up stay fast.
"""

from __future__ import annotations

import argparse
import sys

from atlas_ls import __version__


def build_parser() -> argparse.ArgumentParser:
    from engine import commands

    parser = argparse.ArgumentParser(
        prog="atlas-ls",
        description="Solve Python functions with a local model, a learned verifier and a sandbox. "
        "With no command, serve the Language Server Protocol over stdio.",
        epilog="Benchmarks: atlas-ls --bench {" + ",".join(sorted(commands.BENCHES)) + ",DATASET} [options]",
    )
    parser.add_argument("--version", action="version", version=f"atlas-ls {__version__}")
    parser.add_argument("--stdio", action="store_true", help="serve LSP over stdio (the default)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.register_all(subparsers)
    return parser


def _bench_argv(argv: list[str]) -> list[str] | None:
    """`--bench X ...`, `--bench=X ...` and `bench X ...` all mean the benchmark X; None when it is not a bench."""
    if not argv:
        return None
    head = argv[0]
    if head in ("--bench", "bench"):
        return argv[1:]
    if head.startswith("--bench="):
        return [head.split("=", 1)[1], *argv[1:]]
    return None


def run_bench(argv: list[str]) -> int:
    from engine import commands

    if not argv or argv[0].startswith("-"):
        print("atlas-ls --bench: name what to benchmark: " + ", ".join(sorted(commands.BENCHES))
              + ", or a dataset (humaneval, lcb:PATH, evalplus:PATH, gpqa:PATH, scicode)", file=sys.stderr)
        return 2
    if argv[0] in commands.BENCHES:
        return commands.run_bench(argv[0], argv[1:])
    # Datasets are the bench package's: the command line is the one door onto both front doors.
    try:
        from bench.cli import main as bench_main
    except ImportError as exc:
        print(f"atlas-ls --bench: dataset benchmarks are not available ({exc})", file=sys.stderr)
        return 2
    return bench_main(argv)


def serve() -> int:
    from atlas_ls.server import serve_stdio

    serve_stdio()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    bench_argv = _bench_argv(argv)
    if bench_argv is not None:
        return run_bench(bench_argv)
    args = build_parser().parse_args(argv)
    if args.command is None:
        return serve()
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
