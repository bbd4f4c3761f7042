"""Redis provider round trips next to the memory provider (needs a redis-server)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from typing import Any, Callable, Optional

from .runner import Candidate, Group
from .store import cores, make_ids

Run = Callable[[], object]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalRedis:
    """A throwaway redis-server on a free loopback port, without persistence.

    stop() and start() again keep the port, so a client can see it go and come back.
    """

    def __init__(self, executable: Optional[str] = None) -> None:
        found = executable or shutil.which("redis-server")
        if found is None:
            raise RuntimeError("redis-server is not installed")
        self.executable = found
        self.port = free_port()
        self.proc: Optional[subprocess.Popen[bytes]] = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while not self.ping():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)  # waiting for a real process to listen

    def ping(self) -> bool:
        """True when the server answers PING."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(15)
            self.proc = None


def redis_group(url: str, sessions: int, ops: int) -> Group:
    """Read, and read plus one write, per request: memory against Redis."""
    from ..redis import RedisProvider

    ids = make_ids(sessions, seed=9)
    order = [ids[i % sessions] for i in range(ops)]
    label, cls = cores()[0]

    def requests(read: Callable[..., Any], write: bool) -> Run:
        def run() -> None:
            for sid in order:
                s = read(sid, 1800.0)
                if write:
                    s["n"] = 1

        return run

    def memory(write: bool) -> Callable[[], Run]:
        def prep() -> Run:
            p = cls()
            for sid in ids:
                p.session_init(sid)["n"] = 0
            return requests(p.session_read, write)

        return prep

    provider: list[Any] = []

    def redis_store() -> Any:
        if not provider:
            p = RedisProvider(url, prefix="bench:")
            for sid in ids:
                if p.session_read(sid) is None:
                    p.session_init(sid)["n"] = 0
            provider.append(p)
        return provider[0]

    def remote(write: bool) -> Callable[[], Run]:
        return lambda: requests(redis_store().session_read, write)

    def ping() -> Run:
        client = redis_store().client

        def run() -> None:
            for _ in order:
                client.ping()

        return run

    cands = [
        Candidate(f"{label} read", memory(False)),
        Candidate(f"{label} read + write", memory(True)),
        Candidate("RedisProvider read", remote(False)),
        Candidate("RedisProvider read + write", remote(True)),
        Candidate("redis-py PING (one round trip, the floor)", ping),
    ]
    return Group(
        "redis", f"per request: read (+ one write) of {sessions:,} sessions, local Redis", cands, ops
    )


def start_redis(url: Optional[str]) -> tuple[Optional[str], Optional[LocalRedis]]:
    """The Redis URL to use: the given one, or a private server when one can be started."""
    if url:
        return url, None
    try:
        server = LocalRedis()
        server.start()
    except RuntimeError:
        return None, None
    return server.url, server
