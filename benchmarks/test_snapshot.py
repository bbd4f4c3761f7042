"""Snapshots: one save and one load of a store of one-key sessions, the compiled core."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import QUICK, measure, params
from .runner import Candidate
from .snapshot import sessions, snapshot_group

SNAPSHOT = snapshot_group(sessions(QUICK))


@pytest.fixture(scope="module", autouse=True)
def snapshot_files() -> Iterator[None]:
    """The group's store and file, released once the module is done."""
    yield
    assert SNAPSHOT.cleanup is not None
    SNAPSHOT.cleanup()


@params(SNAPSHOT)
def test_snapshot(benchmark: Any, case: Candidate) -> None:
    measure(benchmark, SNAPSHOT, case)
    benchmark.extra_info["sessions"] = SNAPSHOT.sessions
