"""The Session interface, and the per-request session the Manager hands out."""

from __future__ import annotations

import enum
from abc import abstractmethod
from collections.abc import ItemsView, Iterator, KeysView, MutableMapping, ValuesView
from typing import TYPE_CHECKING, Any, Optional

from .ids import short_id

if TYPE_CHECKING:
    from .manager import Manager

__all__ = ["RequestFlag", "RequestSession", "Session", "SessionArg"]

_MISSING: Any = object()


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


_PENDING = int(RequestFlag.PENDING)
_MODIFIED = int(RequestFlag.MODIFIED)
_ACCESSED = int(RequestFlag.ACCESSED)
_CHANGED = _MODIFIED | _ACCESSED
_NEW = int(RequestFlag.NEW)


class RequestSession(dict, Session):  # type: ignore[type-arg]
    """One request's session: the data of a stored session, with flags of its own.

    Concurrent requests of one session share its data (with the memory
    provider, one object), but each has its own id and flags: regenerating or
    destroying moves only this request to another record. Every read goes to
    the record; the dict this object also is mirrors what this request sees,
    so code that takes it for a plain dict (json.dumps, a Flask or FastAPI
    view returning it) gets the data.
    """

    __slots__ = ("_record", "_sid", "_flags", "_owner", "_doomed", "__weakref__")

    def __init__(self, record: Any, flags: int, owner: Manager) -> None:
        dict.update(self, record)
        self._record: Any = record  # the store's session (or a detached one while pending)
        self._sid: str = record.sid
        self._flags = flags
        self._owner = owner  # the Manager that started it
        # Ids this request killed that an async store still has to delete,
        # each with whether regenerate carried its data over.
        self._doomed: Optional[tuple[tuple[str, bool], ...]] = None

    def _attach(self, record: Any) -> None:
        """Move this request to another record (regenerate, destroy, a new id on a clash)."""
        self._record, self._sid = record, record.sid
        dict.clear(self)
        dict.update(self, record)

    # -- identity and per-request flags ------------------------------------
    @property
    def sid(self) -> str:
        """This request's session id."""
        return self._sid

    @property
    def created(self) -> float:
        """When the session was stored, on the provider's clock."""
        return float(self._record.created)

    @property
    def last_used(self) -> float:
        """When the session was last used, on the provider's clock."""
        return float(self._record.last_used)

    @property
    def flags(self) -> RequestFlag:
        """This request's flags."""
        return RequestFlag(self._flags)

    @property
    def modified(self) -> bool:
        """True when this request changed the data (set it after changing a value in place)."""
        return bool(self._flags & _MODIFIED)

    @modified.setter
    def modified(self, value: object) -> None:
        self._flags = (self._flags | _CHANGED) if value else (self._flags & ~_MODIFIED)

    @property
    def accessed(self) -> bool:
        """True when this request read or changed the data (the response then varies by Cookie)."""
        return bool(self._flags & _ACCESSED)

    @accessed.setter
    def accessed(self, value: object) -> None:
        self._flags = (self._flags | _ACCESSED) if value else (self._flags & ~_ACCESSED)

    @property
    def new(self) -> bool:
        """True when the session began during this request."""
        return bool(self._flags & _NEW)

    @property
    def permanent(self) -> bool:
        """Whether the cookie outlives the browser session (the Manager's cookie_persistent unless set).

        Stored with the session, so it holds for its later requests too; set
        it to None to go back to the Manager's default.
        """
        chosen = self._record.permanent
        return self._owner.cookie_persistent if chosen is None else bool(chosen)

    @permanent.setter
    def permanent(self, value: Optional[bool]) -> None:
        self._record.permanent = value

    # -- the mapping: reads from the record, writes to it and the mirror ------
    def __getitem__(self, key: Any) -> Any:
        self._flags |= _ACCESSED
        return self._record[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._record[key] = value
        dict.__setitem__(self, key, value)
        self._flags |= _CHANGED

    def __delitem__(self, key: Any) -> None:
        del self._record[key]
        dict.pop(self, key, None)
        self._flags |= _CHANGED

    def __contains__(self, key: object) -> bool:
        self._flags |= _ACCESSED
        return key in self._record

    def __iter__(self) -> Iterator[Any]:
        self._flags |= _ACCESSED
        return iter(list(self._record))

    def __reversed__(self) -> Iterator[Any]:
        self._flags |= _ACCESSED
        keys: list[Any] = list(self._record)
        return iter(keys[::-1])

    def __len__(self) -> int:
        self._flags |= _ACCESSED
        return len(self._record)

    def __bool__(self) -> bool:
        return len(self) > 0

    def get(self, key: Any, default: Any = None) -> Any:
        """The value for key, or default."""
        self._flags |= _ACCESSED
        return self._record.get(key, default)

    def keys(self) -> KeysView[Any]:  # type: ignore[override]
        """The keys, as of now."""
        self._flags |= _ACCESSED
        return dict(self._record).keys()

    def items(self) -> ItemsView[Any, Any]:  # type: ignore[override]
        """The (key, value) pairs, as of now."""
        self._flags |= _ACCESSED
        return dict(self._record).items()

    def values(self) -> ValuesView[Any]:  # type: ignore[override]
        """The values, as of now."""
        self._flags |= _ACCESSED
        return dict(self._record).values()

    def pop(self, key: Any, default: Any = _MISSING) -> Any:
        """Remove key and return its value (or default; KeyError without one)."""
        self._flags |= _ACCESSED
        if key in self._record:
            self._flags |= _MODIFIED
            dict.pop(self, key, None)
            return self._record.pop(key) if default is _MISSING else self._record.pop(key, default)
        if default is _MISSING:
            raise KeyError(key)
        return default

    def popitem(self) -> tuple[Any, Any]:
        """Remove and return the last inserted (key, value) pair."""
        self._flags |= _ACCESSED
        keys = list(self._record)
        if not keys:
            raise KeyError("popitem(): session is empty")
        key = keys[-1]
        return key, self.pop(key)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        """Return self[key], storing default first when key is absent."""
        self._flags |= _ACCESSED
        found = self._record.get(key, _MISSING)
        if found is not _MISSING:
            return found
        self[key] = default
        return default

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Update from a mapping or iterable of pairs and keyword arguments."""
        new = dict(*args, **kwargs)
        self._record.update(new)
        dict.update(self, new)
        self._flags |= _CHANGED

    def clear(self) -> None:
        """Remove all data."""
        self._flags |= _ACCESSED
        dict.clear(self)
        if len(self._record):
            self._record.clear()
            self._flags |= _MODIFIED

    def __ior__(self, other: Any) -> RequestSession:
        self.update(other)
        return self

    def __or__(self, other: Any) -> dict[Any, Any]:
        return {**self.copy(), **other}

    def copy(self) -> dict[Any, Any]:
        """A plain dict of the data."""
        self._flags |= _ACCESSED
        return dict(self._record)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RequestSession):
            other = dict(other._record)
        return dict(self._record) == other

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        # A copy or pickle of a request's session is its data; ids stay with the store.
        return (dict, (dict(self._record),))

    def __repr__(self) -> str:
        return f"RequestSession({short_id(self._sid)!r}, {dict(self._record)!r})"
