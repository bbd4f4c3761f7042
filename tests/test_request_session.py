"""The per-request session, on both cores: flags of its own, data of the store, a dict mirror."""

from __future__ import annotations

import copy
import json
import pickle
import types
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import memsession
from memsession import Manager, RequestFlag
from memsession.testing import FakeClock

from .conftest import _compiled

SID = "r" * 42 + "A"
MODIFIED, ACCESSED, NEW = int(RequestFlag.MODIFIED), int(RequestFlag.ACCESSED), int(RequestFlag.NEW)


def over(core: types.ModuleType, clock: FakeClock, persistent: bool = True) -> tuple[Any, Any]:
    """A stored record holding user=ann, and a request's session over it."""
    provider = core.MemoryProvider(clock=clock)
    manager = Manager(provider, "sid", 100, cookie_persistent=persistent)
    record = provider.session_init(SID)
    record["user"] = "ann"
    return record, core.RequestSession(record, 0, manager)


def test_the_flag_bits_are_the_request_flags(core: types.ModuleType, clock: FakeClock) -> None:
    record, _ = over(core, clock)
    rs = core.RequestSession(record, NEW, Manager(core.MemoryProvider(), "sid"))
    assert rs.new and not rs.accessed and rs._flags == NEW
    rs["k"] = 1
    assert rs._flags == NEW | MODIFIED | ACCESSED


def test_reads_mark_accessed_and_writes_modified(core: types.ModuleType, clock: FakeClock) -> None:
    record, rs = over(core, clock)
    assert not rs.accessed and not rs.modified and not rs.new
    assert rs["user"] == "ann" and rs.accessed and not rs.modified
    rs["n"] = 1
    assert rs.modified and record["n"] == 1 and dict(rs) == {"user": "ann", "n": 1}
    rs.modified = False
    rs.accessed = False
    assert not rs.modified and not rs.accessed
    assert rs.get("missing", 7) == 7 and rs.accessed


def test_every_mutator_reaches_the_record_and_the_mirror(core: types.ModuleType, clock: FakeClock) -> None:
    record, rs = over(core, clock)
    rs.update({"a": 1}, b=2)
    rs |= {"c": 3}
    assert rs.setdefault("d", 4) == 4 and rs.setdefault("d", 5) == 4
    rs.set("e", 5)
    rs.delete("e")
    rs.delete("absent")
    del rs["a"]
    assert rs.pop("b") == 2 and rs.pop("absent", None) is None
    with pytest.raises(KeyError):
        rs.pop("absent")
    assert rs.popitem() == ("d", 4)
    assert dict(record) == {"user": "ann", "c": 3} == json.loads(json.dumps(rs))
    rs.clear()
    assert dict(record) == {} and json.dumps(rs) == "{}" and len(rs) == 0 and not rs


def test_a_concurrent_write_to_the_record_is_read_though_not_mirrored(
    core: types.ModuleType, clock: FakeClock
) -> None:
    record, rs = over(core, clock)
    record["late"] = 1  # another request of the session
    assert rs["late"] == 1 and "late" in rs and list(rs) == ["user", "late"]
    assert rs == {"user": "ann", "late": 1} and rs.copy() == {"user": "ann", "late": 1}


def test_copies_and_pickles_are_plain_dicts_and_reprs_hide_the_id(
    core: types.ModuleType, clock: FakeClock
) -> None:
    _, rs = over(core, clock)
    for made in (copy.copy(rs), copy.deepcopy(rs), pickle.loads(pickle.dumps(rs))):
        assert type(made) is dict and made == {"user": "ann"}
    assert SID not in repr(rs) and SID[:8] in repr(rs)
    assert isinstance(rs, memsession.Session) and isinstance(rs, dict)
    assert rs.sid == rs.session_id() == SID


def test_permanent_falls_back_to_the_managers_default(core: types.ModuleType, clock: FakeClock) -> None:
    record, rs = over(core, clock, persistent=False)
    assert rs.permanent is False
    rs.permanent = True
    assert rs.permanent is True and record.permanent is True
    rs.permanent = None
    assert rs.permanent is False


def test_attach_moves_the_request_and_resets_the_mirror(core: types.ModuleType, clock: FakeClock) -> None:
    _, rs = over(core, clock)
    other = core.Session("o" * 42 + "A")
    dict.update(other, {"x": 1})
    rs._attach(other)
    assert rs.sid == other.sid and json.loads(json.dumps(rs)) == {"x": 1}


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("set"), st.sampled_from("abc"), st.integers(0, 9)),
        st.tuples(st.just("get"), st.sampled_from("abcz")),
        st.tuples(st.just("del"), st.sampled_from("abcz")),
        st.tuples(st.just("pop"), st.sampled_from("abcz")),
        st.tuples(st.just("setdefault"), st.sampled_from("abc"), st.integers(0, 9)),
        st.tuples(st.just("update"), st.dictionaries(st.sampled_from("abc"), st.integers(0, 9), max_size=2)),
        st.tuples(st.just("clear")),
        st.tuples(st.just("popitem")),
        st.tuples(st.just("contains"), st.sampled_from("abcz")),
        st.tuples(st.just("outside"), st.sampled_from("abc"), st.integers(0, 9)),
    ),
    max_size=30,
)


def apply(rs: Any, record: Any, op: tuple[Any, ...]) -> Any:
    name, *args = op
    try:
        if name == "set":
            rs[args[0]] = args[1]
        elif name == "get":
            return rs.get(args[0])
        elif name == "del":
            del rs[args[0]]
        elif name == "pop":
            return rs.pop(args[0], "none")
        elif name == "setdefault":
            return rs.setdefault(*args)
        elif name == "update":
            rs.update(args[0])
        elif name == "clear":
            rs.clear()
        elif name == "popitem":
            return rs.popitem()
        elif name == "contains":
            return args[0] in rs
        else:
            record[args[0]] = args[1]  # a concurrent request writes
    except KeyError as exc:
        return ("KeyError", str(exc))
    return None


@settings(max_examples=300, deadline=None)
@given(ops=OPS)
def test_compiled_and_twin_request_sessions_agree(ops: list[tuple[Any, ...]]) -> None:
    from memsession import _core_py

    sides = []
    for core in (_compiled(), _core_py):
        clock = FakeClock()
        record, rs = over(core, clock)
        sides.append((record, rs))
    for op in ops:
        results = [apply(rs, record, op) for record, rs in sides]
        assert results[0] == results[1], op
        views = [(dict(record), rs._flags, json.dumps(rs, sort_keys=True)) for record, rs in sides]
        assert views[0] == views[1], op
