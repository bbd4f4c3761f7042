"""A private redis-server for the tests, installed with apt when absent."""

from __future__ import annotations

from memsession.bench.redisbench import LocalRedis, free_port

from .system_deps import ensure_program

__all__ = ["RedisServer", "free_port"]


def RedisServer() -> LocalRedis:  # noqa: N802 - reads as the class it builds
    """A stopped LocalRedis running Debian's redis-server (installed if needed)."""
    return LocalRedis(ensure_program("redis-server", "redis-server"))
