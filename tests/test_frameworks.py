"""The same session behaviour in every stack, through real servers and a cookie-jar client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from memsession import Manager
from memsession.testing import FakeClock

from .stacks import STACKS
from .webserver import Browser, serving, serving_asgi

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:uvicorn")


@pytest.fixture(params=sorted(STACKS))
def stack(request: pytest.FixtureRequest, provider: Any) -> Iterator[tuple[str, Any]]:
    """(base URL, provider) of the shared app in one stack, served for real."""
    kind, build = STACKS[request.param]
    with Manager(provider, "sid", 100) as manager:
        serve = serving if kind == "wsgi" else serving_asgi
        with serve(build(manager)) as base:
            yield base, provider


def set_cookies(headers: Any) -> list[str]:
    return headers.get_all("Set-Cookie") or []


def test_counter_climbs(stack: tuple[str, Any]) -> None:
    browser = Browser(stack[0])
    assert [browser.request("/inc")[2] for _ in range(3)] == [f"n={n} user=None" for n in (1, 2, 3)]


def test_reading_only_stores_nothing_sets_no_cookie_and_varies_by_cookie(stack: tuple[str, Any]) -> None:
    base, provider = stack
    status, headers, body = Browser(base).request("/peek")
    assert (status, body) == (200, "n=0 user=None")
    assert set_cookies(headers) == [] and len(provider) == 0
    # The page depends on the session, so a shared cache must key it by Cookie.
    assert headers.get_all("Vary") == ["Cookie"]


def test_a_page_that_never_touches_the_session_does_not_vary_by_cookie(stack: tuple[str, Any]) -> None:
    browser = Browser(stack[0])
    browser.request("/inc")
    status, headers, body = browser.request("/static")
    assert (status, body) == (200, "static")
    assert headers.get_all("Vary") is None and set_cookies(headers) == []


def test_cookie_attributes_and_cache_headers(stack: tuple[str, Any]) -> None:
    _, headers, _ = Browser(stack[0]).request("/inc")
    (cookie,) = set_cookies(headers)
    parts = cookie.split("; ")
    assert parts[0].startswith("sid=") and len(parts[0]) == 4 + 43
    assert set(parts[1:]) == {"Max-Age=150", "Path=/", "HttpOnly", "SameSite=Lax"}
    assert "Cookie" in headers.get_all("Vary")
    assert 'no-cache="set-cookie"' in headers.get_all("Cache-Control")


def test_only_a_new_or_due_cookie_is_sent(stack: tuple[str, Any]) -> None:
    browser = Browser(stack[0])
    browser.request("/inc")
    assert set_cookies(browser.request("/inc")[1]) == []


def test_forged_ids_are_not_adopted(stack: tuple[str, Any]) -> None:
    base, provider = stack
    forged = "Q" * 43
    _, headers, body = Browser(base).request("/inc", headers={"Cookie": f"sid={forged}"})
    assert body == "n=1 user=None"
    (cookie,) = set_cookies(headers)
    assert forged not in cookie and forged not in provider


def test_duplicate_cookies_resolve_to_the_live_session(stack: tuple[str, Any]) -> None:
    browser = Browser(stack[0])
    browser.request("/inc")
    live = browser.cookie("sid")
    header = f"sid={'Q' * 43}; sid=junk; sid={live}"
    assert Browser(stack[0]).request("/inc", headers={"Cookie": header})[2] == "n=2 user=None"


def test_login_regenerates_the_id_and_keeps_data(stack: tuple[str, Any]) -> None:
    base, provider = stack
    browser = Browser(base)
    browser.request("/inc")
    old = browser.cookie("sid")
    assert browser.request("/login")[2] == "n=1 user=ann"
    new = browser.cookie("sid")
    assert new != old and old not in provider and new in provider
    thief = Browser(base)
    assert thief.request("/peek", headers={"Cookie": f"sid={old}"})[2] == "n=0 user=None"


def test_logout_destroys_state_and_expires_the_cookie(stack: tuple[str, Any]) -> None:
    base, provider = stack
    browser = Browser(base)
    browser.request("/login")
    _, headers, body = browser.request("/logout")
    assert body == "n=0 user=None"
    (cookie,) = set_cookies(headers)
    assert cookie.startswith("sid=;") and "Max-Age=0" in cookie
    assert browser.cookie("sid") is None and len(provider) == 0
    assert browser.request("/peek")[2] == "n=0 user=None"


def test_clearing_the_session_logs_out(stack: tuple[str, Any]) -> None:
    base, provider = stack
    browser = Browser(base)
    browser.request("/login")
    _, headers, _ = browser.request("/clear")
    assert "Max-Age=0" in set_cookies(headers)[0]
    assert len(provider) == 0 and browser.cookie("sid") is None


def test_idle_sessions_expire(stack: tuple[str, Any], clock: FakeClock) -> None:
    browser = Browser(stack[0])
    browser.request("/inc")
    clock.advance(99)
    assert browser.request("/inc")[2] == "n=2 user=None"
    clock.advance(101)
    assert browser.request("/inc")[2] == "n=1 user=None"
