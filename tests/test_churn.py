"""Hundreds of thousands of sessions come and go: memory stays flat, nothing leaks."""

from __future__ import annotations

import gc
import sys
import tracemalloc
import types
from typing import Any, Callable

import pytest

from memsession import Manager
from memsession.testing import FakeClock

CYCLES = 200_000


def rss_bytes() -> int:
    """Resident set size of this process (Linux), or 0 where unknown."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096
    except OSError:
        return 0


def growth(work: Callable[[int], None], cycles: int) -> tuple[int, int]:
    """(traced bytes, RSS bytes) still held after `cycles` more rounds of work."""
    tracemalloc.start()
    try:
        work(cycles // 10)  # warm up: allocator pools, dict tables, the live set
        gc.collect()
        traced_before = tracemalloc.get_traced_memory()[0]
        rss_before = rss_bytes()
        work(cycles)
        gc.collect()
        traced = tracemalloc.get_traced_memory()[0] - traced_before
        rss = rss_bytes() - rss_before
    finally:
        tracemalloc.stop()
    return traced, rss


def session_objects(cls: type) -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is cls)


def test_create_destroy_cycles_leave_memory_flat(core: types.ModuleType) -> None:
    p = core.MemoryProvider()

    def work(n: int) -> None:
        for i in range(n):
            sid = f"churn-{i}"
            p.session_init(sid)["user_id"] = i
            p.session_read(sid, 60.0)
            p.session_destroy(sid)

    traced, rss = growth(work, CYCLES)
    assert len(p) == 0
    assert traced < 64 * 1024, f"{traced} bytes still traced after {CYCLES} cycles"
    assert rss < 16 * 1024 * 1024, f"RSS grew {rss} bytes"


def test_create_expire_cycles_leave_memory_flat(core: types.ModuleType, clock: FakeClock) -> None:
    p = core.MemoryProvider(clock=clock)

    def work(n: int) -> None:
        batch = 1000
        for start in range(0, n, batch):
            for i in range(start, start + batch):
                p.session_init(f"exp-{i}")["data"] = [i]
            clock.advance(61)
            assert p.session_gc(60.0) == batch

    traced, rss = growth(work, CYCLES)
    assert len(p) == 0
    assert traced < 64 * 1024 and rss < 16 * 1024 * 1024


def test_eviction_at_capacity_leaves_memory_flat(core: types.ModuleType) -> None:
    p = core.MemoryProvider(max_sessions=500)

    def work(n: int) -> None:
        for i in range(n):
            p.session_init(f"ev-{i}")["i"] = i

    traced, _ = growth(work, CYCLES)
    assert len(p) == 500
    assert traced < 64 * 1024


def test_manager_login_logout_cycles_leave_memory_flat(provider: Any) -> None:
    with Manager(provider, "sid", 60) as manager:

        def work(n: int) -> None:
            for _ in range(n // 4):
                s = manager.session_start(None)
                s["user"] = "ann"
                cookie = manager.session_cookie(s)
                assert cookie is not None
                s = manager.session_start(cookie.split(";")[0])
                manager.session_regenerate(s)
                manager.session_cookie(s)
                manager.session_destroy(s)
                manager.session_cookie(s)

        traced, _ = growth(work, CYCLES)
        assert len(provider) == 0
        assert traced < 64 * 1024


@pytest.mark.parametrize("how", ["destroy", "gc", "expire-on-read", "evict", "regenerate"])
def test_removed_sessions_are_freed_with_their_values(
    core: types.ModuleType, clock: FakeClock, how: str
) -> None:
    p = core.MemoryProvider(clock=clock, max_sessions=10)
    value = object()
    before_refs = sys.getrefcount(value)
    before_sessions = session_objects(core.Session)
    with Manager(p, "sid", 5) as manager:
        for _ in range(10):
            s = manager.session_start(None)
            s["v"] = value
            manager.session_cookie(s)
        del s
        assert sys.getrefcount(value) == before_refs + 10
        live = [x.sid for x in p.sessions()]
        if how == "destroy":
            for sid in live:
                p.session_destroy(sid)
        elif how == "gc":
            clock.advance(6)
            assert manager.gc() == 10
        elif how == "expire-on-read":
            clock.advance(6)
            for sid in live:
                assert p.session_read(sid, 5) is None
        elif how == "evict":
            for i in range(10):
                p.session_init(f"newcomer-{i}")
        else:
            for sid in live:
                s = manager.session_start(f"sid={sid}")
                manager.session_regenerate(s)
                s.clear()
                manager.session_cookie(s)
            del s
    assert sys.getrefcount(value) == before_refs
    assert session_objects(core.Session) - before_sessions == (10 if how == "evict" else 0)


def test_abandoned_iterators_hold_nothing(core: types.ModuleType) -> None:
    p = core.MemoryProvider()
    for i in range(1000):
        p.session_init(f"it-{i}")
    before = session_objects(core.Session)
    for _ in range(100):
        it = p.sessions()
        next(it)
        del it
    for i in range(1000):
        p.session_destroy(f"it-{i}")
    assert session_objects(core.Session) == before - 1000
