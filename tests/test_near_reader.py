"""NearReader, the near cache's local hit: the same decisions in both cores."""

from __future__ import annotations

import socket
import time
import types
from collections.abc import Iterator
from typing import Any

import pytest

from memsession.testing import FakeClock

META: Any = object()
SID = "n" * 42 + "A"


class Kept:
    """Stands for the session a near cache keeps (only _last_used is touched)."""

    _last_used = 0.0


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected socket pair: the first stands for the tracking socket."""
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def setup(core: types.ModuleType, clock: FakeClock, pair: tuple[socket.socket, socket.socket]) -> Any:
    """A reader over a store holding one kept session, its socket quiet; slow calls are recorded."""
    store = core.MemoryProvider(clock=clock)
    kept = Kept()
    entry = store.session_new(SID)
    entry[META] = [kept, clock(), True, None]
    store.session_insert(entry)
    slow: list[tuple[Any, Any]] = []

    def fallback(sid: Any, max_lifetime: Any = None) -> str:
        slow.append((sid, max_lifetime))
        return "slow"

    reader = core.NearReader(store, META, 1.0, fallback)
    reader.fd = pair[0].fileno()
    reader.next_ping = time.monotonic() + 3600
    return types.SimpleNamespace(reader=reader, kept=kept, entry=entry, slow=slow, store=store, core=core)


def test_a_current_copy_of_immutable_values_is_served_without_the_fallback(
    setup: Any, clock: FakeClock
) -> None:
    clock.advance(0.5)
    assert setup.reader.read(SID, 10.0) is setup.kept
    assert setup.kept._last_used == clock()
    assert setup.reader.hits == 1
    assert setup.slow == []


def test_anything_waiting_on_the_tracking_socket_sends_the_read_to_the_fallback(
    setup: Any, pair: tuple[socket.socket, socket.socket]
) -> None:
    pair[1].sendall(b">2\r\n")
    setup.core.local_write()  # a poll happens now, whatever the last one found
    assert setup.reader.read(SID, 10.0) == "slow"
    assert setup.reader.quiet() is False


def test_a_closed_tracking_socket_sends_the_read_to_the_fallback(
    setup: Any, pair: tuple[socket.socket, socket.socket]
) -> None:
    pair[1].close()
    setup.core.local_write()
    assert setup.reader.read(SID, 10.0) == "slow"


@pytest.mark.parametrize(
    "change",
    ["no socket", "busy", "ping due", "values not immutable", "use not recorded", "not cached", "idle"],
)
def test_every_reason_to_doubt_the_copy_sends_the_read_to_the_fallback(
    setup: Any, clock: FakeClock, change: str
) -> None:
    reader, meta = setup.reader, setup.entry[META]
    if change == "no socket":
        reader.fd = -1
    elif change == "busy":
        reader.busy = True
    elif change == "ping due":
        reader.next_ping = time.monotonic() - 1
    elif change == "values not immutable":
        meta[2] = False
    elif change == "use not recorded":
        clock.advance(1.0)  # refresh is 1 s
    elif change == "not cached":
        setup.store.session_destroy(SID)
    elif change == "idle":
        clock.advance(0.5)
        assert reader.read(SID, 0.25) == "slow"
        assert SID not in setup.store  # idle past the limit: dropped from memory
        return
    assert reader.read(SID, 10.0) == "slow"
    assert setup.slow == [(SID, 10.0)]
    assert reader.hits == 0


@pytest.mark.parametrize("sid", ["x" * 43, SID + "z"])
def test_an_id_not_kept_goes_to_the_fallback(setup: Any, sid: str) -> None:
    assert setup.reader.read(sid) == "slow"


@pytest.mark.parametrize("args", [(b"bytes",), (None,), (SID, "10"), (SID, True)])
def test_arguments_the_fast_path_does_not_take_go_to_the_fallback_as_given(setup: Any, args: Any) -> None:
    assert setup.reader.read(*args) == "slow"
    assert setup.slow == [(args[0], args[1] if len(args) > 1 else None)]


def test_an_int_lifetime_is_taken_as_seconds(setup: Any) -> None:
    assert setup.reader.read(SID, 10) is setup.kept


def test_readable_reports_data_and_end_of_file(core: types.ModuleType) -> None:
    a, b = socket.socketpair()
    try:
        assert core.readable(a.fileno()) is False
        b.sendall(b"x")
        assert core.readable(a.fileno()) is True
        a.recv(1)
        b.close()
        assert core.readable(a.fileno()) is True  # end of file: a read returns at once
    finally:
        a.close()
        b.close()
