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


class LocalRedis:
    """A throwaway redis-server on a free loopback port, without persistence."""

    def __init__(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)


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
    except RuntimeError:
        return None, None
    return server.url, server
