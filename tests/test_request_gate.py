"""RequestGate: a usual request's start and its "no cookie" in one call each, as the Manager answers them."""

from __future__ import annotations

import gc
import re
import types
import weakref
from typing import Any, Callable, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import memsession
from memsession import _core_py
from memsession._impl import NO_EXTENSIONS
from memsession._impl import MemoryProvider as ChosenProvider
from memsession._impl import RequestGate as ChosenGate
from memsession.cookies import new_session_id
from memsession.session import FRESH, HAD_COOKIE, HTTPS, PENDING
from memsession.testing import FakeClock

LIFETIME = 100.0
PREFIX = "sid="
A_ID = "A" * 42 + "A"
IDS = [new_session_id() for _ in range(5)]
# Ways a client's Cookie header can differ from "sid=<a live id>".
MUTATIONS = (
    "exact",
    "drop last",
    "one more",
    "bad character",
    "bad last character",
    "non-ASCII",
    "other name",
    "name in capitals",
    "two cookies",
    "space before",
    "semicolon after",
)
# Half the headers name a session exactly, the others are changed one way or another.
HOW = st.one_of(st.just("exact"), st.sampled_from(MUTATIONS))
WAITS = st.sampled_from([0.0, 0.0, 1.0, 30.0, 60.0, 150.0])  # seconds before a request
EXAMPLES = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def mutate(sid: str, how: str) -> str:
    """The Cookie header for sid, changed as `how` says."""
    header = PREFIX + sid
    if how == "drop last":
        return header[:-1]
    if how == "one more":
        return header + "A"
    if how == "bad character":
        return header[:20] + "." + header[21:]
    if how == "bad last character":
        return header[:-1] + "B"  # not one of the 16 characters an id can end with
    if how == "non-ASCII":
        return header[:-1] + "é"
    if how == "other name":
        return "sad=" + sid
    if how == "name in capitals":
        return "SID=" + sid
    if how == "two cookies":
        return header + "; other=1"
    if how == "space before":
        return " " + header[:-1]  # the length of the usual header
    if how == "semicolon after":
        return header[:-1] + ";"
    return header


def outcome(call: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    """What a call returned, or the error it raised (type and message)."""
    try:
        return ("ok", call(*args, **kwargs))
    except Exception as exc:  # noqa: BLE001 - compared, not swallowed
        return ("error", type(exc), str(exc))


def picture(rs: Any, ids: dict[str, str]) -> tuple[Any, ...]:
    """A request's session as comparable across stores: flags, data, and which known session."""
    fresh = bool(rs._flags & PENDING)
    return (rs._flags, dict(rs), None if fresh else ids.get(rs.sid, "unknown"))


def gate(core: types.ModuleType, provider: Any, refresh: float = LIFETIME / 2) -> Any:
    """A RequestGate of core over provider, as a Manager named "sid" with LIFETIME builds it."""
    return core.RequestGate(provider, PREFIX, LIFETIME, refresh, new_session_id)


# -- what start and quiet answer ------------------------------------------------------


def test_start_returns_the_session_a_cookie_names_marked_used(
    core: types.ModuleType, clock: FakeClock
) -> None:
    provider = core.MemoryProvider(clock=clock)
    stored = provider.session_init(A_ID)
    stored["n"] = 1
    clock.advance(5)
    owner = object()
    rs = gate(core, provider).start(PREFIX + A_ID, True, owner)
    assert type(rs) is core.RequestSession and rs._owner is owner
    assert rs._flags == HAD_COOKIE | HTTPS
    assert rs._record is stored and rs.sid == A_ID and dict(rs) == {"n": 1}
    assert stored.last_used == clock()
    assert provider.stats()["hits"] == 1


def test_start_without_a_cookie_or_with_a_dead_one_begins_a_session_that_is_not_stored(
    core: types.ModuleType, clock: FakeClock
) -> None:
    provider = core.MemoryProvider(clock=clock)
    g = gate(core, provider)
    fresh = g.start(None, False, None)
    dead = g.start(PREFIX + A_ID, False, None)
    assert fresh._flags == FRESH and dead._flags == FRESH | HAD_COOKIE
    assert fresh.sid != dead.sid and A_ID not in (fresh.sid, dead.sid)
    assert len(provider) == 0
    assert provider.stats()["misses"] == 1  # the dead id was looked up once, None was not


def test_start_leaves_every_other_header_and_https_to_the_manager(
    core: types.ModuleType, clock: FakeClock
) -> None:
    provider = core.MemoryProvider(clock=clock)
    provider.session_init(A_ID)
    g = gate(core, provider)
    for header in (b"sid=" + A_ID.encode(), 3, "", mutate(A_ID, "two cookies"), mutate(A_ID, "space before")):
        assert g.start(header, False, None) is None
    for https in (1, None, "yes"):
        assert g.start(PREFIX + A_ID, https, None) is None
    assert provider.stats()["hits"] == 0 and provider.stats()["misses"] == 0


def latin1(header: str) -> bytes:
    """header as an ASGI server hands it on: its latin-1 bytes, else its UTF-8 bytes."""
    try:
        return header.encode("latin-1")
    except UnicodeEncodeError:
        return header.encode()


RAW_HEADERS = st.one_of(
    st.none(),
    st.binary(max_size=60),
    st.builds(lambda sid, how: latin1(mutate(sid, how)), st.sampled_from([*IDS[:3], A_ID]), HOW),
)


@EXAMPLES
@given(raw=RAW_HEADERS, https=st.sampled_from([True, False, 1]))
def test_start_bytes_answers_as_start_does_on_the_headers_latin1_text(
    core: types.ModuleType, raw: Optional[bytes], https: Any
) -> None:
    seen = []
    for as_bytes in (True, False):
        clock = FakeClock(1000.0)
        provider = core.MemoryProvider(clock=clock)
        for sid in IDS[:3]:
            provider.session_init(sid)["n"] = sid
        clock.advance(1)
        g = core.RequestGate(provider, PREFIX, LIFETIME, LIFETIME / 2, counting_ids())
        if as_bytes:
            rs = g.start_bytes(raw, https, "owner")
        else:
            rs = g.start(None if raw is None else raw.decode("latin-1"), https, "owner")
        shape = None if rs is None else (rs._flags, rs.sid, dict(rs), rs._record.last_used)
        seen.append((shape, provider.stats()))
    assert seen[0] == seen[1]


def test_start_bytes_leaves_every_other_type_and_prefix_to_the_manager(
    core: types.ModuleType, clock: FakeClock
) -> None:
    class Raw(bytes):
        pass

    provider = core.MemoryProvider(clock=clock)
    provider.session_init(A_ID)
    raw = (PREFIX + A_ID).encode()
    g = gate(core, provider)
    for header in (bytearray(raw), memoryview(raw), Raw(raw), PREFIX + A_ID, 3):
        assert g.start_bytes(header, False, None) is None
    # A cookie name no latin-1 header can spell: never this path.
    euro = core.RequestGate(provider, "s\u20ac=", LIFETIME, 1.0, new_session_id)
    assert euro.start_bytes(b"s\xe2\x82\xac=" + A_ID.encode(), False, None) is None
    assert provider.stats()["hits"] == 0 and provider.stats()["misses"] == 0
    assert g.start_bytes(raw, False, None).sid == A_ID  # type: ignore[union-attr]
    assert euro.start_bytes(None, False, None)._flags == FRESH  # type: ignore[union-attr]


def test_two_requests_of_one_session_get_their_own_request_sessions(
    core: types.ModuleType, clock: FakeClock
) -> None:
    provider = core.MemoryProvider(clock=clock)
    provider.session_init(A_ID)["n"] = 1
    g = gate(core, provider)
    first, second = g.start(PREFIX + A_ID, False, None), g.start(PREFIX + A_ID, False, None)
    assert first is not second and first._record is second._record
    first["n"] = 2
    assert second["n"] == 2  # the data is shared
    assert first.modified and not second.modified  # the flags are not


def test_quiet_only_when_the_session_is_stored_unchanged_or_kept_and_its_cookie_fresh(
    core: types.ModuleType, clock: FakeClock
) -> None:
    provider = core.MemoryProvider(clock=clock)
    stored = provider.session_init(A_ID)
    stored["n"] = 1
    stored._cookie_at = stored.last_used
    owner = object()
    g = gate(core, provider)
    rs = g.start(PREFIX + A_ID, False, owner)
    assert g.quiet(rs, False, owner) and g.quiet(rs, True, owner)
    rs["n"] = 2
    assert g.quiet(rs, False, owner)  # changed, still holding data: nothing to send
    rs.clear()
    assert not g.quiet(rs, False, owner)  # emptied: the Manager decides whether to destroy it
    assert not g.quiet(g.start(None, False, owner), False, owner)  # not stored yet
    assert not g.quiet(rs, 1, owner) and not g.quiet(dict(n=1), False, owner)
    assert not g.quiet(g.start(PREFIX + A_ID, False, owner), False, object())  # another owner's
    clock.advance(LIFETIME / 2)
    assert not g.quiet(g.start(PREFIX + A_ID, False, owner), False, owner)  # the cookie is due again


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"provider": {}}, TypeError, "provider must be a MemoryProvider, not dict"),
        ({"prefix": b"sid="}, TypeError, "prefix must be str, not bytes"),
        ({"new_id": "abc"}, TypeError, "new_id must be callable, not str"),
        ({"limit": "100"}, TypeError, "limit must be a number of seconds, not str"),
        ({"refresh": -1.0}, ValueError, "refresh must be a non-negative number of seconds"),
    ],
)
def test_gate_arguments_are_checked(
    core: types.ModuleType, clock: FakeClock, arguments: dict[str, Any], error: type, message: str
) -> None:
    given_arguments = {
        "provider": core.MemoryProvider(clock=clock),
        "prefix": PREFIX,
        "limit": LIFETIME,
        "refresh": LIFETIME / 2,
        "new_id": new_session_id,
        **arguments,
    }
    with pytest.raises(error, match=re.escape(message)):
        core.RequestGate(*given_arguments.values())


def test_a_manager_takes_the_gate_only_over_its_own_cores_store_without_absolute_lifetime() -> None:
    assert type(memsession.Manager()._gate) is ChosenGate
    assert memsession.Manager(absolute_lifetime=60)._gate is None
    other = _core_py.MemoryProvider() if ChosenProvider is not _core_py.MemoryProvider else None
    if other is not None:
        assert memsession.Manager(other)._gate is None


def test_a_dropped_manager_is_freed_at_once_with_its_background_gc(core: types.ModuleType) -> None:
    manager = memsession.Manager(core.MemoryProvider(), gc_interval=60)
    rs = manager.session_start(None)
    rs["n"] = 1
    manager.session_cookie(rs)
    freed, thread = weakref.ref(manager), manager._gc._thread  # type: ignore[union-attr]
    gc.disable()  # no cycle may hold it: reference counting alone must free it
    try:
        del manager, rs
        assert freed() is None
        thread.join(5)
        assert not thread.is_alive()
    finally:
        gc.enable()


def test_a_cookie_name_of_a_str_subclass_still_makes_a_manager() -> None:
    class Name(str):
        def __add__(self, other: str) -> Name:
            return Name(str(self) + other)

    manager = memsession.Manager(cookie_name=Name("sid"))
    rs = manager.session_start(None)
    rs["n"] = 1
    cookie = manager.session_cookie(rs)
    assert cookie is not None
    assert manager.session_start(cookie.split(";", 1)[0])["n"] == 1


@pytest.mark.parametrize(
    "new_id",
    [lambda: "", lambda: None, lambda: 3, lambda: type("Sub", (str,), {})("C" * 43)],
    ids=["empty", "None", "int", "str subclass"],
)
def test_both_gates_check_the_ids_they_issue_alike(new_id: Callable[[], Any]) -> None:
    if NO_EXTENSIONS:
        pytest.skip("the compiled core is disabled")
    from memsession import _core

    seen = []
    for core in (_core, _core_py):
        g = core.RequestGate(core.MemoryProvider(), PREFIX, LIFETIME, LIFETIME / 2, new_id)
        result = outcome(g.start, None, False, None)
        seen.append(result if result[0] == "error" else (type(result[1].sid), result[1].sid))
    assert seen[0] == seen[1]


def test_the_request_path_takes_positional_arguments_only_as_dict_get_does(
    core: types.ModuleType, clock: FakeClock
) -> None:
    g = gate(core, core.MemoryProvider(clock=clock))
    rs = g.start(None, False, None)
    calls = [
        lambda: g.start(header=None, https=False, owner=None),
        lambda: g.start_bytes(raw=None, https=False, owner=None),
        lambda: g.quiet(rs, False, owner=None),
        lambda: rs.get("n", default=0),
        lambda: {}.get("n", default=0),
    ]
    for call in calls:
        with pytest.raises(TypeError, match="keyword"):
            call()
    assert rs.get("n", 0) == 0 and g.quiet(rs, False, None) is False


def test_an_uninitialised_gate_says_so(core: types.ModuleType) -> None:
    g = core.RequestGate.__new__(core.RequestGate)
    with pytest.raises(TypeError, match="RequestGate is not initialised"):
        g.start(None, False, None)
    with pytest.raises(TypeError, match="RequestGate is not initialised"):
        g.start_bytes(b"x", False, None)
    assert g.quiet(core.RequestSession(core.Session(A_ID), 0, None), False, None) is False


# -- against the Manager's general path -------------------------------------------------


STEPS = st.lists(
    st.tuples(
        st.sampled_from(["none", "known", "text"]),
        st.integers(0, 4),  # which known session
        HOW,
        st.text(max_size=50),
        st.sampled_from([True, False, 1, None]),  # https at the start
        st.sampled_from(["read", "write", "empty", "nothing"]),  # what the view does
        st.sampled_from([True, False, "yes"]),  # https when the response starts
        WAITS,
    ),
    max_size=25,
)


def _view(rs: Any, action: str) -> None:
    if action == "read":
        rs.get("n")
    elif action == "write":
        rs["n"] = rs.get("n", 0) + 1
    elif action == "empty":
        rs.clear()


def _cookie_id(cookie: Optional[str]) -> Optional[str]:
    if cookie is None or not cookie.startswith(PREFIX):
        return None
    value = cookie[len(PREFIX) :].split(";", 1)[0]
    return value or None


@pytest.mark.skipif(NO_EXTENSIONS and ChosenProvider is not _core_py.MemoryProvider, reason="no chosen core")
@EXAMPLES
@given(steps=STEPS)
def test_a_manager_with_the_gate_answers_every_request_as_without_it(steps: list[tuple[Any, ...]]) -> None:
    clock = FakeClock(1000.0)
    fast = memsession.Manager(ChosenProvider(clock=clock), "sid", LIFETIME)
    slow = memsession.Manager(ChosenProvider(clock=clock), "sid", LIFETIME)
    assert fast._gate is not None
    slow._gate = None
    for manager in (fast, slow):  # two sessions stored, their cookies sent
        for sid in IDS[:2]:
            session = manager.provider.session_init(sid)
            session["n"] = 0
            session._cookie_at = session.last_used
    # Each store issues its own random ids: known[k] is session k's id in each.
    known = [(sid, sid) for sid in (*IDS[:2], A_ID)]
    fast_to_slow = {sid: sid for sid, _ in known}
    for kind, which, how, text, https, action, https_out, wait in steps:
        clock.advance(wait)
        if kind == "none":
            headers: tuple[Any, Any] = (None, None)
        elif kind == "known":
            pair = known[which % len(known)]
            headers = (mutate(pair[0], how), mutate(pair[1], how))
        else:
            headers = (text, text)
        got = outcome(fast.session_start, headers[0], https=https)
        want = outcome(slow.session_start, headers[1], https=https)
        assert got[0] == want[0]
        if got[0] == "error":
            assert got == want
            continue
        rs_fast, rs_slow = got[1], want[1]
        assert picture(rs_fast, fast_to_slow) == picture(rs_slow, {v: v for v in fast_to_slow.values()})
        _view(rs_fast, action)
        _view(rs_slow, action)
        cookie_fast = outcome(fast.session_cookie, rs_fast, https=https_out)
        cookie_slow = outcome(slow.session_cookie, rs_slow, https=https_out)
        assert cookie_fast[0] == cookie_slow[0]
        if cookie_fast[0] == "error" or cookie_fast[1] is None or cookie_slow[1] is None:
            assert cookie_fast == cookie_slow
        else:
            new_fast, new_slow = _cookie_id(cookie_fast[1]), _cookie_id(cookie_slow[1])
            assert (new_fast is None) == (new_slow is None)
            if new_fast is not None and new_slow is not None:
                if new_fast not in fast_to_slow:
                    fast_to_slow[new_fast] = new_slow
                    known.append((new_fast, new_slow))
                assert fast_to_slow[new_fast] == new_slow
                assert cookie_fast[1].replace(new_fast, new_slow) == cookie_slow[1]
            else:
                assert cookie_fast == cookie_slow
        assert fast.provider.stats() == slow.provider.stats()


# -- the compiled gate against the twin's ------------------------------------------------


GATE_STEPS = st.lists(
    st.tuples(
        st.sampled_from(["none", "known", "text"]),
        st.integers(0, 4),
        HOW,
        st.text(max_size=50),
        st.sampled_from([True, False, 1]),
        st.sampled_from(["read", "write", "empty", "nothing", "store", "cookie sent"]),
        WAITS,
        st.booleans(),  # the header as bytes (start_bytes), else as text (start)
    ),
    max_size=25,
)


def counting_ids() -> Callable[[], str]:
    """Well-formed ids in a fixed order: two gates given one each issue the same ids."""
    issued = iter(range(10**4))
    digits = str.maketrans("0123456789", "AEIMQUYcgk")  # characters an id may end with
    return lambda: "B" * 39 + f"{next(issued):04d}".translate(digits)


@pytest.mark.skipif(NO_EXTENSIONS, reason="the compiled core is disabled")
@EXAMPLES
@given(steps=GATE_STEPS)
def test_the_compiled_gate_and_the_twins_answer_alike(steps: list[tuple[Any, ...]]) -> None:
    from memsession import _core

    clock = FakeClock(1000.0)
    stores, gates = [], []
    for core in (_core, _core_py):  # the first three ids stored, the others dead
        provider = core.MemoryProvider(clock=clock)
        for sid in IDS[:3]:
            provider.session_init(sid)["n"] = 0
        for sid in IDS[:2]:  # their cookies were sent; the third's never was
            provider.session_update(sid)
            session = next(s for s in provider.sessions() if s.sid == sid)
            session._cookie_at = session.last_used
        stores.append(provider)
        gates.append(core.RequestGate(provider, PREFIX, LIFETIME, LIFETIME / 2, counting_ids()))
    stored: list[str] = []  # ids the steps stored, the same in both
    for kind, which, how, text, https, action, wait, as_bytes in steps:
        clock.advance(wait)
        sids = IDS + stored
        header = None if kind == "none" else text if kind == "text" else mutate(sids[which % len(sids)], how)
        seen = []
        stored_now = None
        for provider, g in zip(stores, gates):
            if as_bytes:
                rs = g.start_bytes(None if header is None else latin1(header), https, "owner")
            else:
                rs = g.start(header, https, "owner")
            if rs is None:
                seen.append(None)
                continue
            result: list[Any] = [rs._flags, rs.sid, dict(rs)]
            _view(rs, action)
            if action == "store" and rs._flags & PENDING and len(rs._record):
                provider.session_insert(rs._record)
                rs._flags &= ~PENDING
                stored_now = rs.sid
            if action == "cookie sent" and not rs._flags & PENDING:
                rs._record._cookie_at = rs._record.last_used
            result += [g.quiet(rs, True, "owner"), g.quiet(rs, False, "owner"), g.quiet(rs, 0, "owner")]
            result.append(rs._flags)
            result.append(provider.stats())
            seen.append(result)
        assert seen[0] == seen[1]
        if stored_now is not None:
            stored.append(stored_now)
