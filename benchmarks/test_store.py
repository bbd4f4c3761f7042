"""Store operations: memsession's cores next to dict, lru-dict, cachebox, moka-py and cachetools."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import SIZES, measure, params
from .runner import Candidate, Group, run_group
from .store import LOOKUP_FLOOR, OBJECT_FLOOR, read_group
from .suite import store_groups

*READS, CREATE, DESTROY, GC, GC_IDLE, EVICT = store_groups(SIZES)


@pytest.mark.parametrize(
    ("group", "case"),
    [(g, c) for g in READS for c in g.candidates],
    ids=[f"{g.key}-{c.name}" for g in READS for c in g.candidates],
)
def test_read(benchmark: Any, group: Group, case: Candidate) -> None:
    measure(benchmark, group, case)


@params(CREATE)
def test_create(benchmark: Any, case: Candidate) -> None:
    measure(benchmark, CREATE, case)


@params(DESTROY)
def test_destroy(benchmark: Any, case: Candidate) -> None:
    measure(benchmark, DESTROY, case)


@params(GC)
def test_gc(benchmark: Any, case: Candidate) -> None:
    measure(benchmark, GC, case)


@params(GC_IDLE)
def test_gc_with_nothing_expired(benchmark: Any, case: Candidate) -> None:
    measure(benchmark, GC_IDLE, case)


@params(EVICT)
def test_insert_at_capacity(benchmark: Any, case: Candidate) -> None:
    measure(benchmark, EVICT, case)


def test_the_read_group_notes_give_each_row_against_the_lookup_floor_round_by_round_too() -> None:
    group = run_group(read_group(1_000, 2_000), rounds=3)
    ours = group.ours
    assert ours == group.candidates[0].name and ours.startswith("memsession")
    notes = group.notes()
    assert set(notes) == {ours, OBJECT_FLOOR}
    ratio = group.median(ours) / group.median(LOOKUP_FLOOR)
    assert notes[ours].startswith(f"{ratio:.2f} the lookup floor; round by round: median ")
    rounds = sorted(o / f for o, f in zip(group.times[ours], group.times[LOOKUP_FLOOR]))
    assert notes[ours].endswith(f"({rounds[0]:.2f}-{rounds[-1]:.2f})")
    object_ratio = group.median(OBJECT_FLOOR) / group.median(LOOKUP_FLOOR)
    assert notes[OBJECT_FLOOR] == f"{object_ratio:.2f} the lookup floor"


def test_an_untimed_read_group_has_no_notes() -> None:
    assert read_group(100, 100).notes() == {}
