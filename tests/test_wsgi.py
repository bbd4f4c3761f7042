"""WSGI specifics through a real wsgiref server (the shared behaviour is in test_frameworks)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest

from memsession import Manager
from memsession.wsgi import SessionMiddleware

from .stacks import wsgi_app
from .webserver import Browser, serving


def counter_app(manager: Manager) -> Any:
    """The shared test app without the middleware, for wrapping here."""
    return wsgi_app(manager).app


@pytest.fixture
def wsgi_manager(provider: Any) -> Iterator[Manager]:
    """A Manager for the WSGI tests, cookie named 'sid'."""
    with Manager(provider, "sid", 100) as m:
        yield m


@pytest.fixture
def site(wsgi_manager: Manager) -> Iterator[str]:
    """The counter app behind the middleware on a real loopback server."""
    with serving(SessionMiddleware(counter_app(wsgi_manager), wsgi_manager)) as base:
        yield base


def test_two_browsers_have_separate_sessions(site: str) -> None:
    a, b = Browser(site), Browser(site)
    for _ in range(3):
        a.request("/inc")
    assert b.request("/inc")[2].startswith("n=1 ")
    assert a.cookie("sid") != b.cookie("sid")


def test_hostile_cookie_headers_get_a_normal_response(site: str, provider: Any) -> None:
    browser = Browser(site)
    browser.request("/inc")
    good = browser.cookie("sid")
    hostile = [
        "sid=" + "A" * 43 + "; " * 2000,
        "; ".join(f"sid={i}" for i in range(3000)),
        "sid=\udcff\udcfe",
        "x" * 60000,
        f'sid="{good}',
    ]
    for value in hostile:
        req_headers = {"Cookie": value.encode("utf-8", "surrogateescape").decode("latin-1")}
        status, headers, body = Browser(site).request("/peek", headers=req_headers)
        assert status == 200 and body == "n=0 user=None"
        assert headers.get_all("Set-Cookie") is None
    assert browser.request("/inc")[2].startswith("n=2 ")
    assert len(provider) == 1


def test_an_app_error_does_not_corrupt_the_store(site: str, provider: Any) -> None:
    browser = Browser(site)
    browser.request("/inc")
    status, _, _ = browser.request("/boom")
    assert status == 500
    assert browser.request("/inc")[2].startswith("n=0 ")  # the write before the error stood
    assert len(provider) == 1


def call(app: Any, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen["status"], seen["headers"] = status, headers
        return lambda data: None

    b"".join(app(environ, start_response))
    return seen["status"], seen["headers"]


def test_https_requests_get_a_secure_cookie(wsgi_manager: Manager) -> None:
    app = SessionMiddleware(counter_app(wsgi_manager), wsgi_manager)
    environ = {"PATH_INFO": "/inc", "wsgi.url_scheme": "https", "wsgi.input": io.BytesIO()}
    _, headers = call(app, environ)
    cookie = dict(headers)["Set-Cookie"]
    assert "; Secure" in cookie


def test_middleware_arguments_are_checked(wsgi_manager: Manager) -> None:
    with pytest.raises(TypeError, match="app"):
        SessionMiddleware(None, wsgi_manager)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="manager"):
        SessionMiddleware(counter_app(wsgi_manager), "memory")  # type: ignore[arg-type]
