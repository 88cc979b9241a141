"""The run folder: `run.json` (what was asked), `results.jsonl` (one line per finished task, appended and flushed to
disk the moment the task is graded) and, at the end, `summary.json` and `report.html`. Re-running with the same
folder resumes: finished tasks are skipped, and a line cut short by a kill (the task in flight) is dropped."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

RESULTS = "results.jsonl"
RUN = "run.json"
# Options that change what a result means: resuming with different ones would mix two experiments in one file.
IDENTITY = ("dataset", "mode", "model", "k", "epochs", "seed", "max_tokens")


class RunMismatch(Exception):
    """The folder holds a run with other options; the message names them."""


class RunFolder:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.results_path = self.path / RESULTS
        self.dropped_partial = False
        self.damaged_lines: list[int] = []  # line numbers of results.jsonl that are not a record: those tasks rerun

    def start(self, config: dict[str, Any]) -> None:
        """Create the folder, or check that it holds the same run; remember the options."""
        self.path.mkdir(parents=True, exist_ok=True)
        run_file = self.path / RUN
        if run_file.is_file():
            previous = self._previous_options(run_file)
            different = [f"{key}: {previous.get(key)!r} there, {config.get(key)!r} now" for key in IDENTITY
                         if key in previous and previous.get(key) != config.get(key)]
            if different:
                raise RunMismatch(f"{self.path} holds another run ({'; '.join(different)}); "
                                  "resume with the same options or choose another --out")
        _write_atomic(run_file, json.dumps(config, indent=2) + "\n")
        self._drop_partial_line()

    def _previous_options(self, run_file: Path) -> dict[str, Any]:
        """The options of the run already here. Unreadable ones are only forgotten when no result depends on them:
        otherwise resuming could mix two experiments in one file, so the folder is refused and left as it is."""
        try:
            previous = json.loads(run_file.read_text(encoding="utf-8"))
            if not isinstance(previous, dict):
                raise ValueError("not a JSON object")
            return previous
        except (ValueError, UnicodeDecodeError) as exc:
            if self.results_path.is_file() and self.results_path.stat().st_size:
                raise RunMismatch(f"{run_file} is unreadable ({exc}), so the options of the results beside it are "
                                  "unknown; repair or remove it, or choose another --out") from None
            return {}

    def _drop_partial_line(self) -> None:
        """A kill during a write leaves a last line without its newline: that task was in flight; forget it."""
        if not self.results_path.is_file():
            return
        data = self.results_path.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data[:data.rfind(b"\n") + 1]
            self.results_path.write_bytes(keep)
            self.dropped_partial = True

    def finished(self) -> dict[str, dict[str, Any]]:
        """The finished tasks' records by id. A line that is not a record (bad JSON or bad UTF-8) is a task to redo,
        not a reason to stop: it stays in the file and its number goes into `damaged_lines`."""
        done: dict[str, dict[str, Any]] = {}
        self.damaged_lines = []
        if not self.results_path.is_file():
            return done
        with open(self.results_path, "rb") as fh:
            for number, line in enumerate(fh, start=1):
                record = _record(line)
                if record is not None:
                    done[record["id"]] = record
                elif line.strip():
                    self.damaged_lines.append(number)
        return done

    def append(self, record: dict[str, Any]) -> None:
        """One finished task, on disk before the next one starts."""
        line = json.dumps(record, default=_jsonable) + "\n"
        with open(self.results_path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def write(self, name: str, text: str) -> Path:
        path = self.path / name
        _write_atomic(path, text)
        return path


def _record(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:  # bad JSON or bad UTF-8
        return None
    return record if isinstance(record, dict) and "id" in record else None


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
