"""The test index on the cases the workspace tests leave out: other import forms, files that do not parse, folders
that come and go while watched, a huge workspace, and asking about paths it does not own."""

from __future__ import annotations

import logging
import shutil
import textwrap
import time
from pathlib import Path

import pytest

from engine import testindex
from engine.testindex import TestIndex
from tests.engine.waiting import wait_for


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    write(tmp_path / "pkg" / "__init__.py", "")
    write(tmp_path / "pkg" / "shapes.py", "def area(w, h):\n    ...\n\n\ndef perimeter(w, h):\n    ...\n")
    return tmp_path


def test_relative_and_star_imports_reach_the_function(workspace: Path):
    write(workspace / "pkg" / "tests" / "test_relative.py", """\
        from ..shapes import area


        def test_area():
            assert area(2, 3) == 6
        """)
    write(workspace / "tests" / "test_star.py", """\
        from pkg.shapes import *


        def test_perimeter():
            assert perimeter(2, 3) == 10


        def test_nothing_of_shapes():
            assert max(1, 2) == 2
        """)
    index = TestIndex(workspace)
    shapes = workspace / "pkg" / "shapes.py"
    assert index.tests_for(shapes, "area") == ["pkg/tests/test_relative.py::test_area"]
    assert index.tests_for(shapes, "perimeter") == ["tests/test_star.py::test_perimeter"]


def test_a_function_used_only_by_a_fixture_selects_the_whole_file(workspace: Path):
    write(workspace / "tests" / "test_fixture.py", """\
        import pytest
        from pkg.shapes import area

        CASES = [(1, 1)]


        @pytest.fixture
        def unit_area():
            return area(1, 1)


        def test_unit(unit_area):
            assert unit_area == 1
        """)
    index = TestIndex(workspace)
    assert index.tests_for(workspace / "pkg" / "shapes.py", "area") == ["tests/test_fixture.py"]
    assert index.tests_for(workspace / "pkg" / "shapes.py", "perimeter") == []


def test_a_file_that_does_not_parse_references_nothing_until_it_does(workspace: Path):
    broken = write(workspace / "tests" / "test_broken.py", "from pkg.shapes import area\n\ndef test_area(:\n")
    index = TestIndex(workspace)
    shapes = workspace / "pkg" / "shapes.py"
    assert index.tests_for(shapes, "area") == []
    write(broken, "from pkg.shapes import area\n\ndef test_area():\n    assert area(1, 1) == 1\n")
    index.refresh([broken])
    assert index.tests_for(shapes, "area") == ["tests/test_broken.py::test_area"]
    write(broken, "from pkg.shapes import area\n\ndef test_area(:\n")  # broken again mid-edit
    index.refresh([broken])
    assert index.tests_for(shapes, "area") == []


def test_paths_the_index_does_not_own_have_no_tests(workspace: Path, tmp_path_factory):
    test_file = write(workspace / "tests" / "test_own.py", "from pkg.shapes import area\n\ndef test_a():\n    area(1, 1)\n")
    outside = write(tmp_path_factory.mktemp("elsewhere") / "shapes.py", "def area(w, h):\n    ...\n")
    index = TestIndex(workspace)
    assert index.tests_for(test_file, "test_a") == []  # a test file's own functions are not solved against tests
    assert index.tests_for(outside, "area") == []


def test_refreshing_a_folder_reads_its_tests_and_deleting_it_forgets_them(workspace: Path):
    index = TestIndex(workspace)
    index.scan()
    shapes = workspace / "pkg" / "shapes.py"
    folder = workspace / "checks"
    write(folder / "test_more.py", "from pkg.shapes import area\n\ndef test_more():\n    area(2, 2)\n")
    index.refresh([folder])
    assert index.tests_for(shapes, "area") == ["checks/test_more.py::test_more"]
    shutil.rmtree(folder)
    index.refresh([folder])
    assert index.tests_for(shapes, "area") == []


def test_a_folder_created_and_moved_while_watched_is_followed(workspace: Path):
    index = TestIndex(workspace, debounce_s=0.1)
    assert index.start_watching()
    try:
        shapes = workspace / "pkg" / "shapes.py"
        folder = workspace / "newtests"
        folder.mkdir()  # a new folder at the root: the index starts watching it
        time.sleep(0.5)
        write(folder / "test_late.py", "from pkg.shapes import area\n\ndef test_late():\n    area(3, 3)\n")
        assert wait_for(lambda: index.tests_for(shapes, "area") == ["newtests/test_late.py::test_late"])
        (folder / "test_late.py").rename(folder / "test_renamed.py")
        assert wait_for(lambda: index.tests_for(shapes, "area") == ["newtests/test_renamed.py::test_late"])
        shutil.rmtree(folder)
        assert wait_for(lambda: index.tests_for(shapes, "area") == [])
    finally:
        index.stop()


def test_stopping_cancels_a_pending_refresh(workspace: Path):
    index = TestIndex(workspace, debounce_s=0.3)
    index.scan()
    index.notice(workspace / "tests" / "test_pending.py")
    index.stop()
    time.sleep(0.5)
    assert index.refresh_count == 0


def test_a_huge_workspace_is_read_only_up_to_the_limit(workspace: Path, monkeypatch, caplog):
    for i in range(5):
        write(workspace / "tests" / f"test_{i}.py", "from pkg.shapes import area\n\ndef test_a():\n    area(1, 1)\n")
    monkeypatch.setattr(testindex, "MAX_SCANNED_FILES", 3)
    with caplog.at_level(logging.WARNING, logger="engine.testindex"):
        index = TestIndex(workspace)
        found = index.tests_for(workspace / "pkg" / "shapes.py", "area")
    assert len(found) < 5
    assert "the test index stops there" in caplog.text and str(index.workspace) in caplog.text


def test_when_watching_is_refused_the_index_is_read_once(workspace: Path, monkeypatch, caplog):
    import watchdog.observers

    class RefusingObserver(watchdog.observers.Observer):
        def schedule(self, *args, **kwargs):
            raise OSError(28, "inotify watch limit reached")

    monkeypatch.setattr(watchdog.observers, "Observer", RefusingObserver)
    write(workspace / "tests" / "test_a.py", "from pkg.shapes import area\n\ndef test_a():\n    area(1, 1)\n")
    index = TestIndex(workspace)
    with caplog.at_level(logging.WARNING, logger="engine.testindex"):
        assert index.start_watching() is False
    assert "inotify watch limit reached" in caplog.text and "read once" in caplog.text
    assert index.tests_for(workspace / "pkg" / "shapes.py", "area") == ["tests/test_a.py::test_a"]
