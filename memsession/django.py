"""Django session engine: SESSION_ENGINE = "memsession.django".

The provider comes from settings.MEMSESSION (memory unless told otherwise)::

    MEMSESSION = {"provider": "memory", "max_sessions": 100_000}
    MEMSESSION = {"provider": "memory", "snapshot": "/var/lib/app/sessions.snap", "snapshot_interval": 60}
    MEMSESSION = {"provider": "redis", "url": "redis://127.0.0.1:6379/0", "prefix": "memsession:"}
    MEMSESSION = {"provider": "cached-redis", "url": "redis://127.0.0.1:6379/0"}
    MEMSESSION = {"provider": "myproject.sessions.provider"}   # a Provider, or a factory of one

Django keeps its own session API, middleware, cookie settings and expiry
rules; memsession stores the data. Saves write only the keys this request
changed or removed, so two concurrent requests of one user that write
different keys lose nothing. cycle_key() takes the old session out of the
store atomically before the data moves to a new id, so a request still
holding the old key sees nothing written after it.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Optional

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .cookies import is_session_id, new_session_id
from .registry import Provider, SupportsLifetimeHint, SupportsNewInsert, SupportsTake, get_provider

__all__ = ["SessionStore", "close", "provider"]

# When Django's expiry for the session runs out (wall clock), kept beside its
# data under a key no Django session uses.
EXPIRES = "\x00expires"
_OPTIONS = {"provider", "url", "prefix", "ttl", "max_sessions", "snapshot", "snapshot_interval"}

_lock = threading.Lock()
_provider: Optional[Any] = None
_snapshots: Optional[Any] = None
_horizon = 0.0  # the longest expiry age saved so far: the store's idle limit


def provider() -> Any:
    """The provider this process stores Django sessions in (made from settings.MEMSESSION once)."""
    global _provider
    if _provider is None:
        with _lock:
            if _provider is None:
                config = getattr(settings, "MEMSESSION", None) or {}
                made = _make(config)
                _snapshot(made, config)
                _provider = made
    return _provider


def _snapshot(made: Any, config: dict[str, Any]) -> None:
    """Keep the memory store across restarts when MEMSESSION names a snapshot file."""
    global _snapshots
    if "snapshot" not in config:
        if "snapshot_interval" in config:
            raise ImproperlyConfigured("MEMSESSION: snapshot_interval needs snapshot (a file path)")
        return
    from .seconds import seconds
    from .snapshot import Snapshots

    try:
        every = seconds(config.get("snapshot_interval"), "snapshot_interval", optional=True)
        _snapshots = Snapshots(made, config["snapshot"], every)
    except (TypeError, ValueError) as exc:
        raise ImproperlyConfigured(f"MEMSESSION: {exc}") from None


def close() -> None:
    """Save the snapshot (if any), close this process's provider and forget it.

    The next use makes a new one from settings. A snapshot is also saved at
    exit and on SIGTERM without this.
    """
    global _provider, _snapshots, _horizon
    with _lock:
        made, snapshots = _provider, _snapshots
        _provider, _snapshots, _horizon = None, None, 0.0
    if snapshots is not None:
        snapshots.close()
    if made is not None and callable(getattr(made, "close", None)):
        made.close()


def _make(config: Any) -> Any:
    try:
        return _build(config)
    except (TypeError, ValueError, LookupError) as exc:
        raise ImproperlyConfigured(f"MEMSESSION: {exc}") from None


def _build(config: Any) -> Any:
    if not isinstance(config, dict):
        raise ImproperlyConfigured(f"MEMSESSION must be a dict, not {type(config).__name__}")
    unknown = set(config) - _OPTIONS
    if unknown:
        raise ImproperlyConfigured(f"MEMSESSION has unknown keys: {', '.join(sorted(map(str, unknown)))}")
    kind = config.get("provider", "memory")
    if not isinstance(kind, str):
        raise ImproperlyConfigured(f"MEMSESSION['provider'] must be a str, not {type(kind).__name__}")
    remote = {k: config[k] for k in ("url", "prefix", "ttl") if k in config}
    if kind == "memory":
        if remote:
            raise ImproperlyConfigured("MEMSESSION: url, prefix and ttl are for the Redis providers")
        from ._impl import MemoryProvider

        made: Any = MemoryProvider(max_sessions=config.get("max_sessions"))
    elif kind in ("redis", "cached-redis"):
        from .redis import CachedRedisProvider, RedisProvider

        # Every process must keep a hash as long: a fixed TTL after each use,
        # not one learned per process from the expiries it happened to save.
        remote.setdefault("ttl", float(settings.SESSION_COOKIE_AGE))
        if kind == "cached-redis":
            made = CachedRedisProvider(**remote, max_sessions=config.get("max_sessions"))
        elif "max_sessions" in config:
            raise ImproperlyConfigured("MEMSESSION: max_sessions is for 'memory' and 'cached-redis'")
        else:
            made = RedisProvider(**remote)
    else:
        try:
            found = import_string(kind) if "." in kind else get_provider(kind)
        except ImportError as exc:
            raise ImproperlyConfigured(f"MEMSESSION['provider'] {kind!r} cannot be imported: {exc}") from None
        made = found if isinstance(found, Provider) and not isinstance(found, type) else found()
    if not isinstance(made, Provider) or isinstance(made, type):
        raise ImproperlyConfigured(f"MEMSESSION['provider'] {kind!r} is not a memsession Provider")
    if _is_async(made):
        raise ImproperlyConfigured("Django sessions need a sync provider, not an AsyncProvider")
    return made


def _is_async(made: Any) -> bool:
    import inspect

    return inspect.iscoroutinefunction(made.session_read)


def _local(store: Any) -> bool:
    from ._impl import MemoryProvider

    return isinstance(store, MemoryProvider)


def _expiry_horizon(age: float) -> float:
    global _horizon
    if age > _horizon:
        _horizon = age
        store = provider()
        if isinstance(store, SupportsLifetimeHint):
            store.expect_lifetime(age)
    return _horizon


class SessionStore(SessionBase):  # type: ignore[misc]
    """A Django session stored by a memsession provider."""

    def __init__(self, session_key: Optional[str] = None) -> None:
        super().__init__(session_key)
        # The data as loaded, to save only what changed; None: this request
        # never loaded it (it cleared the session first): its view replaces all.
        self._stored: Optional[dict[str, Any]] = None

    @property
    def _store(self) -> Any:
        return provider()

    def _read(self, session_key: Any) -> Optional[Any]:
        """The live stored session for a key memsession issued, or None (never looked up otherwise)."""
        if not is_session_id(session_key):
            return None
        store = self._store
        # A store of this process only (memory) is read with an idle limit,
        # the longest expiry age this process saved: it reclaims what idles
        # past it. A shared store keeps each session its fixed TTL.
        limit = _expiry_horizon(float(settings.SESSION_COOKIE_AGE)) if _local(store) else None
        found = store.session_read(session_key, limit)
        if found is None or found.get(EXPIRES, 0.0) <= time.time():
            return None
        return found

    def _get_new_session_key(self) -> str:
        return new_session_id()

    def exists(self, session_key: Optional[str]) -> bool:
        """True when session_key names a live session."""
        return self._read(session_key) is not None

    def load(self) -> dict[str, Any]:
        """The session's data, or {} (and no key) when it is unknown or expired."""
        found = self._read(self.session_key)
        if found is None:
            self._session_key = None
            self._stored = {}
            return {}
        data = {k: v for k, v in dict(found.items()).items() if k != EXPIRES}
        # A copy of its own: changes made in place reach the store only by a save.
        self._stored = self.serializer().loads(self.serializer().dumps(data))
        return self.serializer().loads(self.serializer().dumps(data))  # type: ignore[no-any-return]

    def create(self) -> None:
        """Store the session under a new key."""
        for _ in range(3):
            self._session_key = self._get_new_session_key()  # type: ignore[assignment]
            try:
                self.save(must_create=True)
            except CreateError:
                continue
            self.modified = True
            return
        raise RuntimeError("memsession: could not store a new session under a fresh id")

    def save(self, must_create: bool = False) -> None:
        """Write what this request changed; CreateError / UpdateError as Django's engines raise them."""
        if self.session_key is None:
            return self.create()
        data = self._get_session(no_load=must_create)
        # Django's serializer decides what may be stored (and refuses the rest
        # as its own engines do); the store gets a fresh copy.
        if EXPIRES in data:
            raise ValueError(f"{EXPIRES!r} is the key memsession keeps a session's expiry under")
        fresh = self.serializer().loads(self.serializer().dumps(data))
        age = float(self.get_expiry_age())
        _expiry_horizon(age)
        expires = time.time() + age
        store = self._store
        if must_create:
            if not is_session_id(self.session_key):
                raise CreateError
            try:
                if isinstance(store, SupportsNewInsert):
                    stored = store.session_new(self.session_key)
                    stored.update(fresh)
                    stored[EXPIRES] = expires
                    store.session_insert(stored)
                else:
                    stored = store.session_init(self.session_key)
                    stored.update({**fresh, EXPIRES: expires})
            except ValueError:
                raise CreateError from None
        else:
            current = self._read(self.session_key)
            if current is None:
                raise UpdateError  # ended meanwhile (a logout elsewhere): never revived
            before = self._stored
            if before is None:
                before = {k: None for k in list(current.keys()) if k != EXPIRES}
            changed = {k: v for k, v in fresh.items() if k not in before or before[k] != v}
            for key in before.keys() - fresh.keys():
                current.pop(key, None)
            current.update({**changed, EXPIRES: expires})
        self._stored = fresh

    def delete(self, session_key: Optional[str] = None) -> None:
        """End the session (this one's unless a key is given)."""
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        if is_session_id(session_key):
            self._store.session_destroy(session_key)

    def cycle_key(self) -> None:
        """Move the data to a new key; the old one ends first, atomically where the store can.

        The new session holds the data as stored when the old one ended, with
        this request's own changes on top (so another request's write just
        before is kept); if the old one had ended meanwhile (a logout
        elsewhere), only this request's changes move.
        """
        data = self._session
        key = self.session_key
        if key is not None and is_session_id(key):
            store = self._store
            if isinstance(store, SupportsTake):
                ended = store.session_take(key)
            else:
                ended = self._read(key)
                store.session_destroy(key)
            stored: dict[str, Any] = {}
            if ended is not None and ended.get(EXPIRES, 0.0) > time.time():
                stored = {k: v for k, v in dict(ended.items()).items() if k != EXPIRES}
            mine = self.serializer().loads(self.serializer().dumps(data))
            if self._stored is None:  # cleared before loading: this request's view is all there is
                data = mine
            else:
                removed = self._stored.keys() - mine.keys()
                changed = {k: v for k, v in mine.items() if k not in self._stored or self._stored[k] != v}
                data = {**{k: v for k, v in stored.items() if k not in removed}, **changed}
        self._session_key = None
        self._stored = None
        self._session_cache = data
        self.create()

    async def acycle_key(self) -> None:
        """As cycle_key() (django.contrib.auth.alogin calls it)."""
        await sync_to_async(self.cycle_key)()

    @classmethod
    def clear_expired(cls) -> None:
        """Remove sessions past Django's expiry (manage.py clearsessions); Redis expires its own.

        Only sessions this engine stored (they carry its expiry) are looked
        at: a provider shared with a Manager keeps that Manager's sessions.
        """
        store = provider()
        sessions = getattr(store, "sessions", None)
        if sessions is None:
            if _local(store) or not hasattr(store, "expect_lifetime"):
                store.session_gc(_expiry_horizon(float(settings.SESSION_COOKIE_AGE)))
            return
        now = time.time()
        for stored in list(sessions()):
            expires = stored.get(EXPIRES)
            if expires is not None and expires <= now:
                store.session_destroy(stored.sid)
