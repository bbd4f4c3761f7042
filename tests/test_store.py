"""MemoryProvider behaviour, run against the compiled core and the twin."""

from __future__ import annotations

import gc
import math
import sys
import time
import types
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
    assert not s._stored_flag
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
    p.session_read("session-0000")
    p.session_init("newcomer")
    assert len(p) == 3
    assert "session-0001" not in p
    assert {s.sid for s in p.sessions()} == {"session-0000", "session-0002", "newcomer"}
    assert p.stats()["evicted"] == 1
    assert p.max_sessions == 3


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
    assert SID not in provider and not s._stored_flag
    s["x"] = 1
    clock.advance(1)
    provider.session_insert(s)
    assert provider.session_read(SID) is s and s._stored_flag
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
    with pytest.raises(ValueError, match="stored session"):
        s._rekey("b" * 43)
    with pytest.raises(AttributeError):
        s.sid = "other"  # type: ignore[misc]
    provider.session_destroy(SID)
    s._rekey("b" * 43)
    assert s.sid == "b" * 43


# --- bad arguments ---------------------------------------------------------


@pytest.mark.parametrize(
    "method", ["session_init", "session_read", "session_destroy", "session_update", "session_new"]
)
@pytest.mark.parametrize("bad", [None, 42, b"bytes", ["x"]])
def test_non_str_ids_are_a_type_error_naming_sid(provider: Any, method: str, bad: object) -> None:
    with pytest.raises(TypeError, match="sid must be str"):
        getattr(provider, method)(bad)


@pytest.mark.parametrize(
    "method", ["session_init", "session_read", "session_destroy", "session_update", "session_new"]
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
    with pytest.raises(ValueError, match="clock returned nan"):
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


def test_every_mutation_marks_the_session_modified(provider: Any) -> None:
    s = provider.session_init(SID)
    mutations = [
        lambda: s.__setitem__("a", 1),
        lambda: s.set("b", 2),
        lambda: s.update(c=3),
        lambda: s.setdefault("d", 4),
        lambda: s.pop("a"),
        lambda: s.delete("b"),
        lambda: s.__delitem__("c"),
        lambda: s.popitem(),
        lambda: s.__ior__({"e": 5}),
        lambda: s.clear(),
    ]
    for mutate in mutations:
        s.modified = False
        mutate()
        assert s.modified, mutate
    assert dict(s) == {}


def test_reads_and_no_op_mutations_leave_modified_alone(provider: Any) -> None:
    s = provider.session_init(SID)
    s["a"] = 1
    s.modified = False
    _ = s["a"], s.get("a"), "a" in s, len(s), list(s), list(s.items()), list(s.values())
    s.delete("zz")
    s.pop("zz", None)
    s.setdefault("a", 99)
    assert not s.modified
    s.clear()
    s.modified = False
    s.clear()
    assert not s.modified


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


def test_modified_is_settable_and_always_a_bool(provider: Any) -> None:
    s = provider.session_init(SID)
    s.modified = "yes"
    assert s.modified is True
    s.modified = 0
    assert s.modified is False


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
    assert s.sid == "x" * 43 and len(s) == 0 and not s.modified
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
    assert [s.last_used for s in live] == sorted(s.last_used for s in live)


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


def test_accessed_is_a_settable_flag(provider: Any) -> None:
    s = provider.session_init(SID)
    assert s.accessed is False
    s.accessed = True
    assert s.accessed is True and s.permanent is None
    s.permanent = True
    s.accessed = False
    assert s.accessed is False and s.permanent is True


def test_a_clock_running_backwards_cannot_disorder_the_store(core: types.ModuleType) -> None:
    t = [100.0]
    p = core.MemoryProvider(clock=lambda: t[0])
    p.session_init("a")
    t[0] = 50.0  # the clock jumps back
    b = p.session_init("b")
    assert b.last_used == b.created == 100.0
    p.session_read("a")
    assert [s.sid for s in p.sessions()] == ["b", "a"]
    t[0] = 200.0
    assert p.session_gc(99.0) == 2
