"""What a request costs when it finds the caches cold: memsession against the floor, counted by cachegrind.

Under uvicorn on two cores shared with wrk, a request rarely finds its code
and data still cached from the one before. Every cache line a session store
adds (machine code of the compiled core, bytecode and objects the
interpreter reads, CPython helpers) is then a miss. This counts them.

The end-to-end Starlette apps (benchmarks.e2e.starlette_app) are driven in
process under cachegrind, which simulates the caches; before every request
a 4 MB buffer is rewritten, evicting the simulated 1 MB last-level cache. A
variant that only evicts is counted too and taken off the others, and each
variant runs twice (FEW and MANY requests) so that start-up cancels out. The
hash seed is fixed: the counts repeat to a few lines from run to run.

`python -m benchmarks.coldlines` prints, per request: instructions, code
lines and data lines missed in the last-level cache, for the floor and for
memsession, and their difference. It needs valgrind (installed with the
system's package manager when absent and possible).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from .web import CookieClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FEW, MANY = 50, 450
EVICT_BYTES = 4 << 20
LINE = 64
CACHES = ("--I1=32768,8,64", "--D1=32768,8,64", "--LL=1048576,16,64")
EVICT_ONLY = "evict-only"
VARIANTS = ("floor", "memsession")
_TOTALS = {
    "instructions": r"I\s+refs:\s+([\d,]+)",
    "code": r"LLi misses:\s+([\d,]+)",
    "data": r"LLd misses:\s+([\d,]+)",
}


@dataclass(frozen=True)
class Cost:
    """Per request: instructions, and last-level misses of code and of data."""

    instructions: float
    code: float
    data: float

    def __sub__(self, other: Cost) -> Cost:
        return Cost(self.instructions - other.instructions, self.code - other.code, self.data - other.data)

    @classmethod
    def per_unit(cls, few: dict[str, int], many: dict[str, int], units: float) -> Cost:
        """What each of `units` more units of work added between two runs' cachegrind totals."""
        return cls(*((many[k] - few[k]) / units for k in _TOTALS))

    @property
    def lines(self) -> float:
        return self.code + self.data


def drive(variant: str, requests: int) -> None:
    """The child: `requests` GETs through the variant's app, the caches evicted before each."""
    evict = bytearray(EVICT_BYTES)
    ones = b"\x01" * (EVICT_BYTES // LINE)
    app: Any = None
    if variant != EVICT_ONLY:
        from .e2e import starlette_app

        app = starlette_app(variant)
    client = CookieClient()

    async def run() -> None:
        for _ in range(requests):
            scope = client.scope()
            evict[1::LINE] = ones
            if app is not None:
                await app(scope, client.receive, client.send)

    asyncio.run(run())


def cachegrind_totals(valgrind: str, module: str, *args: str) -> dict[str, int]:
    """cachegrind's totals (instructions, code and data lines missed) for `python -m module --child *args`."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = [
            valgrind,
            "--tool=cachegrind",
            "--cache-sim=yes",
            *CACHES,
            f"--cachegrind-out-file={os.path.join(tmp, 'out')}",
            sys.executable,
            "-m",
            module,
            "--child",
            *args,
        ]
        env = dict(os.environ, PYTHONHASHSEED="0")
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"cachegrind run of {module} {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    totals = {}
    for name, pattern in _TOTALS.items():
        found = re.search(pattern, done.stderr)
        if found is None:
            raise RuntimeError(f"no {name} total in cachegrind's output:\n{done.stderr[-2000:]}")
        totals[name] = int(found.group(1).replace(",", ""))
    return totals


def measure(valgrind: str, few: int = FEW, many: int = MANY) -> dict[str, Cost]:
    """The floor's and memsession's cold cost per request, start-up and eviction taken off."""
    runs = [(v, n) for v in (EVICT_ONLY, *VARIANTS) for n in (few, many)]

    def count(run: tuple[str, int]) -> dict[str, int]:
        return cachegrind_totals(valgrind, "benchmarks.coldlines", run[0], str(run[1]))

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        totals = dict(zip(runs, pool.map(count, runs)))

    def per_request(variant: str) -> Cost:
        return Cost.per_unit(totals[variant, few], totals[variant, many], many - few)

    evict = per_request(EVICT_ONLY)
    return {v: per_request(v) - evict for v in VARIANTS}


def report(costs: dict[str, Cost]) -> str:
    """The table: per request, each variant and memsession minus the floor."""
    rows = [*costs.items(), ("memsession - floor", costs["memsession"] - costs["floor"])]
    lines = [
        "Starlette request in process, caches evicted before each (cachegrind, last-level misses)",
        f"  {'':20} {'instructions':>12} {'code lines':>11} {'data lines':>11} {'lines':>7}",
    ]
    for name, c in rows:
        lines.append(f"  {name:20} {c.instructions:12,.0f} {c.code:11,.0f} {c.data:11,.0f} {c.lines:7,.0f}")
    return "\n".join(lines)


def find_valgrind() -> Optional[str]:
    """valgrind's path (the system's package installed first if absent and possible), or None."""
    import pytest

    from tests.system_deps import ensure_program

    try:
        return ensure_program("valgrind", "valgrind")
    except (pytest.skip.Exception, pytest.fail.Exception):
        return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Print the table (or, as the child, drive the app)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--child"]:
        drive(args[1], int(args[2]))
        return 0
    valgrind = find_valgrind()
    if valgrind is None:
        print("python -m benchmarks.coldlines: needs valgrind, which could not be installed", file=sys.stderr)
        return 2
    print(report(measure(valgrind)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
