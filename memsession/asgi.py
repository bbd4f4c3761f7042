"""ASGI middleware: scope["session"] for http and websocket, as Starlette's is."""

from __future__ import annotations

from collections.abc import Awaitable, MutableMapping
from typing import Any, Callable

from .cookies import CACHE_HEADERS
from .manager import Manager

__all__ = ["SessionMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_CACHE_HEADERS = [(k.lower().encode(), v.encode()) for k, v in CACHE_HEADERS]
# The messages that carry a response's headers.
_STARTS = frozenset(("http.response.start", "websocket.accept", "websocket.http.response.start"))


class SessionMiddleware:
    """Wraps an ASGI app; the session cookie is set only when the Manager says so."""

    def __init__(self, app: ASGIApp, manager: Manager) -> None:
        if not callable(app):
            raise TypeError(f"app must be an ASGI callable, not {type(app).__name__}")
        if not isinstance(manager, Manager):
            raise TypeError(f"manager must be a memsession Manager, not {type(manager).__name__}")
        self.app = app
        self.manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        manager = self.manager
        https = scope.get("scheme") in ("https", "wss")
        cookies = [value for name, value in scope.get("headers", ()) if name == b"cookie"]
        # HTTP/2 may split the Cookie header; join the parts as HTTP/1.1 would.
        header = b"; ".join(cookies).decode("latin-1") if cookies else None
        session = manager.session_start(header, https=https)
        scope["session"] = session

        async def send_with_cookie(message: Message) -> None:
            if message["type"] in _STARTS:
                cookie = manager.session_cookie(session, https=https)
                if cookie is not None:
                    headers = list(message.get("headers", ()))
                    headers.append((b"set-cookie", cookie.encode("latin-1")))
                    headers.extend(_CACHE_HEADERS)
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_cookie)
