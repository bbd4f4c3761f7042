"""Redis provider round trips next to the memory provider and the near cache, on a private redis-server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.redis_server import LocalRedis

from .conftest import SIZES, measure
from .runner import Candidate

pytest.importorskip("redis")
from .redisbench import redis_group  # noqa: E402

CASES = [
    "memory read",
    "memory read + write",
    "memory 10:1 mix",
    "redis read",
    "redis read + write",
    "redis 10:1 mix",
    "near cache read",
    "near cache 10:1 mix",
    "ping",
]


@pytest.fixture(scope="module")
def group() -> Iterator[Any]:
    """The Redis benchmark group on a private server."""
    try:
        server = LocalRedis()
        server.start()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    group = redis_group(server.url, SIZES.redis_sessions, SIZES.requests)
    yield group
    if group.cleanup is not None:
        group.cleanup()  # also checks that the near cache's timed reads were local
    server.stop()


@pytest.mark.parametrize("index", range(len(CASES)), ids=CASES)
def test_redis_round_trips(benchmark: Any, group: Any, index: int) -> None:
    case: Candidate = group.candidates[index]
    measure(benchmark, group, case)
