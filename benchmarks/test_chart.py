"""benchmarks.chart: the chart of a run, with long group titles wrapped to its width."""

from __future__ import annotations

import pathlib

import pytest

from .chart import TITLE_WIDTH, _wrapped, plot

LONG = (
    "uvicorn, 1 worker (asyncio, h11) + Starlette, wrk: 8 connections,"
    " each keeping its cookie, GET reading and writing one session key"
)


def test_a_long_group_title_is_wrapped_to_the_chart_width_and_keeps_every_word() -> None:
    lines = _wrapped(LONG).split("\n")
    assert len(lines) == 2 and all(len(line) <= TITLE_WIDTH for line in lines)
    assert " ".join(lines) == LONG
    assert _wrapped("read, 100,000 sessions") == "read, 100,000 sessions"


def test_a_run_with_a_long_title_and_memory_counts_draws_a_png(tmp_path: pathlib.Path) -> None:
    pytest.importorskip("matplotlib")
    results = {
        "groups": [
            {"title": LONG, "median_seconds": {"memsession (memory)": 1.3e-4, "floor": 1.2e-4}},
            {"title": "read", "median_seconds": {"memsession (compiled)": 2.7e-7, "dict.get": 1.9e-7}},
        ],
        "memory_bytes_per_session": {"memsession": {"100000": 247.0}, "ttlcache": {"100000": 402.0}},
    }
    path = tmp_path / "chart.png"
    plot(results, str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
