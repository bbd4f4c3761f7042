"""Helpers for test harnesses: a clock you move by hand, and cookie helpers."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from ._impl import RequestSession
from .ids import short_id
from .manager import Manager
from .seconds import seconds
from .session import Session

__all__ = ["FakeClock", "SetCookie", "StartedSession", "find_set_cookie", "parse_set_cookie", "start_session"]


class FakeClock:
    """A clock callable for clock=; time moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = self._check(start, "start")
        self._lock = threading.Lock()

    @staticmethod
    def _check(value: object, name: str) -> float:
        return seconds(value, name, zero=True)  # type: ignore[return-value]

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward by seconds (never back); return the new time."""
        step = self._check(seconds, "seconds")
        with self._lock:
            self._now += step
            return self._now

    def set(self, t: float) -> None:
        """Jump to time t, which must not be earlier than now."""
        t = self._check(t, "t")
        with self._lock:
            if t < self._now:
                raise ValueError(f"t must not be earlier than now ({self._now}), got {t!r}")
            self._now = t

    def __repr__(self) -> str:
        return f"FakeClock({self._now!r})"


@dataclass(frozen=True, repr=False)
class StartedSession:
    """A stored session and the cookie a test client must send to use it."""

    session: RequestSession
    cookie_name: str
    cookie_value: str

    @property
    def cookie_header(self) -> str:
        """The value of a Cookie request header naming this session."""
        return f"{self.cookie_name}={self.cookie_value}"

    def __repr__(self) -> str:
        return f"StartedSession({self.cookie_name}={short_id(self.cookie_value)!r})"


def start_session(
    manager: Manager, data: Optional[Mapping[str, Any]] = None, *, https: bool = False, **more: Any
) -> StartedSession:
    """Store a session holding data (e.g. a logged-in user) and return its cookie."""
    if not isinstance(manager, Manager):
        raise TypeError(f"manager must be a memsession Manager, not {type(manager).__name__}")
    values = {**(data or {}), **more}
    if not values:
        raise ValueError("data must not be empty: an empty session is never stored")
    session = manager.session_start(None, https=https)
    session.update(values)
    set_cookie = manager.session_cookie(session, https=https)
    assert set_cookie is not None  # a written session is always stored
    return StartedSession(session, manager.cookie_name, session.sid)


@dataclass(frozen=True, repr=False)
class SetCookie:
    """What one Set-Cookie header tells the browser to do."""

    name: str
    value: str
    attributes: dict[str, str] = field(default_factory=dict)

    def _get(self, name: str) -> Optional[str]:
        for key, value in self.attributes.items():
            if key.lower() == name:
                return value
        return None

    @property
    def max_age(self) -> Optional[int]:
        """Max-Age in seconds, or None for a browser-session cookie."""
        value = self._get("max-age")
        return None if value is None else int(value)

    @property
    def deletes(self) -> bool:
        """True when the header removes the cookie (logout, destroy)."""
        return self.max_age is not None and self.max_age <= 0

    @property
    def secure(self) -> bool:
        return self._get("secure") is not None

    @property
    def httponly(self) -> bool:
        return self._get("httponly") is not None

    @property
    def samesite(self) -> Optional[str]:
        return self._get("samesite")

    @property
    def path(self) -> Optional[str]:
        return self._get("path")

    @property
    def domain(self) -> Optional[str]:
        return self._get("domain")

    def session(self, manager: Manager) -> Optional[Session]:
        """The live session this cookie names in manager's provider, or None.

        Judged by the Manager's idle and absolute lifetimes, as a request
        would be, but without marking the session used (a memory store is
        looked through; other stores are read).
        """
        if self.deletes or not self.value:
            return None
        provider = manager.provider
        sessions = getattr(provider, "sessions", None)
        if sessions is None:
            return manager._live(self.value)  # type: ignore[no-any-return]
        for found in sessions():
            if found.sid == self.value:
                now = provider.now()
                idle = now - found.last_used > manager.max_lifetime
                absolute = manager.absolute_lifetime
                ended = absolute is not None and now - found.created > absolute
                return None if idle or ended else found
        return None

    def __repr__(self) -> str:
        return f"SetCookie({self.name}={short_id(self.value)!r}, {self.attributes!r})"


def parse_set_cookie(header: str) -> SetCookie:
    """Read one Set-Cookie header value."""
    if not isinstance(header, str):
        raise TypeError(f"header must be str, not {type(header).__name__}")
    first, *rest = header.split(";")
    name, sep, value = first.partition("=")
    if not sep or not name.strip():
        raise ValueError(f"not a Set-Cookie value: {header!r}")
    attributes = {}
    for part in rest:
        key, _, val = part.strip().partition("=")
        if key:
            attributes[key] = val
    return SetCookie(name.strip(), value.strip(), attributes)


def find_set_cookie(headers: Iterable[str], name: str) -> Optional[SetCookie]:
    """The last Set-Cookie header among headers that sets cookie name, or None."""
    found = None
    for header in headers:
        cookie = parse_set_cookie(header)
        if cookie.name == name:
            found = cookie
    return found
