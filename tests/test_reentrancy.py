"""Destructors and clocks that call back into the store find it consistent."""

from __future__ import annotations

import gc
import types
from typing import Any

import pytest

from memsession import Manager
from memsession.testing import FakeClock


class CallsBack:
    """A session value whose destructor uses the store and a Manager."""

    log: list[str] = []

    def __init__(self, manager: Manager, tag: str) -> None:
        self.manager = manager
        self.tag = tag

    def __del__(self) -> None:
        provider: Any = self.manager.provider
        s = self.manager.session_start(None)
        s["from_del"] = self.tag
        self.manager.session_cookie(s)
        provider.session_gc(1e9)
        for other in provider.sessions():
            provider.session_read(other.sid)
        CallsBack.log.append(self.tag)


def consistent(provider: Any) -> None:
    live = list(provider.sessions())
    assert len(live) == len(provider) == provider.stats()["live"]
    assert all(s.sid in provider and not s.new for s in live)
    times = [s.last_used for s in live]
    assert times == sorted(times)


@pytest.mark.parametrize("how", ["destroy", "regenerate-then-clear", "gc", "evict", "emptied"])
def test_manager_operations_survive_destructors_that_call_back(
    core: types.ModuleType, clock: FakeClock, how: str
) -> None:
    CallsBack.log = []
    provider = core.MemoryProvider(clock=clock, max_sessions=4)
    with Manager(provider, "sid", 10) as manager:
        s = manager.session_start(None)
        s["value"] = CallsBack(manager, how)
        cookie = (manager.session_cookie(s) or "").split(";")[0]
        s = manager.session_start(cookie)
        if how == "destroy":
            manager.session_destroy(s)
            manager.session_cookie(s)
        elif how == "regenerate-then-clear":
            manager.session_regenerate(s)
            s.clear()
            manager.session_cookie(s)
        elif how == "gc":
            del s
            clock.advance(11)
            manager.gc()
        elif how == "evict":
            del s
            for _ in range(4):
                t = manager.session_start(None)
                t["x"] = 1
                manager.session_cookie(t)
            del t
        else:
            del s["value"]
            manager.session_cookie(s)
        s = None
        gc.collect()
        assert CallsBack.log == [how]
        consistent(provider)
        assert any(x.get("from_del") == how for x in provider.sessions())


@pytest.mark.parametrize(
    "call",
    [
        lambda p: p.session_init("new"),
        lambda p: p.session_new("new"),
        lambda p: p.session_insert(p._spare),
        lambda p: p.session_read("a", 5),
        lambda p: p.session_update("a"),
        lambda p: p.session_gc(0),
        lambda p: p.now(),
    ],
    ids=["init", "new", "insert", "read", "update", "gc", "now"],
)
def test_a_failing_clock_raises_clearly_and_changes_nothing(core: types.ModuleType, call: Any) -> None:
    state = {"fail": False}

    def clock() -> float:
        if state["fail"]:
            raise OSError("clock source unavailable")
        return 100.0

    p = core.MemoryProvider(clock=clock, max_sessions=2)
    p.session_init("a")["k"] = 1
    p.session_init("b")["k"] = 2
    spare = p.session_new("spare")
    before = ([(s.sid, dict(s), s.last_used) for s in p.sessions()], p.stats())
    state["fail"] = True
    calls = {name: getattr(p, name) for name in dir(p) if name.startswith("session") or name == "now"}
    with pytest.raises(OSError, match="clock source unavailable"):
        call(types.SimpleNamespace(_spare=spare, **calls))
    assert ([(s.sid, dict(s), s.last_used) for s in p.sessions()], p.stats()) == before
    assert spare.new
