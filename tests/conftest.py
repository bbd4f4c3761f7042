"""Shared fixtures: both cores, a fake clock, providers and managers on it."""

from __future__ import annotations

import asyncio
import sys
import types
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import memsession
from memsession import _core_py
from memsession._impl import NO_EXTENSIONS
from memsession.testing import FakeClock


def _compiled() -> types.ModuleType:
    from memsession import _core

    return _core


@pytest.fixture(params=["cython", "python"])
def core(request: pytest.FixtureRequest) -> types.ModuleType:
    """The compiled core and its pure-Python twin, in turn."""
    if request.param == "python":
        return _core_py
    if NO_EXTENSIONS:
        pytest.skip("MEMSESSION_NO_EXTENSIONS is set")
    return _compiled()


@pytest.fixture
def clock() -> FakeClock:
    """A clock that moves only when the test says so."""
    return FakeClock(1000.0)


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Switch threads as often as the interpreter allows, to provoke races."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


@pytest.fixture
def provider(core: types.ModuleType, clock: FakeClock) -> object:
    """A fresh MemoryProvider of each core on the fake clock."""
    return core.MemoryProvider(clock=clock)


@pytest.fixture
def manager(provider: object) -> Iterator[memsession.Manager]:
    """A Manager over the fake-clock provider, closed after the test."""
    with memsession.Manager(provider, "sid", 100.0) as m:  # type: ignore[arg-type]
        yield m


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Any]:
    """A private redis-server for the whole run (installed with apt when absent)."""
    pytest.importorskip("redis")
    from .redis_server import RedisServer

    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def running_redis(redis_server: Any) -> Iterator[Any]:
    """The shared redis-server, running now, and running again after the test (which may stop it)."""
    if redis_server.proc is None:
        redis_server.start()
    yield redis_server
    if redis_server.proc is None:
        redis_server.start()


@pytest.fixture
def redis_provider(running_redis: Any, clock: FakeClock) -> Iterator[Any]:
    """A RedisProvider on the fake clock, under a prefix of its own."""
    from memsession.redis import RedisProvider

    provider = RedisProvider(running_redis.url, prefix=f"t-{uuid.uuid4().hex[:8]}:", clock=clock, timeout=2.0)
    yield provider
    provider.close()


@pytest.fixture
def async_redis_provider(running_redis: Any, clock: FakeClock) -> Iterator[Any]:
    """An AsyncRedisProvider on the fake clock, under a prefix of its own.

    Made outside any event loop: it connects lazily, in each loop that uses
    it. aclose() can close only the connections of the loop it runs in, so a
    test using it from loops of its own awaits ``provider.aclose()`` in them;
    the teardown's aclose() then merely forgets what is left.
    """
    from memsession.redis import AsyncRedisProvider

    provider = AsyncRedisProvider(
        running_redis.url, prefix=f"ta-{uuid.uuid4().hex[:8]}:", clock=clock, timeout=2.0
    )
    yield provider
    asyncio.run(provider.aclose())


@pytest.fixture(params=["memory-cython", "memory-python", "redis"])
def any_provider(request: pytest.FixtureRequest, clock: FakeClock) -> Any:
    """Each provider in turn, on the fake clock: the memory cores and Redis."""
    if request.param == "redis":
        return request.getfixturevalue("redis_provider")
    core = _core_py if request.param == "memory-python" else None
    if core is None:
        if NO_EXTENSIONS:
            pytest.skip("MEMSESSION_NO_EXTENSIONS is set")
        core = _compiled()
    return core.MemoryProvider(clock=clock)
