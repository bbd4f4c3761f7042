"""The compiled core, the twin and a reference model agree on every operation."""

from __future__ import annotations

import math
import os
from datetime import timedelta
from typing import Any, Callable, Optional

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from memsession import _core_py
from memsession._impl import NO_EXTENSIONS
from memsession.testing import FakeClock

if NO_EXTENSIONS:
    pytest.skip("the compiled core is disabled", allow_module_level=True)

from memsession import _core  # noqa: E402

SIDS = st.sampled_from(["a", "b", "c", "d", "e", "f", "g"])
LIFETIMES = st.one_of(st.none(), st.integers(0, 30), st.floats(0, 30, allow_nan=False))
BAD_SIDS = st.sampled_from([None, 3, b"a", True, ""])
BAD_LIFETIMES = st.sampled_from([None, -1, float("nan"), "x", True])
NON_FINITE = st.sampled_from([math.inf, -math.inf, math.nan])
STAT_KEYS = ("hits", "misses", "created", "destroyed", "expired", "evicted")


def outcome(call: Callable[[], Any]) -> Any:
    """A comparable picture of what a call did: its result or its error."""
    try:
        return ("ok", view(call()))
    except Exception as exc:  # noqa: BLE001 - compared, not swallowed
        return ("error", type(exc), str(exc))


def view(value: Any) -> Any:
    if isinstance(value, (_core.Session, _core_py.Session)):
        return (
            "session",
            value.sid,
            dict(value),
            value.created,
            value.last_used,
            value.new,
            value.permanent,
            value._cookie_at,
        )
    return value


def peek(provider: Any, sid: str) -> Any:
    """The live session sid, found without marking it used."""
    for s in provider.sessions():
        if s.sid == sid:
            return s
    return None


class TwinCores(RuleBasedStateMachine):
    """Drives both providers and a model of the store in lock step on one clock."""

    # Where the shared clock starts (epoch + 100): just below zero, and just
    # before times stop having fractions (2**52) and at odd integers' end
    # (2**53), since a use moves a session only in a later whole second.
    @initialize(
        max_sessions=st.one_of(st.none(), st.integers(1, 5)),
        epoch=st.sampled_from([0.0, -100.5, -102.25, 2.0**52 - 105.5, 2.0**53 - 100.0]),
    )
    def setup(self, max_sessions: Any, epoch: float) -> None:
        self.clock = FakeClock(100.0)
        self.epoch = epoch
        self.broken: Optional[float] = None  # what the clock returns while broken
        self.fast = _core.MemoryProvider(max_sessions=max_sessions, clock=self.now)
        self.slow = _core_py.MemoryProvider(max_sessions=max_sessions, clock=self.now)
        self.max_sessions = max_sessions
        # The model: live id -> last use, in order of the second of the last
        # use (oldest first; within a second, in the order they entered it),
        # each session's data, the counters, and the longest lifetime the
        # store was told (-1: none yet), which inserts reclaim past.
        self.model: dict[str, float] = {}
        self.data: dict[str, dict[str, Any]] = {}
        self.stats = dict.fromkeys(STAT_KEYS, 0)
        self.reclaim_after = -1.0

    def time(self) -> float:
        """The shared clock's time, from the drawn epoch."""
        return self.clock() + self.epoch

    def now(self) -> float:
        return self.time() if self.broken is None else self.broken

    def both(self, name: str, *args: Any) -> Any:
        a = outcome(lambda: getattr(self.fast, name)(*args))
        b = outcome(lambda: getattr(self.slow, name)(*args))
        assert a == b, (name, args, a, b)
        return a

    # -- the model ---------------------------------------------------------------
    def model_touch(self, sid: str) -> None:
        """A use moves the session to the fresh end only in a later second than its last."""
        now = self.time()
        if math.floor(now) > math.floor(self.model[sid]):
            del self.model[sid]
        self.model[sid] = now

    def model_remove(self, sid: str, counter: str) -> None:
        del self.model[sid]
        del self.data[sid]
        self.stats[counter] += 1

    def model_saw_lifetime(self, lifetime: float) -> None:
        self.reclaim_after = max(self.reclaim_after, float(lifetime))

    def model_reclaim(self, at_most: int) -> None:
        """Reclaim at most that many sessions idle past the known lifetime, oldest first."""
        now = self.time()
        for _ in range(at_most):
            if self.reclaim_after < 0 or not self.model:
                break
            oldest, last_used = next(iter(self.model.items()))
            if not now - last_used > self.reclaim_after:
                break
            self.model_remove(oldest, "expired")

    def model_store(self, sid: str, data: dict[str, Any]) -> None:
        now = self.time()
        self.model_reclaim(2)  # an insert reclaims up to two
        if self.max_sessions is not None and len(self.model) >= self.max_sessions:
            self.model_remove(next(iter(self.model)), "evicted")  # least recently used
        self.model[sid] = now
        self.data[sid] = data
        self.stats["created"] += 1

    # -- rules -------------------------------------------------------------------
    @rule(sid=SIDS)
    def init(self, sid: str) -> None:
        result = self.both("session_init", sid)
        if sid in self.model:
            assert result[0] == "error" and result[1] is ValueError
        else:
            assert result[0] == "ok" and result[1][1] == sid
            self.model_store(sid, {})

    @rule(sid=SIDS, lifetime=LIFETIMES)
    def read(self, sid: str, lifetime: Optional[float]) -> None:
        result = self.both("session_read", sid, lifetime)
        if lifetime is not None:
            self.model_saw_lifetime(lifetime)
        if sid not in self.model:
            assert result == ("ok", None)
            self.stats["misses"] += 1
        elif lifetime is not None and self.time() - self.model[sid] > lifetime:
            assert result == ("ok", None), "an expired session was returned"
            self.model_remove(sid, "expired")
            self.stats["misses"] += 1
        else:
            assert result[1][1] == sid  # never another session's data
            assert result[1][2] == self.data[sid]
            self.model_touch(sid)
            self.stats["hits"] += 1
            self.model_reclaim(1)  # a hit reclaims up to one

    @rule(sid=SIDS)
    def update(self, sid: str) -> None:
        assert self.both("session_update", sid) == ("ok", sid in self.model)
        if sid in self.model:
            self.model_touch(sid)

    @rule(sid=SIDS)
    def destroy(self, sid: str) -> None:
        self.both("session_destroy", sid)
        if sid in self.model:
            self.model_remove(sid, "destroyed")

    @rule(sid=SIDS)
    def take(self, sid: str) -> None:
        result = self.both("session_take", sid)
        if sid in self.model:
            assert result[1] is not None and result[1][1] == sid and result[1][2] == self.data[sid]
            self.model_remove(sid, "destroyed")
        else:
            assert result == ("ok", None)

    @rule(sid=SIDS)
    def destroy_if_empty(self, sid: str) -> None:
        removed = sid in self.model and not self.data[sid]
        assert self.both("session_destroy_if_empty", sid) == ("ok", removed)
        if removed:
            self.model_remove(sid, "destroyed")

    @rule(lifetime=st.one_of(st.integers(0, 30), st.floats(0, 30, allow_nan=False)))
    def gc(self, lifetime: float) -> None:
        now = self.time()
        expired = [sid for sid, t in self.model.items() if now - t > lifetime]
        assert self.both("session_gc", lifetime) == ("ok", len(expired))
        self.model_saw_lifetime(lifetime)
        for sid in expired:
            self.model_remove(sid, "expired")

    @rule(sid=SIDS)
    def new_then_insert(self, sid: str) -> None:
        fast = self.fast.session_new(sid)
        slow = self.slow.session_new(sid)
        assert view(fast) == view(slow)
        fast["made"] = slow["made"] = self.time()
        a = outcome(lambda: self.fast.session_insert(fast))
        b = outcome(lambda: self.slow.session_insert(slow))
        assert a == b
        if sid in self.model:
            assert a[0] == "error" and a[1] is ValueError
        else:
            assert a == ("ok", None)
            self.model_store(sid, {"made": self.time()})
        assert view(fast) == view(slow)

    @rule()
    def insert_a_session_without_an_id(self) -> None:
        a = outcome(lambda: self.fast.session_insert(_core.Session.__new__(_core.Session)))
        b = outcome(lambda: self.slow.session_insert(_core_py.Session.__new__(_core_py.Session)))
        assert a == b and a[0] == "error" and a[1] is ValueError

    @rule(sid=SIDS, key=st.sampled_from(["k", "n"]), value=st.integers())
    def write(self, sid: str, key: str, value: int) -> None:
        a = self.fast.session_read(sid)
        b = self.slow.session_read(sid)
        assert view(a) == view(b)
        if a is None:
            self.stats["misses"] += 1
        else:
            assert b is not None
            a[key] = value
            b.set(key, value)
            self.data[sid][key] = value
            self.model_touch(sid)
            self.stats["hits"] += 1
            self.model_reclaim(1)  # a hit reclaims up to one

    @rule(sid=SIDS, key=st.sampled_from(["k", "n", "made", "absent"]), clear=st.booleans())
    def remove_data(self, sid: str, key: str, clear: bool) -> None:
        a, b = peek(self.fast, sid), peek(self.slow, sid)
        assert view(a) == view(b)
        if a is None:
            return
        if clear:
            a.clear()
            b.clear()
            self.data[sid].clear()
        else:
            a.delete(key)
            b.delete(key)
            self.data[sid].pop(key, None)

    @rule(sid=SIDS, value=st.sampled_from([None, True, False, 0, 1, "", "yes"]))
    def set_permanent(self, sid: str, value: Any) -> None:
        a, b = peek(self.fast, sid), peek(self.slow, sid)
        if a is None:
            assert b is None
            return
        a.permanent = b.permanent = value
        assert view(a) == view(b)
        a._cookie_at = b._cookie_at = self.time()
        assert view(a) == view(b)

    @rule(sid=SIDS, other=SIDS)
    def reinitialise(self, sid: str, other: str) -> None:
        a, b = peek(self.fast, sid), peek(self.slow, sid)
        if a is None:
            assert b is None
            return
        assert outcome(lambda: a.__init__(other)) == outcome(lambda: b.__init__(other))
        assert a.sid == b.sid == sid

    @rule(data=st.data())
    def destroy_while_iterating(self, data: st.DataObject) -> None:
        doomed = data.draw(st.sets(SIDS))
        for provider in (self.fast, self.slow):
            seen = []
            for s in provider.sessions():
                seen.append(s.sid)
                for sid in doomed:
                    provider.session_destroy(sid)
            assert set(seen) <= set(self.model)
        for sid in doomed:
            if sid in self.model:
                self.model_remove(sid, "destroyed")

    @rule(
        bad=BAD_SIDS,
        name=st.sampled_from(["session_init", "session_read", "session_destroy", "session_destroy_if_empty"]),
    )
    def bad_id(self, bad: Any, name: str) -> None:
        assert self.both(name, bad)[0] == "error"

    @rule(bad=BAD_LIFETIMES, sid=SIDS)
    def bad_lifetime(self, bad: Any, sid: str) -> None:
        assert self.both("session_gc", bad)[0] == "error"
        if bad is not None:
            assert self.both("session_read", sid, bad)[0] == "error"

    @rule(
        bad=NON_FINITE,
        sid=SIDS,
        name=st.sampled_from(["session_init", "session_read", "session_update", "session_gc", "now"]),
        lifetime=st.integers(0, 30),
    )
    def non_finite_clock(self, bad: float, sid: str, name: str, lifetime: int) -> None:
        args: tuple[Any, ...] = {
            "session_init": (sid,),
            "session_read": (sid, lifetime),
            "session_update": (sid,),
            "session_gc": (lifetime,),
            "now": (),
        }[name]
        self.broken = bad
        try:
            result = self.both(name, *args)
        finally:
            self.broken = None
        assert result[0] == "error" and result[1] is ValueError
        assert "clock must return a finite number" in result[2]
        # A call that failed on its clock leaves everything as it was, the
        # remembered lifetime included.

    @rule(seconds=st.one_of(st.integers(0, 20), st.floats(0, 20, allow_nan=False)))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule(sid=st.one_of(SIDS, st.integers()))
    def contains(self, sid: Any) -> None:
        assert (sid in self.fast) == (sid in self.slow)

    # -- invariants --------------------------------------------------------------
    @invariant()
    def same_sessions_in_same_order(self) -> None:
        fast = [view(s) for s in self.fast.sessions()]
        slow = [view(s) for s in self.slow.sessions()]
        assert fast == slow
        assert len(self.fast) == len(self.slow) == len(fast)

    @invariant()
    def each_core_matches_the_model(self) -> None:
        for provider in (self.fast, self.slow):
            assert [(s.sid, s.last_used) for s in provider.sessions()] == list(self.model.items())
            assert {s.sid: dict(s) for s in provider.sessions()} == self.data
            assert len(provider) == provider.stats()["live"] == len(self.model)
            assert all(sid in provider for sid in self.model)
            assert not any(s.new for s in provider.sessions())

    @invariant()
    def same_stats_as_the_model(self) -> None:
        expected = {"live": len(self.model), **self.stats}
        assert self.fast.stats() == self.slow.stats() == expected

    @invariant()
    def list_is_in_order_of_the_second_of_last_use(self) -> None:
        seconds = [math.floor(s.last_used) for s in self.fast.sessions()]
        assert seconds == sorted(seconds)


TwinCores.TestCase.settings = settings(
    max_examples=int(os.environ.get("MEMSESSION_STATEFUL_EXAMPLES", "400")),
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_cores_agree = TwinCores.TestCase


class _Seconds(float):
    """A float subclass: not the plain float a read's usual call passes."""


class _Lying(float):
    """A float whose __float__ says something else than its value."""

    def __float__(self) -> float:
        return 1e9


class _Id(str):
    """A str subclass (not the exact str a read's usual call passes) that counts its hash and == calls."""

    calls = 0

    def __hash__(self) -> int:
        _Id.calls += 1
        return str.__hash__(self)

    def __eq__(self, other: object) -> bool:
        _Id.calls += 1
        return str.__eq__(self, other)


LIVE, GONE = "L" * 43, "G" * 43
READ_CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    ((LIVE,), {}),
    ((LIVE, 5.0), {}),
    ((LIVE, 0.0), {}),
    ((LIVE, 0.5), {}),
    ((LIVE, None), {}),
    ((LIVE, 5), {}),
    ((LIVE, 0), {}),
    ((LIVE, True), {}),
    ((LIVE, -0.0), {}),
    ((LIVE, -1.0), {}),
    ((LIVE, math.nan), {}),
    ((LIVE, math.inf), {}),
    ((LIVE, _Seconds(5.0)), {}),
    ((LIVE, _Seconds(0.5)), {}),
    ((LIVE, _Lying(0.5)), {}),
    ((LIVE, timedelta(seconds=5)), {}),
    ((LIVE, "5"), {}),
    ((_Id(LIVE),), {}),
    ((_Id(LIVE), 0.5), {}),
    ((GONE,), {}),
    ((GONE, 5.0), {}),
    (("",), {}),
    (("", 5.0), {}),
    ((3,), {}),
    ((None, 5.0), {}),
    ((b"L" * 43, 5.0), {}),
    ((), {"sid": LIVE}),
    ((), {"sid": LIVE, "max_lifetime": 0.5}),
    ((LIVE,), {"max_lifetime": 5.0}),
    ((LIVE,), {"max_lifetime": 0.5}),
    ((), {"sid": GONE, "max_lifetime": 5.0}),
]
# Calls Python itself refuses before the method runs: each core words that its own way.
UNBOUND_CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    ((), {}),
    ((LIVE, 5.0, 1.0), {}),
    ((LIVE,), {"sid": LIVE}),
    ((LIVE,), {"lifetime": 5.0}),
    ((LIVE, 5.0), {"max_lifetime": 5.0}),
]


def _read_in_each_core(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    """Per core: what session_read(*args, **kwargs) answered, the stats after, the live session."""
    found = []
    for core in (_core, _core_py):
        # A fresh str subclass each time: one that was hashed before keeps its hash.
        args = tuple(_Id(str.__str__(a)) if isinstance(a, _Id) else a for a in args)
        clock = FakeClock(100.0)
        provider = core.MemoryProvider(clock=clock)
        provider.session_init(LIVE)["k"] = 1
        clock.advance(1.0)  # idle 1 s: expired for a lifetime of 0.5, live for 5
        result = outcome(lambda p=provider, a=args: p.session_read(*a, **kwargs))
        found.append((result, provider.stats(), view(peek(provider, LIVE))))
    return found


@pytest.mark.parametrize(("args", "kwargs"), READ_CALLS, ids=[repr(c)[:60] for c in READ_CALLS])
def test_every_way_of_calling_session_read_answers_as_the_twin_does(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    # The compiled core takes the usual call (exact str, plain float or no
    # lifetime, by position) on a short path of its own; every call must
    # still get the twin's answer, error and effect on the store.
    _Id.calls = 0
    compiled, twin = _read_in_each_core(args, kwargs)
    assert compiled == twin
    assert _Id.calls == 0  # a str subclass's own code never runs inside the store


@pytest.mark.parametrize(("args", "kwargs"), UNBOUND_CALLS, ids=[repr(c)[:60] for c in UNBOUND_CALLS])
def test_a_call_session_read_cannot_take_is_a_type_error_that_changes_nothing(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    compiled, twin = _read_in_each_core(args, kwargs)
    assert compiled[0][:2] == twin[0][:2] == ("error", TypeError)
    assert "session_read()" in compiled[0][2]
    assert compiled[1:] == twin[1:]
    assert compiled[1]["hits"] == compiled[1]["misses"] == 0


def test_the_compiled_session_read_stays_a_plain_method() -> None:
    assert _core._read_entry_installed()
    method = _core.MemoryProvider.__dict__["session_read"]
    assert type(method) is type(_core.MemoryProvider.__dict__["session_update"])
    assert method.__qualname__ == "MemoryProvider.session_read"
    assert method.__doc__ == _core_py.MemoryProvider.session_read.__doc__
    provider = _core.MemoryProvider()
    s = provider.session_init(LIVE)
    assert _core.MemoryProvider.session_read(provider, LIVE, 5.0) is s
    with pytest.raises(TypeError, match="session_read"):
        _core.MemoryProvider.session_read(object(), LIVE, 5.0)


def test_a_float_subclass_counts_for_its_value_not_its_float_method_in_both_cores() -> None:
    for core in (_core, _core_py):
        provider = core.MemoryProvider(clock=lambda: _Lying(100.0))
        assert provider.now() == 100.0
        assert provider.session_init(LIVE).created == 100.0
