"""End to end in headless Chromium: the demo clicked through as a person would."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from memsession import Manager, MemoryProvider
from memsession.demo import make_app

from .system_deps import ensure_program
from .webserver import serving

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium, installed when absent, launched headless by Playwright."""
    executable = ensure_program("chromium", "chromium")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def demo() -> Iterator[tuple[str, MemoryProvider]]:
    """The demo site on a loopback server, with its own provider."""
    provider = MemoryProvider()
    with Manager(provider, "memsession", 300, absolute_lifetime=3600) as manager:
        with serving(make_app(manager)) as base:
            yield base, provider


def session_cookie(page: Any) -> dict[str, Any] | None:
    for cookie in page.context.cookies():
        if cookie["name"] == "memsession":
            return dict(cookie)
    return None


def test_count_login_count_logout_in_a_real_browser(chromium: Any, demo: tuple[str, MemoryProvider]) -> None:
    base, provider = demo
    context = chromium.new_context()
    page = context.new_page()
    try:
        page.goto(base + "/")
        assert page.text_content("#count") == "0"
        assert "none yet" in (page.text_content("#sid") or "")
        assert session_cookie(page) is None and len(provider) == 0

        page.click("#count-button")
        assert page.text_content("#count") == "1"
        first = session_cookie(page)
        assert first is not None
        assert first["httpOnly"] is True and first["sameSite"] == "Lax" and first["secure"] is False
        assert first["value"][:8] in (page.text_content("#sid") or "")
        assert page.evaluate("document.cookie") == ""  # HttpOnly: invisible to page scripts

        page.fill("#user-input", "bob")
        page.click("#login-button")
        assert page.text_content("#user") == "bob"
        assert page.text_content("#count") == "1"
        second = session_cookie(page)
        assert second is not None and second["value"] != first["value"]
        assert first["value"] not in provider

        page.click("#count-button")
        assert page.text_content("#count") == "2"

        page.click("#logout-button")
        assert page.text_content("#count") == "0"
        assert page.text_content("#user") == "not logged in"
        assert session_cookie(page) is None and len(provider) == 0

        # A stolen pre-login cookie opens nothing.
        context.add_cookies([{"name": "memsession", "value": first["value"], "url": base}])
        page.goto(base + "/")
        assert page.text_content("#count") == "0" and page.text_content("#user") == "not logged in"
    finally:
        context.close()


def test_time_left_counts_down_to_expired_in_a_real_browser(
    chromium: Any, demo: tuple[str, MemoryProvider]
) -> None:
    base, _ = demo
    context = chromium.new_context()
    page = context.new_page()
    try:
        page.clock.install()  # the page's timers run on a clock the test moves
        page.goto(base + "/")
        assert page.text_content("#left") == "-"
        page.click("#count-button")
        assert (page.text_content("#left") or "").startswith("5:00")
        page.clock.run_for(61_000)
        assert (page.text_content("#left") or "").startswith("3:59")
        page.clock.run_for(240_000)
        assert (page.text_content("#left") or "").startswith("expired")
    finally:
        context.close()
