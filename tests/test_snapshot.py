"""Snapshots of the memory store: save and load on both cores, damaged files, the Manager's wiring."""

from __future__ import annotations

import errno
import json
import logging
import os
import pickle
import random
import signal
import struct
import threading
import types
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

from memsession import Manager, SnapshotError, _core_py
from memsession import snapshot as snapshot_module
from memsession._impl import NO_EXTENSIONS
from memsession.cookies import new_session_id
from memsession.testing import FakeClock, start_session

from .redis_server import eventually

Record = tuple[str, dict[str, Any], float, float, Any, float]


class WallClock:
    """time.time() as memsession.snapshot reads it, moved only by hand."""

    def __init__(self, start: float) -> None:
        self.now = start

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def restore_sigterm() -> Iterator[None]:
    """The SIGTERM disposition as it was: a Manager with a snapshot installs a handler."""
    before = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, before)


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> WallClock:
    """A wall clock for memsession.snapshot that moves only when the test says so."""
    clock = WallClock(1_800_000_000.0)
    monkeypatch.setattr(snapshot_module, "time", clock)
    return clock


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """Where the snapshot goes: a file in a folder of its own."""
    return tmp_path / "sessions.snap"


def other_core(core: types.ModuleType) -> types.ModuleType:
    """The core that is not core: the twin for the compiled one and the other way round."""
    if core is not _core_py:
        return _core_py
    if NO_EXTENSIONS:
        pytest.skip("MEMSESSION_NO_EXTENSIONS is set")
    from memsession import _core

    return _core


def records(store: Any) -> list[Record]:
    """Every live session of store, least recently used first, with what a snapshot keeps."""
    return [(s.sid, dict(s), s.created, s.last_used, s.permanent, s._cookie_at) for s in store.sessions()]


def assert_same_sessions(loaded: list[Record], saved: list[Record], tolerance: float = 1e-6) -> None:
    """Ids, order, data and permanence equal; times equal up to the wall-clock conversion's rounding."""
    assert [r[0] for r in loaded] == [r[0] for r in saved]
    for got, want in zip(loaded, saved):
        assert got[1] == want[1] and type(got[1]) is dict
        assert got[2] == pytest.approx(want[2], abs=tolerance)
        assert got[3] == pytest.approx(want[3], abs=tolerance)
        assert got[4] is want[4]
        assert got[5] == pytest.approx(want[5], abs=tolerance)


def several_sessions(core: types.ModuleType, clock: FakeClock) -> Any:
    """A store on clock with four sessions: varied data, permanence, cookie times and last uses."""
    store = core.MemoryProvider(clock=clock)
    ann = store.session_init(new_session_id())
    ann.update({"user": "ann", "roles": ["admin", "ops"], "n": 2**70, "pi": 3.25, "ok": True, "none": None})
    ann.permanent = True
    ann._cookie_at = ann.created + 12.5
    clock.advance(10)
    bob = store.session_init(new_session_id())
    bob.update({"user": "bøb ✓", "nested": {"a": [1, {"b": "c"}]}, "empty": {}})
    bob.permanent = False  # the cookie time becomes -inf: the cookie is due again
    clock.advance(10)
    store.session_init(new_session_id())  # an empty session
    clock.advance(10)
    eve = store.session_init(new_session_id())
    eve["user"] = "eve"
    eve._cookie_at = eve.created - 3.0
    clock.advance(5)
    assert store.session_read(ann.sid) is ann  # ann becomes the most recently used
    clock.advance(2)
    return store


def snapshot_file(core: types.ModuleType, folder: Path, sessions: int = 3, name: str = "ok.snap") -> bytes:
    """The bytes of a valid snapshot holding `sessions` one-key sessions, saved by core."""
    store = core.MemoryProvider(clock=FakeClock())
    for i in range(sessions):
        store.session_init(f"{i:043d}")["user_id"] = i
    target = folder / name
    assert store.save(target) == sessions
    return target.read_bytes()


def assert_refused(core: types.ModuleType, target: Path, blob: bytes, what: str) -> SnapshotError:
    """Loading blob from target raises SnapshotError and stores nothing."""
    target.write_bytes(blob)
    store = core.MemoryProvider(clock=FakeClock())
    with pytest.raises(SnapshotError) as caught:
        store.load(target)
    assert len(store) == 0, what
    assert "nothing was loaded" in str(caught.value), what
    return caught.value


def stored(target: Path) -> dict[str, dict[str, Any]]:
    """{sid: data} of the snapshot at target ({} while there is none)."""
    if not target.exists():
        return {}
    store = _core_py.MemoryProvider()
    store.load(target)
    return {s.sid: dict(s) for s in store.sessions()}


# -- round trips ---------------------------------------------------------------------------------------


def test_save_then_load_round_trips_ids_data_times_permanence_and_cookie_time_in_lru_order(
    core: types.ModuleType, clock: FakeClock, path: Path, wall: WallClock
) -> None:
    store = several_sessions(core, clock)
    saved = records(store)
    assert store.save(path) == 4
    assert len(store) == 4  # saving leaves the store as it was
    loaded = core.MemoryProvider(clock=FakeClock(clock()))
    assert loaded.load(path) == 4
    assert_same_sessions(records(loaded), saved)
    assert [r[3] for r in records(loaded)] == sorted(r[3] for r in records(loaded))
    assert saved[0][5] == float("-inf") and saved[-1][4] is True  # bob's cookie is due; ann is permanent
    for sid, data, *_ in saved:
        session = loaded.session_read(sid, 3600.0)
        assert session is not None and not session.new and dict(session) == data


def test_tuples_come_back_as_lists(core: types.ModuleType, provider: Any, path: Path) -> None:
    provider.session_init(new_session_id())["point"] = (1, (2, 3))
    provider.save(path)
    loaded = core.MemoryProvider()
    loaded.load(path)
    (session,) = loaded.sessions()
    assert session["point"] == [1, [2, 3]]


def test_an_empty_store_saves_and_loads_as_empty(core: types.ModuleType, provider: Any, path: Path) -> None:
    assert provider.save(path) == 0
    loaded = core.MemoryProvider()
    assert loaded.load(path) == 0 and len(loaded) == 0


def test_loaded_sessions_keep_their_idle_time_whatever_the_new_store_clock_reads(
    core: types.ModuleType, clock: FakeClock, path: Path, wall: WallClock
) -> None:
    store = several_sessions(core, clock)
    idle = [t for r in records(store) for t in (clock() - r[3], clock() - r[2])]
    store.save(path)
    # A new process's monotonic clock has nothing to do with the old one's.
    for start in (5.0, 9_000_000.0):
        loaded = core.MemoryProvider(clock=FakeClock(start))
        loaded.load(path)
        got = [t for r in records(loaded) for t in (start - r[3], start - r[2])]
        assert got == pytest.approx(idle, abs=1e-6)


def test_the_compiled_core_and_the_twin_read_each_others_files(
    core: types.ModuleType, clock: FakeClock, path: Path, wall: WallClock
) -> None:
    other = other_core(core)
    store = several_sessions(core, clock)
    saved = records(store)
    store.save(path)
    by_other = other.MemoryProvider(clock=FakeClock(clock()))
    by_same = core.MemoryProvider(clock=FakeClock(clock()))
    assert by_other.load(path) == by_same.load(path) == 4
    assert records(by_other) == records(by_same)  # identical, float for float
    assert_same_sessions(records(by_other), saved)


def test_both_cores_write_the_same_bytes_for_the_same_sessions(
    core: types.ModuleType, tmp_path: Path, wall: WallClock
) -> None:
    other = other_core(core)
    ids = [new_session_id() for _ in range(3)]
    files = []
    for which in (core, other):
        clock = FakeClock(1000.0)
        store = which.MemoryProvider(clock=clock)
        for i, sid in enumerate(ids):
            store.session_init(sid).update({"i": i, "user": f"u{i}"})
            clock.advance(1.5)
        store.session_read(ids[0])
        target = tmp_path / f"{which.__name__}.snap"
        store.save(target)
        files.append(target.read_bytes())
    assert files[0] == files[1]


# -- the file ------------------------------------------------------------------------------------------


def test_the_snapshot_file_has_mode_0600_even_with_a_permissive_umask(
    core: types.ModuleType, provider: Any, path: Path
) -> None:
    provider.session_init(new_session_id())["user"] = "ann"
    path.write_bytes(b"an older file anyone may read")
    path.chmod(0o644)
    old = os.umask(0)
    try:
        provider.save(path)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o600


def test_saving_writes_a_temp_file_in_the_same_folder_and_renames_it_over_the_old_one(
    core: types.ModuleType, provider: Any, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider.session_init(new_session_id())["user"] = "ann"
    provider.save(path)
    old = path.read_bytes()
    provider.session_init(new_session_id())["user"] = "bob"
    renames: list[tuple[str, str, bytes, int]] = []
    real_replace = os.replace

    def spy(src: Any, dst: Any) -> None:
        # At the rename, the old snapshot is still whole and the new one complete beside it.
        assert Path(dst).read_bytes() == old
        renames.append((os.fspath(src), os.fspath(dst), Path(src).read_bytes(), os.stat(src).st_mode))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    assert provider.save(path) == 2
    monkeypatch.undo()
    ((src, dst, written, mode),) = renames
    assert Path(dst) == path and src != dst
    assert os.path.dirname(os.path.abspath(src)) == str(path.parent)
    assert written == path.read_bytes() != old
    assert mode & 0o777 == 0o600
    assert os.listdir(path.parent) == [path.name]


def test_a_value_that_is_not_json_fails_the_save_naming_the_key_and_keeps_the_previous_file(
    core: types.ModuleType, provider: Any, path: Path
) -> None:
    ann = provider.session_init(new_session_id())
    ann["user"] = "ann"
    provider.save(path)
    old = path.read_bytes()
    ann["seen"] = {1, 2}
    with pytest.raises(TypeError, match="'seen'") as caught:
        provider.save(path)
    assert ann.sid[:8] in str(caught.value) and ann.sid not in str(caught.value)  # a short id only
    assert path.read_bytes() == old
    assert os.listdir(path.parent) == [path.name]


def test_an_unpicklable_value_fails_a_pickled_save_and_keeps_the_previous_file(
    core: types.ModuleType, provider: Any, path: Path
) -> None:
    ann = provider.session_init(new_session_id())
    ann["user"] = "ann"
    provider.save(path, pickle=True)
    old = path.read_bytes()
    ann["lock"] = threading.Lock()
    with pytest.raises(TypeError):
        provider.save(path, pickle=True)
    assert path.read_bytes() == old
    assert os.listdir(path.parent) == [path.name]


def test_a_save_that_fails_while_writing_keeps_the_previous_file_and_leaves_no_temp_file(
    core: types.ModuleType, provider: Any, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider.session_init(new_session_id())["user"] = "ann"
    provider.save(path)
    old = path.read_bytes()
    provider.session_init(new_session_id())["user"] = "bob"

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        provider.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == old
    assert os.listdir(path.parent) == [path.name]


def test_a_key_that_is_not_a_str_is_refused_naming_the_key_and_keeps_the_previous_file(
    core: types.ModuleType, provider: Any, path: Path
) -> None:
    session = provider.session_init(new_session_id())
    session["user"] = "ann"
    provider.save(path)
    old = path.read_bytes()
    session[(1, 2)] = "a tuple key"
    with pytest.raises(TypeError, match=r"\(1, 2\)"):
        provider.save(path)
    assert path.read_bytes() == old


def test_an_int_key_is_refused_rather_than_turned_into_a_str(
    core: types.ModuleType, provider: Any, path: Path
) -> None:
    session = provider.session_init(new_session_id())
    session[7] = "an int key"
    try:
        provider.save(path)
    except TypeError:
        return
    loaded = core.MemoryProvider()
    loaded.load(path)
    assert dict(loaded.session_read(session.sid)) == {7: "an int key"}


# -- loading refuses -----------------------------------------------------------------------------------


def test_loading_into_a_store_that_holds_sessions_is_a_value_error_and_changes_nothing(
    core: types.ModuleType, clock: FakeClock, path: Path
) -> None:
    several_sessions(core, clock).save(path)
    store = core.MemoryProvider(clock=clock)
    mine = store.session_init(new_session_id())
    mine["user"] = "zed"
    before = records(store)
    with pytest.raises(ValueError, match="empty") as caught:
        store.load(path)
    assert not isinstance(caught.value, SnapshotError)
    assert records(store) == before and store.stats()["live"] == 1


def test_a_file_cut_short_anywhere_is_refused_and_loads_nothing(
    core: types.ModuleType, tmp_path: Path
) -> None:
    data = snapshot_file(core, tmp_path)
    header = data.index(b"\n", data.index(b"\n") + 1) + 1
    assert data[header : header + 1] == b"C" and data[-13:-12] == b"E"
    for cut in range(len(data)):  # mid-header, mid-chunk, mid-trailer, without the last byte
        assert_refused(core, tmp_path / "cut.snap", data[:cut], f"cut at {cut} of {len(data)}")


def test_a_file_cut_at_a_chunk_boundary_is_refused(core: types.ModuleType, tmp_path: Path) -> None:
    # More than one chunk of 10,000: the cut that leaves whole chunks is the one a format could miss.
    data = snapshot_file(core, tmp_path, sessions=10_003)
    header = data.index(b"\n", data.index(b"\n") + 1) + 1
    n, ids_size, values_size = struct.unpack_from("<III", data, header + 1)
    first_end = header + 1 + 12 + ids_size + 24 * n + n + values_size
    assert n == 10_000 and data[first_end : first_end + 1] == b"C"
    cuts = {
        "header only": header,
        "first chunk only": first_end,
        "first chunk and a chunk mark": first_end + 1,
        "every chunk, no trailer": len(data) - 13,
        "mid-trailer": len(data) - 6,
        "all but one byte": len(data) - 1,
    }
    for what, cut in cuts.items():
        assert_refused(core, tmp_path / "cut.snap", data[:cut], what)
    without_first = data[:header] + data[first_end:]  # a chunk dropped, the trailer kept
    assert_refused(core, tmp_path / "cut.snap", without_first, "a chunk missing")


def test_a_changed_byte_anywhere_is_refused_and_loads_nothing(core: types.ModuleType, tmp_path: Path) -> None:
    data = snapshot_file(core, tmp_path)
    for i in range(len(data)):
        for bits in (0xFF, 0x01, 0x80):
            blob = bytearray(data)
            blob[i] ^= bits
            assert_refused(core, tmp_path / "flipped.snap", bytes(blob), f"byte {i} ^ {bits:#x}")


def test_bytes_after_the_trailer_are_refused(core: types.ModuleType, tmp_path: Path) -> None:
    data = snapshot_file(core, tmp_path)
    assert_refused(core, tmp_path / "longer.snap", data + b"\n", "a newline appended")
    assert_refused(core, tmp_path / "twice.snap", data + data, "two snapshots in a row")


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"\n",
        b"MEMSESSION-SNAPSHOT",
        b"MEMSESSION-SNAPSHOT 1",
        b"MEMSESSION-SNAPSHOT 1\n",
        b'{"sessions": {}}\n',
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        json.dumps({"format": "json"}).encode(),
        random.Random(1).randbytes(4096),
    ],
    ids=["empty", "newline", "magic", "magic-version", "header-line", "json", "png", "meta", "random"],
)
def test_an_empty_or_foreign_file_is_refused_and_loads_nothing(
    core: types.ModuleType, tmp_path: Path, blob: bytes
) -> None:
    assert_refused(core, tmp_path / "foreign.snap", blob, repr(blob[:20]))


def test_a_pickle_is_refused_without_being_unpickled(core: types.ModuleType, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    assert_refused(core, tmp_path / "foreign.snap", pickle.dumps(Touch(marker)), "a pickle")
    assert not marker.exists()


def with_version(data: bytes, version: bytes) -> bytes:
    """data with its version replaced, and its checksum made right again."""
    assert data.startswith(b"MEMSESSION-SNAPSHOT 1\n")
    body = b"MEMSESSION-SNAPSHOT " + version + data[len(b"MEMSESSION-SNAPSHOT 1") : -13]
    count = data[-12:-4]
    return body + b"E" + count + struct.pack("<I", zlib.crc32(body))


def test_a_snapshot_of_another_version_is_refused_naming_the_version(
    core: types.ModuleType, tmp_path: Path
) -> None:
    data = snapshot_file(core, tmp_path)
    assert with_version(data, b"1") == data  # the checksum is made right, so only the version differs
    for version in (b"2", b"0", b"10", b"1.1"):
        error = assert_refused(core, tmp_path / "v.snap", with_version(data, version), repr(version))
        assert "version" in str(error) and version.decode() in str(error)


# -- lifetimes and capacity ----------------------------------------------------------------------------


def test_idle_time_keeps_running_while_the_process_is_down(
    core: types.ModuleType, clock: FakeClock, path: Path, wall: WallClock
) -> None:
    store = core.MemoryProvider(clock=clock)
    old = store.session_init(new_session_id())
    old["user"] = "old"
    clock.advance(50)
    young = store.session_init(new_session_id())
    young["user"] = "young"
    store.save(path)
    # Down for 60 s: old has idled 110 s, young 60 s, against a lifetime of 100 s.
    wall.advance(60)
    restarted = core.MemoryProvider(clock=FakeClock(7.0))
    assert restarted.load(path, max_lifetime=100) == 1
    assert old.sid not in restarted
    (kept,) = restarted.sessions()
    assert kept.sid == young.sid and dict(kept) == {"user": "young"}
    # It has 40 s left on the new clock, not 100: the downtime counted.
    assert restarted.now() - kept.last_used == pytest.approx(60.0, abs=1e-6)
    assert restarted.session_read(young.sid, 100.0) is kept


def test_a_session_idle_exactly_its_lifetime_by_now_is_restored(
    core: types.ModuleType, clock: FakeClock, path: Path, wall: WallClock
) -> None:
    store = core.MemoryProvider(clock=clock)
    store.session_init(new_session_id())["user"] = "edge"
    store.save(path)
    wall.advance(100)
    restarted = core.MemoryProvider(clock=clock)
    assert restarted.load(path, max_lifetime=100) == 1  # as a read: expired only past the lifetime


def test_a_session_older_than_its_absolute_lifetime_by_now_is_not_restored(
    core: types.ModuleType, clock: FakeClock, path: Path, wall: WallClock
) -> None:
    store = core.MemoryProvider(clock=clock)
    old = store.session_init(new_session_id())
    old["user"] = "old"
    clock.advance(40)
    young = store.session_init(new_session_id())
    young["user"] = "young"
    clock.advance(10)
    store.session_read(old.sid)  # used last, but created first
    store.save(path)
    # Down for 60 s: old began 110 s ago, young 70 s ago; at most 100 s in all.
    wall.advance(60)
    restarted = core.MemoryProvider(clock=clock)
    assert restarted.load(path, absolute_lifetime=100) == 1
    assert [s.sid for s in restarted.sessions()] == [young.sid]
    restarted_without = core.MemoryProvider(clock=clock)
    assert restarted_without.load(path) == 2  # no limits given: both come back


def test_the_loading_store_capacity_keeps_the_most_recently_used(
    core: types.ModuleType, clock: FakeClock, path: Path
) -> None:
    store = core.MemoryProvider(clock=clock)
    ids = [new_session_id() for _ in range(5)]
    for i, sid in enumerate(ids):
        store.session_init(sid)["i"] = i
        clock.advance(1)
    store.session_read(ids[0])  # now the most recently used
    store.save(path)
    small = core.MemoryProvider(max_sessions=3, clock=clock)
    assert small.load(path) == 3
    assert [s.sid for s in small.sessions()] == [ids[3], ids[4], ids[0]]
    assert small.stats()["evicted"] == 0


# -- pickle, only when asked ---------------------------------------------------------------------------


class Touch:
    """A value whose unpickling creates a file: code that runs on load."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def test_pickle_is_opt_in_when_saving_and_when_loading(
    core: types.ModuleType, provider: Any, path: Path
) -> None:
    session = provider.session_init(new_session_id())
    session["seen"] = {1, 2}
    with pytest.raises(TypeError, match="pickle=True"):
        provider.save(path)
    assert not path.exists()
    assert provider.save(path, pickle=True) == 1
    refusing = core.MemoryProvider()
    with pytest.raises(SnapshotError, match="pickle=True"):
        refusing.load(path)
    assert len(refusing) == 0
    trusting = core.MemoryProvider()
    assert trusting.load(path, pickle=True) == 1
    assert trusting.session_read(session.sid)["seen"] == {1, 2}


def test_a_pickled_snapshot_runs_none_of_its_code_unless_loaded_with_pickle(
    core: types.ModuleType, provider: Any, path: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "unpickled"
    provider.session_init(new_session_id())["payload"] = Touch(marker)
    provider.save(path, pickle=True)
    with pytest.raises(SnapshotError, match="pickle"):
        core.MemoryProvider().load(path)
    assert not marker.exists()
    core.MemoryProvider().load(path, pickle=True)
    assert marker.exists()  # what pickle=True means: the file's code ran


@pytest.mark.parametrize("option", [1, "yes", None])
def test_pickle_must_be_a_bool(core: types.ModuleType, provider: Any, path: Path, option: Any) -> None:
    with pytest.raises(TypeError, match="pickle"):
        provider.save(path, pickle=option)
    assert not path.exists()
    provider.save(path)
    with pytest.raises(TypeError, match="pickle"):
        core.MemoryProvider().load(path, pickle=option)


# -- threads -------------------------------------------------------------------------------------------


def test_a_save_while_other_threads_read_and_write_finishes_and_loads_back_consistently(
    core: types.ModuleType, path: Path
) -> None:
    store = core.MemoryProvider()
    ids = [new_session_id() for _ in range(25_000)]  # three chunks
    for sid in ids:
        store.session_init(sid).update({"a": 0, "b": 0})
    stop = threading.Event()
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        n = 0
        try:
            while not stop.is_set():
                n += 1
                session = store.session_read(rng.choice(ids), 3600.0)
                session.update({"a": n, "b": n})  # one step: a and b always agree
                passing = store.session_init(new_session_id())
                passing.update({"a": -n, "b": -n})
                store.session_destroy(passing.sid)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    try:
        counts = [store.save(path) for _ in range(3)]
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert not errors
    assert all(len(ids) <= count <= len(ids) + len(threads) for count in counts)
    loaded = core.MemoryProvider()
    assert loaded.load(path) == counts[-1]
    assert all(sid in loaded for sid in ids)
    got = records(loaded)
    assert all(data["a"] == data["b"] for _, data, *_ in got)
    assert [r[3] for r in got] == sorted(r[3] for r in got)
    assert sum(1 for _, data, *_ in got if data["a"] > 0) > 0  # the writers' work is in it


# -- the Manager ---------------------------------------------------------------------------------------


def test_a_manager_loads_its_snapshot_when_built_and_saves_it_on_close(
    core: types.ModuleType, path: Path
) -> None:
    first = Manager(core.MemoryProvider(), "sid", 100, snapshot=path)
    started = start_session(first, user="ann")
    assert not path.exists()  # nothing is written before close (no interval)
    first.close()
    assert stored(path) == {started.cookie_value: {"user": "ann"}}
    first.close()  # closing again saves nothing more and raises nothing
    second = Manager(core.MemoryProvider(), "sid", 100, snapshot=path)
    try:
        session = second.session_start(started.cookie_header)
        assert not session.new and session["user"] == "ann"
    finally:
        second.close()


def test_a_manager_leaves_out_sessions_that_expired_while_it_was_down(
    core: types.ModuleType, clock: FakeClock, path: Path, wall: WallClock
) -> None:
    with Manager(core.MemoryProvider(clock=clock), "sid", 100, snapshot=path) as first:
        gone = start_session(first, user="gone")
        clock.advance(50)
        kept = start_session(first, user="kept")
    wall.advance(60)
    with Manager(core.MemoryProvider(clock=clock), "sid", 100, snapshot=path) as second:
        assert gone.cookie_value not in second.provider and len(second.provider) == 1
        assert second.session_start(gone.cookie_header).new
        assert second.session_start(kept.cookie_header)["user"] == "kept"


def test_a_manager_applies_its_absolute_lifetime_to_the_downtime(
    core: types.ModuleType, clock: FakeClock, path: Path, wall: WallClock
) -> None:
    with Manager(
        core.MemoryProvider(clock=clock), "sid", 1000, absolute_lifetime=100, snapshot=path
    ) as first:
        old = start_session(first, user="old")
        clock.advance(50)
        first.session_start(old.cookie_header)  # in use, but began 50 s ago
    wall.advance(60)
    with Manager(
        core.MemoryProvider(clock=clock), "sid", 1000, absolute_lifetime=100, snapshot=path
    ) as second:
        assert len(second.provider) == 0  # left out by the load, not merely refused by the Manager
        assert second.session_start(old.cookie_header).new


def test_snapshot_interval_saves_the_snapshot_periodically(core: types.ModuleType, path: Path) -> None:
    with Manager(core.MemoryProvider(), "sid", 100, snapshot=path, snapshot_interval=0.05) as manager:
        started = start_session(manager, user="ann")
        eventually(lambda: stored(path) == {started.cookie_value: {"user": "ann"}}, "a periodic save")
        session = manager.session_start(started.cookie_header)
        session["user"] = "bob"
        manager.session_cookie(session)
        eventually(lambda: stored(path) == {started.cookie_value: {"user": "bob"}}, "the next save")


def test_a_damaged_snapshot_at_construction_is_moved_aside_logged_and_the_manager_starts_empty(
    core: types.ModuleType, path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    whole = snapshot_file(core, tmp_path, name="whole.snap")
    for kind, blob, reason in [
        ("random", random.Random(3).randbytes(500), "is not a memsession snapshot"),
        ("truncated", whole[:-5], "is truncated"),
    ]:
        path.write_bytes(blob)
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="memsession"):
            manager = Manager(core.MemoryProvider(), "sid", 100, snapshot=path)
        try:
            (aside,) = path.parent.glob(path.name + ".damaged-*")
            assert aside.read_bytes() == blob, kind
            assert not path.exists(), kind
            assert len(manager.provider) == 0, kind
            (record,) = [r for r in caplog.records if r.name == "memsession"]
            assert record.levelno == logging.ERROR
            message = record.getMessage()
            assert reason in message and str(path) in message and aside.name in message, kind
            started = start_session(manager, user="new")
        finally:
            manager.close()
        # The next save writes the file normally and leaves the damaged one alone.
        assert stored(path) == {started.cookie_value: {"user": "new"}}, kind
        assert aside.read_bytes() == blob, kind
        aside.unlink()


def test_a_second_damaged_snapshot_does_not_overwrite_the_first_one_kept_aside(
    core: types.ModuleType, path: Path, wall: WallClock
) -> None:
    for blob in (b"first damaged file", b"second damaged file"):
        path.write_bytes(blob)
        manager = Manager(core.MemoryProvider(), "sid", 100, snapshot=path)
        manager.close()
        path.unlink()  # the empty snapshot close() wrote
    kept = sorted(p.read_bytes() for p in path.parent.glob(path.name + ".damaged-*"))
    assert kept == [b"first damaged file", b"second damaged file"]


class NotMemory:
    """A sync provider that is not the memory store."""

    def session_init(self, sid: str) -> Any:
        raise NotImplementedError

    def session_read(self, sid: str, max_lifetime: Any = None) -> Any:
        return None

    def session_destroy(self, sid: str) -> None:
        return None

    def session_gc(self, max_lifetime: float) -> int:
        return 0

    def now(self) -> float:
        return 0.0


@pytest.mark.parametrize(
    "make, error, name",
    [
        (lambda core, p: Manager("memory", snapshot_interval=5), ValueError, "snapshot_interval"),
        (lambda core, p: Manager("memory", snapshot=p, snapshot_interval=0), ValueError, "snapshot_interval"),
        (
            lambda core, p: Manager("memory", snapshot=p, snapshot_interval=-1),
            ValueError,
            "snapshot_interval",
        ),
        (
            lambda core, p: Manager("memory", snapshot=p, snapshot_interval="5"),  # type: ignore[arg-type]
            TypeError,
            "snapshot_interval",
        ),
        (lambda core, p: Manager(NotMemory(), snapshot=p), ValueError, "snapshot"),
        (lambda core, p: core.MemoryProvider().save(123), TypeError, "path"),
        (lambda core, p: core.MemoryProvider().save(os.fsencode(p)), TypeError, "path"),
        (lambda core, p: core.MemoryProvider().load(None), TypeError, "path"),
        (lambda core, p: core.MemoryProvider().load(p, max_lifetime=-1), ValueError, "max_lifetime"),
        (
            lambda core, p: core.MemoryProvider().load(p, absolute_lifetime="1"),
            TypeError,
            "absolute_lifetime",
        ),
    ],
    ids=[
        "interval-without-snapshot",
        "interval-zero",
        "interval-negative",
        "interval-str",
        "not-a-memory-provider",
        "save-int-path",
        "save-bytes-path",
        "load-none-path",
        "load-negative-lifetime",
        "load-str-absolute",
    ],
)
def test_bad_snapshot_arguments_are_refused_naming_the_argument(
    core: types.ModuleType, path: Path, make: Callable[[types.ModuleType, Path], Any], error: type, name: str
) -> None:
    with pytest.raises(error, match=rf"\b{name}\b"):
        make(core, path)
    assert os.listdir(path.parent) == []


@pytest.mark.parametrize("value", [123, b"/tmp/sessions.snap"], ids=["int", "bytes"])
def test_a_manager_snapshot_of_the_wrong_type_is_a_type_error_naming_snapshot(value: Any) -> None:
    with pytest.raises(TypeError, match=r"\bsnapshot\b"):
        Manager("memory", snapshot=value)


def test_an_empty_snapshot_path_is_a_value_error_naming_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a stray temp file would go into the parent of the working directory
    with pytest.raises(ValueError, match=r"\bsnapshot\b"):
        Manager("memory", snapshot="").close()
