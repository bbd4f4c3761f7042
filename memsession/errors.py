"""Errors shared by providers and adapters."""

from __future__ import annotations

__all__ = ["ProviderUnavailableError"]


class ProviderUnavailableError(ConnectionError):
    """The session store cannot be reached right now (down, timing out).

    The middlewares answer such a request with 503 Service Unavailable rather
    than a new, empty session, which would log the user out.
    """
