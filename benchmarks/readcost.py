"""What one read costs, counted by cachegrind: memsession's session_read against the floors.

The read group's times move with this shared machine's hour (see the README's
"Performance"); the instructions a read executes and the cache lines it
misses do not. This runs the read group's loop (random ids over a store of
live one-key sessions, one call per id) under cachegrind, with the simulated
last-level cache the size of one core's L2 here (1 MB): a line missed there
is one the read waits for from the shared L3 or memory. Each variant runs
once with one pass over the ids and once with three, so building the store
and the first, cold pass cancel out. The hash seed is fixed, so the
instructions repeat exactly; the lines move by about a fifth of a line
with where the allocator happens to place the sessions.

`python -m benchmarks.readcost [SIZE]` prints, per read: instructions, and
code and data lines missed, for each variant. It needs valgrind.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Optional, Sequence

from .coldlines import Cost, cachegrind_totals, find_valgrind
from .store import DATA_FLOOR, LOOKUP_FLOOR, OBJECT_FLOOR, read_group

SIZE, READS = 100_000, 200_000
FEW, MANY = 1, 3  # passes over the ids
OURS = "memsession (compiled)"
VARIANTS = (LOOKUP_FLOOR, OBJECT_FLOOR, DATA_FLOOR, OURS)
FLOORS = (("lookup floor", LOOKUP_FLOOR), ("object floor", OBJECT_FLOOR))


def drive(variant: str, size: int, reads: int, passes: int) -> None:
    """The child: `passes` runs of the read group's own loop for the variant."""
    found = [c for c in read_group(size, reads).candidates if c.name == variant]
    if not found:
        raise RuntimeError(f"the read group has no {variant!r} here")
    run = found[0].prepare()
    for _ in range(passes):
        run()


def measure(valgrind: str, size: int = SIZE, reads: int = READS) -> dict[str, Cost]:
    """Each variant's cost per read, the store's building and the cold pass taken off."""
    runs = [(v, p) for v in VARIANTS for p in (FEW, MANY)]

    def count(run: tuple[str, int]) -> dict[str, int]:
        variant, passes = run
        child = (str(VARIANTS.index(variant)), str(size), str(reads), str(passes))
        return cachegrind_totals(valgrind, "benchmarks.readcost", *child)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        totals = dict(zip(runs, pool.map(count, runs)))
    return {v: Cost.per_unit(totals[v, FEW], totals[v, MANY], (MANY - FEW) * reads) for v in VARIANTS}


def report(costs: dict[str, Cost], size: int = SIZE) -> str:
    """The table: per read, each variant, and memsession's over the lookup and object floors'."""
    ours = costs[OURS]
    lines = [
        f"read + mark used, {size:,} live sessions, random ids (cachegrind, 1 MB last-level cache)",
        f"  {'':42} {'instructions':>12} {'code lines':>11} {'data lines':>11}",
    ]
    over = [(f"memsession - {floor}", ours - costs[name]) for floor, name in FLOORS]
    for name, c in [*costs.items(), *over]:
        code, data = round(c.code, 2) + 0.0, round(c.data, 2) + 0.0  # no "-0.00"
        lines.append(f"  {name:42} {c.instructions:12,.0f} {code:11,.2f} {data:11,.2f}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Print the table (or, as the child, run the reads)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--child"]:
        drive(VARIANTS[int(args[1])], int(args[2]), int(args[3]), int(args[4]))
        return 0
    size = int(args[0]) if args else SIZE
    valgrind = find_valgrind()
    if valgrind is None:
        print("python -m benchmarks.readcost: needs valgrind, which could not be installed", file=sys.stderr)
        return 2
    print(report(measure(valgrind, size, max(READS, size * 2)), size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
