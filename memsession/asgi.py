"""ASGI middleware: scope["session"] for http and websocket, as Starlette's is."""

from __future__ import annotations

from collections.abc import Awaitable, MutableMapping
from typing import Any, Callable

from .cookies import session_headers
from .errors import UNAVAILABLE_BODY, UNAVAILABLE_HEADERS, ProviderUnavailableError
from .manager import Manager

__all__ = ["SessionMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The messages that carry a response's headers.
_STARTS = frozenset(("http.response.start", "websocket.accept", "websocket.http.response.start"))
_UNAVAILABLE_START = {
    "type": "http.response.start",
    "status": 503,
    "headers": [(k.lower().encode(), v.encode()) for k, v in UNAVAILABLE_HEADERS],
}
_WS_TRY_AGAIN_LATER = 1013


class SessionMiddleware:
    """Wraps an ASGI app; the session cookie is set only when the Manager says so.

    When the provider is unavailable an http request gets 503 Service
    Unavailable and a websocket is closed with code 1013 (try again later).
    """

    def __init__(self, app: ASGIApp, manager: Manager) -> None:
        if not callable(app):
            raise TypeError(f"app must be an ASGI callable, not {type(app).__name__}")
        if not isinstance(manager, Manager):
            raise TypeError(f"manager must be a memsession Manager, not {type(manager).__name__}")
        self.app = app
        self.manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        manager = self.manager
        https = scope.get("scheme") in ("https", "wss")
        cookies = [value for name, value in scope.get("headers", ()) if name == b"cookie"]
        # HTTP/2 may split the Cookie header; join the parts as HTTP/1.1 would.
        header = b"; ".join(cookies).decode("latin-1") if cookies else None
        try:
            session = manager.session_start(header, https=https)
        except ProviderUnavailableError:
            await _refuse(kind, send)
            return
        scope["session"] = session
        failed = False
        started = False

        async def send_with_cookie(message: Message) -> None:
            nonlocal failed, started
            if failed:
                # The app's response is replaced: its body ends where ours is sent.
                if message["type"].endswith("response.body") and not message.get("more_body", False):
                    await send({"type": message["type"], "body": UNAVAILABLE_BODY})
                return
            if message["type"] in _STARTS:
                started = True
                try:
                    cookie = manager.session_cookie(session, https=https)
                except ProviderUnavailableError:
                    failed = True
                    if message["type"] == "websocket.accept":
                        await send({"type": "websocket.close", "code": _WS_TRY_AGAIN_LATER})
                    else:
                        await send({**_UNAVAILABLE_START, "type": message["type"]})
                    return
                if cookie is not None or session.accessed:
                    message = {**message, "headers": _with_session(message.get("headers", ()), cookie, True)}
            await send(message)

        try:
            await self.app(scope, receive, send_with_cookie)
        except ProviderUnavailableError:
            if started:
                raise  # the response is under way: the server must abort it
            await _refuse(kind, send)


def _with_session(raw: Any, cookie: Any, accessed: bool) -> list[tuple[bytes, bytes]]:
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw]
    return [
        (k.lower().encode("latin-1"), v.encode("latin-1"))
        for k, v in session_headers(headers, cookie, accessed)
    ]


async def _refuse(kind: str, send: Send) -> None:
    """Answer 503 (http) or close with 1013 (websocket): the store is unreachable."""
    if kind == "websocket":
        await send({"type": "websocket.close", "code": _WS_TRY_AGAIN_LATER})
        return
    await send(dict(_UNAVAILABLE_START))
    await send({"type": "http.response.body", "body": UNAVAILABLE_BODY})
