"""The compiled store's own id table, attacked: long differential runs against the twin,
hostile ids, reference counts, collector hooks, re-entrant destructors, threads, snapshots."""

from __future__ import annotations

import functools
import gc
import math
import random
import sys
import tracemalloc
import types
import weakref
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

from memsession import _core_py
from memsession._impl import NO_EXTENSIONS
from memsession.testing import FakeClock

from .concurrency import THREADS, run_threads

MASK64 = (1 << 64) - 1


def compiled() -> types.ModuleType:
    """The compiled core; the calling test is skipped when extensions are disabled."""
    if NO_EXTENSIONS:
        pytest.skip("MEMSESSION_NO_EXTENSIONS is set")
    from memsession import _core

    return _core


def picture(value: Any) -> Any:
    """A comparable picture of a result: a session's id, data, times and state, else the value."""
    if type(value).__name__ == "Session" and isinstance(value, dict):
        return ("session", value.sid, dict(value), value.created, value.last_used, value.new)
    return value


def outcome(call: Callable[[], Any]) -> Any:
    """What a call did: its result's picture or its error."""
    try:
        return ("ok", picture(call()))
    except (TypeError, ValueError) as exc:
        return ("error", type(exc), str(exc))


def state(provider: Any) -> tuple[Any, ...]:
    """Everything observable about a provider: its sessions in order and its counters."""
    return [picture(s) for s in provider.sessions()], provider.stats(), len(provider)


def assert_consistent(provider: Any) -> None:
    """len, stats, the list and the map agree; the list is ordered by the second of last use."""
    enabled = gc.isenabled()
    gc.disable()  # no destructor may change the store while it is inspected
    try:
        live = list(provider.sessions())
        assert len(live) == len(provider) == provider.stats()["live"]
        assert len({s.sid for s in live}) == len(live)
        for s in live:
            assert s.sid in provider and not s.new
        seconds = [math.floor(s.last_used) for s in live]
        assert seconds == sorted(seconds)
        stats = provider.stats()
        assert stats["created"] == stats["live"] + stats["destroyed"] + stats["expired"] + stats["evicted"]
    finally:
        if enabled:
            gc.enable()


def hash_bits(sid: str) -> int:
    """The id's hash as the table sees it: an unsigned 64-bit word."""
    return hash(sid) & MASK64


def clustered_ids(n: int, prefix: str, top: int = 0xFF, tag: int = 5) -> list[str]:
    """n ids whose hashes share their top 8 bits and their low 3 bits.

    With top 0xFF every one of them starts probing at the last slot of any
    table of up to 256 slots, so the probe wraps to slot 0. They share the
    low tag bits: in a table with narrow (3-bit) tags only the id comparison
    tells them apart.
    """
    found: list[str] = []
    i = 0
    while len(found) < n:
        sid = f"{prefix}{i}"
        i += 1
        h = hash_bits(sid)
        if h >> 56 == top and h & 7 == tag:
            found.append(sid)
    return found


# --- long differential runs: the compiled core against the twin ----------------------------

OPS_DEFAULT = dict(
    init=6, read=5, read_lifetime=4, update=2, destroy=4, take=1, destroy_if_empty=1,
    gc=1, contains=2, insert=2, write=1,
)  # fmt: skip
OPS_GROW = dict(
    init=10, read=3, read_lifetime=2, update=1, destroy=1, take=1, destroy_if_empty=1,
    gc=1, contains=2, insert=2, write=1,
)  # fmt: skip
OPS_CHURN = dict(
    init=10, read=3, read_lifetime=1, update=1, destroy=8, take=2, destroy_if_empty=2,
    gc=1, contains=2, insert=2, write=1,
)  # fmt: skip


CALLS = {
    "init": ("session_init", False),
    "read": ("session_read", False),
    "read_lifetime": ("session_read", True),
    "update": ("session_update", False),
    "destroy": ("session_destroy", False),
    "take": ("session_take", False),
    "destroy_if_empty": ("session_destroy_if_empty", False),
}


def twin_run(
    ids: list[str],
    steps: int,
    *,
    seed: int,
    max_sessions: Optional[int] = None,
    tick: float = 0.3,
    weights: dict[str, int] = OPS_DEFAULT,
    lifetimes: tuple[float, ...] = (0, 0.5, 1, 2.5, 5, 30),
    full_check_every: int = 5000,
    narrow: bool = False,
) -> dict[str, int]:
    """Drive both cores with the same random operations on one clock; fail at the first difference."""
    core = compiled()
    rng = random.Random(seed)
    clock = FakeClock(1000.0)
    fast = core.MemoryProvider(clock=clock, max_sessions=max_sessions)
    slow = _core_py.MemoryProvider(clock=clock, max_sessions=max_sessions)
    if narrow:
        assert core._narrow_tags(fast)
    ops = [op for op, weight in weights.items() for _ in range(weight)]
    for step in range(steps):
        op = rng.choice(ops)
        sid = rng.choice(ids)
        if rng.random() < 0.3:
            clock.advance(rng.random() * tick)
        lifetime = rng.choice(lifetimes)
        results = []
        for p in (fast, slow):
            # An equal id that is another str object half the time: found by value.
            key = sid if step % 2 else "".join(list(sid))
            if op in CALLS:
                name, with_lifetime = CALLS[op]
                args = (key, lifetime) if with_lifetime else (key,)
                results.append(outcome(functools.partial(getattr(p, name), *args)))
            elif op == "gc":
                results.append(outcome(functools.partial(p.session_gc, lifetime)))
            elif op == "contains":
                results.append(key in p)
            elif op == "insert":
                detached = p.session_new(key)
                results.append((outcome(functools.partial(p.session_insert, detached)), picture(detached)))
            else:
                s = p.session_read(key)
                if s is not None:
                    s["n"] = step
                results.append(picture(s))
        assert results[0] == results[1], (step, op, sid, results)
        assert len(fast) == len(slow), step
        assert fast.stats() == slow.stats(), step
        if step % full_check_every == 0:
            assert state(fast) == state(slow), step
    assert state(fast) == state(slow)
    assert_consistent(fast)
    for sid in ids:
        assert (sid in fast) == (sid in slow)
    return dict(fast.stats())


def test_a_long_random_run_of_every_operation_matches_the_twin_step_by_step() -> None:
    stats = twin_run([f"id-{i}" for i in range(2000)], 40_000, seed=1)
    assert stats["created"] > 10_000 and stats["expired"] > 5_000 and stats["hits"] > 0


def test_growth_to_thousands_of_live_sessions_matches_the_twin() -> None:
    stats = twin_run(
        [f"grow-{i}" for i in range(20_000)],
        50_000,
        seed=2,
        tick=0.01,
        weights=OPS_GROW,
        lifetimes=(100.0, 1e6),
        full_check_every=25_000,
    )
    assert stats["live"] > 8_000


def test_heavy_churn_rebuilding_the_table_over_removed_entries_matches_the_twin() -> None:
    # Inserts and removals in balance: removed entries fill the table and it
    # is rebuilt at the same or a smaller capacity, over and over.
    stats = twin_run(
        [f"churn-{i}" for i in range(3000)],
        40_000,
        seed=3,
        tick=0.01,
        weights=OPS_CHURN,
        lifetimes=(100.0, 1e6),
    )
    assert stats["destroyed"] > 5000 and 500 < stats["live"] < 3000


@pytest.mark.parametrize("max_sessions", [1, 7, 1000])
def test_eviction_at_capacity_matches_the_twin(max_sessions: int) -> None:
    stats = twin_run(
        [f"ev-{i}" for i in range(max(40, 5 * max_sessions))],
        15_000,
        seed=4 + max_sessions,
        max_sessions=max_sessions,
        tick=0.01,
        weights=OPS_GROW,
        lifetimes=(100.0, 1e6),
    )
    assert stats["evicted"] > 1000 and stats["live"] <= max_sessions


@pytest.mark.parametrize("narrow", [False, True], ids=["wide-tags", "narrow-tags"])
def test_ids_sharing_one_probe_chain_and_one_tag_match_the_twin(narrow: bool) -> None:
    # Every id starts at the same (last) slot with the same low tag: the run
    # probes long chains that wrap around, over removed entries; with narrow
    # tags every candidate on the way has its id compared.
    stats = twin_run(clustered_ids(100, "wrap-"), 20_000, seed=5, tick=0.05, weights=OPS_CHURN, narrow=narrow)
    assert stats["created"] > 1000


def test_a_long_random_run_with_narrow_tags_matches_the_twin() -> None:
    # The layout a platform with session addresses above 48 bits falls back to.
    stats = twin_run([f"nt-{i}" for i in range(2000)], 20_000, seed=11, narrow=True)
    assert stats["created"] > 5_000 and stats["expired"] > 2_000


def ids_sharing_all_tag_bits(n: int, prefix: str) -> list[str]:
    """n ids whose hashes agree in bits 0-18 (every bit a wide tag carries) and in the top 3.

    In a table of 8 slots they all start probing at the same slot, so each
    lookup passes the others with an equal tag and must compare the ids.
    """
    by_tag: dict[int, list[str]] = {}
    i = 0
    while True:
        sid = f"{prefix}{i}"
        i += 1
        h = hash_bits(sid)
        group = by_tag.setdefault((h >> 61) << 19 | (h & 0x7FFFF), [])
        group.append(sid)
        if len(group) == n:
            return group


def test_ids_whose_hashes_share_every_tag_bit_are_told_apart_by_their_value() -> None:
    core = compiled()
    same = ids_sharing_all_tag_bits(3, "tag-")
    p = core.MemoryProvider()
    sessions = {sid: p.session_init(sid) for sid in same}
    assert all(p.session_read(sid) is sessions[sid] for sid in same)
    p.session_destroy(same[0])
    assert same[0] not in p and p.session_read(same[0]) is None
    assert all(p.session_read(sid) is sessions[sid] for sid in same[1:])
    sessions[same[0]] = p.session_init(same[0])  # behind the others now
    assert all(p.session_read(sid) is sessions[sid] for sid in same)
    assert_consistent(p)


def test_narrowing_the_tags_of_a_full_table_keeps_every_session_reachable() -> None:
    core = compiled()
    p = core.MemoryProvider()
    sessions = {f"n-{i}": p.session_init(f"n-{i}") for i in range(10_000)}
    for i in range(0, 10_000, 3):
        p.session_destroy(f"n-{i}")
        del sessions[f"n-{i}"]
    assert core._narrow_tags(p)
    assert core._narrow_tags(p)  # a second time changes nothing
    assert all(p.session_read(sid) is s for sid, s in sessions.items())
    assert all(f"n-{i}" not in p for i in range(0, 10_000, 3))
    # Growth and removal keep working on the narrow layout.
    for i in range(10_000, 30_000):
        sessions[f"n-{i}"] = p.session_init(f"n-{i}")
    for sid in list(sessions)[::2]:
        assert p.session_take(sid) is sessions.pop(sid)
    assert all(p.session_read(sid) is s for sid, s in sessions.items())
    assert len(p) == len(sessions)
    assert_consistent(p)


# --- probing: chains, removed entries, wrap-around -----------------------------------------


def test_ids_that_collide_in_one_chain_are_all_found_through_removed_entries(
    core: types.ModuleType,
) -> None:
    cluster = clustered_ids(120, "chain-")
    p = core.MemoryProvider()
    sessions = {sid: p.session_init(sid) for sid in cluster}
    # Remove every other one: the rest now sit behind removed entries.
    for sid in cluster[::2]:
        p.session_destroy(sid)
    for sid in cluster[1::2]:
        assert p.session_read(sid) is sessions[sid]
    for sid in cluster[::2]:
        assert sid not in p and p.session_read(sid) is None
    # Reinserted ids reuse removed entries and must not hide each other.
    for sid in cluster[::2]:
        sessions[sid] = p.session_init(sid)
    assert all(p.session_read(sid) is sessions[sid] for sid in cluster)
    # Removing the chain's first entries leaves the later ones reachable.
    for sid in cluster[:60]:
        assert p.session_take(sid) is sessions[sid]
    assert all(p.session_read(sid) is sessions[sid] for sid in cluster[60:])
    assert len(p) == 60
    assert_consistent(p)


def test_the_table_rebuilds_smaller_after_mass_removal_and_keeps_every_live_id(
    core: types.ModuleType,
) -> None:
    p = core.MemoryProvider()
    for i in range(20_000):
        p.session_init(f"big-{i}")["i"] = i
    kept = [f"big-{i}" for i in range(0, 20_000, 997)]
    for i in range(20_000):
        if f"big-{i}" not in kept:
            p.session_destroy(f"big-{i}")
    # Thousands of inserts and removals over a table full of removed entries.
    for i in range(30_000):
        p.session_init(f"small-{i}")
        if i >= 3:
            p.session_destroy(f"small-{i - 3}")
    assert len(p) == len(kept) + 3
    assert all(p.session_read(sid)["i"] == int(sid[4:]) for sid in kept)
    assert not any(f"big-{i}" in p for i in range(1, 997))
    assert [f"small-{i}" in p for i in range(29_995, 30_000)] == [False, False, True, True, True]
    assert_consistent(p)


def test_emptying_the_store_completely_and_refilling_it_works_each_time(core: types.ModuleType) -> None:
    p = core.MemoryProvider()
    for round_ in range(5):
        names = [f"r{round_}-{i}" for i in range(2000)]
        for sid in names:
            p.session_init(sid)
        assert all(sid in p for sid in names)
        for sid in names:
            p.session_destroy(sid)
        assert len(p) == 0 and list(p.sessions()) == []
        assert not any(sid in p for sid in names)
    assert p.stats()["created"] == p.stats()["destroyed"] == 10_000


# --- hostile ids ---------------------------------------------------------------------------

HOSTILE_IDS = [
    "a",
    "ab",
    "abc",
    "abc\x00",
    "\x00",
    "\x00\x00",
    "é",  # one byte per character, not ASCII
    "éa",
    "\xff" * 3,
    "\u0100",  # two bytes per character
    "\u0100\u0100",
    "a\u0100",
    "\udcff",  # a lone surrogate
    "\U0001f600",  # four bytes per character
    "\U0001f600a",
    "a\U0001f600",
    "x" * 100_000,
    "x" * 99_999,
    "x" * 99_999 + "y",
    "ё" * 5000,
    "\U0001f600" * 5000,
    " ",
    "1",
]


def test_hostile_ids_of_every_kind_and_length_are_found_only_by_their_own_value(
    core: types.ModuleType,
) -> None:
    p = core.MemoryProvider()
    stored = {sid: p.session_init(sid) for sid in HOSTILE_IDS}
    for sid in HOSTILE_IDS:
        copy = "".join(list(sid))  # equal, another object (for ids longer than one character)
        assert copy in p
        assert p.session_read(copy) is stored[sid]
        assert p.session_update(copy)
    near_misses = [
        "abcd",
        "abc\x00\x00",
        "\x00" * 3,
        "e",
        "\u0101",
        "\U0001f601",
        "x" * 100_001,
        "x" * 99_998,
        "x" * 99_999 + "z",
        "ё" * 4999,
        "b",
        "\ud800",
    ]
    for sid in near_misses:
        assert sid not in p and p.session_read(sid) is None
    for sid in HOSTILE_IDS[::2]:
        assert p.session_take("".join(list(sid))) is stored[sid]
    for sid in HOSTILE_IDS:
        assert (sid in p) == (HOSTILE_IDS.index(sid) % 2 == 1)
    assert_consistent(p)


class Hostile(str):
    """An id whose own hashing, comparison and conversion must never run inside the store."""

    calls: list[str] = []

    def __hash__(self) -> int:
        Hostile.calls.append("hash")
        return 0

    def __eq__(self, other: object) -> bool:
        Hostile.calls.append("eq")
        return True

    def __ne__(self, other: object) -> bool:
        Hostile.calls.append("ne")
        return False

    def __str__(self) -> str:
        Hostile.calls.append("str")
        return "hijacked"

    def __len__(self) -> int:
        Hostile.calls.append("len")
        return 0


def test_a_hostile_str_subclass_is_looked_up_by_value_without_running_its_methods(
    core: types.ModuleType,
) -> None:
    Hostile.calls = []
    p = core.MemoryProvider()
    for sid in ("abc", "ab", "é", "\U0001f600"):
        p.session_init(sid)
    assert Hostile("abc") in p and Hostile("abd") not in p and Hostile("") not in p
    assert p.session_read(Hostile("abc")).sid == "abc"
    assert p.session_read(Hostile("\U0001f600"), 10).sid == "\U0001f600"
    assert p.session_read(Hostile("zzz")) is None
    assert p.session_update(Hostile("ab")) and not p.session_update(Hostile("a"))
    made = p.session_init(Hostile("new"))
    assert type(made.sid) is str and made.sid == "new"
    with pytest.raises(ValueError, match="live already"):
        p.session_init(Hostile("new"))
    assert p.session_destroy_if_empty(Hostile("new"))
    assert p.session_take(Hostile("é")).sid == "é"
    p.session_destroy(Hostile("ab"))
    assert sorted(s.sid for s in p.sessions()) == ["abc", "\U0001f600"]
    detached = p.session_new(Hostile("later"))
    assert type(detached.sid) is str
    p.session_insert(detached)
    assert "later" in p
    assert Hostile.calls == []
    assert_consistent(p)


def test_an_empty_id_and_non_str_ids_are_refused_the_same_way_by_both_cores() -> None:
    core = compiled()
    fast, slow = core.MemoryProvider(), _core_py.MemoryProvider()
    for bad in ["", Hostile(""), None, 1, b"a", 1.5]:
        for name in ("session_init", "session_read", "session_update", "session_destroy", "session_take"):
            fast_call = functools.partial(getattr(fast, name), bad)
            assert outcome(fast_call) == outcome(functools.partial(getattr(slow, name), bad))
        assert bad not in fast and bad not in slow


# --- reference counts and memory -----------------------------------------------------------


class Value:
    """A session value that can be weakly referenced."""


@pytest.mark.parametrize(
    "how",
    ["destroy", "take", "gc", "evict", "expire-on-read", "reclaim-on-insert", "reclaim-on-read"],
)
def test_a_removed_session_and_its_value_keep_only_the_callers_references(
    core: types.ModuleType, clock: FakeClock, how: str
) -> None:
    p = core.MemoryProvider(clock=clock, max_sessions=3)
    value = Value()
    base = sys.getrefcount(value)
    s = p.session_init("victim")
    s["v"] = value
    p.session_init("other")
    assert sys.getrefcount(value) == base + 1
    # Reads, updates, lookups and listings take no lasting reference.
    held = sys.getrefcount(s)
    for _ in range(100):
        assert p.session_read("victim") is s
        p.session_update("victim")
        assert "victim" in p
        assert s in list(p.sessions())
        p.stats()
    assert sys.getrefcount(s) == held
    if how == "destroy":
        p.session_destroy("victim")
    elif how == "take":
        assert p.session_take("victim") is s
    elif how == "gc":
        clock.advance(20)
        p.session_init("fresh")
        assert p.session_gc(10) == 2
    elif how == "evict":
        clock.advance(1)
        p.session_read("other")
        p.session_init("x")
        p.session_init("y")  # the store holds 3: victim, the least recently used, goes
    elif how == "expire-on-read":
        clock.advance(20)
        assert p.session_read("victim", 10) is None
    elif how == "reclaim-on-insert":
        p.session_read("other", 10)  # the store learns the lifetime
        clock.advance(20)
        p.session_init("trigger")
    else:
        p.session_read("other", 10)  # the store learns the lifetime
        clock.advance(20)
        assert p.session_read("other") is not None  # moves on; the stale head goes
    assert "victim" not in p and s.new
    assert sys.getrefcount(s) == 2  # s and getrefcount's argument: the store kept nothing
    assert sys.getrefcount(value) == base + 1
    del s
    assert sys.getrefcount(value) == base
    assert_consistent(p)


def test_dropping_a_provider_of_100k_sessions_frees_every_session_and_value(core: types.ModuleType) -> None:
    p = core.MemoryProvider()
    value = Value()
    gone = weakref.ref(value)
    for i in range(100_000):
        p.session_init(f"s{i}")["v"] = value
    for i in range(0, 100_000, 3):
        p.session_destroy(f"s{i}")
    assert sys.getrefcount(value) == 2 + len(p)
    del value
    del p
    gc.collect()
    assert gone() is None


def test_the_compiled_table_frees_its_sessions_without_the_cyclic_collector() -> None:
    core = compiled()
    p = core.MemoryProvider()
    value = Value()
    gone = weakref.ref(value)
    for i in range(10_000):
        p.session_init(f"s{i}")["v"] = value
    del value
    enabled = gc.isenabled()
    gc.disable()
    try:
        del p
        assert gone() is None  # the list's links are borrowed: no cycle to wait for
    finally:
        if enabled:
            gc.enable()


def test_the_collector_sees_exactly_the_sessions_the_compiled_table_owns() -> None:
    core = compiled()
    p = core.MemoryProvider()
    made = [p.session_init(f"s{i}") for i in range(500)]
    for s in made[::2]:
        p.session_destroy(s.sid)
    owned = [o for o in gc.get_referents(p) if type(o) is core.Session]
    assert len(owned) == len(p) == 250
    assert {id(o) for o in owned} == {id(s) for s in made[1::2]}
    assert all(p in gc.get_referrers(s) for s in made[1:6:2])


class Ticker:
    """A clock that may hold on to the provider it times."""

    provider: Any = None

    def __call__(self) -> float:
        return 5.0


@pytest.mark.parametrize("through", ["value", "clock", "value-with-destructor", "weakref-callback"])
def test_a_provider_in_a_cycle_through_its_sessions_is_collected(
    core: types.ModuleType, through: str
) -> None:
    log: list[Any] = []

    class CallsBack:
        """A value whose destructor uses the provider it is stored in."""

        def __init__(self, provider: Any) -> None:
            self.provider = provider

        def __del__(self) -> None:
            p = self.provider
            log.append((len(p), sum(1 for _ in p.sessions())))
            p.session_init(f"from-del-{len(log)}")
            p.session_gc(1e9)

    ticker = Ticker()
    p = core.MemoryProvider(clock=ticker)
    if through == "clock":
        ticker.provider = p  # a cycle through the clock
    del ticker
    value = Value()
    value_gone = weakref.ref(value)
    for i in range(1000):
        s = p.session_init(f"s{i}")
        if through == "value":
            s["p"] = p
        elif through == "value-with-destructor":
            s["d"] = CallsBack(p)
        elif through == "weakref-callback":
            s["v"] = value
            s["r"] = weakref.ref(value, lambda _, p=p: log.append(len(p)))
        s["plain"] = value
    del s, value
    gone = weakref.ref(p)
    del p
    gc.collect()
    assert gone() is None and value_gone() is None
    assert gc.garbage == []
    if through == "value-with-destructor":
        assert len(log) == 1000


def test_200k_create_destroy_cycles_over_a_large_live_set_leave_memory_flat(core: types.ModuleType) -> None:
    p = core.MemoryProvider()
    for i in range(5000):
        p.session_init(f"live-{i}")["i"] = i
    counter = iter(range(10**9))

    def work(n: int) -> None:
        for _ in range(n):
            sid = f"churn-{next(counter)}"
            p.session_init(sid)["user"] = 1
            p.session_read(sid, 60.0)
            p.session_destroy(sid)

    tracemalloc.start()
    try:
        work(20_000)  # warm up: the table reaches its steady size and is rebuilt over removed entries
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        work(200_000)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(p) == 5000
    assert grown < 64 * 1024, f"{grown} bytes still traced after 200k cycles"


# --- re-entrant destructors ----------------------------------------------------------------


class Reenters:
    """An agent that works the provider hard from inside a callback."""

    def __init__(self, provider: Any, tag: str, log: list[Any]) -> None:
        self.provider = provider
        self.tag = tag
        self.log = log

    def act(self) -> None:
        p = self.provider
        try:
            before = len(p)
            for i in range(300):  # enough new ids to make the table grow during the call
                p.session_init(f"{self.tag}-new-{i}")
            for i in range(0, 300, 3):
                p.session_destroy(f"{self.tag}-new-{i}")
            p.session_take(f"{self.tag}-new-1")
            p.session_gc(1e9)
            listed = [s.sid for s in p.sessions()]
            assert all(sid in p and p.session_update(sid) for sid in listed)
            self.log.append((self.tag, before, len(p)))
        except BaseException as exc:  # noqa: BLE001 - reported by the test, not lost in __del__
            self.log.append((self.tag, repr(exc)))


class ReentersOnDel(Reenters):
    """A session value whose destructor works the provider hard."""

    def __del__(self) -> None:
        self.act()


def reentrant_scenario(core: types.ModuleType, how: str, callback: str) -> tuple[Any, ...]:
    """Remove a session whose value calls back into the store; return the picture afterwards."""
    clock = FakeClock(1000.0)
    p = core.MemoryProvider(clock=clock, max_sessions=2000)
    log: list[Any] = []
    keep: list[Any] = []
    for i in range(50):
        p.session_init(f"pad-{i}")
    s = p.session_init("victim")
    if callback == "destructor":
        s["v"] = ReentersOnDel(p, "cb", log)
    else:
        agent = Reenters(p, "cb", log)
        plain = Value()
        s["v"] = plain
        keep.append(weakref.ref(plain, lambda _: agent.act()))
        del plain
    if how in ("destroy", "take"):
        getattr(p, f"session_{how}")("victim")
    elif how == "gc":
        clock.advance(20)
        p.session_init("fresh")
        p.session_gc(10)
    elif how == "evict":
        for i in range(2000):
            p.session_init(f"fill-{i}")
    elif how == "expire-on-read":
        clock.advance(20)
        p.session_read("victim", 10)
    elif how == "reclaim-on-insert":
        p.session_read("pad-0", 10)
        clock.advance(20)
        for i in range(30):
            p.session_init(f"trigger-{i}")
    else:
        p.session_read("pad-0", 10)
        clock.advance(20)
        p.session_init("fresh")  # reclaims two
        for _ in range(60):
            p.session_read("fresh")  # each read reclaims one more
    del s
    gc.collect()
    assert [entry for entry in log if len(entry) != 3] == []
    assert len(log) == 1
    assert "victim" not in p
    assert_consistent(p)
    return log, state(p)


@pytest.mark.parametrize("callback", ["destructor", "weakref-callback"])
@pytest.mark.parametrize(
    "how", ["destroy", "take", "gc", "evict", "expire-on-read", "reclaim-on-insert", "reclaim-on-read"]
)
def test_a_callback_that_reenters_during_removal_leaves_both_cores_consistent_and_equal(
    how: str, callback: str
) -> None:
    fast = reentrant_scenario(compiled(), how, callback)
    slow = reentrant_scenario(_core_py, how, callback)
    assert fast == slow


def test_a_value_destructor_sees_a_dead_weakref_when_the_provider_is_dropped(core: types.ModuleType) -> None:
    seen: list[Any] = []

    class Looks:
        def __init__(self, ref: Any) -> None:
            self.ref = ref

        def __del__(self) -> None:
            seen.append(self.ref())

    p = core.MemoryProvider()
    ref = weakref.ref(p)
    for i in range(100):
        p.session_init(f"s{i}")["v"] = Looks(ref)
    del p
    gc.collect()
    assert seen == [None] * 100


class Bomb:
    """Cyclic garbage whose destructor changes the store, then leaves the next bomb behind."""

    __slots__ = ("me", "act")

    def __init__(self, act: Callable[[], bool]) -> None:
        self.act = act
        self.me = self

    def __del__(self) -> None:
        if self.act():
            Bomb(self.act)


def test_collections_in_the_middle_of_every_operation_leave_the_store_consistent(
    core: types.ModuleType,
) -> None:
    rng = random.Random(11)
    clock = FakeClock(1000.0)
    p = core.MemoryProvider(clock=clock, max_sessions=80)
    names = [f"c{i}" for i in range(200)]
    fired = [0]
    armed = [True]
    errors: list[str] = []

    def act() -> bool:
        if not armed[0]:
            return False
        fired[0] += 1
        try:
            for _ in range(rng.randrange(4)):
                sid = rng.choice(names)
                k = rng.randrange(4)
                if k == 0:
                    p.session_destroy(sid)
                elif k == 1 and sid not in p:
                    p.session_init(sid)["from_del"] = [1]
                elif k == 2:
                    p.session_read(sid, 3)
                else:
                    p.session_gc(rng.choice([0.5, 3]))
        except BaseException as exc:  # noqa: BLE001 - reported by the test, not lost in __del__
            errors.append(repr(exc))
        return True

    Bomb(act)
    old = gc.get_threshold()
    gc.set_threshold(1)  # a collection at nearly every container allocation
    try:
        for step in range(6000):
            sid = rng.choice(names)
            k = rng.randrange(9)
            if rng.random() < 0.3:
                clock.advance(rng.random() * 0.7)
            try:
                if k == 0:
                    p.session_init(sid)["x"] = [step]
                elif k == 1:
                    p.session_read(sid, rng.choice([None, 1, 3]))
                elif k == 2:
                    p.session_destroy(sid)
                elif k == 3:
                    p.session_gc(rng.choice([0.5, 3]))
                elif k == 4:
                    for _ in p.sessions():
                        pass
                elif k == 5:
                    p.session_take(sid)
                elif k == 6:
                    p.session_insert(p.session_new(sid))
                elif k == 7:
                    p.session_destroy_if_empty(sid)
                else:
                    p.session_update(sid)
            except ValueError as exc:
                assert "live already" in str(exc)
            if step % 25 == 0:
                assert_consistent(p)
    finally:
        armed[0] = False
        gc.set_threshold(*old)
        gc.collect()
    assert errors == []
    assert fired[0] > 1000
    assert_consistent(p)


# --- a collection at one exact point inside an operation -----------------------------------

_DRAINED: list[list[list[Any]]] = []


class TrapClock:
    """A clock that, when armed, makes the very next container allocation run a collection.

    The collection finds a Bomb that runs its action once: a destructor called back
    from inside whatever store operation allocated right after reading the time.
    (Python 3.11 collects inside the allocation itself; the list free list is
    emptied first so that even a new empty list allocates.)
    """

    def __init__(self, start: float) -> None:
        self.now = start
        self.action: Optional[Callable[[], None]] = None
        self.saved = gc.get_threshold()

    def __call__(self) -> float:
        action, self.action = self.action, None
        if action is not None:
            self.saved = gc.get_threshold()
            gc.set_threshold(10**9)
            gc.collect()
            _DRAINED.append([[] for _ in range(300)])

            def once(act: Callable[[], None] = action) -> bool:
                act()
                return False  # leaves no bomb behind

            Bomb(once)
            gc.set_threshold(1)
        return self.now

    def disarm(self) -> None:
        """Put the collector's threshold back and let any trap not yet sprung go off harmlessly."""
        gc.set_threshold(*self.saved)
        _DRAINED.clear()
        gc.collect()


def trapped_scenario(core: types.ModuleType, op: str) -> tuple[Any, ...]:
    """Run op with a collection right after its clock read; the destructor removes the
    session after the least recently used one and adds new ones; return what both saw."""
    clock = TrapClock(100.0)
    p = core.MemoryProvider(clock=clock)
    for i in range(6):
        p.session_init(f"s{i}")["v"] = i
    held = list(p.sessions())  # no session is freed during the test, whatever the store does
    detached = p.session_new("late")
    seen: list[Any] = []

    def action() -> None:
        seen.append(("s0" in p, len(p)))
        p.session_destroy("s1")
        for i in range(40):
            p.session_init(f"new-{i}")

    clock.now = 200.0
    clock.action = action
    try:
        if op == "gc":
            result = outcome(lambda: p.session_gc(10))
        elif op == "init":
            result = outcome(lambda: p.session_init("s1"))
        elif op == "insert":
            result = outcome(lambda: p.session_insert(detached))
        elif op == "read-expiring":
            result = outcome(lambda: p.session_read("s0", 10))
        elif op == "read-live":
            result = outcome(lambda: p.session_read("s2"))
        else:
            result = outcome(lambda: p.session_update("s2"))
    finally:
        clock.disarm()
    assert seen, "the trap did not go off"
    assert_consistent(p)
    del held
    return seen, result, state(p)


@pytest.mark.parametrize("op", ["init", "insert", "read-expiring", "read-live", "update"])
def test_a_collection_right_after_the_clock_read_leaves_the_store_consistent(
    core: types.ModuleType, op: str
) -> None:
    # Where the collection lands differs between the cores (each allocates in
    # its own places); either way the destructor runs on a consistent store.
    seen, result, (listed, stats, live) = trapped_scenario(core, op)
    assert len(seen) == 1
    assert result[0] == "ok"
    sids = [s[1] for s in listed]
    assert {f"new-{i}" for i in range(40)} <= set(sids)
    assert "s1" not in sids or op == "init"


def test_a_collection_inside_session_gc_is_harmless_in_the_twin() -> None:
    seen, result, (listed, stats, live) = trapped_scenario(_core_py, "gc")
    assert seen == [(True, 6)]
    assert result == ("ok", 5)  # s0, s2..s5 idle 100 s; s1 was destroyed by the destructor
    assert [s[1] for s in listed] == [f"new-{i}" for i in range(40)]
    assert stats["expired"] == 5 and stats["destroyed"] == 1


def test_a_collection_inside_session_gc_removes_every_idle_session_in_the_compiled_core() -> None:
    clock = TrapClock(100.0)
    p = compiled().MemoryProvider(clock=clock)
    for i in range(6):
        p.session_init(f"s{i}")
    held = list(p.sessions())  # s1 stays allocated: the bug shows as a wrong result, not a crash
    clock.now = 200.0
    clock.action = lambda: p.session_destroy("s1")
    try:
        removed = p.session_gc(10)
    finally:
        clock.disarm()
    stats = p.stats()
    del held
    assert (removed, len(p), stats["expired"], stats["destroyed"]) == (5, 0, 5, 1)


# --- threads -------------------------------------------------------------------------------


def test_threads_doing_every_operation_on_their_own_ids_keep_exact_counts(
    core: types.ModuleType, busy_switching: None
) -> None:
    clock = FakeClock(1000.0)
    p = core.MemoryProvider(clock=clock)
    per_thread = 2000
    kept: dict[int, set[str]] = {}
    counts = {i: {"created": 0, "destroyed": 0, "hits": 0, "misses": 0} for i in range(THREADS)}

    def work(i: int) -> None:
        rng = random.Random(i)
        mine: dict[str, Any] = {}
        names = [f"t{i}-{k}" for k in range(400)]
        c = counts[i]
        for step in range(per_thread):
            sid = rng.choice(names)
            k = rng.randrange(8)
            if rng.random() < 0.05:
                clock.advance(0.3)
            if k in (0, 1):
                if sid in mine:
                    with pytest.raises(ValueError):
                        p.session_init(sid)
                elif k == 0:
                    mine[sid] = p.session_init(sid)
                    mine[sid]["owner"] = i
                    c["created"] += 1
                else:
                    detached = p.session_new(sid)
                    detached["owner"] = i
                    p.session_insert(detached)
                    mine[sid] = detached
                    c["created"] += 1
            elif k == 2:
                got = p.session_read(sid, 1e9 if step % 2 else None)
                assert got is mine.get(sid)
                c["hits" if sid in mine else "misses"] += 1
            elif k == 3:
                assert p.session_update(sid) == (sid in mine)
            elif k == 4:
                p.session_destroy(sid)
                c["destroyed"] += sid in mine
                mine.pop(sid, None)
            elif k == 5:
                got = p.session_take(sid)
                assert got is mine.pop(sid, None)
                c["destroyed"] += got is not None
            elif k == 6:
                assert (sid in p) == (sid in mine)
            else:
                assert p.session_gc(1e9) == 0
                for other in p.sessions():
                    owner = other.get("owner")
                    assert owner is None or other.sid.startswith(f"t{owner}-")
        kept[i] = set(mine)

    run_threads(work)
    expected = set().union(*kept.values())
    assert {s.sid for s in p.sessions()} == expected and len(p) == len(expected)
    stats = p.stats()
    assert stats["created"] == sum(c["created"] for c in counts.values())
    assert stats["hits"] == sum(c["hits"] for c in counts.values())
    assert stats["misses"] == sum(c["misses"] for c in counts.values())
    assert stats["destroyed"] == sum(c["destroyed"] for c in counts.values())
    assert stats["expired"] == stats["evicted"] == 0
    assert_consistent(p)


def test_threads_fighting_over_shared_ids_with_expiry_and_capacity_stay_consistent(
    core: types.ModuleType, busy_switching: None
) -> None:
    clock = FakeClock(1000.0)
    p = core.MemoryProvider(clock=clock, max_sessions=40)
    names = [f"shared-{k}" for k in range(300)]

    def work(i: int) -> None:
        rng = random.Random(100 + i)
        for _ in range(2500):
            sid = rng.choice(names)
            k = rng.randrange(7)
            if rng.random() < 0.1:
                clock.advance(rng.random() * 0.05)
            if k == 0:
                try:
                    p.session_init(sid)
                except ValueError:
                    pass
            elif k == 1:
                got = p.session_read(sid, 5)
                assert got is None or got.sid == sid
            elif k == 2:
                p.session_destroy(sid)
            elif k == 3:
                got = p.session_take(sid)
                assert got is None or (got.sid == sid and got.new)
            elif k == 4:
                p.session_gc(rng.choice([1, 5]))
            elif k == 5:
                assert len(p) <= 40
            else:
                for s in p.sessions():
                    assert s.sid.startswith("shared-")

    run_threads(work)
    assert_consistent(p)
    stats = p.stats()
    assert stats["evicted"] > 0 and stats["expired"] > 0 and stats["destroyed"] > 0


# --- snapshots -----------------------------------------------------------------------------


def test_a_snapshot_of_50k_sessions_loads_into_either_core_and_every_lookup_works(
    core: types.ModuleType, tmp_path: Path
) -> None:
    clock = FakeClock(1000.0)
    p = core.MemoryProvider(clock=clock)
    names = [f"snap-{i}-{'é' if i % 7 == 0 else ''}{'𝄞' if i % 13 == 0 else ''}" for i in range(50_000)]
    for n, sid in enumerate(names):
        p.session_init(sid)["n"] = n
        if n % 1000 == 0:
            clock.advance(1.5)
    for sid in names[::5]:
        p.session_destroy(sid)
    order = [s.sid for s in p.sessions()]
    path = tmp_path / "store.snapshot"
    assert p.save(path) == 40_000
    for target in [_core_py] + ([] if NO_EXTENSIONS else [compiled()]):
        q = target.MemoryProvider(clock=FakeClock(5000.0))
        assert q.load(path) == 40_000
        assert [s.sid for s in q.sessions()] == order
        assert len(q) == 40_000
        for n, sid in enumerate(names):
            got = q.session_read("".join(list(sid)))
            if n % 5 == 0:
                assert got is None and sid not in q
            else:
                assert got is not None and got.sid == sid and got["n"] == n
        # The loaded table keeps working: it grows and churns like any other.
        for i in range(20_000):
            q.session_init(f"after-{i}")
            if i % 2:
                q.session_destroy(f"after-{i - 1}")
        assert len(q) == 40_000 + 10_000
        assert_consistent(q)


def test_a_compiled_provider_made_without_init_reclaims_nothing() -> None:
    p = compiled().MemoryProvider.__new__(compiled().MemoryProvider)
    kept = p.session_init("kept")
    kept["n"] = 1
    p.session_init("other")  # an insert: reclaims only past a lifetime it was told
    assert "kept" in p and len(p) == 2


@pytest.mark.parametrize("bad", [None, "", 3, b"id"], ids=["none", "empty", "int", "bytes"])
def test_importing_a_bad_id_stores_nothing(core: types.ModuleType, bad: object) -> None:
    p = core.MemoryProvider()
    with pytest.raises(ValueError, match="snapshot ids must be non-empty str"):
        p._import(["good", bad], [1.0, 1.0], [1.0, 1.0], bytes(2), [0.0, 0.0], [{}, {}])
    assert len(p) == 0 and list(p.sessions()) == []


def test_exporting_from_a_negative_start_starts_at_the_first(core: types.ModuleType) -> None:
    p = core.MemoryProvider()
    for sid in ("a", "b", "c"):
        p.session_init(sid)
    order = p._order()
    assert p._export(order, -5, 2, 0.0)[0] == ["a", "b"]
