"""One small app (inc, peek, login, logout) written for each supported stack."""

from typing import Any, Callable

from memsession import Manager


def wsgi_app(manager: Manager) -> Any:
    from memsession.wsgi import ENVIRON_KEY, SessionMiddleware

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session = environ[ENVIRON_KEY]
        body = handle(manager, session, environ["PATH_INFO"]).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    return SessionMiddleware(app, manager)


def flask_app(manager: Manager) -> Any:
    from flask import Flask, session

    import memsession.flask

    app = Flask(__name__)
    memsession.flask.init_app(app, manager)

    @app.route("/<name>")
    def route(name: str) -> str:
        if name == "login":
            memsession.flask.regenerate_session()
            session["user"] = "ann"
            name = "peek"
        elif name == "logout":
            memsession.flask.destroy_session()
            name = "peek"
        return handle(manager, session, "/" + name)

    return app


def starlette_app(manager: Manager) -> Any:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from memsession.asgi import SessionMiddleware

    async def route(request: Request) -> PlainTextResponse:
        return PlainTextResponse(handle(manager, request.session, request.url.path))

    return Starlette(
        routes=[Route("/{name}", route)],
        middleware=[Middleware(SessionMiddleware, manager=manager)],
    )


def fastapi_app(manager: Manager) -> Any:
    from fastapi import FastAPI, Request
    from fastapi.responses import PlainTextResponse

    from memsession.asgi import SessionMiddleware

    app = FastAPI()
    app.add_middleware(SessionMiddleware, manager=manager)

    @app.get("/{name}", response_class=PlainTextResponse)
    def route(name: str, request: Request) -> str:
        return handle(manager, request.session, "/" + name)

    return app


def handle(manager: Manager, session: Any, path: str) -> str:
    """The shared behaviour: every stack answers the same paths the same way."""
    if path == "/static":
        return "static"  # never touches the session
    if path == "/inc":
        session["n"] = session.get("n", 0) + 1
    elif path == "/login":
        manager.session_regenerate(session)
        session["user"] = "ann"
    elif path == "/logout":
        manager.session_destroy(session)
    elif path == "/clear":
        session.clear()
    elif path == "/boom":
        session["n"] = -1
        raise RuntimeError("app failed")
    return f"n={session.get('n', 0)} user={session.get('user')}"


STACKS: dict[str, tuple[str, Callable[[Manager], Any]]] = {
    "wsgi": ("wsgi", wsgi_app),
    "flask": ("wsgi", flask_app),
    "starlette": ("asgi", starlette_app),
    "fastapi": ("asgi", fastapi_app),
}
