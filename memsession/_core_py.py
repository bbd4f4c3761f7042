"""Pure-Python twin of memsession._core: same names, behaviour and messages."""

from __future__ import annotations

import math
import re
import select
import struct
import threading
import time
from collections.abc import Callable, ItemsView, Iterator, KeysView, MutableMapping, ValuesView
from datetime import timedelta
from typing import Any, Optional

_FLOAT32 = struct.Struct("f")
# 43 base64 characters carry 258 bits: the last holds 4 bits and two zero
# bits, so only 16 characters can end an id memsession issued.
_poll = getattr(select, "poll", None)
_POLLIN = getattr(select, "POLLIN", 1)
_ID = re.compile(r"[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]")


def is_session_id(value: object) -> bool:
    """True when value has exactly the shape of an id memsession issues."""
    return type(value) is str and len(value) == 43 and _ID.fullmatch(value) is not None


def readable(fd: int) -> bool:
    """True when the socket fd has data (or an error, or EOF) to read now; never blocks.

    Where the platform has no poll() it answers True, and the caller reads.
    """
    if _poll is None:
        return True
    poller = _poll()
    poller.register(fd, _POLLIN)
    return bool(poller.poll(0))


# Writes through any near cache of this process (see NearReader).
_local_writes = [0]
# A poll that found the tracking socket empty stands for this long.
_POLL_GAP = 20e-6


def local_write() -> None:
    """Count a write through a near cache of this process: local hits then poll again."""
    _local_writes[0] += 1


class NearReader:
    """A near cache's local hit, compiled: the one path that must cost no round trip.

    read(sid, max_lifetime) returns the kept session when the tracking
    socket (fd) has nothing waiting, no drain is applying pushes (busy), no
    heartbeat is due (next_ping, time.monotonic() seconds), and the copy in
    cache is current, holds only immutable values (kept[meta_key][2]) and
    had its use recorded within refresh seconds (kept[meta_key][1]);
    everything else goes to slow(sid, max_lifetime). The socket is polled
    unless a poll found it empty less than 20 µs ago and no local_write()
    happened since.
    """

    __slots__ = (
        "cache",
        "fd",
        "busy",
        "next_ping",
        "refresh",
        "hits",
        "_polled",
        "_writes",
        "_meta_key",
        "_slow",
    )

    def __init__(self, cache: Any, meta_key: Any, refresh: float, slow: Callable[..., Any]) -> None:
        self.cache = cache
        self.fd = -1
        self.busy = False
        self.next_ping = 0.0
        self.refresh = float(refresh)
        self.hits = 0
        self._polled = -1.0
        self._writes = 0
        self._meta_key = meta_key
        self._slow = slow

    def _quiet(self, now: float) -> bool:
        if self.fd < 0 or now >= self.next_ping:
            return False
        if not (now - self._polled < _POLL_GAP and self._writes == _local_writes[0]):
            writes = _local_writes[0]
            if readable(self.fd):
                return False
            self._polled = now
            self._writes = writes
        # Read after the socket: a drain sets busy before it takes pushes off.
        return not self.busy

    def quiet(self) -> bool:
        """True when nothing was pushed since the last drain (a local copy may be used)."""
        return self._quiet(time.monotonic())

    def read(self, sid: Any, max_lifetime: Any = None) -> Any:
        """The kept session when it may be served from memory; else slow(sid, max_lifetime)."""
        if (
            type(sid) is str
            and (max_lifetime is None or type(max_lifetime) is float or type(max_lifetime) is int)
            and self._quiet(time.monotonic())
        ):
            entry = self.cache.session_read(sid, max_lifetime)
            if entry is not None:
                meta = dict.get(entry, self._meta_key)
                if meta is not None and meta[2] is True:
                    used = entry.last_used
                    if used - meta[1] < self.refresh:
                        session = meta[0]
                        session._last_used = used
                        self.hits += 1
                        return session
        return self._slow(sid, max_lifetime)


def _check_sid(sid: object) -> str:
    """Return sid as an exact str, or raise TypeError/ValueError."""
    if type(sid) is not str:
        if not isinstance(sid, str):
            raise TypeError(f"sid must be str, not {type(sid).__name__}")
        # A str subclass could override __eq__/__hash__ and run code
        # inside a store operation; work on an exact copy instead.
        sid = str.__str__(sid)
    if not sid:
        raise ValueError("sid must not be empty")
    return sid


def _is_number(value: object) -> bool:
    """A real int or float; bool is refused (True seconds is a bug, not 1.0)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _float(value: object) -> float:
    """A checked number's value; a float subclass's own, not what its __float__ says (as C reads it)."""
    return float.__float__(value) if isinstance(value, float) else float(value)  # type: ignore[arg-type]


def _as_seconds(value: object, name: str) -> float:
    """Convert a lifetime argument (seconds or a timedelta) to float seconds, validating it."""
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if not _is_number(value):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    result = _float(value)
    if not result >= 0.0:
        raise ValueError(f"{name} must be a non-negative number of seconds, got {value!r}")
    return result


def _as_time(value: object) -> float:
    """Validate what an injected clock returned."""
    if not _is_number(value):
        raise TypeError(f"clock must return a number, not {type(value).__name__}")
    result = _float(value)
    if not math.isfinite(result):
        raise ValueError(f"clock must return a finite number, got {value!r}")
    return result


def _short(sid: str) -> str:
    """The first characters of an id, for messages and reprs."""
    return sid[:8] + "…" if len(sid) > 8 else sid


class Session(dict):  # type: ignore[type-arg]
    """A stored session: a dict of its data plus its id and timestamps.

    Per-request state (modified, accessed, cookie bookkeeping) never lives
    here: every request of a session shares this object, so the Manager
    hands each request its own view of it.
    """

    __slots__ = ("_sid", "_created", "_last_used", "_prev", "_next", "_cookie_off", "_stored", "_permanent")

    _sid: Optional[str]
    _created: float
    _last_used: float
    _prev: Optional[Session]
    _next: Optional[Session]
    _cookie_off: float
    _stored: bool
    _permanent: Optional[bool]

    def __new__(cls, *args: Any, **kwargs: Any) -> Session:
        # Every field starts zeroed, as the compiled type's do.
        self: Session = dict.__new__(cls)
        self._sid = None
        self._created = self._last_used = 0.0
        self._prev = self._next = None
        self._cookie_off = 0.0
        self._stored = False
        self._permanent = None
        return self

    def __init__(self, sid: object) -> None:
        """A detached session (in no store) with id sid."""
        if self._sid is not None:
            # The id is the store's key: it is set once, never changed.
            raise TypeError("Session is initialised already: its id never changes")
        self._sid = _check_sid(sid)

    @property
    def sid(self) -> str:
        """The session's id."""
        return self._sid  # type: ignore[return-value]

    @property
    def created(self) -> float:
        """When the session was stored, on the provider's clock."""
        return self._created

    @property
    def last_used(self) -> float:
        """When the session was last used, on the provider's clock."""
        return self._last_used

    @property
    def permanent(self) -> Optional[bool]:
        """Whether the cookie outlives the browser session; None: the Manager's choice."""
        return self._permanent

    @permanent.setter
    def permanent(self, value: object) -> None:
        wanted = None if value is None else bool(value)
        if wanted is not self.permanent:
            self._permanent = wanted
            # The cookie's attributes change: have the Manager send it again.
            self._cookie_at = -math.inf

    @property
    def new(self) -> bool:
        """True until the session is stored."""
        return not self._stored

    @property
    def _cookie_at(self) -> float:
        """When the Manager last sent this session's cookie (provider clock)."""
        return self.created + self._cookie_off

    @_cookie_at.setter
    def _cookie_at(self, value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"must be real number, not {type(value).__name__}")
        # Stored as a 32-bit float offset, exactly as the compiled core does.
        self._cookie_off = _FLOAT32.unpack(_FLOAT32.pack(float(value) - self.created))[0]

    def session_id(self) -> str:
        """The session's id."""
        return self._sid  # type: ignore[return-value]

    def set(self, key: Any, value: Any) -> None:
        """Store value under key."""
        dict.__setitem__(self, key, value)

    def delete(self, key: Any) -> None:
        """Remove key; no error when it is absent."""
        dict.pop(self, key, None)

    def __reduce__(self) -> tuple[Any, ...]:
        # A copy or pickle of a session is its data; ids stay with the store.
        return (dict, (dict(self),))

    def __repr__(self) -> str:
        sid = self._sid
        return f"Session({'?' if sid is None else _short(sid)!r}, {dict.__repr__(self)})"


def _new_session(sid: str, now: float) -> Session:
    s = Session.__new__(Session)
    s._sid = sid
    s._created = s._last_used = now
    return s


MutableMapping.register(Session)


class MemoryProvider:
    """Sessions in process memory: a hash map plus a list ordered by the second of last use."""

    __slots__ = (
        "_map",
        "_head",
        "_tail",
        "_clock",
        "_max_sessions",
        "_reclaim_after",
        "_lock",
        "_hits",
        "_misses",
        "_created",
        "_destroyed",
        "_expired",
        "_evicted",
        "__weakref__",
    )

    def __init__(
        self,
        *,
        max_sessions: Optional[int] = None,
        clock: Optional[Callable[[], float]] = None,
    ) -> None:
        if max_sessions is not None:
            if isinstance(max_sessions, bool) or not isinstance(max_sessions, int):
                raise TypeError(f"max_sessions must be an int or None, not {type(max_sessions).__name__}")
            if max_sessions < 1:
                raise ValueError(f"max_sessions must be at least 1, got {max_sessions}")
        if clock is not None and not callable(clock):
            raise TypeError(f"clock must be callable, not {type(clock).__name__}")
        if getattr(self, "_map", None) is not None:
            # Re-initialising would orphan the linked sessions under a running sweep.
            raise TypeError("MemoryProvider is initialised already")
        self._map: dict[str, Session] = {}
        self._head: Optional[Session] = None
        self._tail: Optional[Session] = None
        self._clock = clock
        self._max_sessions = 0 if max_sessions is None else max_sessions
        # The longest idle lifetime callers have read or collected with (-1:
        # none yet): inserts reclaim sessions idle longer than that.
        self._reclaim_after = -1.0
        # Reentrant: a destructor run by the cyclic collector during an
        # allocation may call back in. Removed sessions are only released
        # after the lock is let go, with the store consistent.
        self._lock = threading.RLock()
        self._hits = self._misses = self._created = 0
        self._destroyed = self._expired = self._evicted = 0

    @property
    def max_sessions(self) -> Optional[int]:
        """The capacity, or None when unbounded."""
        return None if self._max_sessions == 0 else self._max_sessions

    def _now(self) -> float:
        if self._clock is None:
            return time.monotonic()
        return _as_time(self._clock())

    def _unlink(self, s: Session) -> None:
        if s._prev is not None:
            s._prev._next = s._next
        else:
            self._head = s._next
        if s._next is not None:
            s._next._prev = s._prev
        else:
            self._tail = s._prev
        s._prev = s._next = None

    def _append(self, s: Session) -> None:
        s._prev = self._tail
        s._next = None
        if self._tail is not None:
            self._tail._next = s
        else:
            self._head = s
        self._tail = s

    def _not_before_tail(self, now: float) -> float:
        # Another thread may have stamped a later time between our clock
        # read and now; the list must stay ordered by second of use, so time in the
        # store never runs backwards.
        if self._tail is not None and now < self._tail._last_used:
            return self._tail._last_used
        return now

    def _touch(self, s: Session, now: float) -> None:
        # The list is ordered by the whole second of each last use: a session
        # used again within the second it was last moved in only has its time
        # written (see the compiled core).
        now = self._not_before_tail(now)
        if math.floor(now) > math.floor(s._last_used):
            s._last_used = now
            if self._tail is not s:
                self._unlink(s)
                self._append(s)
        elif now > s._last_used:
            s._last_used = now

    def _remove(self, s: Session) -> None:
        self._unlink(s)
        s._stored = False
        del self._map[s.sid]

    def _stale_head(self, now: float) -> Optional[Session]:
        """The least recently used session if it idled past the reclaim limit."""
        head = self._head
        if self._reclaim_after < 0.0 or head is None:
            return None
        return head if now - head._last_used > self._reclaim_after else None

    def _store(self, s: Session, now: float) -> list[Session]:
        """Link a detached session, evicting the LRU one at capacity; return the removed.

        Each insert also reclaims up to two expired sessions from the stale
        end, so abandoned sessions cannot pile up with no GC thread and no
        call: amortized O(1), never a scan.
        """
        removed = []
        s._created = s._last_used = self._not_before_tail(now)
        for _ in range(2):
            stale = self._stale_head(now)
            if stale is None:
                break
            self._remove(stale)
            self._expired += 1
            removed.append(stale)
        if self._max_sessions and len(self._map) >= self._max_sessions:
            victim = self._head
            assert victim is not None
            self._remove(victim)
            self._evicted += 1
            removed.append(victim)
        self._map[s.sid] = s
        self._append(s)
        s._stored = True
        self._created += 1
        return removed

    def _saw_lifetime(self, limit: float) -> None:
        if limit > self._reclaim_after:
            self._reclaim_after = limit

    def now(self) -> float:
        """The provider's clock, in seconds."""
        return self._now()

    def session_init(self, sid: str) -> Session:
        """Create and store a new, empty session under sid."""
        sid = _check_sid(sid)
        now = self._now()
        s = _new_session(sid, now)
        with self._lock:
            if sid in self._map:
                raise ValueError(f"session {_short(sid)!r} is live already")
            removed = self._store(s, now)
        del removed
        return s

    def session_new(self, sid: str) -> Session:
        """A detached session for sid, to be stored later by session_insert."""
        sid = _check_sid(sid)
        return _new_session(sid, self._now())

    def session_insert(self, session: Session) -> None:
        """Store a detached session under its own id."""
        if type(session) is not Session:
            raise TypeError(f"session must be a memsession._core.Session, not {type(session).__name__}")
        if getattr(session, "_sid", None) is None:
            raise ValueError("session has no id: make sessions with session_new(sid)")
        now = self._now()
        with self._lock:
            if session._stored:
                raise ValueError("session is stored already")
            if session._sid in self._map:
                raise ValueError(f"session {_short(session._sid)!r} is live already")
            removed = self._store(session, now)
        del removed

    def session_read(self, sid: str, max_lifetime: Optional[float] = None) -> Optional[Session]:
        """The live session for sid, marked used now; None when unknown or expired."""
        limit = -1.0
        if type(sid) is not str or not sid:
            sid = _check_sid(sid)
        if max_lifetime is not None:
            limit = _as_seconds(max_lifetime, "max_lifetime")
        now = self._now()
        if limit >= 0.0:
            self._saw_lifetime(limit)
        with self._lock:
            s = self._map.get(sid)
            if s is None:
                self._misses += 1
                return None
            found: Optional[Session] = s
            released: Optional[Session]
            if limit >= 0.0 and now - s._last_used > limit:
                self._remove(s)
                self._expired += 1
                self._misses += 1
                released, found = s, None
            else:
                self._touch(s, now)
                self._hits += 1
                # Reads reclaim too (one stale session at most), so traffic that
                # only reads cannot keep expired sessions in memory either.
                released = self._stale_head(now)
                if released is not None:
                    self._remove(released)
                    self._expired += 1
            s = None
        del released  # a destructor runs here, with the store consistent
        return found

    def session_update(self, sid: str) -> bool:
        """Mark the session used now; False when sid is unknown."""
        sid = _check_sid(sid)
        now = self._now()
        with self._lock:
            s = self._map.get(sid)
            if s is None:
                return False
            self._touch(s, now)
            return True

    def session_destroy(self, sid: str) -> None:
        """Remove the session; nothing happens when sid is unknown."""
        sid = _check_sid(sid)
        with self._lock:
            s = self._map.get(sid)
            if s is None:
                return None
            self._remove(s)
            self._destroyed += 1
        del s
        return None

    def session_take(self, sid: str) -> Optional[Session]:
        """Remove the session and return it (its data as stored); None when not live."""
        sid = _check_sid(sid)
        with self._lock:
            s = self._map.get(sid)
            if s is None:
                return None
            self._remove(s)
            self._destroyed += 1
        return s

    def session_destroy_if_empty(self, sid: str) -> bool:
        """Remove the session if it holds no data; True when it was removed."""
        sid = _check_sid(sid)
        with self._lock:
            s = self._map.get(sid)
            if s is None or dict.__len__(s):
                return False
            self._remove(s)
            self._destroyed += 1
        del s
        return True

    def session_gc(self, max_lifetime: float) -> int:
        """Remove sessions idle longer than max_lifetime; return how many."""
        limit = _as_seconds(max_lifetime, "max_lifetime")
        now = self._now()
        removed: list[Session] = []
        with self._lock:
            self._saw_lifetime(limit)
            node = self._head
            while node is not None:
                s = node
                # Every session from here on was last used at or after the
                # start of this one's second.
                if now - math.floor(s._last_used) <= limit:
                    break
                node = s._next
                # Within the second where the limit falls, a live session is
                # passed over, not a stop.
                if now - s._last_used > limit:
                    self._remove(s)
                    self._expired += 1
                    removed.append(s)
        count = len(removed)
        del removed
        return count

    def sessions(self) -> Iterator[Session]:
        """Live sessions, least recently used first (to the second), without marking them used."""
        return _LiveSessions(self, self._order())

    def save(self, path: Any, **options: Any) -> int:
        """Write every live session to path (atomic, mode 0600, versioned); return how many.

        See memsession.snapshot.save for the options and the file format.
        """
        from .snapshot import save

        return save(self, path, **options)

    def load(self, path: Any, **options: Any) -> int:
        """Store the sessions a snapshot at path holds (an empty store only); return how many.

        A damaged or foreign file raises memsession.SnapshotError and stores
        nothing. See memsession.snapshot.load for the options.
        """
        from .snapshot import load

        return load(self, path, **options)

    def _order(self) -> list[Session]:
        """The live sessions, least recently used first (a plain list, for snapshots)."""
        order: list[Session] = []
        with self._lock:
            node = self._head
            while node is not None:
                order.append(node)
                node = node._next
        return order

    def _export(self, order: list[Session], start: int, stop: int, to_wall: float) -> tuple[Any, ...]:
        """Columns of order[start:stop] still held: ids, created, last used (wall clock),
        permanent (bytes: 0 default, 1 no, 2 yes), cookie offsets, the sessions."""
        sids: list[str] = []
        created: list[float] = []
        used: list[float] = []
        flags = bytearray()
        cookies: list[float] = []
        datas: list[dict[Any, Any]] = []
        with self._lock:
            for s in order[max(start, 0) : stop]:
                if self._holds(s):
                    sids.append(s._sid)  # type: ignore[arg-type]
                    created.append(s._created + to_wall)
                    used.append(s._last_used + to_wall)
                    flags.append(0 if s._permanent is None else (2 if s._permanent else 1))
                    cookies.append(s._cookie_off)
                    # The session itself: the caller encodes a chunk in one C
                    # call (JSON or pickle), during which no other thread runs.
                    datas.append(s)
        return sids, created, used, bytes(flags), cookies, datas

    def _import(
        self,
        sids: list[str],
        created: list[float],
        used: list[float],
        flags: bytes,
        cookies: list[float],
        datas: list[dict[Any, Any]],
    ) -> int:
        """Store checked columns (least recently used first, store clock) in this empty store."""
        with self._lock:
            if len(self._map):
                raise ValueError(
                    f"the store must be empty to load a snapshot (it holds {len(self._map)} sessions)"
                )
            if not all(type(sid) is str and sid for sid in sids):
                raise ValueError("snapshot ids must be non-empty str")
            for i, sid in enumerate(sids):
                s = Session.__new__(Session)
                s._sid, s._created, s._last_used = sid, float(created[i]), float(used[i])
                s._permanent = None if flags[i] == 0 else flags[i] == 2
                s._cookie_off = _FLOAT32.unpack(_FLOAT32.pack(float(cookies[i])))[0]
                dict.update(s, datas[i])
                s._stored = True
                self._map[sid] = s
                self._append(s)
            self._created += len(sids)
        return len(sids)

    def stats(self) -> dict[str, int]:
        """Counters: live, hits, misses, created, destroyed, expired, evicted."""
        with self._lock:
            return {
                "live": len(self._map),
                "hits": self._hits,
                "misses": self._misses,
                "created": self._created,
                "destroyed": self._destroyed,
                "expired": self._expired,
                "evicted": self._evicted,
            }

    def _holds(self, s: Session) -> bool:
        return self._map.get(s.sid) is s

    def __len__(self) -> int:
        return len(self._map)

    def __contains__(self, sid: object) -> bool:
        if not isinstance(sid, str):
            return False
        # By value: a str subclass's own __hash__/__eq__ never run here.
        return str.__str__(sid) in self._map

    def __repr__(self) -> str:
        return f"<MemoryProvider live={len(self._map)} max_sessions={self.max_sessions}>"


class _LiveSessions:
    """Iterator over a snapshot of a provider's list, skipping removed sessions."""

    __slots__ = ("_provider", "_snapshot", "_pos")

    def __init__(self, provider: MemoryProvider, snapshot: list[Session]) -> None:
        self._provider = provider
        self._snapshot = snapshot
        self._pos = 0

    def __iter__(self) -> _LiveSessions:
        return self

    def __next__(self) -> Session:
        while self._pos < len(self._snapshot):
            s = self._snapshot[self._pos]
            self._pos += 1
            if self._provider._holds(s):
                return s
        self._snapshot = []
        raise StopIteration


# Bits of RequestSession._flags (memsession.session.RequestFlag names them all).
_PENDING = 1
_HTTPS = 4
_HAD_COOKIE = 8
_MODIFIED = 16
_ACCESSED = 32
_CHANGED = _MODIFIED | _ACCESSED
_NEW = 64
_FRESH = _PENDING | _NEW
_MISSING: Any = object()


def _plain(record: Any) -> dict[Any, Any]:
    # As _mirror: one step, whatever another request does to the record.
    return dict(record if isinstance(record, dict) else record.items())


def _mirror(into: dict[Any, Any], record: Any) -> None:
    # Another record type (a Redis session, perhaps shared by requests of a
    # worker) copies its pairs in one step through items(), so a key another
    # request removes meanwhile cannot break the copy.
    dict.update(into, record if isinstance(record, dict) else record.items())


class RequestSession(dict):  # type: ignore[type-arg]
    """One request's session: the data of a stored session, with flags of its own.

    Concurrent requests of one session share its data (with the memory
    provider, one object), but each has its own id and flags: regenerating or
    destroying moves only this request to another record. Every read goes to
    the record; the dict this object also is mirrors what this request sees,
    so code that takes it for a plain dict (json.dumps, a Flask or FastAPI
    view returning it) gets the data.
    """

    __slots__ = ("_record", "_sid", "_flags", "_owner", "_doomed", "__weakref__")

    def __init__(self, record: Any, flags: int, owner: Any) -> None:
        _mirror(self, record)
        self._record: Any = record  # the store's session (or a detached one while pending)
        self._sid: str = record.sid
        self._flags = flags
        self._owner: Any = owner  # the Manager that started it
        # Ids this request killed that an async store still has to delete,
        # each with whether regenerate carried its data over.
        self._doomed: Optional[tuple[tuple[str, bool], ...]] = None

    def _attach(self, record: Any) -> None:
        """Move this request to another record (regenerate, destroy, a new id on a clash)."""
        self._record, self._sid = record, record.sid
        dict.clear(self)
        _mirror(self, record)

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

    def session_id(self) -> str:
        """The session's id."""
        return self._sid

    def set(self, key: Any, value: Any) -> None:
        """Store value under key."""
        self[key] = value

    def delete(self, key: Any) -> None:
        """Remove key; no error when it is absent."""
        self.pop(key, None)

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

    def get(self, key: Any, default: Any = None, /) -> Any:
        """The value for key, or default."""
        self._flags |= _ACCESSED
        return self._record.get(key, default)

    def keys(self) -> KeysView[Any]:  # type: ignore[override]
        """The keys, as of now."""
        self._flags |= _ACCESSED
        return _plain(self._record).keys()

    def items(self) -> ItemsView[Any, Any]:  # type: ignore[override]
        """The (key, value) pairs, as of now."""
        self._flags |= _ACCESSED
        return _plain(self._record).items()

    def values(self) -> ValuesView[Any]:  # type: ignore[override]
        """The values, as of now."""
        self._flags |= _ACCESSED
        return _plain(self._record).values()

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
        return _plain(self._record)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RequestSession):
            other = _plain(other._record)
        return _plain(self._record) == other

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None

    def __reduce__(self) -> tuple[Any, ...]:
        # A copy or pickle of a request's session is its data; ids stay with the store.
        return (dict, (_plain(self._record),))

    def __repr__(self) -> str:
        return f"RequestSession({_short(self._sid)!r}, {_plain(self._record)!r})"


class RequestGate:
    """A Manager's request path over this core's MemoryProvider, for the usual requests.

    start() and quiet() answer what Manager.session_start and
    Manager.session_cookie would, in one call each; None (start) or False
    (quiet) leaves the request to the Manager's general path. The gate holds
    no Manager: each call names its owner, so a Manager and its gate make no
    reference cycle.
    """

    __slots__ = ("_provider", "_prefix", "_fast_len", "_limit", "_refresh", "_new_id")

    def __init__(
        self,
        provider: MemoryProvider,
        prefix: str,
        limit: float,
        refresh: float,
        new_id: Callable[[], str],
    ) -> None:
        if type(provider) is not MemoryProvider:
            raise TypeError(f"provider must be a MemoryProvider, not {type(provider).__name__}")
        if type(prefix) is not str:
            raise TypeError(f"prefix must be str, not {type(prefix).__name__}")
        if not callable(new_id):
            raise TypeError(f"new_id must be callable, not {type(new_id).__name__}")
        self._limit = _as_seconds(limit, "limit")
        self._refresh = _as_seconds(refresh, "refresh")
        self._provider: Optional[MemoryProvider] = provider
        self._prefix = prefix
        self._fast_len = len(prefix) + 43
        self._new_id = new_id

    def start(self, header: object, https: object, owner: Any, /) -> Optional[RequestSession]:
        """owner's session for a request whose Cookie header is absent or one well-formed cookie of ours."""
        provider = getattr(self, "_provider", None)
        if provider is None:
            raise TypeError("RequestGate is not initialised")
        if https is True:
            flags = _HTTPS
        elif https is False:
            flags = 0
        else:
            return None
        s: Optional[Session] = None
        if header is not None:
            if type(header) is not str or len(header) != self._fast_len:
                return None
            if not header.startswith(self._prefix):
                return None
            flags |= _HAD_COOKIE
            sid = header[self._fast_len - 43 :]
            if is_session_id(sid):
                s = provider.session_read(sid, self._limit)
        if s is None:
            s = provider.session_new(self._new_id())
            flags |= _FRESH
        return RequestSession(s, flags, owner)

    def start_bytes(self, raw: object, https: object, owner: Any, /) -> Optional[RequestSession]:
        """start() for the Cookie header as an ASGI server gives it: bytes, read as latin-1."""
        if getattr(self, "_provider", None) is None:
            raise TypeError("RequestGate is not initialised")
        if raw is None:
            return self.start(None, https, owner)
        if type(raw) is not bytes:
            return None
        return self.start(raw.decode("latin-1"), https, owner)

    def quiet(self, session: object, https: object, owner: Any, /) -> bool:
        """True when owner's response needs no cookie and the store no change (session_cookie: None)."""
        if type(session) is not RequestSession or (https is not True and https is not False):
            return False
        if session._owner is not owner or session._flags & _PENDING:
            return False
        s = session._record
        if type(s) is not Session:
            return False
        if session._flags & _MODIFIED and not dict.__len__(s):
            return False
        return bool(s.last_used - s._cookie_at < getattr(self, "_refresh", 0.0))
