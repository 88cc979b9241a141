"""Grading in the real sandbox: known-good solutions pass the hidden tests, known-bad ones fail."""

from pathlib import Path

import pytest

from bench.datasets import evalplus, gpqa, humaneval, lcb, scicode
from bench.grading import function_program, grade_choice, grade_code

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def humaneval_items():
    return {item.id: item for item in humaneval.load().items}


def passed(item, *codes):
    return [grade.passed for grade in grade_code(item, list(codes))]


def test_humaneval_canonical_passes_and_broken_fails(humaneval_items):
    records, _ = humaneval.read_records(humaneval.data_file())
    by_id = {r["task_id"]: r for _, r in records}
    for task_id in ("HumanEval/0", "HumanEval/38", "HumanEval/95"):
        item, record = humaneval_items[task_id], by_id[task_id]
        whole = record["prompt"] + record["canonical_solution"]  # a whole function, as the pipeline returns
        body = record["canonical_solution"]  # a bare body completes the prompt's stub
        wrong = record["prompt"] + "    return None\n"
        assert passed(item, whole, body, wrong) == [True, True, False], task_id


def test_humaneval_exit_before_the_tests_is_a_failure(humaneval_items):
    item = humaneval_items["HumanEval/0"]
    cheat = "import sys\nsys.exit(0)\ndef has_close_elements(numbers, threshold):\n    return True\n"
    grade = grade_code(item, [cheat])[0]
    assert not grade.passed and grade.detail


def test_humaneval_public_examples_agree_with_the_reference(humaneval_items):
    data = humaneval.load()
    stats = data.stats
    assert stats["tasks"] == 164
    assert stats["tasks_with_public_tests"] >= 140
    dropped_doctests = {d.split(":")[0] for d in stats["examples_dropped"] if d.endswith("(doctest)")}
    assert dropped_doctests == {"HumanEval/47", "HumanEval/116"}  # the two tasks whose `>>>` examples disagree
    # every kept public suite passes with the reference solution, in the sandbox
    records, _ = humaneval.read_records(humaneval.data_file())
    sample = [r for _, r in records][::20]
    for record in sample:
        item = humaneval_items[record["task_id"]]
        if item.task.tests is None:
            continue
        from engine import verification

        program = function_program(record["prompt"], record["canonical_solution"], record["entry_point"])
        assert verification.run(program, item.task.tests).passed, record["task_id"]


def test_lcb_stdin_and_functional_grading():
    items = {item.id: item for item in lcb.load(FIXTURES / "lcb_small.jsonl").items}
    plus = items["abc000_a"]
    assert passed(plus, "a, b = map(int, input().split())\nprint(a + b)\n",
                  "a, b = map(int, input().split())\nprint(a - b)\n", "print(3)\n") == [True, False, False]
    total = items["sum-list"]
    good = "class Solution:\n    def sumList(self, nums):\n        return sum(nums)\n"
    bad = "class Solution:\n    def sumList(self, nums):\n        return sum(nums[:3])\n"
    assert passed(total, good, bad) == [True, False]


def test_evalplus_grading_uses_the_reference_outputs():
    item = evalplus.load(FIXTURES / "evalplus_small.jsonl").items[0]
    good = "def mean(xs):\n    return sum(xs) / len(xs)\n"
    off = "def mean(xs):\n    return sum(xs) / (len(xs) + 1)\n"
    assert passed(item, good, off) == [True, False]
    assert item.task.tests is not None  # the docstring example survived the sandbox check


def test_scicode_ground_truth_passes_and_a_wrong_step_fails():
    data = scicode.load(FIXTURES / "scicode_small.jsonl")
    step = data.items[1]
    good = "def sum_count(x):\n    return float(np.sum(squares(x))), len(x)\n"
    bad = "def sum_count(x):\n    return float(np.sum(x)), len(x)\n"
    assert passed(step, good, bad) == [True, False]


def test_scicode_dev_ground_truth_passes_its_own_targets():
    import json

    data = scicode.load()
    truth = {}
    for line in scicode.data_file().read_text().splitlines():
        for step in json.loads(line)["sub_steps"]:
            truth[step["step_number"]] = step["ground_truth_code"]
    for item in data.items[:: max(1, len(data.items) // 6)]:
        assert passed(item, truth[item.id], "def nothing():\n    pass\n") == [True, False], item.id


def test_gpqa_grades_letters():
    item = gpqa.load(FIXTURES / "gpqa_small.csv").items[0]
    wrong = next(letter for letter in "ABCD" if letter != item.grading.answer)
    assert [g.passed for g in grade_choice(item, [item.grading.answer, wrong, None])] == [True, False, False]
