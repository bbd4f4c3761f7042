"""Bytes per session next to cachetools.TTLCache and a dict of dicts (recorded as extra_info)."""

from __future__ import annotations

from typing import Any

import pytest

from memsession.bench.store import bytes_per_session, cores

from .conftest import QUICK

SIZES = [100_000] if QUICK else [100_000, 1_000_000]
KINDS = [label for label, _ in cores()] + ["ttl", "dict"]


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("kind", KINDS)
def test_bytes_per_session(benchmark: Any, kind: str, n: int) -> None:
    benchmark.group = f"memory at {n:,} sessions (see extra_info bytes_per_session)"
    result = benchmark.pedantic(bytes_per_session, args=(kind, n), rounds=1, iterations=1)
    benchmark.extra_info["bytes_per_session"] = result
    assert result > 0
