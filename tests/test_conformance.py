"""The Provider contract, one suite for the memory provider (both cores) and Redis."""

from __future__ import annotations

from typing import Any

import pytest

import memsession
from memsession import Manager
from memsession.testing import FakeClock

SID = "c" * 42 + "A"


def test_is_a_provider(any_provider: Any) -> None:
    assert isinstance(any_provider, memsession.Provider)


def test_init_gives_an_empty_stored_session(any_provider: Any, clock: FakeClock) -> None:
    s = any_provider.session_init(SID)
    assert s.sid == SID and dict(s) == {} and not s.new
    assert s.created == s.last_used == clock()
    assert SID in any_provider


def test_init_never_overwrites_a_live_session(any_provider: Any) -> None:
    any_provider.session_init(SID)["k"] = 1
    with pytest.raises(ValueError, match="live already"):
        any_provider.session_init(SID)
    assert any_provider.session_read(SID)["k"] == 1


def test_read_of_an_unknown_id_creates_nothing(any_provider: Any) -> None:
    assert any_provider.session_read(SID) is None
    assert any_provider.session_read(SID, 10) is None
    assert SID not in any_provider


def test_writes_are_seen_by_the_next_read(any_provider: Any) -> None:
    s = any_provider.session_init(SID)
    s["user"] = "ann"
    s.update(cart=[1, 2], n=3)
    s.setdefault("theme", "dark")
    s.delete("n")
    assert dict(any_provider.session_read(SID)) == {"user": "ann", "cart": [1, 2], "theme": "dark"}
    s.pop("cart")
    assert dict(any_provider.session_read(SID)) == {"user": "ann", "theme": "dark"}
    s.clear()
    assert dict(any_provider.session_read(SID)) == {}


def test_two_requests_writing_different_keys_lose_nothing(any_provider: Any) -> None:
    any_provider.session_init(SID)
    first = any_provider.session_read(SID)
    second = any_provider.session_read(SID)
    first["a"] = 1
    second["b"] = 2
    assert dict(any_provider.session_read(SID)) == {"a": 1, "b": 2}


def test_idle_expiry_slides_and_is_exact(any_provider: Any, clock: FakeClock) -> None:
    any_provider.session_init(SID)
    clock.advance(10)
    assert any_provider.session_read(SID, 10) is not None  # exactly the lifetime: live
    clock.advance(9.5)
    assert any_provider.session_read(SID, 10) is not None
    clock.advance(10.25)
    assert any_provider.session_read(SID, 10) is None
    assert SID not in any_provider


def test_read_marks_used(any_provider: Any, clock: FakeClock) -> None:
    any_provider.session_init(SID)
    clock.advance(4)
    assert any_provider.session_read(SID).last_used == clock()


def test_update_marks_used_or_reports_unknown(any_provider: Any, clock: FakeClock) -> None:
    any_provider.session_init(SID)
    clock.advance(8)
    assert any_provider.session_update(SID) is True
    clock.advance(8)
    assert any_provider.session_read(SID, 10) is not None
    assert any_provider.session_update("x" * 43) is False


def test_destroy_is_idempotent(any_provider: Any) -> None:
    any_provider.session_init(SID)
    any_provider.session_destroy(SID)
    any_provider.session_destroy(SID)
    assert any_provider.session_read(SID) is None


def test_gc_leaves_no_expired_session_servable(any_provider: Any, clock: FakeClock) -> None:
    any_provider.session_init(SID)
    clock.advance(20)
    removed = any_provider.session_gc(10)
    assert isinstance(removed, int) and removed >= 0
    assert any_provider.session_read(SID, 10) is None


def test_now_is_the_providers_clock(any_provider: Any, clock: FakeClock) -> None:
    assert any_provider.now() == clock()


def test_new_then_insert_stores_all_data_at_once(any_provider: Any) -> None:
    s = any_provider.session_new(SID)
    assert s.new and SID not in any_provider
    s.update(user="ann", roles=["admin"])
    any_provider.session_insert(s)
    assert not s.new
    assert dict(any_provider.session_read(SID)) == {"user": "ann", "roles": ["admin"]}


@pytest.mark.parametrize("bad", [None, 3, b"x"])
def test_non_str_ids_are_a_type_error(any_provider: Any, bad: Any) -> None:
    for call in (any_provider.session_init, any_provider.session_read, any_provider.session_destroy):
        with pytest.raises(TypeError, match="sid must be str"):
            call(bad)


def test_bad_lifetimes_are_rejected(any_provider: Any) -> None:
    with pytest.raises(TypeError, match="max_lifetime"):
        any_provider.session_read(SID, "10")
    with pytest.raises(ValueError, match="max_lifetime"):
        any_provider.session_gc(-1)


def test_the_manager_runs_on_every_provider(any_provider: Any, clock: FakeClock) -> None:
    with Manager(any_provider, "sid", 100, absolute_lifetime=1000) as m:
        s = m.session_start(None)
        s["n"] = 1
        cookie = (m.session_cookie(s) or "").split(";")[0]
        s = m.session_start(cookie)
        assert s["n"] == 1 and not s.new
        s["n"] += 1
        old = cookie
        m.session_regenerate(s)
        cookie = (m.session_cookie(s) or "").split(";")[0]
        assert cookie != old and m.session_start(old).new
        again = m.session_start(cookie)
        assert again["n"] == 2
        again.permanent = False
        assert "Max-Age" not in (m.session_cookie(again) or "")
        assert m.session_start(cookie).permanent is False
        clock.advance(99)
        m.session_destroy(m.session_start(cookie))
        assert m.session_start(cookie).new
