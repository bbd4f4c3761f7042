"""Redis provider round trips next to the memory provider (needs a redis-server)."""

from __future__ import annotations

from typing import Any, Callable, Optional

from tests.redis_server import LocalRedis

from .runner import Candidate, Group
from .store import cores, make_ids

Run = Callable[[], object]


def redis_group(url: str, sessions: int, ops: int) -> Group:
    """Read, and read plus one write, per request: memory against Redis."""
    from memsession.redis import RedisProvider

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

    def close() -> None:
        """Close the Redis connections the candidates opened."""
        while provider:
            provider.pop().close()

    title = f"per request: read (+ one write) of {sessions:,} sessions, local Redis"
    return Group("redis", title, cands, ops, cleanup=close)


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
