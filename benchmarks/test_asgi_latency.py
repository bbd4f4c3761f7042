"""One uvicorn worker's requests/s, RedisProvider against AsyncRedisProvider, Redis +0 and +20 ms.

The blocking provider at +20 ms sends far fewer requests per round than the
others (see benchmarks/asgi_latency.py), so the table's times are per round
of the number of requests each case's id names; extra_info holds the
requests per second (`python -m benchmarks` prints them side by side).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.redis_server import LocalRedis

from .conftest import QUICK
from .runner import Candidate

pytest.importorskip("redis")
pytest.importorskip("uvicorn")
from .asgi_latency import CONNECTIONS, LatencyGroup, latency_group, latency_sizes  # noqa: E402

_SIZE = latency_sizes(QUICK)
CASES = [
    f"{kind} +{ms}ms, {_SIZE.slow if (kind, ms) == ('sync', 20) else _SIZE.requests} requests"
    for ms in (0, 20)
    for kind in ("sync", "async")
]


@pytest.fixture(scope="module")
def group() -> Iterator[LatencyGroup]:
    """The group's workers and proxy in front of a private redis-server."""
    try:
        server = LocalRedis()
        server.start()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    group = latency_group(server.url, QUICK)
    yield group
    if group.cleanup is not None:
        group.cleanup()
    server.stop()


@pytest.mark.parametrize("index", range(len(CASES)), ids=CASES)
def test_asgi_latency(benchmark: Any, group: LatencyGroup, index: int) -> None:
    case: Candidate = group.candidates[index]
    requests = group.requests[case.name]
    benchmark.group = group.title
    benchmark.extra_info.update(requests_per_round=requests, connections=CONNECTIONS)
    holder: dict[str, Any] = {}

    def setup() -> tuple[tuple[()], dict[str, Any]]:
        holder["run"] = case.prepare()
        return (), {}

    benchmark.pedantic(lambda: holder["run"](), setup=setup, rounds=group.rounds, iterations=1)
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["requests_per_second"] = requests / benchmark.stats.stats.median
