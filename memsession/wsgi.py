"""WSGI middleware: a session per request at environ["memsession.session"]."""

from __future__ import annotations

import sys
from typing import Any, Callable, Iterable, Iterator, Optional

from .cookies import session_headers
from .errors import UNAVAILABLE_BODY, UNAVAILABLE_HEADERS, ProviderUnavailableError
from .manager import Manager
from .session import RequestSession

__all__ = ["ENVIRON_KEY", "SessionMiddleware"]

ENVIRON_KEY = "memsession.session"

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_UNAVAILABLE_STATUS = "503 Service Unavailable"


class SessionMiddleware:
    """Wraps a WSGI app; the session cookie is set only when the Manager says so.

    When the provider is unavailable, at the start of the request, inside the
    app or when the session is saved, the request gets 503 Service Unavailable.
    """

    def __init__(self, app: WSGIApp, manager: Manager) -> None:
        if not callable(app):
            raise TypeError(f"app must be a WSGI callable, not {type(app).__name__}")
        if not isinstance(manager, Manager):
            raise TypeError(f"manager must be a memsession Manager, not {type(manager).__name__}")
        self.app = app
        self.manager = manager

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        https = environ.get("wsgi.url_scheme") == "https"
        try:
            session = self.manager.session_start(environ.get("HTTP_COOKIE"), https=https)
        except ProviderUnavailableError:
            start_response(_UNAVAILABLE_STATUS, list(UNAVAILABLE_HEADERS))
            return [UNAVAILABLE_BODY]
        environ[ENVIRON_KEY] = session
        response = _Response(self.manager, session, https, start_response)
        try:
            result = self.app(environ, response.start)
        except ProviderUnavailableError:
            start_response(_UNAVAILABLE_STATUS, list(UNAVAILABLE_HEADERS), sys.exc_info())
            return [UNAVAILABLE_BODY]
        if response.failed:
            _close(result)
            return [UNAVAILABLE_BODY]
        if not response.started:  # the app starts its response while its body is iterated
            return response.body(result)
        return result


class _Response:
    """One request's start_response, adding the session's headers."""

    __slots__ = ("manager", "session", "https", "start_response", "started", "failed")

    def __init__(
        self, manager: Manager, session: RequestSession, https: bool, start_response: StartResponse
    ) -> None:
        self.manager = manager
        self.session = session
        self.https = https
        self.start_response = start_response
        self.started = self.failed = False

    def start(self, status: str, headers: list[tuple[str, str]], exc_info: Optional[Any] = None) -> Any:
        self.started = True
        try:
            cookie = self.manager.session_cookie(self.session, https=self.https)
        except ProviderUnavailableError:
            self.failed = True
            return self.start_response(_UNAVAILABLE_STATUS, list(UNAVAILABLE_HEADERS), sys.exc_info())
        headers = session_headers(headers, cookie, self.session.accessed)
        return self.start_response(status, headers, exc_info)

    def body(self, result: Iterable[bytes]) -> Iterator[bytes]:
        """The app's body, or the 503 body once the store failed."""
        sent = False
        try:
            try:
                for chunk in result:
                    if self.failed:
                        yield UNAVAILABLE_BODY
                        return
                    sent = True
                    yield chunk
            except ProviderUnavailableError:
                if sent:
                    raise  # the response is under way: the server must abort it
                if self.failed:
                    yield UNAVAILABLE_BODY
                    return
                # Nothing was sent yet: the server takes the new start.
                self.failed = True
                self.start_response(_UNAVAILABLE_STATUS, list(UNAVAILABLE_HEADERS), sys.exc_info())
                yield UNAVAILABLE_BODY
        finally:
            _close(result)


def _close(result: Iterable[bytes]) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()
