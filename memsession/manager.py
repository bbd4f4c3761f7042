"""The Manager: the session lifecycle (start, save, regenerate, destroy, expiry)."""

from __future__ import annotations

import inspect
import math
import os
from types import TracebackType
from typing import Any, Callable, Optional, Union

from ._impl import MemoryProvider, RequestGate, RequestSession
from ._impl import Session as _Detached
from .asyncmanager import AsyncMethods
from .background import Periodic
from .cookies import ID_LENGTH, CookiePolicy, cookie_values, is_session_id, new_session_id
from .copying import refill
from .registry import (
    AsyncProvider,
    Provider,
    SupportsDestroyIfEmpty,
    SupportsLifetimeHint,
    SupportsNewInsert,
    SupportsTake,
    SupportsUpdate,
    get_provider,
)
from .seconds import Seconds, seconds
from .session import ACCESSED, FRESH, HAD_COOKIE, HTTPS, KILL_COOKIE, MODIFIED, PENDING, SessionArg
from .snapshot import Snapshots

__all__ = ["Manager"]


# A request looks up at most this many distinct well-formed ids from its
# Cookie header (a stale path cookie and a forged one beside the live one),
# whatever else the header holds.
MAX_LOOKUPS = 4


class Manager(AsyncMethods):
    """Starts, saves, regenerates and destroys sessions over one provider.

    With an AsyncProvider, the ASGI middleware awaits the a-prefixed
    coroutines (asession_start, asession_cookie); session_destroy and
    session_regenerate called from the app then kill the old id when the
    response starts (or at once with asession_destroy / asession_regenerate).
    """

    def __init__(
        self,
        provider: Union[str, Provider, AsyncProvider] = "memory",
        cookie_name: str = "memsession",
        max_lifetime: Seconds = 1800.0,
        *,
        absolute_lifetime: Optional[Seconds] = None,
        cookie_path: str = "/",
        cookie_domain: Optional[str] = None,
        cookie_secure: Optional[bool] = None,
        cookie_httponly: bool = True,
        cookie_samesite: Optional[str] = "Lax",
        cookie_persistent: bool = True,
        cookie_partitioned: bool = False,
        gc_interval: Optional[Seconds] = None,
        snapshot: Optional[Union[str, "os.PathLike[str]"]] = None,
        snapshot_interval: Optional[Seconds] = None,
        cookie_style: str = "standard",
    ) -> None:
        if isinstance(provider, str):
            provider = get_provider(provider)
        elif not isinstance(provider, Provider) or isinstance(provider, type):
            raise TypeError(f"provider must be a provider name or a Provider, not {type(provider).__name__}")
        self._provider: Any = provider
        self._max_lifetime: float = seconds(max_lifetime, "max_lifetime")  # type: ignore[assignment]
        self._absolute = seconds(absolute_lifetime, "absolute_lifetime", optional=True)
        self._cookie = CookiePolicy(
            cookie_name,
            path=cookie_path,
            domain=cookie_domain,
            secure=cookie_secure,
            httponly=cookie_httponly,
            samesite=cookie_samesite,
            partitioned=cookie_partitioned,
            style=cookie_style,
        )
        if not isinstance(cookie_persistent, bool):
            raise TypeError(f"cookie_persistent must be a bool, not {type(cookie_persistent).__name__}")
        self._persistent = cookie_persistent
        self._gc_interval = seconds(gc_interval, "gc_interval", optional=True)
        # Refresh the browser cookie once half the idle lifetime has passed
        # since it was sent; its Max-Age covers that half on top of the
        # lifetime, so it outlives the server session while in use.
        self._refresh = self._max_lifetime / 2
        self._max_age = math.ceil(self._max_lifetime + self._refresh)
        self._prefix = self._cookie.name + "="
        self._fast_len = len(self._prefix) + ID_LENGTH

        self._read = provider.session_read
        self._new: Callable[[str], Any] = _Detached
        self._insert: Optional[Callable[[Any], None]] = None
        if isinstance(provider, SupportsNewInsert):
            self._new, self._insert = provider.session_new, provider.session_insert
        self._update = provider.session_update if isinstance(provider, SupportsUpdate) else None
        self._take = provider.session_take if isinstance(provider, SupportsTake) else None
        self._destroy_if_empty = (
            provider.session_destroy_if_empty if isinstance(provider, SupportsDestroyIfEmpty) else None
        )
        self._async = inspect.iscoroutinefunction(provider.session_read)
        # The usual request over the memory store takes one compiled call at
        # each end (RequestGate): start, and "no cookie this time".
        self._gate: Optional[RequestGate] = None
        if type(provider) is MemoryProvider and self._absolute is None:
            self._gate = RequestGate(
                provider, str.__str__(self._prefix), self._max_lifetime, self._refresh, new_session_id
            )
        # Collects what expired already, and tells the store the lifetime, so
        # that it reclaims abandoned sessions on its own.
        if not self._async:
            provider.session_gc(self._max_lifetime)
        elif isinstance(provider, SupportsLifetimeHint):
            provider.expect_lifetime(self._max_lifetime)
        self._gc: Optional[Periodic] = None
        if self._gc_interval is not None and self._async:
            raise ValueError("gc_interval needs a sync provider (an async store expires sessions itself)")
        if self._gc_interval is not None:
            self._gc = Periodic(self, "gc", self._gc_interval, "memsession-gc")
        every = seconds(snapshot_interval, "snapshot_interval", optional=True)
        if snapshot is None and every is not None:
            raise ValueError("snapshot_interval needs snapshot (a file path)")
        # Sessions survive a restart: loaded now, saved every interval and on close().
        self._snapshots = (
            None
            if snapshot is None
            else Snapshots(
                provider, snapshot, every, max_lifetime=self._max_lifetime, absolute_lifetime=self._absolute
            )
        )

    @property
    def is_async(self) -> bool:
        """True when the provider's methods are coroutines (use the a-prefixed methods)."""
        return self._async

    @property
    def provider(self) -> Any:
        """The provider holding the sessions."""
        return self._provider

    @property
    def cookie_name(self) -> str:
        """The session cookie's name."""
        return self._cookie.name

    @property
    def cookie(self) -> CookiePolicy:
        """The session cookie's validated attributes."""
        return self._cookie

    @property
    def cookie_persistent(self) -> bool:
        """Whether cookies get a Max-Age unless a session's permanent says otherwise."""
        return self._persistent

    @property
    def max_lifetime(self) -> float:
        """Idle timeout in seconds (sliding)."""
        return self._max_lifetime

    @property
    def absolute_lifetime(self) -> Optional[float]:
        """Timeout in seconds from creation, or None."""
        return self._absolute

    def session_start(self, cookie_header: Optional[str], *, https: bool = False) -> RequestSession:
        """This request's session: the live one the Cookie header names, or a new, unsaved one."""
        if self._gate is not None:
            session = self._gate.start(cookie_header, https, self)
            if session is not None:
                return session
        if self._async:
            raise TypeError("this Manager's provider is async: await asession_start() instead")
        if https is not False and https is not True:
            raise TypeError(f"https must be a bool, not {type(https).__name__}")
        flags = HTTPS if https else 0
        if cookie_header is not None:
            if type(cookie_header) is not str and not isinstance(cookie_header, str):
                raise TypeError(f"cookie_header must be str or None, not {type(cookie_header).__name__}")
            # The common case, one cookie that is ours, needs no parser.
            if len(cookie_header) == self._fast_len and cookie_header.startswith(self._prefix):
                record = self._live(cookie_header[self._fast_len - ID_LENGTH :])
                flags |= HAD_COOKIE
            else:
                record = None
                had, candidates = self._candidates(cookie_header)
                flags |= had
                for sid in candidates:
                    record = self._live(sid)
                    if record is not None:
                        break
            if record is not None:
                return RequestSession(record, flags, self)
        return RequestSession(self._new(new_session_id()), flags | FRESH, self)

    def _candidates(self, cookie_header: str) -> tuple[int, list[str]]:
        """HAD_COOKIE if the header names our cookie, and the first distinct ids to look up."""
        had = 0
        found: list[str] = []
        for sid in cookie_values(cookie_header, self._cookie.name):
            had = HAD_COOKIE
            if sid not in found and is_session_id(sid):
                found.append(sid)
                if len(found) == MAX_LOOKUPS:
                    break
        return had, found

    def _live(self, sid: str) -> Any:
        """The stored session for a cookie value, if it names a live one."""
        if not is_session_id(sid):
            return None
        record = self._read(sid, self._max_lifetime)
        if record is not None and self._absolute is not None:
            if record.last_used - record.created > self._absolute:
                self._provider.session_destroy(sid)
                return None
        return record

    def _own(self, session: object) -> RequestSession:
        if type(session) is not RequestSession:
            raise TypeError(
                "session must be the RequestSession that session_start returned, "
                f"not {type(session).__name__}"
            )
        if session._owner is not self:
            raise ValueError("session was started by another Manager")
        return session

    def session_cookie(self, session: SessionArg, *, https: bool = False) -> Optional[str]:
        """The Set-Cookie value this response must carry, or None.

        Stores a new session that holds data, and destroys a stored one this
        request emptied (when the store holds nothing else for it); call it
        once the response starts.
        """
        if self._gate is not None and self._gate.quiet(session, https, self):
            return None
        rs = session if type(session) is RequestSession and session._owner is self else self._own(session)
        if https is not False and https is not True:
            raise TypeError(f"https must be a bool, not {type(https).__name__}")
        flags = rs._flags
        secure = https or bool(flags & HTTPS)
        record = rs._record
        if not flags & PENDING:
            if flags & MODIFIED and not len(record) and self._destroy_empty(rs._sid):
                self._detach(rs, kill=True)  # emptied: as good as logged out
                rs._flags &= ~KILL_COOKIE
                return self._cookie.expired(secure)
            if record.last_used - record._cookie_at < self._refresh:
                return None
            if self._update is not None and not self._update(rs._sid):
                return None  # destroyed or regenerated by another request meanwhile
            record._cookie_at = record.last_used
            return self._format(rs._sid, record, secure)
        if len(record):
            self._commit(rs)
            rs._flags &= ~(PENDING | KILL_COOKIE)
            rs._record._cookie_at = rs._record.last_used
            return self._format(rs._sid, rs._record, secure)
        if flags & KILL_COOKIE:
            rs._flags = flags & ~KILL_COOKIE
            return self._cookie.expired(secure)
        return None

    def _destroy_empty(self, sid: str) -> bool:
        """Destroy the stored session if the store holds no data for it."""
        if self._destroy_if_empty is not None:
            return bool(self._destroy_if_empty(sid))
        stored = self._provider.session_read(sid)
        if stored is None or len(stored):
            return False
        self._provider.session_destroy(sid)
        return True

    def _format(self, sid: str, record: Any, secure: bool) -> str:
        persistent = record.permanent
        if persistent is None:
            persistent = self._persistent
        if not persistent:
            return self._cookie.live(sid, None, secure)
        max_age = self._max_age
        if self._absolute is not None:
            left = math.ceil(record.created + self._absolute - record.last_used)
            max_age = max(0, min(max_age, left))
        return self._cookie.live(sid, max_age, secure)

    def _commit(self, rs: RequestSession) -> None:
        """Store a pending session under its id, drawing a new id on a clash."""
        record = rs._record
        for _ in range(3):
            try:
                if self._insert is not None:
                    self._insert(record)
                else:
                    stored = self._provider.session_init(record.sid)
                    stored.update(record)
                    if record.permanent is not None:
                        stored.permanent = record.permanent
                    record = stored
                rs._attach(record)
                return
            except ValueError:
                record = refill(self._new(new_session_id()), record)
        raise RuntimeError("memsession: could not store a new session under a fresh id")

    def _detach(self, rs: RequestSession, *, kill: bool, keep: Any = None) -> None:
        """Move this request to a new, unsaved record (holding a copy of keep's data)."""
        flags = rs._flags
        if kill and (not flags & PENDING or flags & HAD_COOKIE):
            flags |= KILL_COOKIE
        record = self._new(new_session_id())
        if keep is not None:
            refill(record, keep)
        rs._attach(record)
        rs._flags = (flags & ~MODIFIED) | FRESH | ACCESSED

    def session_destroy(self, session: SessionArg) -> None:
        """End the session for every request; this response expires the cookie."""
        rs = self._own(session)
        if not rs._flags & PENDING:
            self._kill(rs, rs._sid)
        self._detach(rs, kill=True)

    def _kill(self, rs: RequestSession, sid: str, *, carried: bool = False) -> None:
        if self._async:
            # Deleted as the response starts; carried: regenerate copied its data.
            rs._doomed = (*(rs._doomed or ()), (sid, carried))
        else:
            self._provider.session_destroy(sid)

    def session_regenerate(self, session: SessionArg) -> None:
        """Move this request to a fresh id with a copy of the data; the old id dies.

        A concurrent request still holding the old id keeps the old data,
        sees nothing written after this, and is never sent the new id.
        """
        rs = self._own(session)
        keep = rs._record
        if not rs._flags & PENDING:
            if self._async:
                self._kill(rs, rs._sid, carried=True)  # taken as the response starts
            elif self._take is not None:
                # Atomically: the data as stored now, and the old id gone. None:
                # the session ended meanwhile (a logout elsewhere), so nothing
                # of it may live on under a new id.
                keep = self._take(rs._sid)
            else:
                keep = keep if self._provider.session_read(rs._sid) is not None else None
                self._provider.session_destroy(rs._sid)
        self._detach(rs, kill=True, keep=keep)

    def gc(self) -> int:
        """Remove sessions idle longer than max_lifetime; return how many."""
        if self._async:
            raise TypeError("this Manager's provider is async: await agc() instead")
        return int(self._provider.session_gc(self._max_lifetime))

    def close(self) -> None:
        """Stop background garbage collection; save the snapshot a last time, if there is one."""
        if self._gc is not None:
            self._gc.stop()
        if self._snapshots is not None:
            self._snapshots.close()

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
            f"cookie_name={self._cookie.name!r} max_lifetime={self._max_lifetime}>"
        )
