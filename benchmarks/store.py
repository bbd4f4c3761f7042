"""Store benchmarks: memsession's providers next to dict, lru-dict and cachetools."""

from __future__ import annotations

import base64
import random
from typing import Any, Callable, Optional

from .runner import Candidate, Group

LIFETIME = 1800.0
Run = Callable[[], object]


def make_ids(n: int, seed: int = 1) -> list[str]:
    """n session ids of the real shape (43 URL-safe characters)."""
    rng = random.Random(seed)
    return [base64.urlsafe_b64encode(rng.randbytes(32)).rstrip(b"=").decode() for _ in range(n)]


def cores() -> list[tuple[str, Any]]:
    """(label, MemoryProvider class) of each core available here."""
    from memsession import _core_py
    from memsession._impl import NO_EXTENSIONS

    found: list[tuple[str, Any]] = []
    if not NO_EXTENSIONS:
        try:
            from memsession import _core

            found.append(("memsession (compiled)", _core.MemoryProvider))
        except ImportError:
            pass
    found.append(("memsession (python twin)", _core_py.MemoryProvider))
    return found


def _peer(module: str) -> Optional[Any]:
    """The peer's module, or None when it is not installed."""
    try:
        return __import__(module)
    except ImportError:
        return None


def memory_store(cls: Any, ids: list[str], **kwargs: Any) -> Any:
    """A MemoryProvider of cls holding one-key sessions under ids."""
    p = cls(**kwargs)
    for sid in ids:
        p.session_init(sid)["user_id"] = 1
    return p


def read_group(size: int, ops: int) -> Group:
    """Read and mark used: random ids over `size` live sessions."""
    ids = make_ids(size)
    order = [ids[i] for i in random.Random(2).choices(range(size), k=ops)]
    cands = []
    for label, cls in cores():

        def prep(cls: Any = cls) -> Run:
            read = memory_store(cls, ids).session_read

            def run() -> None:
                for sid in order:
                    read(sid, LIFETIME)

            return run

        cands.append(Candidate(label, _once(prep)))

    def prep_dict() -> Run:
        get = {sid: {"user_id": 1} for sid in ids}.get

        def run() -> None:
            for sid in order:
                get(sid)

        return run

    cands.append(Candidate("dict.get (floor)", _once(prep_dict)))
    lru = _peer("lru")
    if lru is not None:

        def prep_lru() -> Run:
            cache = lru.LRU(size)
            for sid in ids:
                cache[sid] = {"user_id": 1}
            get = cache.get

            def run() -> None:
                for sid in order:
                    get(sid)

            return run

        cands.append(Candidate("lru-dict get", _once(prep_lru)))
    cachetools = _peer("cachetools")
    if cachetools is not None:

        def prep_ttl() -> Run:
            cache = cachetools.TTLCache(maxsize=size * 2, ttl=LIFETIME)
            for sid in ids:
                cache[sid] = {"user_id": 1}

            def run() -> None:
                for sid in order:
                    value = cache.get(sid)
                    cache[sid] = value  # re-set: the only way to slide a TTLCache entry

            return run

        cands.append(Candidate("cachetools.TTLCache get+set", _once(prep_ttl)))
    return Group("read", f"read + mark used, {size:,} live sessions, random ids", cands, ops)


def _once(prep: Callable[[], Run]) -> Callable[[], Run]:
    """Build the (read-only) state on first use, then hand out the same run."""
    cache: list[Run] = []

    def get() -> Run:
        if not cache:
            cache.append(prep())
        return cache[0]

    return get


def create_group(ops: int) -> Group:
    """Create sessions with one key, from empty."""
    ids = make_ids(ops, seed=3)
    cands = []
    for label, cls in cores():

        def prep(cls: Any = cls) -> Run:
            init = cls().session_init

            def run() -> None:
                for sid in ids:
                    init(sid)["user_id"] = 1

            return run

        cands.append(Candidate(label, prep))

    def prep_dict() -> Run:
        d: dict[str, Any] = {}

        def run() -> None:
            for sid in ids:
                d[sid] = {"user_id": 1}

        return run

    cands.append(Candidate("dict set", prep_dict))
    return Group("create", f"create {ops:,} sessions holding one key", cands, ops)


def destroy_group(ops: int) -> Group:
    """Destroy every one of `ops` sessions."""
    ids = make_ids(ops, seed=4)
    cands = []
    for label, cls in cores():

        def prep(cls: Any = cls) -> Run:
            destroy = memory_store(cls, ids).session_destroy

            def run() -> None:
                for sid in ids:
                    destroy(sid)

            return run

        cands.append(Candidate(label, prep))

    def prep_dict() -> Run:
        d = {sid: {"user_id": 1} for sid in ids}

        def run() -> None:
            for sid in ids:
                del d[sid]

        return run

    cands.append(Candidate("del d[key] (floor)", prep_dict))
    return Group("destroy", f"destroy {ops:,} sessions", cands, ops)


def gc_group(size: int, expired: int) -> Group:
    """Collect `expired` idle sessions out of `size`."""
    ids = make_ids(size, seed=5)
    old, young = ids[:expired], ids[expired:]
    cands = []
    for label, cls in cores():

        def prep(cls: Any = cls) -> Run:
            now = [0.0]
            p = cls(clock=lambda: now[0])
            for sid in old:
                p.session_init(sid)["user_id"] = 1
            now[0] = 50.0
            for sid in young:
                p.session_init(sid)["user_id"] = 1
            now[0] = 100.0

            def run() -> None:
                assert p.session_gc(60.0) == expired

            return run

        cands.append(Candidate(label, prep))

    def prep_dict() -> Run:
        d = {sid: {"user_id": 1} for sid in ids}

        def run() -> None:
            for sid in old:
                del d[sid]

        return run

    cands.append(Candidate("del d[key] (floor)", prep_dict))
    cachetools = _peer("cachetools")
    if cachetools is not None:

        def prep_ttl() -> Run:
            now = [0.0]
            cache = cachetools.TTLCache(maxsize=size * 2, ttl=60.0, timer=lambda: now[0])
            for sid in old:
                cache[sid] = {"user_id": 1}
            now[0] = 50.0  # TTLCache expires on every insert: keep the old ones live until now
            for sid in young:
                cache[sid] = {"user_id": 1}
            now[0] = 100.0

            def run() -> None:
                assert len(cache.expire()) == expired

            return run

        cands.append(Candidate("cachetools.TTLCache.expire", prep_ttl))
    return Group("gc", f"GC of {expired:,} expired among {size:,} sessions", cands, expired)


def gc_idle_group(sizes: list[int]) -> Group:
    """GC with nothing expired, at several store sizes: must not grow."""
    cands = []
    label, cls = cores()[0]
    for size in sizes:

        def prep(size: int = size) -> Run:
            p = memory_store(cls, make_ids(size, seed=6))
            gc = p.session_gc

            def run() -> None:
                for _ in range(1000):
                    gc(LIFETIME)

            return run

        cands.append(Candidate(f"{label} at {size:,} sessions", _once(prep)))
    return Group("gc-idle", "GC with nothing expired (per call)", cands, 1000)


def evict_group(capacity: int, ops: int) -> Group:
    """Insert into a full store: each insert evicts the least recently used."""
    ids = make_ids(capacity + ops, seed=7)
    first, extra = ids[:capacity], ids[capacity:]
    cands = []
    for label, cls in cores():

        def prep(cls: Any = cls) -> Run:
            init = memory_store(cls, first, max_sessions=capacity).session_init

            def run() -> None:
                for sid in extra:
                    init(sid)["user_id"] = 1

            return run

        cands.append(Candidate(label, prep))
    lru = _peer("lru")
    if lru is not None:

        def prep_lru() -> Run:
            cache = lru.LRU(capacity)
            for sid in first:
                cache[sid] = {"user_id": 1}

            def run() -> None:
                for sid in extra:
                    cache[sid] = {"user_id": 1}

            return run

        cands.append(Candidate("lru-dict set at capacity", prep_lru))
    return Group("evict", f"insert at capacity {capacity:,} with LRU eviction", cands, ops)
