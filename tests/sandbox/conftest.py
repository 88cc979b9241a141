"""Sandbox test set-up: isolation levels as a parameter, and a probe for processes a hostile candidate left alive.

ATLAS_REQUIRE_BWRAP=1 (set by CI, which installs bubblewrap) turns "bwrap is not available" from a skip into a
failure, so the strongest level is never silently untested there.
"""

from __future__ import annotations

import os

import pytest

from sandbox.isolation import probe
from sandbox.types import ISOLATION_LEVELS

REQUIRE_BWRAP = os.environ.get("ATLAS_REQUIRE_BWRAP") == "1"
HOSTILE_NAME = "atlas-hostile"  # every hostile candidate renames its processes to this (prctl PR_SET_NAME)


def available_level(level: str) -> str:
    status = probe(level)
    if not status.available:
        if level == "bwrap" and REQUIRE_BWRAP:
            pytest.fail(f"ATLAS_REQUIRE_BWRAP=1 but the bwrap level is not available: {status.reason}")
        pytest.skip(f"isolation level {level} is not available here: {status.reason}")
    return level


@pytest.fixture(params=ISOLATION_LEVELS)
def level(request) -> str:
    """Each isolation level in turn, forced; skipped where it is not available (failed for bwrap in CI)."""
    return available_level(request.param)


@pytest.fixture
def strongest() -> str:
    import sandbox

    found = sandbox.isolation_level()
    if REQUIRE_BWRAP and found != "bwrap":
        pytest.fail(f"ATLAS_REQUIRE_BWRAP=1 but the strongest level here is {found}: {probe('bwrap').reason}")
    return found


def hostile_processes() -> list[int]:
    """Processes still carrying the hostile candidates' name."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/comm") as fh:
                    if fh.read().strip() == HOSTILE_NAME:
                        found.append(int(name))
            except OSError:
                pass
    return found
