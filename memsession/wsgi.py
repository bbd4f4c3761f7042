"""WSGI middleware: a session per request at environ["memsession.session"]."""

from __future__ import annotations

import sys
from typing import Any, Callable, Iterable, Iterator, Optional

from ._impl import RequestSession
from .cookies import session_headers
from .errors import UNAVAILABLE_BODY, UNAVAILABLE_HEADERS, ProviderUnavailableError
from .manager import Manager

__all__ = ["ENVIRON_KEY", "SessionMiddleware"]

ENVIRON_KEY = "memsession.session"

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_UNAVAILABLE_STATUS = "503 Service Unavailable"


class SessionMiddleware:
    """Wraps a WSGI app; the session cookie is set only when the Manager says so.

    The app's start_response reaches the server only when its body does, so
    a session read while the body is produced still gets Vary: Cookie. When
    the provider is unavailable, at the start of the request, inside the app
    or when the session is saved, the request gets 503 Service Unavailable.
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
            return response.unavailable(sys.exc_info())
        if type(result) is list or type(result) is tuple:
            return response.finish(result)  # the body is made: the session's use is final
        return response.body(result)


class _Response:
    """One request's start_response: held back until the body goes out, then with the session's headers."""

    __slots__ = ("manager", "session", "https", "start_response", "pending", "sent", "failed", "server_write")

    def __init__(
        self, manager: Manager, session: RequestSession, https: bool, start_response: StartResponse
    ) -> None:
        self.manager = manager
        self.session = session
        self.https = https
        self.start_response = start_response
        self.pending: Optional[tuple[str, list[tuple[str, str]], Any]] = None
        self.sent = self.failed = False
        self.server_write: Optional[Callable[[bytes], Any]] = None

    def start(self, status: str, headers: list[tuple[str, str]], exc_info: Optional[Any] = None) -> Any:
        if exc_info is not None and self.sent:
            raise exc_info[1].with_traceback(exc_info[2])  # too late to replace (PEP 3333)
        self.pending = (status, headers, exc_info)
        return self.write

    def write(self, data: bytes) -> None:
        """The legacy write callable: it sends the headers first."""
        self.send()
        if self.server_write is not None and not self.failed:
            self.server_write(data)

    def send(self) -> None:
        """Hand the server the status and headers, now with the session's."""
        if self.sent or self.pending is None:
            return
        status, headers, exc_info = self.pending
        self.sent = True
        try:
            cookie = self.manager.session_cookie(self.session, https=self.https)
        except ProviderUnavailableError:
            self.failed = True
            self.start_response(_UNAVAILABLE_STATUS, list(UNAVAILABLE_HEADERS), sys.exc_info())
            return
        headers = session_headers(headers, cookie, self.session.accessed)
        self.server_write = self.start_response(status, headers, exc_info)

    def unavailable(self, exc_info: Any) -> list[bytes]:
        """503 for a store failure before anything went out."""
        self.failed = self.sent = True
        self.start_response(_UNAVAILABLE_STATUS, list(UNAVAILABLE_HEADERS), exc_info)
        return [UNAVAILABLE_BODY]

    def finish(self, result: Iterable[bytes]) -> Iterable[bytes]:
        self.send()
        if self.failed:
            _close(result)
            return [UNAVAILABLE_BODY]
        return result

    def body(self, result: Iterable[bytes]) -> Iterator[bytes]:
        """The app's body, its headers sent before its first chunk; the 503 body once the store failed."""
        try:
            try:
                for chunk in result:
                    self.send()
                    if self.failed:
                        yield UNAVAILABLE_BODY
                        return
                    yield chunk
                self.send()
                if self.failed:
                    yield UNAVAILABLE_BODY
            except ProviderUnavailableError:
                if self.sent and not self.failed:
                    raise  # the response is under way: the server must abort it
                if not self.failed:
                    self.unavailable(sys.exc_info())
                yield UNAVAILABLE_BODY
        finally:
            _close(result)


def _close(result: Iterable[bytes]) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()
