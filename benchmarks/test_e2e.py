"""End to end under wrk: uvicorn + Starlette and gunicorn + Flask, each session store against a plain dict.

wrk runs for a fixed time (see benchmarks/e2e.py), so the table's times are
that time; extra_info holds the requests per second and how many answers set
a cookie (`python -m benchmarks --e2e` prints them side by side). Every run
is checked: all answers 200, each session's counter one more per request.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import QUICK
from .e2e import FLASK, STARLETTE, E2EGroup, Load, balanced_order, describe, e2e_groups, e2e_rounds

CASES = [("uvicorn", name) for name in STARLETTE.values()] + [("gunicorn", name) for name in FLASK.values()]


@pytest.fixture(scope="module")
def groups() -> Iterator[dict[str, E2EGroup]]:
    """Both groups by server; their servers start on a group's first run, and stop at the end."""
    built = {g.server: g for g in e2e_groups(QUICK)}
    yield built
    for group in built.values():
        if group.cleanup is not None:
            group.cleanup()


@pytest.mark.parametrize(("server", "name"), CASES, ids=[f"{s}-{n}" for s, n in CASES])
def test_e2e(benchmark: Any, groups: dict[str, E2EGroup], server: str, name: str) -> None:
    group = groups[server]
    if not group.candidates:
        pytest.skip(group.title)
    case = next((c for c in group.candidates if c.name == name), None)
    if case is None:
        pytest.skip(f"{name}: not installed")
    benchmark.group = group.title
    holder: dict[str, Any] = {}
    runs: list[Load] = []

    def setup() -> tuple[tuple[()], dict[str, Any]]:
        holder["run"] = case.prepare()
        return (), {}

    def run() -> None:
        runs.append(holder["run"]())  # checked by the run itself: RuntimeError on a wrong answer

    benchmark.pedantic(run, setup=setup, rounds=group.rounds, iterations=1)
    benchmark.extra_info.update(requests_per_second=[round(m.rps) for m in runs], notes=describe(runs))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_balanced_order_has_every_server_follow_every_other_equally_often(n: int) -> None:
    runs = e2e_rounds(15, n)
    assert runs >= 15 and (n == 1 or runs % (n - 1) == 0)
    order = balanced_order(n, runs)
    assert Counter(order) == dict.fromkeys(range(n), runs)
    follows = Counter(zip(order, order[1:]))
    if n > 1:
        assert not [pair for pair in follows if pair[0] == pair[1]]  # nobody follows itself
        pairs = {(a, b) for a in range(n) for b in range(n) if a != b}
        assert set(follows) == pairs
        # Every pair equally often, but for the walk's one missing step back to its start.
        assert max(follows.values()) - min(follows.values()) <= 1
