"""session.permanent: the Manager's default until set, then stored with the session."""

from __future__ import annotations

from typing import Any

from memsession import Manager


def cookie_of(header: str | None) -> str:
    assert header is not None
    return header.split(";")[0]


def test_permanent_is_the_managers_default_until_set(provider: Any) -> None:
    with Manager(provider, "sid", 100, cookie_persistent=False) as m:
        s = m.session_start(None)
        assert s.permanent is False
        s["k"] = 1
        assert "Max-Age" not in (m.session_cookie(s) or "")
    with Manager(provider, "sid", 100) as m:
        assert m.session_start(None).permanent is True


def test_a_permanent_set_in_one_request_holds_in_later_ones(provider: Any) -> None:
    with Manager(provider, "sid", 100, cookie_persistent=False) as m:
        s = m.session_start(None)
        s["user"] = "ann"
        s.permanent = True
        header = m.session_cookie(s)
        assert "Max-Age=150" in (header or "")
        later = m.session_start(cookie_of(header))
        assert later.permanent is True
        later.permanent = None  # back to the Manager's default, and the cookie says so
        assert later.permanent is False
        resent = m.session_cookie(later)
        assert resent is not None and "Max-Age" not in resent
