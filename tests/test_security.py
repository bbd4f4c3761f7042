"""The session-management rules (OWASP Session Management Cheat Sheet), one test each."""

from __future__ import annotations

import base64
import tracemalloc
import types
from typing import Any

from memsession import Manager
from memsession.testing import FakeClock


def set_cookie_of(manager: Manager, session: Any, https: bool = False) -> str:
    cookie = manager.session_cookie(session, https=https)
    assert cookie is not None
    return cookie


def new_stored(manager: Manager, https: bool = False) -> tuple[Any, str]:
    s = manager.session_start(None, https=https)
    s["user"] = "ann"
    return s, set_cookie_of(manager, s, https)


def test_session_id_entropy_is_256_bits_from_the_csprng_in_a_urlsafe_alphabet(manager: Manager) -> None:
    ids = [new_stored(manager)[0].sid for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    raw = [base64.urlsafe_b64decode(sid + "=") for sid in ids]
    assert all(len(r) == 32 and len(sid) == 43 for r, sid in zip(raw, ids))
    # Every bit position is a fair coin across the ids: 2000 draws, 5 sigma.
    for bit in range(256):
        ones = sum((r[bit // 8] >> (bit % 8)) & 1 for r in raw)
        assert abs(ones - 1000) < 5 * 22.4, bit
    # The id carries nothing but randomness: no counter, time or user data.
    assert not any(b"ann" in r for r in raw)


def test_strict_mode_never_accepts_an_id_the_server_did_not_issue(manager: Manager, provider: Any) -> None:
    attacker_chosen = "A" * 42 + "E"
    s = manager.session_start(f"sid={attacker_chosen}")
    s["user"] = "victim"
    cookie = set_cookie_of(manager, s)
    assert attacker_chosen not in cookie and attacker_chosen not in provider


def test_renewing_the_id_on_privilege_change_kills_the_old_id(manager: Manager, provider: Any) -> None:
    s, cookie = new_stored(manager)
    pre_login = cookie.split(";")[0]
    s = manager.session_start(pre_login)
    manager.session_regenerate(s)
    s["role"] = "admin"
    post_login = set_cookie_of(manager, s).split(";")[0]
    assert post_login != pre_login
    attacker = manager.session_start(pre_login)
    assert attacker is not s and "role" not in attacker


def test_logout_invalidates_the_session_on_the_server(manager: Manager, provider: Any) -> None:
    s, cookie = new_stored(manager)
    s = manager.session_start(cookie.split(";")[0])
    manager.session_destroy(s)
    assert "Max-Age=0" in set_cookie_of(manager, s)
    assert len(provider) == 0
    replayed = manager.session_start(cookie.split(";")[0])
    assert replayed.new and "user" not in replayed


def test_idle_timeout_is_enforced_on_the_server(manager: Manager, clock: FakeClock) -> None:
    s, cookie = new_stored(manager)
    clock.advance(100.001)
    assert manager.session_start(cookie.split(";")[0]).sid != s.sid


def test_absolute_timeout_is_enforced_however_busy_the_session(provider: Any, clock: FakeClock) -> None:
    with Manager(provider, "sid", 60, absolute_lifetime=600) as manager:
        s, cookie = new_stored(manager)
        for _ in range(20):
            clock.advance(30)
            assert manager.session_start(cookie.split(";")[0]).sid == s.sid
        clock.advance(1)
        assert manager.session_start(cookie.split(";")[0]).sid != s.sid


def test_cookie_is_httponly_samesite_and_secure_over_https(manager: Manager) -> None:
    _, plain = new_stored(manager)
    _, tls = new_stored(manager, https=True)
    for cookie in (plain, tls):
        assert "; HttpOnly" in cookie and "; SameSite=Lax" in cookie and "; Path=/" in cookie
        assert "Domain=" not in cookie
    assert "; Secure" in tls and "Secure" not in plain


def test_no_cookie_and_no_state_for_sessions_never_written(manager: Manager, provider: Any) -> None:
    for header in (None, "", "sid=" + "B" * 42 + "A", "other=1"):
        s = manager.session_start(header)
        _ = s.get("user"), "cart" in s, len(s)
        assert manager.session_cookie(s) is None
    assert len(provider) == 0


def test_max_sessions_bounds_memory_under_a_flood_of_new_visitors(core: types.ModuleType) -> None:
    provider = core.MemoryProvider(max_sessions=1000)
    with Manager(provider, "sid", 1800) as manager:
        tracemalloc.start()
        try:
            for _ in range(2000):
                new_stored(manager)
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(50_000):
                new_stored(manager)
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    assert len(provider) == 1000
    assert provider.stats()["evicted"] == 51_000
    assert grown < 64 * 1024  # the store stays the size of 1,000 sessions


def test_session_ids_never_appear_whole_in_reprs(manager: Manager) -> None:
    s, _ = new_stored(manager)
    assert s.sid not in repr(s) and s.sid not in repr(manager.provider)
