"""The side-by-side run: every group and the memory count, the bars of DESIGN, a text report."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from typing import Any, Iterable, Optional

from .asgi_latency import LatencyGroup, latency_group
from .e2e import FLOOR_RATIO, E2EGroup, e2e_groups
from .memory import NAMES, memory_table
from .runner import Group, Progress, format_seconds, run_group
from .snapshot import sessions, snapshot_group
from .store import (
    CACHEBOX_LRU,
    DATA_FLOOR,
    LOOKUP_FLOOR,
    LRU_DICT,
    TTL_GET_SET,
    ReadGroup,
    cores,
    create_group,
    destroy_group,
    evict_group,
    gc_group,
    gc_idle_group,
    read_group,
    read_key,
)
from .web import asgi_group, flask_group, wsgi_group
from .workers import KINDS, WorkersGroup, workers_group

__all__ = ["Bar", "Sizes", "e2e_bars", "read_bars", "report", "run", "run_e2e", "sizes"]


@dataclass(frozen=True)
class Sizes:
    """How big each case is, shared by the runner and the pytest-benchmark suites."""

    rounds: int
    read: list[int]  # live sessions, one read group each
    reads: int  # reads per run of a read group
    ops: int  # creates, destroys
    gc: tuple[int, int]  # live sessions, expired among them
    idle: list[int]  # store sizes for GC with nothing expired
    evict: tuple[int, int]  # capacity, inserts past it
    memory: list[int]  # store sizes for the memory count
    requests: int  # per request-path run, also the Redis group's
    redis_sessions: int = 1_000


def sizes(quick: bool) -> Sizes:
    """The full sizes, or small ones for a smoke run."""
    if quick:
        return Sizes(
            rounds=3,
            read=[10_000, 100_000],
            reads=20_000,
            ops=10_000,
            gc=(20_000, 10_000),
            idle=[10_000, 100_000],
            evict=(10_000, 5_000),
            memory=[100_000],
            requests=500,
        )
    return Sizes(
        rounds=9,
        read=[100_000, 1_000_000],
        reads=200_000,
        ops=100_000,
        gc=(100_000, 50_000),
        idle=[100_000, 1_000_000],
        evict=(100_000, 50_000),
        memory=[100_000, 1_000_000],
        requests=5_000,
    )


def store_groups(size: Sizes) -> list[Group]:
    """The store groups: read at each size, create, destroy, GC, GC with nothing expired, eviction."""
    return [
        *(read_group(n, size.reads) for n in size.read),
        create_group(size.ops),
        destroy_group(size.ops),
        gc_group(*size.gc),
        gc_idle_group(size.idle),
        evict_group(*size.evict),
    ]


def request_groups(size: Sizes) -> list[Group]:
    """The request-path groups: ASGI, WSGI, Flask."""
    return [asgi_group(size.requests), wsgi_group(size.requests), flask_group(size.requests)]


@dataclass
class Bar:
    """A performance bar of DESIGN: ours against one peer, as a ratio."""

    group: str
    ours: str
    peer: str
    faster: bool  # True: peer_time / our_time >= limit; False: our_time / peer_time <= limit
    limit: float
    text: str
    value: Optional[float] = None

    @property
    def met(self) -> Optional[bool]:
        """Whether the bar holds; None when it was not measured."""
        if self.value is None:
            return None
        return self.value >= self.limit if self.faster else self.value <= self.limit


def read_bars(key: str, n: int, ours: str) -> list[Bar]:
    """The read bars at one store size: ours against the two floors and the peers."""
    at = f"read at {n:,}"
    return [
        Bar(key, ours, LOOKUP_FLOOR, False, 1.5, f"{at}: ours / dict.get time"),
        Bar(key, ours, DATA_FLOOR, False, 1.25, f"{at}: ours / dict-of-dicts get + key time"),
        Bar(key, ours, CACHEBOX_LRU, False, 1.0, f"{at}: ours / cachebox LRUCache.get time"),
        Bar(key, ours, LRU_DICT, True, 1.5, f"{at}: lru-dict get time / ours"),
        Bar(key, ours, TTL_GET_SET, True, 5.0, f"{at}: TTLCache get+set time / ours"),
    ]


def run(
    quick: bool = False, progress: Optional[Progress] = None, redis_url: Optional[str] = None
) -> dict[str, Any]:
    """Run every group and the memory count; return the results as plain data."""
    size = sizes(quick)
    ours = cores()[0][0]
    groups = store_groups(size) + request_groups(size) + [snapshot_group(sessions(quick))]
    if redis_url is not None:
        from .redisbench import redis_group

        groups.append(redis_group(redis_url, size.redis_sessions, size.requests))
        groups.append(latency_group(redis_url, quick))
        groups.append(workers_group(redis_url, quick))
    groups += e2e_groups(quick)
    _measure(groups, size.rounds, progress)
    memory = memory_table(size.memory, progress)
    if progress is not None:
        progress.done()
    by_key = {g.key: g for g in groups}
    idle = [c.name for c in by_key["gc-idle"].candidates]
    bars = [bar for n in size.read for bar in read_bars(read_key(n), n, ours)]
    bars += [
        Bar("gc", ours, "del d[key] (floor)", False, 2.0, "GC per removed: ours / del d[key]"),
        Bar("gc-idle", idle[-1], idle[0], False, 1.5, "GC, nothing expired: largest store / smallest"),
        Bar(
            "asgi", "memsession asgi", "starlette SessionMiddleware", True, 5.0, "ASGI: Starlette time / ours"
        ),
        Bar(
            "wsgi",
            "memsession wsgi",
            "beaker SessionMiddleware (memory)",
            True,
            5.0,
            "WSGI: Beaker time / ours",
        ),
    ]
    latency = by_key.get("asgi-latency")
    if latency is not None and len(latency.candidates) == 4:
        sync_slow, async_slow = (c.name for c in latency.candidates[2:])
        text = "event loop: async / sync requests/s, Redis +20 ms"
        bars.append(Bar("asgi-latency", async_slow, sync_slow, True, 5.0, text))
    if "redis" in by_key:
        from .redisbench import NEAR_MIX, NEAR_READ, REDIS_MIX

        text = "near cache read: cached / memory provider time"
        bars.append(Bar("redis", NEAR_READ, f"{ours} read", False, 5.0, text))
        bars.append(Bar("redis", NEAR_MIX, REDIS_MIX, False, 0.2, "10:1 mix: cached / RedisProvider time"))
    if "workers" in by_key:
        text = "gunicorn -w 4, 10:1: cached / Redis requests/s"
        bars.append(Bar("workers", KINDS["cached"], KINDS["redis"], True, 2.0, text))
    bars += e2e_bars(groups)
    _value(bars, by_key)
    for n in map(str, size.memory):
        mem_bar = Bar("memory", ours, "ttl", False, 0.65, f"memory at {int(n):,}: ours / TTLCache bytes")
        if n in memory.get("ttl", {}) and n in memory.get(ours, {}):
            mem_bar.value = memory[ours][n] / memory["ttl"][n]
        bars.append(mem_bar)
    return _results("quick" if quick else "full", ours, groups, memory, bars)


def run_e2e(quick: bool = False, progress: Optional[Progress] = None) -> dict[str, Any]:
    """Only the end-to-end groups (`python -m benchmarks --e2e`): their table and bars, no memory count."""
    groups = e2e_groups(quick)
    _measure(groups, sizes(quick).rounds, progress)
    if progress is not None:
        progress.done()
    bars = e2e_bars(groups)
    _value(bars, {g.key: g for g in groups})
    results = _results(f"{'quick' if quick else 'full'}, --e2e", cores()[0][0], groups, {}, bars)
    results["skipped"] = [g.title for g in groups if not g.candidates]  # and why, in the title
    return results


def e2e_bars(groups: Iterable[Group]) -> list[Bar]:
    """Per server of the end-to-end groups: memsession's requests/s within 5% of the plain-dict floor's."""
    return [
        Bar(g.key, g.ours, g.floor, False, FLOOR_RATIO, g.bar_text())
        for g in groups
        if isinstance(g, E2EGroup)
    ]


def _measure(groups: list[Group], rounds: int, progress: Optional[Progress]) -> None:
    """Time every group with candidates, then release what it opened."""
    for group in groups:
        try:
            if group.candidates:
                if isinstance(group, LatencyGroup):  # its candidates differ in size: it times itself
                    group.measure(progress)
                else:
                    run_group(group, rounds, progress)
        finally:
            if group.cleanup is not None:
                group.cleanup()


def _value(bars: list[Bar], by_key: dict[str, Group]) -> None:
    """Set each bar's value from its group's medians, when both candidates were timed."""
    for bar in bars:
        group = by_key[bar.group]
        if bar.ours in group.times and bar.peer in group.times:
            a, b = group.median(bar.ours), group.median(bar.peer)
            bar.value = b / a if bar.faster else a / b


def _results(
    mode: str, ours: str, groups: list[Group], memory: dict[str, Any], bars: list[Bar]
) -> dict[str, Any]:
    """The run's results as plain data."""
    return {
        "mode": mode,
        "python": platform.python_version(),
        "implementation": ours,
        "machine": f"{platform.machine()} {platform.system()}, {_cpu()}",
        "groups": [
            {
                "key": g.key,
                "title": g.title,
                "ops": g.ops,
                "median_seconds": {c.name: g.median(c.name) for c in g.candidates},
                "times": g.times,
                **(
                    {"range_seconds": {c.name: g.extremes(c.name) for c in g.candidates}}
                    if g.show_range
                    else {}
                ),
                **({"requests_per_second": g.rps()} if isinstance(g, LatencyGroup) else {}),
                **(
                    {"requests_per_second_range": g.spread()}
                    if isinstance(g, (WorkersGroup, E2EGroup))
                    else {}
                ),
                **({"notes": g.notes()} if isinstance(g, (WorkersGroup, E2EGroup, ReadGroup)) else {}),
            }
            for g in groups
            if g.candidates
        ],
        "memory_bytes_per_session": memory,
        "bars": [{"text": b.text, "value": b.value, "limit": b.limit, "met": b.met} for b in bars],
    }


def _cpu() -> str:
    """The CPU model, for the report's header."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def report(results: dict[str, Any]) -> str:
    """The results as a text table: medians, and ratios to memsession."""
    mode, python, machine = results["mode"], results["python"], results["machine"]
    lines = [f"python -m benchmarks ({mode}), Python {python}, {machine}", ""]
    for g in results["groups"]:
        medians = g["median_seconds"]
        base = next(iter(medians.values()))
        lines.append(g["title"])
        rps = g.get("requests_per_second", {})
        spread = g.get("requests_per_second_range", {})
        extremes = g.get("range_seconds", {})
        for name, seconds in medians.items():
            line = f"  {name:<44} {format_seconds(seconds):>10}/op  {seconds / base:6.2f}x"
            if name in extremes:
                low, high = (format_seconds(t) for t in extremes[name])
                line += f"  (rounds {low} - {high})"
            line += f"  {rps[name]:8,.0f} requests/s" if name in rps else ""
            lines.append(line + (" ({:,.0f}-{:,.0f})".format(*spread[name]) if name in spread else ""))
        for name, note in g.get("notes", {}).items():
            lines.append(f"    {name}: {note}")
        lines.append("")
    if results["memory_bytes_per_session"]:
        lines.append("memory, bytes per session holding {'user_id': 1} (id strings excluded)")
        for kind, per_size in results["memory_bytes_per_session"].items():
            cells = "  ".join(f"{int(n):>9,}: {b:6.0f} B" for n, b in per_size.items())
            lines.append(f"  {NAMES.get(kind, kind):<44} {cells}")
        lines.append("")
    lines += [f"skipped: {title}" for title in results.get("skipped", [])]
    lines += ["", "bars"] if results.get("skipped") else ["bars"]
    for bar in results["bars"]:
        value = "n/a" if bar["value"] is None else f"{bar['value']:.2f}"
        verdict = {True: "met", False: "MISSED", None: "not measured"}[bar["met"]]
        lines.append(f"  {bar['text']:<56} {value:>6} (bar {bar['limit']})  {verdict}")
    return "\n".join(lines)
