"""Flask's own session behaviour, checked against ``memsession.flask.init_app(app)``.

Each test names the test of Flask's suite (pallets/flask 3.1: tests/test_basic.py,
tests/test_testing.py, tests/test_helpers.py) whose behaviour it covers. The
app is configured only through ``app.config``, as a Flask app is; no Manager
is passed unless a test says why (a fake clock for expiry and refresh, or the
"Manager decides" rule). Where memsession deliberately differs from Flask's
signed-cookie session, the docstring says "Deliberate difference" and the
test asserts memsession's documented behaviour instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

import flask
import pytest
from flask import Flask, session
from markupsafe import Markup

import memsession
import memsession.flask
from memsession import Manager, MemoryProvider, RequestSession
from memsession.testing import FakeClock, SetCookie, parse_set_cookie

# Flask's default PERMANENT_SESSION_LIFETIME, 31 days, in seconds.
FLASK_DEFAULT_LIFETIME = 31 * 24 * 3600


def make_app(manager: Optional[Manager] = None, **config: Any) -> Flask:
    """A Flask app in testing mode whose session is memsession's (no SECRET_KEY needed)."""
    app = Flask(__name__)
    app.config.update(TESTING=True, **config)
    memsession.flask.init_app(app, manager)
    return app


def only_cookie(response: Any) -> SetCookie:
    """The response's one Set-Cookie header, parsed."""
    headers = response.headers.getlist("Set-Cookie")
    assert len(headers) == 1, headers
    return parse_set_cookie(headers[0])


def no_cookie(response: Any) -> bool:
    return "Set-Cookie" not in response.headers


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock(10_000.0)


@pytest.fixture
def clocked_manager(fake_clock: FakeClock) -> Iterator[Manager]:
    """A Manager named like Flask's cookie, idle lifetime 100 s, Flask's permanent=False default.

    Used only where time must pass: init_app(app) without a Manager builds
    its store on the real clock, and these tests do not sleep.
    """
    provider = MemoryProvider(clock=fake_clock)
    with Manager(provider, "session", 100, cookie_persistent=False) as manager:
        yield manager


# -- flags, Vary ---------------------------------------------------------------


def request_session() -> Any:
    """The pushed context's session object, read without the flask.session proxy.

    Flask 3.1's proxy marks the session accessed on any access, so Flask's
    own test reads the context's private attribute; so does this helper
    (``request_ctx._session`` in Flask 3.1, ``app_ctx._session`` later).
    """
    from flask import globals as flask_globals

    ctx = getattr(flask_globals, "request_ctx", None) or flask_globals.app_ctx
    return ctx._session  # type: ignore[union-attr]


def test_session_accessed() -> None:
    """Flask test_session_accessed: accessed/modified per request; Vary: Cookie exactly when accessed."""
    app = make_app()

    @app.post("/")
    def do_set() -> str:
        session["value"] = flask.request.form["value"]
        return "value set"

    @app.get("/")
    def do_get() -> str:
        return str(session.get("value", "None"))

    @app.get("/nothing")
    def do_nothing() -> str:
        return ""

    client = app.test_client()
    with client:
        rv = client.get("/nothing")
        assert "cookie" not in rv.vary
        assert isinstance(request_session(), RequestSession)
        assert not request_session().accessed and not request_session().modified

    with client:
        rv = client.post("/", data={"value": "42"})
        assert rv.text == "value set" and "cookie" in rv.vary
        assert request_session().accessed and request_session().modified

    with client:
        rv = client.get("/")
        assert rv.text == "42" and "cookie" in rv.vary
        assert request_session().accessed and not request_session().modified

    with client:
        rv = client.get("/nothing")
        assert rv.text == "" and "cookie" not in rv.vary
        assert not request_session().accessed and not request_session().modified


def test_session_vary_cookie() -> None:
    """Flask test_session_vary_cookie: one Vary header, Cookie added to an existing Vary, none if unused."""
    app = make_app()

    @app.route("/set")
    def set_session() -> str:
        session["test"] = "test"
        return ""

    @app.route("/get")
    def get() -> str:
        return str(session.get("test"))

    @app.route("/getitem")
    def getitem() -> str:
        return str(session["test"])

    @app.route("/setdefault")
    def setdefault() -> str:
        return str(session.setdefault("test", "default"))

    @app.route("/clear")
    def clear() -> str:
        session.clear()
        return ""

    @app.route("/vary-cookie-header-set")
    def vary_cookie_header_set() -> flask.Response:
        response = flask.Response()
        response.vary.add("Cookie")
        session["test"] = "test"
        return response

    @app.route("/vary-header-set")
    def vary_header_set() -> flask.Response:
        response = flask.Response()
        response.vary.update(("Accept-Encoding", "Accept-Language"))
        session["test"] = "test"
        return response

    @app.route("/no-vary-header")
    def no_vary_header() -> str:
        return ""

    client = app.test_client()

    def expect(path: str, header_value: Optional[str] = "Cookie") -> None:
        rv = client.get(path)
        if header_value:
            assert rv.headers.getlist("Vary") == [header_value], path
        else:
            assert "Vary" not in rv.headers, path

    expect("/set")
    expect("/get")
    expect("/getitem")
    expect("/setdefault")
    expect("/clear")
    expect("/vary-cookie-header-set")
    expect("/vary-header-set", "Accept-Encoding, Accept-Language, Cookie")
    expect("/no-vary-header", None)


# -- cookie attributes from Flask's settings ---------------------------------------


def test_session_path() -> None:
    """Flask test_session_path: APPLICATION_ROOT is the cookie's Path when SESSION_COOKIE_PATH is unset."""
    app = make_app(APPLICATION_ROOT="/foo")

    @app.route("/")
    def index() -> str:
        session["testing"] = 42
        return "Hello World"

    rv = app.test_client().get("/", "http://example.com:8080/foo")
    assert only_cookie(rv).path == "/foo"


def test_session_using_application_root() -> None:
    """Flask test_session_using_application_root: mounted under a SCRIPT_NAME, Path is APPLICATION_ROOT."""
    app = make_app(APPLICATION_ROOT="/bar")
    inner = app.wsgi_app

    def prefixed(environ: dict[str, Any], start_response: Any) -> Any:
        environ["SCRIPT_NAME"] = "/bar"
        return inner(environ, start_response)

    app.wsgi_app = prefixed  # type: ignore[method-assign]

    @app.route("/")
    def index() -> str:
        session["testing"] = 42
        return "Hello World"

    rv = app.test_client().get("/", "http://example.com:8080/")
    assert only_cookie(rv).path == "/bar"


def test_session_using_session_settings() -> None:
    """Flask test_session_using_session_settings: every SESSION_COOKIE_* setting shapes the cookie.

    SESSION_COOKIE_DOMAIN=".example.com" is sent as Domain=example.com (the
    leading dot dropped, as Werkzeug >= 2.3 does), and the test client sends
    the cookie back to www.example.com (SERVER_NAME). Emptying the session
    (pop of its only key) expires the cookie with the same attributes, as
    Flask's "session=;" deletion does.
    """
    app = make_app(
        SERVER_NAME="www.example.com:8080",
        APPLICATION_ROOT="/test",
        SESSION_COOKIE_DOMAIN=".example.com",
        SESSION_COOKIE_HTTPONLY=False,
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_PARTITIONED=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_PATH="/",
    )

    @app.route("/")
    def index() -> str:
        session["testing"] = 42
        return "Hello World"

    @app.route("/read")
    def read() -> str:
        return str(session.get("testing"))

    @app.route("/clear")
    def clear() -> str:
        session.pop("testing", None)
        return "Goodbye World"

    client = app.test_client()
    cookie = only_cookie(client.get("/", "http://www.example.com:8080/test/"))
    assert cookie.name == "session"
    assert cookie.domain == "example.com"
    assert cookie.path == "/"
    assert cookie.secure and not cookie.httponly
    assert cookie.samesite == "Lax"
    assert "Partitioned" in cookie.attributes

    stored = client.get_cookie("session", domain="example.com")
    assert stored is not None and stored.value == cookie.value
    # The cookie of domain example.com goes back to the www. host.
    assert client.get("/read", "http://www.example.com:8080/test/").text == "42"

    gone = only_cookie(client.get("/clear", "http://www.example.com:8080/test/"))
    assert gone.name == "session" and gone.value == "" and gone.deletes
    assert gone.domain == "example.com" and gone.path == "/"
    assert gone.secure and gone.samesite == "Lax" and "Partitioned" in gone.attributes
    assert client.get_cookie("session", domain="example.com") is None


def test_session_using_samesite_attribute() -> None:
    """Flask test_session_using_samesite_attribute: invalid SameSite is a ValueError; Strict, Lax sent.

    Deliberate difference: SESSION_COOKIE_SAMESITE=None (Flask's default, no
    attribute) gives memsession's default SameSite=Lax. A second deliberate
    difference shapes the test: a stored session's cookie is not re-sent on
    every response, so a changed attribute shows on the next cookie sent (a
    new session here, one client per value).
    """
    app = make_app()

    @app.route("/")
    def index() -> str:
        session["testing"] = 42
        return "Hello World"

    app.config.update(SESSION_COOKIE_SAMESITE="invalid")
    with pytest.raises(ValueError, match="samesite"):
        app.test_client().get("/")

    app.config.update(SESSION_COOKIE_SAMESITE=None)
    assert only_cookie(app.test_client().get("/")).samesite == "Lax"

    app.config.update(SESSION_COOKIE_SAMESITE="Strict")
    assert only_cookie(app.test_client().get("/")).samesite == "Strict"

    app.config.update(SESSION_COOKIE_SAMESITE="Lax")
    assert only_cookie(app.test_client().get("/")).samesite == "Lax"


def test_secure_is_automatic_on_https() -> None:
    """Flask: SESSION_COOKIE_SECURE=False never sends Secure.

    Deliberate difference: with SESSION_COOKIE_SECURE unset or False,
    memsession marks the cookie Secure on https requests and leaves it off on
    http; SESSION_COOKIE_SECURE=True forces it everywhere.
    """
    app = make_app()

    @app.route("/")
    def index() -> str:
        session["testing"] = 42
        return ""

    assert only_cookie(app.test_client().get("/", "https://localhost/")).secure
    assert not only_cookie(app.test_client().get("/")).secure
    app.config["SESSION_COOKIE_SECURE"] = True
    assert only_cookie(app.test_client().get("/")).secure


def test_cookie_domain_and_server_name() -> None:
    """Flask test_session_using_session_settings (domain): a .example.com cookie reaches www.example.com.

    Only SESSION_COOKIE_DOMAIN and SERVER_NAME set; the session round-trips
    through the test client's cookie jar on the www. host.
    """
    app = make_app(SERVER_NAME="www.example.com", SESSION_COOKIE_DOMAIN=".example.com")

    @app.route("/set")
    def set_value() -> str:
        session["user"] = "ann"
        return ""

    @app.route("/get")
    def get_value() -> str:
        return str(session.get("user"))

    client = app.test_client()
    assert only_cookie(client.get("/set")).domain == "example.com"
    assert client.get("/get").text == "ann"
    assert client.get("/get", "http://www.example.com/").text == "ann"


# -- Flask's settings are read per request -------------------------------------------


def test_settings_changed_after_init_app_apply_from_the_next_request() -> None:
    """Flask reads its session settings per request (SessionInterface.get_cookie_*), not once.

    SESSION_COOKIE_NAME changed after init_app names the next cookie, as in
    Flask (the old cookie is then not read: the session starts afresh).
    Changing an attribute keeps the sessions (same store): HttpOnly off shows
    on the next cookie sent. PERMANENT_SESSION_LIFETIME changed later gives
    the next permanent cookie its Max-Age.
    """
    app = make_app()

    @app.route("/set")
    def set_value() -> str:
        session["x"] = "1"
        return ""

    @app.route("/get")
    def get_value() -> str:
        return str(session.get("x"))

    @app.route("/permanent")
    def permanent() -> str:
        session["x"] = "1"
        session.permanent = True
        return ""

    client = app.test_client()
    assert only_cookie(client.get("/set")).name == "session"

    app.config["SESSION_COOKIE_NAME"] = "renamed"
    assert client.get("/get").text == "None"  # the "session" cookie is not read any more
    assert only_cookie(client.get("/set")).name == "renamed"

    app.config["SESSION_COOKIE_HTTPONLY"] = False
    assert client.get("/get").text == "1"  # same store, same session
    cookie = only_cookie(client.get("/permanent"))  # permanent changed: the cookie is re-sent
    assert cookie.name == "renamed" and not cookie.httponly
    assert cookie.max_age == FLASK_DEFAULT_LIFETIME * 3 // 2

    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(minutes=10)
    fresh = app.test_client()
    assert only_cookie(fresh.get("/permanent")).max_age == 900


def test_setting_changed_with_an_explicit_manager_is_an_error() -> None:
    """Flask honours a changed SESSION_COOKIE_NAME next request; with a Manager given, memsession refuses.

    The Manager decides the cookie, so the next request raises a
    RuntimeError naming the setting rather than ignoring it silently.
    """
    manager = Manager("memory", "session", 600)
    app = make_app(manager)

    @app.route("/")
    def index() -> str:
        session["x"] = 1
        return ""

    client = app.test_client()
    assert only_cookie(client.get("/")).name == "session"
    app.config["SESSION_COOKIE_NAME"] = "renamed"
    with pytest.raises(RuntimeError, match="SESSION_COOKIE_NAME"):
        client.get("/")


def test_second_init_app_is_an_error() -> None:
    """Flask has one session_interface per app: a second init_app on one app is a RuntimeError."""
    app = make_app()
    with pytest.raises(RuntimeError, match="init_app"):
        memsession.flask.init_app(app)
    with pytest.raises(RuntimeError, match="init_app"):
        memsession.flask.init_app(app, Manager())


# -- no secret key ---------------------------------------------------------------------


def test_missing_session() -> None:
    """Flask test_missing_session, test_session_transactions_no_null_sessions: no SECRET_KEY, no session.

    Deliberate difference: the cookie holds only a random id, so memsession
    needs no secret key: without one, flask.session works and so does
    session_transaction (Flask would raise "the session is unavailable").
    """
    app = make_app()
    assert app.secret_key is None

    @app.route("/")
    def index() -> str:
        return str(session.get("foo"))

    with app.test_request_context():
        assert session.get("missing_key") is None
        session["foo"] = 42
        assert session.pop("foo") == 42

    client = app.test_client()
    with client.session_transaction() as sess:
        sess["foo"] = 42
    assert client.get("/").text == "42"


# -- permanent and lifetime --------------------------------------------------------


def test_session_expiration() -> None:
    """Flask test_session_expiration: a permanent cookie lasts PERMANENT_SESSION_LIFETIME; else no expiry.

    Deliberate difference: memsession sends Max-Age (no Expires) of 1.5x the
    idle lifetime, so the browser keeps the cookie while the server session,
    refreshed at half the lifetime, is alive. session.permanent is stored
    with the session and reads True on the next request; setting it back to
    False re-sends a browser-session cookie (no Max-Age, no Expires).
    """
    app = make_app()
    permanent = True

    @app.route("/")
    def index() -> str:
        session["test"] = 42
        session.permanent = permanent
        return ""

    @app.route("/test")
    def test() -> str:
        return str(session.permanent)

    client = app.test_client()
    cookie = only_cookie(client.get("/"))
    assert cookie.max_age == FLASK_DEFAULT_LIFETIME * 3 // 2
    assert "expires" not in {k.lower() for k in cookie.attributes}
    assert client.get("/test").text == "True"

    permanent = False
    cookie = only_cookie(client.get("/"))
    assert cookie.max_age is None and "expires" not in {k.lower() for k in cookie.attributes}
    assert client.get("/test").text == "False"


def test_permanent_is_false_by_default_and_persists_once_set() -> None:
    """Flask: session.permanent defaults to False; set True, it holds on later requests (cookie expiry).

    Checked through a later cookie: a login's regenerate_session() re-sends
    the cookie under a new id, still with Max-Age (memsession's login helper).
    """
    app = make_app()

    @app.route("/visit")
    def visit() -> str:
        session["visits"] = session.get("visits", 0) + 1
        return str(session.permanent)

    @app.route("/remember-me")
    def remember_me() -> str:
        session.permanent = True
        return ""

    @app.route("/login")
    def login() -> str:
        memsession.flask.regenerate_session()
        session["user"] = "ann"
        return str(session.permanent)

    client = app.test_client()
    rv = client.get("/visit")
    assert rv.text == "False" and only_cookie(rv).max_age is None
    assert only_cookie(client.get("/remember-me")).max_age == FLASK_DEFAULT_LIFETIME * 3 // 2
    rv = client.get("/visit")
    assert rv.text == "True" and no_cookie(rv)
    rv = client.get("/login")
    assert rv.text == "True" and only_cookie(rv).max_age == FLASK_DEFAULT_LIFETIME * 3 // 2


def test_session_permanent_setting() -> None:
    """Flask-Session's SESSION_PERMANENT, honoured on plain Flask too: True makes sessions permanent."""
    app = make_app(SESSION_PERMANENT=True, PERMANENT_SESSION_LIFETIME=3600)

    @app.route("/")
    def index() -> str:
        session["x"] = 1
        return str(session.permanent)

    rv = app.test_client().get("/")
    assert rv.text == "True" and only_cookie(rv).max_age == 5400


def test_permanent_session_lifetime_timedelta() -> None:
    """Flask: PERMANENT_SESSION_LIFETIME may be a timedelta (or seconds); it is memsession's idle lifetime.

    Deliberate difference: the cookie's Max-Age is 1.5x that lifetime.
    """
    for lifetime, max_age in ((timedelta(minutes=10), 900), (timedelta(hours=2), 10800), (600, 900)):
        app = make_app(PERMANENT_SESSION_LIFETIME=lifetime)

        @app.route("/")
        def index() -> str:
            session["x"] = 1
            session.permanent = True
            return ""

        assert only_cookie(app.test_client().get("/")).max_age == max_age, lifetime


def test_idle_expiry(clocked_manager: Manager, fake_clock: FakeClock) -> None:
    """Flask rejects a cookie older than PERMANENT_SESSION_LIFETIME (signed timestamp); memsession: idle.

    Deliberate difference: the lifetime is an idle timeout, sliding with use,
    enforced on the server: a session used within its lifetime lives on; one
    idle past it is never served again (the stale cookie is left alone, as
    Flask leaves an expired one; the next write issues a new id). Needs a
    Manager over a fake clock (no sleeping); without a Manager the same
    lifetime comes from PERMANENT_SESSION_LIFETIME.
    """
    app = make_app(clocked_manager)

    @app.route("/set")
    def set_value() -> str:
        session["user"] = "ann"
        return ""

    @app.route("/get")
    def get_value() -> str:
        return str(session.get("user"))

    client = app.test_client()
    client.get("/set")
    for _ in range(5):  # 5 x 90 s > 100 s, but never idle for 100 s
        fake_clock.advance(90)
        assert client.get("/get").text == "ann"
    old = client.get_cookie("session")
    assert old is not None
    fake_clock.advance(101)
    rv = client.get("/get")
    # As with Flask's expired cookie: an empty new session, and no Set-Cookie.
    assert rv.text == "None" and no_cookie(rv)
    assert only_cookie(client.get("/set")).value != old.value


# -- when the cookie is sent --------------------------------------------------------------


def test_session_cookie_setting() -> None:
    """Flask test_session_cookie_setting: SESSION_REFRESH_EACH_REQUEST decides if the cookie is re-sent.

    Deliberate difference: the cookie holds only the id, so changing the
    data does not re-send it: the first write sends it, further writes and
    reads do not, whatever SESSION_REFRESH_EACH_REQUEST says (memsession
    re-sends after half the lifetime instead; see test_cookie_refresh).
    """
    for refresh in (True, False):
        for permanent in (True, False):
            app = make_app(SESSION_REFRESH_EACH_REQUEST=refresh)

            @app.route("/bump")
            def bump() -> str:
                session["foo"] = value = session.get("foo", 0) + 1
                session.permanent = permanent  # noqa: B023 - read during the loop's own requests
                return str(value)

            @app.route("/read")
            def read() -> str:
                return str(session.get("foo", 0))

            client = app.test_client()
            first = client.get("/bump")
            assert first.text == "1" and (only_cookie(first).max_age is not None) == permanent
            for expected in ("2", "3"):
                rv = client.get("/bump")
                assert rv.text == expected and no_cookie(rv)
            rv = client.get("/read")
            assert rv.text == "3" and no_cookie(rv)


def test_cookie_refresh(clocked_manager: Manager, fake_clock: FakeClock) -> None:
    """Flask test_session_cookie_setting (refresh part): a permanent cookie is re-sent to extend it.

    Deliberate difference, in place of SESSION_REFRESH_EACH_REQUEST: the
    cookie is re-sent once half the idle lifetime has passed since it was
    last sent, on any request of that session. Fake clock, so a Manager.
    """
    app = make_app(clocked_manager)

    @app.route("/login")
    def login() -> str:
        session["user_id"] = 1
        session.permanent = True
        return ""

    @app.route("/read")
    def read() -> str:
        return str(session.get("user_id"))

    client = app.test_client()
    sent = only_cookie(client.get("/login"))
    assert sent.max_age == 150
    fake_clock.advance(49)
    assert no_cookie(client.get("/read"))
    fake_clock.advance(2)
    again = only_cookie(client.get("/read"))
    assert again.value == sent.value and again.max_age == 150
    assert no_cookie(client.get("/read"))


def test_session_refresh_vary(clocked_manager: Manager, fake_clock: FakeClock) -> None:
    """Flask test_session_refresh_vary: a response refreshing the cookie has Vary: Cookie, view or not.

    Deliberate difference: Flask refreshes a permanent cookie on every
    response, so every one varies; memsession does not re-send the cookie
    right after login, so a response that neither uses the session nor
    sends the cookie has no Vary. Once the refresh is due, the same view's
    response re-sends the cookie and carries Vary: Cookie.
    """
    app = make_app(clocked_manager)

    @app.get("/login")
    def login() -> str:
        session["user_id"] = 1
        session.permanent = True
        return ""

    @app.get("/ignored")
    def ignored() -> str:
        return ""

    client = app.test_client()
    assert client.get("/login").headers["Vary"] == "Cookie"
    rv = client.get("/ignored")
    assert "Vary" not in rv.headers and no_cookie(rv)
    fake_clock.advance(60)
    rv = client.get("/ignored")
    assert rv.headers["Vary"] == "Cookie" and only_cookie(rv).max_age == 150


def test_empty_session_sends_no_cookie() -> None:
    """Flask sends a cookie once session.permanent is set (it stores "_permanent" in the data).

    Deliberate difference: an empty session is never stored and sends no
    cookie, even with permanent or modified set; "_permanent" is not a key of
    the data. Emptying a stored session expires its cookie (see
    test_session_using_session_settings).
    """
    app = make_app()

    @app.route("/permanent-only")
    def permanent_only() -> str:
        session.permanent = True
        session.modified = True
        return ""

    @app.route("/keys")
    def keys() -> str:
        session["a"] = 1
        session.permanent = True
        return ",".join(sorted(session.keys()))

    client = app.test_client()
    assert no_cookie(client.get("/permanent-only"))
    assert client.get_cookie("session") is None
    assert client.get("/keys").text == "a"


# -- storage ----------------------------------------------------------------------------


def test_session_stored_last() -> None:
    """Flask test_session_stored_last: a write in an after_request hook is saved with the response."""
    app = make_app()

    @app.after_request
    def modify_session(response: flask.Response) -> flask.Response:
        session["foo"] = 42
        return response

    @app.route("/")
    def dump_session_contents() -> str:
        return repr(session.get("foo"))

    client = app.test_client()
    assert client.get("/").text == "None"
    assert client.get("/").text == "42"


def test_session_special_types() -> None:
    """Flask test_session_special_types: tuple, bytes, Markup, UUID, datetime, tag-like dicts come back.

    Deliberate difference in mechanism: the in-memory store keeps the
    objects themselves (no serialization), so types are kept exactly; read on
    a later request here, not only after the same one.
    """
    app = make_app()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    the_uuid = uuid.uuid4()

    @app.route("/")
    def dump_session_contents() -> tuple[str, int]:
        session["t"] = (1, 2, 3)
        session["b"] = b"\xff"
        session["m"] = Markup("<html>")
        session["u"] = the_uuid
        session["d"] = now
        session["t_tag"] = {" t": "not-a-tuple"}
        session["di_t_tag"] = {" t__": "not-a-tuple"}
        session["di_tag"] = {" di": "not-a-dict"}
        return "", 204

    @app.route("/check")
    def check() -> str:
        s = session
        assert s["t"] == (1, 2, 3) and type(s["t"]) is tuple
        assert type(s["b"]) is bytes and s["b"] == b"\xff"
        assert type(s["m"]) is Markup and s["m"] == Markup("<html>")
        assert s["u"] == the_uuid
        assert s["d"] == now
        assert s["t_tag"] == {" t": "not-a-tuple"}
        assert s["di_t_tag"] == {" t__": "not-a-tuple"}
        assert s["di_tag"] == {" di": "not-a-dict"}
        return "ok"

    client = app.test_client()
    with client:
        client.get("/")
        assert session["t"] == (1, 2, 3) and type(session["m"]) is Markup
    assert client.get("/check").text == "ok"


def test_stream_keeps_session() -> None:
    """Flask TestStreaming.test_stream_keeps_session: a stream_with_context generator reads flask.session.

    Also a stored value read while streaming a later response.
    """
    app = make_app()

    @app.route("/")
    def index() -> flask.Response:
        session["test"] = "flask"

        def gen() -> Iterator[str]:
            yield session["test"]
            yield "!"

        return flask.Response(flask.stream_with_context(gen()))

    @app.route("/again")
    def again() -> flask.Response:
        def gen() -> Iterator[str]:
            yield "stored: "
            yield session["test"]

        return flask.Response(flask.stream_with_context(gen()))

    client = app.test_client()
    rv = client.get("/")
    assert rv.data == b"flask!" and only_cookie(rv).name == "session"
    assert client.get("/again").data == b"stored: flask"


# -- flashing -----------------------------------------------------------------------------


def test_flashes() -> None:
    """Flask test_flashes: flash() marks the session modified; messages come back in order."""
    app = make_app()
    with app.test_request_context():
        assert not session.modified
        flask.flash("Zap")
        session.modified = False
        flask.flash("Zip")
        assert session.modified
        assert list(flask.get_flashed_messages()) == ["Zap", "Zip"]


def test_extended_flashing() -> None:
    """Flask test_extended_flashing: categories, Markup messages and category filters on the next request."""
    app = make_app()

    @app.route("/")
    def index() -> str:
        flask.flash("Hello World")
        flask.flash("Hello World", "error")
        flask.flash(Markup("<em>Testing</em>"), "warning")
        return ""

    @app.route("/test/")
    def test() -> str:
        expected = ["Hello World", "Hello World", Markup("<em>Testing</em>")]
        assert list(flask.get_flashed_messages()) == expected
        return "ok"

    @app.route("/test_with_categories/")
    def test_with_categories() -> str:
        assert list(flask.get_flashed_messages(with_categories=True)) == [
            ("message", "Hello World"),
            ("error", "Hello World"),
            ("warning", Markup("<em>Testing</em>")),
        ]
        return "ok"

    @app.route("/test_filter/")
    def test_filter() -> str:
        messages = flask.get_flashed_messages(category_filter=["message"], with_categories=True)
        assert list(messages) == [("message", "Hello World")]
        return "ok"

    @app.route("/test_filters/")
    def test_filters() -> str:
        messages = flask.get_flashed_messages(category_filter=["message", "warning"], with_categories=True)
        assert list(messages) == [("message", "Hello World"), ("warning", Markup("<em>Testing</em>"))]
        return "ok"

    @app.route("/test_filters_without_returning_categories/")
    def test_filters2() -> str:
        messages = flask.get_flashed_messages(category_filter=["message", "warning"])
        assert list(messages) == ["Hello World", Markup("<em>Testing</em>")]
        assert type(messages[1]) is Markup
        return "ok"

    for path in (
        "/test/",
        "/test_with_categories/",
        "/test_filter/",
        "/test_filters/",
        "/test_filters_without_returning_categories/",
    ):
        client = app.test_client()  # a new client each time: fresh flashes
        client.get("/")
        assert client.get(path).text == "ok", path


def test_flash_across_redirect() -> None:
    """Flask's post/redirect/get flashing: a message flashed before a redirect shows once after it.

    Reading the messages empties the session, so memsession drops it and
    expires the cookie (deliberate: an emptied stored session is ended).
    """
    app = make_app()

    @app.post("/save")
    def save() -> flask.Response:
        flask.flash("Saved", "success")
        return flask.redirect("/done")  # type: ignore[return-value]

    @app.get("/done")
    def done() -> str:
        messages: list[Any] = flask.get_flashed_messages(with_categories=True)
        return "|".join(f"{category}:{message}" for category, message in messages)

    client = app.test_client()
    rv = client.post("/save", follow_redirects=True)
    assert rv.text == "success:Saved"
    assert len(rv.history) == 1 and only_cookie(rv.history[0]).name == "session"
    assert only_cookie(rv).deletes
    assert client.get("/done").text == ""


# -- the test client ------------------------------------------------------------------------


def test_redirect_session() -> None:
    """Flask test_redirect_session: writes before and after a followed redirect land in one session."""
    app = make_app()

    @app.route("/redirect")
    def index() -> flask.Response:
        session["redirect"] = True
        return flask.redirect("/target")  # type: ignore[return-value]

    @app.route("/target")
    def get_session() -> str:
        session["target"] = True
        return ""

    client = app.test_client()
    with client:
        client.get("/redirect", follow_redirects=True)
        assert session["redirect"] is True
        assert session["target"] is True


def test_session_transactions() -> None:
    """Flask test_session_transactions: session_transaction() writes what requests read, and reads."""
    app = make_app()

    @app.route("/")
    def index() -> str:
        return str(session["foo"])

    client = app.test_client()
    with client:
        with client.session_transaction() as sess:
            assert isinstance(sess, RequestSession)
            assert len(sess) == 0
            sess["foo"] = [42]
            assert len(sess) == 1
        rv = client.get("/")
        assert rv.data == b"[42]"
        with client.session_transaction() as sess:
            assert len(sess) == 1
            assert sess["foo"] == [42]


def test_session_transaction_needs_cookies() -> None:
    """Flask test_session_transaction_needs_cookies: no cookies, no session transaction."""
    app = make_app()
    client = app.test_client(use_cookies=False)
    with pytest.raises(TypeError, match="Cookies are disabled"):
        with client.session_transaction():
            pass


# -- login and logout -------------------------------------------------------------------


def test_regenerate_and_destroy_for_login_and_logout() -> None:
    """Flask idiom: session.clear() at logout. memsession adds regenerate_session() and destroy_session().

    Login moves the data to a fresh id (the old cookie no longer names a
    session); logout ends it on the server and expires the cookie; clear()
    of a stored session does the same.
    """
    app = make_app()

    @app.route("/cart")
    def cart() -> str:
        session["cart"] = ["book"]
        return ""

    @app.route("/login")
    def login() -> str:
        memsession.flask.regenerate_session()
        session["user"] = "ann"
        return ""

    @app.route("/whoami")
    def whoami() -> str:
        return f"{session.get('user')} {session.get('cart')}"

    @app.route("/logout")
    def logout() -> str:
        memsession.flask.destroy_session()
        return ""

    @app.route("/clear")
    def clear() -> str:
        session.clear()
        return ""

    client = app.test_client()
    anonymous = only_cookie(client.get("/cart")).value
    logged_in = only_cookie(client.get("/login")).value
    assert logged_in != anonymous
    assert client.get("/whoami").text == "ann ['book']"

    thief = app.test_client()
    thief.set_cookie("session", anonymous)
    assert thief.get("/whoami").text == "None None"

    assert only_cookie(client.get("/logout")).deletes
    assert client.get("/whoami").text == "None None"

    client.get("/cart")
    assert only_cookie(client.get("/clear")).deletes
    assert client.get_cookie("session") is None
