"""AsyncCachedRedisProvider: the near cache in front of Redis for asyncio apps."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Optional

import redis.asyncio as redis_aio
from redis.connection import parse_url

from ..ids import check_sid
from .aio import AsyncRedisProvider, _Connection
from .near import NearCache, Unrecorded, pool_params, trackable
from .scripts import CACHED_READ, CACHED_TOUCH
from .serializers import Serializer
from .session import AsyncRedisSession, RedisSession

__all__ = ["AsyncCachedRedisProvider", "AsyncCachedRedisSession"]


class AsyncCachedRedisSession(AsyncRedisSession):
    """A session of AsyncCachedRedisProvider: flush() sends the writes and drops local copies."""

    __slots__ = ()

    async def flush(self) -> bool:
        """Send the waiting changes in one pipelined round trip; False when the session is gone."""
        if not self.dirty:
            return True
        try:
            return await super().flush()
        finally:
            self._provider._forget(self._sid)  # type: ignore[attr-defined]


class AsyncCachedRedisProvider(NearCache, AsyncRedisProvider):
    """CachedRedisProvider's near cache and rules, with the Provider methods as coroutines.

    A read served from memory does no I/O at all; a read from Redis, a
    recorded use and every write are awaited, so the event loop never blocks
    on the network; reopening the tracking connection runs in a thread.
    Each request gets its own copy of a locally served session (its writes
    wait in it until the response starts).
    """

    _session_type = AsyncCachedRedisSession

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "memsession:",
        max_sessions: Optional[int] = None,
        refresh_interval: float = 1.0,
        heartbeat: float = 1.0,
        client: Optional[redis_aio.Redis] = None,
        ttl: Optional[float] = None,
        timeout: float = 2.0,
        serializer: Optional[Serializer] = None,
        clock: Optional[Callable[[], float]] = None,
    ) -> None:
        super().__init__(
            url, prefix=prefix, client=client, ttl=ttl, timeout=timeout, serializer=serializer, clock=clock
        )
        if client is not None:
            params = pool_params(client.connection_pool)
        else:
            params = dict(parse_url(url))  # type: ignore[no-untyped-call]
            params["ssl"] = "SSL" in getattr(params.get("connection_class"), "__name__", "")
        self._near_init(params, max_sessions, refresh_interval, heartbeat, share=False)

    async def _script(self, source: str, sid: str, args: list[Any]) -> Any:
        keys = [self._key(sid), self._use_key(sid)]

        def run(c: _Connection) -> Any:
            script = c.scripts.get(source)
            if script is None:
                script = c.scripts[source] = c.client.register_script(source)
            return script(keys=keys, args=args)

        return await self._call(run)

    async def session_read(  # type: ignore[override]
        self, sid: str, max_lifetime: Optional[float] = None
    ) -> Optional[RedisSession]:
        """The live session: from memory when this worker's copy is current, else from Redis."""
        sid = check_sid(sid)
        limit = self._limit(max_lifetime)
        if self._reader.quiet():
            found = self._local(sid, limit)
        else:
            with self._lock:
                found = self._local(sid, limit) if self._sync() else None
            if found is None and self._reconnect_due():
                await asyncio.get_running_loop().run_in_executor(None, self._reconnect)
        if isinstance(found, Unrecorded):
            session = found.session
            ttls = self._script_args(max_lifetime)[2:]
            if not await self._script(CACHED_TOUCH, sid, [repr(session._last_used), *ttls]):
                self._forget(sid)
                return None
            return session
        if found is not None:
            return found
        if not trackable(sid):
            return None
        args = self._script_args(max_lifetime)
        epoch = self._begin_fetch(sid)
        loaded = None
        try:
            self._fetched += 1
            reply = await self._script(CACHED_READ, sid, args)
            loaded = self._load(sid, reply) if reply else None
            if loaded is not None:
                loaded._last_used = float(args[0])
        finally:
            self._end_fetch(sid, epoch, loaded)
        return loaded

    async def session_update(self, sid: str) -> bool:
        """Mark the session used now (recorded in Redis); False when sid is unknown."""
        sid = check_sid(sid)
        ttls = self._script_args(None)[2:]
        return bool(await self._script(CACHED_TOUCH, sid, [repr(self.now()), *ttls]))

    def _create_args(self, session: RedisSession, now: float) -> list[Any]:
        return self._hash_ttl(session._sid, super()._create_args(session, now))

    async def session_destroy(self, sid: str) -> None:
        """Delete the session everywhere; nothing happens when sid is unknown."""
        sid = check_sid(sid)
        keys = (self._key(sid), self._use_key(sid))
        try:
            await self._call(lambda c: c.client.delete(*keys))
        finally:
            self._forget(sid)

    async def session_take(self, sid: str) -> Optional[RedisSession]:  # type: ignore[override]
        """Delete the session's hash and return its data (detached); None when not live."""
        try:
            return await super().session_take(sid)
        finally:
            self._forget(check_sid(sid))

    async def session_destroy_if_empty(self, sid: str) -> bool:
        """Delete the session's hash if it holds no data key; True when deleted (atomic)."""
        try:
            return await super().session_destroy_if_empty(sid)
        finally:
            self._forget(check_sid(sid))

    async def session_gc(self, max_lifetime: float) -> int:
        """Drop local copies idle past max_lifetime; Redis expires the hashes itself (returns 0)."""
        await super().session_gc(max_lifetime)
        with self._lock:
            self._cache.session_gc(max_lifetime)
        return 0

    @property
    def tracking(self) -> bool:
        """True while the tracking connection is up (never blocks: reopening happens on reads)."""
        with self._lock:
            return self._sync()

    async def aclose(self) -> None:
        """Close the tracking connection and the connections this provider opened."""
        self._close_tracking()
        await super().aclose()
