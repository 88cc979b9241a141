"""`atlas-ls config show|schema`: the settings in force for a workspace, and their JSON schema."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("config", help="show the settings in force, or their JSON schema")
    parser.add_argument("action", choices=("show", "schema"))
    parser.add_argument("--workspace", type=Path, default=Path.cwd(), help="workspace folder (default: here)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine import config

    if args.action == "schema":
        print(json.dumps(config.json_schema(), indent=2))
        return 0
    settings, problems = config.load(args.workspace)
    for problem in problems:
        print(f"atlas-ls: {problem}", file=sys.stderr)
    print(json.dumps(dataclasses.asdict(settings), indent=2))
    return 1 if problems else 0
