"""One test per defect an outside review found, each failing before its fix.

Memory-provider tests run on both cores (the `core`-parametrized fixtures);
Redis tests use the private redis-server of the `redis_server` fixture; the
HTTP tests go through a real threaded wsgiref server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
import uuid
from collections import Counter, OrderedDict, defaultdict, deque
from collections.abc import Iterator
from typing import Any, Optional

import pytest

from memsession import Manager
from memsession.cookies import new_session_id
from memsession.errors import ProviderUnavailableError
from memsession.testing import FakeClock, find_set_cookie, parse_set_cookie, start_session
from memsession.wsgi import ENVIRON_KEY, SessionMiddleware

from .webserver import serving

COOKIE = "sid"  # the cookie name of the `manager` fixture's Manager


# -- helpers -------------------------------------------------------------------


def http_get(base: str, path: str, cookie: Optional[str] = None) -> tuple[int, Any, str]:
    """GET base+path with an optional Cookie header; (status, headers, body)."""
    headers = {"Cookie": cookie} if cookie is not None else {}
    req = urllib.request.Request(base + path, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read().decode()


def stored_data(manager: Manager, sid: str) -> Optional[dict[str, Any]]:
    """The data the store holds for sid, as a later request of that cookie would get it; None when dead."""
    session = manager.session_start(f"{manager.cookie_name}={sid}")
    if session.sid != sid:
        return None
    return dict(session.items())


@pytest.fixture
def any_manager(any_provider: Any) -> Iterator[Manager]:
    """A Manager over each provider in turn: both memory cores, then Redis."""
    with Manager(any_provider, COOKIE, 100) as m:
        yield m


def seeded(manager: Manager, **data: Any) -> str:
    """Store a session holding data; return its id."""
    return start_session(manager, data).cookie_value


# -- 1. logout sticks against a concurrent regenerate ------------------------------


def test_regenerate_after_a_concurrent_logout_does_not_revive_the_data(any_manager: Manager) -> None:
    m = any_manager
    sid = seeded(m, user="alice")
    a = m.session_start(f"{COOKIE}={sid}")  # request A: logs out
    b = m.session_start(f"{COOKIE}={sid}")  # request B: started before the logout, then logs in again
    assert a.sid == b.sid == sid

    m.session_destroy(a)
    expired = m.session_cookie(a)
    assert expired is not None and parse_set_cookie(expired).deletes

    m.session_regenerate(b)
    assert b.sid != sid
    assert "user" not in b and b.get("user") is None
    # Nothing written after regenerating: nothing is stored, no live cookie.
    cookie = m.session_cookie(b)
    assert cookie is None or parse_set_cookie(cookie).deletes
    assert stored_data(m, b.sid) is None
    assert stored_data(m, sid) is None


def test_regenerate_after_a_concurrent_logout_keeps_only_what_it_writes(any_manager: Manager) -> None:
    m = any_manager
    sid = seeded(m, user="alice", cart=[1, 2])
    a = m.session_start(f"{COOKIE}={sid}")
    b = m.session_start(f"{COOKIE}={sid}")
    m.session_destroy(a)
    m.session_cookie(a)

    m.session_regenerate(b)
    b["theme"] = "dark"
    cookie = m.session_cookie(b)
    assert cookie is not None and parse_set_cookie(cookie).value == b.sid
    assert stored_data(m, b.sid) == {"theme": "dark"}
    assert stored_data(m, sid) is None


def test_regenerate_carries_a_key_a_concurrent_request_wrote_just_before(any_manager: Manager) -> None:
    m = any_manager
    sid = seeded(m, user="alice")
    a = m.session_start(f"{COOKIE}={sid}")  # another tab, same session
    b = m.session_start(f"{COOKIE}={sid}")  # the request that regenerates
    a["cart"] = [1, 2, 3]  # written after B read the session, before B regenerates
    m.session_cookie(a)

    m.session_regenerate(b)
    assert b.sid != sid
    assert b.get("user") == "alice"
    assert b.get("cart") == [1, 2, 3]
    cookie = m.session_cookie(b)
    assert cookie is not None and parse_set_cookie(cookie).value == b.sid
    assert stored_data(m, b.sid) == {"user": "alice", "cart": [1, 2, 3]}
    assert stored_data(m, sid) is None
    # The request still on the old id is never sent the new one.
    late = m.session_cookie(a)
    assert late is None or b.sid not in late


# -- 2. regenerate copies every container it may share -----------------------------


def _nested_values() -> dict[str, Any]:
    return {
        "queue": deque([1, 2], maxlen=10),
        "ordered": OrderedDict(a=[1]),
        "groups": defaultdict(list, {"k": [1]}),
        "counts": Counter(a=1),
        "raw": bytearray(b"ab"),
        "tuple": ([1], "x"),
        "deep": {"inner": [deque([1]), {"c": Counter(b=1)}, (bytearray(b"z"),)]},
    }


def test_regenerate_copies_collections_nested_anywhere_in_both_directions(manager: Manager) -> None:
    sid = seeded(manager, **_nested_values())
    old = manager.session_start(f"{COOKIE}={sid}")  # keeps the old id
    new = manager.session_start(f"{COOKIE}={sid}")  # logs in: regenerates
    manager.session_regenerate(new)
    assert manager.session_cookie(new) is not None

    # Types survive the copy, defaultdict with its factory.
    assert type(new["queue"]) is deque and new["queue"].maxlen == 10
    assert type(new["ordered"]) is OrderedDict
    assert type(new["groups"]) is defaultdict and new["groups"].default_factory is list
    assert type(new["counts"]) is Counter
    assert type(new["raw"]) is bytearray
    assert type(new["tuple"]) is tuple

    # Nothing mutable is shared between the two records.
    assert new["queue"] is not old["queue"]
    assert new["ordered"]["a"] is not old["ordered"]["a"]
    assert new["groups"] is not old["groups"] and new["groups"]["k"] is not old["groups"]["k"]
    assert new["counts"] is not old["counts"]
    assert new["raw"] is not old["raw"]
    assert new["tuple"][0] is not old["tuple"][0]  # a tuple holding a list is rebuilt
    assert new["deep"]["inner"][0] is not old["deep"]["inner"][0]
    assert new["deep"]["inner"][1]["c"] is not old["deep"]["inner"][1]["c"]
    assert new["deep"]["inner"][2][0] is not old["deep"]["inner"][2][0]

    # The new session changes in place: the old id's request sees none of it.
    new["queue"].append(3)
    new["ordered"]["a"].append(2)
    new["groups"]["fresh"].append(1)  # default_factory kept
    new["counts"]["a"] += 5
    new["raw"].extend(b"c")
    new["tuple"][0].append(2)
    new["deep"]["inner"][0].append(2)
    new["deep"]["inner"][1]["c"]["b"] += 1
    new["deep"]["inner"][2][0].extend(b"y")
    assert list(old["queue"]) == [1, 2]
    assert old["ordered"]["a"] == [1]
    assert "fresh" not in old["groups"]
    assert old["counts"]["a"] == 1
    assert old["raw"] == bytearray(b"ab")
    assert old["tuple"][0] == [1]
    assert list(old["deep"]["inner"][0]) == [1]
    assert old["deep"]["inner"][1]["c"]["b"] == 1
    assert old["deep"]["inner"][2][0] == bytearray(b"z")

    # And the old id's request cannot write into the new session.
    old["queue"].append(99)
    old["ordered"]["a"].append(99)
    old["groups"]["k"].append(99)
    old["counts"]["z"] = 99
    old["raw"].extend(b"!")
    old["tuple"][0].append(99)
    old["deep"]["inner"][0].append(99)
    data = stored_data(manager, new.sid)
    assert data is not None
    assert list(data["queue"]) == [1, 2, 3]
    assert data["ordered"]["a"] == [1, 2]
    assert data["groups"]["k"] == [1]
    assert data["counts"] == Counter(a=6)
    assert data["raw"] == bytearray(b"abc")
    assert data["tuple"][0] == [1, 2]
    assert list(data["deep"]["inner"][0]) == [1, 2]


def test_regenerate_of_a_value_nested_600_deep_completes_the_login(manager: Manager) -> None:
    deep = json.loads("[" * 600 + "]" * 600)
    sid = seeded(manager, deep=deep, visits=1)
    request = manager.session_start(f"{COOKIE}={sid}")
    manager.session_regenerate(request)  # no RecursionError
    request["user"] = "alice"
    cookie = manager.session_cookie(request)
    assert cookie is not None
    set_cookie = parse_set_cookie(cookie)
    assert set_cookie.name == COOKIE and set_cookie.value == request.sid != sid
    data = stored_data(manager, request.sid)
    assert data is not None
    assert data["user"] == "alice" and data["visits"] == 1
    assert isinstance(data["deep"], list) and len(data["deep"]) == 1
    assert stored_data(manager, sid) is None


# -- 3. WSGI: Vary and Set-Cookie whatever the app's order, 503 from a generator ---


def test_wsgi_app_calling_start_response_before_reading_gets_vary_cookie(manager: Manager) -> None:
    sid = seeded(manager, user="alice")

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        body = f"user={environ[ENVIRON_KEY].get('user')}".encode()
        return [body]

    with serving(SessionMiddleware(app, manager)) as base:
        status, headers, body = http_get(base, "/", f"{COOKIE}={sid}")
    assert (status, body) == (200, "user=alice")
    assert headers.get_all("Vary") == ["Cookie"]
    assert headers.get_all("Set-Cookie") is None


def test_wsgi_generator_body_reading_the_session_gets_vary_cookie(manager: Manager) -> None:
    sid = seeded(manager, user="alice")

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        session = environ[ENVIRON_KEY]

        def body() -> Iterator[bytes]:
            yield f"user={session.get('user')}".encode()
            yield b";done"

        return body()

    with serving(SessionMiddleware(app, manager)) as base:
        status, headers, body = http_get(base, "/", f"{COOKIE}={sid}")
    assert (status, body) == (200, "user=alice;done")
    assert headers.get_all("Vary") == ["Cookie"]


def test_wsgi_generator_body_writing_before_its_first_chunk_sets_the_cookie(manager: Manager) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        session = environ[ENVIRON_KEY]

        def body() -> Iterator[bytes]:
            session["user"] = "bob"
            yield b"logged in"

        return body()

    with serving(SessionMiddleware(app, manager)) as base:
        status, headers, body = http_get(base, "/")
    assert (status, body) == (200, "logged in")
    set_cookie = find_set_cookie(headers.get_all("Set-Cookie") or [], COOKIE)
    assert set_cookie is not None and not set_cookie.deletes
    assert headers.get_all("Vary") == ["Cookie"]
    assert 'no-cache="set-cookie"' in (headers.get("Cache-Control") or "")
    assert stored_data(manager, set_cookie.value) == {"user": "bob"}


def test_wsgi_generator_store_failure_before_first_chunk_is_503(running_redis: Any) -> None:
    from memsession.redis import RedisProvider

    provider = RedisProvider(running_redis.url, prefix=f"rg-{uuid.uuid4().hex[:8]}:", timeout=1.0)
    try:
        with Manager(provider, COOKIE, 100) as manager:
            sid = seeded(manager, n=1)

            def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
                start_response("200 OK", [("Content-Type", "text/plain")])
                session = environ[ENVIRON_KEY]

                def body() -> Iterator[bytes]:
                    running_redis.stop()  # the store goes down mid-request
                    session["n"] = session.get("n", 0) + 1  # reaches Redis at once: fails
                    yield b"n=2"

                return body()

            try:
                with serving(SessionMiddleware(app, manager)) as base:
                    status, headers, body = http_get(base, "/", f"{COOKIE}={sid}")
            finally:
                if running_redis.proc is None:
                    running_redis.start()
    finally:
        provider.close()
    assert status == 503, body
    assert headers.get("Retry-After") == "1"
    assert headers.get_all("Set-Cookie") is None


# -- 4. Redis URLs with an unescaped delimiter in the password --------------------


BAD_URLS = [
    ("redis://:/S3cretPw@127.0.0.1:6379/0", "/S3cretPw", None),
    ("redis://:1234/S3cretPw@127.0.0.1:6379/0", "1234/S3cretPw", None),
    ("redis://:12#S3cretPw@127.0.0.1:6379/0", "12#S3cretPw", None),
    ("redis://:abcd?S3cretPw@127.0.0.1:6379/0", "abcd?S3cretPw", None),
    ("redis://default:/pw@127.0.0.1:6379/0", "/pw", "default"),
    ("redis://operator:/S3cretPw@127.0.0.1:6379/0", "/S3cretPw", "operator"),
]


def _pieces(secret: str) -> set[str]:
    """The parts of a password a message must not show: every run of 3+ characters."""
    size = min(3, len(secret))
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


@pytest.mark.parametrize("kind", ["RedisProvider", "AsyncRedisProvider"])
@pytest.mark.parametrize(("url", "password", "user"), BAD_URLS)
def test_redis_url_with_unescaped_delimiter_in_password_is_refused_without_echo(
    kind: str, url: str, password: str, user: Optional[str]
) -> None:
    redis_mod = pytest.importorskip("memsession.redis")
    cls = getattr(redis_mod, kind)
    with pytest.raises(ValueError) as info:
        cls(url)
    message = str(info.value)
    for piece in _pieces(password):
        assert piece not in message, (piece, message)
    if user is not None:
        assert user not in message
    assert "@" not in message.replace("'@'", "")


@pytest.mark.parametrize("kind", ["RedisProvider", "AsyncRedisProvider"])
def test_redis_provider_repr_shows_scheme_host_port_and_db_only(kind: str) -> None:
    redis_mod = pytest.importorskip("memsession.redis")
    provider = getattr(redis_mod, kind)("redis://operator:S3cretPw@127.0.0.1:6379/2")
    try:
        shown = repr(provider)
        assert "redis://127.0.0.1:6379/2" in shown
        for hidden in ("operator", "S3cretPw", "@"):
            assert hidden not in shown
    finally:
        close = getattr(provider, "close", None)
        if close is not None:
            close()


# -- 5. read-only traffic reclaims expired sessions -------------------------------


def test_read_only_traffic_reclaims_abandoned_sessions_with_default_settings(
    provider: Any, clock: FakeClock
) -> None:
    with Manager(provider) as manager:  # default settings: no GC thread, 1800 s idle lifetime
        for i in range(10_000):
            abandoned = manager.session_start(None)
            abandoned["n"] = i
            assert manager.session_cookie(abandoned) is not None
        live = start_session(manager, user="alice")
        assert len(provider) == 10_001
        clock.advance(1000)
        assert manager.session_start(live.cookie_header).sid == live.cookie_value
        clock.advance(900)  # the abandoned ones are now idle past 1800 s; the live one is not
        for _ in range(30_000):
            if len(provider) == 1:
                break
            session = manager.session_start(live.cookie_header)  # reads only
            assert session.sid == live.cookie_value and session["user"] == "alice"
            clock.advance(0.01)
        assert len(provider) == 1
        assert live.cookie_value in provider


# -- 6. Flask: an early before_request hook never meets a NullSession -------------


def test_flask_hook_registered_before_init_app_gets_503_when_the_store_is_down(running_redis: Any) -> None:
    flask = pytest.importorskip("flask")
    import redis as redis_py
    from flask.sessions import NullSession

    import memsession.flask as msflask

    client = redis_py.Redis.from_url(running_redis.url, socket_timeout=1.0, socket_connect_timeout=1.0)
    app = flask.Flask(__name__)
    app.config.update(
        SESSION_TYPE="redis",
        SESSION_REDIS=client,
        SESSION_KEY_PREFIX=f"rf-{uuid.uuid4().hex[:8]}:",
    )
    seen: list[type] = []

    @app.before_request
    def login_guard() -> Any:  # registered before init_app
        seen.append(type(flask.session._get_current_object()))
        if flask.request.path != "/login" and "user" not in flask.session:
            return "login required", 401
        return None

    @app.route("/login")
    def login() -> str:
        flask.session["user"] = "alice"
        return "ok"

    @app.route("/private")
    def private() -> str:
        return f"hello {flask.session['user']}"

    msflask.init_app(app)
    try:
        with serving(app) as base:
            status, headers, _ = http_get(base, "/login")
            assert status == 200
            cookie = find_set_cookie(headers.get_all("Set-Cookie") or [], "session")
            assert cookie is not None
            assert http_get(base, "/private", f"session={cookie.value}")[:3:2] == (200, "hello alice")
            seen.clear()
            running_redis.stop()
            try:
                status, headers, body = http_get(base, "/private", f"session={cookie.value}")
            finally:
                running_redis.start()
    finally:
        client.close()
    assert status == 503, body
    assert headers.get("Retry-After") == "1"
    assert NullSession not in seen


# -- 7. Redis replies meaning "cannot serve now" are 503; others propagate --------


def test_redis_out_of_memory_is_503_with_retry_after_not_500(running_redis: Any) -> None:
    from memsession.redis import RedisProvider

    provider = RedisProvider(running_redis.url, prefix=f"ro-{uuid.uuid4().hex[:8]}:", timeout=2.0)
    client = provider.client
    policy = client.config_get("maxmemory-policy").get("maxmemory-policy", "noeviction")

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session = environ[ENVIRON_KEY]
        if environ["PATH_INFO"] == "/login":
            session["user"] = "bob"
        body = f"user={session.get('user')}".encode()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]

    try:
        with Manager(provider, COOKIE, 100) as manager:
            sid = seeded(manager, user="alice")
            with serving(SessionMiddleware(app, manager)) as base:
                assert http_get(base, "/", f"{COOKIE}={sid}")[2] == "user=alice"
                client.config_set("maxmemory-policy", "noeviction")
                client.config_set("maxmemory", 1)
                try:
                    reading = http_get(base, "/", f"{COOKIE}={sid}")  # the read touches the session
                    writing = http_get(base, "/login")  # a new session is stored
                finally:
                    client.config_set("maxmemory", 0)
                    client.config_set("maxmemory-policy", policy)
                assert http_get(base, "/", f"{COOKIE}={sid}")[2] == "user=alice"
    finally:
        provider.close()
    for status, headers, body in (reading, writing):
        assert status == 503, (status, body)
        assert headers.get("Retry-After") == "1"
        assert headers.get_all("Set-Cookie") is None


def test_other_redis_error_replies_still_propagate(running_redis: Any) -> None:
    import redis as redis_py

    from memsession.redis import RedisProvider

    prefix = f"rw-{uuid.uuid4().hex[:8]}:"
    provider = RedisProvider(running_redis.url, prefix=prefix, timeout=2.0)
    sid = new_session_id()
    provider.client.set(prefix + sid, "not a hash")  # WRONGTYPE for every session command

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"unreachable"]

    statuses: list[str] = []
    try:
        with Manager(provider, COOKIE, 100) as manager:
            middleware = SessionMiddleware(app, manager)
            environ = {"HTTP_COOKIE": f"{COOKIE}={sid}", "wsgi.url_scheme": "http", "PATH_INFO": "/"}
            with pytest.raises(redis_py.exceptions.ResponseError) as info:
                list(middleware(environ, lambda status, headers, exc_info=None: statuses.append(status)))
    finally:
        provider.client.delete(prefix + sid)
        provider.close()
    assert not isinstance(info.value, ProviderUnavailableError)
    assert "WRONGTYPE" in str(info.value)
    assert statuses == []


# -- 8. https must be a bool ------------------------------------------------------


def test_session_start_with_a_non_bool_https_is_a_type_error_naming_https(manager: Manager) -> None:
    for bad in ("no", 1, None):
        with pytest.raises(TypeError, match="https"):
            manager.session_start(None, https=bad)  # type: ignore[arg-type]


def test_asession_start_with_a_non_bool_https_is_a_type_error_naming_https(async_redis_provider: Any) -> None:
    redis_mod = pytest.importorskip("memsession.redis")
    if not hasattr(redis_mod, "AsyncRedisProvider"):
        pytest.skip("no AsyncRedisProvider")
    with Manager(async_redis_provider, COOKIE, 100) as manager:
        assert manager.is_async
        for bad in ("no", 1):
            with pytest.raises(TypeError, match="https"):
                asyncio.run(manager.asession_start(None, https=bad))  # type: ignore[arg-type]


# -- 9. testing helpers: short reprs, a look that does not touch -----------------


def test_testing_helper_reprs_show_at_most_eight_characters_of_the_id(manager: Manager) -> None:
    started = start_session(manager, user="alice")
    sid = started.cookie_value
    shown = repr(started)
    assert sid[:8] in shown and sid[:9] not in shown

    session = manager.session_start(None)
    session["user"] = "bob"
    header = manager.session_cookie(session)
    assert header is not None
    set_cookie = parse_set_cookie(header)
    shown = repr(set_cookie)
    assert set_cookie.value == session.sid
    assert session.sid[:8] in shown and session.sid[:9] not in shown


def test_set_cookie_session_looks_without_marking_used_and_honours_idle_lifetime(
    manager: Manager, clock: FakeClock
) -> None:
    session = manager.session_start(None)
    session["user"] = "alice"
    header = manager.session_cookie(session)
    assert header is not None
    set_cookie = parse_set_cookie(header)
    stored_at = session.last_used

    clock.advance(60)
    found = set_cookie.session(manager)
    assert found is not None and found["user"] == "alice"
    assert found.last_used == stored_at  # not marked used
    clock.advance(30)
    again = set_cookie.session(manager)
    assert again is not None and again.last_used == stored_at

    clock.advance(20)  # 110 s idle > the Manager's 100 s
    assert set_cookie.session(manager) is None


# -- 10. Cookie header lines joined with ", " -----------------------------------


def test_cookie_lines_joined_with_a_comma_still_find_the_live_session(manager: Manager) -> None:
    sid = seeded(manager, user="alice")
    forged = new_session_id()
    headers = [
        f"a=1, {COOKIE}={sid}",
        f"{COOKIE}={forged}, {COOKIE}={sid}",
        f"a=1; b=2, {COOKIE}={sid}; c=3",
    ]
    for header in headers:
        session = manager.session_start(header)
        assert session.sid == sid, header
        assert session["user"] == "alice"
        assert not session.new
