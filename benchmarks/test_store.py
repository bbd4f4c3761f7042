"""Store operations: memsession's cores next to dict, lru-dict and cachetools."""

from __future__ import annotations

from typing import Any

from memsession.bench import store
from memsession.bench.runner import Candidate

from .conftest import QUICK, measure, params

READ = store.read_group(*((20_000, 20_000) if QUICK else (100_000, 200_000)))
CREATE = store.create_group(10_000 if QUICK else 100_000)
DESTROY = store.destroy_group(10_000 if QUICK else 100_000)
GC = store.gc_group(*((20_000, 10_000) if QUICK else (100_000, 50_000)))
GC_IDLE = store.gc_idle_group([10_000, 100_000] if QUICK else [100_000, 1_000_000])
EVICT = store.evict_group(*((10_000, 5_000) if QUICK else (100_000, 50_000)))


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
