"""Helpers for test harnesses: a clock you move by hand."""

from __future__ import annotations

import math
import threading

__all__ = ["FakeClock"]


class FakeClock:
    """A clock callable for clock=; time moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = self._check(start, "start")
        self._lock = threading.Lock()

    @staticmethod
    def _check(value: object, name: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
        return float(value)

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward by seconds (never back); return the new time."""
        seconds = self._check(seconds, "seconds")
        if seconds < 0:
            raise ValueError(f"seconds must not be negative, got {seconds!r}")
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, t: float) -> None:
        """Jump to time t, which must not be earlier than now."""
        t = self._check(t, "t")
        with self._lock:
            if t < self._now:
                raise ValueError(f"t must not be earlier than now ({self._now}), got {t!r}")
            self._now = t

    def __repr__(self) -> str:
        return f"FakeClock({self._now!r})"
