"""Flask integration: flask.session behaves like Flask's own, backed by memsession."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask, session

import memsession
import memsession.flask
from memsession import Manager
from memsession.testing import FakeClock


@pytest.fixture
def flask_manager(provider: Any) -> Iterator[Manager]:
    """A Manager for the Flask tests, cookie named 'sid'."""
    with Manager(provider, "sid", 100) as m:
        yield m


def build(manager: Any = None, **config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(config)
    memsession.flask.init_app(app, manager)

    @app.route("/set/<key>/<value>")
    def set_value(key: str, value: str) -> str:
        session[key] = value
        return "ok"

    @app.route("/get/<key>")
    def get_value(key: str) -> str:
        return str(session.get(key))

    @app.route("/pop/<key>")
    def pop_value(key: str) -> str:
        return str(session.pop(key, None))

    @app.route("/flags")
    def flags() -> str:
        kind = type(session._get_current_object()).__name__
        return f"new={session.new} modified={session.modified} type={kind}"

    @app.route("/permanent/<value>")
    def permanent(value: str) -> str:
        session["x"] = 1
        session.permanent = value == "yes"
        return "ok"

    @app.route("/touch")
    def touch() -> str:
        session.modified = True
        return "ok"

    return app


def test_flask_session_is_a_memsession_session(flask_manager: Manager) -> None:
    client = build(flask_manager).test_client()
    assert client.get("/flags").text == f"new=True modified=False type={memsession.RequestSession.__name__}"
    client.get("/set/a/1")
    assert client.get("/flags").text.startswith("new=False modified=False")
    assert client.get("/get/a").text == "1"
    assert client.get("/pop/a").text == "1"


def test_popping_the_last_key_ends_the_session(flask_manager: Manager, provider: Any) -> None:
    client = build(flask_manager).test_client()
    client.get("/set/a/1")
    response = client.get("/pop/a")
    assert "Max-Age=0" in response.headers["Set-Cookie"] and len(provider) == 0


def test_permanent_false_gives_a_browser_session_cookie(flask_manager: Manager) -> None:
    client = build(flask_manager).test_client()
    cookie = client.get("/permanent/no").headers["Set-Cookie"]
    assert "Max-Age" not in cookie and "Expires" not in cookie
    cookie = client.get("/permanent/yes").headers["Set-Cookie"]
    assert "Max-Age=150" in cookie


def test_changing_permanent_resends_the_cookie_once(flask_manager: Manager) -> None:
    client = build(flask_manager).test_client()
    client.get("/permanent/yes")
    assert "Set-Cookie" not in client.get("/get/x").headers
    assert "Max-Age" not in client.get("/permanent/no").headers["Set-Cookie"]
    assert "Set-Cookie" not in client.get("/permanent/no").headers


def test_setting_modified_on_an_empty_new_session_stores_nothing_but_works(flask_manager: Manager) -> None:
    client = build(flask_manager).test_client()
    response = client.get("/touch")
    assert response.status_code == 200


def test_session_transaction_starts_a_test_logged_in(flask_manager: Manager) -> None:
    client = build(flask_manager).test_client()
    with client.session_transaction() as sess:
        sess["user"] = "ann"
    assert client.get("/get/user").text == "ann"


def test_helpers_regenerate_and_destroy(flask_manager: Manager, provider: Any) -> None:
    app = build(flask_manager)

    @app.route("/login")
    def login() -> str:
        memsession.flask.regenerate_session()
        session["user"] = "ann"
        return session.sid

    @app.route("/logout")
    def logout() -> str:
        memsession.flask.destroy_session()
        return "bye"

    client = app.test_client()
    client.get("/set/cart/1")
    before = client.get_cookie("sid").value  # type: ignore[union-attr]
    new_sid = client.get("/login").text
    assert new_sid != before and before not in provider and new_sid in provider
    assert client.get("/get/cart").text == "1"
    assert "Max-Age=0" in client.get("/logout").headers["Set-Cookie"]
    assert len(provider) == 0 and client.get_cookie("sid") is None


def test_helpers_need_init_app() -> None:
    app = Flask(__name__)
    with app.test_request_context("/"):
        with pytest.raises(RuntimeError, match="init_app"):
            memsession.flask.regenerate_session()


def test_https_requests_get_a_secure_cookie(flask_manager: Manager) -> None:
    app = build(flask_manager)
    assert "; Secure" in app.test_client().get("/set/a/1", base_url="https://localhost").headers["Set-Cookie"]
    assert "Secure" not in app.test_client().get("/set/a/1").headers["Set-Cookie"]


def test_idle_expiry(flask_manager: Manager, clock: FakeClock) -> None:
    client = build(flask_manager).test_client()
    client.get("/set/a/1")
    clock.advance(101)
    assert client.get("/get/a").text == "None"


def test_changed_flask_settings_are_not_silently_ignored(flask_manager: Manager) -> None:
    with pytest.warns(memsession.flask.ConfigWarning, match="SESSION_COOKIE_NAME"):
        build(flask_manager, SESSION_COOKIE_NAME="mine")


def test_without_a_manager_flask_settings_are_honoured() -> None:
    app = build(
        None,
        SESSION_COOKIE_NAME="flasksid",
        SESSION_COOKIE_PATH="/",
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=True,
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=10),
    )
    manager = app.extensions["memsession"]
    assert manager.cookie_name == "flasksid" and manager.max_lifetime == 600.0
    client = app.test_client()
    cookie = client.get("/set/a/1").headers["Set-Cookie"]
    assert cookie.startswith("flasksid=") and "SameSite=Strict" in cookie and "Secure" in cookie
    assert "Max-Age" not in cookie  # Flask's default: not permanent
    assert "Max-Age=900" in client.get("/permanent/yes").headers["Set-Cookie"]


def test_init_app_checks_its_arguments(flask_manager: Manager) -> None:
    with pytest.raises(TypeError, match="app"):
        memsession.flask.init_app("app", flask_manager)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="manager"):
        memsession.flask.init_app(Flask(__name__), "memory")  # type: ignore[arg-type]
