"""`atlas-ls cache stats|clear|export [--json]`: look into (or empty) the per-user pattern cache."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("cache", help="the pattern cache: stats, clear, export")
    parser.add_argument("action", choices=("stats", "clear", "export"))
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--embeddings", action="store_true", help="export: include the task embeddings")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine import config, paths
    from engine.cache import PatternCache
    from engine.router import Router
    from lens.db import open_database

    settings, problems = config.load(None)
    for problem in problems:
        print(f"atlas-ls: {problem}", file=sys.stderr)
    path = paths.database_path()
    conn = open_database(path, report=lambda m: print(m, file=sys.stderr))
    try:
        cache = PatternCache(conn, settings)
        if args.action == "stats":
            stats = {"database": str(path), **cache.stats(), "router": Router(conn, settings).table()}
            print(json.dumps(stats, indent=2) if args.json else _stats_text(stats))
        elif args.action == "clear":
            removed = cache.clear()
            print(json.dumps({"removed": removed}) if args.json else f"removed {removed} pattern-cache entries")
        else:
            entries = cache.export(embeddings=args.embeddings)
            print(json.dumps(entries, indent=2) if args.json else _entries_text(entries))
    finally:
        conn.close()
    return 0


def _stats_text(stats: dict) -> str:
    lines = [f"pattern cache in {stats['database']}",
             f"  entries {stats['entries']} ({stats['short_term']} short-term, {stats['long_term']} long-term)",
             f"  reuses {stats['uses']}, successful {stats['successes']}"]
    if stats["entries"]:
        lines.append(f"  retention mean {stats['mean_retention']:.3f}, lowest {stats['min_retention']:.3f} "
                     f"(pruned below {stats['prune_below']})")
    lines.append("router: mean P(success) per difficulty bin and tier (prior + outcomes)")
    for b in sorted({r["bin"] for r in stats["router"]}):
        row = [r for r in stats["router"] if r["bin"] == b]
        lines.append(f"  bin {b}: " + "  ".join(f"{r['tier']} {r['mean']:.2f} ({r['outcomes']})" for r in row))
    return "\n".join(lines)


def _entries_text(entries: list[dict]) -> str:
    if not entries:
        return "the pattern cache is empty"
    lines = []
    for e in entries:
        lines.append(f"{e['entry_point'] or e['key']}  [{e['tier']}, retention {e['retention']:.3f}, "
                     f"{e['successes']}/{e['uses']} successful reuses]  {e['hint']}")
    return "\n".join(lines)
