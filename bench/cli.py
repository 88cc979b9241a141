"""`atlas-ls --bench DATASET [options]` (also `atlas-ls bench DATASET ...`): called by atlas_ls.cli with the
arguments after `--bench`. Exit 0 when the run finished, 2 on bad input, 130 when interrupted (resumable)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

from bench.datasets import DATASETS, load_dataset
from bench.datasets.base import DatasetError
from bench.results import RunMismatch
from bench.runner import MODES, Interrupted, RunConfig
from engine.selection_metrics import percent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="atlas-ls --bench", description="Run the engine over a dataset and grade it on the hidden tests.",
        epilog="datasets: " + ", ".join(DATASETS))
    parser.add_argument("dataset", help="humaneval | scicode | lcb:PATH | evalplus:PATH | gpqa:PATH")
    parser.add_argument("--limit", type=_positive, help="only the first N tasks")
    parser.add_argument("--mode", choices=MODES, default="atlas",
                        help="baseline: one greedy sample per task (the Solver with k=1, no cache); "
                             "atlas: the full pipeline (default)")
    parser.add_argument("--k", type=_positive, help="fix the number of candidates (atlas; default: the router "
                                                    "decides, 5 for multiple choice)")
    parser.add_argument("--epochs", type=_positive, default=1,
                        help="split the tasks into E chunks and retrain the Lens between them")
    parser.add_argument("--model", help="model profile or GGUF path (default: the configured model)")
    parser.add_argument("--out", type=Path, help="run folder (default: bench-out/<dataset>-<mode>); the same "
                                                 "folder resumes a run")
    parser.add_argument("--json", action="store_true", help="print summary.json to stdout")
    parser.add_argument("--since", type=_day, help="LiveCodeBench: problems on or after YYYY-MM-DD")
    parser.add_argument("--until", type=_day, help="LiveCodeBench: problems on or before YYYY-MM-DD")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--max-tokens", type=_positive, help="token budget per candidate (default: the tiers')")
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _default_out(dataset: str, mode: str) -> Path:
    name = dataset.split(":", 1)[0] + ("-" + Path(dataset.split(":", 1)[1]).stem if ":" in dataset else "")
    return Path("bench-out") / f"{name}-{mode}"


def _headline(summary: dict) -> str:
    def pct(key: str) -> str:
        return percent(summary.get(key))

    def num(key: str, fmt: str = "{:.1f}") -> str:
        value = summary.get(key)
        return "n/a" if value is None else fmt.format(value)

    lines = [
        f"{summary['dataset']} ({summary['mode']}, {summary['model']}): {summary['tasks']} tasks, graded on "
        f"{summary['graded_on']}",
        f"  pass@1 {pct('pass_at_1')}   pass@k {pct('pass_at_k')} (mean k {num('k_mean')})",
        f"  first pick {pct('first_pick_accuracy')} on {summary.get('mixed_tasks', 0)} mixed tasks (random "
        f"{pct('random_pick_expectation')}, log-probability {pct('logprob_first_pick_accuracy')} (kept lines "
        f"{pct('body_logprob_first_pick_accuracy')}), Lens "
        f"{pct('lens_first_pick_accuracy')})   AUC {num('auc', '{:.3f}')}   energy gap {num('energy_gap', '{:.3f}')}",
        f"  {num('tasks_per_hour')} tasks/hour ({num('tasks_per_hour_median')} at the median task), "
        f"{num('tokens_per_s')} generated tokens/s   tiers "
        + ", ".join(f"{t} {n}" for t, n in summary.get("tier_counts", {}).items()),
    ]
    within = summary.get("within_attempt") or {}
    if within.get("mixed_attempts"):
        lines.append(f"  within one attempt (the order the sandbox tries): first pick "
                     f"{percent(within.get('first_pick_accuracy'))} on {within['mixed_attempts']} mixed attempts "
                     f"(random {percent(within.get('random_pick_expectation'))}, log-probability "
                     f"{percent(within.get('logprob_first_pick_accuracy'))}, Lens "
                     f"{percent(within.get('lens_first_pick_accuracy'))})")
    agreed = summary.get("agreement") or {}
    if agreed.get("tasks_compared"):
        lines.append(f"  agreement compared passing candidates on {agreed['tasks_compared']} tasks: chose another "
                     f"than the best-ranked on {agreed['changed']} ({agreed['gained']} gained a hidden-test pass, "
                     f"{agreed['lost']} lost one)")
    doubted = summary.get("doubt") or {}
    if doubted.get("tasks_escalated"):
        lines.append(f"  weak support (min_support): {doubted['tasks_escalated']} tasks escalated past a passing "
                     f"answer; the choice changed on {doubted['changed']} ({doubted['gained']} gained a hidden-test "
                     f"pass, {doubted['lost']} lost one)")
    labelled = summary.get("labelled_set")
    if labelled:
        lines.append(f"  Lens labels: {labelled['samples']} candidates of {labelled['tasks']} tasks "
                     f"({labelled['mixed_tasks']} mixed) in {labelled['path']}; measure with "
                     f"`atlas-ls lens cv --data {labelled['path']}`")
    lines += [f"  note: {n}" for n in summary.get("notes", [])]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already said what was wrong
        return int(exc.code or 0) if exc.code in (0, None) else 2
    if args.mode == "baseline" and args.k not in (None, 1):
        print(f"atlas-ls --bench: --mode baseline is one greedy sample per task; --k {args.k} needs --mode atlas",
              file=sys.stderr)
        return 2
    dataset = _dataset(args)
    if dataset is None:
        return 2
    if args.model is None:
        from engine import config as engine_config

        args.model = engine_config.load(None)[0].model  # named in the run's identity, so a resume cannot mix models
    config = RunConfig(dataset=dataset.name, mode=args.mode, k=args.k, epochs=args.epochs, model=args.model,
                       limit=args.limit, seed=args.seed, max_tokens=args.max_tokens)
    out = args.out or _default_out(args.dataset, args.mode)
    from bench import runner

    try:
        summary = runner.run(dataset, config, out)
        code = 0
    except RunMismatch as exc:
        print(f"atlas-ls --bench: {exc}", file=sys.stderr)
        return 2
    except Interrupted as stopped:
        summary, code = stopped.summary, 130
        print(f"interrupted: {summary['tasks']} of {summary['planned_tasks']} tasks are in {out}; run the same "
              "command again to resume", file=sys.stderr)
    _print_summary(summary, out, as_json=args.json)
    return code


def _dataset(args):
    """The dataset the arguments name, its skipped records reported; None (after saying why) when there is
    nothing to run."""
    try:
        dataset = load_dataset(args.dataset, since=args.since, until=args.until)
    except DatasetError as exc:
        print(f"atlas-ls --bench: {exc}", file=sys.stderr)
        return None
    for message in dataset.skipped:
        print(f"skipped malformed record: {message}", file=sys.stderr)
    if not dataset.items:
        print(f"atlas-ls --bench: {args.dataset} has no tasks to run", file=sys.stderr)
        return None
    return dataset


def _print_summary(summary: dict, out: Path, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
        return
    print(_headline(summary))
    print(f"results: {out / 'results.jsonl'}\nsummary: {out / 'summary.json'}\nreport:  {out / 'report.html'}")
