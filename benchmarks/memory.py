"""Memory per session: memsession's cores next to cachetools.TTLCache and a dict of dicts."""

from __future__ import annotations

import tracemalloc
from typing import Any, Optional

from .runner import Progress
from .store import LIFETIME, cores, make_ids, memory_store

# Display names of the peers measured next to the cores (which carry their own labels).
NAMES = {"ttl": "cachetools.TTLCache", "dict": "dict of dicts"}


def kinds() -> list[str]:
    """What the memory count measures: each core here, then the peers."""
    return [label for label, _ in cores()] + list(NAMES)


def bytes_per_session(kind: str, n: int) -> float:
    """Traced bytes per session holding {"user_id": 1}, id strings excluded."""
    ids = make_ids(n, seed=8)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        if kind == "dict":
            store: Any = {sid: {"user_id": 1} for sid in ids}
        elif kind == "ttl":
            import cachetools

            store = cachetools.TTLCache(maxsize=n * 2, ttl=LIFETIME)
            for sid in ids:
                store[sid] = {"user_id": 1}
        else:
            store = memory_store(dict(cores())[kind], ids)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del store
    return (after - before) / n


def memory_table(sizes: list[int], progress: Optional[Progress] = None) -> dict[str, dict[str, float]]:
    """Bytes per session of every kind at every size: {kind: {str(size): bytes}}."""
    table: dict[str, dict[str, float]] = {}
    # One small count of each kind first: what a process allocates once (caches,
    # code paths run for the first time) is no session's bytes.
    for kind in kinds():
        try:
            bytes_per_session(kind, 1000)
        except ImportError:
            pass
    for n in sizes:
        for kind in kinds():
            if progress is not None:
                progress.show(f"memory: {kind} at {n:,} sessions")
            try:
                table.setdefault(kind, {})[str(n)] = bytes_per_session(kind, n)
            except ImportError:
                pass  # a peer that is not installed
    return table
