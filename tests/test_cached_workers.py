"""CachedRedisProvider across real worker processes: gunicorn -w 4, one Redis, a near cache per worker.

Every request goes out on a fresh connection, so the workers take turns
serving one visitor. Each answer of tests/cached_app.py tells which worker
served it and whether that worker found the session in its own memory, so
the tests can count the reads that only an invalidation pushed by Redis kept
from being stale: a worker that had served the previous value from memory,
after another worker wrote a new one.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, Callable, Optional

import pytest

from .redis_server import LocalRedis, eventually, free_port
from .system_deps import ensure_program
from .webserver import Browser

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 4
COOKIE = "memsession"


class Site:
    """gunicorn with WORKERS sync workers serving tests/cached_app.py."""

    def __init__(self, redis_url: str, log_path: Path) -> None:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.log: IO[bytes] = log_path.open("wb")
        env = {
            **os.environ,
            "MEMSESSION_TEST_REDIS_URL": redis_url,
            "MEMSESSION_TEST_PREFIX": f"cw-{port}:",
        }
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-w",
                str(WORKERS),
                "-k",
                "sync",
                "-b",
                f"127.0.0.1:{port}",
                "--graceful-timeout",
                "5",
                "--log-level",
                "warning",
                "tests.cached_app:app",
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        self.pids: set[int] = set()

    def wait_for_every_worker(self) -> None:
        """Poll until each worker has answered once (so all of them are up), and learn their pids."""
        browser = Browser(self.base)

        def all_answered() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"gunicorn exited: {self.errors()}")
            try:
                status, _, body = browser.request("/read")
            except OSError:
                return False  # not listening yet
            assert status == 200, body
            self.pids.add(json.loads(body)["pid"])
            return len(self.pids) == WORKERS

        eventually(all_answered, f"all {WORKERS} gunicorn workers answered")

    def errors(self) -> str:
        """What gunicorn logged (warnings and worse)."""
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Terminate gunicorn, killing it if it does not exit in time."""
        try:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)
        finally:
            self.log.close()


@pytest.fixture
def serve_workers(tmp_path: Path) -> Iterator[Callable[[str], Site]]:
    """Starts gunicorn -w 4 on the cached app against a Redis URL; stops each one after the test."""
    sites: list[Site] = []

    def start(redis_url: str) -> Site:
        site = Site(redis_url, tmp_path / f"gunicorn-{len(sites)}.log")
        sites.append(site)
        site.wait_for_every_worker()
        return site

    yield start
    for site in sites:
        site.stop()


@pytest.fixture
def persistent_redis(tmp_path: Path) -> Iterator[LocalRedis]:
    """A redis-server of this test's own whose data survives stop() and start() (append-only file)."""
    # LocalRedis runs without persistence; options given after its own win
    # (redis-server keeps the last value of an option), so a wrapper turns
    # the append-only file on, in tmp_path. SIGTERM makes Redis flush it.
    executable = ensure_program("redis-server", "redis-server")
    data = tmp_path / "redis-data"
    data.mkdir()
    wrapper = tmp_path / "redis-server-aof"
    wrapper.write_text(
        f'#!/bin/sh\nexec {shlex.quote(executable)} "$@" --appendonly yes --dir {shlex.quote(str(data))}\n'
    )
    wrapper.chmod(0o755)
    server = LocalRedis(str(wrapper))
    server.start()
    yield server
    server.stop()


class Visitor:
    """A browser with one session that checks every answer against what it wrote.

    possible holds the values a read may return now: the last value written,
    plus any written since by a request that got 503 (it may or may not have
    reached Redis). A read narrows it to what it returned.
    """

    def __init__(self, base: str, key: str) -> None:
        self.browser = Browser(base)
        self.key = key
        self.possible: set[str] = set()
        self.sid: Optional[str] = None
        self.statuses: Counter[int] = Counter()
        self.pids: Counter[int] = Counter()
        self.sources: Counter[str] = Counter()
        self.stats: dict[int, dict[str, int]] = {}  # each worker's provider.stats(), as last seen
        self.held: dict[int, str] = {}  # the value each worker last served from its memory
        self.after_invalidation = 0  # reads by a worker whose copy another worker's write outdated
        self.last_503_sent = 0.0  # when the latest request answered 503 went out (time.monotonic)

    def get(self, path: str) -> Optional[dict[str, Any]]:
        sent = time.monotonic()
        status, _, body = self.browser.request(path)
        self.statuses[status] += 1
        if status == 503:
            assert body.startswith("session store unavailable"), body
            self.last_503_sent = sent
            return None
        assert status == 200, (status, body)
        reply: dict[str, Any] = json.loads(body)
        self.pids[reply["pid"]] += 1
        self.sources[reply["source"]] += 1
        self.stats[reply["pid"]] = reply["stats"]
        cookie = self.browser.cookie(COOKIE)
        if self.sid is None:
            self.sid = cookie
        # A lost session would come back as a new one, under a new id.
        assert cookie == self.sid, f"the session id changed: {self.sid} -> {cookie}"
        return reply

    def write(self, value: str) -> bool:
        """Set key=value through whichever worker takes the request; False on 503."""
        reply = self.get(f"/write?key={self.key}&value={value}")
        if reply is None:
            self.possible.add(value)
            return False
        assert reply["session"] == {self.key: value}, reply
        self.possible = {value}
        self.held.pop(reply["pid"], None)  # the writer dropped its own copy
        return True

    def read(self) -> Optional[dict[str, Any]]:
        """Read the session through whichever worker takes the request; None on 503."""
        reply = self.get("/read")
        if reply is None:
            return None
        pid, session = reply["pid"], reply["session"]
        held = self.held.get(pid)
        if held is not None and held not in self.possible:
            self.after_invalidation += 1
        value = session.get(self.key)
        assert session == {self.key: value} and value in self.possible, (
            f"stale or lost: worker {pid} answered {session} ({reply['source']}),"
            f" expected {self.key} in {sorted(self.possible)}"
        )
        self.possible = {value}
        if reply["source"] == "memory":
            self.held[pid] = value
        else:
            self.held.pop(pid, None)  # read from Redis: whether it kept a copy is its own business
        return reply

    def write_and_read(self, stop: threading.Event, reads: int, rounds: Optional[int] = None) -> int:
        """Write 0, 1, 2, ... each followed by reads; until stop is set or after rounds; the rounds done."""
        done = 0
        while not stop.is_set() and (rounds is None or done < rounds):
            self.write(str(done))
            for _ in range(reads):
                self.read()
            done += 1
        return done

    def follow_new_id(self) -> None:
        """Take the id the last answer set (after a login): what workers held before no longer counts."""
        self.sid = self.browser.cookie(COOKIE)
        self.held.clear()

    def warm_every_worker(self, site: Site) -> None:
        """Read until each worker has served the current value from its own memory."""
        value = next(iter(self.possible))

        def all_hold_it() -> bool:
            self.read()
            return all(self.held.get(pid) == value for pid in site.pids)

        eventually(all_hold_it, "every worker served the session from memory")


def every_worker(site: Site, ask: Callable[[], Optional[dict[str, Any]]]) -> None:
    """Call ask() (one request, which checks its answer) until each worker has answered."""
    seen: set[int] = set()

    def all_seen() -> bool:
        reply = ask()
        assert reply is not None, "503 with Redis up"
        seen.add(reply["pid"])
        return seen >= site.pids

    eventually(all_seen, "every worker answered")


def fixed_cookie(site: Site, sid: str) -> Callable[[], dict[str, Any]]:
    """A reader that always sends Cookie: memsession=sid, whatever the answers set."""

    def ask() -> dict[str, Any]:
        status, _, body = Browser(site.base).request("/read", headers={"Cookie": f"{COOKIE}={sid}"})
        assert status == 200, (status, body)
        reply: dict[str, Any] = json.loads(body)
        return reply

    return ask


def keep_running(traffic: Future[int], condition: Callable[[], bool]) -> Callable[[], bool]:
    """condition, polled while the traffic thread runs; its failure surfaces at once."""

    def check() -> bool:
        if traffic.done():
            traffic.result()
            raise AssertionError("the traffic thread stopped")
        return condition()

    return check


def test_any_worker_reads_the_last_write_of_another_worker_with_two_visitors_at_once(
    running_redis: LocalRedis, serve_workers: Callable[[str], Site]
) -> None:
    site = serve_workers(running_redis.url)
    first, second = Visitor(site.base, "a"), Visitor(site.base, "b")
    stop = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        other = pool.submit(second.write_and_read, stop, 1)
        try:
            rounds = first.write_and_read(stop, reads=3, rounds=500)  # 2,000 requests
        finally:
            stop.set()
        other_rounds = other.result()

    assert rounds == 500 and first.statuses == {200: 2000}
    assert other_rounds >= 100 and second.statuses == {200: 2 * other_rounds}
    for visitor in (first, second):
        assert len(visitor.pids) >= 2, visitor.pids
    # The near cache was used, and the cases only an invalidation gets right came up.
    assert first.sources["memory"] > 0 and first.after_invalidation > 0, (first.sources, first.pids)
    stats = {**first.stats, **second.stats}
    assert any(s["local_hits"] > 0 for s in stats.values()), stats
    assert any(s["invalidations"] > 0 for s in stats.values()), stats
    assert site.errors() == ""


def test_a_redis_restart_loses_no_session_and_no_worker_reads_stale_after_it(
    persistent_redis: LocalRedis, serve_workers: Callable[[str], Site]
) -> None:
    site = serve_workers(persistent_redis.url)
    visitor = Visitor(site.base, "n")
    stop = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        traffic = pool.submit(visitor.write_and_read, stop, 2)
        try:
            eventually(keep_running(traffic, lambda: visitor.statuses[200] >= 200), "200 requests served")
            persistent_redis.stop()
            eventually(keep_running(traffic, lambda: visitor.statuses[503] >= 20), "503s while Redis is down")
            persistent_redis.start()
            back = time.monotonic()
            served = visitor.statuses[200]
            eventually(
                keep_running(traffic, lambda: visitor.statuses[200] >= served + 300),
                "300 requests served after the restart",
            )
        finally:
            stop.set()
        traffic.result()

    assert set(visitor.statuses) == {200, 503}, visitor.statuses
    assert visitor.last_503_sent < back  # no 503 for a request made once Redis answered again
    assert visitor.read() is not None  # the session survived, with a value written before

    # Every worker holds the session in memory again; one writes, all read the new value.
    visitor.warm_every_worker(site)
    outdated = visitor.after_invalidation
    assert visitor.write("after-restart")
    every_worker(site, visitor.read)
    assert visitor.possible == {"after-restart"}
    assert visitor.after_invalidation > outdated
    assert site.errors() == ""


def test_login_and_logout_through_one_worker_end_the_old_id_on_every_worker_at_once(
    running_redis: LocalRedis, serve_workers: Callable[[str], Site]
) -> None:
    site = serve_workers(running_redis.url)
    visitor = Visitor(site.base, "user")
    assert visitor.write("ann")
    old = visitor.browser.cookie(COOKIE)
    assert old is not None
    visitor.warm_every_worker(site)

    status, _, body = visitor.browser.request("/login")  # a new id through one worker
    assert status == 200 and json.loads(body)["session"] == {"user": "ann"}
    new = visitor.browser.cookie(COOKIE)
    assert new is not None and new != old
    old_reader = fixed_cookie(site, old)

    def old_id_gets_nothing() -> dict[str, Any]:
        reply = old_reader()
        assert reply["session"] == {} and reply["source"] == "redis", reply
        return reply

    every_worker(site, old_id_gets_nothing)

    visitor.follow_new_id()
    visitor.warm_every_worker(site)
    status, _, body = visitor.browser.request("/logout")  # through one worker
    assert status == 200 and json.loads(body)["session"] == {}
    assert visitor.browser.cookie(COOKIE) is None
    new_reader = fixed_cookie(site, new)

    def new_id_gets_nothing() -> dict[str, Any]:
        reply = new_reader()
        assert reply["session"] == {} and reply["source"] == "redis", reply
        return reply

    every_worker(site, new_id_gets_nothing)
    assert site.errors() == ""
