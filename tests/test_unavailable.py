"""A store failure inside the view is a 503 with Retry-After, in WSGI, ASGI and Flask.

The store is a real RedisProvider; the view itself stops the real
redis-server (the `redis_server` fixture) just before it writes the session,
so the failure happens mid-request, after the session was read.
"""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any, Callable, Optional

import pytest

from memsession import Manager
from memsession.testing import find_set_cookie

from .webserver import serving, serving_asgi

pytest.importorskip("redis")
from memsession.redis import RedisProvider  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:uvicorn")

COOKIE = "sid"


def fetch(base: str, path: str, sid: Optional[str] = None) -> tuple[int, Any, str]:
    headers = {"Cookie": f"{COOKIE}={sid}"} if sid else {}
    req = urllib.request.Request(base + path, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read().decode()


@pytest.fixture
def redis_manager(running_redis: Any) -> Iterator[Manager]:
    provider = RedisProvider(running_redis.url, prefix=f"u-{uuid.uuid4().hex[:8]}:", timeout=1.0)
    with Manager(provider, COOKIE, 100) as manager:
        yield manager
    provider.close()


# Each app: /seed stores a session; /write?stop=1 stops Redis, then writes the
# session (the write reaches Redis at once and fails); /peek reads it.


def wsgi_app(manager: Manager, redis: Any) -> Any:
    from urllib.parse import parse_qs

    from memsession.wsgi import ENVIRON_KEY, SessionMiddleware

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session = environ[ENVIRON_KEY]
        path = environ["PATH_INFO"]
        if path == "/seed":
            session["n"] = 1
        elif path == "/write":
            if parse_qs(environ["QUERY_STRING"]).get("stop"):
                redis.stop()
            session["n"] = session.get("n", 0) + 1
        body = f"n={session.get('n')}".encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    return SessionMiddleware(app, manager)


def starlette_app(manager: Manager, redis: Any) -> Any:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from memsession.asgi import SessionMiddleware

    async def view(request: Request) -> PlainTextResponse:
        session = request.session
        name = request.path_params["name"]
        if name == "seed":
            session["n"] = 1
        elif name == "write":
            if request.query_params.get("stop"):
                redis.stop()
            session["n"] = session.get("n", 0) + 1
        return PlainTextResponse(f"n={session.get('n')}")

    return Starlette(
        routes=[Route("/{name}", view)],
        middleware=[Middleware(SessionMiddleware, manager=manager)],
    )


def flask_app(manager: Manager, redis: Any) -> Any:
    from flask import Flask, request, session

    import memsession.flask

    app = Flask(__name__)
    memsession.flask.init_app(app, manager)

    @app.route("/<name>")
    def view(name: str) -> str:
        if name == "seed":
            session["n"] = 1
        elif name == "write":
            if request.args.get("stop"):
                redis.stop()
            session["n"] = session.get("n", 0) + 1
        return f"n={session.get('n')}"

    return app


STACKS: dict[str, tuple[Callable[[Manager, Any], Any], Any]] = {
    "wsgi": (wsgi_app, serving),
    "asgi-starlette": (starlette_app, serving_asgi),
    "flask": (flask_app, serving),
}


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_a_store_failure_inside_the_view_is_a_503_with_retry_after(
    redis_manager: Manager, running_redis: Any, stack: str
) -> None:
    build, serve = STACKS[stack]
    with serve(build(redis_manager, running_redis)) as base:
        status, headers, body = fetch(base, "/seed")
        cookie = find_set_cookie(headers.get_all("Set-Cookie") or [], COOKIE)
        assert (status, body) == (200, "n=1") and cookie is not None
        sid = cookie.value
        assert fetch(base, "/write", sid)[::2] == (200, "n=2")  # the store works

        status, headers, body = fetch(base, "/write?stop=1", sid)  # Redis goes away mid-request
        assert running_redis.proc is None
        assert status == 503, body
        assert headers["Retry-After"] == "1"
        assert "unavailable" in body
        assert headers.get_all("Set-Cookie") is None  # neither a new session nor a logout

        running_redis.start()  # back, empty (no persistence)
        status, headers, body = fetch(base, "/write", sid)
        assert (status, body) == (200, "n=1")  # the dead id gives a fresh session
        fresh = find_set_cookie(headers.get_all("Set-Cookie") or [], COOKIE)
        assert fresh is not None and not fresh.deletes and fresh.value != sid
        assert fetch(base, "/write", fresh.value)[::2] == (200, "n=2")
