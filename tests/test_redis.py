"""Redis provider specifics: values, atomicity, TTLs, faults, and real worker processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memsession import Manager, ProviderUnavailableError
from memsession.testing import FakeClock

from .redis_server import LocalRedis, RedisServer, free_port
from .stacks import STACKS
from .webserver import Browser, serving, serving_asgi

redis_py = pytest.importorskip("redis")
from memsession.redis import RedisProvider  # noqa: E402

SID = "r" * 42 + "E"


def test_values_are_json_and_keys_str(redis_provider: Any) -> None:
    s = redis_provider.session_init(SID)
    s["ok"] = {"a": [1, 2.5, None, True, "é"]}
    with pytest.raises(TypeError, match="'when'.*cannot be stored"):
        s["when"] = object()
    with pytest.raises(TypeError, match="keys must be str"):
        s[1] = "x"
    with pytest.raises(TypeError, match="cannot be stored"):
        s.update(a=1, b={1, 2})
    assert dict(redis_provider.session_read(SID)) == {"ok": {"a": [1, 2.5, None, True, "é"]}}


def test_a_custom_serializer_is_used(redis_server: Any, clock: FakeClock) -> None:
    class Upper:
        def dumps(self, value: Any) -> bytes:
            return str(value).upper().encode()

        def loads(self, data: bytes) -> Any:
            return data.decode()

    with RedisProvider(redis_server.url, prefix="ser:", serializer=Upper(), clock=clock) as p:
        p.session_init(SID)["k"] = "quiet"
        assert p.session_read(SID)["k"] == "QUIET"
        p.session_destroy(SID)


def test_each_session_is_one_hash_with_a_ttl(redis_provider: Any) -> None:
    s = redis_provider.session_init(SID)
    s["user"] = "ann"
    client, key = redis_provider.client, f"{redis_provider._prefix}{SID}"
    assert client.type(key) == b"hash"
    assert client.hget(key, "d:user") == b'"ann"'
    assert 0 < client.pttl(key) <= 86_400_000
    redis_provider.session_read(SID, 60)
    assert 60_000 < client.pttl(key) <= 61_000  # idle lifetime plus a second


def test_creation_is_atomic_under_a_race(redis_provider: Any) -> None:
    wins: list[int] = []
    losses: list[int] = []
    start = threading.Barrier(8)

    def create(i: int) -> None:
        start.wait()
        try:
            redis_provider.session_init(SID)["winner"] = i
            wins.append(i)
        except ValueError:
            losses.append(i)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(wins) == 1 and len(losses) == 7
    assert redis_provider.session_read(SID)["winner"] == wins[0]


def test_writes_never_resurrect_a_destroyed_session(redis_provider: Any) -> None:
    s = redis_provider.session_init(SID)
    redis_provider.session_destroy(SID)
    s["late"] = 1  # another request still holds the session
    assert SID not in redis_provider
    assert redis_provider.client.exists(f"{redis_provider._prefix}{SID}") == 0


def test_clear_removes_keys_other_requests_added(redis_provider: Any) -> None:
    a = redis_provider.session_init(SID)
    b = redis_provider.session_read(SID)
    b["added_elsewhere"] = 1
    a.clear()
    assert dict(redis_provider.session_read(SID)) == {}


def test_gc_returns_zero_because_redis_expires_keys_itself(redis_provider: Any, clock: FakeClock) -> None:
    redis_provider.session_init(SID)
    clock.advance(100)
    assert redis_provider.session_gc(10) == 0
    assert redis_provider.session_read(SID, 10) is None  # still never served


def test_the_password_never_shows_in_errors(redis_server: Any) -> None:
    with RedisProvider(f"redis://:hunter2@127.0.0.1:{free_port()}/0", timeout=0.5) as p:
        with pytest.raises(ProviderUnavailableError) as info:
            p.session_read(SID)
        assert "hunter2" not in str(info.value) and "hunter2" not in repr(p)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"url": 5}, TypeError),
        ({"prefix": None}, TypeError),
        ({"ttl": 0}, ValueError),
        ({"timeout": "1"}, TypeError),
        ({"clock": 3}, TypeError),
        ({"serializer": object()}, TypeError),
    ],
)
def test_bad_arguments_name_themselves(kwargs: dict[str, Any], error: type) -> None:
    with pytest.raises(error, match=next(iter(kwargs))):
        RedisProvider(**kwargs)


# --- faults: the server stops and comes back ---------------------------------------


_opened: list[RedisProvider] = []


def request_closing(provider: RedisProvider) -> RedisProvider:
    """Have flaky_redis close provider's connections when the test ends."""
    _opened.append(provider)
    return provider


@pytest.fixture
def flaky_redis() -> Iterator[LocalRedis]:
    """A redis-server of this test's own, which the test may stop and restart."""
    server = RedisServer()
    server.start()
    yield server
    while _opened:
        _opened.pop().close()
    server.stop()


def test_a_stopped_server_is_a_clear_error_and_recovery_needs_no_restart(flaky_redis: LocalRedis) -> None:
    p = RedisProvider(flaky_redis.url, timeout=1.0)
    request_closing(p)
    p.session_init(SID)["user"] = "ann"
    held = p.session_read(SID)
    flaky_redis.stop()
    for call in (
        lambda: p.session_read(SID),
        lambda: p.session_init("x" * 43),
        lambda: p.session_destroy(SID),
    ):
        with pytest.raises(ProviderUnavailableError, match="unavailable"):
            call()
    with pytest.raises(ProviderUnavailableError):
        held["cart"] = [1]
    assert "cart" not in held  # no half-done write
    flaky_redis.start()
    assert p.session_read(SID) is None  # no persistence: the data went with the server
    p.session_init(SID)["user"] = "bob"
    assert p.session_read(SID)["user"] == "bob"


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_middlewares_answer_503_while_redis_is_down(flaky_redis: LocalRedis, stack: str) -> None:
    kind, build = STACKS[stack]
    serve = serving if kind == "wsgi" else serving_asgi
    manager = Manager(request_closing(RedisProvider(flaky_redis.url, timeout=1.0)), "sid", 100)
    with serve(build(manager)) as base:
        browser = Browser(base)
        assert browser.request("/inc")[2] == "n=1 user=None"
        flaky_redis.stop()
        status, headers, body = browser.request("/inc")
        assert status == 503 and "unavailable" in body
        assert headers.get_all("Set-Cookie") is None
        status, _, _ = Browser(base).request("/inc")  # a new visitor: fails at commit
        assert status == 503
        flaky_redis.start()
        assert browser.request("/inc")[2] == "n=1 user=None"  # the old cookie's data was lost
        assert browser.request("/inc")[2] == "n=2 user=None"


def test_a_lazy_wsgi_app_also_gets_a_clean_503(flaky_redis: LocalRedis) -> None:
    from memsession.wsgi import ENVIRON_KEY, SessionMiddleware

    def lazy_app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        environ[ENVIRON_KEY]["n"] = 1  # a new session: stored when the response starts
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
        yield b"all is well\n\n"

    manager = Manager(request_closing(RedisProvider(flaky_redis.url, timeout=1.0)), "sid", 100)
    with serving(SessionMiddleware(lazy_app, manager)) as base:
        assert Browser(base).request("/")[0] == 200
        flaky_redis.stop()
        status, headers, body = Browser(base).request("/")
        assert status == 503 and body.startswith("session store unavailable")
        assert headers["Retry-After"] == "1" and headers.get_all("Set-Cookie") is None


# --- real worker processes ---------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def gunicorn_demo(env: dict[str, str]) -> Any:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            "4",
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "memsession.demo:create_app()",
        ],
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return proc, f"http://127.0.0.1:{port}"


def count_on(page: str) -> int:
    match = re.search(r'<dd id="count">(\d+)</dd>', page)
    assert match, page[:200]
    return int(match.group(1))


def test_four_gunicorn_workers_share_sessions_through_redis(redis_server: Any) -> None:
    pytest.importorskip("gunicorn")
    proc, base = gunicorn_demo({"MEMSESSION_REDIS_URL": redis_server.url})
    try:
        browser = Browser(base)
        for _ in range(300):  # wait for the workers to listen
            try:
                if browser.request("/")[0] == 200:
                    break
            except OSError:
                threading.Event().wait(0.05)
        counts = [count_on(browser.request("/count", data=b"")[2]) for _ in range(40)]
        assert counts == list(range(1, 41))
    finally:
        proc.terminate()
        proc.wait(30)
        if proc.stderr is not None:
            proc.stderr.close()
