"""benchmarks.coldlines: cachegrind's count of what a cold request costs, floor and memsession."""

from __future__ import annotations

from .coldlines import VARIANTS, measure, report


def test_cold_request_counts_the_store_on_top_of_the_floor(valgrind: str) -> None:
    costs = measure(valgrind, few=3, many=13)
    assert set(costs) == set(VARIANTS)
    for cost in costs.values():
        # Eviction taken off, a request still runs Starlette: thousands of
        # instructions, and its code and data missed after every eviction.
        assert cost.instructions > 10_000 and cost.code > 100 and cost.data > 100
    # The store's lookup and the request's own session object come on top.
    assert costs["memsession"].instructions > costs["floor"].instructions
    table = report(costs)
    assert "memsession - floor" in table and "floor" in table
