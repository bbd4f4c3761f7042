"""The compiled core and the twin give identical results for the same operations."""

from __future__ import annotations

from typing import Any, Callable

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
BAD = st.sampled_from([None, 3, -1, float("nan"), "x", b"a", True, ""])


def outcome(call: Callable[[], Any]) -> Any:
    """A comparable picture of what a call did: its result or its error."""
    try:
        return ("ok", view(call()))
    except Exception as exc:  # noqa: BLE001 - compared, not swallowed
        return ("error", type(exc), str(exc))


def view(value: Any) -> Any:
    if isinstance(value, (_core.Session, _core_py.Session)):
        return ("session", value.sid, dict(value), value.created, value.last_used, value.modified)
    return value


class TwinCores(RuleBasedStateMachine):
    """Drives both providers in lock step on one clock."""

    @initialize(max_sessions=st.one_of(st.none(), st.integers(1, 5)))
    def setup(self, max_sessions: Any) -> None:
        self.clock = FakeClock(100.0)
        self.fast = _core.MemoryProvider(max_sessions=max_sessions, clock=self.clock)
        self.slow = _core_py.MemoryProvider(max_sessions=max_sessions, clock=self.clock)
        self.max_lifetime_seen = 0.0

    def both(self, name: str, *args: Any) -> Any:
        a = outcome(lambda: getattr(self.fast, name)(*args))
        b = outcome(lambda: getattr(self.slow, name)(*args))
        assert a == b, (name, args, a, b)
        return a

    @rule(sid=SIDS)
    def init(self, sid: str) -> None:
        self.both("session_init", sid)

    @rule(sid=SIDS, lifetime=LIFETIMES)
    def read(self, sid: str, lifetime: Any) -> None:
        self.both("session_read", sid, lifetime)

    @rule(sid=SIDS)
    def update(self, sid: str) -> None:
        self.both("session_update", sid)

    @rule(sid=SIDS)
    def destroy(self, sid: str) -> None:
        self.both("session_destroy", sid)

    @rule(lifetime=st.integers(0, 30))
    def gc(self, lifetime: int) -> None:
        self.both("session_gc", lifetime)

    @rule(sid=SIDS)
    def new_then_insert(self, sid: str) -> None:
        fast = self.fast.session_new(sid)
        slow = self.slow.session_new(sid)
        fast["made"] = slow["made"] = self.clock()
        a = outcome(lambda: self.fast.session_insert(fast))
        b = outcome(lambda: self.slow.session_insert(slow))
        assert a == b

    @rule(sid=SIDS, key=st.sampled_from(["k", "n"]), value=st.integers())
    def write(self, sid: str, key: str, value: int) -> None:
        a = self.fast.session_read(sid)
        b = self.slow.session_read(sid)
        assert view(a) == view(b)
        if a is not None:
            a[key] = value
            b[key] = value

    @rule(bad=BAD, name=st.sampled_from(["session_init", "session_read", "session_destroy", "session_gc"]))
    def bad_argument(self, bad: Any, name: str) -> None:
        self.both(name, bad)

    @rule(seconds=st.one_of(st.integers(0, 20), st.floats(0, 20, allow_nan=False)))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule(sid=st.one_of(SIDS, st.integers()))
    def contains(self, sid: Any) -> None:
        assert (sid in self.fast) == (sid in self.slow)

    @invariant()
    def same_sessions_in_same_order(self) -> None:
        fast = [view(s) for s in self.fast.sessions()]
        slow = [view(s) for s in self.slow.sessions()]
        assert fast == slow
        assert len(self.fast) == len(self.slow) == len(fast)

    @invariant()
    def same_stats(self) -> None:
        assert self.fast.stats() == self.slow.stats()

    @invariant()
    def list_is_in_last_use_order(self) -> None:
        times = [s.last_used for s in self.fast.sessions()]
        assert times == sorted(times)


TwinCores.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_cores_agree = TwinCores.TestCase
