"""Server-side HTTP sessions held in process memory by a compiled store."""

from ._impl import IMPLEMENTATION, MemoryProvider, RequestSession
from .errors import ConfigWarning, ProviderUnavailableError, SnapshotError, UnknownProviderError
from .manager import Manager
from .registry import (
    AsyncProvider,
    Provider,
    SupportsDestroyIfEmpty,
    SupportsLifetimeHint,
    SupportsNewInsert,
    SupportsTake,
    SupportsUpdate,
    get_provider,
    register,
)
from .session import RequestFlag, Session

__version__ = "0.1.0"

__all__ = [
    "IMPLEMENTATION",
    "ConfigWarning",
    "AsyncProvider",
    "Manager",
    "MemoryProvider",
    "Provider",
    "ProviderUnavailableError",
    "SnapshotError",
    "RequestFlag",
    "RequestSession",
    "Session",
    "SupportsDestroyIfEmpty",
    "SupportsLifetimeHint",
    "SupportsNewInsert",
    "SupportsTake",
    "SupportsUpdate",
    "UnknownProviderError",
    "__version__",
    "get_provider",
    "register",
]

# A factory: every Manager("memory") gets a store of its own.
register("memory", MemoryProvider)
