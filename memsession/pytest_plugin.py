"""pytest fixtures for throwaway sessions; installed with memsession (pytest11 entry point)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Callable, Optional

import pytest

from ._impl import MemoryProvider
from .manager import Manager
from .testing import FakeClock, StartedSession, start_session

__all__ = ["memsession_clock", "memsession_login", "memsession_manager", "memsession_provider"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "memsession(**options): Manager options for the memsession_manager fixture, "
        "e.g. @pytest.mark.memsession(max_lifetime=60, cookie_name='sid')",
    )


@pytest.fixture
def memsession_clock() -> FakeClock:
    """A clock that moves only on advance() or set(): time travel without sleeping."""
    return FakeClock()


@pytest.fixture
def memsession_provider(memsession_clock: FakeClock) -> MemoryProvider:
    """A fresh MemoryProvider of this test alone, on memsession_clock."""
    return MemoryProvider(clock=memsession_clock)


@pytest.fixture
def memsession_manager(
    request: pytest.FixtureRequest, memsession_provider: MemoryProvider
) -> Iterator[Manager]:
    """A Manager over memsession_provider (options from @pytest.mark.memsession), closed after the test."""
    options: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers("memsession"))):
        if marker.args:
            raise TypeError("@pytest.mark.memsession takes keyword arguments only")
        options.update(marker.kwargs)
    manager = Manager(memsession_provider, **options)
    try:
        yield manager
    finally:
        manager.close()


@pytest.fixture
def memsession_login(memsession_manager: Manager) -> Callable[..., StartedSession]:
    """Store a session holding the given data; returns its cookie for your test client."""

    def login(data: Optional[Mapping[str, Any]] = None, **more: Any) -> StartedSession:
        return start_session(memsession_manager, data, **more)

    return login
