"""An ASGI app on AsyncRedisProvider never blocks its event loop on Redis.

DESIGN, "Event loop": an ASGI app never blocks its loop on network I/O for
sessions. Here one uvicorn worker serves a Starlette app under
SessionMiddleware; Redis sits behind a proxy that delays every chunk by
DELAY each way (tests/latency_proxy.py), so a Redis round trip costs at
least 2 * DELAY and blocking is plain to see:

- 50 concurrent session requests take a few round trips' worth with
  AsyncRedisProvider, and about 50 requests' worth with the blocking
  RedisProvider (the contrast, and a check that the method sees blocking);
- while Redis is stalled by DEBUG SLEEP, a route that does not touch the
  session answers at once; a session request started during the stall
  completes after it (provider timeout longer than the stall) or gets a
  503 (timeout shorter).

Every bar is a ratio to something measured in the same run (one request's
time, the stall), never an absolute wall-clock time, so a loaded machine
does not make it flaky. Run with -s to see the figures.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, Optional

import pytest

from memsession import Manager
from memsession.asgi import SessionMiddleware

from .latency_proxy import LatencyProxy
from .redis_server import LocalRedis
from .system_deps import ensure_program

pytest.importorskip("redis")
uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")

import redis.asyncio as redis_aio  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import PlainTextResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

from memsession.redis import AsyncRedisProvider, RedisProvider  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:uvicorn")

DELAY = 0.020  # added by the proxy to each direction: a round trip costs >= 40 ms more
N = 50  # concurrent session requests
STALL = 2.0  # DEBUG SLEEP, seconds
PATIENT = STALL + 30  # provider timeouts, seconds
HASTY = STALL / 4
COOKIE = "sid"


# -- fixtures: a private redis-server that allows DEBUG, the proxy in front -----


class DebugRedis(LocalRedis):
    """A LocalRedis that accepts DEBUG from loopback (Redis 7 refuses it by default)."""

    def start(self) -> None:
        base = [self.executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        base += ["--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"]
        # Redis < 7 has no such option and allows DEBUG anyway: retry without it.
        for extra in (["--enable-debug-command", "local"], []):
            self.proc = subprocess.Popen(base + extra, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 15
            while not self.ping():
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.02)  # waiting for a real process to listen
            else:
                return
            self.stop()
        raise RuntimeError("redis-server did not start")


@pytest.fixture(scope="module")
def debug_redis() -> Iterator[DebugRedis]:
    server = DebugRedis(ensure_program("redis-server", "redis-server"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def slow_redis(debug_redis: DebugRedis) -> Iterator[LatencyProxy]:
    """The private Redis behind the latency proxy: connect to proxy.url."""
    with LatencyProxy(debug_redis.port, DELAY, lifetime=600) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def prefix() -> str:
    return f"ev-{uuid.uuid4().hex[:8]}:"


# One worker per provider setting, shared by the tests (a worker process costs a second to start).
@pytest.fixture(scope="module")
def async_worker(slow_redis: LatencyProxy, prefix: str) -> Iterator[str]:
    """AsyncRedisProvider behind the slow proxy, its timeout far longer than the stall."""
    with serving("async", slow_redis.url, prefix, PATIENT) as base:
        yield base


@pytest.fixture(scope="module")
def hasty_worker(slow_redis: LatencyProxy, prefix: str) -> Iterator[str]:
    """AsyncRedisProvider behind the slow proxy, its timeout shorter than the stall."""
    with serving("async", slow_redis.url, prefix, HASTY) as base:
        yield base


@pytest.fixture(scope="module")
def sync_worker(slow_redis: LatencyProxy, prefix: str) -> Iterator[str]:
    """RedisProvider (blocking) behind the slow proxy, its timeout far longer than the stall."""
    with serving("sync", slow_redis.url, prefix, PATIENT) as base:
        yield base


# -- the app, the server, the client --------------------------------------------


async def count(request: Request) -> PlainTextResponse:
    """Read and write the session: how many times this session was here."""
    n = request.session.get("n", 0) + 1
    request.session["n"] = n
    return PlainTextResponse(str(n))


async def health(request: Request) -> PlainTextResponse:
    """Never touches the session."""
    return PlainTextResponse("ok")


def make_app(provider: Any) -> Starlette:
    manager = Manager(provider, COOKIE, 600.0)
    return Starlette(
        routes=[Route("/count", count), Route("/health", health)],
        middleware=[Middleware(SessionMiddleware, manager=manager)],
    )


def serve(argv: list[str]) -> int:
    """The worker process: `python -m tests.test_event_loop KIND URL PREFIX TIMEOUT`.

    KIND is async (AsyncRedisProvider) or sync (RedisProvider). Prints the
    port once listening; stops gracefully (lifespan: the provider is closed)
    when stdin closes, on SIGTERM, or after ten minutes whatever happens.
    """
    kind, url, prefix, timeout = argv
    cls = AsyncRedisProvider if kind == "async" else RedisProvider
    provider = cls(url, prefix=prefix, timeout=float(timeout))
    config = uvicorn.Config(
        make_app(provider),
        host="127.0.0.1",
        port=0,
        log_level="error",
        access_log=False,
        lifespan="on",
        ws="none",
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)

    def stop_when_stdin_closes() -> None:
        sys.stdin.read()
        server.should_exit = True

    async def main() -> None:
        serving = asyncio.ensure_future(server.serve())
        while not server.started and not serving.done():
            await asyncio.sleep(0.01)
        if server.started:
            print(server.servers[0].sockets[0].getsockname()[1], flush=True)
            threading.Thread(target=stop_when_stdin_closes, daemon=True).start()
            lifetime = threading.Timer(600, lambda: setattr(server, "should_exit", True))
            lifetime.daemon = True
            lifetime.start()
        await serving

    try:
        asyncio.run(main())
    finally:
        if isinstance(provider, RedisProvider):
            provider.close()
    return 0


@contextmanager
def serving(kind: str, url: str, prefix: str, timeout: float) -> Iterator[str]:
    """One uvicorn worker in its own process on a free loopback port; yield its base URL."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.test_event_loop", kind, url, prefix, repr(timeout)],
            cwd=root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
        )
        assert proc.stdin is not None and proc.stdout is not None
        watchdog = threading.Timer(60, proc.kill)  # a worker that never says its port
        watchdog.start()
        try:
            line = proc.stdout.readline()
        finally:
            watchdog.cancel()
        try:
            if not line.strip().isdigit():
                errors.seek(0)
                raise RuntimeError(f"uvicorn did not start: {errors.read().decode(errors='replace')}")
            yield f"http://127.0.0.1:{int(line)}"
        finally:
            proc.stdin.close()  # graceful: lifespan shutdown closes the provider
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            proc.stdout.close()
        errors.seek(0)
        problems = errors.read().decode(errors="replace")
    assert proc.returncode == 0 and not problems.strip(), f"worker exited {proc.returncode}: {problems}"


_TLS: list[ssl.SSLContext] = []


def client(base: str) -> Any:
    """An httpx client that keeps no cookies: each request sends the one it is given."""
    if not _TLS:  # unused (http://), but each client would otherwise build its own: 30 ms each
        _TLS.append(ssl.create_default_context())
    no_jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    return httpx.AsyncClient(base_url=base, cookies=no_jar, timeout=60.0, verify=_TLS[0])


async def hit(http: Any, cookie: Optional[str], path: str = "/count") -> tuple[int, str, float]:
    """GET path with cookie: status, body, and the time it finished."""
    resp = await http.get(path, headers={"Cookie": cookie} if cookie else {})
    return resp.status_code, resp.text, time.perf_counter()


async def new_session(http: Any) -> str:
    """Create a session (n = 1); its Cookie header value."""
    resp = await http.get("/count")
    assert resp.status_code == 200 and resp.text == "1", (resp.status_code, resp.text)
    cookie = resp.headers["set-cookie"].split(";", 1)[0]
    assert cookie.startswith(COOKIE + "=")
    return str(cookie)


class Browser:
    """One user: its own client (connection) and session; counts its visits."""

    def __init__(self, base: str) -> None:
        self.http = client(base)
        self.cookie = ""
        self.visits = 0

    async def start(self) -> None:
        self.cookie = await new_session(self.http)
        self.visits = 1

    def moved_to(self, base: str) -> Browser:
        """The same user (session) on another server."""
        other = Browser(base)
        other.cookie, other.visits = self.cookie, self.visits
        return other

    async def visit(self) -> float:
        """One session request; checks the count; its duration."""
        start = time.perf_counter()
        status, text, end = await hit(self.http, self.cookie)
        self.visits += 1
        assert (status, text) == (200, str(self.visits))
        return end - start


async def wave(browsers: list[Browser]) -> float:
    """Every browser's session request at once: the wall time until the last answer."""
    start = time.perf_counter()
    await asyncio.gather(*(b.visit() for b in browsers))
    return time.perf_counter() - start


async def closing(browsers: list[Browser]) -> None:
    for b in browsers:
        await b.http.aclose()


# -- 50 session requests at once -------------------------------------------------


def test_concurrent_session_requests_overlap(async_worker: str, sync_worker: str) -> None:
    """AsyncRedisProvider: 50 requests at once cost a few round trips; RedisProvider: ~50 requests'."""
    figures: dict[str, float] = {}
    users: list[Browser] = []

    async def measure_async(base: str) -> None:
        users[:] = [Browser(base) for _ in range(N)]
        try:
            await asyncio.gather(*(b.start() for b in users))  # N sessions first
            assert len({b.cookie for b in users}) == N
            await wave(users)  # warm: N client and N Redis connections open
            figures["t1"] = statistics.median([await users[0].visit() for _ in range(5)])
            figures["t50"] = min([await wave(users) for _ in range(3)])
        finally:
            await closing(users)

    asyncio.run(measure_async(async_worker))

    async def measure_sync(base: str) -> None:
        same_users = [b.moved_to(base) for b in users]
        try:
            figures["t1_sync"] = statistics.median([await same_users[0].visit() for _ in range(3)])
            figures["t50_sync"] = await wave(same_users)
        finally:
            await closing(same_users)

    # The same app, the same sessions, the same slow Redis, the blocking provider.
    asyncio.run(measure_sync(sync_worker))

    t1, t50, t1_sync, t50_sync = figures["t1"], figures["t50"], figures["t1_sync"], figures["t50_sync"]
    print(
        f"\n+{DELAY * 1e3:.0f} ms each way: one request {t1 * 1e3:.0f} ms (sync {t1_sync * 1e3:.0f} ms); "
        f"{N} at once: async {t50 * 1e3:.0f} ms = {t50 / t1:.1f} x t1, "
        f"sync {t50_sync * 1e3:.0f} ms = {t50_sync / t1_sync:.1f} x t1; sync / async {t50_sync / t50:.1f}"
    )
    # The proxy did slow Redis down: a session request is two round trips (read, then write).
    assert t1 >= 4 * DELAY and t1_sync >= 4 * DELAY
    # Overlapping: sequential would be ~N x t1.
    assert t50 < 10 * t1, f"{N} concurrent requests took {t50 / t1:.1f} x one request's time"
    # The contrast: the blocking provider serializes them (each >= two round trips), and the
    # method above would have seen it.
    assert t50_sync >= N * 4 * DELAY
    assert t50_sync > 5 * t50, f"sync {t50_sync:.2f} s is only {t50_sync / t50:.1f} x async {t50:.2f} s"


# -- a stalled Redis ---------------------------------------------------------------


async def seed(base: str) -> str:
    async with client(base) as http:
        return await new_session(http)


async def during_stall(
    debug_redis: DebugRedis, session_calls: list[tuple[str, str]], health_base: str
) -> dict[str, Any]:
    """Stall Redis; meanwhile start each (base, cookie) session request, then probe health.

    Returns the stall's start and end, each session request's (status, body,
    finished) and the health probes' latencies and end times.
    """
    out: dict[str, Any] = {}
    direct = redis_aio.Redis(host="127.0.0.1", port=debug_redis.port, socket_timeout=STALL + 30)
    callers = [(client(base), cookie) for base, cookie in session_calls]
    prober = client(health_base)
    try:
        for http, _ in [*callers, (prober, None)]:  # connections open before the stall
            assert (await http.get("/health")).status_code == 200
        assert await direct.ping()
        out["stall_start"] = time.perf_counter()
        stall = asyncio.ensure_future(direct.execute_command("DEBUG", "SLEEP", repr(STALL)))  # type: ignore[no-untyped-call]
        await asyncio.sleep(0.1)  # DEBUG reaches Redis directly: it is asleep now
        sessions = [asyncio.ensure_future(hit(http, cookie)) for http, cookie in callers]
        await asyncio.sleep(0.1)  # the session requests wait on Redis now
        probes = []
        for _ in range(5):
            start = time.perf_counter()
            status, text, end = await hit(prober, None, "/health")
            assert (status, text) == (200, "ok")
            probes.append((end - start, end))
            await asyncio.sleep(0.02)
        await stall
        out["stall_end"] = time.perf_counter()
        out["sessions"] = await asyncio.gather(*sessions)
        out["probes"] = probes
    finally:
        for http, _ in callers:
            await http.aclose()
        await prober.aclose()
        await direct.aclose()
    return out


def test_health_answers_while_redis_is_stalled(
    debug_redis: DebugRedis, async_worker: str, hasty_worker: str
) -> None:
    """AsyncRedisProvider: the loop keeps serving while a session request waits on a stalled Redis.

    The session request completes after the stall when the provider's timeout
    is longer than the stall, and is refused with 503 when it is shorter.
    """
    cookie = asyncio.run(seed(async_worker))
    calls = [(async_worker, cookie), (hasty_worker, cookie)]
    out = asyncio.run(during_stall(debug_redis, calls, async_worker))

    stall_start, stall_end = out["stall_start"], out["stall_end"]
    stalled = stall_end - stall_start
    latencies = [lat for lat, _ in out["probes"]]
    (status, body, done), (short_status, _, short_done) = out["sessions"]
    print(
        f"\nRedis stalled {stalled * 1e3:.0f} ms: /health answered in "
        f"{min(latencies) * 1e3:.1f}-{max(latencies) * 1e3:.1f} ms "
        f"(median {statistics.median(latencies) * 1e3:.1f} ms, {max(latencies) / STALL:.1%} of the stall); "
        f"session request: {status} {done - stall_end:+.3f} s after the stall ended; "
        f"with a {HASTY:.1f} s timeout: {short_status} {short_done - stall_start:.2f} s into it"
    )
    assert stalled >= STALL * 0.95
    # Health was served during the stall, each probe in well under the stall.
    assert all(end < stall_end for _, end in out["probes"])
    assert max(latencies) < 0.25 * STALL
    # The patient session request waited for Redis, then completed normally.
    assert (status, body) == (200, "2")
    assert done > stall_end
    # The hasty one gave up at its timeout, before Redis woke up: 503, not an error page.
    assert short_status == 503
    assert short_done < stall_end


def test_control_sync_provider_blocks_health_during_a_stall(
    debug_redis: DebugRedis, sync_worker: str
) -> None:
    """The control: with the blocking RedisProvider the same probe waits out the stall."""
    cookie = asyncio.run(seed(sync_worker))
    out = asyncio.run(during_stall(debug_redis, [(sync_worker, cookie)], sync_worker))
    first = out["probes"][0][0]
    print(f"\nsync provider, Redis stalled: /health answered in {first * 1e3:.0f} ms")
    ((status, body, _),) = out["sessions"]
    assert (status, body) == (200, "2")
    # The first probe waited for the stalled session request: the loop was blocked.
    assert first > 0.5 * STALL


if __name__ == "__main__":
    raise SystemExit(serve(sys.argv[1:]))
