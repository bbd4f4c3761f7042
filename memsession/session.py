"""The Session interface, and the names of a request's flags."""

from __future__ import annotations

import enum
from abc import abstractmethod
from collections.abc import MutableMapping
from typing import Any

__all__ = ["RequestFlag", "Session", "SessionArg"]


# What the Manager's methods accept as a session: frameworks type theirs as a
# mapping (Starlette's request.session is dict[str, Any]); at runtime it must
# be the RequestSession the Manager handed out.
SessionArg = MutableMapping[Any, Any]


class Session(MutableMapping[Any, Any]):
    """A session: a mutable mapping of its data, with its id and timestamps.

    Stores return these (the memory provider's compiled ``Session``, the Redis
    provider's ``RedisSession``); the Manager hands each request a
    ``RequestSession``, which is one too. Implementers must provide the
    mapping primitives and ``sid``, ``created`` and ``last_used``; an id never
    changes once the session is stored.
    """

    __slots__ = ()

    @property
    @abstractmethod
    def sid(self) -> str:
        """The session's id (43 URL-safe characters when memsession issued it)."""

    @property
    @abstractmethod
    def created(self) -> float:
        """When the session was stored, on the provider's clock (seconds)."""

    @property
    @abstractmethod
    def last_used(self) -> float:
        """When the session was last used, on the provider's clock (seconds)."""

    def session_id(self) -> str:
        """The session's id."""
        return self.sid

    def set(self, key: Any, value: Any) -> None:
        """Store value under key."""
        self[key] = value

    def delete(self, key: Any) -> None:
        """Remove key; no error when it is absent."""
        self.pop(key, None)


class RequestFlag(enum.IntFlag):
    """What the Manager knows about one request's session."""

    PENDING = 1  # not in the store: stored when the response starts, if it holds data
    KILL_COOKIE = 2  # the client's cookie names a dead id: expire it unless replaced
    HTTPS = 4  # the request came over https
    HAD_COOKIE = 8  # the request carried a cookie with the session's name
    MODIFIED = 16  # this request changed the data
    ACCESSED = 32  # this request read or changed the data
    NEW = 64  # the session began during this request (fresh, regenerated or destroyed)


# The bits as plain ints, for the request path (cheaper than the enum's members).
PENDING = int(RequestFlag.PENDING)
KILL_COOKIE = int(RequestFlag.KILL_COOKIE)
HTTPS = int(RequestFlag.HTTPS)
HAD_COOKIE = int(RequestFlag.HAD_COOKIE)
MODIFIED = int(RequestFlag.MODIFIED)
ACCESSED = int(RequestFlag.ACCESSED)
NEW = int(RequestFlag.NEW)
FRESH = PENDING | NEW  # a session that began in this request and is not stored yet
