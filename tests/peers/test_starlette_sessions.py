"""Starlette's SessionMiddleware behaviours, checked against memsession.asgi.SessionMiddleware.

An app leaving Starlette's signed-cookie sessions changes one line,
``from starlette.middleware.sessions import SessionMiddleware`` to
``from memsession.asgi import SessionMiddleware``. Each test here covers one
behaviour that Starlette's own suite (tests/middleware/test_session.py) checks,
or one of the middleware's options, on real Starlette (and FastAPI) apps driven
by Starlette's TestClient. Where memsession deliberately differs, the test
asserts memsession's documented behaviour and its docstring says so.

Time is never slept through: where expiry matters the store runs on a
FakeClock, injected through the ``provider=`` option.
"""

from __future__ import annotations

import base64
import json
import re
import warnings
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple, Optional

import pytest
from starlette.applications import Starlette
from starlette.datastructures import Secret
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

import memsession
import memsession.asgi
from memsession import ConfigWarning, Manager, MemoryProvider, UnknownProviderError
from memsession.asgi import SessionMiddleware
from memsession.testing import FakeClock

TWO_WEEKS = 14 * 24 * 60 * 60  # Starlette's default max_age
ID_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}\Z")  # 32 random bytes, URL-safe base64, no padding

# The secret_key warning is asserted in the tests dedicated to it; elsewhere
# it is expected noise (filterwarnings=error would turn it into a failure).
pytestmark = pytest.mark.filterwarnings("ignore:secret_key is ignored:memsession.ConfigWarning")


@pytest.fixture(autouse=True)
def fresh_secret_key_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """The secret_key warning is once per process: rearm it so every test sees the same thing."""
    monkeypatch.setattr(memsession.asgi, "_warned_secret_key", False)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_000_000.0)


# -- reading Set-Cookie headers (our own parser: attribute names are case-insensitive) --


class Cookie(NamedTuple):
    name: str
    value: str
    attrs: dict[str, str]  # lower-cased attribute name -> value ("" for a flag)

    @property
    def max_age(self) -> Optional[int]:
        return None if "max-age" not in self.attrs else int(self.attrs["max-age"])

    @property
    def deletes(self) -> bool:
        if self.max_age is not None:
            return self.max_age <= 0
        return "1970" in self.attrs.get("expires", "")


def parse_cookie(header: str) -> Cookie:
    first, *rest = header.split(";")
    name, _, value = first.partition("=")
    attrs = {}
    for part in rest:
        key, _, val = part.strip().partition("=")
        attrs[key.strip().lower()] = val.strip()
    return Cookie(name.strip(), value.strip(), attrs)


def set_cookies(response: Any) -> list[Cookie]:
    return [parse_cookie(h) for h in response.headers.get_list("set-cookie")]


def the_cookie(response: Any, name: str = "session") -> Cookie:
    found = [c for c in set_cookies(response) if c.name == name]
    assert len(found) == 1, response.headers.get_list("set-cookie")
    return found[0]


# -- the app: Starlette's idiom, with dict(...) where a response is JSON-encoded --


async def view_session(request: Request) -> JSONResponse:
    return JSONResponse({"session": dict(request.session)})


async def update_session(request: Request) -> JSONResponse:
    request.session.update(await request.json())
    return JSONResponse({"session": dict(request.session)})


async def clear_session(request: Request) -> JSONResponse:
    request.session.clear()
    return JSONResponse({"session": dict(request.session)})


async def write_then_clear(request: Request) -> JSONResponse:
    request.session["short"] = "lived"
    request.session.clear()
    return JSONResponse({"session": dict(request.session)})


async def ws_session(websocket: WebSocket) -> None:
    await websocket.accept()
    seen = dict(websocket.session)
    websocket.session["ws_visits"] = websocket.session.get("ws_visits", 0) + 1
    await websocket.send_json({"session": seen})
    await websocket.close()


def session_routes() -> list[Any]:
    return [
        Route("/view_session", view_session),
        Route("/update_session", update_session, methods=["POST"]),
        Route("/clear_session", clear_session, methods=["POST"]),
        Route("/write_then_clear", write_then_clear, methods=["POST"]),
        WebSocketRoute("/ws", ws_session),
    ]


def make_app(*args: Any, **options: Any) -> Starlette:
    """A Starlette app with the session middleware, configured as a Starlette app would be."""
    return Starlette(routes=session_routes(), middleware=[Middleware(SessionMiddleware, *args, **options)])


# -- the secret_key argument -----------------------------------------------------


def test_secret_key_is_accepted_and_ignored_with_one_config_warning() -> None:
    """Starlette: every test's ``Middleware(SessionMiddleware, secret_key="example")``.

    memsession (deliberate difference): nothing is signed, so secret_key is
    accepted and ignored, with a memsession.ConfigWarning once per process.
    ``app.add_middleware`` works as in Starlette.
    """
    app = Starlette(routes=session_routes())
    app.add_middleware(SessionMiddleware, secret_key="example")
    client = TestClient(app)
    with pytest.warns(ConfigWarning, match="secret_key is ignored"):
        response = client.post("/update_session", json={"some": "data"})  # builds the middleware stack
    assert response.json() == {"session": {"some": "data"}}
    assert client.get("/view_session").json() == {"session": {"some": "data"}}

    other = Starlette(routes=session_routes())
    other.add_middleware(SessionMiddleware, secret_key="another secret")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        TestClient(other).get("/view_session")
    assert not [w for w in caught if issubclass(w.category, ConfigWarning)], "warned twice"


def test_no_secret_key_no_warning() -> None:
    """memsession only: without secret_key there is nothing to warn about."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = TestClient(make_app())
        assert client.post("/update_session", json={"a": 1}).json() == {"session": {"a": 1}}
    assert not [w for w in caught if issubclass(w.category, ConfigWarning)]


def test_config_warning_points_at_the_line_that_builds_the_middleware() -> None:
    """memsession only: the secret_key warning names the caller's file, as warnings should."""
    with pytest.warns(ConfigWarning) as record:
        SessionMiddleware(Starlette(), secret_key="example")
    assert record[0].filename == __file__


def test_secret_key_given_positionally() -> None:
    """Starlette: ``SessionMiddleware(app, secret_key)``: secret_key is its second positional parameter."""
    with pytest.warns(ConfigWarning, match="secret_key is ignored"):
        app = SessionMiddleware(Starlette(routes=session_routes()), "secret")
    client = TestClient(app)
    assert client.post("/update_session", json={"some": "data"}).json() == {"session": {"some": "data"}}
    assert client.get("/view_session").json() == {"session": {"some": "data"}}

    # positional through Starlette's Middleware(...) too
    client = TestClient(make_app("secret"))
    assert client.post("/update_session", json={"x": 1}).json() == {"session": {"x": 1}}
    assert client.get("/view_session").json() == {"session": {"x": 1}}


def test_secret_key_as_a_starlette_secret_keyword() -> None:
    """Starlette: secret_key may be a ``starlette.datastructures.Secret`` (``config(..., cast=Secret)``)."""
    client = TestClient(make_app(secret_key=Secret("from-the-environment")))
    assert client.post("/update_session", json={"a": 1}).json() == {"session": {"a": 1}}
    assert client.get("/view_session").json() == {"session": {"a": 1}}


def test_secret_key_as_a_starlette_secret_positionally() -> None:
    """Starlette: ``SessionMiddleware(app, Secret(...))`` (secret_key: str | Secret, positional)."""
    app = SessionMiddleware(Starlette(routes=session_routes()), Secret("from-the-environment"))
    client = TestClient(app)
    assert client.post("/update_session", json={"a": 1}).json() == {"session": {"a": 1}}


# -- test_session: set, read, clear across requests --------------------------------


def test_session() -> None:
    """Starlette: test_session (set, read and clear the session across requests; cookie Max-Age).

    memsession (deliberate differences): the cookie holds a random 43-character
    id, not signed data; its Max-Age is 1.5x max_age (14 days -> 21 days);
    it is not re-sent on responses that do not need it; clearing sends
    an expiring cookie and ends the session on the server.
    """
    client = TestClient(make_app(secret_key="example"))

    response = client.get("/view_session")
    assert response.json() == {"session": {}}
    assert set_cookies(response) == []  # an empty session sends no cookie (as in Starlette)

    response = client.post("/update_session", json={"some": "data"})
    assert response.json() == {"session": {"some": "data"}}
    cookie = the_cookie(response)
    assert ID_SHAPE.match(cookie.value)
    encoded = base64.b64encode(json.dumps({"some": "data"}).encode()).decode()
    assert encoded not in cookie.value and "." not in cookie.value  # no data, no signature
    assert cookie.max_age == TWO_WEEKS * 3 // 2  # Starlette: exactly 14 days
    assert cookie.attrs["path"] == "/"
    assert "httponly" in cookie.attrs
    assert cookie.attrs["samesite"].lower() == "lax"
    assert "secure" not in cookie.attrs  # plain http, no https_only

    response = client.get("/view_session")
    assert response.json() == {"session": {"some": "data"}}
    assert set_cookies(response) == []  # Starlette re-sends the cookie here

    response = client.post("/clear_session")
    assert response.json() == {"session": {}}
    assert the_cookie(response).deletes

    response = client.get("/view_session")
    assert response.json() == {"session": {}}
    assert set_cookies(response) == []

    # the cleared id is dead on the server, even for a client that kept it
    stale = TestClient(make_app(), cookies={"session": cookie.value})
    assert stale.get("/view_session").json() == {"session": {}}


def fastapi_app() -> Any:
    """A FastAPI app migrated from Starlette's sessions: handlers return ``request.session``."""
    fastapi = pytest.importorskip("fastapi")
    app = fastapi.FastAPI()
    app.add_middleware(SessionMiddleware, secret_key="example")

    @app.get("/view_session")
    def view(request: Request):  # type: ignore[no-untyped-def]
        return {"session": request.session}

    @app.post("/update_session")
    async def update(request: Request):  # type: ignore[no-untyped-def]
        request.session.update(await request.json())
        return {"session": request.session}

    @app.post("/clear_session")
    def clear(request: Request):  # type: ignore[no-untyped-def]
        request.session.clear()
        return {"session": request.session}

    @app.get("/typed_view_session")
    def typed_view(request: Request) -> dict[str, Any]:
        return {"session": request.session}

    return app


def test_session_round_trip_on_fastapi() -> None:
    """Starlette: test_session, on a FastAPI app (``app.add_middleware(SessionMiddleware, secret_key=...)``).

    Handlers return ``request.session`` as FastAPI handlers do; FastAPI's
    encoder turns the mapping into JSON. (``Request`` is Starlette's class,
    which FastAPI re-exports: module-level, so the string annotations resolve.)
    """
    from fastapi.testclient import TestClient as FastAPITestClient

    client = FastAPITestClient(fastapi_app())
    assert client.get("/view_session").json() == {"session": {}}
    response = client.post("/update_session", json={"some": "data"})
    assert response.json() == {"session": {"some": "data"}}
    assert ID_SHAPE.match(the_cookie(response).value)
    assert client.get("/view_session").json() == {"session": {"some": "data"}}
    assert the_cookie(client.post("/clear_session")).deletes
    assert client.get("/view_session").json() == {"session": {}}


def test_fastapi_handler_with_a_return_annotation_returns_the_session() -> None:
    """Starlette: test_session's views return the session; on FastAPI with ``-> dict[str, Any]``.

    With a return annotation FastAPI serializes through pydantic, which
    accepts Starlette's session (a dict) but not a Mapping that is not a dict.
    """
    from fastapi.testclient import TestClient as FastAPITestClient

    client = FastAPITestClient(fastapi_app())
    client.post("/update_session", json={"some": "data"})
    assert client.get("/typed_view_session").json() == {"session": {"some": "data"}}


def test_session_is_json_serializable_as_starlettes_dict_is() -> None:
    """Starlette: test_session's own views, ``JSONResponse({"session": request.session})``.

    Starlette's session is a plain dict, so its test views JSON-encode it
    directly; a migrated app doing the same must not crash.
    """

    async def starlette_view(request: Request) -> JSONResponse:
        return JSONResponse({"session": request.session})

    async def starlette_update(request: Request) -> JSONResponse:
        request.session.update(await request.json())
        return JSONResponse({"session": request.session})

    app = Starlette(
        routes=[
            Route("/view_session", starlette_view),
            Route("/update_session", starlette_update, methods=["POST"]),
        ],
        middleware=[Middleware(SessionMiddleware, secret_key="example")],
    )
    client = TestClient(app)
    assert client.get("/view_session").json() == {"session": {}}
    assert client.post("/update_session", json={"some": "data"}).json() == {"session": {"some": "data"}}


def test_session_values_need_not_be_json() -> None:
    """memsession only (deliberate difference): the session stays on the server, so values
    need not be JSON-serializable (Starlette json.dumps the session into the cookie)."""
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

    async def store(request: Request) -> PlainTextResponse:
        request.session["tags"] = {"a", "b"}
        request.session["when"] = when
        return PlainTextResponse("ok")

    async def load(request: Request) -> PlainTextResponse:
        ok = request.session["tags"] == {"a", "b"} and request.session["when"] == when
        return PlainTextResponse(str(ok))

    app = Starlette(
        routes=[Route("/store", store), Route("/load", load)], middleware=[Middleware(SessionMiddleware)]
    )
    client = TestClient(app)
    client.get("/store")
    assert client.get("/load").text == "True"


# -- expiry (max_age) --------------------------------------------------------------


def test_session_expires(clock: FakeClock) -> None:
    """Starlette: test_session_expires (a cookie older than max_age gives an empty session).

    The store runs on a FakeClock given through ``provider=``. memsession's
    max_age is an idle (sliding) lifetime on the server; Starlette re-signs
    its cookie on every response of a non-empty session, which slides too.
    """
    provider = MemoryProvider(clock=clock)
    app = make_app(secret_key="example", max_age=60, provider=provider)
    client = TestClient(app)

    response = client.post("/update_session", json={"some": "data"})
    assert response.json() == {"session": {"some": "data"}}
    sid = the_cookie(response).value

    clock.advance(59)
    assert client.get("/view_session").json() == {"session": {"some": "data"}}  # still alive, slides

    clock.advance(61)
    # as Starlette's test does: hand the expired cookie back explicitly
    expired = TestClient(app, cookies={"session": sid})
    response = expired.get("/view_session")
    assert response.json() == {"session": {}}
    assert sid not in provider

    # a write after expiry gets a fresh id, never the expired one back
    response = expired.post("/update_session", json={"again": 1})
    assert response.json() == {"session": {"again": 1}}
    assert the_cookie(response).value != sid


@pytest.mark.parametrize("max_age", [-1, 0, timedelta(0)])
def test_non_positive_max_age_ends_the_session_with_its_request(max_age: Any) -> None:
    """Starlette: test_session_expires (``max_age=-1``: the cookie is expired at once).

    The session's data is there for the request that wrote it, its response
    expires the cookie, and sending the cookie's value back gives an empty
    session; nothing is ever stored (Starlette's 0 also ends it within a second).
    """
    app = make_app(max_age=max_age)
    with TestClient(app) as client:
        response = client.post("/update_session", json={"some": "data"})
        assert response.json() == {"session": {"some": "data"}}
        header = response.headers["set-cookie"]
        assert re.search(r"session=([^;]*);", header) is not None
        cookie = the_cookie(response)
        assert cookie.attrs.get("max-age") == "0"
    with TestClient(app, cookies={"session": cookie.value}) as client:
        assert client.get("/view_session").json() == {"session": {}}
        assert "set-cookie" not in client.get("/view_session").headers


@pytest.mark.parametrize(
    ("max_age", "cookie_max_age"),
    [(60, 90), (3601, 5402), (timedelta(minutes=10), 900), (TWO_WEEKS, TWO_WEEKS * 3 // 2)],
)
def test_cookie_max_age_is_one_and_a_half_max_age(max_age: Any, cookie_max_age: int) -> None:
    """Starlette: test_session's Max-Age check (Starlette: Max-Age == max_age).

    memsession (deliberate difference): the server ends the session after
    max_age idle seconds; the cookie's Max-Age is 1.5x that (rounded up) so
    it outlives the server session between refreshes. A timedelta is accepted.
    """
    client = TestClient(make_app(max_age=max_age))
    assert the_cookie(client.post("/update_session", json={"a": 1})).max_age == cookie_max_age


def test_session_not_re_set_when_unchanged(clock: FakeClock) -> None:
    """Starlette: its middleware re-sends the cookie on every response of a non-empty session.

    memsession (deliberate difference): the id is sent when the session is
    new, then again only once half of max_age has passed since it was last
    sent (same id, fresh Max-Age); changing the data does not re-send it,
    the data lives on the server.
    """
    provider = MemoryProvider(clock=clock)
    client = TestClient(make_app(max_age=100, provider=provider))

    first = the_cookie(client.post("/update_session", json={"n": 1}))
    clock.advance(10)
    response = client.get("/view_session")
    assert response.json() == {"session": {"n": 1}} and set_cookies(response) == []
    clock.advance(10)
    response = client.post("/update_session", json={"n": 2})
    assert response.json() == {"session": {"n": 2}} and set_cookies(response) == []

    clock.advance(31)  # 51 s since the cookie was sent: past half of max_age
    response = client.get("/view_session")
    assert response.json() == {"session": {"n": 2}}
    refreshed = the_cookie(response)
    assert refreshed.value == first.value and refreshed.max_age == 150
    assert set_cookies(client.get("/view_session")) == []  # not again right away


def test_cleared_session_is_expired_once() -> None:
    """Starlette: the clear step of test_session / test_secure_session (a session emptied by the
    request sends an expiring cookie; an empty one that was empty sends nothing).

    memsession: same outcome, and the server state is destroyed too. The
    expiring cookie carries an empty value and Max-Age=0 (Starlette: "null"
    with an Expires in 1970).
    """
    provider = MemoryProvider()
    client = TestClient(make_app(provider=provider))
    client.post("/update_session", json={"some": "data"})
    assert len(provider) == 1

    gone = the_cookie(client.post("/clear_session"))
    assert gone.deletes and gone.value == ""
    assert len(provider) == 0

    # nothing left to clear: no cookie at all
    assert set_cookies(client.post("/clear_session")) == []
    # a brand-new session written and emptied in one request never reaches the browser
    response = client.post("/write_then_clear")
    assert response.json() == {"session": {}} and set_cookies(response) == []
    assert len(provider) == 0


# -- cookie attributes -------------------------------------------------------------


def test_secure_session() -> None:
    """Starlette: test_secure_session (https_only=True: Secure cookie; a plain-http client
    never sends it back, an https client keeps its session and can clear it)."""
    app = make_app(secret_key="example", https_only=True)
    secure_client = TestClient(app, base_url="https://testserver")
    unsecure_client = TestClient(app, base_url="http://testserver")

    assert unsecure_client.get("/view_session").json() == {"session": {}}
    response = unsecure_client.post("/update_session", json={"some": "data"})
    assert response.json() == {"session": {"some": "data"}}
    assert "secure" in the_cookie(response).attrs
    assert unsecure_client.get("/view_session").json() == {"session": {}}

    assert secure_client.get("/view_session").json() == {"session": {}}
    response = secure_client.post("/update_session", json={"some": "data"})
    assert response.json() == {"session": {"some": "data"}}
    assert "secure" in the_cookie(response).attrs
    assert secure_client.get("/view_session").json() == {"session": {"some": "data"}}
    response = secure_client.post("/clear_session")
    assert response.json() == {"session": {}}
    assert the_cookie(response).deletes
    assert secure_client.get("/view_session").json() == {"session": {}}


def test_https_request_gets_secure_without_https_only() -> None:
    """Starlette: test_secure_session's counterpart without https_only (Starlette: never Secure).

    memsession (deliberate difference): Secure is added automatically on
    https requests; plain http without https_only gets no Secure.
    """
    app = make_app()
    https = TestClient(app, base_url="https://testserver")
    assert "secure" in the_cookie(https.post("/update_session", json={"a": 1})).attrs
    assert https.get("/view_session").json() == {"session": {"a": 1}}
    plain = TestClient(app, base_url="http://testserver")
    assert "secure" not in the_cookie(plain.post("/update_session", json={"a": 1})).attrs


def test_session_cookie_subpath() -> None:
    """Starlette: test_session_cookie_subpath (``path=`` sets the cookie's Path; the app is mounted)."""

    async def cookie_header(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.headers.get("cookie", ""))

    second_app = Starlette(
        routes=[
            Route("/update_session", update_session, methods=["POST"]),
            Route("/view_session", view_session),
        ],
        middleware=[Middleware(SessionMiddleware, secret_key="example", path="/second_app")],
    )
    app = Starlette(routes=[Route("/outside", cookie_header), Mount("/second_app", app=second_app)])
    client = TestClient(app, base_url="http://testserver/second_app")

    response = client.post("/update_session", json={"some": "data"})
    assert response.status_code == 200
    assert the_cookie(response).attrs["path"] == "/second_app"
    assert client.get("/view_session").json() == {"session": {"some": "data"}}
    # the browser keeps the cookie to its path
    assert "session=" not in client.get("http://testserver/outside").text


def test_domain_cookie() -> None:
    """Starlette: test_domain_cookie (``domain=".example.com"`` sets the cookie's Domain).

    memsession (deliberate difference): the leading dot is dropped
    (``Domain=example.com``), which browsers treat the same way.
    """
    app = make_app(secret_key="example", domain=".example.com")
    client = TestClient(app, base_url="http://app.example.com")
    response = client.post("/update_session", json={"some": "data"})
    assert response.json() == {"session": {"some": "data"}}
    assert the_cookie(response).attrs["domain"] == "example.com"
    assert client.get("/view_session").json() == {"session": {"some": "data"}}

    client.cookies.delete("session")
    assert client.get("/view_session").json() == {"session": {}}


def test_browser_session_cookie_when_max_age_is_none(clock: FakeClock) -> None:
    """Starlette: test_session_cookie (``max_age=None``: no Max-Age, a browser-session cookie;
    once the browser drops it the session is gone for that browser).

    memsession (deliberate difference): the server still ends the session
    after two idle weeks (Starlette's signed cookie, with max_age=None,
    never expires on the server side).
    """
    provider = MemoryProvider(clock=clock)
    client = TestClient(make_app(secret_key="example", max_age=None, provider=provider))

    response = client.post("/update_session", json={"some": "data"})
    assert response.json() == {"session": {"some": "data"}}
    cookie = the_cookie(response)
    assert cookie.max_age is None and "expires" not in cookie.attrs
    assert client.get("/view_session").json() == {"session": {"some": "data"}}

    client.cookies.delete("session")
    assert client.get("/view_session").json() == {"session": {}}

    kept = TestClient(make_app(), cookies={"session": cookie.value})
    assert kept.get("/view_session").json() == {"session": {}}  # another app, another store
    keeper = TestClient(client.app, cookies={"session": cookie.value})
    clock.advance(TWO_WEEKS - 1)
    response = keeper.get("/view_session")
    assert response.json() == {"session": {"some": "data"}}
    assert the_cookie(response).max_age is None  # a refresh stays a browser-session cookie
    clock.advance(TWO_WEEKS + 1)
    assert keeper.get("/view_session").json() == {"session": {}}


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, "lax"),
        ({"same_site": "lax"}, "lax"),
        ({"same_site": "strict"}, "strict"),
        ({"same_site": "none"}, "none"),
    ],
)
def test_same_site(options: dict[str, Any], expected: str) -> None:
    """Starlette: the same_site option (default "lax"; checked upstream only through test_session's
    cookie). memsession (deliberate difference): SameSite=None always comes with Secure, as
    browsers require, even on plain http without https_only (Starlette leaves it off)."""
    cookie = the_cookie(TestClient(make_app(**options)).post("/update_session", json={"a": 1}))
    assert cookie.attrs["samesite"].lower() == expected
    assert ("secure" in cookie.attrs) == (expected == "none")


def test_session_cookie_name() -> None:
    """Starlette: the session_cookie option (the cookie's name, default "session")."""
    app = make_app(session_cookie="my_session")
    client = TestClient(app)
    response = client.post("/update_session", json={"a": 1})
    assert [c.name for c in set_cookies(response)] == ["my_session"]
    assert client.get("/view_session").json() == {"session": {"a": 1}}
    # a cookie under another name is not the session
    other = TestClient(app, cookies={"session": client.cookies["my_session"]})
    assert other.get("/view_session").json() == {"session": {}}


# -- bad and hostile cookies ------------------------------------------------------


@pytest.mark.parametrize(
    "bogus",
    [
        "invalid",
        "null",  # what Starlette's cleared cookie holds
        "A" * 43,  # the shape of an id, but never issued
        "eyJzb21lIjogImRhdGEifQ==.Zx1abc.c2lnbmF0dXJl",  # the shape of a Starlette signed cookie
    ],
)
def test_invalid_session_cookie(bogus: str) -> None:
    """Starlette: test_invalid_session_cookie (a bogus cookie gives an empty session, no error).

    memsession (strict mode): the bogus value is never adopted as an id; a
    write afterwards gets a fresh random id.
    """
    app = make_app(secret_key="example")
    assert TestClient(app).post("/update_session", json={"some": "data"}).json() == {
        "session": {"some": "data"}
    }

    client = TestClient(app, cookies={"session": bogus})
    response = client.get("/view_session")
    assert response.status_code == 200
    assert response.json() == {"session": {}}
    response = client.post("/update_session", json={"mine": 1})
    assert response.json() == {"session": {"mine": 1}}
    fresh = the_cookie(response).value
    assert fresh != bogus and ID_SHAPE.match(fresh)


def test_cookie_from_starlettes_middleware_is_ignored_after_migrating() -> None:
    """Starlette: test_invalid_session_cookie, with a real cookie minted by Starlette's own middleware.

    After the import line changes, a browser still holding a Starlette
    session cookie of the same name gets an empty session (it is logged out
    once), never an error.
    """
    pytest.importorskip("itsdangerous")
    from starlette.middleware.sessions import SessionMiddleware as StarletteSessionMiddleware

    before = Starlette(
        routes=session_routes(), middleware=[Middleware(StarletteSessionMiddleware, secret_key="example")]
    )
    old = the_cookie(TestClient(before).post("/update_session", json={"user": "ada"}))
    assert "." in old.value  # signed data

    client = TestClient(make_app(secret_key="example"), cookies={"session": old.value})
    response = client.get("/view_session")
    assert response.status_code == 200 and response.json() == {"session": {}}
    assert the_cookie(client.post("/update_session", json={"user": "ada"})).value != old.value


# -- websockets ---------------------------------------------------------------------


def test_websocket_session() -> None:
    """Starlette: its middleware serves websocket scopes too (``websocket.session``).

    memsession (deliberate difference): a websocket's writes to an existing
    session are kept on the server and seen by the next http request
    (Starlette has no response to carry them, so they are lost).
    """
    client = TestClient(make_app(secret_key="example"))
    client.post("/update_session", json={"some": "data"})
    with client.websocket_connect("/ws") as ws:
        assert ws.receive_json() == {"session": {"some": "data"}}
    assert client.get("/view_session").json() == {"session": {"some": "data", "ws_visits": 1}}


def test_websocket_without_a_session() -> None:
    """Starlette: a websocket without a session cookie sees an empty session."""
    client = TestClient(make_app())
    with client.websocket_connect("/ws") as ws:
        assert ws.receive_json() == {"session": {}}


# -- provider=, and a Manager instead of Starlette's options -------------------------


def test_provider_option_picks_the_store() -> None:
    """memsession only: ``provider=`` (a registered name or a provider) picks the store."""
    shared = MemoryProvider()
    first = TestClient(make_app(provider=shared))
    response = first.post("/update_session", json={"a": 1})
    sid = the_cookie(response).value
    assert sid in shared and len(shared) == 1
    # another middleware over the same store, same cookie name: same sessions
    second = TestClient(make_app(provider=shared), cookies={"session": sid})
    assert second.get("/view_session").json() == {"session": {"a": 1}}
    # the default ("memory") gives every middleware its own store
    assert TestClient(make_app(), cookies={"session": sid}).get("/view_session").json() == {"session": {}}
    assert TestClient(make_app(provider="memory")).post("/update_session", json={"b": 2}).status_code == 200

    with pytest.raises(UnknownProviderError, match="no-such-store"):
        SessionMiddleware(Starlette(), provider="no-such-store")


def test_manager_instead_of_starlette_options(clock: FakeClock) -> None:
    """memsession only: a Manager (positional or manager=) configures everything instead."""
    provider = MemoryProvider(clock=clock)
    with Manager(provider, "sid", 30.0) as manager:
        for app in (
            Starlette(routes=session_routes(), middleware=[Middleware(SessionMiddleware, manager)]),
            Starlette(routes=session_routes(), middleware=[Middleware(SessionMiddleware, manager=manager)]),
        ):
            client = TestClient(app)
            response = client.post("/update_session", json={"a": 1})
            assert the_cookie(response, "sid").max_age == 45
            clock.advance(31)
            assert client.get("/view_session").json() == {"session": {}}


@pytest.mark.parametrize(
    "options",
    [
        {"secret_key": "example"},
        {"session_cookie": "other"},
        {"max_age": 60},
        {"max_age": None},
        {"path": "/app"},
        {"same_site": "strict"},
        {"https_only": True},
        {"domain": "example.com"},
        {"provider": "memory-but-not-really"},
    ],
    ids=lambda options: next(iter(options)),
)
def test_manager_and_starlette_options_cannot_be_mixed(options: dict[str, Any]) -> None:
    """memsession only: a Manager carries its own settings; Starlette options beside it are a TypeError."""
    with Manager() as manager:
        with pytest.raises(TypeError, match="manager"):
            SessionMiddleware(Starlette(), manager, **options)


@pytest.mark.parametrize(
    "options",
    [
        {"session_cookie": "session"},
        {"max_age": TWO_WEEKS},
        {"path": "/"},
        {"same_site": "lax"},
        {"https_only": False},
        {"provider": "memory"},
    ],
    ids=lambda options: next(iter(options)),
)
def test_manager_and_explicit_default_options_cannot_be_mixed(options: dict[str, Any]) -> None:
    """memsession only: an option spelled out beside a Manager is refused even when it equals
    the default (the Manager's own settings, e.g. its cookie name, would silently win)."""
    with Manager() as manager:
        with pytest.raises(TypeError, match="manager"):
            SessionMiddleware(Starlette(), manager=manager, **options)


# -- bad option values ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("max_age", "x", TypeError),
        ("max_age", True, TypeError),
        ("max_age", float("nan"), ValueError),
        ("https_only", "yes", TypeError),
        ("https_only", 1, TypeError),
        ("session_cookie", 123, TypeError),
        ("session_cookie", "", ValueError),
        ("same_site", 1, TypeError),
        ("same_site", "sometimes", ValueError),
        ("path", 5, TypeError),
        ("path", "second_app", ValueError),
        ("domain", 5, TypeError),
        ("domain", "exa mple.com", ValueError),
        ("provider", 42, TypeError),
    ],
)
def test_bad_option_names_the_option(option: str, value: Any, error: type[Exception]) -> None:
    """memsession only: a bad Starlette option is a TypeError/ValueError naming that option
    (as the user spelled it, not the Manager argument it maps to), at construction."""
    with pytest.raises(error) as info:
        SessionMiddleware(Starlette(), **{option: value})
    assert re.search(rf"(?<![\w]){option}(?![\w])", str(info.value)), str(info.value)


def test_not_an_app() -> None:
    """Starlette: the first argument is the ASGI app."""
    with pytest.raises(TypeError, match=r"\bapp\b"):
        SessionMiddleware(42)  # type: ignore[arg-type]


def test_response_without_session_use_is_untouched() -> None:
    """Starlette: a request that never touches the session gets no session headers.

    memsession adds ``Vary: Cookie`` only when the session was used (Starlette never adds it).
    """

    async def plain(request: Request) -> Response:
        return PlainTextResponse("hi")

    app = Starlette(
        routes=[Route("/plain", plain), *session_routes()], middleware=[Middleware(SessionMiddleware)]
    )
    client = TestClient(app)
    client.post("/update_session", json={"a": 1})
    response = client.get("/plain")
    assert set_cookies(response) == [] and "vary" not in response.headers
    assert "cookie" in client.get("/view_session").headers["vary"].lower()


def test_set_cookie_is_laid_out_as_starlettes() -> None:
    """Starlette: test_session_cookie_subpath reads ``; path=(\\S+);`` and test_session ``; Max-Age=``.

    Built from Starlette's options, the header keeps Starlette's layout and
    lower-case attribute names, so tests that match on it keep matching.
    """
    app = Starlette(
        routes=[Mount("/second_app", app=make_app(path="/second_app"))],
    )
    with TestClient(app) as client:
        header = client.post("/second_app/update_session", json={"some": "data"}).headers["set-cookie"]
    path = re.search(r"; path=(\S+);", header)
    assert path is not None and path.group(1) == "/second_app"
    assert re.search(r"; Max-Age=([0-9]+);", header) is not None
    assert header.endswith("; httponly; samesite=lax")


def test_cookie_style_is_checked() -> None:
    with pytest.raises(ValueError, match="cookie_style"):
        Manager(MemoryProvider(), "sid", cookie_style="django")
