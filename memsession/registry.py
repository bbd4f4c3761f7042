"""The provider registry and the Provider protocol every store implements."""

from __future__ import annotations

import threading
from typing import Optional, Protocol, runtime_checkable

from ._impl import Session

__all__ = ["Provider", "UnknownProviderError", "get_provider", "register"]


@runtime_checkable
class Provider(Protocol):
    """A session store. Every method must be safe to call from many threads at once.

    Optional, for lazy sessions without a copy: ``session_new(sid)`` returns a
    detached session that ``session_insert(session)`` later stores under its
    id. The Manager uses them when present, else ``session_init`` plus
    ``update``.
    """

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


class UnknownProviderError(LookupError):
    """No provider is registered under the requested name."""


_providers: dict[str, Provider] = {}
_lock = threading.Lock()


def register(name: str, provider: Provider) -> None:
    """Make provider available under name; a name may be registered once."""
    if not isinstance(name, str):
        raise TypeError(f"name must be str, not {type(name).__name__}")
    if not name:
        raise ValueError("name must not be empty")
    if provider is None:
        raise TypeError(f"register: provider for {name!r} is None")
    if not isinstance(provider, Provider):
        raise TypeError(
            f"register: provider for {name!r} lacks the Provider methods ({type(provider).__name__})"
        )
    with _lock:
        if name in _providers:
            raise ValueError(f"register called twice for provider {name!r}")
        _providers[name] = provider


def get_provider(name: str) -> Provider:
    """The provider registered under name."""
    if not isinstance(name, str):
        raise TypeError(f"name must be str, not {type(name).__name__}")
    try:
        return _providers[name]
    except KeyError:
        raise UnknownProviderError(f"unknown provider {name!r} (forgotten import?)") from None
