"""The benchmark chart: one panel per group, times relative to memsession, and the memory count."""

from __future__ import annotations

import textwrap
from typing import Any

from .memory import NAMES
from .runner import format_seconds

OURS = "#1f77b4"
PEER = "#999999"
# A panel whose slowest candidate is this many times its fastest gets a log axis,
# so the fast bars stay visible next to network round trips.
LOG_SPREAD = 30.0
TITLE_WIDTH = 90  # characters of a title line at the chart's width and font


def _color(name: str) -> str:
    """memsession's bars (its named providers' too) in blue, the peers' and floors' in grey."""
    ours = ("RedisProvider", "CachedRedisProvider", "MemoryProvider")
    return OURS if "memsession" in name or name.startswith(ours) else PEER


def _wrapped(title: str) -> str:
    """A group's title in lines that fit the chart's width."""
    return textwrap.fill(title, TITLE_WIDTH)


def _group_panel(ax: Any, group: dict[str, Any]) -> None:
    """One group: each candidate's time per operation relative to the first (memsession)."""
    medians: dict[str, float] = group["median_seconds"]
    names = list(medians)
    base = medians[names[0]]
    values = [medians[n] / base for n in names]
    labels = [f" {v:.2f}x ({format_seconds(medians[n])})" for n, v in zip(names, values)]
    colors = [_color(n) for n in names[::-1]]
    low, high = min(values), max(values)
    log = high / low > LOG_SPREAD
    if log:
        ax.set_xscale("log")
        start = low / 2  # bars on a log axis start from a positive base
        ax.barh(names[::-1], [v - start for v in values[::-1]], left=start, color=colors)
        ax.set_xlim(start, high * 40)  # room for the labels on a log axis
    else:
        ax.barh(names[::-1], values[::-1], color=colors)
        ax.set_xlim(0, high * 1.35)
    for i, (v, text) in enumerate(zip(values[::-1], labels[::-1])):
        ax.text(v, i, text, va="center", fontsize=7)
    scale = "log scale, " if log else ""
    note = f"time per operation relative to memsession ({scale}lower is faster)"
    ax.set_title(f"{_wrapped(group['title'])}\n{note}", fontsize=9)
    ax.tick_params(labelsize=8)


def _memory_panel(ax: Any, memory: dict[str, dict[str, float]]) -> None:
    """Bytes per session of every kind at the largest size measured."""
    kinds = list(memory)
    size = max(int(n) for k in kinds for n in memory[k])
    kinds = [k for k in kinds if str(size) in memory[k]]
    values = [memory[k][str(size)] for k in kinds]
    labels = [NAMES.get(k, k) for k in kinds]
    ax.barh(labels[::-1], values[::-1], color=[_color(k) for k in kinds[::-1]])
    for i, v in enumerate(values[::-1]):
        ax.text(v, i, f" {v:.0f} B", va="center", fontsize=7)
    ax.set_xlim(0, max(values) * 1.2)
    ax.set_title(f"bytes per session holding one key, {size:,} sessions (lower is smaller)", fontsize=9)
    ax.tick_params(labelsize=8)


def plot(results: dict[str, Any], path: str) -> None:
    """Draw the chart of a run's results into path (a PNG); needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = results["groups"]
    memory = results["memory_bytes_per_session"]
    panels = len(groups) + (1 if memory else 0)
    rows = [len(g["median_seconds"]) for g in groups] + ([len(memory)] if memory else [])
    titles = [_wrapped(g["title"]).count("\n") for g in groups] + ([0] if memory else [])
    # inches: a title (and each line it wraps to) plus a band per bar
    heights = [0.6 + 0.15 * t + 0.3 * n for n, t in zip(rows, titles)]
    fig, axes = plt.subplots(
        panels,
        1,
        figsize=(9, sum(heights) + 0.5 * panels),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    for ax, group in zip(axes[:, 0], groups):
        _group_panel(ax, group)
    if memory:
        _memory_panel(axes[-1, 0], memory)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
