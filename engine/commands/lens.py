"""`atlas-ls lens stats|train|cv|export|import`: what the Lens has learned, train it now, measure it, share it.

A Lens belongs to one model (its fingerprint: a hash of the GGUF's header and size). The current model is the one
the settings name (or `--model`), fingerprinted from its GGUF header without loading it; `--model-fingerprint`
names one directly. Checkpoints live in `<data dir>/lens/<fingerprint>.pt`, samples in the per-user database.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EARNED = "ranked by the Lens: it beat the log-probability on held-out tasks"  # when why_logprob_ranks says ""


@dataclass
class ModelIdentity:
    fingerprint: str
    n_embd: int | None
    name: str


class ModelUnknown(Exception):
    pass


class Refused(Exception):
    """A command stopped on bad input: the message is worded for the user, `code` is the exit status."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def curve_fractions(text: str) -> list[float]:
    """`0.25,0.5,1` -> [0.25, 0.5, 1.0]; argparse reports what was wrong."""
    try:
        fractions = [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
    bad = [f for f in fractions if not 0 < f <= 1]
    if bad:
        raise argparse.ArgumentTypeError(f"each fraction must lie in (0, 1], not {', '.join(map(str, bad))}")
    return fractions


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("lens", help="the Lens (learned verifier): stats, train, export, import")
    actions = parser.add_subparsers(dest="lens_action", metavar="ACTION", required=True)
    stats = actions.add_parser("stats", help="samples per model and label, tasks, last training, AUC, selection")
    train = actions.add_parser("train", help="train the Lens on the stored samples now and print its metrics")
    cv = actions.add_parser("cv", help="task-split cross-validation of the Lens on the stored samples (or --data)")
    cv.add_argument("--folds", type=int, default=5, help="folds (whole tasks per fold; default 5)")
    cv.add_argument("--source", help="only samples from this source (editor, bench)")
    cv.add_argument("--data", type=Path, help="an .npz with X, y, task_keys[, mean_logprobs] instead of the store")
    cv.add_argument("--seed", type=int, help="seed (default: the `seed` setting)")
    cv.add_argument("--features", choices=("mean", "last", "both"), default="mean",
                    help="with --data: the mean-pooled states the Lens uses (default), the last-token states, or both "
                         "side by side, to compare poolings")
    cv.add_argument("--curve", type=curve_fractions, metavar="FRACTIONS",
                    help="a learning curve instead: first pick when each fold trains on these fractions of its "
                         "training tasks (comma-separated, each in (0, 1], e.g. 0.25,0.5,1): has it flattened?")
    cv.add_argument("--seeds", type=int,
                    help="seeds to average, from --seed on, each drawing its own folds (and, with --curve, its own "
                         "subsample); default 1, or 3 with --curve")
    export = actions.add_parser("export", help="write the current model's Lens to PATH")
    export.add_argument("path", type=Path)
    imp = actions.add_parser("import", help="install a Lens from PATH (refused if trained on another model)")
    imp.add_argument("path", type=Path)
    for sub in (stats, train, cv, export, imp):
        sub.add_argument("--model", help="model profile name or GGUF path (default: the `model` setting)")
        sub.add_argument("--model-fingerprint", help="the model's fingerprint, instead of reading its GGUF")
        sub.add_argument("--workspace", type=Path, default=Path.cwd(), help="workspace whose settings apply")
    for sub in (stats, train, cv):
        sub.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    action = {"stats": stats_command, "train": train_command, "cv": cv_command, "export": export_command,
              "import": import_command}[args.lens_action]
    try:
        return action(args)
    except ModelUnknown as exc:
        print(f"atlas-ls lens: {exc}", file=sys.stderr)
        return 2
    except Refused as exc:
        print(exc, file=sys.stderr)
        return exc.code


# --- where things are ---

def checkpoint_dir() -> Path:
    from engine.paths import lens_dir

    return lens_dir()


def open_store():
    from engine.paths import database_path
    from lens.db import open_database
    from lens.store import SampleStore

    report = lambda message: print(message, file=sys.stderr)  # noqa: E731 - the user must see a database move
    return SampleStore(open_database(database_path(), report=report))


def current_model(args: argparse.Namespace) -> ModelIdentity:
    """The model whose Lens the command is about; ModelUnknown (with what to do) when it cannot be determined."""
    if args.model_fingerprint:
        return ModelIdentity(args.model_fingerprint, None, args.model_fingerprint)
    from engine import config

    settings, _ = config.load(args.workspace)
    name = args.model or settings.model
    from engine.models import ModelError, resolve_model, validate_gguf

    try:
        info = validate_gguf(resolve_model(name))
    except ModelError as exc:
        raise ModelUnknown(f"cannot fingerprint the model {name!r}: {exc}; or pass --model-fingerprint")
    return ModelIdentity(info.fingerprint, info.n_embd, info.name)


def embedding_width(store, identity: ModelIdentity) -> int | None:
    if identity.n_embd:
        return identity.n_embd
    X, _, _ = store.dataset(identity.fingerprint)
    return int(X.shape[1]) if len(X) else None


# --- stats ---

def checkpoint_summary(path: Path) -> dict[str, Any] | None:
    from lens.model import CheckpointError, read_checkpoint

    try:
        payload = read_checkpoint(path)
    except (CheckpointError, OSError) as exc:
        return {"path": str(path), "error": str(exc)}
    meta = {k: v for k, v in payload["metadata"].items() if k not in ("train_tasks", "config")}
    return {"path": str(path), **meta, **ranking_fields(payload["metadata"])}


def ranking_fields(metadata: dict[str, Any] | None, min_heldout_mixed: int | None = None) -> dict[str, str]:
    """What orders candidates under this Lens ("lens" or "logprob") and why not the Lens, for stats and train."""
    from lens.learner import MIN_HELDOUT_MIXED, why_logprob_ranks

    if metadata is None:
        return {"ranks": "logprob", "ranking_note": "no Lens yet"}
    unearned = why_logprob_ranks(metadata, MIN_HELDOUT_MIXED if min_heldout_mixed is None else min_heldout_mixed)
    return {"ranks": "logprob" if unearned else "lens", "ranking_note": unearned}


def gather_stats(args: argparse.Namespace) -> dict[str, Any]:
    from lens.model import checkpoint_path

    store = open_store()
    try:
        current: str | None = current_model(args).fingerprint
        model_note = None
    except ModelUnknown as exc:
        current, model_note = None, str(exc)
    folder = checkpoint_dir()
    checkpoints = {p.stem: p for p in sorted(folder.glob("*.pt"))} if folder.is_dir() else {}
    fingerprints = list(dict.fromkeys(([current] if current else []) + store.models() + list(checkpoints)))
    models = {}
    for fp in fingerprints:
        path = checkpoint_path(folder, fp)
        models[fp] = {**store.counts(fp),
                      "checkpoint": checkpoint_summary(path) if path.exists() else None,
                      "last_training": store.last_training(fp)}
    subject = current or _most_recent(models)
    chosen = models.get(subject, {}) if subject else {}
    checkpoint = chosen.get("checkpoint") or {}
    return {
        "model_fingerprint": subject,
        "current_model": current is not None and subject == current,
        "model_note": model_note,
        "samples": chosen.get("samples", 0),
        "auc": checkpoint.get("auc"),
        "trained_at": checkpoint.get("trained_at"),
        "selection_accuracy": checkpoint.get("first_pick"),
        "random_pick": checkpoint.get("random_pick"),
        "logprob_selection_accuracy": checkpoint.get("logprob_first_pick"),
        "ranks": checkpoint.get("ranks", "logprob"),  # what orders candidates now: "lens" or "logprob"
        "checkpoint_dir": str(folder),
        "models": models,
    }


def _most_recent(models: dict[str, dict[str, Any]]) -> str | None:
    """Without a known current model, speak of the most recently trained one (else the one with most samples)."""
    trained = [(m["checkpoint"].get("trained_at", ""), fp) for fp, m in models.items() if m.get("checkpoint")]
    if trained:
        return max(trained)[1]
    return next(iter(models), None)


def stats_command(args: argparse.Namespace) -> int:
    stats = gather_stats(args)
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    if stats["model_note"]:
        print(f"note: {stats['model_note']}")
    if not stats["models"]:
        print("The Lens has no samples and no checkpoints yet: solve functions in the editor or run a benchmark.")
        return 0
    for fp, model in stats["models"].items():
        print(describe_model(fp, model, current=stats["current_model"] and fp == stats["model_fingerprint"]))
    return 0


def describe_model(fp: str, model: dict[str, Any], current: bool) -> str:
    sources = ", ".join(f"{source} {n}" for source, n in model["by_source"].items()) or "none"
    lines = [f"model {fp}{' (current)' if current else ''}",
             f"  samples: {model['samples']} ({model['passed']} pass, {model['failed']} fail) over "
             f"{model['tasks']} tasks ({model['mixed_tasks']} with both); by source: {sources}"]
    checkpoint = model["checkpoint"]
    if checkpoint is None:
        lines.append("  Lens: none yet (candidates are ranked by mean token log-probability)")
    elif "error" in checkpoint:
        lines.append(f"  Lens: unreadable ({checkpoint['error']})")
    else:
        lines.append(f"  Lens: trained {checkpoint.get('trained_at')} on {checkpoint.get('samples')} samples, "
                     f"{checkpoint.get('tasks')} tasks; held-out AUC {_num(checkpoint.get('auc'))}, first-pick "
                     f"{percent(checkpoint.get('first_pick'))} (random {percent(checkpoint.get('random_pick'))}, "
                     f"log-prob {percent(checkpoint.get('logprob_first_pick'))}) on "
                     f"{checkpoint.get('heldout_mixed_tasks', 'n/a')} mixed held-out tasks")
        lines.append(f"  {checkpoint['ranking_note'] or EARNED}")
    last = model["last_training"]
    if last:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last["finished"]))
        lines.append(f"  last training: {when}, {last['samples']} samples: {last['reason']}")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def percent(value: float | None) -> str:
    # lens.metrics pulls in numpy: imported here, when a command prints, so `atlas-ls` itself starts fast
    from lens.metrics import percent as lens_percent

    return lens_percent(value)


# --- train ---

def train_command(args: argparse.Namespace) -> int:
    from engine import config
    from lens.learner import Learner
    from lens.train import NotEnoughData, TrainConfig

    identity = current_model(args)
    settings, _ = config.load(args.workspace)
    store = open_store()
    n_embd = embedding_width(store, identity)
    if n_embd is None:
        print(f"atlas-ls lens train: no labelled samples for model {identity.fingerprint} yet: solve functions in "
              f"the editor or run a benchmark first", file=sys.stderr)
        return 1
    learner = Learner(store.conn, checkpoint_dir(), identity.fingerprint, n_embd,
                      min_per_class=settings.lens_min_per_class,
                      report=lambda message: print(message, file=sys.stderr))
    try:
        outcome = learner.retrain(TrainConfig(seed=settings.seed))
    except NotEnoughData as exc:
        print(f"atlas-ls lens train: {exc}", file=sys.stderr)
        return 1
    current = learner.lens  # the new Lens when it was swapped in, else the one kept
    result = {"model_fingerprint": identity.fingerprint, "swapped": outcome.swapped, "reason": outcome.reason,
              "checkpoint": str(learner.path), **outcome.metrics,
              **ranking_fields(current and current.metadata, learner.min_heldout_mixed)}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(describe_training(result))
    return 0


def describe_training(result: dict[str, Any]) -> str:
    lines = [f"{result['reason']}",
             f"held-out ({result['tasks']} tasks, {result['samples']} samples, {result['mixed_tasks']} mixed): "
             f"AUC {_num(result['auc'])}, first-pick {percent(result['first_pick'])} vs random "
             f"{percent(result['random_pick'])} and log-prob {percent(result.get('logprob_first_pick'))}, energy gap "
             f"{_num(result['energy_gap'])}",
             f"trained on {result['train_samples']} samples of {result['train_tasks']} tasks; best epoch "
             f"{result['best_epoch']} of {result['epochs']}; train AUC {_num(result['train_auc'])}",
             "energy quartiles (low -> high), pass rate: "
             + ", ".join(f"{100 * q['pass_rate']:.0f}%" for q in result["energy_quartiles"])]
    if result["swapped"]:
        lines.append(f"saved to {result['checkpoint']}")
    lines.append(result["ranking_note"] or EARNED)
    return "\n".join(lines)


# --- cross-validation ---

def cv_command(args: argparse.Namespace) -> int:
    from engine import config
    from lens.train import NotEnoughData, cross_validate_seeds

    if args.folds < 2:
        print("atlas-ls lens cv: --folds must be at least 2", file=sys.stderr)
        return 2
    if args.seeds is not None and args.seeds < 1:
        print("atlas-ls lens cv: --seeds must be at least 1", file=sys.stderr)
        return 2
    settings, _ = config.load(args.workspace)
    X, y, keys, logprobs, subject = _cv_data(args)
    seed = settings.seed if args.seed is None else args.seed
    if args.curve:
        return curve_command(args, X, y, keys, logprobs, subject, range(seed, seed + (args.seeds or 3)))
    try:
        report = cross_validate_seeds(X, y, keys, range(seed, seed + (args.seeds or 1)), k=args.folds,
                                      mean_logprobs=logprobs)
    except (NotEnoughData, ValueError) as exc:
        print(f"atlas-ls lens cv: {subject}: {exc}", file=sys.stderr)
        return 1
    report = {"data": subject, **report}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{subject}: {report['folds']}-fold task-split cross-validation over {report['tasks']} tasks "
              f"({report['samples']} samples, {report['mixed_tasks']} mixed)\n"
              f"first-pick {percent(report['first_pick'])}{_per_seed(report)} vs random "
              f"{percent(report['random_pick'])} and log-prob {percent(report.get('logprob_first_pick'))}; AUC {_num(report['auc'])} (mean of folds); "
              f"energy gap {_num(report['energy_gap'])}")
    return 0


def _cv_data(args: argparse.Namespace):
    """(X, y, task keys, log-probabilities, a name for them) from --data or the store; Refused when neither can
    be read."""
    from lens.store import read_labelled_set

    if args.data is not None:
        try:
            X, y, keys, logprobs = read_labelled_set(args.data.expanduser(), features=args.features)
        except (OSError, ValueError) as exc:
            raise Refused(f"atlas-ls lens cv: cannot read {args.data}: {exc}", 1) from None
        features = "" if args.features == "mean" else f" ({args.features} features)"
        return X, y, keys, logprobs, f"{args.data}{features}"
    if args.features != "mean":
        raise Refused("atlas-ls lens cv: --features needs --data (the store keeps mean-pooled states only)", 2)
    identity = current_model(args)
    X, y, keys, logprobs = open_store().dataset(identity.fingerprint, with_logprobs=True, source=args.source)
    return X, y, keys, logprobs, f"model {identity.fingerprint}" + (f", source {args.source}" if args.source else "")


def _per_seed(report: dict[str, Any]) -> str:
    """' (mean of seeds 0..2: 68.9% / 50.0% / 56.8%)' when several seeds were averaged, else nothing."""
    if len(report["seeds"]) < 2:
        return ""
    picks = " / ".join(percent(p) for p in report["first_picks"])
    return f" (mean of seeds {report['seeds'][0]}..{report['seeds'][-1]}: {picks})"


def curve_command(args: argparse.Namespace, X, y, keys, logprobs, subject: str, seeds: range) -> int:
    from lens.train import learning_curve

    try:
        report = learning_curve(X, y, keys, args.curve, k=args.folds, seeds=seeds, mean_logprobs=logprobs)
    except ValueError as exc:
        print(f"atlas-ls lens cv: {subject}: {exc}", file=sys.stderr)
        return 1
    report = {"data": subject, **report}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{subject}: learning curve, {report['folds']}-fold task-split cross-validation over {report['tasks']} "
          f"tasks ({report['samples']} samples, {report['mixed_tasks']} mixed), seeds {report['seeds'][0]}.."
          f"{report['seeds'][-1]}\nrandom {percent(report['random_pick'])}, log-prob "
          f"{percent(report.get('logprob_first_pick'))}")
    for point in report["points"]:
        untrained = f" ({point['untrained_folds']} folds without a Lens)" if point["untrained_folds"] else ""
        print(f"  {point['fraction']:>5.0%} of training tasks (~{point['train_tasks']:.0f}): first pick "
              f"{percent(point['first_pick'])}{untrained}")
    return 0


# --- export / import ---

def export_command(args: argparse.Namespace) -> int:
    from lens.model import CheckpointError, Lens, checkpoint_path, write_atomically

    identity = current_model(args)
    source = checkpoint_path(checkpoint_dir(), identity.fingerprint)
    if not source.exists():
        print(f"atlas-ls lens export: there is no Lens for model {identity.fingerprint} yet (looked for {source}); "
              f"train one with `atlas-ls lens train`", file=sys.stderr)
        return 1
    try:
        lens = Lens.load(source, model_fingerprint=identity.fingerprint)
    except (CheckpointError, ValueError) as exc:
        print(f"atlas-ls lens export: {exc}", file=sys.stderr)
        return 1
    data = source.read_bytes()
    write_atomically(args.path.expanduser(), lambda fh: fh.write(data))
    print(f"exported the Lens for model {identity.fingerprint} ({lens.metadata.get('samples')} samples, held-out "
          f"AUC {_num(lens.metadata.get('auc'))}) to {args.path}")
    return 0


def import_command(args: argparse.Namespace) -> int:
    from lens.model import CheckpointError, Lens, LensMismatch, checkpoint_path, write_atomically

    identity = current_model(args)
    path = args.path.expanduser()
    if not path.is_file():
        print(f"atlas-ls lens import: {path} is not a file", file=sys.stderr)
        return 1
    store = open_store()
    try:
        lens = Lens.load(path, model_fingerprint=identity.fingerprint, n_embd=embedding_width(store, identity))
    except LensMismatch as exc:
        print(f"atlas-ls lens import: refused: {exc}", file=sys.stderr)
        return 1
    except CheckpointError as exc:
        print(f"atlas-ls lens import: {exc}", file=sys.stderr)
        return 1
    target = checkpoint_path(checkpoint_dir(), identity.fingerprint)
    kept = None
    if target.exists():
        # The Lens being replaced is kept, not overwritten: importing must lose nothing.
        kept = target.with_name(f"{target.name}.before-import-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.copy2(target, kept)
    data = path.read_bytes()
    write_atomically(target, lambda fh: fh.write(data))
    print(f"imported the Lens for model {identity.fingerprint} ({lens.metadata.get('samples')} samples, held-out "
          f"AUC {_num(lens.metadata.get('auc'))}) into {target}" + (f"; the previous one was kept as {kept}"
                                                                      if kept else ""))
    return 0
