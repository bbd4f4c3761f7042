"""The provider registry, the Provider protocol, and optional provider capabilities."""

from __future__ import annotations

import threading
from typing import Callable, Optional, Protocol, Union, runtime_checkable

from .errors import UnknownProviderError
from .session import Session

__all__ = [
    "AsyncProvider",
    "Provider",
    "ProviderFactory",
    "SupportsDestroyIfEmpty",
    "SupportsLifetimeHint",
    "SupportsNewInsert",
    "SupportsTake",
    "SupportsUpdate",
    "UnknownProviderError",
    "get_provider",
    "register",
]


@runtime_checkable
class Provider(Protocol):
    """A session store. Every method must be safe to call from many threads at once."""

    def session_init(self, sid: str) -> Session:
        """Create, store and return a new, empty session under sid.

        Must raise ValueError when sid is live already (never overwrite) and
        TypeError when sid is not a str.
        """
        ...

    def session_read(self, sid: str, max_lifetime: Optional[float] = None) -> Optional[Session]:
        """Return the live session for sid, marked as used now (sliding expiry).

        Must return None for an unknown sid. A session idle longer than
        max_lifetime seconds must be removed and None returned; None as
        max_lifetime means no idle check. Must never create a session.
        """
        ...

    def session_destroy(self, sid: str) -> None:
        """Remove the session's state. Must be idempotent: unknown ids are no error."""
        ...

    def session_gc(self, max_lifetime: float) -> int:
        """Remove sessions idle longer than max_lifetime seconds; return how many.

        Should cost time in proportion to what it removes, not to what it keeps.
        """
        ...

    def now(self) -> float:
        """The provider's clock in seconds; all of its timestamps use it."""
        ...


@runtime_checkable
class AsyncProvider(Protocol):
    """A session store for asyncio apps: the Provider methods as coroutines, same semantics.

    now() stays a plain method (a clock does no I/O). The ASGI middleware
    awaits these, so a slow or stalled store never blocks the event loop.
    """

    async def session_init(self, sid: str) -> Session:
        """As Provider.session_init."""
        ...

    async def session_read(self, sid: str, max_lifetime: Optional[float] = None) -> Optional[Session]:
        """As Provider.session_read; the session's writes wait for its flush() coroutine."""
        ...

    async def session_destroy(self, sid: str) -> None:
        """As Provider.session_destroy."""
        ...

    async def session_gc(self, max_lifetime: float) -> int:
        """As Provider.session_gc."""
        ...

    def now(self) -> float:
        """The provider's clock in seconds."""
        ...


@runtime_checkable
class SupportsLifetimeHint(Protocol):
    """A store told the Manager's idle lifetime, to keep sessions at least that long."""

    def expect_lifetime(self, max_lifetime: float) -> None:
        """Keep every session at least max_lifetime seconds after its last use."""
        ...


@runtime_checkable
class SupportsNewInsert(Protocol):
    """Lazy sessions without a copy: a detached session, stored later as it is."""

    def session_new(self, sid: str) -> Session:
        """Return a detached session for sid; nothing is stored yet."""
        ...

    def session_insert(self, session: Session) -> None:
        """Store a session from session_new under its id, with all its data, atomically.

        Must raise ValueError when its id is live already.
        """
        ...


@runtime_checkable
class SupportsTake(Protocol):
    """Removing a session and getting its data in one atomic step (regenerate uses it)."""

    def session_take(self, sid: str) -> Optional[Session]:
        """Remove the session and return it with its data as stored; None when not live.

        Must be atomic: a session taken is never also read, written or taken
        by anyone else afterwards.
        """
        ...


@runtime_checkable
class SupportsUpdate(Protocol):
    """Marking a session used without reading it."""

    def session_update(self, sid: str) -> bool:
        """Mark the session used now; must return False when sid is not live."""
        ...


@runtime_checkable
class SupportsDestroyIfEmpty(Protocol):
    """Destroying a session only when it holds no data, atomically."""

    def session_destroy_if_empty(self, sid: str) -> bool:
        """Remove the session if it holds no data in the store; True when removed.

        Must decide on the stored data, not on any one request's view, in one
        atomic step, so a concurrent write to another key is never lost.
        """
        ...


ProviderFactory = Callable[[], Provider]

_providers: dict[str, Union[Provider, ProviderFactory]] = {}
_lock = threading.Lock()


def register(name: str, provider: Union[Provider, ProviderFactory]) -> None:
    """Make provider available under name; a name may be registered once.

    A Provider instance is shared by every Manager naming it; a zero-argument
    factory (such as a provider class) gives each Manager its own store.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be str, not {type(name).__name__}")
    if not name:
        raise ValueError("name must not be empty")
    if provider is None:
        raise TypeError(f"register: provider for {name!r} is None")
    if isinstance(provider, type) or not isinstance(provider, Provider):
        if not callable(provider):
            raise TypeError(
                f"register: provider for {name!r} is neither a Provider nor a factory of one "
                f"({type(provider).__name__})"
            )
    with _lock:
        if name in _providers:
            raise ValueError(f"register called twice for provider {name!r}")
        _providers[name] = provider


def get_provider(name: str) -> Provider:
    """The provider registered under name (for a factory, a new one)."""
    if not isinstance(name, str):
        raise TypeError(f"name must be str, not {type(name).__name__}")
    try:
        found = _providers[name]
    except KeyError:
        raise UnknownProviderError(f"unknown provider {name!r} (forgotten import?)") from None
    if isinstance(found, type) or not isinstance(found, Provider):
        made = found()
        if not isinstance(made, Provider):
            raise TypeError(
                f"the factory registered as {name!r} returned {type(made).__name__}, not a Provider"
            )
        return made
    return found
