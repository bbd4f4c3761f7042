"""`gunicorn -w 4` requests/s under wrk, 10 reads per write: Memory, Redis and CachedRedisProvider.

wrk runs for a fixed time (see benchmarks/workers.py), so the table's times
are that time; extra_info holds the requests per second, how the requests
spread over the workers, and what was refused (`python -m benchmarks`
prints them side by side).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.redis_server import LocalRedis

from .conftest import QUICK

pytest.importorskip("redis")
pytest.importorskip("gunicorn")
from .workers import KINDS, Mix, WorkersGroup, check, describe, workers_group  # noqa: E402

CASES = list(KINDS)  # memory, redis, cached: the candidates' order


@pytest.fixture(scope="module")
def group() -> Iterator[WorkersGroup]:
    """The group's gunicorns in front of a private redis-server."""
    try:
        server = LocalRedis()
        server.start()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    group = workers_group(server.url, QUICK)
    if not group.candidates:
        server.stop()
        pytest.skip(group.title)
    yield group
    if group.cleanup is not None:
        group.cleanup()
    server.stop()


@pytest.mark.parametrize("index", range(len(CASES)), ids=CASES)
def test_workers(benchmark: Any, group: WorkersGroup, index: int) -> None:
    case = group.candidates[index]
    benchmark.group = group.title
    holder: dict[str, Any] = {}
    runs: list[Mix] = []

    def setup() -> tuple[tuple[()], dict[str, Any]]:
        holder["run"] = case.prepare()
        return (), {}

    def run() -> None:
        mix = holder["run"]()
        check(case.name, mix)
        runs.append(mix)

    benchmark.pedantic(run, setup=setup, rounds=group.rounds, iterations=1)
    benchmark.extra_info.update(requests_per_second=[round(m.rps) for m in runs], notes=describe(runs))
