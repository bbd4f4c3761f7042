"""CachedRedisProvider: the compiled memory store as a near cache in front of Redis."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from time import monotonic as _monotonic
from typing import Any, Callable, Optional, Union

import redis as redis_py

from .._impl import MemoryProvider, readable
from ..copying import copy_value
from ..ids import check_sid
from ..seconds import seconds
from . import scripts
from .provider import RedisProvider
from .serializers import Serializer
from .session import RedisSession
from .tracking import Tracker, TrackingError

__all__ = ["CachedRedisProvider", "CachedRedisSession"]

# Session ids are URL-safe base64: tracking every key that starts with the
# prefix and one of these leaves the use-time keys (prefix + "~" + id) out.
_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_USE = "~"

# The near cache's entry for a session holds, under _META (a key no Redis
# session can hold: not a str), a list: the session as read, the last use
# recorded in Redis, and whether every value is immutable.
_META: Any = object()
_SESSION, _RECORDED, _PLAIN_ONLY = range(3)
_INF = float("inf")
_PLAIN = (str, int, float, bool, type(None), bytes)


class CachedRedisSession(RedisSession):
    """A session of CachedRedisProvider: written to Redis key by key, read from memory when fresh."""

    __slots__ = ()

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._data))  # requests of one worker may share this object

    def _write(self, fields: dict[str, Any]) -> None:
        try:
            super()._write(fields)
        finally:
            self._provider._forget(self._sid)  # type: ignore[attr-defined]

    def _remove(self, *fields: str) -> None:
        try:
            super()._remove(*fields)
        finally:
            self._provider._forget(self._sid)  # type: ignore[attr-defined]

    def _wipe(self) -> None:
        try:
            super()._wipe()
        finally:
            self._provider._forget(self._sid)  # type: ignore[attr-defined]


class _Unrecorded:
    """A session served from memory whose use Redis has not recorded yet."""

    __slots__ = ("session",)

    def __init__(self, session: CachedRedisSession) -> None:
        self.session = session


class CachedRedisProvider(RedisProvider):
    """Redis holds the sessions; each process keeps the ones it read in the compiled store.

    Coherence (read-your-writes across workers): every hash is tracked by a
    RESP3 connection in CLIENT TRACKING BCAST mode, so Redis pushes an
    invalidation for each write of any worker to every worker. Redis queues
    that push before it sends the writer its reply, so by the time a request
    that wrote has been answered and the user's next request reaches any
    worker, the invalidation is on that worker's tracking socket; each read
    drains the socket (a non-blocking poll) before it may use a local copy.
    A Redis read that an invalidation for the same key overtook is served
    but not kept. A write also drops the writer's own copy at once.

    When the tracking connection breaks (Redis restarted, a cut network: a
    PING unanswered for a heartbeat), the whole near cache is dropped and
    every read goes to Redis until the connection is back; it is retried at
    most once per heartbeat.

    Expiry: a local copy is served only while its idle time, counted from
    the latest use this worker knows of, is within the lifetime; otherwise
    Redis decides (other workers may have used it). Uses served from memory
    are recorded in Redis at most once per refresh_interval per session (in
    a key outside the tracked ones, so recording invalidates nothing), and
    the hash's TTL is pushed out at most once per refresh_interval, always
    far enough that Redis never drops a session still within its lifetime.
    A session last used through another worker's memory within
    refresh_interval of a recorded use may therefore end up to
    refresh_interval early; it is never served after its lifetime.
    """

    _session_type = CachedRedisSession

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "memsession:",
        max_sessions: Optional[int] = None,
        refresh_interval: float = 1.0,
        heartbeat: float = 1.0,
        client: Optional[redis_py.Redis] = None,
        ttl: Optional[float] = None,
        timeout: float = 2.0,
        serializer: Optional[Serializer] = None,
        clock: Optional[Callable[[], float]] = None,
    ) -> None:
        super().__init__(
            url, prefix=prefix, client=client, ttl=ttl, timeout=timeout, serializer=serializer, clock=clock
        )
        self._refresh: float = seconds(refresh_interval, "refresh_interval")  # type: ignore[assignment]
        self._refresh_ms = int(self._refresh * 1000)
        heartbeat = seconds(heartbeat, "heartbeat")  # type: ignore[assignment]
        self._max_sessions = max_sessions
        self._cache_clock: Callable[[], float] = time.time if clock is None else self.now
        self._cache = MemoryProvider(max_sessions=max_sessions, clock=self._cache_clock)
        self._lock = threading.Lock()
        pool = self._client.connection_pool
        params = dict(pool.connection_kwargs)
        params["ssl"] = "SSL" in getattr(pool, "connection_class", type(None)).__name__
        self._tracker = Tracker(params, [prefix + c for c in _ID_ALPHABET], self._timeout, heartbeat)
        self._retry_at = 0.0
        self._heartbeat = heartbeat
        self._reading: dict[str, int] = {}  # ids with a Redis read in flight, and how many
        self._spoiled: set[str] = set()  # of those, ids invalidated meanwhile: not to be kept
        self._epoch = 0  # bumped whenever the whole near cache is dropped
        self._cached_read = self._client.register_script(scripts.CACHED_READ)
        self._cached_touch = self._client.register_script(scripts.CACHED_TOUCH)
        self._hits = self._fetched = self._invalidated = self._flushes = 0

    # -- the near cache -----------------------------------------------------
    def _sync(self) -> bool:
        """Apply pushed invalidations (call under the lock); False while tracking is down."""
        if self._tracker.drain(self._invalidate, self._flush):
            return True
        if len(self._cache) or self._reading:
            self._flush()
        now = time.monotonic()
        if now < self._retry_at:
            return False
        self._retry_at = now + self._heartbeat
        try:
            self._tracker.connect()
        except TrackingError:
            return False
        self._flush()  # a copy kept before may have missed invalidations
        return True

    def _invalidate(self, keys: list[bytes]) -> None:
        cut = len(self._prefix)
        destroy = self._cache.session_destroy
        for key in keys:
            sid = key[cut:].decode(errors="replace")
            if sid in self._reading:
                self._spoiled.add(sid)
            destroy(sid)
        self._invalidated += len(keys)

    def _flush(self) -> None:
        self._cache = MemoryProvider(max_sessions=self._max_sessions, clock=self._cache_clock)
        self._spoiled.update(self._reading)
        self._epoch += 1
        self._flushes += 1

    def _forget(self, sid: str) -> None:
        """Drop the local copy of sid (this process just wrote or removed it)."""
        with self._lock:
            # A read in flight may have seen the session before this change.
            if sid in self._reading:
                self._spoiled.add(sid)
            self._cache.session_destroy(sid)

    def _keep(self, sid: str, session: RedisSession) -> None:
        entry = self._cache.session_new(sid)
        # Immutable values only: concurrent requests of this worker may share
        # the session object, as with the memory provider (a write goes to
        # Redis and drops the entry). Otherwise each hit gets its own copy.
        plain = all(type(v) in _PLAIN for v in session._data.values())
        entry[_META] = [session, session._last_used, plain]
        self._cache.session_insert(entry)

    def _local(self, sid: str, limit: Optional[float]) -> Union[CachedRedisSession, _Unrecorded, None]:
        # Idle past the limit by this worker's uses: Redis decides, since
        # another worker may have used the session meanwhile.
        entry: Any = self._cache.session_read(sid, limit)
        return None if entry is None else self._served(entry, entry[_META])

    def _served(self, entry: Any, meta: list[Any]) -> Union[CachedRedisSession, _Unrecorded]:
        session: CachedRedisSession = meta[_SESSION]
        if not meta[_PLAIN_ONLY]:
            session = self._copy(session)
        session._last_used = used = entry.last_used
        self._hits += 1
        if used - meta[_RECORDED] >= self._refresh:
            meta[_RECORDED] = used
            return _Unrecorded(session)
        return session

    def _copy(self, kept: CachedRedisSession) -> CachedRedisSession:
        session = CachedRedisSession.__new__(CachedRedisSession)
        session._provider = self
        session._sid = kept._sid
        session._data = {k: copy_value(v) for k, v in kept._data.items()}  # changed in place by the app
        session._created = kept._created
        session._cookie_time = kept._cookie_time
        session._permanent = kept._permanent
        session._stored = True
        return session

    def _limit(self, max_lifetime: Optional[float]) -> Optional[float]:
        if max_lifetime is None:
            return None
        if (type(max_lifetime) is float or type(max_lifetime) is int) and 0 <= max_lifetime < _INF:
            return float(max_lifetime)
        return float(self._read_args(max_lifetime)[1])

    # -- Provider -----------------------------------------------------------
    def session_read(self, sid: str, max_lifetime: Optional[float] = None) -> Optional[RedisSession]:
        """The live session: from memory when this worker's copy is current, else from Redis."""
        if type(sid) is not str or not sid:
            sid = check_sid(sid)
        if max_lifetime is None or (type(max_lifetime) is float and 0.0 <= max_lifetime < _INF):
            limit = max_lifetime
        else:
            limit = self._limit(max_lifetime)
        tracker = self._tracker
        # Tracker.quiet() inlined: this is the path of every local hit.
        if (
            tracker._sock is not None
            and not readable(tracker._fd)
            and not tracker._busy
            and _monotonic() < tracker._next_ping
        ):
            entry: Any = self._cache.session_read(sid, limit)
            if entry is not None:
                meta = entry[_META]
                used = entry.last_used
                if meta[_PLAIN_ONLY] and used - meta[_RECORDED] < self._refresh:
                    session: CachedRedisSession = meta[_SESSION]
                    session._last_used = used
                    self._hits += 1
                    return session
                found = self._served(entry, meta)
            else:
                found = None
        else:
            with self._lock:
                found = self._local(sid, limit) if self._sync() else None
        if found is not None:
            if type(found) is _Unrecorded:
                return self._record(found.session, max_lifetime)
            return found  # type: ignore[return-value]
        return self._fetch(sid, max_lifetime)

    def _record(self, session: CachedRedisSession, max_lifetime: Optional[float]) -> Optional[RedisSession]:
        """Record a use served from memory in Redis (once per refresh interval per session)."""
        ttl = self._read_args(max_lifetime)[2]
        if not self._run(self._cached_touch, session._sid, [repr(session._last_used), ttl, self._refresh_ms]):
            self._forget(session._sid)
            return None
        return session

    def _fetch(self, sid: str, max_lifetime: Optional[float]) -> Optional[RedisSession]:
        """Read from Redis, and keep a copy unless an invalidation overtook the reply."""
        args = self._read_args(max_lifetime)
        with self._lock:
            epoch = self._epoch
            self._reading[sid] = self._reading.get(sid, 0) + 1
        try:
            self._fetched += 1
            reply = self._run(self._cached_read, sid, [*args, self._refresh_ms])
            loaded = self._load(sid, reply) if reply else None
        except BaseException:
            with self._lock:
                self._done_reading(sid)
            raise
        if loaded is not None:
            loaded._last_used = float(args[0])
        with self._lock:
            keep = self._sync() and epoch == self._epoch and sid not in self._spoiled
            self._done_reading(sid)
            if loaded is not None and keep:
                self._keep(sid, loaded)
        return loaded

    def _done_reading(self, sid: str) -> None:
        left = self._reading.get(sid, 1) - 1
        if left:
            self._reading[sid] = left
        else:
            self._reading.pop(sid, None)
            self._spoiled.discard(sid)

    def _read_args(self, max_lifetime: Optional[float]) -> list[Any]:
        args = super()._read_args(max_lifetime)
        # Covers the uses this worker records late, so Redis never drops a
        # session that is within its lifetime.
        args[2] = int(args[2]) + self._refresh_ms
        return args

    def session_update(self, sid: str) -> bool:
        """Mark the session used now (recorded in Redis); False when sid is unknown."""
        sid = check_sid(sid)
        now = self.now()
        return bool(
            self._run(self._cached_touch, sid, [repr(now), self._ttl_ms + self._refresh_ms, self._refresh_ms])
        )

    def session_destroy(self, sid: str) -> None:
        """Delete the session everywhere; nothing happens when sid is unknown."""
        sid = check_sid(sid)
        try:
            self._call(self._client.delete, self._key(sid), self._use_key(sid))
        finally:
            self._forget(sid)

    def session_take(self, sid: str) -> Optional[RedisSession]:
        """Delete the session's hash and return its data (detached); None when not live."""
        try:
            return super().session_take(sid)
        finally:
            self._forget(check_sid(sid))

    def session_destroy_if_empty(self, sid: str) -> bool:
        """Delete the session's hash if it holds no data key; True when deleted (atomic)."""
        try:
            return super().session_destroy_if_empty(sid)
        finally:
            self._forget(check_sid(sid))

    def session_gc(self, max_lifetime: float) -> int:
        """Drop local copies idle past max_lifetime; Redis expires the hashes itself (returns 0)."""
        super().session_gc(max_lifetime)
        with self._lock:
            self._cache.session_gc(max_lifetime)
        return 0

    def _use_key(self, sid: str) -> str:
        return self._prefix + _USE + sid

    def _run(self, script: Any, sid: str, args: list[Any]) -> Any:
        if script is self._cached_read or script is self._cached_touch:
            return self._call(lambda: script(keys=[self._key(sid), self._use_key(sid)], args=args))
        return super()._run(script, sid, args)

    def stats(self) -> dict[str, int]:
        """Counters: local_hits, redis_reads, invalidations, flushes, and cached (copies held now)."""
        with self._lock:
            return {
                "local_hits": self._hits,
                "redis_reads": self._fetched,
                "invalidations": self._invalidated,
                "flushes": self._flushes,
                "cached": len(self._cache),
            }

    @property
    def tracking(self) -> bool:
        """True while the tracking connection is up (reads may then be served from memory)."""
        with self._lock:
            return self._sync()

    def close(self) -> None:
        """Close the tracking connection and the connections of a client this provider made."""
        with self._lock:
            self._tracker.close()
            self._flush()
        super().close()
