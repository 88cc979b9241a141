"""Dataset loaders. Each returns a `Dataset` of `BenchItem`s: the Task the pipeline sees (public tests only) and the
bench's own grading record beside it (hidden tests, answer letters), plus the malformed records it skipped."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from bench.datasets.base import BenchItem, Dataset, DatasetError, Grading

DATASETS = ("humaneval", "scicode", "lcb:PATH", "evalplus:PATH", "gpqa:PATH")

__all__ = ["BenchItem", "Dataset", "DatasetError", "Grading", "DATASETS", "load_dataset"]


def load_dataset(spec: str, *, since: date | None = None, until: date | None = None) -> Dataset:
    """`humaneval`, `scicode[:PATH]`, `lcb:PATH`, `evalplus:PATH` or `gpqa:PATH`."""
    name, _, path = spec.partition(":")
    name = name.lower()
    if (since or until) and name != "lcb":
        raise DatasetError("--since/--until apply to LiveCodeBench (lcb:PATH) only")
    if name == "humaneval":
        from bench.datasets import humaneval

        return humaneval.load(Path(path) if path else None)
    if name == "scicode":
        from bench.datasets import scicode

        return scicode.load(Path(path) if path else None)
    if name in ("lcb", "evalplus", "gpqa"):
        if not path:
            raise DatasetError(f"{name} needs a file: {name}:PATH")
        from importlib import import_module

        module = import_module(f"bench.datasets.{name}")
        return module.load(Path(path), since=since, until=until) if name == "lcb" else module.load(Path(path))
    raise DatasetError(f"unknown dataset {spec!r}; expected one of {', '.join(DATASETS)}")
