"""The pytest plugin, used as a project that only installed memsession would (pytester)."""

from __future__ import annotations

import pytest

from memsession import Manager
from memsession.testing import FakeClock, find_set_cookie, parse_set_cookie, start_session

pytest_plugins = ["pytester"]


def test_fixtures_need_no_conftest_and_are_isolated(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import memsession

        def test_first(memsession_manager, memsession_provider, memsession_clock):
            assert memsession_manager.provider is memsession_provider
            s = memsession_manager.session_start(None)
            s["n"] = 1
            memsession_manager.session_cookie(s)
            memsession_clock.advance(5)
            assert len(memsession_provider) == 1

        def test_second(memsession_provider, memsession_clock):
            assert len(memsession_provider) == 0      # nothing left from test_first
            assert memsession_clock() == 1000.0       # a fresh clock too
            assert isinstance(memsession_provider, memsession.MemoryProvider)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--strict-markers")
    result.assert_outcomes(passed=2)


def test_time_travel_logs_a_user_out(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.memsession(max_lifetime=60, cookie_name="sid")
        def test_idle_user_is_logged_out(memsession_manager, memsession_login, memsession_clock):
            user = memsession_login({"user_id": 7})
            assert user.cookie_header.startswith("sid=")
            assert memsession_manager.session_start(user.cookie_header)["user_id"] == 7
            memsession_clock.advance(61)
            assert "user_id" not in memsession_manager.session_start(user.cookie_header)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--strict-markers")
    result.assert_outcomes(passed=1)


def test_the_marker_is_registered_and_checked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.memsession(60)
        def test_positional(memsession_manager):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--strict-markers")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*keyword arguments only*"])


def test_fixtures_have_one_line_docstrings(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--fixtures")
    for name in ("memsession_clock", "memsession_provider", "memsession_manager", "memsession_login"):
        result.stdout.fnmatch_lines([f"{name}*", "*?*"])


def test_cookie_helpers_round_trip_through_the_wsgi_middleware(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import io
        from memsession.wsgi import SessionMiddleware
        from memsession.testing import find_set_cookie

        def test_logged_in_request(memsession_manager, memsession_login, memsession_clock):
            def app(environ, start_response):
                session = environ["memsession.session"]
                session["seen"] = session.get("seen", 0) + 1
                body = f"user={session.get('user_id')}".encode()
                start_response("200 OK", [("Content-Length", str(len(body)))])
                return [body]

            wsgi = SessionMiddleware(app, memsession_manager)
            user = memsession_login(user_id=3)
            got = {}

            def start_response(status, headers, exc_info=None):
                got["headers"] = headers

            environ = {"PATH_INFO": "/", "HTTP_COOKIE": user.cookie_header,
                       "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO()}
            assert b"".join(wsgi(environ, start_response)) == b"user=3"
            assert user.session["seen"] == 1
            memsession_clock.advance(1500)  # past half the idle lifetime: the cookie is renewed
            b"".join(wsgi(environ, start_response))
            cookies = [v for k, v in got["headers"] if k == "Set-Cookie"]
            renewed = find_set_cookie(cookies, memsession_manager.cookie_name)
            assert renewed.value == user.cookie_value and renewed.httponly
            assert renewed.session(memsession_manager).sid == user.session.sid
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_cookie_helpers_with_the_flask_and_starlette_test_clients(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import flask
        import memsession.flask
        from starlette.applications import Starlette
        from starlette.middleware import Middleware
        from starlette.responses import PlainTextResponse
        from starlette.routing import Route
        from starlette.testclient import TestClient
        from memsession.asgi import SessionMiddleware
        from memsession.testing import parse_set_cookie

        def test_flask(memsession_manager, memsession_login):
            app = flask.Flask(__name__)
            memsession.flask.init_app(app, memsession_manager)

            @app.route("/logout")
            def logout():
                memsession.flask.destroy_session()
                return "bye " + str(flask.session.get("user_id"))

            @app.route("/me")
            def me():
                return str(flask.session.get("user_id"))

            user = memsession_login(user_id=5)
            client = app.test_client()
            client.set_cookie(user.cookie_name, user.cookie_value)
            assert client.get("/me").text == "5"
            cookie = parse_set_cookie(client.get("/logout").headers["Set-Cookie"])
            assert cookie.deletes and cookie.session(memsession_manager) is None
            assert client.get("/me").text == "None"

        def test_starlette(memsession_manager, memsession_login):
            async def me(request):
                return PlainTextResponse(str(request.session.get("user_id")))

            app = Starlette(routes=[Route("/me", me)],
                            middleware=[Middleware(SessionMiddleware, manager=memsession_manager)])
            user = memsession_login({"user_id": 9})
            with TestClient(app) as client:
                client.cookies.set(user.cookie_name, user.cookie_value)
                assert client.get("/me").text == "9"
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


# --- the helpers themselves --------------------------------------------------------


def test_fake_clock_moves_only_forward() -> None:
    clock = FakeClock(10)
    assert clock() == 10.0 and clock.advance(2.5) == 12.5
    clock.set(20)
    assert clock() == 20.0
    with pytest.raises(ValueError, match="negative"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="earlier"):
        clock.set(5)
    with pytest.raises(TypeError, match="seconds"):
        clock.advance("1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        FakeClock(float("inf"))


def test_parse_set_cookie_reads_every_attribute() -> None:
    c = parse_set_cookie("sid=abc; Max-Age=150; Path=/; Domain=example.org; Secure; HttpOnly; SameSite=Lax")
    assert (c.name, c.value, c.max_age, c.path, c.domain) == ("sid", "abc", 150, "/", "example.org")
    assert c.secure and c.httponly and c.samesite == "Lax" and not c.deletes
    gone = parse_set_cookie("sid=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/")
    assert gone.deletes and gone.value == ""
    assert parse_set_cookie("sid=x").max_age is None
    with pytest.raises(ValueError, match="not a Set-Cookie"):
        parse_set_cookie("garbage")
    assert find_set_cookie(["a=1", "sid=2", "sid=3"], "sid").value == "3"  # type: ignore[union-attr]
    assert find_set_cookie(["a=1"], "sid") is None


def test_start_session_checks_its_arguments(manager: Manager) -> None:
    with pytest.raises(TypeError, match="manager"):
        start_session("memory", {"a": 1})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        start_session(manager, {})
