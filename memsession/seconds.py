"""The one validator for durations given to memsession: seconds or a timedelta."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Optional, Union

__all__ = ["Seconds", "seconds"]

Seconds = Union[float, int, timedelta]


def seconds(value: object, name: str, *, optional: bool = False, zero: bool = False) -> Optional[float]:
    """value as float seconds; TypeError/ValueError naming the argument otherwise.

    Accepts an int, a float or a ``datetime.timedelta``; refuses bool, NaN and
    infinity. None is returned for None when optional; zero only when zero.
    """
    if value is None and optional:
        return None
    if isinstance(value, timedelta):
        result = value.total_seconds()
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = (
            "a number of seconds, a timedelta or None" if optional else "a number of seconds or a timedelta"
        )
        raise TypeError(f"{name} must be {kind}, not {type(value).__name__}")
    else:
        result = float(value)
    if not math.isfinite(result) or result < 0 or (result == 0 and not zero):
        kind = "a non-negative" if zero else "a positive"
        raise ValueError(f"{name} must be {kind}, finite number of seconds, got {value!r}")
    return result
