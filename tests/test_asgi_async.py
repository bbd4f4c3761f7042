"""The ASGI middleware over AsyncRedisProvider: Starlette's TestClient and a real uvicorn.

The store is a real redis-server; connections are counted on the server
(CLIENT LIST, by a client_name each provider gets), never in the provider.
"""

from __future__ import annotations

import gc
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Optional

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from memsession import Manager, MemoryProvider
from memsession.asgi import SessionMiddleware
from memsession.testing import FakeClock, find_set_cookie

from .redis_server import eventually

redis_py = pytest.importorskip("redis")
from memsession.redis import AsyncRedisProvider  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:uvicorn")

COOKIE = "sid"


@pytest.fixture
def server(running_redis: Any) -> Any:
    """The shared redis-server, running (tests here stop and start it)."""
    return running_redis


class Store:
    """An AsyncRedisProvider whose connections the server can count, and a sync client to look."""

    def __init__(self, server: Any, clock: FakeClock) -> None:
        self.name = f"ms-asgi-{uuid.uuid4().hex[:12]}"
        self.prefix = f"asgi-{uuid.uuid4().hex[:8]}:"
        self.peek = redis_py.Redis.from_url(server.url)
        self.provider = AsyncRedisProvider(
            f"{server.url}?client_name={self.name}", prefix=self.prefix, clock=clock, timeout=2.0
        )

    def connections(self) -> int:
        return sum(1 for c in self.peek.client_list() if c.get("name") == self.name)

    def data(self, sid: str) -> Optional[dict[str, bytes]]:
        """The data fields stored for sid (values as JSON bytes), None when there is no session."""
        fields = self.peek.hgetall(self.prefix + sid)
        if not fields:
            return None
        return {k.decode()[2:]: v for k, v in fields.items() if k.startswith(b"d:")}


@pytest.fixture
def store(server: Any, clock: FakeClock) -> Iterator[Store]:
    s = Store(server, clock)
    yield s
    s.peek.close()


@pytest.fixture
def manager(store: Store) -> Manager:
    return Manager(store.provider, COOKIE, 100)


def build(manager: Manager, server: Any = None) -> Starlette:
    """/inc counts; /login and /login-now regenerate; /logout destroys; /stop-then-write stops Redis."""

    async def inc(request: Request) -> PlainTextResponse:
        request.session["n"] = request.session.get("n", 0) + 1
        return PlainTextResponse(str(request.session["n"]))

    async def whoami(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.session.get("user", "anonymous"))

    async def login(request: Request) -> PlainTextResponse:
        manager.session_regenerate(request.session)  # sync, as an app calls it
        request.session["user"] = request.query_params["user"]
        return PlainTextResponse("in")

    async def login_now(request: Request) -> PlainTextResponse:
        await manager.asession_regenerate(request.session)
        request.session["user"] = request.query_params["user"]
        return PlainTextResponse("in")

    async def logout(request: Request) -> PlainTextResponse:
        manager.session_destroy(request.session)
        return PlainTextResponse("out")

    async def stop_then_write(request: Request) -> PlainTextResponse:
        request.session.get("n")
        server.stop()  # the session was read; its write is sent as the response starts
        request.session["n"] = 99
        return PlainTextResponse("written")

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        websocket.session["ws"] = "seen"  # after accept: the cookie went already
        await websocket.send_json({"n": websocket.session.get("n"), "sid": websocket.session.sid})  # type: ignore[attr-defined]
        await websocket.close()

    async def ws_stop(websocket: WebSocket) -> None:
        websocket.session["from"] = "handshake"
        server.stop()
        await websocket.accept()
        await websocket.close()

    return Starlette(
        routes=[
            Route("/inc", inc),
            Route("/whoami", whoami),
            Route("/login", login),
            Route("/login-now", login_now),
            Route("/logout", logout),
            Route("/stop-then-write", stop_then_write),
            WebSocketRoute("/ws", ws),
            WebSocketRoute("/ws-stop", ws_stop),
        ],
        middleware=[Middleware(SessionMiddleware, manager=manager)],
    )


def holding(client: TestClient, sid: str) -> TestClient:
    """client, its cookie jar now holding only the session cookie sid (as another browser tab)."""
    client.cookies.clear()
    client.cookies.set(COOKIE, sid)
    return client


def sid_of(response: Any) -> Optional[str]:
    found = find_set_cookie(response.headers.get_list("set-cookie"), COOKIE)
    return None if found is None else found.value


def test_the_counter_climbs(manager: Manager, store: Store) -> None:
    assert manager.is_async
    with TestClient(build(manager)) as client:
        assert [client.get("/inc").text for _ in range(3)] == ["1", "2", "3"]
        sid = client.cookies[COOKIE]
        assert store.data(sid) == {"n": b"3"}


def test_the_counter_climbs_without_lifespan(manager: Manager, store: Store) -> None:
    # Without a with-block TestClient runs each request in an event loop of its
    # own, and never runs the lifespan: every loop's connection must still go.
    client = TestClient(build(manager))
    assert [client.get("/inc").text for _ in range(3)] == ["1", "2", "3"]
    gc.collect()
    eventually(lambda: store.connections() == 0, "no loop's connection is left open")


def test_a_request_that_writes_nothing_stores_nothing(manager: Manager, store: Store) -> None:
    with TestClient(build(manager)) as client:
        response = client.get("/whoami")
        assert response.text == "anonymous" and sid_of(response) is None
        assert store.peek.keys(store.prefix + "*") == []


@pytest.mark.parametrize("path", ["/login", "/login-now"])
def test_login_regenerates_and_logout_destroys(manager: Manager, store: Store, path: str) -> None:
    with TestClient(build(manager)) as client:
        client.get("/inc")
        before = client.cookies[COOKIE]
        response = client.get(path, params={"user": "ann"})
        after = sid_of(response)
        assert after is not None and after != before
        assert store.data(before) is None  # the old id is dead
        assert store.data(after) == {"n": b"1", "user": b'"ann"'}
        assert client.get("/whoami").text == "ann"

        # A request still holding the old id gets a fresh session, never the new id.
        stale = holding(client, before).get("/inc")
        assert stale.text == "1" and sid_of(stale) not in (before, after)
        holding(client, after)

        response = client.get("/logout")
        cookie = find_set_cookie(response.headers.get_list("set-cookie"), COOKIE)
        assert cookie is not None and cookie.deletes
        assert store.data(after) is None
        assert holding(client, after).get("/whoami").text == "anonymous"


def test_a_websocket_write_after_accept_is_flushed_when_the_handler_ends(
    manager: Manager, store: Store
) -> None:
    with TestClient(build(manager)) as client:
        client.get("/inc")
        with client.websocket_connect("/ws") as ws:
            got = ws.receive_json()
        assert got == {"n": 1, "sid": client.cookies[COOKIE]}
        assert store.data(got["sid"]) == {"n": b"1", "ws": b'"seen"'}


def test_redis_stopped_is_a_503_with_retry_after(manager: Manager, store: Store, server: Any) -> None:
    with TestClient(build(manager, server)) as client:
        client.get("/inc")
        sid = client.cookies[COOKIE]
        server.stop()
        response = client.get("/inc")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert "unavailable" in response.text
        assert response.headers.get_list("set-cookie") == []  # neither a new session nor a logout
        server.start()  # back, empty
        response = holding(client, sid).get("/inc")
        assert response.text == "1" and sid_of(response) not in (None, sid)


def test_redis_stopped_inside_the_view_is_a_503(manager: Manager, store: Store, server: Any) -> None:
    # The write is sent as the response starts, so the failure comes from flush().
    with TestClient(build(manager, server)) as client:
        client.get("/inc")
        response = client.get("/stop-then-write")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert response.headers.get_list("set-cookie") == []
        server.start()
        assert client.get("/inc").text == "1"
    gc.collect()


def test_redis_stopped_closes_a_websocket_with_1013(manager: Manager, store: Store, server: Any) -> None:
    with TestClient(build(manager, server)) as client:
        client.get("/inc")
        server.stop()
        with pytest.raises(WebSocketDisconnect) as closed:
            with client.websocket_connect("/ws"):
                pass
        assert closed.value.code == 1013
        server.start()
        with client.websocket_connect("/ws") as ws:  # the store is back: a fresh session
            assert ws.receive_json()["n"] is None


def test_redis_stopped_before_accept_closes_a_websocket_with_1013(
    manager: Manager, store: Store, server: Any
) -> None:
    # The handshake wrote the session: storing it (as accept goes out) fails.
    with TestClient(build(manager, server)) as client:
        with pytest.raises(WebSocketDisconnect) as closed:
            with client.websocket_connect("/ws-stop"):
                pass
        assert closed.value.code == 1013


def test_lifespan_shutdown_closes_the_providers_connections(manager: Manager, store: Store) -> None:
    with TestClient(build(manager)) as client:
        client.get("/inc")
        client.get("/inc")
        assert store.connections() == 1  # one loop, one connection, reused
    eventually(lambda: store.connections() == 0, "lifespan.shutdown closed the connection")


def test_the_memory_provider_path_is_unchanged(clock: FakeClock) -> None:
    provider = MemoryProvider(clock=clock)
    manager = Manager(provider, COOKIE, 100)
    assert not manager.is_async
    with TestClient(build(manager)) as client:
        assert [client.get("/inc").text for _ in range(3)] == ["1", "2", "3"]
        before = client.cookies[COOKIE]
        with client.websocket_connect("/ws") as ws:
            assert ws.receive_json() == {"n": 3, "sid": before}
        assert provider.session_read(before) == {"n": 3, "ws": "seen"}
        after = sid_of(client.get("/login", params={"user": "ann"}))
        assert after not in (None, before) and before not in provider
        assert client.get("/whoami").text == "ann"
        response = client.get("/logout")
        assert find_set_cookie(response.headers.get_list("set-cookie"), COOKIE).deletes  # type: ignore[union-attr]
        assert after not in provider and len(provider) == 0


# -- a real server --------------------------------------------------------------


@contextmanager
def serving_uvicorn(app: Any) -> Iterator[str]:
    """Serve app with uvicorn in a thread, lifespan on (so its shutdown runs); yield the base URL."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", lifespan="on", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)  # waiting for a real server to listen
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        assert not thread.is_alive(), "uvicorn did not stop"


def fetch(base: str, path: str, sid: Optional[str] = None) -> tuple[int, str, Optional[str]]:
    headers = {"Cookie": f"{COOKIE}={sid}"} if sid else {}
    req = urllib.request.Request(base + path, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            found = find_set_cookie(resp.headers.get_all("Set-Cookie") or [], COOKIE)
            return resp.status, resp.read().decode(), None if found is None else found.value
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(), None


def test_under_uvicorn_the_counter_climbs_and_shutdown_closes(manager: Manager, store: Store) -> None:
    with serving_uvicorn(build(manager)) as base:
        status, body, sid = fetch(base, "/inc")
        assert (status, body) == (200, "1") and sid is not None
        assert [fetch(base, "/inc", sid)[:2] for _ in range(2)] == [(200, "2"), (200, "3")]
        assert store.data(sid) == {"n": b"3"}
        assert store.connections() >= 1
    eventually(lambda: store.connections() == 0, "uvicorn's lifespan shutdown closed the connections")
