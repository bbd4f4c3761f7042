"""AsyncCachedRedisProvider behind `uvicorn --workers 3`: real processes, each with its near cache.

The app is tests/cached_asgi_app.py; uvicorn runs as a subprocess on a free
loopback port. Clients open a fresh connection per request (urllib), so
requests spread over the workers; each answer names the worker's pid and
its near cache's counters.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from http.cookiejar import CookieJar
from typing import Any, Optional

import pytest

from .redis_server import free_port

pytest.importorskip("redis")
pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

WORKERS = 3
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COOKIE = "sid"


class Site:
    """The served app: its base URL, and its server's output once stopped."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.log = ""


@pytest.fixture(scope="module")
def site(redis_server: Any) -> Iterator[Site]:
    """uvicorn --workers 3 serving tests/cached_asgi_app.py on a free loopback port."""
    if redis_server.proc is None:
        redis_server.start()
    port = free_port()
    env = {
        **os.environ,
        "MEMSESSION_TEST_REDIS_URL": redis_server.url,
        "MEMSESSION_TEST_PREFIX": f"uv-{uuid.uuid4().hex[:8]}:",
        "PYTHONWARNINGS": "always::ResourceWarning",  # an unclosed socket shows in the log
    }
    argv = [sys.executable, "-m", "uvicorn", "tests.cached_asgi_app:app", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--workers", str(WORKERS), "--log-level", "warning", "--no-access-log"]
    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
        served = Site(f"http://127.0.0.1:{port}")
        try:
            wait_for_workers(served.base, proc)
            yield served
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            output.seek(0)
            served.log = output.read().decode(errors="replace")
    assert proc.returncode == 0, f"uvicorn exited {proc.returncode}:\n{served.log}"
    # uvicorn's supervisor never closes its listening socket; anything else in the
    # log (a worker's traceback, an unclosed connection to Redis) is a failure.
    listening = f"laddr=('127.0.0.1', {port})>"
    problems = [
        line
        for line in served.log.splitlines()
        if line.strip() and not line.endswith(listening) and "Enable tracemalloc" not in line
    ]
    assert not problems, served.log


def wait_for_workers(base: str, proc: subprocess.Popen[bytes]) -> None:
    """Wait until every worker has answered (each is its own process, started in parallel)."""
    seen: set[int] = set()
    deadline = time.monotonic() + 30
    while len(seen) < WORKERS:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start {WORKERS} workers (saw {len(seen)})")
        try:
            seen.add(Client(base).call("/health")["pid"])
        except OSError:
            time.sleep(0.05)  # waiting for a real process to listen


class Client:
    """A browser: a cookie jar, and a fresh connection for every request."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def call(self, path: str) -> dict[str, Any]:
        with self.opener.open(self.base + path, timeout=30) as resp:
            assert resp.status == 200
            return dict(json.loads(resp.read()))

    def cookie(self) -> Optional[str]:
        """The session cookie's value in the jar, if any."""
        return next((c.value for c in self.jar if c.name == COOKIE), None)


def call_with_cookie(base: str, path: str, sid: str) -> tuple[dict[str, Any], list[str]]:
    """path with Cookie: sid=<sid> on a fresh connection, no jar: the answer and its Set-Cookie headers."""
    req = urllib.request.Request(base + path, headers={"Cookie": f"{COOKIE}={sid}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return dict(json.loads(resp.read())), resp.headers.get_all("Set-Cookie") or []


def test_writes_and_reads_spread_over_workers_never_read_a_stale_value(site: Site) -> None:
    """600 alternating writes and reads of one client, a second client interleaving from a thread."""
    done = threading.Event()
    other_errors: list[BaseException] = []
    other_rounds = 0

    def other_client() -> None:
        nonlocal other_rounds
        browser = Client(site.base)
        try:
            while not done.is_set() or other_rounds < 20:
                other_rounds += 1
                browser.call(f"/put?v={-other_rounds}")
                for _ in range(2):  # the second read may come from a worker's memory
                    got = browser.call("/get")["v"]
                    assert got == -other_rounds, f"round {other_rounds}: read {got}"
        except BaseException as exc:  # reported by the main thread
            other_errors.append(exc)

    thread = threading.Thread(target=other_client)
    thread.start()
    browser = Client(site.base)
    writers: set[int] = set()
    readers: set[int] = set()
    stale: list[tuple[int, Any, int]] = []
    try:
        for i in range(300):
            writers.add(browser.call(f"/put?v={i}")["pid"])
            got = browser.call("/get")
            readers.add(got["pid"])
            if got["v"] != i:
                stale.append((i, got["v"], got["pid"]))
    finally:
        done.set()
        thread.join(60)
    assert not thread.is_alive()
    assert not stale, f"{len(stale)} stale reads (wrote, read, worker): {stale[:5]}"
    assert not other_errors, other_errors
    assert browser.cookie() is not None
    assert len(writers | readers) >= 2, "every request went to one worker: the test proves nothing"
    assert len(readers) >= 2 and other_rounds >= 20
    print(
        f"\nworkers that wrote: {len(writers)}, that read: {len(readers)}; "
        f"second client: {other_rounds} rounds"
    )

    # The workers did keep copies and drop them on invalidations (else nothing could be stale).
    counters: dict[int, dict[str, Any]] = {}
    while len(counters) < len(writers | readers):
        got = Client(site.base).call("/health")
        counters[got["pid"]] = got
    assert sum(c["local_hits"] for c in counters.values()) > 0
    assert all(c["invalidations"] > 0 for c in counters.values())


def test_a_logout_through_one_worker_ends_the_session_on_every_worker(site: Site) -> None:
    browser = Client(site.base)
    browser.call("/put?v=7")
    sid = browser.cookie()
    assert sid is not None

    # Read until every worker has just served the session from its memory.
    last: dict[int, int] = {}  # pid -> its redis_reads at its last answer
    warm: set[int] = set()
    for _ in range(500):
        got = browser.call("/get")
        assert got["v"] == 7
        pid, reads = got["pid"], got["redis_reads"]
        from_memory = last.get(pid) == reads
        last[pid] = reads
        if not from_memory:
            warm.clear()  # a read from Redis may push the TTL out, dropping the other copies
        else:
            warm.add(pid)
        if len(warm) == WORKERS:
            break
    assert len(warm) == WORKERS, f"only workers {sorted(warm)} of {sorted(last)} held the session"

    assert browser.call("/logout")["pid"] in warm
    assert browser.cookie() is None  # the response deleted the cookie

    # The old cookie, on fresh connections, until every worker has answered.
    answered: set[int] = set()
    for _ in range(500):
        got, set_cookies = call_with_cookie(site.base, "/get", sid)
        assert got["v"] is None, f"worker {got['pid']} still serves the session after the logout"
        assert not any(c.startswith(f"{COOKIE}=") and "Max-Age=0" not in c for c in set_cookies)
        answered.add(got["pid"])
        if len(answered) == WORKERS:
            break
    assert len(answered) == WORKERS
