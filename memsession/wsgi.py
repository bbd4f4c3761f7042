"""WSGI middleware: a session per request at environ["memsession.session"]."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional

from .cookies import CACHE_HEADERS
from .manager import Manager

__all__ = ["ENVIRON_KEY", "SessionMiddleware"]

ENVIRON_KEY = "memsession.session"

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class SessionMiddleware:
    """Wraps a WSGI app; the session cookie is set only when the Manager says so."""

    def __init__(self, app: WSGIApp, manager: Manager) -> None:
        if not callable(app):
            raise TypeError(f"app must be a WSGI callable, not {type(app).__name__}")
        if not isinstance(manager, Manager):
            raise TypeError(f"manager must be a memsession Manager, not {type(manager).__name__}")
        self.app = app
        self.manager = manager

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        manager = self.manager
        https = environ.get("wsgi.url_scheme") == "https"
        session = manager.session_start(environ.get("HTTP_COOKIE"), https=https)
        environ[ENVIRON_KEY] = session

        def session_start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Optional[Any] = None
        ) -> Any:
            cookie = manager.session_cookie(session, https=https)
            if cookie is not None:
                headers = [*headers, ("Set-Cookie", cookie), *CACHE_HEADERS]
            return start_response(status, headers, exc_info)

        return self.app(environ, session_start_response)
