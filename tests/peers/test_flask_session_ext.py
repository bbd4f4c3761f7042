"""Flask-Session's app checks, run after replacing ``Session(app)`` by ``memsession.flask.init_app(app)``.

Flask-Session (pallets-eco/flask-session 0.8) checks every backend with one
app (tests/conftest.py ``app_utils``: set, get, modify and delete a value
across requests, Vary, the session cookie) and then looks the session up in
the backend's own storage (tests/test_redis.py and friends). The same app
and the same config dicts are used here, with only the install call
changed; where Flask-Session itself can run (Redis), the very same checks
run against it too, as the control.

Redis tests use the suite's private redis-server (tests/conftest.py
``redis_server``), each under a key prefix of its own, and delete only the
keys they made.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, Callable

import flask
import pytest
from flask import Flask

import memsession
import memsession.flask
from memsession import RequestSession
from memsession.testing import SetCookie, parse_set_cookie

redis = pytest.importorskip("redis")

Install = Callable[[Flask], Any]


def install_memsession(app: Flask) -> None:
    memsession.flask.init_app(app)


def install_flask_session(app: Flask) -> None:
    flask_session = pytest.importorskip("flask_session")
    flask_session.Session(app)


def create_app(
    config: dict[str, Any], install: Install = install_memsession, *, conftest: bool = True
) -> Flask:
    """Flask-Session's app_utils.create_app, with the install step as a parameter.

    conftest=False leaves out the SESSION_PERMANENT=False that Flask-Session's
    test app adds, to see the extension's own default.
    """
    app = flask.Flask(__name__)
    app.config.update(config)
    app.config["SESSION_SERIALIZATION_FORMAT"] = "json"  # Flask-Session's key; memsession ignores it
    if conftest:
        app.config.setdefault("SESSION_PERMANENT", False)

    @app.route("/", methods=["GET"])
    def app_hello() -> str:
        return "hello world"

    @app.route("/set", methods=["POST"])
    def app_set() -> str:
        flask.session["value"] = flask.request.form["value"]
        return "value set"

    @app.route("/modify", methods=["POST"])
    def app_modify() -> str:
        flask.session["value"] = flask.request.form["value"]
        return "value set"

    @app.route("/delete", methods=["POST"])
    def app_del() -> str:
        del flask.session["value"]
        return "value deleted"

    @app.route("/get")
    def app_get() -> str:
        return str(flask.session.get("value", "no value set"))

    @app.route("/permanent")
    def app_permanent() -> str:
        return str(flask.session.permanent)

    install(app)
    return app


def check_session(app: Flask) -> None:
    """Flask-Session's app_utils.test_session: set, read, modify, delete across requests; Vary."""
    client = app.test_client()
    assert client.get("/get").data not in [b"42", b"43", b"44"]
    assert "Vary" not in client.get("/").headers
    assert client.post("/set", data={"value": "42"}).data == b"value set"
    assert client.get("/get").data == b"42"
    assert client.get("/get").headers["Vary"] == "Cookie"
    assert client.post("/modify", data={"value": "43"}).data == b"value set"
    assert client.get("/get").data == b"43"
    assert client.post("/delete").data == b"value deleted"
    assert client.get("/get").data == b"no value set"


def session_cookie(app: Flask, value: str = "44") -> SetCookie:
    """Flask-Session's app_utils.test_session_with_cookie: the response to a write sets "session=<id>"."""
    response = app.test_client().post("/set", data={"value": value})
    found = [parse_set_cookie(h) for h in response.headers.getlist("Set-Cookie") if h.startswith("session=")]
    assert len(found) == 1, "Session cookie was not set."
    return found[0]


@pytest.fixture
def redis_client(redis_server: Any) -> Iterator[Any]:
    """A redis.Redis client on the suite's test server."""
    if redis_server.proc is None:
        redis_server.start()
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


@pytest.fixture
def prefix(redis_client: Any) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    mine = f"peers-{uuid.uuid4().hex[:8]}:"
    yield mine
    for key in list(redis_client.scan_iter(match=mine + "*")):
        redis_client.delete(key)


@pytest.fixture(params=["memsession", "memory", "redis"])
def backend_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Each SESSION_TYPE memsession serves, configured as a Flask-Session app would be."""
    if request.param != "redis":
        return {"SESSION_TYPE": request.param}
    client = request.getfixturevalue("redis_client")
    return {
        "SESSION_TYPE": "redis",
        "SESSION_REDIS": client,
        "SESSION_KEY_PREFIX": request.getfixturevalue("prefix"),
    }


# -- the shared app checks ----------------------------------------------------------------


def test_app_checks_over_each_backend(backend_config: dict[str, Any]) -> None:
    """Flask-Session app_utils.test_session, each backend: set/get/modify/delete across requests, Vary."""
    app = create_app(backend_config)
    check_session(app)


def test_flask_session_control_passes_the_same_checks(redis_client: Any, prefix: str) -> None:
    """Control: the same checks and config pass under Flask-Session's own Session(app) (Redis backend).

    So what the other tests check is the peer's behaviour, not memsession's
    idea of it.
    """
    config = {"SESSION_TYPE": "redis", "SESSION_REDIS": redis_client, "SESSION_KEY_PREFIX": prefix}
    app = create_app(config, install_flask_session)
    check_session(app)
    assert session_cookie(app).name == "session"


def test_flask_session_is_a_memsession_session(backend_config: dict[str, Any]) -> None:
    """Flask-Session test_redis_default: in a request context flask.session is the extension's class.

    Here memsession.RequestSession, with the ``sid`` attribute Flask-Session's
    ServerSideSession has, equal to the cookie's value once stored.
    """
    app = create_app(backend_config)

    @app.route("/sid")
    def sid() -> str:
        flask.session["k"] = "v"
        return str(flask.session.sid)  # type: ignore[attr-defined]

    with app.test_request_context():
        assert isinstance(flask.session._get_current_object(), RequestSession)  # type: ignore[attr-defined]
    response = app.test_client().get("/sid")
    assert parse_set_cookie(response.headers["Set-Cookie"]).value == response.text


def test_session_with_cookie(backend_config: dict[str, Any]) -> None:
    """Flask-Session app_utils.test_session_with_cookie: a write sets the "session" cookie."""
    cookie = session_cookie(create_app(backend_config))
    assert cookie.name == "session" and len(cookie.value) == 43


# -- storage in Redis ------------------------------------------------------------------------


def test_redis_default_stores_under_session_prefix(redis_client: Any) -> None:
    """Flask-Session test_redis_default: SESSION_TYPE="redis", SESSION_REDIS; stored at "session:<id>".

    Same key as Flask-Session ("session:" is the default SESSION_KEY_PREFIX).
    Deliberate difference: the key holds a Redis hash, one JSON field per
    session key ("d:value" = '"44"'), not one serialized blob, so two
    requests writing different keys never overwrite each other.
    """
    app = create_app({"SESSION_TYPE": "redis", "SESSION_REDIS": redis_client})
    cookie = session_cookie(app)
    key = f"session:{cookie.value}"
    try:
        assert redis_client.type(key) == b"hash"
        assert redis_client.hget(key, "d:value") == b'"44"'
    finally:
        redis_client.delete(key)


def test_key_prefix_is_the_redis_key_prefix(redis_client: Any, prefix: str) -> None:
    """Flask-Session SESSION_KEY_PREFIX: every session's Redis key is <prefix><id>, and there is no other."""
    app = create_app({"SESSION_TYPE": "redis", "SESSION_REDIS": redis_client, "SESSION_KEY_PREFIX": prefix})
    ids = {session_cookie(app, str(n)).value for n in range(3)}
    keys = {k.decode() for k in redis_client.scan_iter(match=prefix + "*")}
    assert keys == {prefix + sid for sid in ids}
    for sid in ids:
        assert redis_client.exists(f"session:{sid}") == 0
    # And the data comes back through the app.
    client = app.test_client()
    client.post("/set", data={"value": "x"})
    assert client.get("/get").text == "x"


def test_redis_key_lives_as_long_as_the_session(redis_client: Any, prefix: str) -> None:
    """Flask-Session's Redis backend stores each session with ex=PERMANENT_SESSION_LIFETIME.

    A stored session must stay in Redis for its whole idle lifetime: with
    Flask's default of 31 days, a user who logs in and comes back two days
    later must still be logged in. The key's TTL right after the write must
    therefore be at least the lifetime.
    """
    lifetime = timedelta(days=31)
    app = create_app(
        {
            "SESSION_TYPE": "redis",
            "SESSION_REDIS": redis_client,
            "SESSION_KEY_PREFIX": prefix,
            "PERMANENT_SESSION_LIFETIME": lifetime,
        }
    )
    cookie = session_cookie(app)
    ttl_ms = redis_client.pttl(prefix + cookie.value)
    assert ttl_ms >= lifetime.total_seconds() * 1000 - 5000, (
        f"the session's Redis key expires in {ttl_ms / 3_600_000:.1f} h, "
        f"before its idle lifetime of {lifetime.total_seconds() / 3600:.0f} h"
    )


def test_redis_key_outlives_a_cookie_refresh(redis_client: Any, prefix: str) -> None:
    """Flask-Session re-stores the session with ex=PERMANENT_SESSION_LIFETIME on every save.

    memsession re-sends the cookie after half the lifetime; that refresh
    must leave the Redis key alive for the whole lifetime again. Time must
    pass (16 of 31 days), so a Manager over a RedisProvider on a fake clock
    (the provider's clock; Redis TTLs run on real time and are read as set).
    """
    from memsession import Manager
    from memsession.redis import RedisProvider
    from memsession.testing import FakeClock

    lifetime = 31 * 86400
    clock = FakeClock(1_700_000_000.0)
    provider = RedisProvider(client=redis_client, prefix=prefix, clock=clock)
    app = flask.Flask(__name__)
    memsession.flask.init_app(app, Manager(provider, "session", lifetime))

    @app.route("/set")
    def set_value() -> str:
        flask.session["value"] = "1"
        return str(flask.session.sid)  # type: ignore[attr-defined]

    @app.route("/get")
    def get_value() -> str:
        return str(flask.session.get("value"))

    client = app.test_client()
    key = prefix + client.get("/set").text
    clock.advance(16 * 86400)
    response = client.get("/get")
    assert response.text == "1" and "Set-Cookie" in response.headers  # the refresh
    ttl_ms = redis_client.pttl(key)
    assert ttl_ms >= lifetime * 1000 - 5000, (
        f"after the cookie refresh the session's Redis key expires in {ttl_ms / 3_600_000:.1f} h, "
        f"not after the idle lifetime of {lifetime / 3600:.0f} h"
    )


# -- permanent --------------------------------------------------------------------------------


def test_permanent_by_default_with_session_type(backend_config: dict[str, Any]) -> None:
    """Flask-Session SESSION_PERMANENT defaults to True: with SESSION_TYPE set, the cookie has an expiry.

    Deliberate difference: Max-Age is 1.5x PERMANENT_SESSION_LIFETIME (no
    Expires). SESSION_PERMANENT=False (as Flask-Session's own test app sets)
    gives a browser-session cookie.
    """
    config = {**backend_config, "PERMANENT_SESSION_LIFETIME": timedelta(hours=1)}
    app = create_app(config, conftest=False)
    client = app.test_client()
    response = client.post("/set", data={"value": "1"})
    assert parse_set_cookie(response.headers["Set-Cookie"]).max_age == 5400
    assert client.get("/permanent").text == "True"

    not_permanent = create_app(config)  # SESSION_PERMANENT=False
    client = not_permanent.test_client()
    assert session_cookie(not_permanent).max_age is None
    client.post("/set", data={"value": "1"})
    assert client.get("/permanent").text == "False"


def test_session_permanent_true_explicit(backend_config: dict[str, Any]) -> None:
    """Flask-Session SESSION_PERMANENT=True: session.permanent is True and the cookie carries Max-Age."""
    app = create_app({**backend_config, "SESSION_PERMANENT": True, "PERMANENT_SESSION_LIFETIME": 600})
    client = app.test_client()
    response = client.post("/set", data={"value": "1"})
    assert parse_set_cookie(response.headers["Set-Cookie"]).max_age == 900
    assert client.get("/permanent").text == "True"


# -- configuration errors and warnings ---------------------------------------------------------


def test_use_signer_warns_it_has_no_effect(backend_config: dict[str, Any]) -> None:
    """Flask-Session SESSION_USE_SIGNER (deprecated there): signs the id with SECRET_KEY.

    memsession gives a ConfigWarning explaining it has no effect (the id is
    256 random bits); the app works, with or without SECRET_KEY.
    """
    with pytest.warns(memsession.ConfigWarning, match="SESSION_USE_SIGNER.*no effect"):
        app = create_app({**backend_config, "SESSION_USE_SIGNER": True})
    check_session(app)


def test_no_warning_for_plain_flask_session_config(backend_config: dict[str, Any]) -> None:
    """A Flask-Session config without SESSION_USE_SIGNER migrates silently (no ConfigWarning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", memsession.ConfigWarning)
        create_app(backend_config)


@pytest.mark.parametrize(
    "kind", ["null", "filesystem", "cachelib", "memcached", "mongodb", "sqlalchemy", "bogus"]
)
def test_unknown_session_type_is_a_value_error(kind: str) -> None:
    """Flask-Session test_null_session: an unusable SESSION_TYPE is a ValueError at install time.

    memsession serves "memsession"/"memory" and "redis"; any other type
    (Flask-Session's other backends included) is a ValueError naming it.
    """
    with pytest.raises(ValueError, match=kind):
        create_app({"SESSION_TYPE": kind})


def test_without_session_type_the_memory_store_is_used() -> None:
    """Flask-Session test_null_session: no SESSION_TYPE ("null") is a ValueError there.

    Deliberate difference: without SESSION_TYPE memsession uses its in-memory
    store, with Flask's defaults (session.permanent False).
    """
    app = flask.Flask(__name__)
    memsession.flask.init_app(app)

    @app.route("/")
    def index() -> str:
        flask.session["x"] = 1
        return str(flask.session.permanent)

    response = app.test_client().get("/")
    assert response.text == "False" and "Max-Age" not in response.headers["Set-Cookie"]


def test_session_type_is_case_insensitive(redis_client: Any, prefix: str) -> None:
    """Flask-Session lower-cases SESSION_TYPE (``SESSION_TYPE.lower()``): "Redis" selects the Redis backend.

    An app configured with SESSION_TYPE="Redis" works under Flask-Session and
    must keep working after the switch.
    """
    app = create_app({"SESSION_TYPE": "Redis", "SESSION_REDIS": redis_client, "SESSION_KEY_PREFIX": prefix})
    cookie = session_cookie(app)
    assert redis_client.exists(prefix + cookie.value) == 1


def test_store_settings_are_read_once(redis_client: Any, prefix: str) -> None:
    """Flask-Session reads SESSION_TYPE/SESSION_REDIS/SESSION_KEY_PREFIX once, at Session(app).

    Changing SESSION_KEY_PREFIX afterwards does not move the sessions: they
    stay readable, under the prefix in force at init_app.
    """
    app = create_app({"SESSION_TYPE": "redis", "SESSION_REDIS": redis_client, "SESSION_KEY_PREFIX": prefix})
    client = app.test_client()
    client.post("/set", data={"value": "kept"})
    app.config["SESSION_KEY_PREFIX"] = "peers-other:"
    assert client.get("/get").text == "kept"
    sid = client.get_cookie("session").value  # type: ignore[union-attr]
    assert redis_client.exists(prefix + sid) == 1
    assert redis_client.exists("peers-other:" + sid) == 0
