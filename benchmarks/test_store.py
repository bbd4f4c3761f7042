"""Store operations: memsession's cores next to dict, lru-dict, cachebox, moka-py and cachetools."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import SIZES, measure, params
from .runner import Candidate, Group
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
