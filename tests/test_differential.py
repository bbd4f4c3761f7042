"""The compiled core, the twin and a reference model agree on every operation."""

from __future__ import annotations

import os
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
    """Drives both providers and a model of the store in lock step on one clock."""

    @initialize(max_sessions=st.one_of(st.none(), st.integers(1, 5)))
    def setup(self, max_sessions: Any) -> None:
        self.clock = FakeClock(100.0)
        self.fast = _core.MemoryProvider(max_sessions=max_sessions, clock=self.clock)
        self.slow = _core_py.MemoryProvider(max_sessions=max_sessions, clock=self.clock)
        self.max_sessions = max_sessions
        # The model: live id -> last use, in last-use order (oldest first).
        self.model: dict[str, float] = {}

    def both(self, name: str, *args: Any) -> Any:
        a = outcome(lambda: getattr(self.fast, name)(*args))
        b = outcome(lambda: getattr(self.slow, name)(*args))
        assert a == b, (name, args, a, b)
        return a

    def model_touch(self, sid: str) -> None:
        del self.model[sid]
        self.model[sid] = self.clock()

    def model_store(self, sid: str) -> None:
        if self.max_sessions is not None and len(self.model) >= self.max_sessions:
            del self.model[next(iter(self.model))]  # least recently used
        self.model[sid] = self.clock()

    @rule(sid=SIDS)
    def init(self, sid: str) -> None:
        result = self.both("session_init", sid)
        if sid in self.model:
            assert result[0] == "error" and result[1] is ValueError
        else:
            assert result[0] == "ok" and result[1][1] == sid
            self.model_store(sid)

    @rule(sid=SIDS, lifetime=LIFETIMES)
    def read(self, sid: str, lifetime: Optional[float]) -> None:
        result = self.both("session_read", sid, lifetime)
        if sid not in self.model:
            assert result == ("ok", None)
        elif lifetime is not None and self.clock() - self.model[sid] > lifetime:
            assert result == ("ok", None), "an expired session was returned"
            del self.model[sid]
        else:
            assert result[1][1] == sid  # never another session's data
            self.model_touch(sid)

    @rule(sid=SIDS)
    def update(self, sid: str) -> None:
        assert self.both("session_update", sid) == ("ok", sid in self.model)
        if sid in self.model:
            self.model_touch(sid)

    @rule(sid=SIDS)
    def destroy(self, sid: str) -> None:
        self.both("session_destroy", sid)
        self.model.pop(sid, None)

    @rule(lifetime=st.integers(0, 30))
    def gc(self, lifetime: int) -> None:
        now = self.clock()
        expired = [sid for sid, t in self.model.items() if now - t > lifetime]
        assert self.both("session_gc", lifetime) == ("ok", len(expired))
        for sid in expired:
            del self.model[sid]

    @rule(sid=SIDS)
    def new_then_insert(self, sid: str) -> None:
        fast = self.fast.session_new(sid)
        slow = self.slow.session_new(sid)
        fast["made"] = slow["made"] = self.clock()
        a = outcome(lambda: self.fast.session_insert(fast))
        b = outcome(lambda: self.slow.session_insert(slow))
        assert a == b
        if sid not in self.model:
            assert a == ("ok", None)
            self.model_store(sid)

    @rule(sid=SIDS, key=st.sampled_from(["k", "n"]), value=st.integers())
    def write(self, sid: str, key: str, value: int) -> None:
        a = self.fast.session_read(sid)
        b = self.slow.session_read(sid)
        assert view(a) == view(b)
        if a is not None:
            a[key] = value
            b[key] = value
            self.model_touch(sid)

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
            self.model.pop(sid, None)

    @rule(bad=BAD_SIDS, name=st.sampled_from(["session_init", "session_read", "session_destroy"]))
    def bad_id(self, bad: Any, name: str) -> None:
        assert self.both(name, bad)[0] == "error"

    @rule(bad=BAD_LIFETIMES)
    def bad_lifetime(self, bad: Any) -> None:
        assert self.both("session_gc", bad)[0] == "error"

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
    def each_core_matches_the_model(self) -> None:
        for provider in (self.fast, self.slow):
            assert [(s.sid, s.last_used) for s in provider.sessions()] == list(self.model.items())
            assert len(provider) == provider.stats()["live"] == len(self.model)
            assert all(sid in provider for sid in self.model)

    @invariant()
    def same_stats(self) -> None:
        assert self.fast.stats() == self.slow.stats()

    @invariant()
    def list_is_in_last_use_order(self) -> None:
        times = [s.last_used for s in self.fast.sessions()]
        assert times == sorted(times)


TwinCores.TestCase.settings = settings(
    max_examples=int(os.environ.get("MEMSESSION_STATEFUL_EXAMPLES", "400")),
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_cores_agree = TwinCores.TestCase
