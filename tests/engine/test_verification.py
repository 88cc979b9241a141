"""`engine.verification.reference_values`: trusted dataset code (canonical solutions, SciCode ground truth) run in a
fresh child interpreter for the values it leaves in `__values__`, under the sandbox's limits, with an empty
environment. Each failure is a ReferenceFailed that says what went wrong."""

import pytest

from engine.verification import Limits, ReferenceFailed, reference_values


def test_values_come_back_whole():
    program = "import math\n__values__ = {'squares': [i * i for i in range(4)], 'pi': math.pi, 'name': 'x'}\n"
    assert reference_values(program) == {"squares": [0, 1, 4, 9], "pi": pytest.approx(3.141592653589793),
                                         "name": "x"}


def test_printing_reference_code_does_not_disturb_the_values():
    assert reference_values("print('__VALUES__ lookalike')\n__values__ = (1, 2)\n") == (1, 2)


def test_an_exception_is_reported_with_its_message():
    with pytest.raises(ReferenceFailed, match=r"(?s)exit 1\).*ZeroDivisionError: division by zero"):
        reference_values("__values__ = 1 / 0\n")


def test_a_program_that_leaves_no_values_is_refused():
    with pytest.raises(ReferenceFailed, match="reference code failed"):
        reference_values("x = 1\n")


def test_a_program_that_runs_past_the_wall_clock_is_stopped():
    with pytest.raises(ReferenceFailed, match="ran past 1 s"):
        reference_values("while True:\n    pass\n", limits=Limits(timeout_s=1, cpu_s=5))


def test_a_program_over_the_memory_limit_fails_instead_of_taking_the_machine():
    with pytest.raises(ReferenceFailed, match="MemoryError"):
        reference_values("block = bytearray(600 << 20)\n__values__ = len(block)\n", limits=Limits(memory_mb=256))


def test_the_child_sees_none_of_the_callers_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ATLAS_TEST_SECRET", "do-not-leak")
    values = reference_values("import os\n__values__ = (dict(os.environ), os.getcwd())\n")
    environment, cwd = values
    assert "ATLAS_TEST_SECRET" not in environment
    assert set(environment) <= {"PATH", "HOME", "PYTHONHASHSEED", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                "LC_CTYPE"}  # the last one Python itself may set
    assert "atlas-reference-" in cwd  # a throwaway folder, removed afterwards
