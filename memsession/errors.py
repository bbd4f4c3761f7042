"""Every memsession exception type, and the 503 answer adapters give for one."""

from __future__ import annotations

__all__ = [
    "RETRY_AFTER",
    "UNAVAILABLE_BODY",
    "UNAVAILABLE_HEADERS",
    "ConfigWarning",
    "ProviderUnavailableError",
    "SnapshotError",
    "UnknownProviderError",
]


class ProviderUnavailableError(ConnectionError):
    """The session store cannot be reached right now (down, timing out).

    The middlewares answer such a request with 503 Service Unavailable rather
    than a new, empty session, which would log the user out.
    """


class UnknownProviderError(LookupError):
    """No provider is registered under the requested name."""


class SnapshotError(ValueError):
    """A snapshot file is damaged, truncated, foreign or of an unknown version: nothing was loaded."""


class ConfigWarning(UserWarning):
    """A framework setting memsession replaces or cannot honour (the message says which)."""


# What every adapter answers when the store fails during a request.
RETRY_AFTER = "1"
UNAVAILABLE_BODY = b"session store unavailable, try again shortly\n"
UNAVAILABLE_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Type", "text/plain; charset=utf-8"),
    ("Content-Length", str(len(UNAVAILABLE_BODY))),
    ("Retry-After", RETRY_AFTER),
    ("Cache-Control", "no-store"),
)
