"""Redis provider round trips next to the memory provider and the near cache (needs a redis-server)."""

from __future__ import annotations

from typing import Any, Callable, Optional

from tests.redis_server import LocalRedis

from .runner import Candidate, Group
from .store import cores, make_ids

Run = Callable[[], object]

READS_PER_WRITE = 10  # the read-mostly mix: every 11th request also writes
NEAR_READ = "CachedRedisProvider read (near cache)"
MIX = f"{READS_PER_WRITE}:1 read/write mix"
REDIS_MIX = f"RedisProvider {MIX}"
NEAR_MIX = f"CachedRedisProvider {MIX}"


def mix_users(ops: int) -> int:
    """Sessions the mix cycles over: one cycle of reads and a write each per run.

    Coprime with READS_PER_WRITE + 1, so that request i (every 11th one
    writing) going to session i % users gives each session its own 10:1 cycle.
    """
    users = max(1, ops // (READS_PER_WRITE + 1))
    while users > 1 and users % (READS_PER_WRITE + 1) == 0:
        users -= 1
    return users


class NearCheck:
    """Checks, outside the timed runs, what a near cache's last timed run did (via stats()).

    Every read must be a local hit or a Redis read, and at most `misses` of
    them Redis reads; expect() checks the run before, cleanup the last one.
    """

    def __init__(self, reads: int, misses: int) -> None:
        self.reads = reads
        self.misses = misses
        self.due: Optional[tuple[Any, dict[str, int]]] = None

    def expect(self, provider: Any) -> None:
        """The next timed run reads through provider: check the last one, note the counters."""
        self.check()
        self.due = (provider, provider.stats())

    def check(self) -> None:
        """Raise RuntimeError when the last timed run went to Redis more than allowed."""
        if self.due is None:
            return
        provider, before = self.due
        self.due = None
        after = provider.stats()
        hits = after["local_hits"] - before["local_hits"]
        fetched = after["redis_reads"] - before["redis_reads"]
        if hits + fetched != self.reads or fetched > self.misses:
            raise RuntimeError(
                f"the near cache served {hits:,} of {self.reads:,} reads locally and read {fetched:,} "
                f"from Redis (at most {self.misses:,} expected)"
            )


def redis_group(url: str, sessions: int, ops: int) -> Group:
    """Read, read plus one write, and the 10:1 mix per request: memory, Redis, the near cache."""
    from memsession.redis import CachedRedisProvider, RedisProvider

    ids = make_ids(sessions, seed=9)
    order = [ids[i % sessions] for i in range(ops)]
    users = ids[: mix_users(ops)]
    mix = [(users[i % len(users)], i % (READS_PER_WRITE + 1) == READS_PER_WRITE) for i in range(ops)]
    writes = sum(write for _, write in mix)
    label, cls = cores()[0]

    def requests(read: Callable[..., Any], write: bool) -> Run:
        def run() -> None:
            for sid in order:
                s = read(sid, 1800.0)
                if write:
                    s["n"] = 1

        return run

    def mixed(read: Callable[..., Any]) -> Run:
        def run() -> None:
            for i, (sid, write) in enumerate(mix):
                s = read(sid, 1800.0)
                if write:
                    s["n"] = i

        return run

    def memory(write: bool, mixing: bool = False) -> Callable[[], Run]:
        def prep() -> Run:
            p = cls()
            for sid in ids:
                p.session_init(sid)["n"] = 0
            return mixed(p.session_read) if mixing else requests(p.session_read, write)

        return prep

    opened: list[Any] = []
    provider: list[Any] = []

    def stored(p: Any) -> Any:
        """p, holding every session (created where missing)."""
        opened.append(p)
        for sid in ids:
            if p.session_read(sid) is None:
                p.session_init(sid)["n"] = 0
        return p

    def redis_store() -> Any:
        if not provider:
            provider.append(stored(RedisProvider(url, prefix="bench:")))
        return provider[0]

    def remote(write: bool, mixing: bool = False) -> Callable[[], Run]:
        if mixing:
            return lambda: mixed(redis_store().session_read)
        return lambda: requests(redis_store().session_read, write)

    def near(prefix: str, check: NearCheck, mixing: bool) -> Callable[[], Run]:
        """A fresh near cache per run, warmed with every session it will read (untimed).

        Fresh: the warming reads come from Redis, so each copy's use is
        recorded, and the timed run records none: refresh_interval is an hour
        here, since the runner's untimed gc.collect() between the warming and
        the run can take longer than the default second on a large heap.
        What the run reads from Redis, only the mix's writes cause.
        """
        mine: list[Any] = []

        def prep() -> Run:
            check.check()
            if mine:
                old = mine.pop()
                opened.remove(old)
                old.close()
                p = CachedRedisProvider(url, prefix=prefix, refresh_interval=3600.0)
                opened.append(p)
            else:
                p = stored(CachedRedisProvider(url, prefix=prefix, refresh_interval=3600.0))
            mine.append(p)
            for sid in users if mixing else ids:
                p.session_read(sid, 1800.0)
            check.expect(p)
            return mixed(p.session_read) if mixing else requests(p.session_read, False)

        return prep

    def ping() -> Run:
        client = redis_store().client

        def run() -> None:
            for _ in order:
                client.ping()

        return run

    near_reads = NearCheck(ops, 0)
    near_mix = NearCheck(ops, writes)
    cands = [
        Candidate(f"{label} read", memory(False)),
        Candidate(f"{label} read + write", memory(True)),
        Candidate(f"{label} {MIX}", memory(False, mixing=True)),
        Candidate("RedisProvider read", remote(False)),
        Candidate("RedisProvider read + write", remote(True)),
        Candidate(REDIS_MIX, remote(False, mixing=True)),
        Candidate(NEAR_READ, near("bench-near:", near_reads, False)),
        Candidate(NEAR_MIX, near("bench-near-mix:", near_mix, True)),
        Candidate("redis-py PING (one round trip, the floor)", ping),
    ]

    def close() -> None:
        """Check the near caches' last runs; close the Redis connections the candidates opened."""
        try:
            near_reads.check()
            near_mix.check()
        finally:
            provider.clear()
            while opened:
                opened.pop().close()

    title = (
        f"per request, local Redis: read (+ one write) of {sessions:,} sessions, "
        f"{READS_PER_WRITE}:1 mix of {len(users)}"
    )
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
