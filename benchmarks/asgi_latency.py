"""Requests/s of one uvicorn worker, RedisProvider against AsyncRedisProvider, Redis +0 and +20 ms.

The blocking provider stalls the worker's event loop for every Redis round
trip, so its throughput falls with the network's latency; the async one
keeps serving other requests meanwhile. Each provider gets one uvicorn
worker process; each worker serves the minimal app of the ASGI group (read
and write one session key) at two paths: /direct talks to Redis itself
(+0 ms), /slow goes through tests/latency_proxy.py, which delays every chunk
DELAY each way (a round trip +40 ms). The load is an asyncio client in this
process: CONNECTIONS keep-alive connections, each with its own session,
sending a fixed number of requests between them. (Not wrk: it runs for a
time, not a number of requests, and keeps one Cookie for all connections.)

The candidates differ in how many requests they send (the blocking one at
+20 ms manages about a dozen a second), so the group is timed by its own
round-robin (LatencyGroup.measure) rather than by runner.run_group; the
times are seconds per request, like every other group's.
"""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional
from urllib.parse import urlsplit, urlunsplit

from .runner import Candidate, Group, Progress

__all__ = ["DELAY", "LatencyGroup", "latency_group", "latency_sizes"]

DELAY = 0.020  # added by the proxy to each direction
CONNECTIONS = 64
COOKIE = "sid"
PREFIX = "bench-latency:"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KINDS = {"sync": "RedisProvider (sync)", "async": "AsyncRedisProvider"}
PATHS = {"direct": "Redis +0 ms", "slow": f"Redis +{DELAY * 1e3:.0f} ms each way"}


def name(kind: str, path: str) -> str:
    """A candidate's name."""
    return f"{KINDS[kind]}, {PATHS[path]}"


@dataclass(frozen=True)
class LatencySizes:
    """Rounds, and requests per timed run: `requests` each, `slow` for the blocking provider at +20 ms."""

    rounds: int
    requests: int
    slow: int


def latency_sizes(quick: bool) -> LatencySizes:
    """Full sizes, or a smoke run of a few seconds."""
    return LatencySizes(rounds=2, requests=200, slow=12) if quick else LatencySizes(5, 3000, 50)


@dataclass
class LatencyGroup(Group):
    """A group whose candidates send different numbers of requests (see the module's doc)."""

    requests: dict[str, int] = field(default_factory=dict)
    rounds: int = 3

    def measure(self, progress: Optional[Progress] = None) -> LatencyGroup:
        """Time every candidate `rounds` times, rotating the order each round; seconds per request."""
        self.times = {c.name: [] for c in self.candidates}
        n = len(self.candidates)
        for r in range(self.rounds):
            for i in range(n):
                cand = self.candidates[(i + r) % n]
                if progress is not None:
                    progress.show(f"{self.key}: {cand.name} (round {r + 1}/{self.rounds})")
                run = cand.prepare()
                gc.collect()
                gc.disable()
                try:
                    start = time.perf_counter()
                    run()
                    elapsed = time.perf_counter() - start
                finally:
                    gc.enable()
                self.times[cand.name].append(elapsed / self.requests[cand.name])
        return self

    def rps(self) -> dict[str, float]:
        """Requests per second of each candidate (from its median time)."""
        return {c.name: 1.0 / self.median(c.name) for c in self.candidates if self.times.get(c.name)}


# -- the worker process ------------------------------------------------------------


def worker_app(kind: str, urls: dict[str, str]) -> Callable[..., Any]:
    """The ASGI app of one worker: web's one-key app under memsession at /<path> per Redis URL."""
    from memsession import Manager
    from memsession.asgi import SessionMiddleware
    from memsession.redis import AsyncRedisProvider, RedisProvider

    from .web import _asgi_app

    cls: Any = AsyncRedisProvider if kind == "async" else RedisProvider
    providers = {path: cls(url, prefix=PREFIX, timeout=10.0) for path, url in urls.items()}
    managers = {path: Manager(p, COOKIE, 1800.0) for path, p in providers.items()}
    routes = {f"/{path}": SessionMiddleware(_asgi_app, m) for path, m in managers.items()}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    for path, manager in managers.items():
                        await manager.aclose()  # an async provider's connections
                        close = getattr(providers[path], "close", None)
                        if close is not None:
                            close()  # a sync provider's
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        route = routes.get(scope.get("path", ""))
        if route is None:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await route(scope, receive, send)

    return app


def serve(argv: list[str]) -> int:
    """`python -m benchmarks.asgi_latency KIND DIRECT_URL SLOW_URL`: one uvicorn worker.

    Prints its port once listening; stops (gracefully, closing the
    providers) when stdin closes, on SIGTERM, or after an hour.
    """
    import uvicorn

    kind, direct, slow = argv
    app = worker_app(kind, {"direct": direct, "slow": slow})
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="error", access_log=False, lifespan="on", ws="none"
    )
    server = uvicorn.Server(config)

    def stop() -> None:
        server.should_exit = True

    def stop_when_stdin_closes() -> None:
        sys.stdin.read()
        stop()

    async def main() -> None:
        serving = asyncio.ensure_future(server.serve())
        while not server.started and not serving.done():
            await asyncio.sleep(0.01)
        if server.started:
            print(server.servers[0].sockets[0].getsockname()[1], flush=True)
            threading.Thread(target=stop_when_stdin_closes, daemon=True).start()
            lifetime = threading.Timer(3600, stop)
            lifetime.daemon = True
            lifetime.start()
        await serving

    asyncio.run(main())
    return 0


class _Child:
    """A helper process that prints its port, then runs until its stdin closes."""

    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.errors = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
        )
        self.port = 0

    def wait_port(self) -> int:
        assert self.proc.stdout is not None
        watchdog = threading.Timer(60, self.proc.kill)  # one that never says its port
        watchdog.start()
        try:
            line = self.proc.stdout.readline()
        finally:
            watchdog.cancel()
        if not line.strip().isdigit():
            self.errors.seek(0)
            said = self.errors.read().decode(errors="replace")
            self.errors.seek(0)
            self.errors.truncate()  # said once, in the error
            self.stop()
            raise RuntimeError(f"{' '.join(self.args)} did not start: {said}")
        self.port = int(line)
        return self.port

    def stop(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if not self.errors.closed:
            self.errors.seek(0)
            said = self.errors.read().decode(errors="replace").strip()
            if said:  # a worker's traceback must not pass unseen
                print(f"{' '.join(self.args)}: {said}", file=sys.stderr)
            self.errors.close()


# -- the load ----------------------------------------------------------------------


async def _get(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], request: bytes) -> bytes:
    """Send one request on a keep-alive connection; its head (the body is read and dropped)."""
    reader, writer = conn
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200 "):
        raise RuntimeError(f"the worker answered {head.split(b' ', 2)[1].decode()}")
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return head


def _request(path: str, cookie: Optional[str]) -> bytes:
    extra = f"Cookie: {cookie}\r\n" if cookie else ""
    return f"GET /{path} HTTP/1.1\r\nHost: bench\r\n{extra}\r\n".encode()


async def _open(port: int, n: int) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    return [await asyncio.open_connection("127.0.0.1", port) for _ in range(n)]


def _close(conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]) -> None:
    for _, writer in conns:
        writer.close()


async def _sessions(port: int, n: int) -> list[str]:
    """Create n sessions through the worker: their Cookie header values."""
    conns = await _open(port, n)
    try:
        heads = await asyncio.gather(*(_get(c, _request("direct", None)) for c in conns))
    finally:
        _close(conns)
    cookies = []
    for head in heads:
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"set-cookie:"):
                cookies.append(line[11:].split(b";", 1)[0].strip().decode())
    if len(set(cookies)) != n:
        raise RuntimeError("the worker did not set one cookie per new session")
    return cookies


class _Rig:
    """Redis behind the proxy, and one worker per provider; started on first use."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.children: list[_Child] = []
        self.ports: dict[str, int] = {}
        self.cookies: list[str] = []

    def start(self) -> None:
        if self.ports:
            return
        parts = urlsplit(self.redis_url)
        try:
            proxy = _Child(["-m", "tests.latency_proxy", str(parts.port or 6379), "--delay", repr(DELAY)])
            self.children.append(proxy)
            userinfo = parts.netloc.rpartition("@")[0]
            netloc = f"{userinfo}@" if userinfo else ""
            slow = urlunsplit(parts._replace(netloc=f"{netloc}127.0.0.1:{proxy.wait_port()}"))
            workers = {}
            for kind in KINDS:  # both start at once
                workers[kind] = _Child(["-m", "benchmarks.asgi_latency", kind, self.redis_url, slow])
                self.children.append(workers[kind])
            for kind, child in workers.items():
                self.ports[kind] = child.wait_port()
            self.cookies = asyncio.run(_sessions(self.ports["async"], CONNECTIONS))
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        while self.children:
            self.children.pop().stop()
        self.ports = {}

    def prepare(self, kind: str, path: str, total: int) -> Callable[[], None]:
        """Connections open and warm (untimed); the run sends `total` requests over them."""
        self.start()
        loop = asyncio.new_event_loop()
        requests = [_request(path, c) for c in self.cookies]
        # Warm: every connection once, so the worker's Redis pool is as large as it gets
        # (the blocking worker uses one Redis connection: once is enough).
        warm = 1 if kind == "sync" and path == "slow" else len(requests)

        async def opened() -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
            conns = await _open(self.ports[kind], len(requests))
            await asyncio.gather(*(_get(conns[i], requests[i]) for i in range(warm)))
            return conns

        try:
            conns = loop.run_until_complete(opened())
        except BaseException:
            loop.close()
            raise
        left = [total]

        async def client(i: int) -> None:
            while left[0] > 0:
                left[0] -= 1
                await _get(conns[i], requests[i])

        async def load() -> None:
            await asyncio.gather(*(client(i) for i in range(len(conns))))

        def run() -> None:
            try:
                loop.run_until_complete(load())
            finally:
                _close(conns)
                loop.run_until_complete(asyncio.sleep(0))  # let the transports close
                loop.close()

        return run


def latency_group(redis_url: str, quick: bool) -> LatencyGroup:
    """The group: each provider at +0 and +20 ms (Redis at redis_url; it must be on 127.0.0.1)."""
    size = latency_sizes(quick)
    host = urlsplit(redis_url).hostname
    if host not in ("127.0.0.1", "localhost"):
        raise ValueError("the latency group needs a Redis on 127.0.0.1")
    title = (
        f"one uvicorn worker, GET reading and writing one session key, {CONNECTIONS} connections "
        f"(Redis +0 ms, and +{DELAY * 1e3:.0f} ms each way through a proxy)"
    )
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        return LatencyGroup("asgi-latency", title + " (uvicorn not installed)", [], size.requests)
    rig = _Rig(redis_url)
    cands, requests = [], {}
    for path in PATHS:
        for kind in KINDS:
            total = size.slow if kind == "sync" and path == "slow" else size.requests

            def prepare(kind: str = kind, path: str = path, total: int = total) -> Callable[[], object]:
                return rig.prepare(kind, path, total)

            cands.append(Candidate(name(kind, path), prepare))
            requests[name(kind, path)] = total
    return LatencyGroup(
        "asgi-latency", title, cands, size.requests, cleanup=rig.stop, requests=requests, rounds=size.rounds
    )


if __name__ == "__main__":
    raise SystemExit(serve(sys.argv[1:]))
