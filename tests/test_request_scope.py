"""One session object per request: flags, identity and regenerate/destroy stay with their request.

Concurrent requests are ordered with Events and Barriers the test controls
(a request is parked inside the app until the test lets it go), never with
sleeps, over a real threaded WSGI server, a real Starlette app and Flask.
"""

from __future__ import annotations

import json
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any, Callable, Optional
from urllib.parse import parse_qs

import pytest

import memsession
from memsession import Manager, RequestSession
from memsession.testing import SetCookie, find_set_cookie

from .webserver import serving, serving_asgi

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:uvicorn")

WAIT = 10.0  # seconds a parked request or the test waits before calling it a hang
COOKIE = "sid"  # the conftest `manager` fixture's cookie name


# --- a real HTTP client without a cookie jar: every Cookie header is explicit ----------


Response = tuple[int, Any, str]


def fetch(base: str, path: str, cookie: Optional[str] = None) -> Response:
    """GET base+path sending exactly the given session id (or none)."""
    headers = {"Cookie": f"{COOKIE}={cookie}"} if cookie else {}
    req = urllib.request.Request(base + path, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=WAIT) as resp:
            return resp.status, resp.headers, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read().decode()


def set_cookies(headers: Any) -> list[str]:
    return headers.get_all("Set-Cookie") or []


def session_cookie(headers: Any) -> Optional[SetCookie]:
    return find_set_cookie(set_cookies(headers), COOKIE)


class InFlight:
    """A request running in a thread of its own; result() waits for its response."""

    def __init__(self, base: str, path: str, cookie: Optional[str]) -> None:
        self._out: list[Response] = []
        self._errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, args=(base, path, cookie), daemon=True)
        self._thread.start()

    def _run(self, base: str, path: str, cookie: Optional[str]) -> None:
        try:
            self._out.append(fetch(base, path, cookie))
        except BaseException as exc:  # reported by result()
            self._errors.append(exc)

    def result(self) -> Response:
        self._thread.join(WAIT)
        assert not self._thread.is_alive(), "the request never finished"
        if self._errors:
            raise self._errors[0]
        return self._out[0]


class Gate:
    """A point inside the app where a request parks until the test opens the gate."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.opened = threading.Event()

    def __call__(self) -> None:  # runs in the server's request thread
        self.arrived.set()
        if not self.opened.wait(WAIT):
            raise RuntimeError("the test never opened this gate")

    def wait_arrival(self) -> None:
        assert self.arrived.wait(WAIT), "the request never reached its gate"

    def open(self) -> None:
        self.opened.set()


class Gates(dict[str, Gate]):
    def __missing__(self, name: str) -> Gate:
        gate = self[name] = Gate()
        return gate


# --- the WSGI app: each path is one step of a login / logout / write scenario ----------


def scenario_app(
    manager: Manager,
    gates: Gates,
    seen: Optional[list[Any]] = None,
    barrier: Optional[threading.Barrier] = None,
) -> Any:
    from memsession.wsgi import ENVIRON_KEY, SessionMiddleware

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session = environ[ENVIRON_KEY]
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        path = environ["PATH_INFO"]

        def gate(name: str) -> None:
            if name in query:
                gates[query[name]]()

        out: dict[str, Any] = {}
        gate("before")
        if path == "/seed":
            session["cart"] = "apple"
        elif path == "/attack":
            out["saw"] = session.get("cart")  # the attacker holds the pre-login session
            gate("mid")
            out["user"] = session.get("user")
            session["evil"] = "planted"
        elif path == "/login":
            manager.session_regenerate(session)
            session["user"] = "ann"
        elif path == "/logout":
            manager.session_destroy(session)
        elif path == "/write":
            session["late"] = "from B"
        elif path == "/touch":
            session.get("cart")
        elif path == "/both":
            assert seen is not None and barrier is not None
            seen.append(session)  # kept alive by the test: ids are never reused
            barrier.wait(WAIT)  # both requests hold their sessions at once
            session[query["key"]] = query["key"]
            barrier.wait(WAIT)
        gate("after")
        if path in ("/static", "/touch"):
            out["accessed"] = session.accessed  # reading the flag is no access
        else:
            out["data"] = dict(session.items())
        out["sid"] = session.sid
        body = json.dumps(out).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return SessionMiddleware(app, manager)


@pytest.fixture
def gates() -> Iterator[Gates]:
    g = Gates()
    yield g
    for gate in g.values():  # never leave a server thread parked
        gate.open()


def seed(base: str) -> str:
    """A stored session holding a cart; return its id."""
    status, headers, _ = fetch(base, "/seed")
    cookie = session_cookie(headers)
    assert status == 200 and cookie is not None and not cookie.deletes
    return cookie.value


# --- session fixation through regenerate ------------------------------------------------


def test_regenerate_never_hands_a_parked_request_the_logged_in_session(
    manager: Manager, provider: Any, gates: Gates
) -> None:
    with serving(scenario_app(manager, gates)) as base:
        for run in range(5):
            old = seed(base)
            attacker = InFlight(base, f"/attack?mid=a{run}", old)
            gates[f"a{run}"].wait_arrival()  # the attacker's request holds the pre-login id

            status, headers, body = fetch(base, "/login", old)
            login = session_cookie(headers)
            assert status == 200 and login is not None and not login.deletes
            new = login.value
            assert new != old and json.loads(body) == {"data": {"cart": "apple", "user": "ann"}, "sid": new}

            gates[f"a{run}"].open()
            status, headers, body = attacker.result()
            seen = json.loads(body)
            assert status == 200
            assert seen["saw"] == "apple" and seen["user"] is None  # never the victim's login
            assert seen["sid"] == old
            assert all(new not in value for value in set_cookies(headers))
            leaked = session_cookie(headers)
            assert leaked is None or leaked.deletes  # no live session cookie at all

            assert old not in provider and provider.session_read(old) is None
            _, headers, body = fetch(base, "/peek", old)  # the old id is dead for good
            after = json.loads(body)
            assert after["data"] == {} and after["sid"] not in (old, new)
            _, _, body = fetch(base, "/peek", new)
            assert json.loads(body) == {"data": {"cart": "apple", "user": "ann"}, "sid": new}  # no "evil"


def test_a_websocket_opened_before_login_never_sees_or_reaches_the_new_session(
    manager: Manager, provider: Any
) -> None:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.testclient import TestClient
    from starlette.websockets import WebSocket

    from memsession.asgi import SessionMiddleware

    async def seed_view(request: Request) -> JSONResponse:
        session: RequestSession = request.scope["session"]
        session["cart"] = "apple"
        return JSONResponse({"sid": session.sid})

    async def login(request: Request) -> JSONResponse:
        session: RequestSession = request.scope["session"]
        manager.session_regenerate(session)
        session["user"] = "ann"
        return JSONResponse({"sid": session.sid})

    async def peek(request: Request) -> JSONResponse:
        session: RequestSession = request.scope["session"]
        return JSONResponse({"data": dict(session.items()), "sid": session.sid})

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        session = websocket.scope["session"]
        await websocket.send_json({"sid": session.sid, "cart": session.get("cart")})
        assert await websocket.receive_text() == "go"  # the victim has logged in meanwhile
        user = session.get("user")
        session["ws"] = "planted"
        await websocket.send_json({"sid": session.sid, "user": user})
        await websocket.close()

    app = Starlette(
        routes=[
            Route("/seed", seed_view),
            Route("/login", login),
            Route("/peek", peek),
            WebSocketRoute("/ws", ws),
        ],
        middleware=[Middleware(SessionMiddleware, manager=manager)],
    )

    def get(client: TestClient, path: str, sid: Optional[str]) -> Any:
        client.cookies.clear()  # only the explicit header names a session
        response = client.get(path, headers={"Cookie": f"{COOKIE}={sid}"} if sid else {})
        client.cookies.clear()
        return response

    with TestClient(app) as client:
        for _ in range(5):
            old = get(client, "/seed", None).json()["sid"]
            with client.websocket_connect("/ws", headers={"Cookie": f"{COOKIE}={old}"}) as socket:
                assert socket.receive_json() == {"sid": old, "cart": "apple"}
                response = get(client, "/login", old)
                new = response.json()["sid"]
                assert new != old and response.cookies[COOKIE] == new
                socket.send_text("go")
                assert socket.receive_json() == {"sid": old, "user": None}
            assert old not in provider
            assert get(client, "/peek", new).json() == {"data": {"cart": "apple", "user": "ann"}, "sid": new}
            stale = get(client, "/peek", old).json()
            assert stale["data"] == {} and stale["sid"] not in (old, new)


def test_regenerate_copies_the_data_while_a_concurrent_request_of_the_session_writes(
    manager: Manager, provider: Any
) -> None:
    """Another request keeps adding keys to the shared record while logins copy it."""
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter allows
    try:
        for round_ in range(50):
            first = manager.session_start(None)
            first.update({f"k{i}": [i, {"n": i}] for i in range(200)})
            cookie = (manager.session_cookie(first) or "").split(";")[0]
            other = manager.session_start(cookie)
            victim = manager.session_start(cookie)
            stop = threading.Event()

            def keep_writing(other: RequestSession, stop: threading.Event) -> None:
                n = 0
                while not stop.is_set() and n < 100_000:
                    other[f"late{n}"] = n
                    n += 1

            writer = threading.Thread(target=keep_writing, args=(other, stop), daemon=True)
            writer.start()
            try:
                manager.session_regenerate(victim)  # must not fail however the threads interleave
            finally:
                stop.set()
                writer.join(WAIT)
            victim["user"] = "ann"
            assert victim.sid != other.sid and victim["k7"] == [7, {"n": 7}]
            assert victim["k7"] is not other["k7"]  # containers are copied, not shared
            fresh = manager.session_cookie(victim)
            assert fresh is not None and victim.sid in fresh and other.sid not in provider
            assert "user" not in other, f"round {round_}: the old id's request saw the login"
    finally:
        sys.setswitchinterval(old_interval)


# --- logout racing a write ----------------------------------------------------------------

# Each ordering of request B (started first, same cookie, writes a key) and
# request A (logs out): (where B parks, where A parks or None).
ORDERINGS = {
    "B writes after A's whole logout": ("before", None),
    "B responds after A's whole logout": ("after", None),
    "A responds after B's whole write": ("before", "after"),
}


@pytest.mark.parametrize("ordering", sorted(ORDERINGS))
def test_logout_racing_a_write_ends_the_session_and_the_write_creates_nothing(
    manager: Manager, provider: Any, gates: Gates, ordering: str
) -> None:
    b_gate, a_gate = ORDERINGS[ordering]
    with serving(scenario_app(manager, gates)) as base:
        sid = seed(base)
        b = InFlight(base, f"/write?{b_gate}=b", sid)
        gates["b"].wait_arrival()  # B holds the live session
        a_path = "/logout" + (f"?{a_gate}=a" if a_gate else "")
        a = InFlight(base, a_path, sid)
        if a_gate:
            gates["a"].wait_arrival()  # A destroyed the session but has not responded
            gates["b"].open()
            b_response = b.result()
            gates["a"].open()
            a_response = a.result()
        else:
            a_response = a.result()
            gates["b"].open()
            b_response = b.result()

        status, headers, _ = a_response
        expired = session_cookie(headers)
        assert status == 200 and expired is not None and expired.deletes  # logout always expires it

        status, headers, body = b_response
        assert status == 200 and json.loads(body)["data"]["late"] == "from B"
        assert set_cookies(headers) == []  # B is told of no session, old or new

        assert len(provider) == 0  # nothing stored: not the old id, not a new one
        assert sid not in provider
        after = json.loads(fetch(base, "/peek", sid)[2])
        assert after["data"] == {} and after["sid"] != sid


# --- per-request flags and identity --------------------------------------------------------


def test_accessed_resets_for_the_next_request_of_the_session(manager: Manager, gates: Gates) -> None:
    with serving(scenario_app(manager, gates)) as base:
        sid = seed(base)
        _, headers, body = fetch(base, "/touch", sid)
        assert json.loads(body) == {"accessed": True, "sid": sid}
        assert headers.get_all("Vary") == ["Cookie"]
        _, headers, body = fetch(base, "/static", sid)
        assert json.loads(body) == {"accessed": False, "sid": sid}
        assert headers.get_all("Vary") is None and set_cookies(headers) == []


def test_accessed_is_per_request_at_the_manager(manager: Manager) -> None:
    first = manager.session_start(None)
    first["cart"] = "apple"
    header = manager.session_cookie(first)
    assert header is not None
    cookie = header.split(";")[0]
    touching = manager.session_start(cookie)
    assert touching.get("cart") == "apple" and touching.accessed
    untouched = manager.session_start(cookie)
    assert untouched.accessed is False and untouched.modified is False and untouched.new is False
    assert touching.accessed  # the other request's flag is its own


def test_concurrent_requests_get_their_own_session_objects_and_both_writes_land(
    manager: Manager, provider: Any, gates: Gates
) -> None:
    seen: list[Any] = []
    barrier = threading.Barrier(2)
    with serving(scenario_app(manager, gates, seen, barrier)) as base:
        sid = seed(base)
        one = InFlight(base, "/both?key=left", sid)
        two = InFlight(base, "/both?key=right", sid)
        assert one.result()[0] == 200 and two.result()[0] == 200
        assert len(seen) == 2 and seen[0] is not seen[1]
        assert all(type(s) is RequestSession for s in seen)
        assert seen[0].sid == seen[1].sid == sid
        body = json.loads(fetch(base, "/peek", sid)[2])
        assert body == {"data": {"cart": "apple", "left": "left", "right": "right"}, "sid": sid}
        assert dict(provider.session_read(sid)) == {"cart": "apple", "left": "left", "right": "right"}


# --- wrong arguments to the Manager -------------------------------------------------------


NOT_A_REQUEST_SESSION: dict[str, Callable[[Any], Any]] = {
    "None": lambda provider: None,
    "a dict": lambda provider: {"user": "ann"},
    "an id string": lambda provider: "A" * 43,
    "a store Session": lambda provider: provider.session_init("B" * 43),
}


@pytest.mark.parametrize("method", ["session_cookie", "session_destroy", "session_regenerate"])
@pytest.mark.parametrize("wrong", sorted(NOT_A_REQUEST_SESSION))
def test_manager_methods_reject_what_session_start_did_not_return(
    manager: Manager, provider: Any, method: str, wrong: str
) -> None:
    value = NOT_A_REQUEST_SESSION[wrong](provider)
    with pytest.raises(TypeError, match=r"\bsession\b"):
        getattr(manager, method)(value)
    if wrong == "a store Session":
        assert "B" * 43 in provider  # nothing stored was touched


@pytest.mark.parametrize("method", ["session_cookie", "session_destroy", "session_regenerate"])
def test_a_session_from_another_manager_is_a_value_error(
    manager: Manager, provider: Any, method: str
) -> None:
    with Manager(type(provider)(), COOKIE, 100) as other:
        foreign = other.session_start(None)
        foreign["user"] = "ann"
        with pytest.raises(ValueError, match="another Manager"):
            getattr(manager, method)(foreign)
        assert foreign.sid and dict(foreign) == {"user": "ann"}
    assert isinstance(foreign, memsession.Session)


# --- Vary: merged into the app's own, never repeated ------------------------------------------


def vary_wsgi(manager: Manager) -> Any:
    from memsession.wsgi import ENVIRON_KEY, SessionMiddleware

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session = environ[ENVIRON_KEY]
        vary = parse_qs(environ["QUERY_STRING"])["vary"][0]
        if environ["PATH_INFO"] == "/write":
            session["n"] = 1
        else:
            session.get("n")
        start_response("200 OK", [("Content-Type", "text/plain"), ("Vary", vary), ("Content-Length", "2")])
        return [b"ok"]

    return SessionMiddleware(app, manager)


def vary_flask(manager: Manager) -> Any:
    from flask import Flask, make_response, request, session

    import memsession.flask

    app = Flask(__name__)
    memsession.flask.init_app(app, manager)

    @app.route("/<name>")
    def view(name: str) -> Any:
        if name == "write":
            session["n"] = 1
        else:
            session.get("n")
        response = make_response("ok")
        response.headers["Vary"] = request.args["vary"]
        return response

    return app


def vary_starlette(manager: Manager) -> Any:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from memsession.asgi import SessionMiddleware

    async def view(request: Request) -> PlainTextResponse:
        if request.path_params["name"] == "write":
            request.session["n"] = 1
        else:
            request.session.get("n")
        return PlainTextResponse("ok", headers={"Vary": request.query_params["vary"]})

    return Starlette(
        routes=[Route("/{name}", view)],
        middleware=[Middleware(SessionMiddleware, manager=manager)],
    )


VARY_STACKS: dict[str, tuple[Callable[[Manager], Any], Any]] = {
    "wsgi": (vary_wsgi, serving),
    "flask": (vary_flask, serving),
    "asgi": (vary_starlette, serving_asgi),
}


@pytest.mark.parametrize(("own", "expected"), [("Cookie", "Cookie"), ("Accept", "Accept, Cookie")])
@pytest.mark.parametrize("stack", sorted(VARY_STACKS))
def test_vary_cookie_is_merged_into_the_apps_own_vary_once(
    provider: Any, stack: str, own: str, expected: str
) -> None:
    build, serve = VARY_STACKS[stack]
    with Manager(provider, COOKIE, 100) as manager, serve(build(manager)) as base:
        status, headers, _ = fetch(base, f"/write?vary={own}")
        cookie = session_cookie(headers)
        assert status == 200 and cookie is not None  # the write stored a session
        assert headers.get_all("Vary") == [expected]
        status, headers, _ = fetch(base, f"/read?vary={own}", cookie.value)  # accessed, no Set-Cookie
        assert status == 200 and set_cookies(headers) == []
        assert headers.get_all("Vary") == [expected]
