"""Shared fixtures: both cores, a fake clock, providers and managers on it."""

from __future__ import annotations

import types
from collections.abc import Iterator

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
def provider(core: types.ModuleType, clock: FakeClock) -> object:
    """A fresh MemoryProvider of each core on the fake clock."""
    return core.MemoryProvider(clock=clock)


@pytest.fixture
def manager(provider: object) -> Iterator[memsession.Manager]:
    """A Manager over the fake-clock provider, closed after the test."""
    with memsession.Manager(provider, "sid", 100.0) as m:  # type: ignore[arg-type]
        yield m
