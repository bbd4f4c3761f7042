"""Manager: ids, strict mode, lazy sessions, lifetimes, cookies, regenerate, destroy."""

from __future__ import annotations

import re
import threading
import types
from typing import Any, Optional

import pytest

import memsession
from memsession import Manager
from memsession.cookies import is_session_id
from memsession.testing import FakeClock

ID = re.compile(r"[A-Za-z0-9_-]{43}\Z")


def sid_of(set_cookie: Optional[str], name: str = "sid") -> str:
    assert set_cookie is not None
    first = set_cookie.split(";")[0]
    key, _, value = first.partition("=")
    assert key == name
    return value


def attrs(set_cookie: str) -> dict[str, str]:
    out = {}
    for part in set_cookie.split("; ")[1:]:
        key, _, value = part.partition("=")
        out[key] = value
    return out


def login(manager: Manager, **data: Any) -> tuple[memsession.Session, str]:
    """A stored session holding data, and the Cookie header naming it."""
    s = manager.session_start(None)
    s.update(data or {"user": "ann"})
    cookie = manager.session_cookie(s)
    return s, f"sid={sid_of(cookie)}"


def test_go_style_positional_construction_works() -> None:
    with Manager("memory", "gosessionid", 3600) as m:
        assert m.cookie_name == "gosessionid" and m.max_lifetime == 3600.0
        assert isinstance(m.provider, memsession.MemoryProvider)


def test_two_managers_named_memory_have_stores_of_their_own(clock: FakeClock) -> None:
    with Manager("memory", "sid", 100) as first, Manager("memory", "sid", 10) as second:
        assert first.provider is not second.provider
        s = first.session_start(None)
        s["user"] = "ann"
        cookie = (first.session_cookie(s) or "").split(";")[0]
        assert second.session_start(cookie).new  # the other Manager never sees it
        second.gc()  # a shorter lifetime collects only its own store
        assert first.session_start(cookie)["user"] == "ann"


def test_a_store_is_shared_on_purpose_by_registering_an_instance() -> None:
    shared = memsession.MemoryProvider()
    memsession.register("shared-for-test", shared)
    with Manager("shared-for-test", "sid") as first, Manager("shared-for-test", "sid") as second:
        assert first.provider is second.provider is shared
        s = first.session_start(None)
        s["user"] = "ann"
        cookie = (first.session_cookie(s) or "").split(";")[0]
        assert second.session_start(cookie)["user"] == "ann"


def test_a_fresh_visitor_gets_an_unsaved_session_and_no_cookie(manager: Manager, provider: Any) -> None:
    s = manager.session_start(None)
    assert len(s) == 0 and not s.modified
    assert manager.session_cookie(s) is None
    assert len(provider) == 0


def test_reading_a_session_does_not_save_it(manager: Manager, provider: Any) -> None:
    s = manager.session_start("other=1")
    _ = s.get("user"), "x" in s
    assert manager.session_cookie(s) is None and len(provider) == 0


def test_writing_saves_the_session_and_sets_a_cookie(manager: Manager, provider: Any) -> None:
    s = manager.session_start(None)
    s["n"] = 1
    cookie = manager.session_cookie(s)
    sid = sid_of(cookie)
    assert sid == s.sid and ID.match(sid) and is_session_id(sid)
    assert provider.session_read(sid) == {"n": 1}
    again = manager.session_start(f"sid={sid}")
    assert again is not s and again.sid == s.sid and again["n"] == 1 and not again.modified


def test_ids_are_43_urlsafe_characters_and_never_repeat(manager: Manager) -> None:
    seen = set()
    for _ in range(300):
        s = manager.session_start(None)
        s["x"] = 1
        seen.add(sid_of(manager.session_cookie(s)))
    assert len(seen) == 300
    assert all(ID.match(sid) for sid in seen)


def test_unknown_ids_are_never_adopted(manager: Manager, provider: Any) -> None:
    forged = "A" * 43
    s = manager.session_start(f"sid={forged}")
    s["x"] = 1
    assert sid_of(manager.session_cookie(s)) != forged
    assert forged not in provider


@pytest.mark.parametrize(
    "header",
    [
        "sid=",
        "sid=short",
        "sid=" + "A" * 44,
        "sid=" + "A" * 42 + "B",  # a last character no issued id can have
        "sid=" + "A" * 42 + "é",
        "sid=" + "%" * 43,
        "sid",
        ";;;;",
        "",
        "\x00sid=\x00",
    ],
)
def test_malformed_cookies_give_a_fresh_session(manager: Manager, header: str) -> None:
    s = manager.session_start(header)
    assert len(s) == 0 and manager.session_cookie(s) is None


def test_the_live_one_of_several_same_name_cookies_wins(manager: Manager) -> None:
    s, cookie = login(manager)
    header = f'sid={"A" * 43}; other=1; sid=garbage; {cookie}; sid="{"B" * 43}"'
    assert manager.session_start(header).sid == s.sid


def test_quoted_cookie_values_are_understood(manager: Manager) -> None:
    s, cookie = login(manager)
    assert manager.session_start(f'a=b; sid="{cookie[4:]}"').sid == s.sid


def test_idle_sessions_expire(manager: Manager, clock: FakeClock) -> None:
    s, cookie = login(manager)
    clock.advance(99)
    assert manager.session_start(cookie).sid == s.sid
    clock.advance(100.5)
    fresh = manager.session_start(cookie)
    assert fresh.sid != s.sid and len(fresh) == 0


def test_absolute_lifetime_ends_a_session_in_use(provider: Any, clock: FakeClock) -> None:
    with Manager(provider, "sid", 100, absolute_lifetime=250) as m:
        s, cookie = login(m)
        for _ in range(4):
            clock.advance(60)
            assert m.session_start(cookie).sid == s.sid
        clock.advance(60)
        assert m.session_start(cookie).sid != s.sid
        assert s.sid not in provider


def test_cookie_attributes_default_to_safe_values(manager: Manager) -> None:
    s = manager.session_start(None)
    s["x"] = 1
    cookie = manager.session_cookie(s)
    assert cookie is not None
    a = attrs(cookie)
    assert a == {"Max-Age": "150", "Path": "/", "HttpOnly": "", "SameSite": "Lax"}


def test_secure_is_added_on_https_only(provider: Any) -> None:
    with Manager(provider, "sid", 100) as m:
        s = m.session_start(None, https=True)
        s["x"] = 1
        assert "Secure" in attrs(m.session_cookie(s) or "")
        s = m.session_start(None)
        s["x"] = 1
        assert "Secure" not in attrs(m.session_cookie(s) or "")
    with Manager(provider, "sid", 100, cookie_secure=True) as m:
        s = m.session_start(None)
        s["x"] = 1
        assert "Secure" in attrs(m.session_cookie(s) or "")
    with Manager(provider, "sid", 100, cookie_secure=False) as m:
        s = m.session_start(None, https=True)
        s["x"] = 1
        assert "Secure" not in attrs(m.session_cookie(s, https=True) or "")


def test_cookie_options_appear_in_the_cookie(provider: Any) -> None:
    with Manager(
        provider,
        "app",
        60,
        cookie_path="/shop",
        cookie_domain="example.org",
        cookie_httponly=False,
        cookie_samesite="strict",
        cookie_partitioned=True,
    ) as m:
        s = m.session_start(None)
        s["x"] = 1
        a = attrs(m.session_cookie(s) or "")
    assert a == {
        "Max-Age": "90",
        "Path": "/shop",
        "Domain": "example.org",
        "Secure": "",
        "SameSite": "Strict",
        "Partitioned": "",
    }


def test_non_persistent_cookies_have_no_max_age(provider: Any) -> None:
    with Manager(provider, "sid", 60, cookie_persistent=False) as m:
        s = m.session_start(None)
        s["x"] = 1
        a = attrs(m.session_cookie(s) or "")
    assert "Max-Age" not in a and "Expires" not in a


def test_host_prefix_forces_secure_root_path_and_no_domain(provider: Any) -> None:
    with Manager(provider, "__Host-sid", 60) as m:
        s = m.session_start(None)
        s["x"] = 1
        a = attrs(m.session_cookie(s) or "")
    assert "Secure" in a and a["Path"] == "/" and "Domain" not in a
    with pytest.raises(ValueError, match="__Host-"):
        Manager(provider, "__Host-sid", 60, cookie_path="/x")
    with pytest.raises(ValueError, match="__Host-"):
        Manager(provider, "__Host-sid", 60, cookie_domain="example.org")
    with pytest.raises(ValueError, match="cookie_secure"):
        Manager(provider, "__Host-sid", 60, cookie_secure=False)


def test_cookie_is_refreshed_before_it_could_expire_but_not_every_time(
    manager: Manager, clock: FakeClock
) -> None:
    s, cookie = login(manager)
    sent_at = clock()
    browser_expiry = sent_at + 150
    refreshed = 0
    for _ in range(40):
        clock.advance(20)
        assert clock() < browser_expiry, "the browser cookie died while the session was in use"
        got = manager.session_start(cookie)
        assert got.sid == s.sid
        set_cookie = manager.session_cookie(got)
        if set_cookie is not None:
            assert sid_of(set_cookie) == s.sid
            refreshed += 1
            browser_expiry = clock() + int(attrs(set_cookie)["Max-Age"])
    assert 0 < refreshed < 40


def test_max_age_never_outlives_the_absolute_lifetime(provider: Any, clock: FakeClock) -> None:
    with Manager(provider, "sid", 100, absolute_lifetime=120) as m:
        s, cookie = login(m)
        clock.advance(90)
        m.session_start(cookie)
        assert attrs(m.session_cookie(s) or "")["Max-Age"] == "30"


def test_regenerate_keeps_data_and_kills_the_old_id(manager: Manager, provider: Any) -> None:
    s, cookie = login(manager, user="ann", cart=[1])
    old = s.sid
    s = manager.session_start(cookie)
    manager.session_regenerate(s)
    assert s.sid != old and dict(s) == {"user": "ann", "cart": [1]}
    assert old not in provider
    new_cookie = manager.session_cookie(s)
    assert sid_of(new_cookie) == s.sid
    assert manager.session_start(cookie).sid != s.sid  # the old id is dead
    assert manager.session_start(f"sid={s.sid}").sid == s.sid


def test_regenerate_of_a_new_session_before_writing(manager: Manager) -> None:
    s = manager.session_start(None)
    first = s.sid
    manager.session_regenerate(s)
    s["user"] = "bob"
    assert sid_of(manager.session_cookie(s)) == s.sid != first


def test_destroy_removes_state_and_expires_the_cookie(manager: Manager, provider: Any) -> None:
    s, cookie = login(manager)
    s = manager.session_start(cookie)
    manager.session_destroy(s)
    assert len(s) == 0 and len(provider) == 0
    expired = manager.session_cookie(s)
    assert expired is not None and sid_of(expired) == ""
    a = attrs(expired)
    assert a["Max-Age"] == "0" and a["Expires"].startswith("Thu, 01 Jan 1970")
    assert manager.session_start(cookie).sid != s.sid


def test_writing_after_destroy_starts_a_new_session(manager: Manager, provider: Any) -> None:
    s, cookie = login(manager)
    old = s.sid
    s = manager.session_start(cookie)
    manager.session_destroy(s)
    s["flash"] = "bye"
    new_sid = sid_of(manager.session_cookie(s))
    assert new_sid != old and provider.session_read(new_sid)["flash"] == "bye"
    assert old not in provider


def test_destroying_a_never_saved_session_sends_nothing(manager: Manager) -> None:
    s = manager.session_start(None)
    manager.session_destroy(s)
    assert manager.session_cookie(s) is None


def test_gc_uses_max_lifetime(manager: Manager, provider: Any, clock: FakeClock) -> None:
    login(manager)
    login(manager)
    clock.advance(50)
    login(manager)
    clock.advance(60)
    assert manager.gc() == 2 and len(provider) == 1


def test_background_gc_runs_and_close_stops_it(core: types.ModuleType) -> None:
    ran = threading.Event()
    p = core.MemoryProvider()
    calls = []

    class Spy:
        def session_gc(self, max_lifetime: float) -> int:
            calls.append(max_lifetime)
            ran.set()
            return p.session_gc(max_lifetime)

        def session_init(self, sid: str) -> Any:
            return p.session_init(sid)

        def session_read(self, sid: str, max_lifetime: Optional[float] = None) -> Any:
            return p.session_read(sid, max_lifetime)

        def session_destroy(self, sid: str) -> None:
            p.session_destroy(sid)

        def now(self) -> float:
            return p.now()

    m = Manager(Spy(), "sid", 7, gc_interval=0.01)  # type: ignore[arg-type]
    assert ran.wait(10)
    m.close()
    assert m._gc is not None and not m._gc._thread.is_alive()
    assert calls[0] == 7.0


def test_a_third_party_provider_without_the_lazy_methods_works(core: types.ModuleType) -> None:
    inner = core.MemoryProvider()

    class Minimal:
        def session_init(self, sid: str) -> Any:
            return inner.session_init(sid)

        def session_read(self, sid: str, max_lifetime: Optional[float] = None) -> Any:
            return inner.session_read(sid, max_lifetime)

        def session_destroy(self, sid: str) -> None:
            inner.session_destroy(sid)

        def session_gc(self, max_lifetime: float) -> int:
            return inner.session_gc(max_lifetime)

        def now(self) -> float:
            return inner.now()

    with Manager(Minimal(), "sid", 60) as m:  # type: ignore[arg-type]
        s, cookie = login(m, user="x")
        again = m.session_start(cookie)
        assert again["user"] == "x"


@pytest.mark.parametrize(
    ("kwargs", "error", "names"),
    [
        ({"provider": 3}, TypeError, "provider"),
        ({"provider": "nope"}, memsession.UnknownProviderError, "forgotten import"),
        ({"cookie_name": 3}, TypeError, "cookie_name"),
        ({"cookie_name": ""}, ValueError, "cookie_name"),
        ({"cookie_name": "a b"}, ValueError, "cookie_name"),
        ({"cookie_name": "a;b"}, ValueError, "cookie_name"),
        ({"max_lifetime": "60"}, TypeError, "max_lifetime"),
        ({"max_lifetime": True}, TypeError, "max_lifetime"),
        ({"max_lifetime": 0}, ValueError, "max_lifetime"),
        ({"max_lifetime": float("inf")}, ValueError, "max_lifetime"),
        ({"max_lifetime": float("nan")}, ValueError, "max_lifetime"),
        ({"absolute_lifetime": -1}, ValueError, "absolute_lifetime"),
        ({"cookie_path": "shop"}, ValueError, "cookie_path"),
        ({"cookie_path": "/a;b"}, ValueError, "cookie_path"),
        ({"cookie_path": None}, TypeError, "cookie_path"),
        ({"cookie_domain": "bad domain"}, ValueError, "cookie_domain"),
        ({"cookie_domain": 5}, TypeError, "cookie_domain"),
        ({"cookie_secure": "yes"}, TypeError, "cookie_secure"),
        ({"cookie_httponly": 1}, TypeError, "cookie_httponly"),
        ({"cookie_samesite": "lazy"}, ValueError, "cookie_samesite"),
        ({"cookie_samesite": 1}, TypeError, "cookie_samesite"),
        ({"cookie_samesite": "None", "cookie_secure": False}, ValueError, "cookie_secure"),
        ({"cookie_partitioned": True, "cookie_secure": False}, ValueError, "cookie_secure"),
        ({"cookie_persistent": None}, TypeError, "cookie_persistent"),
        ({"gc_interval": 0}, ValueError, "gc_interval"),
        ({"gc_interval": "1"}, TypeError, "gc_interval"),
    ],
)
def test_bad_constructor_arguments_name_the_argument(kwargs: dict[str, Any], error: type, names: str) -> None:
    with pytest.raises(error, match=names):
        Manager(**kwargs)


def test_samesite_none_forces_secure(provider: Any) -> None:
    with Manager(provider, "sid", 60, cookie_samesite="None") as m:
        s = m.session_start(None)
        s["x"] = 1
        a = attrs(m.session_cookie(s) or "")
    assert a["SameSite"] == "None" and "Secure" in a


def test_non_str_cookie_header_is_a_type_error(manager: Manager) -> None:
    with pytest.raises(TypeError, match="cookie_header"):
        manager.session_start(b"sid=abc")  # type: ignore[arg-type]


def test_a_new_session_written_then_emptied_stores_nothing(manager: Manager, provider: Any) -> None:
    s = manager.session_start(None)
    s["a"] = 1
    del s["a"]
    assert s.modified
    assert manager.session_cookie(s) is None and len(provider) == 0
