"""Benchmarks share memsession.bench's cases; each group's candidates side by side."""

from __future__ import annotations

import os
from typing import Any

import pytest

from memsession.bench.runner import Candidate, Group

# MEMSESSION_BENCH_QUICK=1: small sizes, for a smoke run that keeps the suite alive.
QUICK = bool(os.environ.get("MEMSESSION_BENCH_QUICK"))


def params(group: Group) -> Any:
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

    benchmark.pedantic(lambda: holder["run"](), setup=setup, rounds=3 if QUICK else 9, iterations=1)
