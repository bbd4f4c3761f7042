"""AsyncCachedRedisProvider on a real redis-server: two providers stand in for two workers.

Redis holds the truth; each provider keeps copies of the sessions it read
and drops them on the invalidations its tracking connection (client name
memsession-tracking) receives. Whether a read was served from memory is
seen in stats() and, where it matters, in the server's command count;
tracking connections are found in CLIENT LIST, never inside the provider.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Awaitable, Iterator
from typing import Any, Callable, Optional

import pytest

from memsession import Manager, ProviderUnavailableError
from memsession.testing import FakeClock

from .latency_proxy import LatencyProxy
from .redis_server import LocalRedis, eventually

redis_py = pytest.importorskip("redis")
from memsession.redis import (  # noqa: E402
    AsyncCachedRedisProvider,
    AsyncCachedRedisSession,
    CachedRedisProvider,
)

SID = "a" * 42 + "Q"
OTHER = "b" * 42 + "Q"
LIFETIME = 100.0
COOKIE = "sid"
TRACKING = "memsession-tracking"


# -- fixtures -------------------------------------------------------------------


@pytest.fixture
def server(running_redis: Any) -> Any:
    """The shared redis-server, running (tests here stop and start it)."""
    return running_redis


@pytest.fixture
def peek(server: Any) -> Iterator[Any]:
    """A plain sync client to look at the server (keys, CLIENT LIST, INFO)."""
    client = redis_py.Redis.from_url(server.url)
    yield client
    client.close()


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test's own."""
    return f"ac-{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def make(server: Any, clock: FakeClock, prefix: str) -> Iterator[Callable[..., AsyncCachedRedisProvider]]:
    """Builds AsyncCachedRedisProviders (the test's prefix, the fake clock) and closes them after."""
    made: list[AsyncCachedRedisProvider] = []

    def build(url: Optional[str] = None, **options: Any) -> AsyncCachedRedisProvider:
        options.setdefault("prefix", prefix)
        options.setdefault("clock", clock)
        options.setdefault("timeout", 2.0)
        options.setdefault("heartbeat", 30.0)  # no keep-alive PING amid a test's command counts
        provider = AsyncCachedRedisProvider(url or server.url, **options)
        made.append(provider)
        return provider

    yield build
    for provider in made:
        asyncio.run(provider.aclose())


@pytest.fixture
def a(make: Callable[..., AsyncCachedRedisProvider]) -> AsyncCachedRedisProvider:
    """Worker A: the instance that reads."""
    return make()


@pytest.fixture
def b(make: Callable[..., AsyncCachedRedisProvider]) -> AsyncCachedRedisProvider:
    """Worker B: the instance that writes, over the same Redis and prefix as A."""
    return make()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers (a frozen Redis)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield int(listener.getsockname()[1])


@pytest.fixture
def private_redis() -> Iterator[LocalRedis]:
    """A redis-server of this test's own (for commands that would hit every test's keys)."""
    server = LocalRedis()
    server.start()
    yield server
    server.stop()


# -- helpers --------------------------------------------------------------------


def local_hits(p: AsyncCachedRedisProvider) -> int:
    return p.stats()["local_hits"]


def redis_reads(p: AsyncCachedRedisProvider) -> int:
    return p.stats()["redis_reads"]


async def stored(p: AsyncCachedRedisProvider, sid: str = SID, **data: Any) -> None:
    """Create sid on p holding data."""
    s = await p.session_init(sid)
    s.update(data)
    assert await s.flush() is True


async def write(p: AsyncCachedRedisProvider, sid: str = SID, **data: Any) -> None:
    """One request on p: read sid, write data, flush."""
    s = await p.session_read(sid, LIFETIME)
    assert s is not None
    s.update(data)
    assert await s.flush() is True


async def read(p: AsyncCachedRedisProvider, sid: str = SID) -> Optional[dict[str, Any]]:
    """One request on p: the session's data, None when it is not live."""
    s = await p.session_read(sid, LIFETIME)
    return None if s is None else dict(s)


async def cached(p: AsyncCachedRedisProvider, sid: str = SID) -> dict[str, Any]:
    """Read sid on p until a read is served from memory (so p holds a copy now); its data."""
    for _ in range(4):
        reads = redis_reads(p)
        s = await p.session_read(sid, LIFETIME)
        assert s is not None
        if redis_reads(p) == reads:
            return dict(s)
    raise AssertionError("the provider never served the session from memory: the test would prove nothing")


def tracking_ids(peek: Any) -> set[str]:
    """The ids of the server's clients named memsession-tracking."""
    return {c["id"] for c in peek.client_list() if c.get("name") == TRACKING}


async def with_new_tracking(peek: Any, action: Callable[[], Awaitable[Any]]) -> str:
    """Run action (it must open one tracking connection); that connection's client id."""
    before = tracking_ids(peek)
    await action()
    (new,) = tracking_ids(peek) - before
    return new


def commands(peek: Any) -> int:
    return int(peek.info("stats")["total_commands_processed"])


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll check() on the running loop until it holds (10 s at most)."""
    deadline = time.monotonic() + 10
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.01)


async def login(manager: Manager, **data: Any) -> str:
    """A request through manager that stores a new session holding data; its Cookie header."""
    rs = await manager.asession_start(None)
    rs.update(data)
    set_cookie = await manager.asession_cookie(rs)
    assert set_cookie is not None
    return set_cookie.split(";", 1)[0]


async def visit(manager: Manager, cookie: str) -> Any:
    """A request through manager that only reads; its session (the response has started)."""
    rs = await manager.asession_start(cookie)
    await manager.asession_cookie(rs)
    return rs


async def ticking_while(work: Callable[[], Awaitable[Any]]) -> tuple[float, float, Any]:
    """Run work() while a task ticks every 5 ms: its duration, the longest gap between ticks, its outcome."""
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.ensure_future(ticker())
    await asyncio.sleep(0.02)
    start = time.perf_counter()
    try:
        outcome: Any = await work()
    except Exception as exc:  # the outcome is the caller's to judge
        outcome = exc
    took = time.perf_counter() - start
    done.set()
    await tick
    return took, max(gaps), outcome


# -- served from memory ----------------------------------------------------------


def test_the_second_read_is_served_from_memory_without_a_redis_command(
    a: AsyncCachedRedisProvider, peek: Any
) -> None:
    async def main() -> None:
        await stored(a, user="ann")
        assert await read(a) == {"user": "ann"}  # from Redis, kept
        counting = commands(peek)
        counting = commands(peek) - counting  # what counting alone adds
        before, reads, hits = commands(peek), redis_reads(a), local_hits(a)
        second = await a.session_read(SID, LIFETIME)
        assert commands(peek) - before == counting  # not one command from the provider
        assert second is not None and dict(second) == {"user": "ann"}
        assert isinstance(second, AsyncCachedRedisSession)
        assert (redis_reads(a), local_hits(a)) == (reads, hits + 1)

    asyncio.run(main())


def test_a_session_created_through_the_manager_is_served_from_memory_from_its_second_read(
    a: AsyncCachedRedisProvider, b: AsyncCachedRedisProvider
) -> None:
    ma, mb = Manager(a, COOKIE, LIFETIME), Manager(b, COOKIE, LIFETIME)

    async def main() -> None:
        cookie = await login(mb, user="ann")
        assert (await visit(ma, cookie))["user"] == "ann"  # from Redis
        reads = redis_reads(a)
        assert (await visit(ma, cookie))["user"] == "ann"
        assert redis_reads(a) == reads, "the second read went to Redis"

    asyncio.run(main())


REFRESH = 0.05  # refresh_interval for the tests that need Redis's own (wall-clock) TTL to move


# Redis counts a hash's TTL down in real time, which no fake clock reaches:
# these two tests let real time pass between reads. Pushing the TTL out is a
# tracked change (it invalidates every copy), so it must stay rare.
def test_recording_a_use_leaves_the_other_instances_copy_in_memory(
    make: Callable[..., AsyncCachedRedisProvider],
) -> None:
    a, b = make(clock=None, refresh_interval=REFRESH), make(clock=None, refresh_interval=REFRESH)
    a.expect_lifetime(LIFETIME)
    b.expect_lifetime(LIFETIME)

    async def main() -> None:
        await stored(b, n=1)
        await cached(a)
        await cached(b)
        await asyncio.sleep(REFRESH * 1.5)
        await cached(a)  # a use served from memory, recorded in Redis: nothing was written
        reads = redis_reads(b)
        assert await read(b) == {"n": 1}
        assert redis_reads(b) == reads, "B's copy was dropped although nobody wrote"

    asyncio.run(main())


def test_a_session_used_once_per_refresh_interval_stays_in_memory(
    make: Callable[..., AsyncCachedRedisProvider],
) -> None:
    a = make(clock=None, refresh_interval=REFRESH)
    a.expect_lifetime(LIFETIME)

    async def main() -> None:
        await stored(a, n=1)
        await cached(a)
        reads = redis_reads(a)
        for _ in range(4):
            await asyncio.sleep(REFRESH * 1.2)
            assert await read(a) == {"n": 1}
        assert redis_reads(a) == reads, f"{redis_reads(a) - reads} of 4 reads went to Redis"

    asyncio.run(main())


# -- read-your-writes across instances ----------------------------------------------


def test_a_write_flushed_by_one_instance_is_read_by_the_other_at_once(
    a: AsyncCachedRedisProvider, b: AsyncCachedRedisProvider
) -> None:
    async def main() -> None:
        await stored(b, n=0, keep="yes", drop="me")
        for i in range(1, 101):
            assert (await cached(a))["n"] == i - 1  # A holds a copy before each write
            await write(b, n=i)
            assert await read(a) == {"n": i, "keep": "yes", "drop": "me"}

        await cached(a)
        s = await b.session_read(SID, LIFETIME)
        assert s is not None
        del s["drop"]
        assert await s.flush() is True
        assert await read(a) == {"n": 100, "keep": "yes"}

        await cached(a)
        s = await b.session_read(SID, LIFETIME)
        assert s is not None
        s.clear()
        assert await s.flush() is True
        assert await read(a) == {}

    asyncio.run(main())


def test_a_read_racing_the_other_instances_writes_never_returns_an_older_value(
    a: AsyncCachedRedisProvider, b: AsyncCachedRedisProvider
) -> None:
    # A's reads (some from Redis while B's write lands, some from memory) each
    # start after B's write number `floor` completed: none may return less.
    async def main() -> None:
        await stored(b, n=0)
        completed = 0
        finished = False
        served: list[tuple[int, int]] = []

        async def writer() -> None:
            nonlocal completed, finished
            s = await b.session_read(SID, LIFETIME)
            assert s is not None
            for i in range(1, 601):
                s["n"] = i  # one request's session, flushed after each write: one round trip each
                assert await s.flush() is True
                completed = i
                await asyncio.sleep(0)
            finished = True

        async def reader() -> None:
            while not finished:
                floor = completed
                got = await read(a)
                assert got is not None
                served.append((floor, got["n"]))
                await asyncio.sleep(0)  # a read from memory never yields on its own

        await asyncio.gather(writer(), reader())
        assert len(served) > 600
        older = [(floor, n) for floor, n in served if n < floor]
        assert not older, f"{len(older)} reads returned a value older than a completed write: {older[:5]}"

    asyncio.run(main())


def test_with_a_non_ascii_prefix_a_write_by_one_instance_is_read_by_the_other_at_once(
    make: Callable[..., AsyncCachedRedisProvider],
) -> None:
    prefix = f"sessão-{uuid.uuid4().hex[:8]}:"
    a, b = make(prefix=prefix), make(prefix=prefix)

    async def main() -> None:
        await stored(b, n=1)
        await cached(a)
        await write(b, n=2)
        assert await read(a) == {"n": 2}
        await cached(a)
        await b.session_destroy(SID)
        assert await read(a) is None

    asyncio.run(main())


def test_a_flushdb_drops_every_copy(
    private_redis: LocalRedis, make: Callable[..., AsyncCachedRedisProvider]
) -> None:
    a = make(private_redis.url)
    direct = redis_py.Redis.from_url(private_redis.url)

    async def main() -> None:
        await stored(a, SID, n=1)
        await stored(a, OTHER, n=2)
        await cached(a, SID)
        await cached(a, OTHER)
        direct.flushdb()
        assert await read(a, SID) is None
        assert await read(a, OTHER) is None

    try:
        asyncio.run(main())
    finally:
        direct.close()


# -- sessions that end on the other instance ----------------------------------------


@pytest.mark.parametrize("how", ["asession_destroy", "session_destroy", "asession_regenerate"])
def test_a_logout_or_login_through_the_manager_ends_the_old_id_for_the_other_instance_at_once(
    a: AsyncCachedRedisProvider, b: AsyncCachedRedisProvider, how: str
) -> None:
    ma, mb = Manager(a, COOKIE, LIFETIME), Manager(b, COOKIE, LIFETIME)

    async def main() -> None:
        cookie = await login(mb, user="ann")
        sid = cookie.split("=", 1)[1]
        await cached(a, sid)  # A holds the session in memory
        assert (await visit(ma, cookie))["user"] == "ann"

        rs = await mb.asession_start(cookie)
        if how == "asession_destroy":
            await mb.asession_destroy(rs)
        elif how == "session_destroy":
            mb.session_destroy(rs)  # the old id is deleted as the response starts
        else:
            await mb.asession_regenerate(rs)
        set_cookie = await mb.asession_cookie(rs)
        assert set_cookie is not None

        stale = await visit(ma, cookie)
        assert stale.sid != sid and dict(stale) == {}  # a fresh, empty session
        assert await read(a, sid) is None
        if how == "asession_regenerate":
            moved = await visit(ma, set_cookie.split(";", 1)[0])
            assert moved.sid not in (sid, stale.sid) and dict(moved) == {"user": "ann"}

    asyncio.run(main())


@pytest.mark.parametrize("how", ["session_destroy", "session_take", "session_destroy_if_empty"])
def test_a_session_ended_on_one_instance_is_gone_for_the_other_at_once(
    a: AsyncCachedRedisProvider, b: AsyncCachedRedisProvider, how: str
) -> None:
    async def main() -> None:
        await stored(b, n=1)
        if how == "session_destroy_if_empty":
            s = await b.session_read(SID, LIFETIME)
            assert s is not None
            s.clear()
            assert await s.flush() is True
        await cached(a)
        if how == "session_destroy":
            await b.session_destroy(SID)
        elif how == "session_take":
            taken = await b.session_take(SID)
            assert taken is not None and dict(taken) == {"n": 1}
        else:
            assert await b.session_destroy_if_empty(SID) is True
        assert await a.session_read(SID, LIFETIME) is None
        assert await a.session_read(SID) is None

    asyncio.run(main())


# -- each request's own copy ------------------------------------------------------------


@pytest.mark.parametrize("first_from", ["redis", "memory"])
def test_a_write_waiting_in_one_requests_session_is_not_seen_by_another_read_of_the_same_instance(
    a: AsyncCachedRedisProvider, b: AsyncCachedRedisProvider, first_from: str
) -> None:
    async def main() -> None:
        await stored(b, n=1, cart=["apple"])
        if first_from == "memory":
            await cached(a)
        reads = redis_reads(a)
        first = await a.session_read(SID, LIFETIME)  # request 1
        assert first is not None
        assert redis_reads(a) == reads + (first_from == "redis")
        first["n"] = 2  # waits in request 1's session
        first["cart"].append("pear")  # changed in place, never written
        first["new"] = "x"

        reads = redis_reads(a)
        second = await a.session_read(SID, LIFETIME)  # request 2, while request 1 runs
        assert second is not None and second is not first
        assert redis_reads(a) == reads  # served from memory: the copy there was not touched
        assert dict(second) == {"n": 1, "cart": ["apple"]}
        assert await read(b) == {"n": 1, "cart": ["apple"]}

        assert await first.flush() is True
        assert dict(second) == {"n": 1, "cart": ["apple"]}  # request 2 keeps what it read
        flushed = {"n": 2, "cart": ["apple"], "new": "x"}  # a change in place is never written
        assert await read(a) == flushed
        assert await read(b) == flushed

    asyncio.run(main())


def test_concurrent_reads_of_one_session_from_redis_all_succeed(a: AsyncCachedRedisProvider) -> None:
    async def main() -> None:
        await stored(a, n=1)
        await a.session_read(OTHER)  # the tracking connection is up
        got = await asyncio.gather(*(a.session_read(SID, LIFETIME) for _ in range(2)))
        assert [dict(s) for s in got if s is not None] == [{"n": 1}, {"n": 1}]

    asyncio.run(main())


# -- idle expiry -------------------------------------------------------------------------


def test_a_copy_idle_past_max_lifetime_is_never_served(
    a: AsyncCachedRedisProvider, b: AsyncCachedRedisProvider, clock: FakeClock, peek: Any, prefix: str
) -> None:
    async def main() -> None:
        await stored(b, n=1)
        await cached(a)
        clock.advance(LIFETIME)  # idle exactly the lifetime: still live, and still in memory
        reads = redis_reads(a)
        assert await read(a) == {"n": 1}
        assert redis_reads(a) == reads
        clock.advance(LIFETIME + 0.5)
        assert await read(a) is None  # the copy is still in memory; it must not be served
        assert await read(b) is None
        assert peek.exists(prefix + SID) == 0

    asyncio.run(main())


def test_a_use_through_the_other_instance_keeps_the_session_alive_and_no_longer(
    a: AsyncCachedRedisProvider, b: AsyncCachedRedisProvider, clock: FakeClock
) -> None:
    async def main() -> None:
        await stored(b, n=1)
        await cached(a)
        await cached(b)
        clock.advance(60)
        assert await read(b) == {"n": 1}  # served from B's memory, the use recorded in Redis
        clock.advance(60)  # A's own copy is idle 120 s, the session 60 s
        assert await read(a) == {"n": 1}
        await cached(a)
        clock.advance(LIFETIME + 0.5)
        assert await read(a) is None
        assert await read(b) is None

    asyncio.run(main())


# -- the tracking connection ----------------------------------------------------------


def test_with_tracking_killed_reads_go_to_redis_and_stay_correct_until_tracking_is_back(
    make: Callable[..., AsyncCachedRedisProvider], peek: Any
) -> None:
    a = make(heartbeat=0.2)  # retries the tracking connection 0.2 s after its last attempt
    b = make()

    async def main() -> None:
        await stored(b, n=0)
        b_tracking = await with_new_tracking(peek, lambda: cached(b))
        killed = await with_new_tracking(peek, lambda: cached(a))
        assert peek.client_kill_filter(_id=killed) == 1
        eventually(lambda: killed not in tracking_ids(peek), "the server dropped the connection")

        n = 0

        async def coherent_round() -> bool:
            """B writes; A's next read (no invalidation can reach it now) comes from Redis, right."""
            nonlocal n
            n += 1
            await write(b, n=n)
            reads = redis_reads(a)
            assert await read(a) == {"n": n}
            assert redis_reads(a) == reads + 1
            return a.tracking

        await until(coherent_round, "the tracking connection is back")
        assert n >= 1
        (back,) = tracking_ids(peek) - others - {b_tracking}
        assert back != killed

        # Served from memory again, and coherent again.
        assert (await cached(a))["n"] == n
        await write(b, n=n + 1)
        assert await read(a) == {"n": n + 1}

    others = tracking_ids(peek)
    asyncio.run(main())


def test_with_redis_down_calls_raise_provider_unavailable_and_no_copy_is_served(
    make: Callable[..., AsyncCachedRedisProvider], server: Any
) -> None:
    a = make(heartbeat=0.2)  # retries the tracking connection 0.2 s after its last attempt

    async def main() -> None:
        await stored(a, n=1)
        await cached(a)
        request = await a.session_read(SID, LIFETIME)
        assert request is not None
        request["n"] = 2
        server.stop()
        with pytest.raises(ProviderUnavailableError):
            await a.session_read(SID, LIFETIME)  # the copy in memory is not served
        with pytest.raises(ProviderUnavailableError):
            await request.flush()
        with pytest.raises(ProviderUnavailableError):
            await a.session_init(OTHER)
        with pytest.raises(ProviderUnavailableError):
            await a.session_destroy(SID)
        assert not a.tracking

        server.start()  # back, empty
        assert await a.session_read(SID, LIFETIME) is None

        async def tracking_back() -> bool:
            await a.session_read(OTHER)
            return a.tracking

        await until(tracking_back, "the tracking connection is back")
        await stored(a, n=3)
        assert await cached(a) == {"n": 3}

    asyncio.run(main())


def test_reopening_the_tracking_connection_never_blocks_the_event_loop(
    make: Callable[..., AsyncCachedRedisProvider], silent_port: int
) -> None:
    timeout = 1.0
    p = make(f"redis://127.0.0.1:{silent_port}/0", timeout=timeout)
    took, gap, outcome = asyncio.run(ticking_while(lambda: p.session_read(SID, LIFETIME)))
    assert isinstance(outcome, ProviderUnavailableError)
    assert took >= timeout  # the tracking connection waited for an answer, up to its timeout
    assert gap < timeout / 2, f"the loop stood still for {gap:.3f} s"  # blocked: the whole timeout
    assert not p.tracking


def test_control_reopening_tracking_on_the_loop_itself_is_seen_blocking_it(silent_port: int) -> None:
    # The measure above would see a blocked loop: the sync twin reopens inline.
    timeout = 1.0
    sync = CachedRedisProvider(f"redis://127.0.0.1:{silent_port}/0", timeout=timeout)

    async def reopen() -> bool:
        return sync.tracking

    try:
        took, gap, outcome = asyncio.run(ticking_while(reopen))
    finally:
        sync.close()
    assert outcome is False
    assert gap >= timeout * 0.9


def test_aclose_closes_the_tracking_connection(
    make: Callable[..., AsyncCachedRedisProvider], peek: Any
) -> None:
    a = make(heartbeat=0.2)  # may reopen tracking 0.2 s after its last attempt

    async def first_loop() -> str:
        await stored(a, n=1)
        mine = await with_new_tracking(peek, lambda: cached(a))
        await a.aclose()
        return mine

    mine = asyncio.run(first_loop())
    eventually(lambda: mine not in tracking_ids(peek), "aclose() closed the tracking connection")
    assert not a.tracking

    async def second_loop() -> str:  # usable again; its next aclose() closes the new connection
        before = tracking_ids(peek)

        async def tracking_back() -> bool:
            await read(a)
            return a.tracking

        await until(tracking_back, "the tracking connection is reopened")
        (again,) = tracking_ids(peek) - before
        assert await cached(a) == {"n": 1}
        await a.aclose()
        return again

    again = asyncio.run(second_loop())
    eventually(lambda: again not in tracking_ids(peek), "the second aclose() closed it too")


def test_aclose_while_a_read_reopens_tracking_leaves_no_tracking_connection_open(
    make: Callable[..., AsyncCachedRedisProvider], server: Any
) -> None:
    with LatencyProxy(server.port, 0.05) as proxy:  # the reopening takes a few 50 ms hops
        p = make(proxy.url)

        async def main() -> None:
            reading = asyncio.ensure_future(p.session_read(SID, LIFETIME))
            await asyncio.sleep(0)  # the read is reopening the tracking connection now
            await p.aclose()
            assert await reading is None
            assert not p.tracking, "the tracking connection is open after aclose()"

        asyncio.run(main())
