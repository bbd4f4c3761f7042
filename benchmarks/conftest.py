"""The pytest-benchmark suites run the same cases, at the same sizes, as `python -m benchmarks`."""

from __future__ import annotations

import os
from typing import Any

import pytest

from .runner import Candidate, Group
from .suite import sizes

# MEMSESSION_BENCH_QUICK=1: small sizes, for a smoke run that keeps the suite alive.
QUICK = bool(os.environ.get("MEMSESSION_BENCH_QUICK"))
SIZES = sizes(QUICK)


def params(group: Group) -> pytest.MarkDecorator:
    """pytest parameters, one per candidate of a group."""
    return pytest.mark.parametrize("case", group.candidates, ids=[c.name for c in group.candidates])


def measure(benchmark: Any, group: Group, case: Candidate) -> None:
    """Time one candidate, fresh state each round, in the group's benchmark group."""
    benchmark.group = group.title
    benchmark.extra_info["ops_per_round"] = group.ops
    holder: dict[str, Any] = {}

    def setup() -> tuple[tuple[()], dict[str, Any]]:
        holder["run"] = case.prepare()
        return (), {}

    benchmark.pedantic(lambda: holder["run"](), setup=setup, rounds=SIZES.rounds, iterations=1)


@pytest.fixture
def valgrind() -> str:
    """valgrind's path; the test is skipped when it is absent and cannot be installed."""
    from .coldlines import find_valgrind

    found = find_valgrind()
    if found is None:
        pytest.skip("valgrind is absent and cannot be installed here")
    return found
