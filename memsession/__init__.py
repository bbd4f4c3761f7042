"""Server-side HTTP sessions held in process memory by a compiled store."""

from ._impl import IMPLEMENTATION, MemoryProvider, Session
from .errors import ProviderUnavailableError
from .manager import Manager
from .registry import Provider, UnknownProviderError, get_provider, register

__version__ = "0.1.0"

__all__ = [
    "IMPLEMENTATION",
    "Manager",
    "MemoryProvider",
    "Provider",
    "ProviderUnavailableError",
    "Session",
    "UnknownProviderError",
    "__version__",
    "get_provider",
    "register",
]

register("memory", MemoryProvider())
