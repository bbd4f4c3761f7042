"""AsyncRedisProvider: the Redis provider for asyncio apps, on redis.asyncio."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable, Optional

import redis.asyncio as redis_aio
from redis.exceptions import ConnectionError as _RedisConnectionError
from redis.exceptions import NoScriptError as _NoScriptError
from redis.exceptions import ResponseError as _RedisResponseError
from redis.exceptions import TimeoutError as _RedisTimeoutError

from ..ids import check_sid
from . import scripts
from .base import RedisBase, server_cannot_serve
from .serializers import Serializer
from .session import _DELETE, AsyncRedisSession

__all__ = ["AsyncRedisProvider"]

_SCRIPTS = ("CREATE", "READ", "TOUCH", "WRITE", "CLEAR", "DESTROY_IF_EMPTY", "TAKE")


class _Connection:
    """A redis.asyncio client and its scripts, bound to one event loop."""

    def __init__(self, client: redis_aio.Redis, loop: asyncio.AbstractEventLoop) -> None:
        self.client = client
        self.loop = loop
        self.scripts = {name: client.register_script(getattr(scripts, name)) for name in _SCRIPTS}
        self.closer: Any = None


async def _close_at_loop_end(client: redis_aio.Redis) -> Any:
    """An async generator: its finally runs when the loop shuts down its async generators."""
    try:
        yield
    finally:
        await client.aclose()


class AsyncRedisProvider(RedisBase):
    """Sessions in Redis hashes for asyncio apps: the Provider methods as coroutines.

    Same storage and semantics as RedisProvider (one hash per session,
    per-key writes, atomic create and read in Lua, JSON by default), but no
    call blocks the event loop. Connections are opened lazily in the running
    loop; a provider used from another loop (tests often make several) opens
    its own there. aclose() closes them; the ASGI middleware calls it on
    lifespan.shutdown. Writes a request makes wait in its AsyncRedisSession
    until flush(), which the ASGI middleware awaits as the response starts.
    """

    _session_type = AsyncRedisSession

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "memsession:",
        client: Optional[redis_aio.Redis] = None,
        ttl: Optional[float] = None,
        timeout: float = 2.0,
        serializer: Optional[Serializer] = None,
        clock: Optional[Callable[[], float]] = None,
    ) -> None:
        super().__init__(url, prefix, ttl, timeout, serializer, clock)
        self._url = url
        self._given_client = None if client is None else self._given(client)
        if client is None:
            self._from_url(url, lambda *a, **k: None)  # validates the URL, learns what to hide
        self._connections: dict[int, _Connection] = {}
        self._lock = threading.Lock()

    async def _connection(self) -> _Connection:
        loop = asyncio.get_running_loop()
        found = self._connections.get(id(loop))
        if found is not None and found.loop is loop:
            return found
        if self._given_client is not None:
            client = self._given_client
        else:
            client = redis_aio.Redis.from_url(
                self._url, socket_timeout=self._timeout, socket_connect_timeout=self._timeout
            )
        made = _Connection(client, loop)
        if self._given_client is None:
            made.closer = _close_at_loop_end(client)
            await made.closer.__anext__()
        with self._lock:
            # Drop connections of loops that are gone (closed by the tests or the server).
            for k in [k for k, c in self._connections.items() if c.loop.is_closed()]:
                del self._connections[k]
            self._connections[id(loop)] = made
        return made

    async def _call(self, make: Callable[[_Connection], Any]) -> Any:
        try:
            return await make(await self._connection())
        except (_RedisConnectionError, _RedisTimeoutError) as exc:
            # Not chained: the driver's exception may repeat connection details.
            raise self._unavailable(exc) from None
        except _RedisResponseError as exc:
            if server_cannot_serve(exc):
                raise self._unavailable(exc) from None
            raise

    async def _run(self, name: str, sid: str, args: list[Any]) -> Any:
        key = self._key(sid)
        return await self._call(lambda c: c.scripts[name](keys=[key], args=args))

    async def session_init(self, sid: str) -> AsyncRedisSession:
        """Create and store a new, empty session under sid (atomic: never overwrites)."""
        return await self._store(self._session_type(check_sid(sid), self))

    async def session_insert(self, session: AsyncRedisSession) -> None:
        """Store a detached session with all its data in one atomic step."""
        await self._store(self._check_insert(session))  # type: ignore[arg-type]

    async def _store(self, session: AsyncRedisSession) -> AsyncRedisSession:
        now = self.now()
        self._created(session, await self._run("CREATE", session._sid, self._create_args(session, now)), now)
        return session

    async def session_read(
        self, sid: str, max_lifetime: Optional[float] = None
    ) -> Optional[AsyncRedisSession]:
        """The live session, its idle time checked and refreshed in one atomic step."""
        sid = check_sid(sid)
        reply = await self._run("READ", sid, self._read_args(max_lifetime))
        return self._load(sid, reply) if reply else None  # type: ignore[return-value]

    async def session_update(self, sid: str) -> bool:
        """Mark the session used now; False when sid is unknown."""
        sid = check_sid(sid)
        return bool(await self._run("TOUCH", sid, [repr(self.now()), self._ttl_ms]))

    async def session_destroy_if_empty(self, sid: str) -> bool:
        """Delete the session's hash if it holds no data key; True when deleted (atomic)."""
        return bool(await self._run("DESTROY_IF_EMPTY", check_sid(sid), []))

    async def session_take(self, sid: str) -> Optional[AsyncRedisSession]:
        """Delete the session's hash and return its data (detached); None when not live."""
        sid = check_sid(sid)
        reply = await self._run("TAKE", sid, [])
        return self._detached(sid, reply) if reply else None  # type: ignore[return-value]

    async def session_destroy(self, sid: str) -> None:
        """Delete the session's hash; nothing happens when sid is unknown."""
        key = self._key(check_sid(sid))
        await self._call(lambda c: c.client.delete(key))

    async def session_gc(self, max_lifetime: float) -> int:
        """Return 0: Redis expires idle hashes itself (see RedisProvider.session_gc)."""
        self.expect_lifetime(max_lifetime)
        return 0

    async def _flush(self, sid: str, changes: dict[str, Any], wiped: bool) -> bool:
        """Apply one session's waiting changes in one pipelined round trip."""
        key = self._key(sid)
        writes: list[Any] = []
        removes = []
        for name, value in changes.items():
            if value is _DELETE:
                removes.append(name)
            else:
                writes += [name, value]

        async def send(c: _Connection) -> Any:
            # evalsha by hand: a pipeline given Script objects first asks the
            # server whether they are loaded, one more round trip per request.
            async with c.client.pipeline(transaction=False) as pipe:
                if wiped:
                    pipe.evalsha(c.scripts["CLEAR"].sha, 1, key)
                if writes:
                    pipe.evalsha(c.scripts["WRITE"].sha, 1, key, *writes)
                else:
                    pipe.hexists(key, "m:u")
                if removes:
                    pipe.hdel(key, *removes)
                return await pipe.execute()

        async def send_loading_scripts(c: _Connection) -> Any:
            try:
                return await send(c)
            except _NoScriptError:  # a restarted or flushed server: load them, send again
                for script in c.scripts.values():
                    script.sha = await c.client.script_load(script.script)
                return await send(c)

        replies = await self._call(send_loading_scripts)
        # The write script refuses a hash that is gone (destroyed, expired).
        return bool(replies[1 if wiped else 0])

    async def aclose(self) -> None:
        """Close the connections this provider opened (not a client it was given)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            # Other loops still running keep theirs: only they can close them.
            mine = [c for c in self._connections.values() if c.loop is loop or c.loop.is_closed()]
            self._connections = {
                k: c for k, c in self._connections.items() if c.loop is not loop and not c.loop.is_closed()
            }
        if self._given_client is not None:
            return
        for c in mine:
            if c.loop is loop:
                await c.client.aclose()
                if c.closer is not None:
                    await c.closer.aclose()

    async def __aenter__(self) -> AsyncRedisProvider:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
