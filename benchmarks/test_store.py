"""Store operations: memsession's cores next to dict, lru-dict, cachebox, moka-py and cachetools."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import SIZES, measure, params
from .runner import Candidate, Group, run_group
from .store import DATA_FLOOR, LOOKUP_FLOOR, OBJECT_FLOOR, read_group
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


def test_the_read_group_notes_set_memsession_and_the_object_floor_against_the_lookup_floor() -> None:
    group = read_group(100, 100)
    ours = group.ours
    assert ours == group.candidates[0].name and ours.startswith("memsession")
    # memsession / lookup floor is 1.2, 2.0, 1.5 and 1.1 round by round (median 1.35), while
    # the medians' ratio is 350 / 225; the object floor's median is 290.
    group.times = {
        ours: [300e-9, 400e-9, 450e-9, 220e-9],
        LOOKUP_FLOOR: [250e-9, 200e-9, 300e-9, 200e-9],
        OBJECT_FLOOR: [280e-9, 300e-9, 320e-9, 260e-9],
        DATA_FLOOR: [900e-9, 900e-9, 900e-9, 900e-9],
    }
    assert group.notes() == {
        ours: "1.56x the lookup floor's median (round by round: median 1.35, 1.10-2.00),"
        " 1.21x the object floor's",
        OBJECT_FLOOR: "1.29x the lookup floor's median",
    }


def test_the_read_group_notes_leave_out_what_was_not_timed() -> None:
    group = read_group(100, 100)
    assert group.notes() == {}
    group.times = {group.ours: [2e-7, 3e-7], OBJECT_FLOOR: [1e-7, 2e-7], LOOKUP_FLOOR: []}
    assert group.notes() == {group.ours: "1.67x the object floor's median"}


def test_a_timed_read_group_notes_its_own_medians() -> None:
    group = read_group(1_000, 2_000)
    run_group(group, rounds=3)
    notes = group.notes()
    assert set(notes) == {group.ours, OBJECT_FLOOR}
    ratio = group.median(group.ours) / group.median(LOOKUP_FLOOR)
    assert notes[group.ours].startswith(f"{ratio:.2f}x the lookup floor's median (round by round: median ")
