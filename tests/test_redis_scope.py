"""Request scope on a real Redis: emptying is atomic, secrets stay out of sight, the types hold."""

from __future__ import annotations

import json
import threading
import traceback
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any, Optional

import pytest

import memsession
from memsession import Manager, ProviderUnavailableError
from memsession.testing import FakeClock, find_set_cookie, parse_set_cookie

from .redis_server import free_port
from .webserver import serving

pytest.importorskip("redis")
from memsession.redis import RedisProvider  # noqa: E402

COOKIE = "sid"
WAIT = 10.0
SID = "y" * 42 + "E"  # the shape of an id memsession issues


@pytest.fixture
def prefix() -> str:
    return f"scope-{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def provider(redis_server: Any, clock: FakeClock, prefix: str) -> Iterator[RedisProvider]:
    """A RedisProvider on the shared redis-server, under a prefix this test knows."""
    if redis_server.proc is None:
        redis_server.start()
    with RedisProvider(redis_server.url, prefix=prefix, clock=clock, timeout=2.0) as p:
        yield p


@pytest.fixture
def manager(provider: RedisProvider) -> Iterator[Manager]:
    with Manager(provider, COOKIE, 100) as m:
        yield m


def store(manager: Manager, **data: Any) -> str:
    """A stored session holding data; return the Cookie header naming it."""
    session = manager.session_start(None)
    session.update(data)
    header = manager.session_cookie(session)
    assert header is not None
    return f"{COOKIE}={parse_set_cookie(header).value}"


def exists(provider: RedisProvider, prefix: str, cookie: str) -> bool:
    return bool(provider.client.exists(prefix + cookie.split("=", 1)[1]))


# --- "emptied means destroyed" only when the store holds no data ------------------------


@pytest.mark.parametrize("b_writes", ["before A pops", "after A pops"])
def test_emptying_destroys_only_when_no_other_request_wrote_meanwhile(
    manager: Manager, provider: RedisProvider, prefix: str, b_writes: str
) -> None:
    cookie = store(manager, flash="welcome")
    a = manager.session_start(cookie)
    b = manager.session_start(cookie)
    if b_writes == "before A pops":
        b["user"] = "ann"
    assert a.pop("flash") == "welcome" and len(a) == 0  # the only key A saw
    if b_writes == "after A pops":
        b["user"] = "ann"
    assert manager.session_cookie(b) is None

    assert manager.session_cookie(a) is None  # no logout: B's write is in the store
    assert exists(provider, prefix, cookie)
    after = manager.session_start(cookie)
    assert not after.new and dict(after) == {"user": "ann"}  # still logged in, flash gone

    # Now nothing else is written: emptying the session does end it.
    last = manager.session_start(cookie)
    assert last.pop("user") == "ann"
    header = manager.session_cookie(last)
    assert header is not None and parse_set_cookie(header).deletes
    assert not exists(provider, prefix, cookie)
    assert manager.session_start(cookie).new


def test_a_request_emptying_the_session_over_wsgi_keeps_a_concurrent_login(
    manager: Manager, provider: RedisProvider, prefix: str
) -> None:
    from memsession.wsgi import ENVIRON_KEY, SessionMiddleware

    arrived, go = threading.Event(), threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session = environ[ENVIRON_KEY]
        if environ["PATH_INFO"] == "/read-flash":
            session.pop("flash", None)
            arrived.set()
            assert go.wait(WAIT)  # request B writes while A is parked here
        elif environ["PATH_INFO"] == "/remember":
            session["user"] = "ann"
        body = json.dumps(dict(session.items())).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def fetch(base: str, path: str, out: Optional[list[Any]] = None) -> tuple[int, Any, str]:
        req = urllib.request.Request(base + path, headers={"Cookie": cookie})
        try:
            with urllib.request.urlopen(req, timeout=WAIT) as resp:
                result = resp.status, resp.headers, resp.read().decode()
        except urllib.error.HTTPError as err:
            result = err.code, err.headers, err.read().decode()
        if out is not None:
            out.append(result)
        return result

    cookie = store(manager, flash="welcome")
    with serving(SessionMiddleware(app, manager)) as base:
        out: list[Any] = []
        a = threading.Thread(target=fetch, args=(base, "/read-flash", out), daemon=True)
        a.start()
        try:
            assert arrived.wait(WAIT)
            status, headers, body = fetch(base, "/remember")
            assert status == 200 and json.loads(body) == {"user": "ann"}
        finally:
            go.set()
            a.join(WAIT)
        status, headers, body = out[0]
        assert status == 200 and json.loads(body) == {}
        assert find_set_cookie(headers.get_all("Set-Cookie") or [], COOKIE) is None  # not logged out
        assert exists(provider, prefix, cookie)
        assert json.loads(fetch(base, "/peek")[2]) == {"user": "ann"}


# --- passwords in Redis URLs ------------------------------------------------------------

SECRET = "s3cret-pass"


@pytest.mark.parametrize(
    "url",
    [
        "redis://:{secret}@127.0.0.1:{port}/0",
        "redis://default:{secret}@127.0.0.1:{port}/0",
        "redis://127.0.0.1:{port}/0?password={secret}",
    ],
)
def test_a_url_password_never_shows_in_reprs_errors_or_tracebacks(url: str) -> None:
    port = free_port()  # nothing listens there
    provider = RedisProvider(url.format(secret=SECRET, port=port), timeout=0.5)
    with provider, Manager(provider, COOKIE, 100) as manager:
        assert SECRET not in repr(provider) and SECRET not in repr(manager)
        assert str(port) in repr(provider)  # it does say where
        failures = []
        for attempt in (
            lambda: provider.session_read(SID),
            lambda: provider.session_init(SID),
            lambda: manager.session_start(f"{COOKIE}={SID}"),
        ):
            with pytest.raises(ProviderUnavailableError) as info:
                attempt()
            failures.append(info.value)
        for exc in failures:
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            assert "unavailable" in str(exc) and str(port) in str(exc)
            for shown in (str(exc), repr(exc), text, *map(str, exc.args)):
                assert SECRET not in shown


@pytest.mark.parametrize("special", ["/", "#", "?"])
def test_a_password_with_an_unescaped_special_character_never_shows_either(special: str) -> None:
    # Percent-encoding is the user's job, but a forgotten one must not put
    # the password (or the part before the special character) in a message.
    url = f"redis://:s3cret{special}pass@127.0.0.1:{free_port()}/0"
    try:
        provider = RedisProvider(url, timeout=0.5)
    except (TypeError, ValueError) as exc:  # refusing the URL is fine, echoing it is not
        shown = [str(exc), repr(exc), "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))]
    else:
        with provider, pytest.raises(ProviderUnavailableError) as info:
            provider.session_read(SID)
        shown = [
            repr(provider),
            str(info.value),
            "".join(traceback.format_exception(type(info.value), info.value, info.value.__traceback__)),
        ]
    for text in shown:
        assert "s3cret" not in text


# --- the Session type ---------------------------------------------------------------------


def test_redis_sessions_are_memsession_sessions(provider: RedisProvider, manager: Manager) -> None:
    created = provider.session_init(SID)
    created["user"] = "ann"
    read = provider.session_read(SID)
    assert read is not None
    request = manager.session_start(f"{COOKIE}={SID}")
    for session in (created, read, provider.session_new("z" * 42 + "E"), request):
        assert isinstance(session, memsession.Session)
    assert isinstance(request, memsession.RequestSession) and request["user"] == "ann"
    assert read.session_id() == SID and read.get("user") == "ann"
