"""The near cache both cached Redis providers share: local copies, invalidations, reconnects."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Optional, Union

from .._impl import MemoryProvider, NearReader, local_write
from ..copying import copy_value
from ..seconds import seconds
from .session import RedisSession
from .tracking import Tracker, TrackingError

__all__ = ["NearCache", "Unrecorded", "pool_params", "trackable"]

# Session ids are URL-safe base64: tracking every key that starts with the
# prefix and one of these leaves the use-time keys (prefix + "~" + id) out.
# An id starting with anything else is never stored (its hash would not be
# tracked, or would be another id's use-time key).
_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
USE = "~"

# The near cache's entry for a session holds, under META (a key no Redis
# session can hold: not a str), a list: the session as read, the last use
# recorded in Redis, whether every value is immutable, and (when not) the
# values as the serializer wrote them, for each hit to decode its own copy.
META: Any = object()
SESSION, RECORDED, PLAIN_ONLY, RAW = range(4)
_PLAIN = (str, int, float, bool, type(None), bytes)
_INF = float("inf")
_DAY = 86_400.0


def pool_params(pool: Any) -> dict[str, Any]:
    """What the tracking connection needs from a redis-py connection pool (host, auth, TLS...)."""
    params = dict(pool.connection_kwargs)
    params["ssl"] = "SSL" in getattr(pool, "connection_class", type(None)).__name__
    return params


def trackable(sid: str) -> bool:
    """True for an id whose hash the tracking connection covers (none other is stored)."""
    return sid[:1] in _ID_ALPHABET and sid[:1] != ""


class Unrecorded:
    """A session served from memory whose use Redis has not recorded yet."""

    __slots__ = ("session",)

    def __init__(self, session: RedisSession) -> None:
        self.session = session


class NearCache:
    """Local copies of sessions, dropped on every invalidation Redis pushes.

    Mixed into a Redis provider (which gives _prefix, _timeout, _clock, now,
    _read_args). Every method that changes the copies runs under _lock; the
    read path of a local hit takes no lock (see the providers' session_read).
    """

    _prefix: str
    _timeout: float
    _clock: Optional[Callable[[], float]]
    now: Callable[[], float]
    _read_args: Callable[[Optional[float]], list[Any]]

    def _near_init(
        self,
        params: dict[str, Any],
        max_sessions: Optional[int],
        refresh_interval: float,
        heartbeat: float,
        share: bool,
    ) -> None:
        self._refresh: float = seconds(refresh_interval, "refresh_interval")  # type: ignore[assignment]
        if self._refresh > _DAY:
            raise ValueError(
                f"refresh_interval must be at most a day ({_DAY:.0f} seconds), got {self._refresh!r}"
            )
        self._refresh_ms = int(self._refresh * 1000)
        self._heartbeat: float = seconds(heartbeat, "heartbeat")  # type: ignore[assignment]
        self._max_sessions = max_sessions
        # The store validates max_sessions; its clock must be the provider's.
        self._cache_clock: Callable[[], float] = time.time if self._clock is None else self.now
        self._cache = MemoryProvider(max_sessions=max_sessions, clock=self._cache_clock)
        self._share = share
        self._lock = threading.Lock()
        self._params = params
        self._reader = NearReader(self._cache, META, self._refresh, self._read_slow)
        self._tracker = self._new_tracker()
        self._retry_at = 0.0
        self._closes = 0  # how many times close() ran: a reconnect racing it gives up
        self._reading: dict[str, int] = {}  # ids with a Redis read in flight, and how many
        self._spoiled: set[str] = set()  # of those, ids invalidated meanwhile: not to be kept
        self._epoch = 0  # bumped whenever the whole near cache is dropped
        self._hits = self._recorded = self._fetched = self._invalidated = self._flushes = 0

    def _read_slow(self, sid: str, max_lifetime: Optional[float] = None) -> Any:
        """What the compiled reader cannot serve from memory (the sync provider's read)."""
        raise TypeError("this provider's session_read is a coroutine: await it")

    def _new_tracker(self) -> Tracker:
        prefixes = [self._prefix + c for c in _ID_ALPHABET]
        return Tracker(self._params, prefixes, self._timeout, self._heartbeat, self._reader)

    def _script_args(self, max_lifetime: Optional[float]) -> list[Any]:
        """now, idle limit, and the TTLs (use key, hash, floor) for CACHED_READ / CACHED_TOUCH."""
        now, limit, ttl_ms = self._read_args(max_lifetime)
        # The use key covers the lifetime, a second, and the uses this
        # worker records late; the hash lives longer and is pushed out only
        # when it gets within that, at most once per max(half of it, refresh).
        use_ttl = int(ttl_ms) + self._refresh_ms
        return [now, limit, use_ttl, use_ttl + max(self._refresh_ms, use_ttl // 2), use_ttl]

    def _hash_ttl(self, sid: str, args: list[Any]) -> list[Any]:
        """CREATE's arguments with the hash TTL a read would push it to (so it pushes nothing)."""
        if not trackable(sid):
            raise ValueError("sid must start with a URL-safe base64 character (A-Z a-z 0-9 - _)")
        args[1] = self._script_args(None)[3]
        return args

    def _use_key(self, sid: str) -> str:
        return self._prefix + USE + sid

    # -- applying what Redis pushes (under the lock) ---------------------------
    def _sync(self) -> bool:
        """Apply pushed invalidations; False (and nothing cached) while tracking is down."""
        if self._tracker.drain(self._invalidate, self._drop_all):
            return True
        if len(self._cache) or self._reading:
            self._drop_all()
        return False

    def _invalidate(self, keys: list[bytes]) -> None:
        cut = len(self._prefix.encode())  # Redis sends the keys as bytes
        destroy = self._cache.session_destroy
        for key in keys:
            sid = key[cut:].decode(errors="replace")
            if sid in self._reading:
                self._spoiled.add(sid)
            destroy(sid)
        self._invalidated += len(keys)

    def _drop_all(self) -> None:
        self._cache = self._reader.cache = MemoryProvider(
            max_sessions=self._max_sessions, clock=self._cache_clock
        )
        self._spoiled.update(self._reading)
        self._epoch += 1
        self._flushes += 1

    def _reconnect_due(self) -> bool:
        return not self._tracker.up and time.monotonic() >= self._retry_at

    def _reconnect(self) -> None:
        """Open a new tracking connection if one is due (blocking: run it off the event loop)."""
        with self._lock:
            if self._tracker.up or time.monotonic() < self._retry_at:
                return
            self._retry_at = time.monotonic() + self._heartbeat
            closes = self._closes
        tracker = self._new_tracker()
        try:
            tracker.connect()
        except TrackingError:
            return
        with self._lock:
            if closes != self._closes:  # closed while this was connecting
                tracker.close()
                return
            old, self._tracker = self._tracker, tracker
            old.close()
            self._drop_all()  # a copy kept before may have missed invalidations

    def _forget(self, sid: str) -> None:
        """Drop the local copy of sid (this process just wrote or removed it)."""
        local_write()
        with self._lock:
            # A read in flight may have seen the session before this change.
            if sid in self._reading:
                self._spoiled.add(sid)
            self._cache.session_destroy(sid)

    # -- local copies ----------------------------------------------------------
    def _limit(self, max_lifetime: Optional[float]) -> Optional[float]:
        if max_lifetime is None:
            return None
        if (type(max_lifetime) is float or type(max_lifetime) is int) and 0 <= max_lifetime < _INF:
            return float(max_lifetime)
        return float(self._read_args(max_lifetime)[1])

    def _local(self, sid: str, limit: Optional[float]) -> Union[RedisSession, Unrecorded, None]:
        """The local copy, if current (call under the lock after _sync)."""
        # Idle past the limit by this worker's uses: Redis decides, since
        # another worker may have used the session meanwhile.
        entry: Any = self._cache.session_read(sid, limit)
        return None if entry is None else self._served(entry, entry[META])

    def _served(self, entry: Any, meta: list[Any]) -> Union[RedisSession, Unrecorded]:
        session: RedisSession = meta[SESSION]
        if not (self._share and meta[PLAIN_ONLY]):
            session = self._copy(session, meta[RAW])
        session._last_used = used = entry.last_used
        if used - meta[RECORDED] >= self._refresh:
            meta[RECORDED] = used
            self._recorded += 1
            return Unrecorded(session)
        self._hits += 1
        return session

    def _copy(self, kept: RedisSession, raw: Optional[dict[str, bytes]] = None) -> RedisSession:
        session = type(kept)(kept._sid, kept._provider)
        if raw is None:
            session._data = {k: copy_value(v) for k, v in kept._data.items()}
        else:
            # Decoded again, as a Redis read would: a value of any type the
            # serializer makes is this request's own to change in place.
            loads = kept._provider._serializer.loads
            session._data = {k: loads(v) for k, v in raw.items()}
        session._created = kept._created
        session._cookie_time = kept._cookie_time
        session._permanent = kept._permanent
        session._stored = True
        return session

    def _begin_fetch(self, sid: str) -> int:
        with self._lock:
            self._reading[sid] = self._reading.get(sid, 0) + 1
            return self._epoch

    def _end_fetch(self, sid: str, epoch: int, loaded: Optional[RedisSession]) -> None:
        """Keep what a Redis read returned, unless an invalidation overtook it."""
        with self._lock:
            keep = loaded is not None and self._sync() and epoch == self._epoch and sid not in self._spoiled
            left = self._reading.get(sid, 1) - 1
            if left:
                self._reading[sid] = left
            else:
                self._reading.pop(sid, None)
                self._spoiled.discard(sid)
            if keep and loaded is not None:
                self._keep(sid, loaded)

    def _keep(self, sid: str, session: RedisSession) -> None:
        entry = self._cache.session_new(sid)
        # Immutable values only: concurrent requests of this worker may share
        # the session object, as with the memory provider (a write goes to
        # Redis and drops the entry). Otherwise each hit gets its own copy.
        plain = all(type(v) in _PLAIN for v in session._data.values())
        # The request that read it may change its values in place, or (async)
        # hold writes back until the response: then the entry is a copy.
        kept = session if self._share and plain else self._copy(session)
        raw = None if plain else {k: session._encode(k, v) for k, v in kept._data.items()}
        entry[META] = [kept, session._last_used, plain, raw]
        # Two reads of one session from Redis at once: both saw what is
        # stored now (neither was overtaken), so the later one replaces.
        self._cache.session_destroy(sid)
        self._cache.session_insert(entry)

    def stats(self) -> dict[str, int]:
        """Counters, and how many copies are held now (cached).

        local_hits: reads served from memory with no round trip;
        recorded_hits: reads served from memory that recorded the use in
        Redis (one round trip); redis_reads; invalidations applied; flushes
        of the whole near cache. Counted without a lock: under threads, a
        close figure, not an exact one.
        """
        with self._lock:
            return {
                "local_hits": self._hits + self._reader.hits,
                "recorded_hits": self._recorded,
                "redis_reads": self._fetched,
                "invalidations": self._invalidated,
                "flushes": self._flushes,
                "cached": len(self._cache),
            }

    def _close_tracking(self) -> None:
        with self._lock:
            self._closes += 1
            self._retry_at = 0.0  # used again later: reopen at once
            self._tracker.close()
            self._drop_all()
