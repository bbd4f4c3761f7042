"""RedisProvider: sessions in Redis hashes, the Provider interface for many processes."""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Optional
from urllib.parse import parse_qs, urlsplit

import redis as redis_py
from redis.exceptions import ConnectionError as _RedisConnectionError
from redis.exceptions import TimeoutError as _RedisTimeoutError

from ..errors import ProviderUnavailableError
from ..seconds import seconds
from ..session import check_sid, short_id
from . import scripts
from .serializers import JSONSerializer, Serializer
from .session import RedisSession

__all__ = ["RedisProvider"]

_DAY_MS = 86_400_000


def _where(url: str) -> tuple[str, tuple[str, ...]]:
    """Where a URL points, for messages, and the secrets it holds (never shown)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        # The message would repeat part of the URL, perhaps of its password.
        raise ValueError(
            "url is not a valid Redis URL (in a password, '/', '#', '?' and '@' must be percent-encoded)"
        ) from None
    secrets = tuple(s for s in (parts.password, *parse_qs(parts.query).get("password", ())) if s)
    where = f"{parts.scheme}://{parts.hostname or ''}" + (f":{port}" if port else "") + (parts.path or "")
    return where, secrets


class RedisProvider:
    """Sessions in Redis hashes: the Provider interface for many processes."""

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
        if not isinstance(url, str):
            raise TypeError(f"url must be str, not {type(url).__name__}")
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be str, not {type(prefix).__name__}")
        # How long Redis keeps a hash after its last use. None: the longest
        # idle lifetime a Manager has told this provider (plus a second),
        # a day until one has.
        self._fixed_ttl = ttl is not None
        self._learned = False
        self._ttl_ms = int(_seconds(ttl, "ttl") * 1000) if ttl is not None else _DAY_MS
        timeout = _seconds(timeout, "timeout")
        if clock is not None and not callable(clock):
            raise TypeError(f"clock must be callable, not {type(clock).__name__}")
        if serializer is not None and not (hasattr(serializer, "dumps") and hasattr(serializer, "loads")):
            raise TypeError("serializer must have dumps(value) -> bytes and loads(bytes)")
        self._owns_client = client is None
        self._secrets: tuple[str, ...] = ()
        if client is None:
            self._where, self._secrets = _where(url)
            try:
                client = redis_py.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
            except ValueError as exc:
                reason = str(exc)
                for secret in self._secrets:
                    reason = reason.replace(secret, "***")
                raise ValueError(f"url is not a valid Redis URL: {reason}") from None
        else:
            self._where = "the given client"
            password = client.connection_pool.connection_kwargs.get("password")
            self._secrets = (password,) if isinstance(password, str) and password else ()
        self._client = client
        self._prefix = prefix
        self._serializer: Serializer = serializer or JSONSerializer()
        self._clock = clock
        self._create_script = client.register_script(scripts.CREATE)
        self._read_script = client.register_script(scripts.READ)
        self._touch_script = client.register_script(scripts.TOUCH)
        self._write_script = client.register_script(scripts.WRITE)
        self._clear_script = client.register_script(scripts.CLEAR)
        self._destroy_empty_script = client.register_script(scripts.DESTROY_IF_EMPTY)

    @property
    def client(self) -> redis_py.Redis:
        """The redis-py client in use."""
        return self._client

    def _key(self, sid: str) -> str:
        return self._prefix + sid

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except (_RedisConnectionError, _RedisTimeoutError) as exc:
            reason = str(exc)
            for secret in self._secrets:
                reason = reason.replace(secret, "***")
            # Not chained: the driver's exception may repeat connection details.
            raise ProviderUnavailableError(f"Redis at {self._where} is unavailable: {reason}") from None

    def _run(self, script: Any, sid: str, args: list[Any]) -> Any:
        return self._call(lambda: script(keys=[self._key(sid)], args=args))

    def now(self) -> float:
        """Wall-clock seconds (or the injected clock)."""
        if self._clock is None:
            return time.time()
        now = self._clock()
        if isinstance(now, bool) or not isinstance(now, (int, float)):
            raise TypeError(f"clock must return a number, not {type(now).__name__}")
        if not math.isfinite(now):
            raise ValueError(f"clock must return a finite number, got {now!r}")
        return float(now)

    def _create(self, session: RedisSession, now: float) -> None:
        flat: list[Any] = []
        for key, value in session._data.items():
            flat += [scripts.DATA + key, session._encode(key, value)]
        if session._permanent is not None:
            flat += ["m:p", "1" if session._permanent else "0"]
        # The Manager sends the cookie right after storing: record that too.
        flat += ["m:k", repr(now)]
        created = self._run(self._create_script, session._sid, [repr(now), self._ttl_ms, *flat])
        if not created:
            raise ValueError(f"session {short_id(session._sid)!r} is live already")
        session._created = session._last_used = session._cookie_time = now
        session._stored = True

    def session_new(self, sid: str) -> RedisSession:
        """A detached session for sid, to be stored later by session_insert."""
        session = RedisSession(check_sid(sid), self)
        session._created = session._last_used = self.now()
        return session

    def session_init(self, sid: str) -> RedisSession:
        """Create and store a new, empty session under sid (atomic: never overwrites)."""
        session = RedisSession(check_sid(sid), self)
        self._create(session, self.now())
        return session

    def session_insert(self, session: RedisSession) -> None:
        """Store a detached session with all its data in one atomic step."""
        if not isinstance(session, RedisSession):
            raise TypeError(f"session must be a RedisSession, not {type(session).__name__}")
        if session._stored:
            raise ValueError("session is stored already")
        session._provider = self
        self._create(session, self.now())

    def session_read(self, sid: str, max_lifetime: Optional[float] = None) -> Optional[RedisSession]:
        """The live session, its idle time checked and refreshed in one atomic step."""
        sid = check_sid(sid)
        limit = -1.0 if max_lifetime is None else _seconds(max_lifetime, "max_lifetime", zero=True)
        # Redis drops the hash a second after the idle lifetime runs out; the
        # script's own check decides before that, exactly.
        ttl_ms = self._ttl_ms if max_lifetime is None else int(limit * 1000) + 1000
        now = self.now()
        reply = self._run(self._read_script, sid, [repr(now), repr(limit), ttl_ms])
        if not reply:
            return None
        return self._load(sid, reply)

    def _load(self, sid: str, reply: list[bytes]) -> RedisSession:
        session = RedisSession(sid, self)
        loads = self._serializer.loads
        for i in range(0, len(reply), 2):
            field, value = reply[i].decode(), reply[i + 1]
            if field.startswith(scripts.DATA):
                session._data[field[2:]] = loads(value)
            elif field == "m:c":
                session._created = float(value)
            elif field == "m:u":
                session._last_used = float(value)
            elif field == "m:k":
                session._cookie_time = float(value)
            elif field == "m:p":
                session._permanent = value == b"1"
        session._stored = True
        return session

    def session_update(self, sid: str) -> bool:
        """Mark the session used now; False when sid is unknown."""
        sid = check_sid(sid)
        return bool(self._run(self._touch_script, sid, [repr(self.now()), self._ttl_ms]))

    def session_destroy_if_empty(self, sid: str) -> bool:
        """Delete the session's hash if it holds no data key; True when deleted (atomic)."""
        sid = check_sid(sid)
        return bool(self._run(self._destroy_empty_script, sid, []))

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
        limit = _seconds(max_lifetime, "max_lifetime", zero=True)
        if not self._fixed_ttl:
            self._ttl_ms = max(self._ttl_ms if self._learned else 0, int(limit * 1000) + 1000)
            self._learned = True
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

    def __repr__(self) -> str:
        return f"<RedisProvider {self._where} prefix={self._prefix!r}>"


def _seconds(value: object, name: str, *, zero: bool = False) -> float:
    return seconds(value, name, zero=zero)  # type: ignore[return-value]
