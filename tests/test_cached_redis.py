"""CachedRedisProvider against a real redis-server: near cache, coherence, expiry, faults.

Two providers on one server stand in for two worker processes. Sessions age
by a FakeClock; only what runs on the server's own clock (a hash's TTL) or
on a socket (the tracking connection) is waited for in real time.
"""

from __future__ import annotations

import contextlib
import io
import json
import pickle
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any, Callable, Optional

import pytest

from memsession import Manager, ProviderUnavailableError
from memsession.testing import FakeClock, find_set_cookie, start_session
from memsession.wsgi import ENVIRON_KEY, SessionMiddleware

from .redis_server import eventually

redis_py = pytest.importorskip("redis")
from memsession.redis import CachedRedisProvider, JSONSerializer  # noqa: E402

SID = "c" * 42 + "A"
OTHER = "d" * 42 + "B"
LIFETIME = 10.0

Worker = Callable[..., CachedRedisProvider]


# -- fixtures and helpers ------------------------------------------------------


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test's own on the shared server."""
    return f"tc-{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def peek(running_redis: Any) -> Iterator[Any]:
    """A plain redis-py client: what the server holds, seen from outside memsession."""
    client = redis_py.Redis.from_url(running_redis.url)
    yield client
    client.close()


@pytest.fixture
def worker(running_redis: Any, clock: FakeClock, prefix: str) -> Iterator[Worker]:
    """Opens CachedRedisProviders on the test's prefix (one per stand-in worker), closed after the test."""
    opened: list[CachedRedisProvider] = []

    def open_one(url: Optional[str] = None, **options: Any) -> CachedRedisProvider:
        options = {"prefix": prefix, "clock": clock, "timeout": 2.0, **options}
        provider = CachedRedisProvider(url or running_redis.url, **options)
        opened.append(provider)
        return provider

    yield open_one
    for provider in opened:
        provider.close()


@pytest.fixture
def a(worker: Worker) -> CachedRedisProvider:
    """Worker A, whose near cache the test watches."""
    return worker()


@pytest.fixture
def b(worker: Worker) -> CachedRedisProvider:
    """Worker B, another process using the same sessions."""
    return worker()


def create(provider: Any, sid: str, **data: Any) -> None:
    """Store a session holding data."""
    session = provider.session_init(sid)
    if data:
        session.update(data)


def held(peek: Any, prefix: str, sid: str) -> Optional[dict[str, Any]]:
    """The session's data as Redis holds it; None when there is no hash."""
    raw = peek.hgetall(prefix + sid)
    if not raw:
        return None
    return {k[2:].decode(): json.loads(v) for k, v in raw.items() if k.startswith(b"d:")}


def hits(provider: CachedRedisProvider) -> int:
    """Reads served from memory, whether or not they recorded the use in Redis."""
    stats = provider.stats()
    return stats["local_hits"] + stats.get("recorded_hits", 0)


def reads(provider: CachedRedisProvider) -> int:
    return provider.stats()["redis_reads"]


def cache_copy(provider: CachedRedisProvider, sid: str, lifetime: float = LIFETIME) -> None:
    """Read sid so that provider keeps a copy, and check that the next read is a local hit."""
    assert provider.session_read(sid, lifetime) is not None
    before = (hits(provider), reads(provider))
    assert provider.session_read(sid, lifetime) is not None
    assert (hits(provider), reads(provider)) == (before[0] + 1, before[1]), "not served from memory"


def commands(peek: Any) -> int:
    """Commands the server has run (a script's commands included)."""
    return int(peek.info("stats")["total_commands_processed"])


def command_calls(peek: Any, *names: str) -> int:
    """How often the server ran the named commands (INFO commandstats)."""
    stats = peek.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in names)


def tracking_ids(peek: Any) -> set[str]:
    return {c["id"] for c in peek.client_list() if c.get("name") == "memsession-tracking"}


def tracking_id(peek: Any, provider: CachedRedisProvider) -> str:
    """Open provider's tracking connection and return its client id on the server."""
    before = tracking_ids(peek)
    assert provider.tracking
    (opened,) = tracking_ids(peek) - before
    return opened


# -- local hits ----------------------------------------------------------------


def test_a_second_read_of_an_unchanged_session_is_served_from_memory(worker: Worker, peek: Any) -> None:
    a, b = worker(heartbeat=30.0), worker()  # no keep-alive PING during the test
    create(b, SID, user="ann", n=1)
    assert dict(a.session_read(SID, LIFETIME)) == {"user": "ann", "n": 1}
    assert (hits(a), reads(a), a.stats()["cached"]) == (0, 1, 1)
    before = commands(peek)
    for _ in range(20):
        assert dict(a.session_read(SID, LIFETIME)) == {"user": "ann", "n": 1}
    assert commands(peek) - before == 1  # the INFO above: the reads sent Redis nothing
    assert (hits(a), reads(a)) == (20, 1)


def test_each_session_has_its_own_copy(a: CachedRedisProvider, b: CachedRedisProvider) -> None:
    create(b, SID, owner="ann")
    create(b, OTHER, owner="bob")
    for _ in range(3):
        assert a.session_read(SID, LIFETIME)["owner"] == "ann"
        assert a.session_read(OTHER, LIFETIME)["owner"] == "bob"
    assert (hits(a), reads(a), a.stats()["cached"]) == (4, 2, 2)
    assert a.session_read("e" * 43, LIFETIME) is None
    assert a.stats()["cached"] == 2


# -- read-your-writes across workers ---------------------------------------------

CHANGES: dict[str, tuple[Callable[[Any], None], dict[str, Any], Optional[bool]]] = {
    "set": (lambda s: s.__setitem__("n", 2), {"user": "ann", "n": 2}, None),
    "update": (lambda s: s.update(n=3, cart=["pear"]), {"user": "ann", "n": 3, "cart": ["pear"]}, None),
    "delete": (lambda s: s.__delitem__("user"), {"n": 1}, None),
    "clear": (lambda s: s.clear(), {}, None),
    "permanent": (lambda s: setattr(s, "permanent", True), {"user": "ann", "n": 1}, True),
    "not-permanent": (lambda s: setattr(s, "permanent", False), {"user": "ann", "n": 1}, False),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_change_by_another_worker_is_seen_by_the_very_next_read(
    a: CachedRedisProvider, b: CachedRedisProvider, peek: Any, prefix: str, change: str
) -> None:
    apply, after, permanent = CHANGES[change]
    create(b, SID, user="ann", n=1)
    cache_copy(a, SID)
    apply(b.session_read(SID, LIFETIME))
    seen = a.session_read(SID, LIFETIME)  # at once: B's answer came after Redis queued A's invalidation
    assert dict(seen) == after == held(peek, prefix, SID)
    assert seen.permanent is permanent
    assert a.stats()["invalidations"] >= 1


def test_a_change_made_straight_in_redis_is_seen_at_once(
    a: CachedRedisProvider, b: CachedRedisProvider, peek: Any, prefix: str
) -> None:
    create(b, SID, n=1)
    cache_copy(a, SID)
    peek.hset(prefix + SID, "d:n", "5")
    assert dict(a.session_read(SID, LIFETIME)) == {"n": 5}
    cache_copy(a, SID)
    peek.pexpire(prefix + SID, 1)  # Redis itself expires the hash
    eventually(lambda: not peek.exists(prefix + SID), "Redis expired the hash")
    assert a.session_read(SID, LIFETIME) is None


def test_a_prefix_with_non_ascii_characters_still_gets_invalidations(worker: Worker) -> None:
    prefix = f"tc-é-{uuid.uuid4().hex[:8]}:"
    a, b = worker(prefix=prefix), worker(prefix=prefix)
    create(b, SID, n=1)
    cache_copy(a, SID)
    b.session_read(SID, LIFETIME)["n"] = 2
    assert dict(a.session_read(SID, LIFETIME)) == {"n": 2}


@pytest.mark.parametrize("sid", ["+standard/base64==", "~" + SID, ".dotted"])
def test_an_id_the_tracking_cannot_cover_is_never_stored_nor_served(
    a: CachedRedisProvider, b: CachedRedisProvider, peek: Any, prefix: str, sid: str
) -> None:
    create(b, SID, n=1)
    with pytest.raises(ValueError, match="sid"):
        create(b, sid, n=2)
    with pytest.raises(ValueError, match="sid"):
        b.session_insert(b.session_new(sid))
    if not sid.startswith("~"):  # (a '~' key is SID's use-time key)
        peek.hset(prefix + sid, mapping={"m:c": "1000.0", "m:u": "1000.0", "d:n": "3"})  # put there by hand
    assert a.session_read(sid, LIFETIME) is None  # no invalidation could reach a copy of it
    assert dict(a.session_read(SID, LIFETIME)) == {"n": 1}
    assert a.stats()["cached"] == 1


ENDINGS: dict[str, tuple[dict[str, Any], Callable[[CachedRedisProvider], Any], Any]] = {
    "destroy": ({"user": "ann"}, lambda p: p.session_destroy(SID), None),
    "take": ({"user": "ann"}, lambda p: dict(p.session_take(SID)), {"user": "ann"}),
    "destroy_if_empty": ({}, lambda p: p.session_destroy_if_empty(SID), True),
}


@pytest.mark.parametrize("ending", sorted(ENDINGS))
def test_a_session_ended_by_another_worker_is_gone_for_the_next_read(
    a: CachedRedisProvider, b: CachedRedisProvider, peek: Any, prefix: str, ending: str
) -> None:
    data, end, returned = ENDINGS[ending]
    create(b, SID, **data)
    cache_copy(a, SID)
    assert end(b) == returned
    assert a.session_read(SID, LIFETIME) is None
    assert held(peek, prefix, SID) is None and SID not in a
    assert a.stats()["cached"] == 0


def test_destroy_if_empty_by_another_worker_leaves_a_session_with_data_alone(
    a: CachedRedisProvider, b: CachedRedisProvider
) -> None:
    create(b, SID, n=1)
    cache_copy(a, SID)
    assert b.session_destroy_if_empty(SID) is False
    assert dict(a.session_read(SID, LIFETIME)) == {"n": 1}


def test_logout_through_a_manager_on_one_worker_ends_the_session_on_the_other_at_once(
    a: CachedRedisProvider, b: CachedRedisProvider
) -> None:
    manager_a, manager_b = Manager(a, "sid", 100), Manager(b, "sid", 100)
    started = start_session(manager_b, user="ann")
    for _ in range(3):
        assert manager_a.session_start(started.cookie_header)["user"] == "ann"
    assert hits(a) >= 1  # A serves the session from memory
    request = manager_b.session_start(started.cookie_header)
    manager_b.session_destroy(request)
    cookie = manager_b.session_cookie(request)
    assert cookie is not None and "Max-Age=0" in cookie
    again = manager_a.session_start(started.cookie_header)
    assert again.new and "user" not in again and again.sid != started.cookie_value
    assert a.session_read(started.cookie_value, 100) is None


def test_the_first_read_of_a_session_a_manager_stored_is_kept(
    a: CachedRedisProvider, b: CachedRedisProvider
) -> None:
    manager_a, manager_b = Manager(a, "sid", 100), Manager(b, "sid", 100)
    started = start_session(manager_b, user="ann")
    assert manager_a.session_start(started.cookie_header)["user"] == "ann"
    assert a.stats()["cached"] == 1
    before = (hits(a), reads(a))
    assert manager_a.session_start(started.cookie_header)["user"] == "ann"
    assert (hits(a), reads(a)) == (before[0] + 1, before[1])


def test_regenerate_through_a_manager_on_one_worker_kills_the_old_id_on_the_other_at_once(
    a: CachedRedisProvider, b: CachedRedisProvider
) -> None:
    manager_a, manager_b = Manager(a, "sid", 100), Manager(b, "sid", 100)
    started = start_session(manager_b, cart=["pear"])
    for _ in range(3):
        assert manager_a.session_start(started.cookie_header)["cart"] == ["pear"]
    assert hits(a) >= 1
    request = manager_b.session_start(started.cookie_header)
    manager_b.session_regenerate(request)
    request["user"] = "ann"
    cookie = manager_b.session_cookie(request)
    assert cookie is not None and request.sid != started.cookie_value
    old = manager_a.session_start(started.cookie_header)
    assert old.new and "cart" not in old  # the old id died at once, on A too
    new = manager_a.session_start(f"sid={request.sid}")
    assert dict(new) == {"cart": ["pear"], "user": "ann"}


# -- a worker's own writes -------------------------------------------------------

OWN_CHANGES: dict[str, tuple[Callable[[Any], None], dict[str, Any]]] = {
    "set": (lambda s: s.__setitem__("n", 2), {"user": "ann", "n": 2}),
    "update": (lambda s: s.update(n=3), {"user": "ann", "n": 3}),
    "delete": (lambda s: s.__delitem__("user"), {"n": 1}),
    "clear": (lambda s: s.clear(), {}),
    "permanent": (lambda s: setattr(s, "permanent", True), {"user": "ann", "n": 1}),
}


@pytest.mark.parametrize("change", sorted(OWN_CHANGES))
def test_a_write_drops_the_writers_own_copy_at_once_and_its_next_read_sees_it(
    a: CachedRedisProvider, b: CachedRedisProvider, peek: Any, prefix: str, change: str
) -> None:
    apply, after = OWN_CHANGES[change]
    create(b, SID, user="ann", n=1)
    cache_copy(a, SID)
    apply(a.session_read(SID, LIFETIME))  # a local hit, changed by A's request
    assert a.stats()["cached"] == 0  # dropped by the write itself, before any invalidation is read
    assert dict(a.session_read(SID, LIFETIME)) == after == held(peek, prefix, SID)
    assert dict(b.session_read(SID, LIFETIME)) == after


def test_a_worker_destroying_a_session_never_serves_its_copy_again(
    a: CachedRedisProvider, b: CachedRedisProvider
) -> None:
    create(b, SID, n=1)
    cache_copy(a, SID)
    a.session_destroy(SID)
    assert a.stats()["cached"] == 0
    assert a.session_read(SID, LIFETIME) is None
    assert b.session_read(SID, LIFETIME) is None


# -- expiry ---------------------------------------------------------------------


def test_a_session_idle_past_max_lifetime_is_served_neither_from_memory_nor_from_redis(
    a: CachedRedisProvider, b: CachedRedisProvider, peek: Any, prefix: str, clock: FakeClock
) -> None:
    create(b, SID, n=1)
    cache_copy(a, SID)
    clock.advance(LIFETIME + 0.5)
    assert a.session_read(SID, LIFETIME) is None
    assert held(peek, prefix, SID) is None  # Redis judged it expired and dropped it
    assert b.session_read(SID, LIFETIME) is None
    assert a.stats()["cached"] == 0


def test_a_session_idle_exactly_max_lifetime_is_still_served_from_memory(
    a: CachedRedisProvider, b: CachedRedisProvider, clock: FakeClock
) -> None:
    create(b, SID, n=1)
    cache_copy(a, SID)
    before = hits(a)
    clock.advance(LIFETIME)
    assert dict(a.session_read(SID, LIFETIME)) == {"n": 1}
    assert hits(a) == before + 1


def test_a_copy_idle_in_this_worker_but_used_through_another_is_read_from_redis(
    a: CachedRedisProvider, b: CachedRedisProvider, clock: FakeClock
) -> None:
    create(b, SID, n=1)
    cache_copy(a, SID)
    clock.advance(8)
    assert b.session_read(SID, LIFETIME) is not None  # B's use, recorded in Redis
    clock.advance(4)  # A's copy idles 12 s, the session only 4
    before = reads(a)
    assert dict(a.session_read(SID, LIFETIME)) == {"n": 1}
    assert reads(a) == before + 1


def test_uses_served_from_memory_keep_the_session_alive_for_other_workers(
    a: CachedRedisProvider, b: CachedRedisProvider, clock: FakeClock
) -> None:
    create(b, SID, n=1)
    assert a.session_read(SID, LIFETIME) is not None
    for _ in range(20):  # a minute of use every 3 s, all through A's memory
        clock.advance(3)
        assert dict(a.session_read(SID, LIFETIME)) == {"n": 1}
    assert (hits(a), reads(a)) == (20, 1)
    clock.advance(LIFETIME - 1.0)  # B: 9 s after the last use, 69 s after B's own
    assert dict(b.session_read(SID, LIFETIME)) == {"n": 1}


def test_uses_served_from_memory_reach_redis_at_most_once_per_refresh_interval(
    worker: Worker, peek: Any, clock: FakeClock
) -> None:
    a, b = worker(heartbeat=30.0), worker()  # refresh_interval 1 s
    create(b, SID, n=1)
    assert a.session_read(SID, LIFETIME) is not None
    clock.advance(1.0)
    assert a.session_read(SID, LIFETIME) is not None  # a first recorded use
    before = command_calls(peek, "evalsha", "eval")
    for _ in range(40):  # 10 s of uses, four a second
        clock.advance(0.25)
        assert dict(a.session_read(SID, LIFETIME)) == {"n": 1}
    recorded = command_calls(peek, "evalsha", "eval") - before
    assert 1 <= recorded <= 11
    assert (hits(a), reads(a)) == (41, 1)
    clock.advance(LIFETIME - 1.0)
    assert dict(b.session_read(SID, LIFETIME)) == {"n": 1}


def test_a_session_used_only_through_another_workers_memory_ends_at_most_refresh_interval_early(
    worker: Worker, clock: FakeClock
) -> None:
    refresh = 4.0
    a, b = worker(refresh_interval=refresh), worker(refresh_interval=refresh)
    create(b, SID, n=1)
    create(b, OTHER, n=1)
    for sid in (SID, OTHER):
        assert a.session_read(sid, LIFETIME) is not None  # t=0, from Redis
    for _ in range(3):  # t=3, 6, 9: from A's memory; only the use at 6 is recorded
        clock.advance(3)
        for sid in (SID, OTHER):
            assert a.session_read(sid, LIFETIME) is not None
    assert (hits(a), reads(a)) == (6, 2)
    clock.advance(LIFETIME - refresh)  # t=15: lifetime minus refresh_interval after the last use
    assert dict(b.session_read(SID, LIFETIME)) == {"n": 1}
    clock.advance(refresh + 0.5)  # t=19.5: past the lifetime of every use
    assert b.session_read(OTHER, LIFETIME) is None
    assert a.session_read(OTHER, LIFETIME) is None
    assert dict(a.session_read(SID, LIFETIME)) == {"n": 1}  # B's use at 15 counts for A


def test_absolute_lifetime_ends_a_session_served_from_memory(
    a: CachedRedisProvider, b: CachedRedisProvider, peek: Any, prefix: str, clock: FakeClock
) -> None:
    manager_a = Manager(a, "sid", 100, absolute_lifetime=30)
    manager_b = Manager(b, "sid", 100, absolute_lifetime=30)
    started = start_session(manager_b, user="ann")
    for _ in range(3):  # t=10, 20, 30: well within the idle lifetime
        clock.advance(10)
        assert manager_a.session_start(started.cookie_header)["user"] == "ann"
    assert hits(a) >= 1
    clock.advance(1)
    late = manager_a.session_start(started.cookie_header)
    assert late.new and "user" not in late
    assert held(peek, prefix, started.cookie_value) is None
    assert manager_b.session_start(started.cookie_header).new


# -- Redis TTLs (on the server's own clock) -----------------------------------------


def test_the_hash_outlives_every_ttl_it_had_while_only_served_from_memory(
    worker: Worker, peek: Any, prefix: str, clock: FakeClock
) -> None:
    # Redis counts a TTL down in real time: this test lets real time pass in
    # small steps, and moves the sessions' clock by the same steps.
    refresh, lifetime, step = 0.1, 0.1, 0.05
    a = worker(refresh_interval=refresh, heartbeat=30.0)
    a.session_gc(lifetime)  # as a Manager does
    create(a, SID, n=1)
    key = prefix + SID
    longest = peek.pttl(key) / 1000
    assert 0 < longest < 5
    pushes = command_calls(peek, "pexpire")
    started = time.monotonic()
    while time.monotonic() - started < longest + 0.3:  # past the longest TTL the hash ever had
        time.sleep(step)
        clock.advance(step)
        assert dict(a.session_read(SID, lifetime)) == {"n": 1}
        ttl = peek.pttl(key)
        assert ttl >= lifetime * 1000  # the last use just now: a lifetime at least
        longest = max(longest, ttl / 1000)
        assert longest < 5
    elapsed = time.monotonic() - started
    pushed = command_calls(peek, "pexpire") - pushes
    assert hits(a) > reads(a)  # mostly served from memory
    assert 1 <= pushed <= elapsed / refresh + 1


def test_a_use_recorded_up_to_refresh_interval_late_still_finds_its_hash(
    worker: Worker, peek: Any, prefix: str, clock: FakeClock
) -> None:
    # refresh_interval longer than the second Redis keeps a hash beyond the
    # lifetime; real time passes, as Redis's TTLs count down in it.
    refresh, lifetime, step = 1.2, 0.1, 0.05
    a = worker(refresh_interval=refresh, heartbeat=30.0)
    a.session_gc(lifetime)
    create(a, SID, n=1)
    assert a.session_read(SID, lifetime) is not None
    started = time.monotonic()
    while time.monotonic() - started < refresh - step:  # uses from memory, none recorded yet
        time.sleep(step)
        clock.advance(step)
        assert dict(a.session_read(SID, lifetime)) == {"n": 1}
    time.sleep(step)
    clock.advance(step)  # within the lifetime of the last use
    assert dict(a.session_read(SID, lifetime)) == {"n": 1}
    assert peek.exists(prefix + SID)


def test_a_session_in_use_keeps_a_ttl_covering_its_lifetime(
    worker: Worker, peek: Any, prefix: str, clock: FakeClock
) -> None:
    a, b = worker(), worker()
    Manager(a, "sid", LIFETIME)
    Manager(b, "sid", LIFETIME)
    create(b, SID, n=1)
    for _ in range(10):
        clock.advance(3)
        assert a.session_read(SID, LIFETIME) is not None
        assert peek.pttl(prefix + SID) >= LIFETIME * 1000


def test_reads_spaced_wider_than_refresh_interval_are_still_served_from_memory(
    worker: Worker, clock: FakeClock
) -> None:
    refresh = 0.02
    a = worker(refresh_interval=refresh, heartbeat=30.0)
    a.session_gc(LIFETIME)  # as a Manager does
    create(a, SID, n=1)
    for _ in range(6):
        time.sleep(2 * refresh)  # the hash's TTL runs down on Redis's own clock
        clock.advance(2 * refresh)
        assert dict(a.session_read(SID, LIFETIME)) == {"n": 1}
    assert hits(a) >= 3


# -- the tracking connection breaks -------------------------------------------------


def test_a_killed_tracking_connection_drops_the_near_cache_and_every_read_goes_to_redis(
    worker: Worker, peek: Any
) -> None:
    a, b = worker(heartbeat=60.0), worker()  # A retries the connection only after a minute
    create(b, SID, n=1)
    killed = tracking_id(peek, a)
    cache_copy(a, SID)
    flushes = a.stats()["flushes"]
    assert peek.client_kill_filter(_id=killed) == 1
    b.session_read(SID, LIFETIME)["n"] = 2  # the invalidation has nowhere to go in A
    assert dict(a.session_read(SID, LIFETIME)) == {"n": 2}
    stats = a.stats()
    assert stats["flushes"] > flushes and stats["cached"] == 0
    assert a.tracking is False
    for n in range(3, 6):
        b.session_read(SID, LIFETIME)["n"] = n
        before = (hits(a), reads(a))
        for _ in range(2):
            assert dict(a.session_read(SID, LIFETIME)) == {"n": n}
        assert (hits(a), reads(a)) == (before[0], before[1] + 2)
        assert a.stats()["cached"] == 0


def test_the_tracking_connection_comes_back_and_reads_are_local_again(worker: Worker, peek: Any) -> None:
    a, b = worker(heartbeat=0.05), worker()
    create(b, SID, n=1)
    killed = tracking_id(peek, a)
    cache_copy(a, SID)
    flushes = a.stats()["flushes"]
    assert peek.client_kill_filter(_id=killed) == 1
    eventually(lambda: a.tracking and a.stats()["flushes"] > flushes, "A's tracking connection is back")
    assert killed not in tracking_ids(peek)
    b.session_read(SID, LIFETIME)["n"] = 2
    assert dict(a.session_read(SID, LIFETIME)) == {"n": 2}
    cache_copy(a, SID)  # local hits again
    b.session_read(SID, LIFETIME)["n"] = 3  # invalidated through the new connection
    assert dict(a.session_read(SID, LIFETIME)) == {"n": 3}


class SilencingProxy:
    """A TCP proxy to Redis that can stop passing on what Redis sends to tracking connections.

    A silenced tracking connection stays open but hears nothing, as over a
    cut network; the other connections pass as usual.
    """

    def __init__(self, target_port: int) -> None:
        self._target = ("127.0.0.1", target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self._passing = threading.Event()
        self._passing.set()
        self._closed = False
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._spawn(self._accept)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def silence(self) -> None:
        self._passing.clear()

    def resume(self) -> None:
        self._passing.set()

    def stop(self) -> None:
        self._closed = True
        self._passing.set()
        for t in self._threads[:1]:
            t.join(10)
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for t in self._threads:
            t.join(10)

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            server = socket.create_connection(self._target)
            self._sockets += [client, server]
            tracking = threading.Event()
            self._spawn(self._pump, client, server, tracking, True)
            self._spawn(self._pump, server, client, tracking, False)

    def _pump(self, src: socket.socket, dst: socket.socket, tracking: threading.Event, up: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if up and b"memsession-tracking" in data:
                    tracking.set()
                while not up and tracking.is_set() and not self._passing.wait(0.05):
                    pass
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def proxy(running_redis: Any) -> Iterator[SilencingProxy]:
    """A proxy to the test server that can leave tracking connections unanswered."""
    silencing = SilencingProxy(running_redis.port)
    yield silencing
    silencing.stop()


def test_a_silent_tracking_connection_is_given_up_within_heartbeat_and_timeout(
    worker: Worker, proxy: SilencingProxy
) -> None:
    heartbeat, timeout = 0.1, 0.3
    a, b = worker(url=proxy.url, heartbeat=heartbeat, timeout=timeout), worker()
    create(b, SID, n=1)
    cache_copy(a, SID)
    flushes = a.stats()["flushes"]
    proxy.silence()  # open, but A hears no invalidation and no PONG any more
    b.session_read(SID, LIFETIME)["n"] = 2
    silenced = time.monotonic()
    eventually(lambda: a.session_read(SID, LIFETIME)["n"] == 2, "A gave the silent connection up")
    # A PING goes out within a heartbeat and is given up on after max(heartbeat,
    # timeout); the read that finds that out also tries to reconnect (timeout).
    assert time.monotonic() - silenced < heartbeat + max(heartbeat, timeout) + timeout + 1.0
    assert a.stats()["flushes"] > flushes
    assert a.tracking is False  # reconnecting through the silent network fails too
    assert dict(a.session_read(SID, LIFETIME)) == {"n": 2}
    proxy.resume()
    eventually(lambda: a.tracking, "A's tracking connection is back")
    cache_copy(a, SID)
    invalidations = a.stats()["invalidations"]
    b.session_read(SID, LIFETIME)["n"] = 3
    # through the proxy's extra hop the push may trail B's answer: not waited for by a user
    eventually(lambda: a.session_read(SID, LIFETIME)["n"] == 3, "the new connection invalidated A's copy")
    assert a.stats()["invalidations"] > invalidations


def test_while_redis_is_down_reads_fail_rather_than_serve_memory_and_nothing_stale_follows(
    worker: Worker, running_redis: Any
) -> None:
    a, b = worker(heartbeat=0.05, timeout=1.0), worker(timeout=1.0)
    create(b, SID, n=1)
    cache_copy(a, SID)
    running_redis.stop()
    for _ in range(2):
        with pytest.raises(ProviderUnavailableError, match="unavailable"):
            a.session_read(SID, LIFETIME)
    assert a.tracking is False
    running_redis.start()  # the same port, empty: no persistence
    assert a.session_read(SID, LIFETIME) is None
    create(b, SID, n=2)  # the same id, other data
    assert dict(a.session_read(SID, LIFETIME)) == {"n": 2}
    eventually(lambda: a.tracking, "A's tracking connection is back")
    cache_copy(a, SID)
    b.session_read(SID, LIFETIME)["n"] = 3
    assert dict(a.session_read(SID, LIFETIME)) == {"n": 3}


def test_a_copy_from_before_a_restart_is_never_served_after_it(worker: Worker, running_redis: Any) -> None:
    a, b = worker(timeout=1.0), worker(timeout=1.0)
    create(b, SID, n=1)
    cache_copy(a, SID)
    running_redis.stop()
    running_redis.start()  # A did not read while Redis was away
    create(b, SID, n=2)
    assert dict(a.session_read(SID, LIFETIME)) == {"n": 2}


def test_flushing_the_database_drops_every_copy(
    a: CachedRedisProvider, b: CachedRedisProvider, peek: Any
) -> None:
    create(b, SID, n=1)
    create(b, OTHER, n=1)
    cache_copy(a, SID)
    cache_copy(a, OTHER)
    flushes = a.stats()["flushes"]
    peek.flushdb()  # Redis may answer the flush before it writes the push: not a worker's write
    eventually(lambda: a.session_read(SID, LIFETIME) is None, "A saw the flush")
    assert a.session_read(OTHER, LIFETIME) is None
    assert a.stats()["cached"] == 0 and a.stats()["flushes"] > flushes


# -- a Redis read overtaken by an invalidation ---------------------------------------


class PausingJSON(JSONSerializer):
    """JSON that runs a callback once, in the middle of loading a session read from Redis."""

    def __init__(self) -> None:
        self.during_next_load: Optional[Callable[[], None]] = None

    def loads(self, data: bytes) -> Any:
        action, self.during_next_load = self.during_next_load, None
        if action is not None:
            action()
        return super().loads(data)


@pytest.mark.parametrize("overtaker", ["another worker writes", "this worker writes", "tracking is lost"])
def test_a_redis_read_overtaken_by_an_invalidation_is_served_but_not_kept(
    worker: Worker, peek: Any, prefix: str, overtaker: str
) -> None:
    serializer = PausingJSON()
    a, b = worker(serializer=serializer, heartbeat=60.0), worker()
    create(b, SID, n=1)
    a_tracking = tracking_id(peek, a)
    request = a.session_read(SID, LIFETIME)  # another request of A, holding the session
    request["x"] = 0  # its write drops A's copy: the next read goes to Redis

    def overtake() -> None:  # after Redis answered A's read, before A decides to keep it
        if overtaker == "another worker writes":
            b.session_read(SID, LIFETIME)["n"] = 2
        elif overtaker == "this worker writes":
            request["n"] = 2
        else:
            assert peek.client_kill_filter(_id=a_tracking) == 1
            b.session_read(SID, LIFETIME)["n"] = 2  # an invalidation A never receives

    serializer.during_next_load = overtake
    assert dict(a.session_read(SID, LIFETIME)) == {"n": 1, "x": 0}  # served as Redis answered
    assert serializer.during_next_load is None  # the read did run overtake()
    assert a.stats()["cached"] == 0  # but not kept
    assert dict(a.session_read(SID, LIFETIME)) == {"n": 2, "x": 0} == held(peek, prefix, SID)


def test_two_redis_reads_of_one_session_in_flight_at_once_both_succeed(worker: Worker) -> None:
    serializer = PausingJSON()
    a, b = worker(serializer=serializer), worker()
    create(b, SID, n=1)
    seen: list[dict[str, Any]] = []

    def another_request() -> None:  # reads and keeps the session while this read is in flight
        thread = threading.Thread(target=lambda: seen.append(dict(a.session_read(SID, LIFETIME))))
        thread.start()
        thread.join(30)

    serializer.during_next_load = another_request
    assert dict(a.session_read(SID, LIFETIME)) == {"n": 1}
    assert seen == [{"n": 1}]
    assert a.stats()["cached"] == 1
    cache_copy(a, SID)
    b.session_read(SID, LIFETIME)["n"] = 2
    assert dict(a.session_read(SID, LIFETIME)) == {"n": 2}


# -- values ---------------------------------------------------------------------------


def test_values_changed_in_place_by_one_request_are_not_seen_by_the_next_local_hit(
    a: CachedRedisProvider, b: CachedRedisProvider, peek: Any, prefix: str
) -> None:
    create(b, SID, cart=["apple"], prefs={"theme": "dark"})
    first = a.session_read(SID, LIFETIME)  # from Redis, kept
    first["cart"].append("pear")  # changed in place, never written
    first["prefs"]["theme"] = "light"
    second = a.session_read(SID, LIFETIME)
    assert hits(a) == 1
    assert dict(second) == {"cart": ["apple"], "prefs": {"theme": "dark"}}
    second["cart"].append("plum")
    third = a.session_read(SID, LIFETIME)
    assert hits(a) == 2
    assert third["cart"] == ["apple"]
    third["cart"] = [*third["cart"], "fig"]  # written: stored, and seen from then on
    assert a.session_read(SID, LIFETIME)["cart"] == ["apple", "fig"] == held(peek, prefix, SID)["cart"]


def test_an_unserialisable_value_is_a_type_error_naming_the_key_and_nothing_is_stored(
    a: CachedRedisProvider, b: CachedRedisProvider, peek: Any, prefix: str
) -> None:
    create(b, SID, n=1)
    cache_copy(a, SID)
    session = a.session_read(SID, LIFETIME)
    with pytest.raises(TypeError, match="'when'"):
        session["when"] = object()
    with pytest.raises(TypeError, match="'bad'"):
        session.update(good=1, bad={1, 2})
    assert dict(session) == {"n": 1}
    assert held(peek, prefix, SID) == {"n": 1}
    assert dict(a.session_read(SID, LIFETIME)) == {"n": 1}
    assert dict(b.session_read(SID, LIFETIME)) == {"n": 1}


class Cart:
    """A mutable value of the app's own class, stored through a pickling serializer."""

    def __init__(self, items: list[str]) -> None:
        self.items = items


class Pickling:
    """A custom serializer: pickle (for values JSON cannot hold)."""

    def dumps(self, value: Any) -> bytes:
        return pickle.dumps(value)

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)


def test_an_object_from_a_custom_serializer_changed_in_place_is_not_seen_by_the_next_local_hit(
    worker: Worker,
) -> None:
    a, b = worker(serializer=Pickling()), worker(serializer=Pickling())
    create(b, SID, cart=Cart(["apple"]))
    first = a.session_read(SID, LIFETIME)  # from Redis, kept
    first["cart"].items.append("pear")  # changed in place, never written
    second = a.session_read(SID, LIFETIME)
    assert hits(a) == 1
    assert second["cart"].items == ["apple"]  # as Redis holds it
    assert b.session_read(SID, LIFETIME)["cart"].items == ["apple"]


# -- bounds and arguments ----------------------------------------------------------


def test_max_sessions_bounds_the_local_copies_while_redis_keeps_every_session(
    worker: Worker, peek: Any, prefix: str
) -> None:
    a, b = worker(max_sessions=3), worker()
    sids = [f"s{i:042d}" for i in range(10)]
    for i, sid in enumerate(sids):
        create(b, sid, i=i)
    for _ in range(2):
        for i, sid in enumerate(sids):
            assert dict(a.session_read(sid, LIFETIME)) == {"i": i}
            assert a.stats()["cached"] <= 3
    assert a.stats()["cached"] == 3
    assert all(held(peek, prefix, sid) == {"i": i} for i, sid in enumerate(sids))
    before = hits(a)
    for sid in sids[-3:]:  # the three read last are in memory
        assert a.session_read(sid, LIFETIME) is not None
    assert hits(a) == before + 3


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_sessions": "3"}, TypeError),
        ({"max_sessions": 2.5}, TypeError),
        ({"max_sessions": True}, TypeError),
        ({"max_sessions": 0}, ValueError),
        ({"max_sessions": -1}, ValueError),
        ({"refresh_interval": 0}, ValueError),
        ({"refresh_interval": -1.0}, ValueError),
        ({"refresh_interval": float("nan")}, ValueError),
        ({"refresh_interval": float("inf")}, ValueError),
        ({"refresh_interval": 1e16}, ValueError),  # no Redis TTL could hold it
        ({"refresh_interval": "1"}, TypeError),
        ({"refresh_interval": None}, TypeError),
        ({"heartbeat": 0}, ValueError),
        ({"heartbeat": -0.5}, ValueError),
        ({"heartbeat": float("inf")}, ValueError),
        ({"heartbeat": "1"}, TypeError),
        ({"heartbeat": None}, TypeError),
    ],
)
def test_bad_arguments_are_refused_naming_themselves(kwargs: dict[str, Any], error: type) -> None:
    with pytest.raises(error, match=next(iter(kwargs))):
        CachedRedisProvider("redis://127.0.0.1:6379/0", **kwargs)


# -- threads --------------------------------------------------------------------------


def test_threads_sharing_a_worker_while_another_writes_end_with_what_redis_holds(
    a: CachedRedisProvider, b: CachedRedisProvider, peek: Any, prefix: str
) -> None:
    create(b, SID, n=0)
    errors: list[BaseException] = []
    start = threading.Barrier(5)

    def a_request_loop(i: int) -> None:
        try:
            start.wait()
            for j in range(150):
                session = a.session_read(SID, LIFETIME)
                assert session is not None and session.get("n") is not None
                if j % 3 == 0:
                    session[f"t{i}"] = j
                elif j % 7 == 0 and f"t{i}" in session:
                    del session[f"t{i}"]
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)

    def b_request_loop() -> None:
        try:
            start.wait()
            for j in range(150):
                session = b.session_read(SID, LIFETIME)
                assert session is not None
                session["n"] = j + 1
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=a_request_loop, args=(i,)) for i in range(4)]
    threads.append(threading.Thread(target=b_request_loop))
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, errors[0]
    final = held(peek, prefix, SID)
    assert final is not None
    assert dict(a.session_read(SID, LIFETIME)) == final
    assert dict(a.session_read(SID, LIFETIME)) == final  # and from memory too
    assert dict(b.session_read(SID, LIFETIME)) == final


# -- a Manager through the WSGI middleware ------------------------------------------------


def account_site(manager: Manager) -> Any:
    """One worker's WSGI app: /add puts a pear in the cart, /login, /logout, any other path reads."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session = environ[ENVIRON_KEY]
        path = environ["PATH_INFO"]
        if path == "/add":
            session["cart"] = [*session.get("cart", []), "pear"]
        elif path == "/login":
            manager.session_regenerate(session)
            session["user"] = "ann"
        elif path == "/logout":
            manager.session_destroy(session)
        body = json.dumps({"user": session.get("user"), "cart": session.get("cart", [])}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    return SessionMiddleware(app, manager)


class Visitor:
    """A browser of one: keeps the session cookie between requests to any worker."""

    def __init__(self, cookie: Optional[str] = None) -> None:
        self.cookie = cookie

    def get(self, site: Any, path: str) -> dict[str, Any]:
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(),
        }
        if self.cookie is not None:
            environ["HTTP_COOKIE"] = f"sid={self.cookie}"
        seen: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen["status"], seen["headers"] = status, headers
            return lambda data: None

        body = b"".join(site(environ, start_response))
        assert seen["status"] == "200 OK", body
        found = find_set_cookie([v for k, v in seen["headers"] if k.lower() == "set-cookie"], "sid")
        if found is not None:
            self.cookie = None if found.deletes else found.value
        return json.loads(body)  # type: ignore[no-any-return]


def test_login_regenerate_and_logout_work_across_two_wsgi_workers(
    a: CachedRedisProvider, b: CachedRedisProvider
) -> None:
    worker_a = account_site(Manager(a, "sid", 100))
    worker_b = account_site(Manager(b, "sid", 100))
    anonymous, nobody = {"user": None, "cart": ["pear"]}, {"user": None, "cart": []}
    visitor = Visitor()
    assert visitor.get(worker_a, "/add") == anonymous
    before_login = visitor.cookie
    assert before_login is not None
    assert visitor.get(worker_b, "/") == anonymous
    for _ in range(3):
        assert visitor.get(worker_a, "/") == anonymous
    assert visitor.get(worker_b, "/login") == {"user": "ann", "cart": ["pear"]}
    logged_in = visitor.cookie
    assert logged_in is not None and logged_in != before_login
    assert Visitor(before_login).get(worker_a, "/") == nobody  # the id before login died, A's copy too
    served_locally = hits(a)
    for _ in range(3):
        assert visitor.get(worker_a, "/") == {"user": "ann", "cart": ["pear"]}
    assert hits(a) > served_locally
    assert visitor.get(worker_b, "/logout") == nobody
    assert visitor.cookie is None
    assert Visitor(logged_in).get(worker_a, "/") == nobody  # logged out on A at once


# -- findings ---------------------------------------------------------------------------


def test_copying_a_shared_session_while_another_request_deletes_a_key_never_fails(
    a: CachedRedisProvider, b: CachedRedisProvider, busy_switching: None
) -> None:
    create(b, SID, **{f"k{i}": i for i in range(20)})
    cache_copy(a, SID)
    manager = Manager(a, "memsession", LIFETIME)
    cookie = f"memsession={SID}"
    # Two requests of one worker: their sessions share the stored object.
    reading, writing = manager.session_start(cookie), manager.session_start(cookie)
    assert reading._record is writing._record
    failures: list[KeyError] = []
    done = threading.Event()

    def copy_again_and_again() -> None:
        while not done.is_set() and not failures:
            try:
                reading.copy()
                reading.items()
            except KeyError as exc:
                failures.append(exc)

    thread = threading.Thread(target=copy_again_and_again)
    thread.start()
    try:
        for i in range(2000):
            if failures:
                break
            writing["x"] = i
            del writing["x"]
    finally:
        done.set()
        thread.join(30)
    assert not failures, failures[0]
