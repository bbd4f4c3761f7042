"""The Manager's coroutines, for async providers: the ASGI middleware awaits them."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Callable, Optional

from ._impl import RequestSession
from .cookies import ID_LENGTH, CookiePolicy, is_session_id, new_session_id
from .copying import refill
from .session import FRESH, HAD_COOKIE, HTTPS, KILL_COOKIE, MODIFIED, PENDING, SessionArg

__all__ = ["AsyncMethods"]


async def _maybe(value: Any) -> Any:
    """The value, awaited when it is awaitable (a sync provider's result is not)."""
    return await value if inspect.isawaitable(value) else value


async def flush(record: Any) -> bool:
    """Send a record's waiting writes (async stores); False when its session is gone."""
    send = getattr(record, "flush", None)
    return True if send is None else bool(await send())


class AsyncMethods:
    """Session lifecycle as coroutines; the same rules as the Manager's methods."""

    _provider: Any
    _cookie: CookiePolicy
    _read: Callable[..., Any]
    _new: Callable[[str], Any]
    _insert: Optional[Callable[[Any], Any]]
    _destroy_if_empty: Optional[Callable[[str], Any]]
    _max_lifetime: float
    _absolute: Optional[float]
    _refresh: float
    _fast_len: int
    _prefix: str

    if TYPE_CHECKING:  # the Manager's own methods, which these build on

        def _own(self, session: object) -> RequestSession: ...
        def _candidates(self, cookie_header: str) -> tuple[int, list[str]]: ...
        def _detach(self, rs: RequestSession, *, kill: bool, keep: Any = None) -> None: ...
        def _format(self, sid: str, record: Any, secure: bool) -> str: ...
        def session_destroy(self, session: SessionArg) -> None: ...
        def session_regenerate(self, session: SessionArg) -> None: ...
        def close(self) -> None: ...

    async def asession_start(self, cookie_header: Optional[str], *, https: bool = False) -> RequestSession:
        """As session_start, awaiting the store: no store round trip blocks the event loop."""
        if https is not False and https is not True:
            raise TypeError(f"https must be a bool, not {type(https).__name__}")
        flags = HTTPS if https else 0
        if cookie_header is not None:
            if not isinstance(cookie_header, str):
                raise TypeError(f"cookie_header must be str or None, not {type(cookie_header).__name__}")
            if len(cookie_header) == self._fast_len and cookie_header.startswith(self._prefix):
                had, candidates = HAD_COOKIE, [cookie_header[self._fast_len - ID_LENGTH :]]
            else:
                had, candidates = self._candidates(cookie_header)
            flags |= had
            for sid in candidates:
                record = await self._alive(sid)
                if record is not None:
                    return RequestSession(record, flags, self)
        return RequestSession(self._new(new_session_id()), flags | FRESH, self)

    async def _alive(self, sid: str) -> Any:
        if not is_session_id(sid):
            return None
        record = await _maybe(self._read(sid, self._max_lifetime))
        if record is not None and self._absolute is not None:
            if record.last_used - record.created > self._absolute:
                await _maybe(self._provider.session_destroy(sid))
                return None
        return record

    async def asession_cookie(self, session: SessionArg, *, https: bool = False) -> Optional[str]:
        """As session_cookie: also sends this request's writes, in one pipelined round trip."""
        rs = self._own(session)
        if not isinstance(https, bool):
            raise TypeError(f"https must be a bool, not {type(https).__name__}")
        await self._bury(rs)
        flags = rs._flags
        secure = https or bool(flags & HTTPS)
        record = rs._record
        if not flags & PENDING:
            if flags & MODIFIED and not len(record):
                await flush(record)  # the deletes first: then the store decides
                if await self._adestroy_empty(rs._sid):
                    self._detach(rs, kill=True)
                    rs._flags &= ~KILL_COOKIE
                    return self._cookie.expired(secure)
            due = record.last_used - record._cookie_at >= self._refresh
            if due:
                record._cookie_at = record.last_used
            alive = await flush(record)
            return self._format(rs._sid, record, secure) if due and alive else None
        if len(record):
            await self._acommit(rs)
            rs._flags &= ~(PENDING | KILL_COOKIE)
            rs._record._cookie_at = rs._record.last_used
            return self._format(rs._sid, rs._record, secure)
        if flags & KILL_COOKIE:
            rs._flags = flags & ~KILL_COOKIE
            return self._cookie.expired(secure)
        return None

    async def aflush(self, session: SessionArg) -> None:
        """Send what a request wrote after its response started (a websocket's writes)."""
        rs = self._own(session)
        await self._bury(rs)
        if not rs._flags & PENDING:
            await flush(rs._record)

    async def _bury(self, rs: RequestSession) -> None:
        """Delete the ids this request killed (an async store could not at once)."""
        doomed, rs._doomed = rs._doomed, None
        take = getattr(self._provider, "session_take", None)
        for sid, carried in doomed or ():
            if carried and take is not None and await take(sid) is None and rs._flags & PENDING:
                # The session ended meanwhile (a logout elsewhere): what
                # regenerate carried over must not live on under the new id.
                self._detach(rs, kill=True)
            elif not carried or take is None:
                await _maybe(self._provider.session_destroy(sid))

    async def _adestroy_empty(self, sid: str) -> bool:
        if self._destroy_if_empty is not None:
            return bool(await _maybe(self._destroy_if_empty(sid)))
        stored = await _maybe(self._provider.session_read(sid))
        if stored is None or len(stored):
            return False
        await _maybe(self._provider.session_destroy(sid))
        return True

    async def _acommit(self, rs: RequestSession) -> None:
        record = rs._record
        for _ in range(3):
            try:
                if self._insert is not None:
                    await _maybe(self._insert(record))
                else:
                    stored = await _maybe(self._provider.session_init(record.sid))
                    stored.update(record)
                    if record.permanent is not None:
                        stored.permanent = record.permanent
                    await flush(stored)
                    record = stored
                rs._attach(record)
                return
            except ValueError:
                record = refill(self._new(new_session_id()), record)
        raise RuntimeError("memsession: could not store a new session under a fresh id")

    async def asession_destroy(self, session: SessionArg) -> None:
        """As session_destroy, deleting the old id at once rather than as the response starts."""
        self.session_destroy(session)
        await self._bury(self._own(session))

    async def asession_regenerate(self, session: SessionArg) -> None:
        """As session_regenerate, deleting the old id at once rather than as the response starts."""
        self.session_regenerate(session)
        await self._bury(self._own(session))

    async def agc(self) -> int:
        """As gc(), awaiting an async store."""
        return int(await _maybe(self._provider.session_gc(self._max_lifetime)))

    async def aclose(self) -> None:
        """As close(), and close the connections an async store opened."""
        self.close()
        close = getattr(self._provider, "aclose", None)
        if close is not None:
            await close()
