"""benchmarks.readcost: cachegrind's count of what one read costs, memsession and the floors."""

from __future__ import annotations

from .readcost import OURS, VARIANTS, measure, report
from .store import DATA_FLOOR, LOOKUP_FLOOR, OBJECT_FLOOR


def test_a_read_counts_the_store_on_top_of_the_lookup_floor(valgrind: str) -> None:
    costs = measure(valgrind, size=2_000, reads=4_000)
    assert set(costs) == set(VARIANTS)
    # Each read runs at least the interpreter's loop and one call.
    assert all(c.instructions > 100 for c in costs.values())
    # Reaching each session's own data costs more than one shared value,
    # and memsession's read (checks, time, order) more than a dict lookup.
    assert costs[DATA_FLOOR].instructions > costs[LOOKUP_FLOOR].instructions
    assert costs[DATA_FLOOR].instructions > costs[OBJECT_FLOOR].instructions
    assert costs[OURS].instructions > costs[LOOKUP_FLOOR].instructions
    table = report(costs, 2_000)
    assert "memsession - lookup floor" in table and "memsession - object floor" in table
    assert "2,000 live sessions" in table
