"""memsession.testing.SetCookie.session honours the Manager's lifetimes, as a request would."""

from __future__ import annotations

from typing import Any

from memsession import Manager
from memsession.testing import FakeClock, SetCookie, parse_set_cookie


def stored(manager: Manager, **data: Any) -> SetCookie:
    """Store a session holding data; return the Set-Cookie its response carried."""
    session = manager.session_start(None)
    session.update(data)
    header = manager.session_cookie(session)
    assert header is not None
    return parse_set_cookie(header)


def test_set_cookie_session_is_none_past_the_idle_lifetime_and_does_not_revive_it(
    manager: Manager, provider: Any, clock: FakeClock
) -> None:
    cookie = stored(manager, user="ann")
    clock.advance(manager.max_lifetime - 1)
    live = cookie.session(manager)
    assert live is not None and live["user"] == "ann"  # still within the idle lifetime

    clock.advance(manager.max_lifetime + 1)  # idle past max_lifetime
    assert cookie.session(manager) is None
    assert cookie.session(manager) is None  # asking again did not bring it back

    again = manager.session_start(f"{cookie.name}={cookie.value}")
    assert again.new and dict(again) == {} and again.sid != cookie.value


def test_set_cookie_session_honours_the_absolute_lifetime(provider: Any, clock: FakeClock) -> None:
    with Manager(provider, "sid", 100, absolute_lifetime=150) as manager:
        cookie = stored(manager, user="ann")
        for _ in range(2):  # used every 60 s: never idle too long
            clock.advance(60)
            assert manager.session_start(f"sid={cookie.value}").sid == cookie.value
        clock.advance(40)  # 160 s after it began, only 40 s idle
        assert cookie.session(manager) is None
        assert manager.session_start(f"sid={cookie.value}").sid != cookie.value
