"""ASGI middleware specifics: websockets, other scopes, https, header handling."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from memsession import Manager
from memsession.asgi import SessionMiddleware


@pytest.fixture
def asgi_manager(provider: Any) -> Iterator[Manager]:
    """A Manager for the ASGI tests, cookie named 'sid'."""
    with Manager(provider, "sid", 100) as m:
        yield m


def build(manager: Manager) -> Starlette:
    async def inc(request: Request) -> PlainTextResponse:
        request.session["n"] = request.session.get("n", 0) + 1
        return PlainTextResponse(str(request.session["n"]))

    async def cached(request: Request) -> PlainTextResponse:
        request.session["n"] = 1
        return PlainTextResponse("x", headers={"Vary": "Accept", "Cache-Control": "private"})

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        websocket.session["ws"] = "seen"
        await websocket.send_json({"n": websocket.session.get("n"), "sid": websocket.session.sid})
        await websocket.close()

    async def ws_new(websocket: WebSocket) -> None:
        websocket.session["from"] = "handshake"
        await websocket.accept()
        await websocket.close()

    return Starlette(
        routes=[
            Route("/inc", inc),
            Route("/cached", cached),
            WebSocketRoute("/ws", ws),
            WebSocketRoute("/ws-new", ws_new),
        ],
        middleware=[Middleware(SessionMiddleware, manager=manager)],
    )


def test_websocket_sees_the_http_session(asgi_manager: Manager, provider: Any) -> None:
    with TestClient(build(asgi_manager)) as client:
        client.get("/inc")
        client.get("/inc")
        with client.websocket_connect("/ws") as ws:
            got = ws.receive_json()
        assert got["n"] == 2 and got["sid"] == client.cookies["sid"]
        assert provider.session_read(got["sid"])["ws"] == "seen"


def test_websocket_handshake_can_start_a_session(asgi_manager: Manager, provider: Any) -> None:
    with TestClient(build(asgi_manager)) as client:
        with client.websocket_connect("/ws-new"):
            pass
        assert len(provider) == 1
        (stored,) = provider.sessions()
        assert stored["from"] == "handshake"


def test_https_scheme_gives_a_secure_cookie(asgi_manager: Manager) -> None:
    with TestClient(build(asgi_manager), base_url="https://testserver") as client:
        cookie = client.get("/inc").headers["set-cookie"]
    assert "; Secure" in cookie


def test_app_headers_are_kept_beside_ours(asgi_manager: Manager) -> None:
    with TestClient(build(asgi_manager)) as client:
        response = client.get("/cached")
    assert response.headers.get_list("vary") == ["Accept, Cookie"]  # extended, never repeated
    # "private" already keeps shared caches away; it is kept as the app set it.
    assert response.headers.get_list("cache-control") == ["private"]


def test_other_scopes_pass_through_untouched(asgi_manager: Manager) -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(dict(scope))
        await send({"type": "lifespan.startup.complete"})

    sent: list[Any] = []

    async def receive() -> dict[str, str]:
        return {"type": "lifespan.startup"}

    async def send(message: Any) -> None:
        sent.append(message)

    middleware = SessionMiddleware(app, asgi_manager)
    asyncio.run(middleware({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
    assert seen == [{"type": "lifespan", "asgi": {"version": "3.0"}}]
    assert sent == [{"type": "lifespan.startup.complete"}]


def test_split_cookie_headers_are_joined(asgi_manager: Manager) -> None:
    s = asgi_manager.session_start(None)
    s["n"] = 5
    sid = asgi_manager.session_cookie(s).split(";")[0][4:]  # type: ignore[union-attr]
    got: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        got.append(scope["session"])

    headers = [(b"cookie", b"a=1"), (b"cookie", f"sid={sid}".encode()), (b"cookie", b"b=2")]
    asyncio.run(SessionMiddleware(app, asgi_manager)({"type": "http", "headers": headers}, None, None))  # type: ignore[arg-type]
    assert got[0].sid == s.sid


def test_non_latin1_safe_bytes_in_cookies_never_crash(asgi_manager: Manager) -> None:
    got: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        got.append(scope["session"])

    headers = [(b"cookie", b"sid=\xff\xfe\x00\x80; sid=" + b"\xc3\xa9" * 30)]
    asyncio.run(SessionMiddleware(app, asgi_manager)({"type": "http", "headers": headers}, None, None))  # type: ignore[arg-type]
    assert len(got[0]) == 0 and got[0].new


def test_middleware_arguments_are_checked(asgi_manager: Manager) -> None:
    with pytest.raises(TypeError, match="app"):
        SessionMiddleware(42, asgi_manager)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="manager must be a memsession Manager"):
        SessionMiddleware(build(asgi_manager), 42)  # type: ignore[arg-type]


def test_a_manager_subclass_keeps_its_own_session_start_and_session_cookie(provider: Any) -> None:
    calls: list[str] = []

    class Audited(Manager):
        def session_start(self, cookie_header: Any, *, https: bool = False) -> Any:
            calls.append("start")
            return super().session_start(cookie_header, https=https)

        def session_cookie(self, session: Any, *, https: bool = False) -> Any:
            calls.append("cookie")
            return super().session_cookie(session, https=https)

    with Audited(provider, "sid", 100) as manager, TestClient(build(manager)) as client:
        assert [client.get("/inc").text for _ in range(3)] == ["1", "2", "3"]
    assert calls == ["start", "cookie"] * 3
