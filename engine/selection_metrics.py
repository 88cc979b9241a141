"""Selection metrics for callers outside the engine (the benchmark): the Lens's own functions, re-exported so that
`bench` imports `engine` only and reports exactly what the Lens is judged by; likewise the labelled-set file format
that `atlas-ls lens cv --data` reads."""

from __future__ import annotations

from lens.metrics import (auc, energy_gap, energy_quartiles, finite_or_none, first_pick_accuracy, group_by_task,
                          is_mixed, percent, random_pick_expectation, selection_report)
from lens.store import write_labelled_set

__all__ = ["auc", "energy_gap", "energy_quartiles", "finite_or_none", "first_pick_accuracy", "group_by_task",
           "is_mixed", "percent", "random_pick_expectation", "selection_report", "write_labelled_set"]
