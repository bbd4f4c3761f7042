"""Request-path benchmarks: each middleware on a minimal app that reads and writes one key."""

from __future__ import annotations

import asyncio
import io
from typing import Any, Callable, Optional

from .runner import Candidate, Group

Run = Callable[[], object]


def _asgi_app(scope: Any, receive: Any, send: Any) -> Any:
    """The ASGI app under test: count in the session, answer "ok"."""

    async def app() -> None:
        session = scope["session"]
        session["n"] = session.get("n", 0) + 1
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    return app()


class CookieClient:
    """An in-process ASGI client of GET /, keeping the session cookie as a browser does."""

    def __init__(self) -> None:
        self.cookie: Optional[bytes] = None

    def scope(self) -> dict[str, Any]:
        """The next request's scope, carrying the cookie kept so far."""
        headers = [(b"host", b"bench")]
        if self.cookie is not None:
            headers.append((b"cookie", self.cookie))
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/",
            "raw_path": b"/",
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "server": ("127.0.0.1", 80),
            "client": ("127.0.0.1", 5000),
        }

    async def receive(self) -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            for name, value in message["headers"]:
                if name == b"set-cookie":
                    self.cookie = value.split(b";", 1)[0]


def _asgi_driver(middleware: Any, requests: int) -> Run:
    """A client that keeps the cookie, calling the middleware in-process."""
    client = CookieClient()

    async def many() -> None:
        for _ in range(requests):
            await middleware(client.scope(), client.receive, client.send)

    loop = asyncio.new_event_loop()

    def run() -> None:
        try:
            loop.run_until_complete(many())
        finally:
            loop.close()  # each prepared run is used once

    return run


def asgi_group(requests: int) -> Group:
    """memsession's ASGI middleware against Starlette's SessionMiddleware."""
    from memsession import Manager, MemoryProvider
    from memsession.asgi import SessionMiddleware

    def ours() -> Run:
        manager = Manager(MemoryProvider(), "sid", 1800.0)
        return _asgi_driver(SessionMiddleware(_asgi_app, manager), requests)

    cands = [Candidate("memsession asgi", ours)]
    starlette = _optional("starlette.middleware.sessions")
    if starlette is not None:

        def theirs() -> Run:
            return _asgi_driver(starlette.SessionMiddleware(_asgi_app, secret_key="k" * 32), requests)

        cands.append(Candidate("starlette SessionMiddleware", theirs))
    return Group("asgi", "ASGI request, one session key read and written", cands, requests)


def _wsgi_app(key: str, save: bool) -> Any:
    """The WSGI app under test, finding its session under environ[key] (save(): Beaker's way)."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session = environ[key]
        session["n"] = session.get("n", 0) + 1
        if save:
            session.save()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]

    return app


def _wsgi_driver(app: Any, requests: int) -> Run:
    """A client that keeps the cookie, calling the WSGI app in-process."""
    jar: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        for name, value in headers:
            if name.lower() == "set-cookie":
                jar[:] = [value.split(";", 1)[0]]

    def run() -> None:
        for _ in range(requests):
            environ = {
                "REQUEST_METHOD": "GET",
                "PATH_INFO": "/",
                "SCRIPT_NAME": "",
                "QUERY_STRING": "",
                "SERVER_NAME": "bench",
                "SERVER_PORT": "80",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "wsgi.url_scheme": "http",
                "wsgi.input": io.BytesIO(),
                "wsgi.errors": io.StringIO(),
            }
            if jar:
                environ["HTTP_COOKIE"] = jar[0]
            for _chunk in app(environ, start_response):
                pass

    return run


def wsgi_group(requests: int) -> Group:
    """memsession's WSGI middleware against Beaker's with its memory backend."""
    from memsession import Manager, MemoryProvider
    from memsession.wsgi import SessionMiddleware

    def ours() -> Run:
        manager = Manager(MemoryProvider(), "sid", 1800.0)
        return _wsgi_driver(SessionMiddleware(_wsgi_app("memsession.session", False), manager), requests)

    cands = [Candidate("memsession wsgi", ours)]
    beaker = _optional("beaker.middleware")
    if beaker is not None:

        def theirs() -> Run:
            options = {"session.type": "memory", "session.auto": False, "session.key": "sid"}
            return _wsgi_driver(
                beaker.SessionMiddleware(_wsgi_app("beaker.session", True), options), requests
            )

        cands.append(Candidate("beaker SessionMiddleware (memory)", theirs))
    return Group("wsgi", "WSGI request, one session key read and written", cands, requests)


def flask_group(requests: int) -> Group:
    """Flask with memsession against Flask with Flask-Session's cachelib backend."""
    flask = _optional("flask")
    if flask is None:
        return Group("flask", "Flask request (flask not installed)", [], requests)
    from memsession import Manager, MemoryProvider
    from memsession import flask as memsession_flask

    def build(configure: Callable[[Any], object]) -> Any:
        app = flask.Flask("bench")
        configure(app)

        @app.route("/")  # type: ignore[untyped-decorator]
        def index() -> str:
            flask.session["n"] = flask.session.get("n", 0) + 1
            return "ok"

        return app

    def ours() -> Run:
        manager = Manager(MemoryProvider(), "sid", 1800.0)
        return _wsgi_driver(build(lambda app: memsession_flask.init_app(app, manager)), requests)

    cands = [Candidate("flask + memsession", ours)]
    flask_session = _optional("flask_session")
    cachelib = _optional("cachelib")
    if flask_session is not None and cachelib is not None:

        def configure(app: Any) -> None:
            app.config.update(SESSION_TYPE="cachelib", SESSION_CACHELIB=cachelib.SimpleCache(threshold=10**6))
            flask_session.Session(app)

        def theirs() -> Run:
            return _wsgi_driver(build(configure), requests)

        cands.append(Candidate("flask + Flask-Session (cachelib)", theirs))
    return Group("flask", "Flask request, one session key read and written", cands, requests)


def _optional(module: str) -> Optional[Any]:
    """The module, or None when it is not installed."""
    try:
        import importlib

        return importlib.import_module(module)
    except ImportError:
        return None
