"""`python -m memsession bench`: memsession next to its peers, in one process."""

from __future__ import annotations

import json
import platform
import sys
from dataclasses import dataclass
from typing import Any, Optional

from .runner import Progress, format_seconds, run_group
from .store import (
    bytes_per_session,
    cores,
    create_group,
    destroy_group,
    evict_group,
    gc_group,
    gc_idle_group,
    read_group,
)
from .web import asgi_group, flask_group, wsgi_group

__all__ = ["Bar", "main", "run"]

_MEMORY_NAMES = {"ttl": "cachetools.TTLCache", "dict": "dict of dicts"}


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
        if self.value is None:
            return None
        return self.value >= self.limit if self.faster else self.value <= self.limit


def _sizes(quick: bool) -> dict[str, Any]:
    if quick:
        return {
            "rounds": 3,
            "read": (20_000, 20_000),
            "ops": 10_000,
            "gc": (20_000, 10_000),
            "idle": [10_000, 100_000],
            "evict": (10_000, 5_000),
            "memory": [100_000],
            "requests": 500,
        }
    return {
        "rounds": 9,
        "read": (100_000, 200_000),
        "ops": 100_000,
        "gc": (100_000, 50_000),
        "idle": [100_000, 1_000_000],
        "evict": (100_000, 50_000),
        "memory": [100_000, 1_000_000],
        "requests": 5_000,
    }


def run(
    quick: bool = False, progress: Optional[Progress] = None, redis_url: Optional[str] = None
) -> dict[str, Any]:
    """Run every group and the memory count; return the results as plain data."""
    size = _sizes(quick)
    ours = cores()[0][0]
    groups = [
        read_group(*size["read"]),
        create_group(size["ops"]),
        destroy_group(size["ops"]),
        gc_group(*size["gc"]),
        gc_idle_group(size["idle"]),
        evict_group(*size["evict"]),
        asgi_group(size["requests"]),
        wsgi_group(size["requests"]),
        flask_group(size["requests"]),
    ]
    if redis_url is not None:
        from .redisbench import redis_group

        groups.append(redis_group(redis_url, 1_000, size["requests"]))
    for group in groups:
        try:
            if group.candidates:
                run_group(group, size["rounds"], progress)
        finally:
            if group.cleanup is not None:
                group.cleanup()
    memory: dict[str, dict[str, float]] = {}
    for n in size["memory"]:
        for kind in [label for label, _ in cores()] + ["ttl", "dict"]:
            if progress is not None:
                progress.show(f"memory: {kind} at {n:,} sessions")
            try:
                memory.setdefault(kind, {})[str(n)] = bytes_per_session(kind, n)
            except ImportError:
                pass
    if progress is not None:
        progress.done()
    by_key = {g.key: g for g in groups}
    idle = [c.name for c in by_key["gc-idle"].candidates]
    bars = [
        Bar("read", ours, "cachetools.TTLCache get+set", True, 5.0, "read: TTLCache get+set time / ours"),
        Bar("read", ours, "lru-dict get", True, 1.0, "read: lru-dict get time / ours"),
        Bar("read", ours, "dict.get (floor)", False, 2.5, "read: ours / dict.get time"),
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
    for bar in bars:
        group = by_key[bar.group]
        if bar.ours in group.times and bar.peer in group.times:
            a, b = group.median(bar.ours), group.median(bar.peer)
            bar.value = b / a if bar.faster else a / b
    n = str(size["memory"][-1])
    mem_bar = Bar("memory", ours, "ttl", False, 0.7, f"memory at {int(n):,}: ours / TTLCache bytes")
    if "ttl" in memory and ours in memory:
        mem_bar.value = memory[ours][n] / memory["ttl"][n]
    bars.append(mem_bar)
    return {
        "mode": "quick" if quick else "full",
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
            }
            for g in groups
            if g.candidates
        ],
        "memory_bytes_per_session": memory,
        "bars": [{"text": b.text, "value": b.value, "limit": b.limit, "met": b.met} for b in bars],
    }


def _cpu() -> str:
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
    lines = [f"memsession bench ({results['mode']}), Python {results['python']}, {results['machine']}", ""]
    for g in results["groups"]:
        medians = g["median_seconds"]
        base = next(iter(medians.values()))
        lines.append(g["title"])
        for name, seconds in medians.items():
            lines.append(f"  {name:<44} {format_seconds(seconds):>10}/op  {seconds / base:6.2f}x")
        lines.append("")
    lines.append("memory, bytes per session holding {'user_id': 1} (id strings excluded)")
    for kind, per_size in results["memory_bytes_per_session"].items():
        cells = "  ".join(f"{int(n):>9,}: {b:6.0f} B" for n, b in per_size.items())
        lines.append(f"  {_MEMORY_NAMES.get(kind, kind):<44} {cells}")
    lines += ["", "bars"]
    for bar in results["bars"]:
        value = "n/a" if bar["value"] is None else f"{bar['value']:.2f}"
        verdict = {True: "met", False: "MISSED", None: "not measured"}[bar["met"]]
        lines.append(f"  {bar['text']:<52} {value:>6} (bar {bar['limit']})  {verdict}")
    return "\n".join(lines)


def plot(results: dict[str, Any], path: str) -> None:
    """A bar chart: per group, each candidate's time relative to memsession."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = results["groups"]
    fig, axes = plt.subplots(len(groups) + 1, 1, figsize=(9, 2.2 * (len(groups) + 1)))
    for ax, g in zip(axes, groups):
        names = list(g["median_seconds"])
        base = g["median_seconds"][names[0]]
        values = [g["median_seconds"][n] / base for n in names]
        colors = ["#1f77b4" if n.startswith("memsession") or "memsession" in n else "#999999" for n in names]
        ax.barh(names[::-1], values[::-1], color=colors[::-1])
        ax.set_title(g["title"] + "\ntime per operation relative to memsession (lower is faster)", fontsize=9)
        ax.tick_params(labelsize=8)
        for i, v in enumerate(values[::-1]):
            ax.text(v, i, f" {v:.2f}x", va="center", fontsize=7)
    mem = results["memory_bytes_per_session"]
    ax = axes[-1]
    kinds = list(mem)
    size = max(int(n) for k in kinds for n in mem[k])
    last = [mem[k][str(size)] for k in kinds]
    labels = [_MEMORY_NAMES.get(k, k) for k in kinds]
    colors = ["#1f77b4" if "memsession" in k else "#999999" for k in kinds]
    ax.barh(labels[::-1], last[::-1], color=colors[::-1])
    for i, v in enumerate(last[::-1]):
        ax.text(v, i, f" {v:.0f} B", va="center", fontsize=7)
    ax.set_title(f"bytes per session holding one key, {size:,} sessions (lower is smaller)", fontsize=9)
    ax.tick_params(labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(
    quick: bool, json_path: Optional[str], plot_path: Optional[str], check: bool, redis: Optional[str] = None
) -> int:
    """Run, print the table, write the optional files; 1 if check and a bar is missed."""
    from .redisbench import start_redis

    url, server = start_redis(redis)
    try:
        results = run(quick, Progress(), url)
    finally:
        if server is not None:
            server.stop()
    print(report(results))
    if json_path:
        with open(json_path, "w") as f:
            json.dump(results, f, indent=2)
    if plot_path:
        plot(results, plot_path)
    sys.stdout.flush()
    missed = [b for b in results["bars"] if b["met"] is False]
    return 1 if check and missed else 0
