"""Many threads at once: exact counts, no mixed-up sessions, no lost writes."""

from __future__ import annotations

import math
import random
import types
from collections.abc import Iterator
from typing import Any

import pytest

from memsession import Manager

from .concurrency import THREADS, run_threads
from .stacks import wsgi_app
from .webserver import Browser, serving


def test_threads_hammering_one_provider_keep_exact_counts(
    core: types.ModuleType, busy_switching: None
) -> None:
    p = core.MemoryProvider()
    per_thread = 3000
    kept: dict[int, set[str]] = {}
    destroyed = [0] * THREADS

    def work(i: int) -> None:
        rng = random.Random(i)
        mine: set[str] = set()
        for k in range(per_thread):
            sid = f"t{i}-{k}"
            s = p.session_init(sid)
            s["owner"] = i
            mine.add(sid)
            probe = rng.choice(sorted(mine)) if k % 50 == 0 else sid
            got = p.session_read(probe, 1e9)
            assert got is not None and got.sid == probe and got["owner"] == i
            assert p.session_update(probe)
            if rng.random() < 0.3:
                victim = rng.choice(sorted(mine)) if k % 50 == 0 else sid
                p.session_destroy(victim)
                mine.discard(victim)
                destroyed[i] += 1
            if k % 200 == 0:
                assert p.session_gc(1e9) == 0
                for other in p.sessions():
                    owner = other.get("owner")  # None: another thread is just creating it
                    assert owner is None or other.sid.startswith(f"t{owner}-")
        kept[i] = mine

    run_threads(work)
    expected = set().union(*kept.values())
    assert len(p) == len(expected)
    assert {s.sid for s in p.sessions()} == expected
    stats = p.stats()
    assert stats["created"] == THREADS * per_thread
    assert stats["destroyed"] == sum(destroyed)
    assert stats["misses"] == 0 and stats["expired"] == 0 and stats["evicted"] == 0
    seconds = [math.floor(s.last_used) for s in p.sessions()]
    assert seconds == sorted(seconds)


def test_threads_at_capacity_never_exceed_it(core: types.ModuleType, busy_switching: None) -> None:
    p = core.MemoryProvider(max_sessions=100)

    def work(i: int) -> None:
        for k in range(2000):
            p.session_init(f"t{i}-{k}")["n"] = k
            assert len(p) <= 100

    run_threads(work)
    stats = p.stats()
    assert len(p) == 100 == stats["live"]
    assert stats["created"] - stats["evicted"] == 100


@pytest.fixture
def threaded_site(provider: Any) -> Iterator[tuple[str, Manager]]:
    """The shared test app behind the WSGI middleware on a threaded server."""
    with Manager(provider, "sid", 1e9) as manager:
        with serving(wsgi_app(manager)) as base:
            yield base, manager


def test_concurrent_clients_each_see_only_their_own_session(threaded_site: tuple[str, Manager]) -> None:
    base, manager = threaded_site
    requests = 30

    def client(i: int) -> None:
        browser = Browser(base)
        for n in range(1, requests + 1):
            _, _, body = browser.request("/inc")
            assert body == f"n={n} user=None", (i, n, body)

    run_threads(client)
    assert len(manager.provider) == THREADS  # type: ignore[arg-type]


def test_concurrent_requests_of_one_session_lose_no_writes(provider: Any) -> None:
    from memsession.wsgi import ENVIRON_KEY, SessionMiddleware

    with Manager(provider, "sid", 1e9) as manager:

        def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            session = environ[ENVIRON_KEY]
            key = environ["PATH_INFO"].strip("/")
            session[key] = session.get(key, 0) + 1
            start_response("200 OK", [("Content-Length", "0")])
            return [b""]

        with serving(SessionMiddleware(app, manager)) as base:
            first = Browser(base)
            first.request("/start")
            cookie = f"sid={first.cookie('sid')}"
            per_thread = 40

            def writer(i: int) -> None:
                browser = Browser(base)
                for _ in range(per_thread):
                    status, _, _ = browser.request(f"/k{i}", headers={"Cookie": cookie})
                    assert status == 200

            run_threads(writer)
        (session,) = provider.sessions()
        assert dict(session) == {"start": 1, **{f"k{i}": per_thread for i in range(THREADS)}}
