"""Copying a session's data for regenerate: all the way down, never running user code."""

from __future__ import annotations

from collections import Counter as _Counter
from collections import OrderedDict as _OrderedDict
from collections import defaultdict as _defaultdict
from collections import deque as _deque
from typing import Any

__all__ = ["copy_value", "refill", "snapshot"]


def snapshot(record: Any) -> dict[Any, Any]:
    """A plain dict of a record's data, consistent although other requests may write to it."""
    for _ in range(64):
        try:
            # One C-level copy: another thread can only interleave if the
            # copy itself runs Python code (a collector finalizer); then retry.
            return dict.copy(record) if isinstance(record, dict) else dict(record.items())
        except RuntimeError:
            continue
    raise RuntimeError("memsession: the session changed during every attempt to copy it")


def refill(record: Any, source: Any) -> Any:
    """Fill record with a copy of source's data and its permanent flag; return record."""
    record.update({key: copy_value(value) for key, value in snapshot(source).items()})
    if source.permanent is not None:
        record.permanent = source.permanent
    return record


def copy_value(value: Any) -> Any:
    """value with its containers copied all the way down, so nothing mutable is shared.

    Regenerate uses it: a request still holding the old id must not reach
    what the new session changes in place (a cart). dict, list, set,
    bytearray and the collections module's OrderedDict, defaultdict, deque
    and Counter are rebuilt without running user code; tuples and
    frozensets are rebuilt when they hold something copied; any other
    object is shared as it is. Each container is first copied in one C-level
    step, so a concurrent writer cannot break the walk; a structure nested
    too deeply to walk is shared rather than failing the login.
    """
    try:
        return _copy(value, {})
    except RecursionError:
        return value


def _copy(value: Any, memo: dict[int, Any]) -> Any:
    kind = type(value)
    if kind not in _CONTAINERS:
        return value
    found = memo.get(id(value))
    if found is not None:
        return found
    copied: Any
    if kind is list or kind is _deque:
        items = list(value)  # one C-level copy: consistent though others write
        copied = kind(maxlen=value.maxlen) if kind is _deque else []
        memo[id(value)] = copied
        copied.extend(_copy(item, memo) for item in items)
    elif kind in _MAPPINGS:
        snapshot = dict.copy(value)
        copied = kind(value.default_factory) if kind is _defaultdict else kind()
        memo[id(value)] = copied
        for key, item in snapshot.items():
            copied[key] = _copy(item, memo)
    elif kind is set or kind is bytearray:
        copied = kind(value)  # set members are hashable, nearly always immutable
        memo[id(value)] = copied
    else:  # tuple, frozenset: immutable themselves, rebuilt around copied members
        members = [_copy(item, memo) for item in value]
        same = all(a is b for a, b in zip(members, value))
        copied = value if same else kind(members)
        memo[id(value)] = copied
    return copied


_MAPPINGS = frozenset((dict, _OrderedDict, _defaultdict, _Counter))
_CONTAINERS = _MAPPINGS | frozenset((list, _deque, set, bytearray, tuple, frozenset))
