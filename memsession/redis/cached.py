"""CachedRedisProvider: the compiled memory store as a near cache in front of Redis."""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, KeysView, ValuesView
from typing import Any, Callable, Optional

import redis as redis_py

from ..ids import check_sid
from . import scripts
from .near import NearCache, Unrecorded, pool_params, trackable
from .provider import RedisProvider
from .serializers import Serializer
from .session import RedisSession

__all__ = ["CachedRedisProvider", "CachedRedisSession"]


class CachedRedisSession(RedisSession):
    """A session of CachedRedisProvider: written to Redis key by key, read from memory when current."""

    __slots__ = ()

    # Requests of one worker may share this object: views are of a copy
    # taken in one step, so another request's write cannot break them.
    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._data))

    def keys(self) -> KeysView[Any]:
        """The keys, as of now."""
        return self._data.copy().keys()

    def items(self) -> ItemsView[Any, Any]:
        """The (key, value) pairs, as of now."""
        return self._data.copy().items()

    def values(self) -> ValuesView[Any]:
        """The values, as of now."""
        return self._data.copy().values()

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


class CachedRedisProvider(NearCache, RedisProvider):
    """Redis holds the sessions; each process keeps the ones it read in the compiled store.

    Coherence (read-your-writes across workers): every hash is tracked by a
    RESP3 connection in CLIENT TRACKING BCAST mode, so Redis pushes an
    invalidation for each write of any worker to every worker. Redis queues
    that push before it sends the writer its reply, so by the time a request
    that wrote has been answered and the user's next request reaches any
    worker, the invalidation is on that worker's tracking socket; each read
    drains the socket (a non-blocking poll) before it may use a local copy
    (skipped when a poll found it empty less than 20 µs ago and this
    process wrote nothing since: no request can follow a completed write
    of another process that fast).
    A Redis read that an invalidation for the same key overtook is served
    but not kept. A write also drops the writer's own copy at once.

    When the tracking connection breaks, the whole near cache is dropped and
    every read goes to Redis until the connection is back; it is retried at
    most once per heartbeat. A closed connection (Redis restarted) is seen
    by the next read. A silent one (a cut network) is seen when a PING sent
    once per heartbeat goes unanswered for max(heartbeat, timeout): until
    then, at most that long, a worker may serve a copy another worker has
    changed meanwhile.

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
        self._near_init(
            pool_params(self._client.connection_pool), max_sessions, refresh_interval, heartbeat, share=True
        )
        self._cached_read = self._client.register_script(scripts.CACHED_READ)
        self._cached_touch = self._client.register_script(scripts.CACHED_TOUCH)
        # The compiled local hit itself, not a method calling it: this is
        # what every request's read goes through.
        vars(self)["session_read"] = self._reader.read

    def session_read(self, sid: str, max_lifetime: Optional[float] = None) -> Optional[RedisSession]:
        """The live session: from memory when this worker's copy is current, else from Redis."""
        return self._reader.read(sid, max_lifetime)  # type: ignore[no-any-return]

    def _read_slow(self, sid: str, max_lifetime: Optional[float] = None) -> Optional[RedisSession]:
        """Whatever the compiled local hit does not serve: copies to check or record, Redis reads."""
        sid = check_sid(sid)
        limit = self._limit(max_lifetime)
        with self._lock:
            found = self._local(sid, limit) if self._sync() else None
        if found is None and self._reconnect_due():
            self._reconnect()
        if found is None:
            return self._fetch(sid, max_lifetime)
        if type(found) is Unrecorded:
            return self._record(found.session, max_lifetime)
        return found  # type: ignore[return-value]

    def _record(self, session: RedisSession, max_lifetime: Optional[float]) -> Optional[RedisSession]:
        """Record a use served from memory in Redis (once per refresh interval per session)."""
        ttls = self._script_args(max_lifetime)[2:]
        if not self._run(self._cached_touch, session._sid, [repr(session._last_used), *ttls]):
            self._forget(session._sid)
            return None
        return session

    def _fetch(self, sid: str, max_lifetime: Optional[float]) -> Optional[RedisSession]:
        """Read from Redis, and keep a copy unless an invalidation overtook the reply."""
        if not trackable(sid):
            return None
        args = self._script_args(max_lifetime)
        epoch = self._begin_fetch(sid)
        loaded = None
        try:
            self._fetched += 1
            reply = self._run(self._cached_read, sid, args)
            loaded = self._load(sid, reply) if reply else None
            if loaded is not None:
                loaded._last_used = float(args[0])
        finally:
            self._end_fetch(sid, epoch, loaded)
        return loaded

    def session_update(self, sid: str) -> bool:
        """Mark the session used now (recorded in Redis); False when sid is unknown."""
        sid = check_sid(sid)
        return bool(self._run(self._cached_touch, sid, [repr(self.now()), *self._script_args(None)[2:]]))

    def _create_args(self, session: RedisSession, now: float) -> list[Any]:
        return self._hash_ttl(session._sid, super()._create_args(session, now))

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

    def _run(self, script: Any, sid: str, args: list[Any]) -> Any:
        if script is self._cached_read or script is self._cached_touch:
            return self._call(lambda: script(keys=[self._key(sid), self._use_key(sid)], args=args))
        return super()._run(script, sid, args)

    @property
    def tracking(self) -> bool:
        """True while the tracking connection is up (reads may then be served from memory)."""
        with self._lock:
            if self._sync():
                return True
        self._reconnect()
        with self._lock:
            return self._sync()

    def close(self) -> None:
        """Close the tracking connection and the connections of a client this provider made."""
        self._close_tracking()
        super().close()
