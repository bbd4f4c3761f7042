"""The Provider contract: one suite for memory (both cores), Redis and async Redis.

Every test body runs on every provider through a small driver, ``Store``:
``store.call(name, *args)`` calls a provider method and, when it returns a
coroutine (an AsyncProvider), runs it on an event loop the test owns (a loop
in a thread of its own, closed at teardown); ``store.settle(session)`` sends
a session's buffered writes (async Redis buffers them until ``flush()``;
memory and sync Redis write through, so it does nothing for them).
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import types
from collections.abc import Awaitable, Iterator
from typing import Any, Optional

import pytest

import memsession
from memsession import Manager, _core_py
from memsession._impl import NO_EXTENSIONS
from memsession.testing import FakeClock

SID = "c" * 42 + "A"
TIMEOUT = 30.0  # seconds a coroutine may take on the test's loop before the test fails
PROVIDER_METHODS = ("session_init", "session_read", "session_destroy", "session_gc")


class LoopThread:
    """An event loop running in a thread of its own for the whole test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="conformance-loop", daemon=True)
        self._thread.start()

    def run(self, awaitable: Awaitable[Any]) -> Any:
        """Run a coroutine on the loop and return its result (or raise its exception)."""

        async def wrapper() -> Any:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(TIMEOUT)

    def close(self) -> None:
        self.run(self.loop.shutdown_asyncgens())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(TIMEOUT)
        self.loop.close()


class Store:
    """One provider under test, driven the same way whether it is sync or async."""

    def __init__(self, provider: Any, loop: LoopThread, contains: Any) -> None:
        self.provider = provider
        self.loop = loop
        self._contains = contains
        self.is_async = inspect.iscoroutinefunction(provider.session_read)

    def call(self, name: str, *args: Any) -> Any:
        """provider.<name>(*args), awaited on the test's loop when it is a coroutine."""
        return self.resolve(getattr(self.provider, name)(*args))

    def resolve(self, result: Any) -> Any:
        """result itself, or what it gives when awaited on the test's loop."""
        return self.loop.run(result) if inspect.isawaitable(result) else result

    def settle(self, session: Any) -> Optional[bool]:
        """Send the session's buffered writes, if it buffers any; flush()'s answer, or None."""
        flush = getattr(session, "flush", None)
        return None if flush is None else bool(self.loop.run(flush()))

    def __contains__(self, sid: str) -> bool:
        """Is sid live in the store? Never marks it used."""
        return bool(self._contains(sid))

    # The Manager: the a-prefixed coroutines for an async provider, the plain methods otherwise.
    def start(self, m: Manager, cookie: Optional[str]) -> Any:
        return self.loop.run(m.asession_start(cookie)) if m.is_async else m.session_start(cookie)

    def cookie(self, m: Manager, session: Any) -> Optional[str]:
        return self.loop.run(m.asession_cookie(session)) if m.is_async else m.session_cookie(session)

    def regenerate(self, m: Manager, session: Any) -> None:
        if m.is_async:
            self.loop.run(m.asession_regenerate(session))
        else:
            m.session_regenerate(session)

    def destroy(self, m: Manager, session: Any) -> None:
        if m.is_async:
            self.loop.run(m.asession_destroy(session))
        else:
            m.session_destroy(session)

    def close(self) -> None:
        close = getattr(self.provider, "aclose", None)
        if close is not None:
            self.loop.run(close())  # the connections it opened live in this loop


def _memory(core_name: str, clock: FakeClock) -> Any:
    if core_name == "python":
        return _core_py.MemoryProvider(clock=clock)
    if NO_EXTENSIONS:
        pytest.skip("MEMSESSION_NO_EXTENSIONS is set")
    compiled: types.ModuleType = __import__("memsession._core", fromlist=["MemoryProvider"])
    return compiled.MemoryProvider(clock=clock)


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    """An event loop in a thread, for the async provider's coroutines; closed after the test."""
    runner = LoopThread()
    yield runner
    runner.close()


@pytest.fixture(params=["memory-cython", "memory-python", "redis", "redis-async"])
def store(request: pytest.FixtureRequest, clock: FakeClock, loop: LoopThread) -> Iterator[Store]:
    """Each provider in turn, on the fake clock, with its driver."""
    kind = request.param
    if kind.startswith("memory-"):
        provider = _memory(kind.split("-")[1], clock)
        contains = provider.__contains__
    elif kind == "redis":
        provider = request.getfixturevalue("redis_provider")
        contains = provider.__contains__
    else:
        import redis as redis_py

        provider = request.getfixturevalue("async_redis_provider")
        server = request.getfixturevalue("redis_server")
        # An async provider cannot offer `in` (it would block): ask Redis directly,
        # as RedisProvider.__contains__ does.
        peek = redis_py.Redis.from_url(server.url)
        request.addfinalizer(peek.close)

        def contains(sid: str) -> bool:
            return bool(peek.hexists(provider._prefix + sid, "m:u"))

    driver = Store(provider, loop, contains)
    yield driver
    driver.close()


def test_is_a_provider_sync_or_async_throughout(store: Store) -> None:
    p = store.provider
    expected = memsession.AsyncProvider if store.is_async else memsession.Provider
    assert isinstance(p, expected)
    # All of the protocol's methods are coroutines, or none is; now() is always plain.
    assert {inspect.iscoroutinefunction(getattr(p, name)) for name in PROVIDER_METHODS} == {store.is_async}
    assert not inspect.iscoroutinefunction(p.now)


def test_sessions_are_sessions(store: Store) -> None:
    s = store.call("session_init", SID)
    assert isinstance(s, memsession.Session)
    assert isinstance(store.call("session_read", SID), memsession.Session)
    assert isinstance(store.call("session_new", "d" * 43), memsession.Session)


def test_init_gives_an_empty_stored_session(store: Store, clock: FakeClock) -> None:
    s = store.call("session_init", SID)
    assert s.sid == SID and dict(s) == {} and not s.new
    assert s.created == s.last_used == clock()
    assert SID in store


def test_init_never_overwrites_a_live_session(store: Store) -> None:
    s = store.call("session_init", SID)
    s["k"] = 1
    store.settle(s)
    with pytest.raises(ValueError, match="live already"):
        store.call("session_init", SID)
    assert store.call("session_read", SID)["k"] == 1


def test_read_of_an_unknown_id_creates_nothing(store: Store) -> None:
    assert store.call("session_read", SID) is None
    assert store.call("session_read", SID, 10) is None
    assert SID not in store


def test_writes_are_seen_by_the_next_read(store: Store) -> None:
    s = store.call("session_init", SID)
    s["user"] = "ann"
    s.update(cart=[1, 2], n=3)
    s.setdefault("theme", "dark")
    s.delete("n")
    store.settle(s)
    assert dict(store.call("session_read", SID)) == {"user": "ann", "cart": [1, 2], "theme": "dark"}
    s.pop("cart")
    store.settle(s)
    assert dict(store.call("session_read", SID)) == {"user": "ann", "theme": "dark"}
    s.clear()
    store.settle(s)
    assert dict(store.call("session_read", SID)) == {}
    assert SID in store  # emptied, not destroyed


def test_two_requests_writing_different_keys_lose_nothing(store: Store) -> None:
    store.call("session_init", SID)
    first = store.call("session_read", SID)
    second = store.call("session_read", SID)
    first["a"] = 1
    second["b"] = 2
    store.settle(first)
    store.settle(second)
    assert dict(store.call("session_read", SID)) == {"a": 1, "b": 2}


def test_two_requests_deleting_and_writing_different_keys_lose_nothing(store: Store) -> None:
    s = store.call("session_init", SID)
    s.update(old=1, keep=2)
    store.settle(s)
    first = store.call("session_read", SID)
    second = store.call("session_read", SID)
    del first["old"]
    second["new"] = 3
    store.settle(second)
    store.settle(first)
    assert dict(store.call("session_read", SID)) == {"keep": 2, "new": 3}


def test_clear_then_set_in_one_request(store: Store) -> None:
    s = store.call("session_init", SID)
    s.update(a=1, b=2)
    store.settle(s)
    other = store.call("session_read", SID)
    other["x"] = 9  # another request, done before this one clears
    store.settle(other)
    s["z"] = 0
    s.clear()  # all data goes, including what the other request added
    s["c"] = 3
    store.settle(s)
    assert dict(store.call("session_read", SID)) == {"c": 3}


def test_writes_to_a_destroyed_session_never_bring_it_back(store: Store) -> None:
    s = store.call("session_init", SID)
    s["a"] = 1
    store.settle(s)
    late = store.call("session_read", SID)
    store.call("session_destroy", SID)
    late["b"] = 2
    assert store.settle(late) in (None, False)  # async: flush() says the session is gone
    assert store.call("session_read", SID) is None
    assert SID not in store


def test_idle_expiry_slides_and_is_exact(store: Store, clock: FakeClock) -> None:
    store.call("session_init", SID)
    clock.advance(10)
    assert store.call("session_read", SID, 10) is not None  # exactly the lifetime: live
    clock.advance(9.5)
    assert store.call("session_read", SID, 10) is not None
    clock.advance(10.25)
    assert store.call("session_read", SID, 10) is None
    assert SID not in store


def test_read_marks_used(store: Store, clock: FakeClock) -> None:
    store.call("session_init", SID)
    clock.advance(4)
    assert store.call("session_read", SID).last_used == clock()


def test_update_marks_used_or_reports_unknown(store: Store, clock: FakeClock) -> None:
    store.call("session_init", SID)
    clock.advance(8)
    assert store.call("session_update", SID) is True
    clock.advance(8)
    assert store.call("session_read", SID, 10) is not None
    assert store.call("session_update", "x" * 43) is False


def test_destroy_is_idempotent(store: Store) -> None:
    store.call("session_init", SID)
    store.call("session_destroy", SID)
    store.call("session_destroy", SID)
    assert store.call("session_read", SID) is None


def test_gc_leaves_no_expired_session_servable(store: Store, clock: FakeClock) -> None:
    store.call("session_init", SID)
    clock.advance(20)
    removed = store.call("session_gc", 10)
    assert isinstance(removed, int) and removed >= 0
    assert store.call("session_read", SID, 10) is None


def test_now_is_the_providers_clock(store: Store, clock: FakeClock) -> None:
    assert store.provider.now() == clock()  # a plain call, even for an async provider


def test_new_then_insert_stores_all_data_at_once(store: Store) -> None:
    s = store.call("session_new", SID)
    assert s.new and SID not in store
    s.update(user="ann", roles=["admin"])
    store.call("session_insert", s)
    assert not s.new
    assert dict(store.call("session_read", SID)) == {"user": "ann", "roles": ["admin"]}


@pytest.mark.parametrize("bad", [None, 3, b"x"])
def test_non_str_ids_are_a_type_error(store: Store, bad: Any) -> None:
    for name in ("session_init", "session_read", "session_destroy"):
        with pytest.raises(TypeError, match="sid must be str"):
            store.call(name, bad)


def test_bad_lifetimes_are_rejected(store: Store) -> None:
    with pytest.raises(TypeError, match="max_lifetime"):
        store.call("session_read", SID, "10")
    with pytest.raises(ValueError, match="max_lifetime"):
        store.call("session_gc", -1)


def test_the_manager_runs_on_every_provider(store: Store, clock: FakeClock) -> None:
    with Manager(store.provider, "sid", 100, absolute_lifetime=1000) as m:
        assert m.is_async is store.is_async
        s = store.start(m, None)
        s["n"] = 1
        cookie = (store.cookie(m, s) or "").split(";")[0]
        s = store.start(m, cookie)
        assert s["n"] == 1 and not s.new
        s["n"] += 1
        old = cookie
        store.regenerate(m, s)
        cookie = (store.cookie(m, s) or "").split(";")[0]
        assert cookie != old and store.start(m, old).new
        again = store.start(m, cookie)
        assert again["n"] == 2
        again.permanent = False
        assert "Max-Age" not in (store.cookie(m, again) or "")
        assert store.start(m, cookie).permanent is False
        clock.advance(99)
        store.destroy(m, store.start(m, cookie))
        assert store.start(m, cookie).new
