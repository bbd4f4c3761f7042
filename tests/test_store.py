"""MemoryProvider behaviour, run against the compiled core and the twin."""

from __future__ import annotations

import gc
import math
import random
import sys
import time
import types
import weakref
from typing import Any

import pytest

from memsession.testing import FakeClock

SID = "a" * 43


def ids(n: int) -> list[str]:
    return [f"session-{i:04d}" for i in range(n)]


def test_init_creates_an_empty_stored_session(provider: Any, clock: FakeClock) -> None:
    s = provider.session_init(SID)
    assert s.sid == SID and s.session_id() == SID
    assert dict(s) == {}
    assert s.created == s.last_used == clock()
    assert SID in provider and len(provider) == 1


def test_init_of_a_live_id_is_a_value_error(provider: Any) -> None:
    s = provider.session_init(SID)
    s["k"] = 1
    with pytest.raises(ValueError, match="live already"):
        provider.session_init(SID)
    assert provider.session_read(SID) is s and s["k"] == 1


def test_read_of_unknown_id_returns_none_and_creates_nothing(provider: Any) -> None:
    assert provider.session_read(SID) is None
    assert provider.session_read(SID, 10) is None
    assert len(provider) == 0 and SID not in provider


def test_read_returns_the_same_object_and_marks_it_used(provider: Any, clock: FakeClock) -> None:
    s = provider.session_init(SID)
    clock.advance(5)
    assert provider.session_read(SID, 10) is s
    assert s.last_used == clock() and s.created == clock() - 5


def test_session_idle_longer_than_max_lifetime_is_never_returned(provider: Any, clock: FakeClock) -> None:
    provider.session_init(SID)
    clock.advance(10.5)
    assert provider.session_read(SID, 10) is None
    assert SID not in provider
    assert provider.stats()["expired"] == 1


def test_idle_exactly_max_lifetime_is_still_live(provider: Any, clock: FakeClock) -> None:
    s = provider.session_init(SID)
    clock.advance(10)
    assert provider.session_read(SID, 10) is s


def test_expiry_slides_with_each_read(provider: Any, clock: FakeClock) -> None:
    s = provider.session_init(SID)
    for _ in range(5):
        clock.advance(8)
        assert provider.session_read(SID, 10) is s
    clock.advance(11)
    assert provider.session_read(SID, 10) is None


def test_read_without_lifetime_does_not_expire(provider: Any, clock: FakeClock) -> None:
    s = provider.session_init(SID)
    clock.advance(1e9)
    assert provider.session_read(SID) is s


def test_destroy_removes_and_is_idempotent(provider: Any) -> None:
    s = provider.session_init(SID)
    provider.session_destroy(SID)
    provider.session_destroy(SID)
    assert provider.session_read(SID) is None
    assert s.new and s.sid == SID
    assert provider.stats()["destroyed"] == 1


def test_gc_removes_only_idle_sessions_and_counts_them(provider: Any, clock: FakeClock) -> None:
    old = ids(5)
    for sid in old:
        provider.session_init(sid)
    clock.advance(20)
    provider.session_init("fresh")
    provider.session_read(old[2])  # used now: survives
    assert provider.session_gc(10) == 4
    assert sorted(s.sid for s in provider.sessions()) == sorted(["fresh", old[2]])
    assert provider.session_gc(10) == 0
    assert provider.stats()["expired"] == 4


def test_gc_with_zero_lifetime_keeps_sessions_used_this_instant(provider: Any, clock: FakeClock) -> None:
    provider.session_init("a")
    clock.advance(1)
    provider.session_init("b")
    assert provider.session_gc(0) == 1
    assert "b" in provider and "a" not in provider


def test_update_marks_used_and_reports_unknown(provider: Any, clock: FakeClock) -> None:
    s = provider.session_init(SID)
    clock.advance(3)
    assert provider.session_update(SID) is True
    assert s.last_used == clock()
    assert provider.session_update("nope") is False


def test_contains_does_not_mark_used(provider: Any, clock: FakeClock) -> None:
    s = provider.session_init(SID)
    clock.advance(3)
    assert SID in provider
    assert 42 not in provider and None not in provider
    assert s.last_used == clock() - 3


def test_sessions_iterates_least_recently_used_first_without_touching(
    provider: Any, clock: FakeClock
) -> None:
    for sid in ids(4):
        provider.session_init(sid)
        clock.advance(1)
    provider.session_read("session-0001")
    before = [s.last_used for s in provider.sessions()]
    order = [s.sid for s in provider.sessions()]
    assert order == ["session-0000", "session-0002", "session-0003", "session-0001"]
    assert [s.last_used for s in provider.sessions()] == before


def test_sessions_allows_destroying_while_iterating(provider: Any) -> None:
    for i, sid in enumerate(ids(10)):
        provider.session_init(sid)["user"] = i % 2
    seen = []
    for s in provider.sessions():
        seen.append(s.sid)
        if s["user"] == 1:
            provider.session_destroy(s.sid)
        provider.session_destroy("session-0009")
    assert len(provider) == 5
    assert all(s["user"] == 0 for s in provider.sessions())
    assert "session-0009" not in seen


def test_max_sessions_evicts_the_least_recently_used(core: types.ModuleType, clock: FakeClock) -> None:
    p = core.MemoryProvider(max_sessions=3, clock=clock)
    for sid in ids(3):
        p.session_init(sid)
    clock.advance(1)
    p.session_read("session-0000")
    p.session_init("newcomer")
    assert len(p) == 3
    assert "session-0001" not in p
    assert {s.sid for s in p.sessions()} == {"session-0000", "session-0002", "newcomer"}
    assert p.stats()["evicted"] == 1
    assert p.max_sessions == 3


def test_a_use_within_the_same_second_records_the_time_without_moving(
    provider: Any, clock: FakeClock
) -> None:
    clock.advance(math.ceil(clock()) - clock())  # at the start of a second
    first, second = provider.session_init("first"), provider.session_init("second")
    clock.advance(0.5)
    assert provider.session_read("first") is first
    assert first.last_used == clock()
    assert [s.sid for s in provider.sessions()] == ["first", "second"]
    clock.advance(0.5)  # the next second
    provider.session_read("first")
    assert [s.sid for s in provider.sessions()] == ["second", "first"]
    assert second.last_used < first.last_used == clock()


@pytest.mark.parametrize(
    ("first_use", "second_use", "moves"),
    [
        (-0.5, 0.5, True),  # from second -1 into second 0
        (-1.5, -1.0, True),
        (-1.75, -1.25, False),  # both in second -2
        (-0.25, -0.0, True),
        (2.0**52 - 0.5, 2.0**52, True),  # where fractions end
        (2.0**53, 2.0**53 + 2.0, True),  # where odd integers end
        (2.0**63 - 2048.0, 2.0**63, True),  # past any integer conversion
        (2.0**63, 2.0**63 + 2048.0, True),
        (3.0, 3.999, False),
    ],
)
def test_a_use_moves_a_session_only_in_a_later_whole_second_on_any_clock(
    core: types.ModuleType, first_use: float, second_use: float, moves: bool
) -> None:
    now = [first_use]
    provider = core.MemoryProvider(clock=lambda: now[0])
    provider.session_init("a")
    provider.session_init("b")
    now[0] = second_use
    provider.session_read("a")
    order = ["b", "a"] if moves else ["a", "b"]
    assert [s.sid for s in provider.sessions()] == order
    assert provider.session_read("a").last_used == second_use


def test_expiry_uses_the_recorded_time_not_the_place_in_the_list(provider: Any, clock: FakeClock) -> None:
    clock.advance(math.ceil(clock()) - clock())
    early = provider.session_init("early")
    late = provider.session_init("late")
    clock.advance(0.75)
    provider.session_read("early")  # same second: stays in front of late
    clock.advance(10.0)
    # late idled 10.75 s, early 10 s: gc passes over early to reach late.
    assert provider.session_gc(10.5) == 1
    assert "late" not in provider and "early" in provider and late.new and not early.new
    assert provider.session_read("early", 10.0) is early  # idle exactly 10 s: live
    assert provider.session_gc(0.0) == 0


def test_gc_stops_at_the_first_second_that_cannot_hold_an_idle_session(
    core: types.ModuleType, clock: FakeClock
) -> None:
    p = core.MemoryProvider(clock=clock)
    clock.advance(math.ceil(clock()) - clock())
    for sid in ids(50):
        p.session_init(sid)
        clock.advance(1)
    # Every session is live: gc removes none and changes nothing.
    before = [(s.sid, s.last_used) for s in p.sessions()]
    assert p.session_gc(50.0) == 0
    assert [(s.sid, s.last_used) for s in p.sessions()] == before
    assert p.session_gc(10.0) == 40


def test_stats_count_every_outcome(provider: Any, clock: FakeClock) -> None:
    provider.session_init("a")
    provider.session_init("b")
    provider.session_init("c")
    provider.session_read("a")
    provider.session_read("zzz")
    provider.session_destroy("b")
    clock.advance(100)
    provider.session_read("c", 10)
    assert provider.stats() == {
        "live": 1,
        "hits": 1,
        "misses": 2,
        "created": 3,
        "destroyed": 1,
        "expired": 1,
        "evicted": 0,
    }


def test_now_is_the_injected_clock(provider: Any, clock: FakeClock) -> None:
    assert provider.now() == clock()
    clock.advance(2.5)
    assert provider.now() == clock()


def test_default_clock_is_monotonic_seconds(core: types.ModuleType) -> None:
    p = core.MemoryProvider()
    a = p.now()
    b = p.now()
    assert b >= a
    assert abs(a - time.monotonic()) < 1.0


def test_new_and_insert_store_the_same_object(provider: Any, clock: FakeClock) -> None:
    s = provider.session_new(SID)
    assert SID not in provider and s.new
    s["x"] = 1
    clock.advance(1)
    provider.session_insert(s)
    assert provider.session_read(SID) is s and not s.new
    assert s.created == clock()
    with pytest.raises(ValueError, match="stored already"):
        provider.session_insert(s)


def test_insert_refuses_a_live_id(provider: Any) -> None:
    provider.session_init(SID)
    with pytest.raises(ValueError, match="live already"):
        provider.session_insert(provider.session_new(SID))


def test_insert_refuses_a_foreign_object(provider: Any) -> None:
    with pytest.raises(TypeError, match="session must be"):
        provider.session_insert({"sid": SID})


def test_stored_session_id_cannot_be_changed(provider: Any) -> None:
    s = provider.session_init(SID)
    with pytest.raises(TypeError, match="initialised already"):
        s.__init__("b" * 43)
    with pytest.raises(AttributeError):
        s.sid = "other"
    assert not hasattr(s, "_rekey")
    provider.session_destroy(SID)
    # Not even once it is out of the store: an id is set once.
    with pytest.raises(TypeError, match="initialised already"):
        s.__init__("b" * 43)
    assert s.sid == SID and s.session_id() == SID


OTHER = "b" * 43


@pytest.mark.parametrize("then", ["destroy", "gc", "expire-on-read", "evict", "reclaim"])
def test_init_reentry_on_a_stored_session_raises_and_removing_it_later_is_safe(
    core: types.ModuleType, clock: FakeClock, then: str
) -> None:
    p = core.MemoryProvider(clock=clock, max_sessions=3)
    s = p.session_init(SID)
    s["k"] = 1
    neighbour = p.session_init("neighbour")
    for bad in (OTHER, 5, ""):
        with pytest.raises(TypeError, match="initialised already"):
            s.__init__(bad)
    with pytest.raises(TypeError, match="initialised already"):
        core.Session.__init__(s, OTHER)
    # Nothing moved: same id, same key in the map, same place in the list.
    assert s.sid == SID and dict(s) == {"k": 1}
    assert SID in p and OTHER not in p
    assert [x.sid for x in p.sessions()] == [SID, "neighbour"]
    assert p.session_update(SID) and p.session_read(SID) is s
    del neighbour
    clock.advance(10)
    if then == "destroy":
        p.session_destroy(SID)
    elif then == "gc":
        assert p.session_gc(5) == 2
    elif then == "expire-on-read":
        assert p.session_read(SID, 5) is None
    elif then == "evict":
        p.session_read("neighbour")
        p.session_init("x")
        p.session_init("y")  # at capacity: evicts s, the least recently used
        assert p.stats()["evicted"] == 1
    else:
        p.session_read("neighbour", 5)  # the store learns the lifetime: neighbour expires
        p.session_init("x")  # reclaims s, idle past it
        assert p.stats()["expired"] == 2
    assert SID not in p and OTHER not in p and s.new
    clock.advance(10)
    p.session_gc(0)  # a full sweep over whatever is left must not trip on s
    p.session_destroy(SID)
    p.session_destroy(OTHER)
    assert len(p) == p.stats()["live"] == 0 and list(p.sessions()) == []
    assert p.session_init(SID) is not s  # the id is free again
    check_consistent(p)


def test_session_initialised_directly_can_be_stored_but_not_reinitialised(core: types.ModuleType) -> None:
    p = core.MemoryProvider(clock=FakeClock(5.0))
    s = core.Session(SID)
    with pytest.raises(TypeError, match="initialised already"):
        s.__init__(OTHER)
    p.session_insert(s)
    assert p.session_read(SID) is s and s.sid == SID


def test_insert_of_a_session_without_an_id_is_a_value_error(provider: Any, core: types.ModuleType) -> None:
    provider.session_init("a")["k"] = 1
    before = ([(x.sid, dict(x), x.last_used) for x in provider.sessions()], provider.stats())
    blank = core.Session.__new__(core.Session)
    with pytest.raises(ValueError, match="session has no id"):
        provider.session_insert(blank)
    assert blank.new
    assert ([(x.sid, dict(x), x.last_used) for x in provider.sessions()], provider.stats()) == before
    # Once given an id, the same object stores normally.
    blank.__init__(SID)
    provider.session_insert(blank)
    assert provider.session_read(SID) is blank and not blank.new


def test_stored_sessions_are_memsession_sessions(provider: Any, core: types.ModuleType) -> None:
    import memsession

    s = provider.session_init(SID)
    assert isinstance(s, memsession.Session)
    assert isinstance(provider.session_new(OTHER), memsession.Session)
    assert issubclass(core.Session, memsession.Session)


# --- bad arguments ---------------------------------------------------------


@pytest.mark.parametrize(
    "method",
    [
        "session_init",
        "session_read",
        "session_destroy",
        "session_update",
        "session_new",
        "session_destroy_if_empty",
    ],
)
@pytest.mark.parametrize("bad", [None, 42, b"bytes", ["x"]])
def test_non_str_ids_are_a_type_error_naming_sid(provider: Any, method: str, bad: object) -> None:
    with pytest.raises(TypeError, match="sid must be str"):
        getattr(provider, method)(bad)


@pytest.mark.parametrize(
    "method",
    [
        "session_init",
        "session_read",
        "session_destroy",
        "session_update",
        "session_new",
        "session_destroy_if_empty",
    ],
)
def test_empty_id_is_a_value_error(provider: Any, method: str) -> None:
    with pytest.raises(ValueError, match="sid must not be empty"):
        getattr(provider, method)("")


def test_str_subclass_ids_are_stored_as_plain_str(provider: Any) -> None:
    class Tricky(str):
        def __hash__(self) -> int:
            raise AssertionError("must not be called")

    s = provider.session_init(Tricky("abc"))
    assert type(s.sid) is str
    assert provider.session_read("abc") is s


@pytest.mark.parametrize("bad", ["10", None, True, [1]])
def test_bad_lifetime_types_are_a_type_error(provider: Any, bad: object) -> None:
    provider.session_init(SID)
    with pytest.raises(TypeError, match="max_lifetime must be a number"):
        provider.session_gc(bad)
    if bad is not None:
        with pytest.raises(TypeError, match="max_lifetime must be a number"):
            provider.session_read(SID, bad)
    assert SID in provider


@pytest.mark.parametrize("bad", [-1, -0.5, math.nan])
def test_bad_lifetime_values_are_a_value_error(provider: Any, bad: float) -> None:
    provider.session_init(SID)
    with pytest.raises(ValueError, match="max_lifetime must be a non-negative"):
        provider.session_read(SID, bad)
    with pytest.raises(ValueError, match="max_lifetime"):
        provider.session_gc(bad)
    assert SID in provider


def test_int_lifetimes_are_accepted(provider: Any, clock: FakeClock) -> None:
    provider.session_init(SID)
    clock.advance(2)
    assert provider.session_read(SID, 1) is None


@pytest.mark.parametrize("bad", [0, -5, True, 1.5, "3"])
def test_bad_max_sessions_is_rejected(core: types.ModuleType, bad: object) -> None:
    with pytest.raises((TypeError, ValueError), match="max_sessions"):
        core.MemoryProvider(max_sessions=bad)


def test_non_callable_clock_is_a_type_error(core: types.ModuleType) -> None:
    with pytest.raises(TypeError, match="clock must be callable"):
        core.MemoryProvider(clock=12.0)


def test_clock_returning_garbage_is_a_clear_error(core: types.ModuleType) -> None:
    p = core.MemoryProvider(clock=lambda: "noon")
    with pytest.raises(TypeError, match="clock must return a number"):
        p.now()
    p = core.MemoryProvider(clock=lambda: math.nan)
    with pytest.raises(ValueError, match="clock must return a finite number"):
        p.session_init(SID)


def test_raising_clock_leaves_the_store_unchanged(core: types.ModuleType) -> None:
    state = {"fail": False, "t": 0.0}

    def clock() -> float:
        if state["fail"]:
            raise RuntimeError("clock broke")
        return state["t"]

    p = core.MemoryProvider(clock=clock)
    p.session_init("a")["k"] = 1
    p.session_init("b")
    before = p.stats()
    state["fail"] = True
    for call in (
        lambda: p.session_init("c"),
        lambda: p.session_read("a", 5),
        lambda: p.session_gc(0),
        lambda: p.session_update("a"),
    ):
        with pytest.raises(RuntimeError, match="clock broke"):
            call()
    assert p.stats() == before
    assert [s.sid for s in p.sessions()] == ["a", "b"]
    state["fail"] = False
    assert p.session_read("a")["k"] == 1


# --- the Session mapping -----------------------------------------------------


def test_session_is_a_mutable_mapping_and_a_dict(provider: Any) -> None:
    from collections.abc import MutableMapping

    s = provider.session_init(SID)
    assert isinstance(s, MutableMapping) and isinstance(s, dict)


def test_session_go_style_methods(provider: Any) -> None:
    s = provider.session_init(SID)
    s.set("user", "ann")
    assert s.get("user") == "ann"
    assert s.get("missing") is None and s.get("missing", 7) == 7
    s.delete("user")
    s.delete("user")  # absent: no error
    assert "user" not in s


def test_mutators_are_plain_dict_operations(provider: Any) -> None:
    s = provider.session_init(SID)
    mirror: dict[str, Any] = {}
    mutations = [
        lambda d: d.__setitem__("a", 1),
        lambda d: d.update(c=3),
        lambda d: d.setdefault("d", 4),
        lambda d: d.setdefault("d", 99),
        lambda d: d.pop("a"),
        lambda d: d.pop("zz", None),
        lambda d: d.__delitem__("c"),
        lambda d: d.__ior__({"e": 5, "f": 6}),
        lambda d: d.popitem(),
        lambda d: d.clear(),
    ]
    for mutate in mutations:
        assert mutate(s) == mutate(mirror)
        assert dict(s) == mirror
    s.set("b", 2)
    s.delete("b")
    s.delete("b")  # absent: no error
    assert dict(s) == {}


def test_stored_sessions_carry_no_per_request_state(provider: Any) -> None:
    s = provider.session_init(SID)
    s["a"] = 1
    for name in ("modified", "accessed", "_state", "_rekey", "_stored_flag"):
        assert not hasattr(s, name), name
    # Shared by every request of the session: flags cannot be pinned on it.
    for name in ("modified", "accessed"):
        with pytest.raises(AttributeError):
            setattr(s, name, True)


def test_mapping_protocol_behaves_like_dict(provider: Any) -> None:
    s = provider.session_init(SID)
    s.update({"a": 1}, b=2)
    s |= {"c": 3}
    assert s == {"a": 1, "b": 2, "c": 3}
    assert s.pop("a") == 1 and s.pop("a", "x") == "x"
    with pytest.raises(KeyError):
        s.pop("a")
    with pytest.raises(KeyError):
        s["nope"]
    with pytest.raises(KeyError):
        del s["nope"]
    assert s.setdefault("z", [1]) == [1]
    assert sorted(s.keys()) == ["b", "c", "z"]
    assert s.popitem() == ("z", [1])
    with pytest.raises(TypeError):
        s.pop("a", 1, 2)


def test_timestamps_are_read_only(provider: Any) -> None:
    s = provider.session_init(SID)
    for name in ("created", "last_used", "sid"):
        with pytest.raises(AttributeError):
            setattr(s, name, 1.0)


def test_repr_never_shows_the_whole_id(provider: Any) -> None:
    s = provider.session_init(SID)
    s["n"] = 1
    text = repr(s)
    assert SID not in text and SID[:8] in text and "'n': 1" in text


def test_copy_and_pickle_give_plain_data(provider: Any) -> None:
    import copy
    import pickle

    s = provider.session_init(SID)
    s["n"] = [1]
    for clone in (copy.copy(s), pickle.loads(pickle.dumps(s)), s.copy()):
        assert type(clone) is dict and clone == {"n": [1]}


def test_detached_session_can_be_built_directly(core: types.ModuleType) -> None:
    s = core.Session("x" * 43)
    assert s.sid == "x" * 43 and len(s) == 0 and s.new and s.permanent is None
    with pytest.raises(TypeError, match="sid must be str"):
        core.Session(5)


# --- destructors and references -----------------------------------------------


class Reentrant:
    """A value whose destructor calls back into the provider."""

    def __init__(self, provider: Any, tag: str) -> None:
        self.provider = provider
        self.tag = tag

    def __del__(self) -> None:
        p = self.provider
        p.session_init(f"from-del-{self.tag}")
        p.session_gc(1e9)
        list(p.sessions())
        p.session_destroy("victim-neighbour")


def check_consistent(p: Any) -> None:
    live = list(p.sessions())
    assert len(live) == len(p)
    assert all(s.sid in p for s in live)
    assert [math.floor(s.last_used) for s in live] == sorted(math.floor(s.last_used) for s in live)


@pytest.mark.parametrize("how", ["destroy", "gc", "expire-on-read", "evict"])
def test_destructor_reentering_the_store_finds_it_consistent(
    core: types.ModuleType, clock: FakeClock, how: str
) -> None:
    p = core.MemoryProvider(clock=clock, max_sessions=3)
    victim = p.session_init("victim")
    victim["value"] = Reentrant(p, how)
    del victim
    p.session_init("victim-neighbour")
    clock.advance(10)
    if how == "destroy":
        p.session_destroy("victim")
    elif how == "gc":
        assert p.session_gc(5) == 2
    elif how == "expire-on-read":
        assert p.session_read("victim", 5) is None
    else:
        p.session_init("x")
        p.session_init("y")  # evicts victim
    gc.collect()
    assert "victim" not in p
    assert f"from-del-{how}" in p
    check_consistent(p)


def test_removed_sessions_release_their_values(core: types.ModuleType, clock: FakeClock) -> None:
    provider = core.MemoryProvider(clock=clock)
    value = object()
    base = sys.getrefcount(value)
    for i in range(50):
        provider.session_init(f"s{i}")["v"] = value
    assert sys.getrefcount(value) == base + 50
    for i in range(10):
        provider.session_destroy(f"s{i}")
    clock.advance(10)
    for i in range(10, 20):
        provider.session_read(f"s{i}")
    provider.session_read("s20", 5)
    assert provider.session_gc(5) == 29
    assert sys.getrefcount(value) == base + 10
    del provider
    gc.collect()
    assert sys.getrefcount(value) == base


def test_provider_releases_everything_when_dropped(core: types.ModuleType) -> None:
    import weakref

    class Value:
        pass

    p = core.MemoryProvider()
    v = Value()
    ref = weakref.ref(v)
    p.session_init("a")["v"] = v
    p.session_init("b")["self"] = p.session_read("b")  # a cycle through the session
    del v, p
    gc.collect()
    assert ref() is None


def test_new_is_true_until_stored(provider: Any) -> None:
    s = provider.session_new(SID)
    assert s.new
    provider.session_insert(s)
    assert not s.new
    provider.session_destroy(SID)
    assert s.new


def test_permanent_defaults_to_the_managers_choice_and_is_remembered(provider: Any) -> None:
    s = provider.session_init(SID)
    assert s.permanent is None
    s.permanent = 1
    assert s.permanent is True
    s.permanent = ""
    assert s.permanent is False
    assert provider.session_read(SID).permanent is False
    s.permanent = None
    assert s.permanent is None


def test_changing_permanent_asks_for_the_cookie_again(provider: Any) -> None:
    s = provider.session_init(SID)
    s._cookie_at = s.last_used
    s.permanent = True
    assert s._cookie_at == -math.inf
    s._cookie_at = s.last_used
    s.permanent = True  # unchanged: nothing to resend
    assert s._cookie_at == s.last_used


def test_a_clock_running_backwards_cannot_disorder_the_store(core: types.ModuleType) -> None:
    t = [100.5]
    p = core.MemoryProvider(clock=lambda: t[0])
    a = p.session_init("a")
    t[0] = 50.0  # the clock jumps back
    b = p.session_init("b")
    assert b.last_used == b.created == 100.5
    t[0] = 101.25
    p.session_read("a")
    assert [s.sid for s in p.sessions()] == ["b", "a"]
    t[0] = 50.0  # and back again: b is stamped no earlier than a
    p.session_read("b")
    assert [s.sid for s in p.sessions()] == ["a", "b"]
    assert a.last_used == b.last_used == 101.25
    t[0] = 200.0
    assert p.session_gc(98.0) == 2


# --- clocks that return a non-finite time ---------------------------------------


def snapshot(p: Any) -> Any:
    """Everything observable about a store: contents, order, timestamps, counters."""
    return [(s.sid, dict(s), s.created, s.last_used) for s in p.sessions()], p.stats(), len(p)


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan], ids=["inf", "-inf", "nan"])
@pytest.mark.parametrize(
    "call",
    [
        lambda p, spare: p.session_init("c"),
        lambda p, spare: p.session_new("c"),
        lambda p, spare: p.session_insert(spare),
        lambda p, spare: p.session_read("a"),
        lambda p, spare: p.session_read("a", 5),
        lambda p, spare: p.session_update("a"),
        lambda p, spare: p.session_gc(0),
        lambda p, spare: p.now(),
    ],
    ids=["init", "new", "insert", "read", "read-lifetime", "update", "gc", "now"],
)
def test_clock_returning_a_non_finite_time_is_a_value_error_that_changes_nothing(
    core: types.ModuleType, bad: float, call: Any
) -> None:
    t: list[float] = [100.0]
    p = core.MemoryProvider(clock=lambda: t[0], max_sessions=2)  # full: an init would evict
    p.session_init("a")["k"] = 1
    t[0] = 101.0
    p.session_init("b")["k"] = 2
    spare = p.session_new("spare")
    before = snapshot(p)
    t[0] = bad
    with pytest.raises(ValueError, match="clock must return a finite number"):
        call(p, spare)
    assert snapshot(p) == before
    assert spare.new and "spare" not in p and "c" not in p
    # The store keeps working once the clock is sane again.
    t[0] = 102.0
    assert p.session_read("a")["k"] == 1
    p.session_insert(spare)
    assert [s.sid for s in p.sessions()] == ["a", "spare"]
    check_consistent(p)


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan], ids=["inf", "-inf", "nan"])
def test_a_non_finite_time_is_never_stamped_on_a_session(core: types.ModuleType, bad: float) -> None:
    t: list[float] = [bad]
    p = core.MemoryProvider(clock=lambda: t[0])
    for call in (lambda: p.session_init(SID), lambda: p.session_new(SID), p.now):
        with pytest.raises(ValueError, match="clock must return a finite number"):
            call()
    assert len(p) == 0 and p.stats()["created"] == 0
    t[0] = 7.0
    s = p.session_init(SID)
    assert s.created == s.last_used == 7.0


# --- destroy only when empty ------------------------------------------------------


def test_destroy_if_empty_removes_only_a_session_without_data(provider: Any) -> None:
    assert provider.session_destroy_if_empty(SID) is False  # unknown
    full = provider.session_init("full")
    full["user"] = "ann"
    empty = provider.session_init("empty")
    emptied = provider.session_init("emptied")
    emptied["x"] = 1
    del emptied["x"]
    falsy = provider.session_init("falsy")
    falsy[0] = None  # data that is falsy is still data
    assert provider.session_destroy_if_empty("full") is False
    assert provider.session_destroy_if_empty("falsy") is False
    assert provider.session_read("full") is full and full == {"user": "ann"}
    assert provider.session_destroy_if_empty("empty") is True
    assert provider.session_destroy_if_empty("emptied") is True
    assert provider.session_destroy_if_empty("empty") is False  # gone already
    assert "empty" not in provider and "emptied" not in provider
    assert empty.new and emptied.new
    # Read in the second it was stored in: its place in the list stays.
    assert [s.sid for s in provider.sessions()] == ["full", "falsy"]
    stats = provider.stats()
    assert stats["destroyed"] == 2 and stats["live"] == 2 and stats["expired"] == 0


def test_destroy_if_empty_does_not_mark_the_session_used(provider: Any, clock: FakeClock) -> None:
    s = provider.session_init(SID)
    s["k"] = 1
    provider.session_init(OTHER)
    clock.advance(3)
    assert provider.session_destroy_if_empty(SID) is False
    assert s.last_used == clock() - 3
    assert [x.sid for x in provider.sessions()] == [SID, OTHER]
    assert provider.stats()["hits"] == provider.stats()["misses"] == 0


def test_destroy_if_empty_of_a_detached_session_is_false(provider: Any) -> None:
    detached = provider.session_new(SID)
    assert provider.session_destroy_if_empty(SID) is False
    provider.session_insert(detached)
    assert provider.session_destroy_if_empty(SID) is True
    assert detached.new


# --- amortized reclaim on the write path --------------------------------------------


def test_reclaim_on_insert_bounds_abandoned_sessions_with_no_gc(provider: Any, clock: FakeClock) -> None:
    provider.session_init("x")
    assert provider.session_read("x", 10) is not None  # the store learns the lifetime
    peak = 0
    for i in range(1000):
        clock.advance(1)
        provider.session_init(f"abandoned-{i}")  # never read again
        peak = max(peak, len(provider))
    # Sessions used in the last 10 s, plus the one just made: 11, never 1,000.
    assert peak <= 12
    assert len(provider) == 11
    assert [s.sid for s in provider.sessions()] == [f"abandoned-{i}" for i in range(989, 1000)]
    stats = provider.stats()
    assert stats["created"] == 1001 and stats["expired"] == 990 and stats["live"] == 11
    assert stats["destroyed"] == stats["evicted"] == 0


@pytest.mark.parametrize("teach", ["read", "read-of-unknown-id", "gc"])
def test_reclaim_starts_once_a_lifetime_is_known(provider: Any, clock: FakeClock, teach: str) -> None:
    for i in range(50):
        provider.session_init(f"s{i}")
        provider.session_read(f"s{i}")  # no lifetime given: teaches nothing
        provider.session_update(f"s{i}")
        clock.advance(100)
    # Every insert above came after sessions idle for 100 s and more.
    assert len(provider) == 50 and provider.stats()["expired"] == 0
    if teach == "read":
        provider.session_read("s49", 1000)  # a hit reclaims one stale session: s0
        expected = [f"s{i}" for i in range(3, 49)] + ["s49"]
    elif teach == "read-of-unknown-id":
        assert provider.session_read("nobody", 1000) is None
        expected = [f"s{i}" for i in range(2, 50)]
    else:
        assert provider.session_gc(1000) == 40  # s0..s39
        clock.advance(500)  # s40..s44 are idle past 1000 s now
        expected = [f"s{i}" for i in range(42, 50)]
    before = provider.stats()["expired"]
    provider.session_init("trigger")
    assert [s.sid for s in provider.sessions()] == expected + ["trigger"]
    assert provider.stats()["expired"] == before + 2


def test_each_insert_reclaims_at_most_two_sessions(provider: Any, clock: FakeClock) -> None:
    for i in range(5):
        provider.session_init(f"old-{i}")
    provider.session_read("old-4", 10)
    clock.advance(11)
    for step, left in enumerate([3, 1, 0, 0], start=1):
        provider.session_init(f"new-{step}")
        stale = [s.sid for s in provider.sessions() if s.sid.startswith("old-")]
        assert len(stale) == left
    assert provider.stats()["expired"] == 5


def test_reclaim_never_removes_a_session_idle_no_longer_than_the_known_lifetime(
    provider: Any, clock: FakeClock
) -> None:
    provider.session_init("teacher")
    provider.session_read("teacher", 10)
    provider.session_read("teacher", 30)  # the longest lifetime seen counts ...
    provider.session_read("teacher", 5)  # ... a shorter one later does not lower it
    ages = [40, 31, 30.5, 30, 29, 10, 5, 0]
    for age in ages:
        provider.session_init(f"idle-{age}")
    start = clock()
    # Give each session its age by stamping it that long before the inserts.
    for age in ages:
        clock.set(start + (40 - age))
        provider.session_update(f"idle-{age}")
    provider.session_destroy("teacher")
    clock.set(start + 40)
    for i in range(10):  # plenty of inserts: everything reclaimable goes
        provider.session_init(f"new-{i}")
    left = {s.sid for s in provider.sessions()}
    assert left == {"idle-30", "idle-29", "idle-10", "idle-5", "idle-0"} | {f"new-{i}" for i in range(10)}
    assert provider.stats()["expired"] == 3
    assert all(clock() - s.last_used <= 30 for s in provider.sessions())


def test_reclaim_makes_room_before_capacity_evicts(core: types.ModuleType, clock: FakeClock) -> None:
    p = core.MemoryProvider(clock=clock, max_sessions=3)
    p.session_init("a")
    p.session_init("b")
    clock.advance(20)
    p.session_init("fresh")
    p.session_read("fresh", 10)
    p.session_init("new")  # full; but a and b are expired: reclaimed, nobody evicted
    assert [s.sid for s in p.sessions()] == ["fresh", "new"]
    stats = p.stats()
    assert stats["expired"] == 2 and stats["evicted"] == 0
    p.session_init("newer")
    p.session_init("newest")  # full of live sessions: now the LRU one is evicted
    assert [s.sid for s in p.sessions()] == ["new", "newer", "newest"]
    assert p.stats()["evicted"] == 1


def test_reclaimed_sessions_release_their_values(core: types.ModuleType, clock: FakeClock) -> None:
    p = core.MemoryProvider(clock=clock)
    value = object()
    base = sys.getrefcount(value)
    for i in range(20):
        p.session_init(f"s{i}")["v"] = value
    p.session_gc(5)
    clock.advance(6)
    for i in range(10):
        p.session_init(f"n{i}")
    assert p.stats()["expired"] == 20
    assert sys.getrefcount(value) == base
    check_consistent(p)


def test_provider_init_reentry_is_refused_and_changes_nothing(
    core: types.ModuleType, clock: FakeClock
) -> None:
    p = core.MemoryProvider(clock=clock)
    for i in range(10):
        p.session_init(f"s{i}")["v"] = i
    with pytest.raises(TypeError, match="initialised already"):
        p.__init__(clock=clock)
    assert len(p) == 10 and [s.sid for s in p.sessions()] == [f"s{i}" for i in range(10)]


def test_provider_init_reentry_from_a_gc_callback_during_a_sweep_is_harmless(
    core: types.ModuleType, clock: FakeClock
) -> None:
    p = core.MemoryProvider(clock=clock)
    for i in range(300):
        p.session_init(f"s{i:05d}")["v"] = list(range(20))
    clock.advance(100)
    errors: list[BaseException] = []

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            try:
                p.__init__(clock=clock)
            except TypeError as exc:
                errors.append(exc)

    gc.callbacks.append(callback)
    old = gc.get_threshold()
    gc.set_threshold(1)
    try:
        assert p.session_gc(10) == 300
    finally:
        gc.set_threshold(*old)
        gc.callbacks.remove(callback)
    assert errors and len(p) == 0 and list(p.sessions()) == []


def test_reads_alone_reclaim_expired_sessions(core: types.ModuleType, clock: FakeClock) -> None:
    p = core.MemoryProvider(clock=clock)
    for i in range(1000):
        p.session_init(f"s{i}")
    p.session_init("user")
    p.session_read("user", 60)  # teaches the lifetime
    for _ in range(1100):  # the others expire after 60 s; each hit reclaims one
        clock.advance(1)
        assert p.session_read("user", 60) is not None
    assert len(p) == 1 and p.stats()["expired"] == 1000


def test_take_removes_and_returns_the_stored_session(core: types.ModuleType, clock: FakeClock) -> None:
    p = core.MemoryProvider(clock=clock)
    p.session_init("a")["user"] = "ann"
    taken = p.session_take("a")
    assert taken is not None and taken.sid == "a" and dict(taken) == {"user": "ann"}
    assert "a" not in p and p.session_take("a") is None and p.stats()["destroyed"] == 1


# --- the map from id to session ---------------------------------------------------


def test_the_map_finds_every_live_id_through_growth_removal_and_reuse(
    core: types.ModuleType, clock: FakeClock
) -> None:
    rng = random.Random(7)
    p = core.MemoryProvider(clock=clock)
    live: dict[str, Any] = {}
    names = [f"s{i}-{'é' if i % 5 == 0 else 'x'}{'𝄞' if i % 11 == 0 else ''}" for i in range(3000)]
    for step in range(12000):
        sid = rng.choice(names)
        action = rng.random()
        if action < 0.45:
            if sid in live:
                with pytest.raises(ValueError):
                    p.session_init(sid)
            else:
                live[sid] = p.session_init(sid)
        elif action < 0.75:
            # An equal id that is another str object: found by value, not identity.
            copy = "".join(list(sid))
            assert p.session_read(copy) is live.get(sid)
        else:
            p.session_destroy(sid)
            live.pop(sid, None)
        if step % 1000 == 0:
            assert len(p) == len(live) == p.stats()["live"]
    assert len(p) == len(live)
    for sid in names:
        assert (sid in p) == (sid in live)
        assert p.session_read(sid) is live.get(sid)
    assert {s.sid for s in p.sessions()} == set(live)
    # Emptied and refilled: removed entries never hide a live one.
    for sid in list(live):
        p.session_destroy(sid)
    assert len(p) == 0 and list(p.sessions()) == []
    for sid in names[:500]:
        p.session_init(sid)
    assert all(p.session_read(sid) is not None for sid in names[:500])
    assert not any(sid in p for sid in names[500:])


def test_a_str_subclass_finds_the_session_its_value_names(provider: Any) -> None:
    class Id(str):
        def __hash__(self) -> int:
            return 0

        def __eq__(self, other: object) -> bool:
            return True

    stored = provider.session_init("abc")
    assert Id("abc") in provider and Id("abd") not in provider
    assert provider.session_read(Id("abc")) is stored
    assert provider.session_read(Id("zzz")) is None


def test_a_provider_kept_alive_only_by_its_own_sessions_is_collected(
    core: types.ModuleType,
) -> None:
    p = core.MemoryProvider()
    for sid in ids(100):
        p.session_init(sid)["provider"] = p  # a cycle through the store
    gone = weakref.ref(p)
    del p
    gc.collect()
    assert gone() is None
