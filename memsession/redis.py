"""RedisProvider: the Provider interface on Redis, for several processes or machines.

Each session is one Redis hash: ``m:c`` (created), ``m:u`` (last used),
``m:k`` (cookie last sent), ``m:p`` (permanent), and ``d:<key>`` per data key.
Writes go to Redis key by key as they happen, so two concurrent requests of
one session that write different keys lose nothing.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any, Callable, Optional, Protocol

try:
    import redis as redis_py
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError(
        "memsession.redis needs the redis package: pip install 'memsession[redis]'"
    ) from exc
from redis.exceptions import ConnectionError as _RedisConnectionError
from redis.exceptions import TimeoutError as _RedisTimeoutError

from ._core_py import Session, _as_seconds, _as_time, _check_sid, _short
from .errors import ProviderUnavailableError

__all__ = ["JSONSerializer", "RedisProvider", "RedisSession", "Serializer"]

_DATA = "d:"
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'm:c', ARGV[1], 'm:u', ARGV[1], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""
_READ = """
local u = redis.call('HGET', KEYS[1], 'm:u')
if not u then return false end
if tonumber(ARGV[2]) >= 0 and tonumber(ARGV[1]) - tonumber(u) > tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('HSET', KEYS[1], 'm:u', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return redis.call('HGETALL', KEYS[1])
"""
_TOUCH = """
if redis.call('HEXISTS', KEYS[1], 'm:u') == 0 then return 0 end
redis.call('HSET', KEYS[1], 'm:u', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""
# Never recreate a session that expired or was destroyed meanwhile: a write
# to a missing hash would leave a partial one behind, with no expiry.
_WRITE = """
if redis.call('HEXISTS', KEYS[1], 'm:u') == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""
_CLEAR = """
local gone = 0
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, 2) == 'd:' then
    redis.call('HDEL', KEYS[1], field)
    gone = gone + 1
  end
end
return gone
"""


class Serializer(Protocol):
    """How session values become bytes in Redis and back."""

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class JSONSerializer:
    """JSON values (the default): safe to load whatever is in the store."""

    def dumps(self, value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()

    def loads(self, data: bytes) -> Any:
        return json.loads(data)


def _unavailable(where: str, exc: Exception) -> ProviderUnavailableError:
    return ProviderUnavailableError(f"Redis at {where} is unavailable: {exc}")


class RedisSession(Session):
    """A session whose writes go straight to its Redis hash, key by key."""

    __slots__ = ("_provider", "_cookie_time")

    def __init__(self, sid: str, provider: RedisProvider) -> None:
        super().__init__(sid)
        self._provider = provider
        self._cookie_time = -math.inf

    def _encode(self, key: Any, value: Any) -> bytes:
        if not isinstance(key, str):
            raise TypeError(f"session keys must be str with the Redis provider, not {type(key).__name__}")
        try:
            return self._provider._serializer.dumps(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"session value for {key!r} cannot be stored in Redis: {exc}") from exc

    def _write(self, fields: dict[str, Any]) -> None:
        """Send fields to Redis in one atomic command, if the session is stored."""
        if self._stored and fields:
            flat: list[Any] = []
            for name, value in fields.items():
                flat += [name, value]
            self._provider._run(self._provider._write_script, self._sid, flat)

    def _remove(self, *keys: str) -> None:
        if self._stored and keys:
            self._provider._call(self._provider._client.hdel, self._provider._key(self._sid), *keys)

    def __setitem__(self, key: Any, value: Any) -> None:
        data = self._encode(key, value)
        self._write({_DATA + key: data})
        super().__setitem__(key, value)

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Update from a mapping or pairs, in one Redis command."""
        new = dict(*args, **kwargs)
        encoded = [(k, self._encode(k, v)) for k, v in new.items()]
        self._write({_DATA + k: data for k, data in encoded})
        super().update(new)

    def __delitem__(self, key: Any) -> None:
        if not dict.__contains__(self, key):
            raise KeyError(key)
        self._remove(_DATA + key)
        super().__delitem__(key)

    def pop(self, key: Any, *default: Any) -> Any:
        """Remove key and return its value (or default)."""
        if dict.__contains__(self, key):
            self._remove(_DATA + key)
        return super().pop(key, *default)

    def clear(self) -> None:
        """Remove all data, including keys other requests added meanwhile."""
        if self._stored:
            self._provider._run(self._provider._clear_script, self._sid, [])
        super().clear()

    @property
    def _cookie_at(self) -> float:
        return self._cookie_time

    @_cookie_at.setter
    def _cookie_at(self, value: float) -> None:
        value = float(value)
        if value != self._cookie_time:
            self._write({"m:k": repr(value)})
            self._cookie_time = value

    def _save_permanent(self, wanted: Optional[bool]) -> None:
        # One command: the flag, and that the cookie is due again.
        if wanted is None:
            self._remove("m:p")
            self._write({"m:k": repr(-math.inf)})
        else:
            self._write({"m:p": "1" if wanted else "0", "m:k": repr(-math.inf)})
        self._cookie_time = -math.inf

    def _rekey(self, sid: object) -> None:
        # The Manager removes the old hash first; this proxy then no longer
        # belongs to a stored session.
        self._stored = False
        super()._rekey(sid)


class RedisProvider:
    """Sessions in Redis hashes: the Provider interface for many processes."""

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "memsession:",
        client: Optional[redis_py.Redis] = None,
        ttl: float = 86400.0,  # until a read with a lifetime renews the TTL to that lifetime
        timeout: float = 2.0,
        serializer: Optional[Serializer] = None,
        clock: Optional[Callable[[], float]] = None,
    ) -> None:
        if not isinstance(url, str):
            raise TypeError(f"url must be str, not {type(url).__name__}")
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be str, not {type(prefix).__name__}")
        self._ttl_ms = int(_positive(ttl, "ttl") * 1000)
        timeout = _positive(timeout, "timeout")
        if clock is not None and not callable(clock):
            raise TypeError(f"clock must be callable, not {type(clock).__name__}")
        if serializer is not None and not (hasattr(serializer, "dumps") and hasattr(serializer, "loads")):
            raise TypeError("serializer must have dumps(value) -> bytes and loads(bytes)")
        self._owns_client = client is None
        if client is None:
            client = redis_py.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
            self._where = url.rpartition("@")[2]  # never show a password
        else:
            self._where = "the given client"
        self._client = client
        self._prefix = prefix
        self._serializer: Serializer = serializer or JSONSerializer()
        self._clock = clock
        self._create_script = client.register_script(_CREATE)
        self._read_script = client.register_script(_READ)
        self._touch_script = client.register_script(_TOUCH)
        self._write_script = client.register_script(_WRITE)
        self._clear_script = client.register_script(_CLEAR)

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
            raise _unavailable(self._where, exc) from exc

    def _run(self, script: Any, sid: str, args: list[Any]) -> Any:
        return self._call(lambda: script(keys=[self._key(sid)], args=args))

    def now(self) -> float:
        """Wall-clock seconds (or the injected clock)."""
        return time.time() if self._clock is None else _as_time(self._clock())

    def _create(self, session: RedisSession, now: float) -> None:
        flat: list[Any] = []
        for key, value in dict.items(session):
            flat += [_DATA + key, session._encode(key, value)]
        if session._permanent is not None:
            flat += ["m:p", "1" if session._permanent else "0"]
        # The Manager sends the cookie right after storing: record that too.
        flat += ["m:k", repr(now)]
        created = self._run(self._create_script, session._sid, [repr(now), self._ttl_ms, *flat])
        if not created:
            raise ValueError(f"session {_short(session._sid)!r} is live already")
        session._created = session._last_used = session._cookie_time = now
        session._stored = True

    def session_new(self, sid: str) -> RedisSession:
        """A detached session for sid, to be stored later by session_insert."""
        session = RedisSession(_check_sid(sid), self)
        session._created = session._last_used = self.now()
        return session

    def session_init(self, sid: str) -> RedisSession:
        """Create and store a new, empty session under sid (atomic: never overwrites)."""
        session = RedisSession(_check_sid(sid), self)
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
        sid = _check_sid(sid)
        limit = -1.0 if max_lifetime is None else _as_seconds(max_lifetime, "max_lifetime")
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
            if field.startswith(_DATA):
                dict.__setitem__(session, field[2:], loads(value))
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
        sid = _check_sid(sid)
        return bool(self._run(self._touch_script, sid, [repr(self.now()), self._ttl_ms]))

    def session_destroy(self, sid: str) -> None:
        """Delete the session's hash; nothing happens when sid is unknown."""
        self._call(self._client.delete, self._key(_check_sid(sid)))

    def session_gc(self, max_lifetime: float) -> int:
        """Return 0: Redis expires idle hashes itself (each read renews the key's TTL).

        Reads also check the idle time exactly, so an expired session is never
        served even before Redis drops it; scanning every key here would cost
        O(all sessions) on the shared server for nothing.
        """
        _as_seconds(max_lifetime, "max_lifetime")
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


def _positive(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not (0 < value < math.inf):
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)
