"""Snapshots of the memory store: every live session to a file, and back after a restart.

The file: a line ``MEMSESSION-SNAPSHOT 1``, a JSON line of metadata, chunks
of up to 10,000 sessions (their ids as a JSON array, created / last used /
cookie times as little-endian doubles on the wall clock, so idle time keeps
running while the process is down, a permanent byte each, and their data as
a JSON array), and a trailer with the count and a CRC-32 of everything
before it. It holds live session ids
(credentials): it is written with mode 0600, to a temporary file in the
same directory that is flushed, fsynced and renamed over the old one.
"""

from __future__ import annotations

import atexit
import bisect
import gc
import itertools
import json
import logging
import math
import operator
import os
import pickle as _pickle
import signal
import struct
import tempfile
import threading
import time
import weakref
import zlib
from array import array
from typing import Any, Optional

from .background import Periodic
from .errors import SnapshotError
from .ids import short_id

__all__ = ["Snapshots", "load", "save"]

MAGIC = b"MEMSESSION-SNAPSHOT"
VERSION = 1
CHUNK = 10_000  # sessions per line: one line's work holds the GIL for a few ms at most
_log = logging.getLogger("memsession")


def _path(path: Any) -> str:
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be str or os.PathLike, not {type(path).__name__}")
    return os.fspath(path)


def save(store: Any, path: Any, *, pickle: bool = False) -> int:
    """Write store's live sessions to path atomically; return how many.

    Values must be JSON's types (str keys; tuples come back as lists): a
    session holding anything else makes save raise TypeError naming the
    session and key, and the old file stays as it was. pickle=True writes any
    picklable value instead; loading that file then needs pickle=True too,
    since unpickling runs code chosen by whoever can write the file.
    """
    path = _path(path)
    if not isinstance(pickle, bool):
        raise TypeError(f"pickle must be a bool, not {type(pickle).__name__}")
    order = store._order()
    to_wall = time.time() - float(store.now())
    folder = os.path.dirname(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=folder)  # mode 0600
    count = 0
    try:
        with os.fdopen(fd, "wb") as out, _no_collection():
            meta = {"format": "pickle" if pickle else "json", "saved_at": time.time()}
            head = MAGIC + b" %d\n" % VERSION + json.dumps(meta).encode() + b"\n"
            out.write(head)
            crc = zlib.crc32(head)
            for start in range(0, len(order), CHUNK):
                sids, created, used, flags, cookies, datas = store._export(
                    order, start, start + CHUNK, to_wall
                )
                ids = json.dumps(sids).encode()
                values = _encode(sids, datas, pickle)
                numbers = array("d", created + used + cookies).tobytes()
                chunk = b"".join(
                    (b"C", _CHUNK.pack(len(sids), len(ids), len(values)), ids, numbers, flags, values)
                )
                out.write(chunk)
                crc = zlib.crc32(chunk, crc)
                count += len(sids)
            out.write(b"E" + _END.pack(count, crc))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with _quiet():
            os.unlink(temp)
        raise
    _sync_folder(folder)
    return count


def _temp_prefix(path: str) -> str:
    return "." + os.path.basename(path) + ".saving-"


_CHUNK = struct.Struct("<III")  # sessions, bytes of ids, bytes of values
_END = struct.Struct("<QI")  # sessions, CRC-32 of everything before the trailer


def _encode(sids: list[str], datas: list[dict[Any, Any]], pickle: bool) -> bytes:
    if pickle:
        return _pickle.dumps(datas, protocol=_pickle.HIGHEST_PROTOCOL)
    # JSON would turn an int key into a str one without a word.
    if set(map(type, itertools.chain.from_iterable(datas))) - {str}:
        for sid, data in zip(sids, datas):
            for key in data:
                if type(key) is not str:
                    raise TypeError(
                        f"session {short_id(sid)!r}: the key {key!r} is not a str, so JSON cannot keep "
                        "it; use str keys, or save with pickle=True"
                    )
    try:
        return json.dumps(datas, separators=(",", ":")).encode()
    except (TypeError, ValueError):
        for sid, data in zip(sids, datas):
            for key, value in data.items():
                try:
                    json.dumps({key: value})
                except (TypeError, ValueError) as exc:
                    raise TypeError(
                        f"session {short_id(sid)!r}: the value for {key!r} cannot be saved as JSON "
                        f"({exc}); store JSON values, or save with pickle=True"
                    ) from None
        raise


def load(
    store: Any,
    path: Any,
    *,
    max_lifetime: Optional[float] = None,
    absolute_lifetime: Optional[float] = None,
    pickle: bool = False,
) -> int:
    """Store the sessions the snapshot at path holds; return how many.

    The store must be empty. Sessions idle longer than max_lifetime, or older
    than absolute_lifetime, by the wall clock now (the downtime counts) are
    left out. A truncated, corrupted, foreign or unknown-version file raises
    SnapshotError before anything is stored.
    """
    path = _path(path)
    if not isinstance(pickle, bool):
        raise TypeError(f"pickle must be a bool, not {type(pickle).__name__}")
    idle = _limit(max_lifetime, "max_lifetime")
    age = _limit(absolute_lifetime, "absolute_lifetime")
    if len(store):
        raise ValueError(f"the store must be empty to load a snapshot (it holds {len(store)} sessions)")
    with open(path, "rb") as source:
        data = source.read()
    with _no_collection():
        sids, created, used, flags, cookies, datas = _parse(data, path, pickle)
        now = time.time()
        to_store = float(store.now()) - now
        # The store keeps uses in order to the second, and uses during the
        # save may land anywhere: put them in order.
        if not all(map(operator.le, used, used[1:])):
            keep = sorted(range(len(sids)), key=used.__getitem__)
            sids, created, used, cookies, datas = (
                [column[i] for i in keep] for column in (sids, created, used, cookies, datas)
            )
            flags = bytes(map(flags.__getitem__, keep))
        # The oldest first: drop those idle or old past their lifetimes by now.
        first = 0
        if idle is not None:
            first = bisect.bisect_left(used, now - idle)
        capacity = getattr(store, "max_sessions", None)
        if capacity is not None:
            first = max(first, len(sids) - capacity)  # the most recently used fit
        if first or age is not None:
            keep = [i for i in range(first, len(sids)) if age is None or now - created[i] <= age]
            sids, created, used, cookies, datas = (
                [column[i] for i in keep] for column in (sids, created, used, cookies, datas)
            )
            flags = bytes(map(flags.__getitem__, keep))
        # A clock set back meanwhile must not put a use in the future.
        used = [min(u, now) + to_store for u in used]
        created = [min(c + to_store, u) for c, u in zip(created, used)]
        return int(store._import(sids, created, used, flags, cookies, datas))


def _limit(value: Optional[float], name: str) -> Optional[float]:
    from .seconds import seconds

    return seconds(value, name, optional=True)


def _parse(data: bytes, path: str, pickle: bool) -> tuple[Any, ...]:
    """The columns of a snapshot, checked; SnapshotError naming what is wrong."""

    def damaged(why: str) -> SnapshotError:
        return SnapshotError(f"snapshot {path!r} {why}; nothing was loaded")

    first = data[: max(data.find(b"\n"), 0)]
    parts = first.split(b" ")
    if len(parts) != 2 or parts[0] != MAGIC:
        raise damaged("is not a memsession snapshot")
    if parts[1] != b"%d" % VERSION:
        raise damaged(f"has version {parts[1][:20].decode(errors='replace')!r}, not {VERSION}")
    end = len(data) - 1 - _END.size
    if end < 0 or data[end : end + 1] != b"E":
        raise damaged("is truncated")
    expected, crc = _END.unpack_from(data, end + 1)
    if zlib.crc32(data[:end]) != crc:
        raise damaged("is corrupted (checksum mismatch)")
    pos = len(first) + 1
    meta_end = data.find(b"\n", pos)
    try:
        kind = json.loads(data[pos:meta_end])["format"]
    except (ValueError, KeyError, TypeError):
        raise damaged("has no readable header") from None
    if kind == "pickle" and not pickle:
        raise damaged("holds pickled values: load it with pickle=True, and only if you trust the file")
    if kind not in ("json", "pickle"):
        raise damaged(f"has an unknown value format {str(kind)[:20]!r}")
    columns: tuple[list[Any], ...] = ([], [], [], [], [], [])
    flags = bytearray()
    pos = meta_end + 1
    try:
        while pos < end:
            if data[pos : pos + 1] != b"C":
                raise ValueError("no chunk mark")
            n, ids_size, values_size = _CHUNK.unpack_from(data, pos + 1)
            pos += 1 + _CHUNK.size
            ids = json.loads(data[pos : pos + ids_size])
            pos += ids_size
            numbers = array("d")
            numbers.frombytes(data[pos : pos + 24 * n])
            pos += 24 * n
            chunk_flags = data[pos : pos + n]
            pos += n
            blob = data[pos : pos + values_size]
            pos += values_size
            values = _pickle.loads(blob) if kind == "pickle" else json.loads(blob)
            if pos > end or not (len(ids) == len(values) == len(chunk_flags) == n):
                raise ValueError("a chunk is cut short")
            columns[0].extend(ids)
            as_list = numbers.tolist()
            columns[1].extend(as_list[:n])
            columns[2].extend(as_list[n : 2 * n])
            columns[4].extend(as_list[2 * n :])
            flags += chunk_flags
            columns[5].extend(values)
    except Exception as exc:
        raise damaged(f"is corrupted ({type(exc).__name__})") from None
    sids, created, used, _, cookies, datas = columns
    if len(sids) != expected:
        raise damaged(f"holds {len(sids)} sessions, its trailer says {expected}")
    if sids and not (
        set(map(type, sids)) == {str}
        and 0 < min(map(len, sids))
        and max(map(len, sids)) <= 256
        and len(set(sids)) == len(sids)
        and all(map(math.isfinite, created))
        and all(map(math.isfinite, used))
        and not any(map(math.isnan, cookies))
        and not bytes(flags).translate(None, b"\x00\x01\x02")
        and set(map(type, datas)) == {dict}
    ):
        raise damaged("holds a malformed session record")
    return sids, created, used, bytes(flags), cookies, datas


class _no_collection:
    """The cyclic collector paused: a million new containers would trigger it over and over."""

    def __enter__(self) -> None:
        self._was = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc: Any) -> None:
        if self._was:
            gc.enable()


def _sync_folder(folder: str) -> None:
    # The rename is durable only once the directory entry is on disk too.
    if hasattr(os, "O_DIRECTORY"):
        with _quiet():
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


class _quiet:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        return kind is not None and issubclass(kind, OSError)


class Snapshots:
    """A store's snapshot file: loaded now, saved every interval, on close(), at exit and on SIGTERM.

    A damaged file on start is moved aside (path + ".damaged-<time>"), the
    reason logged on the "memsession" logger, and the store starts empty.
    """

    def __init__(
        self,
        store: Any,
        path: Any,
        interval: Optional[float],
        *,
        max_lifetime: Optional[float] = None,
        absolute_lifetime: Optional[float] = None,
    ) -> None:
        if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"snapshot must be a str or os.PathLike file path, not {type(path).__name__}")
        if not os.fspath(path):
            raise ValueError("snapshot must name a file, not be empty")
        if not (callable(getattr(store, "save", None)) and callable(getattr(store, "_import", None))):
            raise ValueError(f"snapshot needs a MemoryProvider, not {type(store).__name__}")
        folder = os.path.dirname(os.path.abspath(os.fspath(path)))
        if not os.path.isdir(folder):
            raise ValueError(f"snapshot: the folder {folder!r} does not exist")
        self._store = store
        self._path = _path(path)
        self._remove_stale_temps(folder)
        self._lock = threading.Lock()
        self._closed = False
        self.loaded = self._load(max_lifetime, absolute_lifetime)
        self._periodic = None if interval is None else Periodic(self, "save", interval, "memsession-snapshot")
        _at_exit.add(self)
        _catch_sigterm()

    def _load(self, max_lifetime: Optional[float], absolute_lifetime: Optional[float]) -> int:
        if not os.path.exists(self._path):
            return 0
        try:
            return int(
                load(self._store, self._path, max_lifetime=max_lifetime, absolute_lifetime=absolute_lifetime)
            )
        except SnapshotError as exc:
            aside = f"{self._path}.damaged-{int(time.time())}"
            tries = 1
            while os.path.lexists(aside):  # never over an earlier damaged file
                tries += 1
                aside = f"{self._path}.damaged-{int(time.time())}-{tries}"
            with _quiet():
                os.replace(self._path, aside)
            _log.error("memsession: %s; starting with no sessions, the file is kept as %s", exc, aside)
            return 0

    def _remove_stale_temps(self, folder: str) -> None:
        # A save cut short (kill -9) leaves its temporary file: it holds live
        # ids, so it goes. One process per snapshot file, as documented.
        prefix = _temp_prefix(self._path)
        with _quiet():
            for name in os.listdir(folder):
                if name.startswith(prefix) and name.endswith(".tmp"):
                    with _quiet():
                        os.unlink(os.path.join(folder, name))

    def save(self) -> int:
        """Write the snapshot now; return how many sessions it holds."""
        with self._lock:
            return int(self._store.save(self._path))

    def close(self) -> None:
        """Stop the periodic saves and save a last time (once)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._periodic is not None:
            self._periodic.stop()
        try:
            with self._lock:
                self._store.save(self._path)
        except Exception:
            _log.exception("memsession: the last snapshot to %s failed", self._path)
        _at_exit.discard(self)


_at_exit: weakref.WeakSet[Snapshots] = weakref.WeakSet()


@atexit.register
def _save_all() -> None:
    for snapshots in list(_at_exit):
        snapshots.close()


def _catch_sigterm() -> None:
    # By default SIGTERM ends the process without running atexit, so without
    # this a plain `kill` would lose every session since the last periodic
    # save. Servers that handle SIGTERM themselves (gunicorn, uvicorn) exit
    # through sys.exit and atexit anyway; their handlers are left alone.
    if threading.current_thread() is not threading.main_thread():
        return
    with _quiet():
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _exit_on_sigterm)


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)
