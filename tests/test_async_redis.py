"""AsyncRedisProvider on a real redis-server: loops, connections, flush, faults, the Manager.

Connections are counted on the server (CLIENT LIST), each provider naming
its connections with a client_name of its own, so no test reaches into the
provider to see what it opened.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import threading
import traceback
import uuid
from collections.abc import Awaitable, Iterator
from typing import Any, Callable

import pytest

import memsession
from memsession import Manager, ProviderUnavailableError
from memsession.testing import FakeClock

from .redis_server import eventually

redis_py = pytest.importorskip("redis")
import redis.asyncio as redis_aio  # noqa: E402

from memsession.redis import AsyncRedisProvider, AsyncRedisSession  # noqa: E402

SID = "a" * 42 + "Q"
OTHER = "b" * 42 + "Q"
PASSWORD = "Pw-7f3c9d1e-never-shown"


@pytest.fixture
def server(running_redis: Any) -> Any:
    """The shared redis-server, running (tests here stop and start it)."""
    return running_redis


@pytest.fixture
def peek(server: Any) -> Iterator[Any]:
    """A plain sync client to look at what is in Redis."""
    client = redis_py.Redis.from_url(server.url)
    yield client
    client.close()


class Named:
    """An AsyncRedisProvider whose connections the server can count."""

    def __init__(self, server: Any, peek: Any, clock: FakeClock) -> None:
        self.name = f"ms-{uuid.uuid4().hex[:12]}"
        self.prefix = f"ar-{uuid.uuid4().hex[:8]}:"
        self.url = f"{server.url}?client_name={self.name}"
        self.peek = peek
        self.provider = AsyncRedisProvider(self.url, prefix=self.prefix, clock=clock, timeout=2.0)

    def connections(self) -> int:
        """How many connections this provider has open on the server."""
        return sum(1 for c in self.peek.client_list() if c.get("name") == self.name)

    def key(self, sid: str) -> str:
        return self.prefix + sid

    def fields(self, sid: str) -> dict[bytes, bytes]:
        return dict(self.peek.hgetall(self.key(sid)))

    def run(self, main: Callable[[], Awaitable[Any]]) -> Any:
        """asyncio.run(main()), closing the provider's connections in that loop at the end."""

        async def closing() -> Any:
            try:
                return await main()
            finally:
                await self.provider.aclose()

        return asyncio.run(closing())


@pytest.fixture
def named(server: Any, peek: Any, clock: FakeClock) -> Iterator[Named]:
    n = Named(server, peek, clock)
    yield n
    asyncio.run(n.provider.aclose())


async def counted_visit(p: AsyncRedisProvider, sid: str = SID) -> int:
    """One request: read (or create) the session, add one to n, flush; n afterwards."""
    s = await p.session_read(sid, 100)
    if s is None:
        s = await p.session_init(sid)
    s["n"] = s.get("n", 0) + 1
    assert await s.flush() is True
    return int(s["n"])


async def stored(p: AsyncRedisProvider, sid: str = SID) -> dict[str, Any]:
    """The session's data as a read sees it; the session must be live."""
    s = await p.session_read(sid)
    assert s is not None
    return dict(s)


# -- the protocol -------------------------------------------------------------


def test_it_is_an_async_provider_with_session_sessions(named: Named) -> None:
    p = named.provider
    assert isinstance(p, memsession.AsyncProvider)
    for name in ("session_init", "session_read", "session_destroy", "session_gc", "session_update"):
        assert inspect.iscoroutinefunction(getattr(p, name)), name
    assert isinstance(p.now(), float)  # the clock stays a plain call

    async def main() -> None:
        made = await p.session_init(SID)
        read = await p.session_read(SID)
        detached = p.session_new(OTHER)
        for s in (made, read, detached):
            assert isinstance(s, memsession.Session) and isinstance(s, AsyncRedisSession)

    named.run(main)


# -- connections and loops ----------------------------------------------------


def test_nothing_connects_before_first_use(named: Named) -> None:
    # Made outside any event loop (the fixture did): no loop is needed, none is opened.
    assert named.connections() == 0

    async def main() -> None:
        assert named.connections() == 0  # inside a loop, still nothing until a call
        assert await named.provider.session_read(SID) is None
        assert named.connections() == 1

    named.run(main)
    eventually(lambda: named.connections() == 0, "the connection is closed")


def test_one_provider_serves_several_asyncio_run_loops_in_a_row(named: Named) -> None:
    # Each loop closes what it opened, as an app's lifespan shutdown would.
    assert [named.run(lambda: counted_visit(named.provider)) for _ in range(4)] == [1, 2, 3, 4]
    eventually(lambda: named.connections() == 0, "every loop's connection is closed")


def test_loops_that_never_close_the_provider_leave_no_connection_behind(named: Named) -> None:
    # Tests (and TestClient without a with-block) make loops and drop them
    # without aclose(): the provider must not leak a connection per loop
    # (each becomes a ResourceWarning, an error in this suite, when collected).
    p = named.provider
    assert [asyncio.run(counted_visit(p)) for _ in range(4)] == [1, 2, 3, 4]
    gc.collect()
    eventually(lambda: named.connections() == 0, "the dropped loops' connections are closed")


# Each thread's aclose() runs while the other loop still has its connection; what
# becomes of that one is test_aclose_in_one_loop_leaves_another_loops_connection_alone's
# business: here only the loops' independence is checked.
def test_two_loops_in_two_threads_at_once(named: Named) -> None:
    p = named.provider
    both_connected = threading.Barrier(2, timeout=10)
    errors: list[BaseException] = []

    def worker(tag: str) -> None:
        async def main() -> None:
            s = await p.session_read(SID)
            assert s is not None
            both_connected.wait()  # each loop now holds a connection of its own
            for i in range(20):
                s = await p.session_read(SID)
                assert s is not None
                s[f"{tag}{i}"] = i
                assert await s.flush() is True

        try:
            named.run(main)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    asyncio.run(p.session_init(SID))
    asyncio.run(p.aclose())
    threads = [threading.Thread(target=worker, args=(tag,)) for tag in "xy"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors  # never "attached to a different loop"
    stored = named.fields(SID)
    assert {k for k in stored if k.startswith(b"d:")} == {
        f"d:{t}{i}".encode() for t in "xy" for i in range(20)
    }
    gc.collect()


def test_aclose_in_one_loop_leaves_another_loops_connection_alone(named: Named) -> None:
    p = named.provider
    a_closed, b_connected = threading.Event(), threading.Event()
    seen: dict[str, int] = {}
    errors: list[BaseException] = []

    def loop_a() -> None:
        async def main() -> None:
            await p.session_read(SID)
            assert b_connected.wait(10)
            await p.aclose()  # closes A's connection only

        try:
            asyncio.run(main())
        except BaseException as exc:
            errors.append(exc)
        finally:
            a_closed.set()

    def loop_b() -> None:
        async def main() -> None:
            await p.session_read(SID)
            b_connected.set()
            assert a_closed.wait(10)
            eventually(lambda: named.connections() == 1, "A's connection is closed")
            await p.session_read(SID)  # B goes on with the connection it has
            seen["after"] = named.connections()
            await p.aclose()

        try:
            asyncio.run(main())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=loop_a), threading.Thread(target=loop_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    gc.collect()
    assert seen["after"] == 1, "B's loop opened a second connection: its first was forgotten"
    eventually(lambda: named.connections() == 0, "B's aclose() closed B's connection")


def test_aclose_closes_what_it_opened_and_the_provider_works_again(named: Named) -> None:
    p = named.provider

    async def main() -> None:
        await counted_visit(p)
        assert named.connections() == 1
        await p.aclose()
        eventually(lambda: named.connections() == 0, "aclose() closed the connection")
        assert await counted_visit(p) == 2  # the same loop reconnects on the next call
        async with p:  # also an async context manager
            assert await counted_visit(p) == 3

    asyncio.run(main())
    eventually(lambda: named.connections() == 0, "async with closed the connection")
    assert named.run(lambda: counted_visit(p)) == 4  # and a new loop works
    eventually(lambda: named.connections() == 0, "the last loop's connection is closed")


def test_a_given_client_is_never_closed(server: Any, clock: FakeClock) -> None:
    async def main() -> None:
        client = redis_aio.Redis.from_url(server.url)
        p = AsyncRedisProvider(prefix=f"given-{uuid.uuid4().hex[:8]}:", client=client, clock=clock)
        await p.session_init(SID)
        before = await client.client_id()
        await p.aclose()
        assert await client.client_id() == before  # the same connection, still open
        assert await p.session_read(SID) is not None
        await p.session_destroy(SID)
        await client.aclose()

    asyncio.run(main())


# -- flush --------------------------------------------------------------------


def test_writes_wait_for_flush(named: Named) -> None:
    p = named.provider

    async def main() -> None:
        s = await p.session_init(SID)
        assert not s.dirty
        s["user"] = "ann"
        s.update(a=1, b=2)
        del s["b"]
        assert s.dirty and s["user"] == "ann"  # the session sees its own writes at once
        assert not any(k.startswith(b"d:") for k in named.fields(SID))  # Redis does not, yet
        assert await s.flush() is True
        assert not s.dirty
        assert await stored(p) == {"user": "ann", "a": 1}
        assert await s.flush() is True  # nothing waiting: nothing to send

    named.run(main)


def test_a_flush_is_one_round_trip_and_survives_a_script_flush(named: Named) -> None:
    p = named.provider

    async def main() -> None:
        s = await p.session_init(SID)
        s["user"] = "ann"
        before = named.peek.info("commandstats")
        assert await s.flush() is True
        after = named.peek.info("commandstats")
        # No SCRIPT EXISTS before the pipeline: the writes go in one round trip.
        assert after.get("cmdstat_script|exists") == before.get("cmdstat_script|exists")
        named.peek.script_flush()  # as after a restart: the server forgot the scripts
        s["user"] = "bob"
        assert await s.flush() is True
        assert await stored(p) == {"user": "bob"}

    named.run(main)


def test_flush_after_destroy_is_false_and_recreates_nothing(named: Named) -> None:
    p = named.provider

    async def main() -> None:
        s = await p.session_init(SID)
        s["a"] = 1
        assert await s.flush() is True
        s["b"] = 2
        await p.session_destroy(SID)
        assert await s.flush() is False
        assert named.peek.exists(named.key(SID)) == 0  # no partial hash without expiry
        assert await p.session_read(SID) is None

    named.run(main)


@pytest.mark.parametrize("change", ["delete", "clear"])
def test_flush_after_destroy_is_false_whatever_waits(named: Named, change: str) -> None:
    # flush() promises False when the session is gone, not only when a write waits.
    p = named.provider

    async def main() -> None:
        s = await p.session_init(SID)
        s.update(a=1, b=2)
        assert await s.flush() is True
        await p.session_destroy(SID)
        if change == "delete":
            del s["a"]
        else:
            s.clear()
        assert s.dirty
        assert await s.flush() is False
        assert named.peek.exists(named.key(SID)) == 0

    named.run(main)


def test_a_clear_then_a_set_in_one_request(named: Named) -> None:
    p = named.provider

    async def main() -> None:
        s = await p.session_init(SID)
        s.update(a=1, b=2)
        await s.flush()
        other = await p.session_read(SID)
        assert other is not None
        other["x"] = 9
        await other.flush()
        s["early"] = 0
        s.clear()
        s["c"] = 3
        assert await s.flush() is True
        assert await stored(p) == {"c": 3}
        fields = named.fields(SID)
        assert {b"m:c", b"m:u"} <= set(fields)  # the metadata stays

    named.run(main)


def test_two_requests_of_one_session_lose_nothing(named: Named) -> None:
    p = named.provider

    async def main() -> None:
        s = await p.session_init(SID)
        s.update(old=1, keep=2)
        await s.flush()
        first, second = await p.session_read(SID), await p.session_read(SID)
        assert first is not None and second is not None
        first["a"] = 1
        del first["old"]
        second["b"] = 2
        second["keep"] = 3
        assert list(await asyncio.gather(first.flush(), second.flush())) == [True, True]
        assert await stored(p) == {"keep": 3, "a": 1, "b": 2}

    named.run(main)


# -- faults and secrets --------------------------------------------------------


def test_a_stopped_server_is_provider_unavailable_and_recovery_follows(named: Named, server: Any) -> None:
    p = named.provider

    async def main() -> None:
        assert await counted_visit(p) == 1
        server.stop()
        with pytest.raises(ProviderUnavailableError, match="unavailable"):
            await p.session_read(SID)
        with pytest.raises(ProviderUnavailableError):
            await p.session_init(OTHER)
        with pytest.raises(ProviderUnavailableError):
            await p.session_update(SID)
        with pytest.raises(ProviderUnavailableError):
            await p.session_destroy(SID)
        server.start()  # back, empty (no persistence)
        assert await p.session_read(SID) is None  # the same loop recovers
        assert await counted_visit(p) == 1

    named.run(main)
    assert named.run(lambda: counted_visit(p)) == 2  # and so does a new one


def test_a_flush_to_a_stopped_server_is_unavailable_and_leaks_nothing(named: Named, server: Any) -> None:
    p = named.provider

    async def main() -> None:
        s = await p.session_init(SID)
        s["n"] = 1
        assert await s.flush() is True
        s["n"] = 2
        server.stop()
        with pytest.raises(ProviderUnavailableError, match="unavailable"):
            await s.flush()
        server.start()
        assert await counted_visit(p) == 1

    named.run(main)
    gc.collect()  # a pipeline left holding its connection would warn here
    eventually(lambda: named.connections() == 0, "every connection is closed")


@pytest.mark.parametrize("form", ["userinfo", "query"])
def test_the_password_is_never_shown(server: Any, form: str) -> None:
    port = server.url.split(":")[2].split("/")[0]
    url = (
        f"redis://bob:{PASSWORD}@127.0.0.1:{port}/0"
        if form == "userinfo"
        else f"redis://127.0.0.1:{port}/0?password={PASSWORD}"
    )
    p = AsyncRedisProvider(url, prefix="pw:")
    assert PASSWORD not in repr(p) and PASSWORD not in str(p)

    def check(exc: BaseException) -> None:
        shown = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)) + repr(exc)
        assert PASSWORD not in shown

    async def main() -> None:
        try:
            try:
                # The server has no user bob, and no password: the login fails
                # as unavailable (a bare password is refused or accepted,
                # depending on the redis-py version).
                await p.session_read(SID)
            except ProviderUnavailableError as refused:
                check(refused)
            else:
                assert form == "query"
            server.stop()
            with pytest.raises(ProviderUnavailableError) as down:
                await p.session_read(SID)
            check(down.value)
            server.start()
        finally:
            await p.aclose()

    asyncio.run(main())
    with pytest.raises(ValueError) as bad:
        AsyncRedisProvider(f"redis://bob:{PASSWORD}@127.0.0.1:99999999/0")
    check(bad.value)


def test_session_reprs_hide_the_id(named: Named) -> None:
    async def main() -> None:
        s = await named.provider.session_init(SID)
        assert SID not in repr(s) and SID[:8] in repr(s)

    named.run(main)


# -- the Manager --------------------------------------------------------------


def cookie_value(set_cookie: Any) -> str:
    assert isinstance(set_cookie, str)
    return set_cookie.split(";")[0].split("=", 1)[1]


def test_the_sync_entry_points_name_their_coroutines(named: Named) -> None:
    m = Manager(named.provider, "sid", 100)
    assert m.is_async
    with pytest.raises(TypeError, match="asession_start"):
        m.session_start(None)
    with pytest.raises(TypeError, match="agc"):
        m.gc()
    assert named.run(m.agc) == 0


def test_gc_interval_needs_a_sync_provider(named: Named) -> None:
    with pytest.raises(ValueError, match="gc_interval"):
        Manager(named.provider, "sid", 100, gc_interval=10)


def test_regenerate_called_synchronously_kills_the_old_id_as_the_response_starts(named: Named) -> None:
    m = Manager(named.provider, "sid", 100)

    async def main() -> None:
        s = await m.asession_start(None)
        s["user"] = "ann"
        old = cookie_value(await m.asession_cookie(s))
        holder = await m.asession_start(f"sid={old}")  # a concurrent request on the old id
        assert holder["user"] == "ann"

        login = await m.asession_start(f"sid={old}")
        m.session_regenerate(login)  # sync, from the app: deleting waits for the response
        assert login["user"] == "ann" and login.sid != old
        assert named.peek.exists(named.key(old)) == 1
        new = cookie_value(await m.asession_cookie(login))
        assert new == login.sid != old
        assert named.peek.exists(named.key(old)) == 0  # dead as the response started

        holder["late"] = 1  # what the old request writes afterwards goes nowhere
        assert await m.asession_cookie(holder) is None
        assert named.peek.exists(named.key(old)) == 0
        assert "late" not in await m.asession_start(f"sid={new}")

        after = await m.asession_start(f"sid={old}")  # the old id afterwards: a fresh session
        assert after.new and after.sid not in (old, new) and "user" not in after
        after["x"] = 1
        assert cookie_value(await m.asession_cookie(after)) not in (old, new)

    named.run(main)


def test_asession_regenerate_kills_the_old_id_at_once(named: Named) -> None:
    m = Manager(named.provider, "sid", 100)

    async def main() -> None:
        s = await m.asession_start(None)
        s["user"] = "ann"
        old = cookie_value(await m.asession_cookie(s))
        s = await m.asession_start(f"sid={old}")
        await m.asession_regenerate(s)
        assert named.peek.exists(named.key(old)) == 0
        assert (await m.asession_start(f"sid={old}")).new
        new = cookie_value(await m.asession_cookie(s))
        assert new != old and (await m.asession_start(f"sid={new}"))["user"] == "ann"

    named.run(main)


@pytest.mark.parametrize("how", ["sync", "async"])
def test_destroy_kills_the_id_and_expires_the_cookie(named: Named, how: str) -> None:
    m = Manager(named.provider, "sid", 100)

    async def main() -> None:
        s = await m.asession_start(None)
        s["user"] = "ann"
        old = cookie_value(await m.asession_cookie(s))
        s = await m.asession_start(f"sid={old}")
        if how == "sync":
            m.session_destroy(s)
            assert named.peek.exists(named.key(old)) == 1  # until the response starts
        else:
            await m.asession_destroy(s)
            assert named.peek.exists(named.key(old)) == 0
        expired = await m.asession_cookie(s)
        assert expired is not None and "Max-Age=0" in expired
        assert named.peek.exists(named.key(old)) == 0
        assert (await m.asession_start(f"sid={old}")).new

    named.run(main)


def test_the_manager_closes_the_providers_connections(named: Named) -> None:
    m = Manager(named.provider, "sid", 100)

    async def main() -> None:
        s = await m.asession_start(None)
        s["n"] = 1
        await m.asession_cookie(s)
        assert named.connections() == 1
        await m.aclose()

    asyncio.run(main())
    eventually(lambda: named.connections() == 0, "Manager.aclose() closed the connection")
