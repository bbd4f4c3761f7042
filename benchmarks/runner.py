"""Round-robin timing of benchmark groups, so machine drift hits every candidate alike."""

from __future__ import annotations

import gc
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, TextIO


@dataclass
class Candidate:
    """One contender: prepare() builds its state (untimed) and returns what to time."""

    name: str
    prepare: Callable[[], Callable[[], object]]


@dataclass
class Group:
    """Candidates doing the same job; `ops` operations per timed run."""

    key: str
    title: str
    candidates: list[Candidate]
    ops: int
    times: dict[str, list[float]] = field(default_factory=dict)
    cleanup: Optional[Callable[[], None]] = None  # releases what the candidates opened
    show_range: bool = False  # the report gives each row's fastest and slowest round too

    def median(self, name: str) -> float:
        """Median seconds per operation of one candidate."""
        return statistics.median(self.times[name])

    def extremes(self, name: str) -> tuple[float, float]:
        """Seconds per operation of one candidate's fastest and slowest round."""
        return min(self.times[name]), max(self.times[name])


class Progress:
    """A single status line on a terminal (plain lines elsewhere)."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()

    def show(self, text: str) -> None:
        """Replace the status line with text."""
        if self.tty:
            self.stream.write("\r\x1b[2K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def done(self) -> None:
        """Clear the status line."""
        if self.tty:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()


def run_group(group: Group, rounds: int, progress: Optional[Progress] = None) -> Group:
    """Time every candidate `rounds` times, rotating the order each round."""
    group.times = {c.name: [] for c in group.candidates}
    n = len(group.candidates)
    for r in range(rounds):
        for i in range(n):
            cand = group.candidates[(i + r) % n]
            if progress is not None:
                progress.show(f"{group.key}: {cand.name} (round {r + 1}/{rounds})")
            run = cand.prepare()
            gc.collect()
            gc.disable()
            try:
                start = time.perf_counter()
                run()
                elapsed = time.perf_counter() - start
            finally:
                gc.enable()
            group.times[cand.name].append(elapsed / group.ops)
    return group


def format_seconds(seconds: float) -> str:
    """A per-operation time with a readable unit."""
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} µs"
    return f"{seconds * 1e3:.2f} ms"
