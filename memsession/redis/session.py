"""RedisSession: a session in a Redis hash, written key by key."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Optional

from ..ids import check_sid, short_id
from ..session import Session
from .scripts import DATA

if TYPE_CHECKING:
    from .aio import AsyncRedisProvider
    from .provider import RedisProvider

__all__ = ["AsyncRedisSession", "RedisSession"]

_DELETE: Any = object()


class RedisSession(Session):
    """A session in a Redis hash; every write goes to Redis at once, key by key."""

    __slots__ = (
        "_provider",
        "_sid",
        "_data",
        "_created",
        "_last_used",
        "_cookie_time",
        "_permanent",
        "_stored",
    )

    def __init__(self, sid: str, provider: RedisProvider) -> None:
        self._provider = provider
        self._sid = check_sid(sid)
        self._data: dict[str, Any] = {}
        self._created = self._last_used = 0.0
        self._cookie_time = -math.inf
        self._permanent: Optional[bool] = None
        self._stored = False

    @property
    def sid(self) -> str:
        """The session's id."""
        return self._sid

    @property
    def created(self) -> float:
        """When the session was stored (wall clock)."""
        return self._created

    @property
    def last_used(self) -> float:
        """When the session was last used (wall clock)."""
        return self._last_used

    @property
    def new(self) -> bool:
        """True until the session is stored."""
        return not self._stored

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

    def _remove(self, *fields: str) -> None:
        if self._stored and fields:
            self._provider._call(self._provider._client.hdel, self._provider._key(self._sid), *fields)

    def __getitem__(self, key: Any) -> Any:
        return self._data[key]

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[Any]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: Any, default: Any = None) -> Any:
        """The value for key, or default."""
        return self._data.get(key, default)

    def __setitem__(self, key: Any, value: Any) -> None:
        data = self._encode(key, value)
        self._write({DATA + key: data})
        self._data[key] = value

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Update from a mapping or pairs, in one Redis command."""
        new = dict(*args, **kwargs)
        encoded = {}
        for k, v in new.items():
            data = self._encode(k, v)
            encoded[DATA + k] = data
        self._write(encoded)
        self._data.update(new)

    def __delitem__(self, key: Any) -> None:
        if key not in self._data:
            raise KeyError(key)
        self._remove(DATA + key)
        del self._data[key]

    def clear(self) -> None:
        """Remove all data, including keys other requests added meanwhile."""
        self._wipe()
        self._data.clear()

    def _wipe(self) -> None:
        if self._stored:
            self._provider._run(self._provider._clear_script, self._sid, [])

    @property
    def permanent(self) -> Optional[bool]:
        """Whether the cookie outlives the browser session; None: the Manager's choice."""
        return self._permanent

    @permanent.setter
    def permanent(self, value: object) -> None:
        wanted = None if value is None else bool(value)
        if wanted is self._permanent:
            return
        # One command: the flag, and that the cookie is due again.
        if wanted is None:
            self._remove("m:p")
            self._write({"m:k": repr(-math.inf)})
        else:
            self._write({"m:p": "1" if wanted else "0", "m:k": repr(-math.inf)})
        self._permanent = wanted
        self._cookie_time = -math.inf

    @property
    def _cookie_at(self) -> float:
        return self._cookie_time

    @_cookie_at.setter
    def _cookie_at(self, value: float) -> None:
        value = float(value)
        if value != self._cookie_time:
            self._write({"m:k": repr(value)})
            self._cookie_time = value

    def __repr__(self) -> str:
        return f"RedisSession({short_id(self._sid)!r}, {self._data!r})"


class AsyncRedisSession(RedisSession):
    """A session of AsyncRedisProvider: writes wait in the session for flush().

    The app writes synchronously (session["k"] = v); the ASGI middleware
    sends what changed, key by key, in one pipelined round trip when the
    response starts, so concurrent requests writing other keys lose nothing.
    """

    __slots__ = ("_changes", "_wiped")

    def __init__(self, sid: str, provider: AsyncRedisProvider) -> None:
        super().__init__(sid, provider)  # type: ignore[arg-type]
        self._changes: dict[str, Any] = {}
        self._wiped = False

    def _write(self, fields: dict[str, Any]) -> None:
        if self._stored:
            self._changes.update(fields)

    def _remove(self, *fields: str) -> None:
        if self._stored:
            for name in fields:
                self._changes[name] = _DELETE

    def _wipe(self) -> None:
        if self._stored:
            # Data written earlier in this request goes too; metadata stays.
            self._changes = {k: v for k, v in self._changes.items() if not k.startswith(DATA)}
            self._wiped = True

    @property
    def dirty(self) -> bool:
        """True while changes wait for flush()."""
        return bool(self._changes) or self._wiped

    async def flush(self) -> bool:
        """Send the waiting changes in one pipelined round trip; False when the session is gone."""
        if not self.dirty:
            return True
        changes, wiped = self._changes, self._wiped
        self._changes, self._wiped = {}, False
        provider: AsyncRedisProvider = self._provider  # type: ignore[assignment]
        return await provider._flush(self._sid, changes, wiped)
