"""ASGI middleware: scope["session"] for http and websocket, as Starlette's is."""

from __future__ import annotations

import warnings
from collections.abc import Awaitable, MutableMapping
from datetime import timedelta
from typing import Any, Callable, Optional, Union

from .cookies import CACHE_CONTROL, VARY_COOKIE, session_headers
from .errors import UNAVAILABLE_BODY, UNAVAILABLE_HEADERS, ConfigWarning, ProviderUnavailableError
from .manager import Manager
from .registry import Provider

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
_SECURE = frozenset(("https", "wss"))  # the schemes whose cookies get Secure
_WS_TRY_AGAIN_LATER = 1013
_VARY_COOKIE = (VARY_COOKIE[0].lower().encode(), VARY_COOKIE[1].encode())
_NO_CACHE_SET_COOKIE = (CACHE_CONTROL[0].lower().encode(), CACHE_CONTROL[1].encode())
_TWO_WEEKS = 14 * 24 * 60 * 60  # Starlette's max_age
_warned_secret_key = False


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _Unset()
# Starlette's SessionMiddleware options, their defaults, and the Manager
# argument each becomes (errors name the option the user wrote).
_STARLETTE_DEFAULTS: dict[str, Any] = {
    "provider": "memory",
    "secret_key": None,
    "session_cookie": "session",
    "max_age": _TWO_WEEKS,
    "path": "/",
    "same_site": "lax",
    "https_only": False,
    "domain": None,
}
_MANAGER_NAMES = {
    "cookie_name": "session_cookie",
    "max_lifetime": "max_age",
    "cookie_path": "path",
    "cookie_domain": "domain",
    "cookie_samesite": "same_site",
}


def _ends_at_once(max_age: Any) -> bool:
    """Starlette's max_age <= 0: every session is expired by its next request."""
    if isinstance(max_age, timedelta):
        return max_age.total_seconds() <= 0
    return isinstance(max_age, (int, float)) and not isinstance(max_age, bool) and max_age <= 0


def _starlette_manager(options: dict[str, Any]) -> Manager:
    """A Manager with the meaning Starlette's SessionMiddleware gives its options."""
    global _warned_secret_key
    o = {k: (v if options[k] is _UNSET else options[k]) for k, v in _STARLETTE_DEFAULTS.items()}
    if o["secret_key"] is not None and not _warned_secret_key:
        _warned_secret_key = True
        warnings.warn(
            "secret_key is ignored: memsession keeps the session on the server and the cookie "
            "holds only a random 256-bit id, so there is nothing to sign",
            ConfigWarning,
            stacklevel=3,
        )
    if not isinstance(o["https_only"], bool):
        raise TypeError(f"https_only must be a bool, not {type(o['https_only']).__name__}")
    max_age = o["max_age"]
    if _ends_at_once(max_age):
        max_age = _TWO_WEEKS  # never stored: see SessionMiddleware's at_once
    try:
        return Manager(
            o["provider"],
            o["session_cookie"],
            # max_age=None: a browser-session cookie; the server still ends the
            # session after two idle weeks rather than never.
            _TWO_WEEKS if max_age is None else max_age,
            cookie_path=o["path"],
            cookie_domain=o["domain"],
            cookie_samesite=o["same_site"],
            cookie_secure=True if o["https_only"] else None,
            cookie_persistent=max_age is not None,
            cookie_style="starlette",
        )
    except (TypeError, ValueError) as exc:
        message = str(exc)
        for ours, theirs in _MANAGER_NAMES.items():
            if message.startswith(ours) or f" {ours} " in message or f"needs {ours}" in message:
                raise type(exc)(message.replace(ours, theirs, 1)) from None
        raise


class SessionMiddleware:
    """Wraps an ASGI app; the session cookie is set only when the Manager says so.

    When the provider is unavailable an http request gets 503 Service
    Unavailable and a websocket is closed with code 1013 (try again later).
    """

    def __init__(
        self,
        app: ASGIApp,
        manager: Optional[Manager] = None,
        *,
        provider: Union[str, Provider] = _UNSET,
        secret_key: Any = _UNSET,
        session_cookie: str = _UNSET,
        max_age: Optional[Union[int, float, timedelta]] = _UNSET,
        path: str = _UNSET,
        same_site: Optional[str] = _UNSET,
        https_only: bool = _UNSET,
        domain: Optional[str] = _UNSET,
    ) -> None:
        """Wrap app; without a manager, build one from Starlette's SessionMiddleware options.

        Those keep Starlette's meaning (max_age=None: a browser-session
        cookie), so replacing Starlette's import migrates an app;
        secret_key is accepted and ignored (warned once): nothing is signed.
        """
        if not callable(app):
            raise TypeError(f"app must be an ASGI callable, not {type(app).__name__}")
        options = {
            "provider": provider,
            "secret_key": secret_key,
            "session_cookie": session_cookie,
            "max_age": max_age,
            "path": path,
            "same_site": same_site,
            "https_only": https_only,
            "domain": domain,
        }
        at_once = False
        if manager is not None and not isinstance(manager, Manager):
            if isinstance(manager, (str, bytes)) or type(manager).__name__ == "Secret":
                # Starlette's positional secret_key (a str or a starlette Secret).
                manager, options["secret_key"] = None, manager
            else:
                raise TypeError(f"manager must be a memsession Manager, not {type(manager).__name__}")
        if manager is None:
            manager = _starlette_manager(options)
            # Starlette's max_age <= 0: a session lives for its own request only.
            at_once = _ends_at_once(options["max_age"])
        else:
            given = [name for name, value in options.items() if value is not _UNSET]
            if given:
                raise TypeError(
                    f"pass either a manager or Starlette's options, not both ({', '.join(given)})"
                )
        self.app = app
        self.manager = manager
        self._at_once = at_once

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            if kind == "lifespan":
                await self.app(scope, receive, self._closing(send))
            else:
                await self.app(scope, receive, send)
            return
        manager = self.manager
        is_async = manager._async
        at_once = self._at_once
        https = scope.get("scheme") in _SECURE
        raw: Optional[bytes] = None
        for name, value in scope.get("headers", ()):
            if name == b"cookie":
                # HTTP/2 may split the Cookie header; join the parts as HTTP/1.1 would.
                raw = value if raw is None else raw + b"; " + value
        # The usual request over the memory store: one compiled call on the raw header.
        gate = manager._gate if type(manager) is Manager else None
        session = None if gate is None else gate.start_bytes(raw, https, manager)
        if session is None:
            header = None if raw is None else raw.decode("latin-1")
            try:
                if is_async:
                    session = await manager.asession_start(header, https=https)
                else:  # a sync store (memory) is called directly: microseconds, no I/O
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
                    if at_once:  # Starlette's max_age <= 0: never stored, the cookie expired
                        cookie = manager.cookie.expired(https) if session.modified else None
                    elif gate is not None and gate.quiet(session, https, manager):
                        cookie = None
                    elif is_async:
                        cookie = await manager.asession_cookie(session, https=https)
                    else:
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
            if is_async and started and not failed:
                await manager.aflush(session)  # what a websocket wrote after accepting
        except ProviderUnavailableError:
            if started:
                raise  # the response is under way: the server must abort it
            await _refuse(kind, send)

    def _closing(self, send: Send) -> Send:
        """send for lifespan: closes the Manager (and its store's connections) at shutdown."""

        async def send_closing(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                await self.manager.aclose()
            await send(message)

        return send_closing


def _with_session(raw: Any, cookie: Optional[str], accessed: bool) -> list[Any]:
    """The response's headers with the session's; bytes in, bytes out.

    The usual response has neither Vary nor Cache-Control of its own, and
    only gains ours; anything else goes through cookies.session_headers.
    """
    headers = list(raw)
    for name, _ in headers:
        if len(name) != 4 and len(name) != 13:
            continue  # neither Vary nor Cache-Control: no need to fold its case
        lower = name.lower()
        if lower == b"vary" or (cookie is not None and lower == b"cache-control"):
            merged = session_headers(
                [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers], cookie, True
            )
            return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in merged]
    headers.append(_VARY_COOKIE)
    if cookie is not None:
        headers.append((b"set-cookie", cookie.encode("latin-1")))
        headers.append(_NO_CACHE_SET_COOKIE)
    return headers


async def _refuse(kind: str, send: Send) -> None:
    """Answer 503 (http) or close with 1013 (websocket): the store is unreachable."""
    if kind == "websocket":
        await send({"type": "websocket.close", "code": _WS_TRY_AGAIN_LATER})
        return
    await send(dict(_UNAVAILABLE_START))
    await send({"type": "http.response.body", "body": UNAVAILABLE_BODY})
