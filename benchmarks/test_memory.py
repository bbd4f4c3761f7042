"""Bytes per session next to cachetools.TTLCache and a dict of dicts (recorded as extra_info)."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import SIZES
from .memory import bytes_per_session, kinds


@pytest.mark.parametrize("n", SIZES.memory)
@pytest.mark.parametrize("kind", kinds())
def test_bytes_per_session(benchmark: Any, kind: str, n: int) -> None:
    benchmark.group = f"memory at {n:,} sessions (see extra_info bytes_per_session)"
    # A warm-up first: what the process allocates once is no session's bytes.
    result = benchmark.pedantic(bytes_per_session, args=(kind, n), rounds=1, iterations=1, warmup_rounds=1)
    benchmark.extra_info["bytes_per_session"] = result
    assert result > 0
