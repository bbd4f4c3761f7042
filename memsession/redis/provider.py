"""RedisProvider: sessions in Redis hashes, the Provider interface for many processes."""

from __future__ import annotations

from typing import Any, Callable, Optional

import redis as redis_py
from redis.exceptions import ConnectionError as _RedisConnectionError
from redis.exceptions import ResponseError as _RedisResponseError
from redis.exceptions import TimeoutError as _RedisTimeoutError

from ..ids import check_sid
from . import scripts
from .base import RedisBase, server_cannot_serve
from .serializers import Serializer
from .session import RedisSession

__all__ = ["RedisProvider"]


class RedisProvider(RedisBase):
    """Sessions in Redis hashes: the Provider interface for many processes (blocking calls)."""

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "memsession:",
        client: Optional[redis_py.Redis] = None,
        ttl: Optional[float] = None,
        timeout: float = 2.0,
        serializer: Optional[Serializer] = None,
        clock: Optional[Callable[[], float]] = None,
    ) -> None:
        super().__init__(url, prefix, ttl, timeout, serializer, clock)
        self._owns_client = client is None
        self._client: redis_py.Redis = (
            self._from_url(url, redis_py.Redis.from_url) if client is None else self._given(client)
        )
        register = self._client.register_script
        self._create_script = register(scripts.CREATE)
        self._read_script = register(scripts.READ)
        self._touch_script = register(scripts.TOUCH)
        self._write_script = register(scripts.WRITE)
        self._clear_script = register(scripts.CLEAR)
        self._destroy_empty_script = register(scripts.DESTROY_IF_EMPTY)
        self._take_script = register(scripts.TAKE)

    @property
    def client(self) -> redis_py.Redis:
        """The redis-py client in use."""
        return self._client

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except (_RedisConnectionError, _RedisTimeoutError) as exc:
            # Not chained: the driver's exception may repeat connection details.
            raise self._unavailable(exc) from None
        except _RedisResponseError as exc:
            if server_cannot_serve(exc):
                raise self._unavailable(exc) from None
            raise

    def _run(self, script: Any, sid: str, args: list[Any]) -> Any:
        return self._call(lambda: script(keys=[self._key(sid)], args=args))

    def session_init(self, sid: str) -> RedisSession:
        """Create and store a new, empty session under sid (atomic: never overwrites)."""
        return self._store(self._session_type(check_sid(sid), self))

    def session_insert(self, session: RedisSession) -> None:
        """Store a detached session with all its data in one atomic step."""
        self._store(self._check_insert(session))

    def _store(self, session: RedisSession) -> RedisSession:
        now = self.now()
        self._created(
            session, self._run(self._create_script, session._sid, self._create_args(session, now)), now
        )
        return session

    def session_read(self, sid: str, max_lifetime: Optional[float] = None) -> Optional[RedisSession]:
        """The live session, its idle time checked and refreshed in one atomic step."""
        sid = check_sid(sid)
        reply = self._run(self._read_script, sid, self._read_args(max_lifetime))
        return self._load(sid, reply) if reply else None

    def session_update(self, sid: str) -> bool:
        """Mark the session used now; False when sid is unknown."""
        sid = check_sid(sid)
        return bool(self._run(self._touch_script, sid, [repr(self.now()), self._ttl_ms]))

    def session_destroy_if_empty(self, sid: str) -> bool:
        """Delete the session's hash if it holds no data key; True when deleted (atomic)."""
        return bool(self._run(self._destroy_empty_script, check_sid(sid), []))

    def session_take(self, sid: str) -> Optional[RedisSession]:
        """Delete the session's hash and return its data (detached); None when not live."""
        sid = check_sid(sid)
        reply = self._run(self._take_script, sid, [])
        return self._detached(sid, reply) if reply else None

    def session_destroy(self, sid: str) -> None:
        """Delete the session's hash; nothing happens when sid is unknown."""
        self._call(self._client.delete, self._key(check_sid(sid)))

    def session_gc(self, max_lifetime: float) -> int:
        """Return 0: Redis expires idle hashes itself (each use renews the key's TTL).

        Reads also check the idle time exactly, so an expired session is never
        served even before Redis drops it; scanning every key here would cost
        O(all sessions) on the shared server for nothing. Without a fixed
        ttl, the lifetime given here (the Manager's) becomes the TTL that
        creating and touching a session set, so Redis never drops a session
        that is still within its lifetime.
        """
        self.expect_lifetime(max_lifetime)
        return 0

    def close(self) -> None:
        """Close the connections of a client this provider made (not of one it was given)."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> RedisProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __contains__(self, sid: object) -> bool:
        if not isinstance(sid, str) or not sid:
            return False
        return bool(self._call(self._client.hexists, self._key(sid), "m:u"))
