"""Store operations: memsession's cores next to dict, lru-dict and cachetools."""

from __future__ import annotations

from typing import Any

from .conftest import SIZES, measure, params
from .runner import Candidate
from .suite import store_groups

READ, CREATE, DESTROY, GC, GC_IDLE, EVICT = store_groups(SIZES)


@params(READ)
def test_read(benchmark: Any, case: Candidate) -> None:
    measure(benchmark, READ, case)


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
