"""WSGI middleware: a session per request at environ["memsession.session"]."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Optional

from .cookies import CACHE_HEADERS
from .errors import ProviderUnavailableError
from .manager import Manager

__all__ = ["ENVIRON_KEY", "SessionMiddleware"]

ENVIRON_KEY = "memsession.session"

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_UNAVAILABLE = b"session store unavailable, try again shortly\n"
_UNAVAILABLE_HEADERS = [
    ("Content-Type", "text/plain; charset=utf-8"),
    ("Content-Length", str(len(_UNAVAILABLE))),
    ("Retry-After", "1"),
    ("Cache-Control", "no-store"),
]


class SessionMiddleware:
    """Wraps a WSGI app; the session cookie is set only when the Manager says so.

    When the provider is unavailable the request gets 503 Service Unavailable.
    """

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
        try:
            session = manager.session_start(environ.get("HTTP_COOKIE"), https=https)
        except ProviderUnavailableError:
            start_response("503 Service Unavailable", _UNAVAILABLE_HEADERS)
            return [_UNAVAILABLE]
        environ[ENVIRON_KEY] = session
        failed: list[bool] = []
        started: list[bool] = []

        def session_start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Optional[Any] = None
        ) -> Any:
            started.append(True)
            try:
                cookie = manager.session_cookie(session, https=https)
            except ProviderUnavailableError:
                failed.append(True)
                return start_response("503 Service Unavailable", _UNAVAILABLE_HEADERS, exc_info)
            if cookie is not None:
                headers = [*headers, ("Set-Cookie", cookie), *CACHE_HEADERS]
            return start_response(status, headers, exc_info)

        result = self.app(environ, session_start_response)
        if failed:
            _close(result)
            return [_UNAVAILABLE]
        if not started:  # the app starts its response while its body is iterated
            return _replace_if_failed(result, failed)
        return result


def _close(result: Iterable[bytes]) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()


def _replace_if_failed(result: Iterable[bytes], failed: list[bool]) -> Iterator[bytes]:
    """The app's body, or the 503 body once saving the session failed."""
    try:
        for chunk in result:
            if failed:
                yield _UNAVAILABLE
                return
            yield chunk
    finally:
        _close(result)
