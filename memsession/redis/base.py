"""What the sync and async Redis providers share: options, secrets, clock, replies."""

from __future__ import annotations

import math
import re
import time
from typing import Any, Callable, Optional
from urllib.parse import parse_qs, urlsplit

import redis.exceptions as _redis_exceptions

from ..errors import ProviderUnavailableError
from ..ids import check_sid, short_id
from ..seconds import seconds
from . import scripts
from .serializers import JSONSerializer, Serializer
from .session import RedisSession

__all__ = ["RedisBase"]

_DAY_MS = 86_400_000


def where(url: str) -> tuple[str, tuple[str, ...]]:
    """Where a URL points, for messages, and the secrets it holds (never shown)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        # The message would repeat part of the URL, perhaps of its password.
        raise ValueError(
            "url is not a valid Redis URL (in a password, '/', '#', '?' and '@' must be percent-encoded)"
        ) from None
    if "@" in parts.path + parts.query + parts.fragment or (
        parts.netloc.endswith(":") and "@" not in parts.netloc
    ):
        # An unescaped '/', '?' or '#' in a password ends the URL's user part
        # early, and the rest of the password would be shown as a path.
        raise ValueError(
            "url is not a valid Redis URL (in a password, '/', '#', '?' and '@' must be percent-encoded)"
        )
    secrets = tuple(s for s in (parts.password, *parse_qs(parts.query).get("password", ())) if s)
    db = parts.path if re.fullmatch(r"/\d*", parts.path or "/") else ""
    shown = f"{parts.scheme}://{parts.hostname or ''}" + (f":{port}" if port else "") + db
    return shown, secrets


# Replies that mean "this server cannot serve now", not "this command is wrong":
# out of memory, a read-only replica, loading, a busy script, no quorum.
_UNAVAILABLE_REPLIES = (
    "OOM",
    "READONLY",
    "LOADING",
    "MASTERDOWN",
    "BUSY",
    "NOREPLICAS",
    "CLUSTERDOWN",
    "TRYAGAIN",
)


# redis-py turns some of those replies into exception types of their own and
# cuts the code off the message (which ones depends on its version).
_UNAVAILABLE_TYPES: tuple[type, ...] = tuple(
    t
    for t in (
        getattr(_redis_exceptions, name, None)
        for name in (
            "OutOfMemoryError",
            "ReadOnlyError",
            "MasterDownError",
            "TryAgainError",
            "ClusterDownError",
        )
    )
    if isinstance(t, type)
)


def server_cannot_serve(exc: Exception) -> bool:
    """True for a Redis error reply that a retry later may not get."""
    if isinstance(exc, _UNAVAILABLE_TYPES):
        return True
    code = getattr(exc, "status_code", None) or str(exc).split(" ", 1)[0]
    return code in _UNAVAILABLE_REPLIES


class RedisBase:
    """Options and the Redis-free half of a Redis provider."""

    _session_type: type[RedisSession] = RedisSession

    def __init__(
        self,
        url: str,
        prefix: str,
        ttl: Optional[float],
        timeout: float,
        serializer: Optional[Serializer],
        clock: Optional[Callable[[], float]],
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
        self._timeout = _seconds(timeout, "timeout")
        if clock is not None and not callable(clock):
            raise TypeError(f"clock must be callable, not {type(clock).__name__}")
        if serializer is not None and not (hasattr(serializer, "dumps") and hasattr(serializer, "loads")):
            raise TypeError("serializer must have dumps(value) -> bytes and loads(bytes)")
        self._prefix = prefix
        self._serializer: Serializer = serializer or JSONSerializer()
        self._clock = clock
        self._where = "the given client"
        self._secrets: tuple[str, ...] = ()

    def _from_url(self, url: str, make: Callable[..., Any]) -> Any:
        """A client for url, never echoing the URL's secrets in an error."""
        self._where, self._secrets = where(url)
        try:
            return make(url, socket_timeout=self._timeout, socket_connect_timeout=self._timeout)
        except ValueError as exc:
            raise ValueError(f"url is not a valid Redis URL: {self._hide(str(exc))}") from None

    def _given(self, client: Any) -> Any:
        password = client.connection_pool.connection_kwargs.get("password")
        self._secrets = (password,) if isinstance(password, str) and password else ()
        return client

    def _hide(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _unavailable(self, exc: Exception) -> ProviderUnavailableError:
        return ProviderUnavailableError(f"Redis at {self._where} is unavailable: {self._hide(str(exc))}")

    def _key(self, sid: str) -> str:
        return self._prefix + sid

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

    def expect_lifetime(self, max_lifetime: float) -> None:
        """Keep hashes at least max_lifetime (+1 s) after each use, unless ttl was fixed."""
        limit = _seconds(max_lifetime, "max_lifetime", zero=True)
        if not self._fixed_ttl:
            self._ttl_ms = max(self._ttl_ms if self._learned else 0, int(limit * 1000) + 1000)
            self._learned = True

    def session_new(self, sid: str) -> RedisSession:
        """A detached session for sid, to be stored later by session_insert."""
        session = self._session_type(check_sid(sid), self)  # type: ignore[arg-type]
        session._created = session._last_used = self.now()
        return session

    def _create_args(self, session: RedisSession, now: float) -> list[Any]:
        flat: list[Any] = [repr(now), self._ttl_ms]
        for key, value in session._data.items():
            flat += [scripts.DATA + key, session._encode(key, value)]
        if session._permanent is not None:
            flat += ["m:p", "1" if session._permanent else "0"]
        # The Manager sends the cookie right after storing: record that too.
        flat += ["m:k", repr(now)]
        return flat

    def _created(self, session: RedisSession, created: Any, now: float) -> None:
        if not created:
            raise ValueError(f"session {short_id(session._sid)!r} is live already")
        session._created = session._last_used = session._cookie_time = now
        session._stored = True

    def _check_insert(self, session: object) -> RedisSession:
        if not isinstance(session, self._session_type):
            raise TypeError(f"session must be a {self._session_type.__name__}, not {type(session).__name__}")
        if session._stored:
            raise ValueError("session is stored already")
        session._provider = self  # type: ignore[assignment]
        return session

    def _read_args(self, max_lifetime: Optional[float]) -> list[Any]:
        limit = -1.0 if max_lifetime is None else _seconds(max_lifetime, "max_lifetime", zero=True)
        # Redis drops the hash a second after the idle lifetime runs out; the
        # script's own check decides before that, exactly.
        ttl_ms = self._ttl_ms if max_lifetime is None else int(limit * 1000) + 1000
        return [repr(self.now()), repr(limit), ttl_ms]

    def _load(self, sid: str, reply: list[bytes]) -> RedisSession:
        session = self._session_type(sid, self)  # type: ignore[arg-type]
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

    def _detached(self, sid: str, reply: list[bytes]) -> RedisSession:
        """A session loaded from a reply but no longer stored (its hash was taken)."""
        session = self._load(sid, reply)
        session._stored = False
        return session

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._where} prefix={self._prefix!r}>"


def _seconds(value: object, name: str, *, zero: bool = False) -> float:
    return seconds(value, name, zero=zero)  # type: ignore[return-value]
