"""Store benchmarks: memsession's providers next to dict, lru-dict, cachebox, moka-py and cachetools."""

from __future__ import annotations

import base64
import random
import statistics
from dataclasses import dataclass
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


LOOKUP_FLOOR = "dict.get (lookup floor)"
OBJECT_FLOOR = "dict.get, own dict per id (object floor)"
DATA_FLOOR = "dict-of-dicts get + one key (data floor)"
CACHEBOX_LRU = "cachebox LRUCache.get"
LRU_DICT = "lru-dict get"
TTL_GET_SET = "cachetools.TTLCache get+set"


def read_key(size: int) -> str:
    """The key of the read group over `size` live sessions."""
    return f"read-{size}"


@dataclass
class ReadGroup(Group):
    """The read group, whose notes set memsession and the object floor against the lookup floor."""

    ours: str = ""

    def notes(self) -> dict[str, str]:
        """memsession against the lookup and object floors, the object floor against the lookup floor."""
        timed = {name for name, times in self.times.items() if times}
        notes = {}
        if {self.ours, LOOKUP_FLOOR} <= timed:
            # Each round's own ratio: drift of the machine from round to round cancels out.
            rounds = sorted(o / f for o, f in zip(self.times[self.ours], self.times[LOOKUP_FLOOR]))
            notes[self.ours] = (
                f"{self._ratio(self.ours, LOOKUP_FLOOR)}x the lookup floor's median"
                f" (round by round: median {statistics.median(rounds):.2f}, {rounds[0]:.2f}-{rounds[-1]:.2f})"
            )
        if {self.ours, OBJECT_FLOOR} <= timed:
            text = f"{self._ratio(self.ours, OBJECT_FLOOR)}x the object floor's"
            notes[self.ours] = f"{notes[self.ours]}, {text}" if self.ours in notes else f"{text} median"
        if {OBJECT_FLOOR, LOOKUP_FLOOR} <= timed:
            notes[OBJECT_FLOOR] = f"{self._ratio(OBJECT_FLOOR, LOOKUP_FLOOR)}x the lookup floor's median"
        return notes

    def _ratio(self, name: str, floor: str) -> str:
        """The ratio of two rows' medians, as the notes print it."""
        return f"{self.median(name) / self.median(floor):.2f}"


def read_group(size: int, ops: int) -> ReadGroup:
    """Read and mark used, random ids over `size` live sessions, next to three floors and the peers.

    Every row is the same loop over the same random ids, one call per id, so the
    loop's overhead is in each of them. The floors: dict.get on a dict mapping
    every id to one shared value (the hash lookup alone); dict.get on a dict
    mapping every id to its own one-key dict (the lookup plus handing back each
    id's own object, as any store of session objects must); and that dict read
    down to one key (the lookup plus reaching each session's own data).
    """
    ids = make_ids(size)
    order = [ids[i] for i in random.Random(2).choices(range(size), k=ops)]
    preps: list[tuple[str, Callable[[], Run]]] = []
    for label, cls in cores():

        def prep(cls: Any = cls) -> Run:
            read = memory_store(cls, ids).session_read

            def run() -> None:
                for sid in order:
                    read(sid, LIFETIME)

            return run

        preps.append((label, prep))

    def prep_lookup() -> Run:
        get = dict.fromkeys(ids, {"user_id": 1}).get  # one value shared by every id

        def run() -> None:
            for sid in order:
                get(sid)

        return run

    def prep_object() -> Run:
        get = {sid: {"user_id": 1} for sid in ids}.get

        def run() -> None:
            for sid in order:
                get(sid)

        return run

    def prep_data() -> Run:
        data: Any = {sid: {"user_id": 1} for sid in ids}
        get = data.get

        def run() -> None:
            for sid in order:
                get(sid)["user_id"]

        return run

    preps += [(LOOKUP_FLOOR, prep_lookup), (OBJECT_FLOOR, prep_object), (DATA_FLOOR, prep_data)]

    def getter(cache: Any) -> Run:
        """A run of cache.get over the ids, cache filled with one-key sessions first."""
        for sid in ids:
            cache[sid] = {"user_id": 1}
        get = cache.get

        def run() -> None:
            for sid in order:
                get(sid)

        return run

    lru = _peer("lru")
    if lru is not None:
        preps.append((LRU_DICT, lambda: getter(lru.LRU(size))))
    cachebox = _peer("cachebox")
    if cachebox is not None:
        preps.append((CACHEBOX_LRU, lambda: getter(cachebox.LRUCache(size))))
        # expiry fixed at insert: a get does not slide it
        preps.append(("cachebox TTLCache.get", lambda: getter(cachebox.TTLCache(size, LIFETIME))))
    moka_py = _peer("moka_py")
    if moka_py is not None:

        def prep_moka() -> Run:
            cache = moka_py.Moka(size, tti=LIFETIME)  # time-to-idle: every get slides the expiry
            for sid in ids:
                cache.set(sid, {"user_id": 1})
            cache.run_pending_tasks()
            assert cache.count() == size, "moka-py turned sessions away"
            get = cache.get

            def run() -> None:
                for sid in order:
                    get(sid)

            return run

        preps.append(("moka-py Moka(tti=...).get", prep_moka))
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

        preps.append((TTL_GET_SET, prep_ttl))
    states = [_Once(prep) for _, prep in preps]

    def cleanup() -> None:
        for state in states:
            state.clear()

    title = f"read + mark used, {size:,} live sessions, random ids"
    return ReadGroup(
        read_key(size),
        title,
        [Candidate(name, state) for (name, _), state in zip(preps, states)],
        ops,
        cleanup=cleanup,
        show_range=True,
        ours=preps[0][0],
    )


class _Once:
    """Builds the (read-only) state on first use, then hands out the same run; clear() drops it."""

    def __init__(self, prep: Callable[[], Run]) -> None:
        self.prep = prep
        self.run: Optional[Run] = None

    def __call__(self) -> Run:
        if self.run is None:
            self.run = self.prep()
        return self.run

    def clear(self) -> None:
        self.run = None


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

        cands.append(Candidate(f"{label} at {size:,} sessions", _Once(prep)))
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
