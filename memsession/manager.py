"""The Manager: session ids, cookies, lifetimes and garbage collection."""

from __future__ import annotations

import logging
import math
import threading
import weakref
from types import TracebackType
from typing import Callable, Optional, Union

from ._impl import Session
from .cookies import (
    ID_LENGTH,
    cookie_values,
    is_session_id,
    new_session_id,
    validate_cookie_name,
    validate_domain,
    validate_path,
)
from .registry import Provider, get_provider

__all__ = ["Manager"]

_log = logging.getLogger("memsession")

# Bits of Session._state, meaningful to the Manager only.
_PENDING = 1  # not in the store yet: stored when the response starts, if written
_KILL_COOKIE = 2  # the client's cookie names a dead id: expire it unless replaced
_HTTPS = 4  # the request came over https
_HAD_COOKIE = 8  # the request carried a cookie with the session's name

_EXPIRED = "Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
_SAMESITE = {"lax": "Lax", "strict": "Strict", "none": "None"}


def _seconds(value: object, name: str, *, optional: bool = False) -> Optional[float]:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "a number of seconds or None" if optional else "a number of seconds"
        raise TypeError(f"{name} must be {kind}, not {type(value).__name__}")
    if not (0 < value < math.inf):
        raise ValueError(f"{name} must be a positive, finite number of seconds, got {value!r}")
    return float(value)


def _flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {type(value).__name__}")
    return value


class Manager:
    """Starts, saves, regenerates and destroys sessions over one provider."""

    def __init__(
        self,
        provider: Union[str, Provider] = "memory",
        cookie_name: str = "memsession",
        max_lifetime: float = 1800.0,
        *,
        absolute_lifetime: Optional[float] = None,
        cookie_path: str = "/",
        cookie_domain: Optional[str] = None,
        cookie_secure: Optional[bool] = None,
        cookie_httponly: bool = True,
        cookie_samesite: Optional[str] = "Lax",
        cookie_persistent: bool = True,
        cookie_partitioned: bool = False,
        gc_interval: Optional[float] = None,
    ) -> None:
        if isinstance(provider, str):
            provider = get_provider(provider)
        elif not isinstance(provider, Provider):
            raise TypeError(f"provider must be a provider name or a Provider, not {type(provider).__name__}")
        self._provider: Provider = provider
        self._cookie_name = validate_cookie_name(cookie_name)
        self._max_lifetime: float = _seconds(max_lifetime, "max_lifetime")  # type: ignore[assignment]
        self._absolute = _seconds(absolute_lifetime, "absolute_lifetime", optional=True)
        path = validate_path(cookie_path)
        domain = validate_domain(cookie_domain)
        if cookie_secure is not None and not isinstance(cookie_secure, bool):
            raise TypeError(f"cookie_secure must be a bool or None, not {type(cookie_secure).__name__}")
        httponly = _flag(cookie_httponly, "cookie_httponly")
        self._persistent = _flag(cookie_persistent, "cookie_persistent")
        partitioned = _flag(cookie_partitioned, "cookie_partitioned")
        if cookie_samesite is not None:
            if not isinstance(cookie_samesite, str):
                raise TypeError(f"cookie_samesite must be str or None, not {type(cookie_samesite).__name__}")
            if cookie_samesite.lower() not in _SAMESITE:
                raise ValueError(
                    f"cookie_samesite must be 'Lax', 'Strict', 'None' or None, got {cookie_samesite!r}"
                )
            samesite: Optional[str] = _SAMESITE[cookie_samesite.lower()]
        else:
            samesite = None
        secure = self._required_secure(cookie_secure, path, domain, samesite, partitioned)
        self._gc_interval = _seconds(gc_interval, "gc_interval", optional=True)

        tail = f"; Path={path}"
        if domain is not None:
            tail += f"; Domain={domain}"
        flags = ""
        if httponly:
            flags += "; HttpOnly"
        if samesite is not None:
            flags += f"; SameSite={samesite}"
        if partitioned:
            flags += "; Partitioned"
        self._tail_plain = tail + ("; Secure" if secure else "") + flags
        self._tail_https = tail + ("; Secure" if secure is not False else "") + flags
        # Refresh the browser cookie once half the idle lifetime has passed
        # since it was sent; its Max-Age covers that half on top of the
        # lifetime, so it outlives the server session while in use.
        self._refresh = self._max_lifetime / 2
        self._max_age = math.ceil(self._max_lifetime + self._refresh)
        self._prefix = self._cookie_name + "="
        self._fast_len = len(self._prefix) + ID_LENGTH

        self._read = provider.session_read
        self._new: Optional[Callable[[str], Session]] = getattr(provider, "session_new", None)
        self._insert: Optional[Callable[[Session], None]] = getattr(provider, "session_insert", None)
        self._stop = threading.Event()
        self._gc_thread: Optional[threading.Thread] = None
        if self._gc_interval is not None:
            self._gc_thread = threading.Thread(
                target=_gc_loop,
                args=(weakref.ref(self), self._stop, self._gc_interval),
                name="memsession-gc",
                daemon=True,
            )
            weakref.finalize(self, self._stop.set)
            self._gc_thread.start()

    def _required_secure(
        self,
        secure: Optional[bool],
        path: str,
        domain: Optional[str],
        samesite: Optional[str],
        partitioned: bool,
    ) -> Optional[bool]:
        """Apply the rules under which browsers only accept Secure cookies."""
        name = self._cookie_name.lower()
        reasons = []
        if name.startswith("__host-"):
            if path != "/":
                raise ValueError(f"a __Host- cookie needs cookie_path '/', got {path!r}")
            if domain is not None:
                raise ValueError("a __Host- cookie must not have a cookie_domain")
            reasons.append("a __Host- cookie name")
        if name.startswith("__secure-"):
            reasons.append("a __Secure- cookie name")
        if samesite == "None":
            reasons.append("cookie_samesite 'None'")
        if partitioned:
            reasons.append("cookie_partitioned")
        if reasons:
            if secure is False:
                raise ValueError(f"{reasons[0]} needs Secure, but cookie_secure is False")
            return True
        return secure

    @property
    def provider(self) -> Provider:
        """The provider holding the sessions."""
        return self._provider

    @property
    def cookie_name(self) -> str:
        """The session cookie's name."""
        return self._cookie_name

    @property
    def max_lifetime(self) -> float:
        """Idle timeout in seconds (sliding)."""
        return self._max_lifetime

    @property
    def absolute_lifetime(self) -> Optional[float]:
        """Timeout in seconds from creation, or None."""
        return self._absolute

    def session_start(self, cookie_header: Optional[str], *, https: bool = False) -> Session:
        """The live session the Cookie header names, or a new, unsaved one."""
        state = _HTTPS if https else 0
        if cookie_header is not None:
            if type(cookie_header) is not str and not isinstance(cookie_header, str):
                raise TypeError(f"cookie_header must be str or None, not {type(cookie_header).__name__}")
            # The common case, one cookie that is ours, needs no parser.
            if len(cookie_header) == self._fast_len and cookie_header.startswith(self._prefix):
                session = self._live(cookie_header[self._fast_len - ID_LENGTH :])
                state |= _HAD_COOKIE
            else:
                session = None
                for sid in cookie_values(cookie_header, self._cookie_name):
                    state |= _HAD_COOKIE
                    session = self._live(sid)
                    if session is not None:
                        break
            if session is not None:
                session.modified = False
                session._state = state
                return session
        sid = new_session_id()
        session = self._new(sid) if self._new is not None else Session(sid)
        session._state = state | _PENDING
        return session

    def _live(self, sid: str) -> Optional[Session]:
        """The live session for a cookie value, if it names one."""
        if not is_session_id(sid):
            return None
        session = self._read(sid, self._max_lifetime)
        if session is not None and self._absolute is not None:
            if session.last_used - session.created > self._absolute:
                self._provider.session_destroy(sid)
                return None
        return session

    def session_cookie(self, session: Session, *, https: bool = False) -> Optional[str]:
        """The Set-Cookie value this response must carry, or None.

        Stores a new session that holds data, and destroys a stored one whose
        data was cleared; call it when the response starts.
        """
        state = session._state
        secure = https or bool(state & _HTTPS)
        if not state & _PENDING:
            if session.modified and not len(session):
                self.session_destroy(session)  # emptied: as good as logged out
                state = session._state
            elif session.last_used - session._cookie_at >= self._refresh:
                session._cookie_at = session.last_used
                return self._format(session, secure)
            else:
                return None
        if len(session):
            self._commit(session)
            session._state = state & ~(_PENDING | _KILL_COOKIE)
            session._cookie_at = session.last_used
            return self._format(session, secure)
        if state & _KILL_COOKIE and state & _HAD_COOKIE:
            session._state = state & ~_KILL_COOKIE
            tail = self._tail_https if secure else self._tail_plain
            return f"{self._prefix}; {_EXPIRED}{tail}"
        return None

    def _format(self, session: Session, secure: bool) -> str:
        tail = self._tail_https if secure else self._tail_plain
        persistent = session.permanent
        if persistent is None:
            persistent = self._persistent
        if not persistent:
            return f"{self._prefix}{session.sid}{tail}"
        max_age = self._max_age
        if self._absolute is not None:
            left = math.ceil(session.created + self._absolute - session.last_used)
            max_age = max(0, min(max_age, left))
        return f"{self._prefix}{session.sid}; Max-Age={max_age}{tail}"

    def _commit(self, session: Session) -> None:
        """Store a pending session under its id, drawing a new id on a clash."""
        for _ in range(3):
            try:
                if self._insert is not None:
                    self._insert(session)
                else:
                    self._provider.session_init(session.sid).update(session)
                return
            except ValueError:
                if getattr(session, "_stored_flag", False):
                    return  # a concurrent request of this session stored it
                session._rekey(new_session_id())
        raise RuntimeError("memsession: could not store a new session under a fresh id")

    def session_destroy(self, session: Session) -> None:
        """Remove the session's server state; the response expires the cookie."""
        state = session._state
        if not state & _PENDING:
            self._provider.session_destroy(session.sid)
        session._rekey(new_session_id())  # detached from here on: clearing stays local
        session.clear()
        session.modified = False
        session._state = state | _PENDING | _KILL_COOKIE

    def session_regenerate(self, session: Session) -> None:
        """Give the session a fresh id in place, keeping its data; the old id dies."""
        state = session._state
        if not state & _PENDING:
            self._provider.session_destroy(session.sid)
        session._rekey(new_session_id())
        session._state = state | _PENDING | _KILL_COOKIE

    def gc(self) -> int:
        """Remove sessions idle longer than max_lifetime; return how many."""
        return self._provider.session_gc(self._max_lifetime)

    def close(self) -> None:
        """Stop background garbage collection."""
        self._stop.set()
        thread = self._gc_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def __enter__(self) -> Manager:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<Manager provider={type(self._provider).__name__} "
            f"cookie_name={self._cookie_name!r} max_lifetime={self._max_lifetime}>"
        )


def _gc_loop(ref: "weakref.ref[Manager]", stop: threading.Event, interval: float) -> None:
    while not stop.wait(interval):
        manager = ref()
        if manager is None:
            return
        try:
            manager.gc()
        except Exception:
            _log.exception("memsession: background session GC failed")
        del manager
