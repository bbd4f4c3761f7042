"""Requests/s end to end: real servers under wrk, one session key read and written per request.

Two groups, one per server, each with the same view behind every session
store: GET / adds one to the session's counter "n" and answers its new
value as text.

- uvicorn (one worker) + Starlette: a tiny middleware handing every request
  the same plain dict as scope["session"] (the floor: no store),
  memsession.asgi.SessionMiddleware with the memory provider, and
  Starlette's own SessionMiddleware (a signed cookie).
- gunicorn (one sync worker) + Flask: a session interface handing every
  request the same plain dict (the floor), memsession.flask.init_app(app)
  (the memory provider), Flask's own signed-cookie session, and
  Flask-Session with cachelib's SimpleCache (in the worker's memory).

The floors answer as a session does and ignore the cookie: a cookie of the
same shape as memsession's on an answer to a request without one, and
`Vary: Cookie` on every answer (a response that depends on a cookie must say
so to caches; memsession and Flask's own session send it). Every variant's
traffic then carries the same headers both ways (which wrk's script formats
and reads, and the server parses and writes, on the same two cores), so what
the floor leaves out is the session store's work alone.

Every variant gets its own server on a free port of 127.0.0.1, all of a
group started at once. Before any timing each is checked over plain HTTP:
the counter must reach 1, 2, 3 for one cookie and start again at 1 without
it (the floor's shared counter must just grow), then wrk warms it up.

wrk drives them with benchmarks/e2e.lua: CONNECTIONS connections, one per
wrk thread, each keeping its own cookie (the first request has none; any
Set-Cookie replaces it). The script compares every answer with the one
before on its connection, and check() fails the run unless, with a session,
each was exactly one more: a variant that lost or mixed up sessions is not
timed. Any answer but 200, or a socket error, fails it too.

Runs are interleaved, in an order where every server follows every other
one equally often and never itself (balanced_order). A plain rotation
gives each server the same predecessor in most rounds, and the order alone
moved the ratio by several percent. wrk runs for a time, so the group
times itself; the times are seconds per request (1 / requests per second),
like every other group's. The bar: memsession's requests/s within 5% of the
floor's on each server (floor / memsession <= 1.05).

`python -m benchmarks` runs them after the other groups; `python -m
benchmarks --e2e` runs these two alone.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .asgi_latency import LatencyGroup
from .runner import Candidate, Progress
from .workers import find_wrk

__all__ = [
    "CONNECTIONS",
    "E2EGroup",
    "FLASK",
    "FLOOR_RATIO",
    "Load",
    "STARLETTE",
    "balanced_order",
    "describe",
    "e2e_groups",
    "e2e_rounds",
    "e2e_sizes",
    "flask_app",
    "starlette_app",
]

CONNECTIONS = 8  # wrk threads too: one connection each
FLOOR_RATIO = 1.05  # floor requests/s / memsession requests/s, at most
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "e2e.lua")
VARIANT = "MEMSESSION_E2E_VARIANT"  # which app a uvicorn child builds (its factory takes no arguments)
SECRET = "e2e-benchmark-" + "k" * 32
FLOOR = "floor"
OURS = "memsession"
# Per server: variant -> candidate name; memsession first (the table's ratios are to it), then the floor.
STARLETTE = {
    OURS: "memsession SessionMiddleware (memory)",
    FLOOR: "plain dict in scope (floor)",
    "cookie": "starlette SessionMiddleware (signed cookie)",
}
FLASK = {
    OURS: "flask + memsession (memory)",
    FLOOR: "flask + plain dict (floor)",
    "cookie": "flask + its signed-cookie session",
    "flask-session": "flask + Flask-Session (cachelib SimpleCache)",
}


@dataclass(frozen=True)
class E2ESizes:
    """Rounds, seconds per wrk run and per warm-up (whole seconds: wrk's unit)."""

    rounds: int
    seconds: int
    warmup: int


def e2e_sizes(quick: bool) -> E2ESizes:
    """Full sizes, or a smoke run of a few seconds per variant."""
    return E2ESizes(rounds=2, seconds=1, warmup=1) if quick else E2ESizes(rounds=15, seconds=2, warmup=2)


# -- the apps ------------------------------------------------------------------------


def starlette_app(variant: Optional[str] = None) -> Any:
    """The Starlette app of one uvicorn child (variant: the argument, else $MEMSESSION_E2E_VARIANT)."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    variant = variant or os.environ[VARIANT]

    async def count(request: Request) -> PlainTextResponse:
        session = request.session
        n = session.get("n", 0) + 1
        session["n"] = n
        return PlainTextResponse(str(n))

    if variant == FLOOR:
        middleware = Middleware(_SharedSession)
    elif variant == OURS:
        from memsession import Manager
        from memsession.asgi import SessionMiddleware

        middleware = Middleware(SessionMiddleware, manager=Manager("memory", "session", 1800.0))
    elif variant == "cookie":
        from starlette.middleware.sessions import SessionMiddleware as StarletteSessions

        middleware = Middleware(StarletteSessions, secret_key=SECRET)
    else:
        raise ValueError(f"no Starlette variant {variant!r}")
    return Starlette(routes=[Route("/", count)], middleware=[middleware])


FLOOR_COOKIE = "session=" + "f" * 43  # the floors' cookie: memsession's shape, never read
_FLOOR_SET_COOKIE = (b"set-cookie", FLOOR_COOKIE.encode() + b"; Path=/; HttpOnly; SameSite=Lax")
_FLOOR_VARY = (b"vary", b"Cookie")


class _SharedSession:
    """ASGI middleware: every http request gets the same plain dict as scope["session"].

    Every answer says Vary: Cookie, and one to a request without a cookie
    sets the floor's cookie, as a session's would.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.session: dict[str, Any] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope["session"] = self.session
        added = [_FLOOR_VARY]
        if not any(name == b"cookie" for name, _ in scope["headers"]):
            added.append(_FLOOR_SET_COOKIE)

        async def send_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *added]}
            await send(message)

        await self.app(scope, receive, send_headers)


def flask_app(variant: str) -> Any:
    """The Flask app of one gunicorn worker."""
    import flask

    app = flask.Flask("bench-e2e")

    @app.route("/")  # type: ignore[untyped-decorator]
    def count() -> str:
        session = flask.session
        n = session.get("n", 0) + 1
        session["n"] = n
        return str(n)

    if variant == FLOOR:
        app.session_interface = _shared_session_interface()
    elif variant == OURS:
        from memsession import flask as memsession_flask

        memsession_flask.init_app(app)
    elif variant == "cookie":
        app.config["SECRET_KEY"] = SECRET
    elif variant == "flask-session":
        from cachelib import SimpleCache
        from flask_session import Session

        app.config.update(SESSION_TYPE="cachelib", SESSION_CACHELIB=SimpleCache(threshold=10**6))
        Session(app)
    else:
        raise ValueError(f"no Flask variant {variant!r}")
    return app


def _shared_session_interface() -> Any:
    """A Flask session interface handing every request the same dict, saving nothing but a cookie once."""
    import flask
    from flask.sessions import SessionInterface, SessionMixin

    class PlainSession(dict, SessionMixin):  # type: ignore[type-arg]
        """A dict; SessionMixin only for the `accessed` flag Flask sets on it."""

    class SharedSessionInterface(SessionInterface):
        def __init__(self) -> None:
            self.session = PlainSession()

        def open_session(self, app: Any, request: Any) -> PlainSession:
            return self.session

        def save_session(self, app: Any, session: Any, response: Any) -> None:
            response.headers.add("Vary", "Cookie")
            if not flask.request.cookies:  # set once, as a session would
                response.headers.add("Set-Cookie", _FLOOR_SET_COOKIE[1].decode())

    return SharedSessionInterface()


# -- the servers ---------------------------------------------------------------------


def _uvicorn_argv(variant: str, port: int) -> list[str]:
    """One uvicorn worker; the variant reaches the app factory as $MEMSESSION_E2E_VARIANT."""
    options = f"--host 127.0.0.1 --port {port} --log-level warning --no-access-log"
    options += " --timeout-graceful-shutdown 5"
    return [sys.executable, "-m", "uvicorn", "--factory", "benchmarks.e2e:starlette_app", *options.split()]


def _gunicorn_argv(variant: str, port: int) -> list[str]:
    """One gunicorn sync worker."""
    options = f"-w 1 -k sync -b 127.0.0.1:{port} --log-level warning --graceful-timeout 5"
    return [sys.executable, "-m", "gunicorn", *options.split(), f"benchmarks.e2e:flask_app({variant!r})"]


@dataclass(frozen=True)
class _Server:
    """How one group's servers are started."""

    name: str  # uvicorn, gunicorn
    argv: Callable[[str, int], list[str]]


SERVERS = {"uvicorn": _Server("uvicorn", _uvicorn_argv), "gunicorn": _Server("gunicorn", _gunicorn_argv)}
STACKS = {"uvicorn": "uvicorn + Starlette", "gunicorn": "gunicorn + Flask"}


class _Process:
    """One server process serving one variant on a free loopback port."""

    def __init__(self, server: _Server, variant: str) -> None:
        from tests.redis_server import free_port

        self.label = f"{server.name} ({variant})"
        self.variant = variant
        self.port = free_port()
        self.errors = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            server.argv(variant, self.port),
            cwd=ROOT,
            env=dict(os.environ, **{VARIANT: variant}),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.errors,
        )

    def said(self) -> str:
        """What the server wrote to stderr so far."""
        self.errors.seek(0)
        return self.errors.read().decode(errors="replace").strip()

    def wait_listening(self, deadline: float) -> None:
        """Return once the port accepts connections; RuntimeError if the server died or took too long."""
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.label} did not start: {self.said()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)

    def get(self, cookie: Optional[str]) -> tuple[int, str, Optional[str]]:
        """(status, body, the name=value of any Set-Cookie) of GET / with that Cookie header."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/", headers={"Cookie": cookie} if cookie else {})
            answer = conn.getresponse()
            body = answer.read().decode(errors="replace")
            set_cookie = answer.getheader("Set-Cookie")
            return answer.status, body, set_cookie.split(";", 1)[0] if set_cookie else None
        finally:
            conn.close()

    def verify(self) -> None:
        """RuntimeError unless the view counts per session (per cookie), or in the one dict of the floor."""

        def count(cookie: Optional[str]) -> tuple[int, Optional[str]]:
            status, body, set_cookie = self.get(cookie)
            if status != 200 or not body.isdigit():
                raise RuntimeError(f"{self.label} answered {status} {body[:200]!r}: {self.said()}")
            return int(body), set_cookie or cookie

        first, cookie = count(None)
        second, cookie = count(cookie)
        third, cookie = count(cookie)
        fresh, _ = count(None)
        if self.variant == FLOOR:
            ok = cookie == FLOOR_COOKIE and first < second < third < fresh
            expected = f"a counter growing over every request, and the cookie {FLOOR_COOKIE!r}"
        else:
            ok = cookie is not None and (first, second, third, fresh) == (1, 2, 3, 1)
            expected = "1, 2, 3 for one cookie and 1 again without it"
        if not ok:
            raise RuntimeError(
                f"{self.label}: counted {first}, {second}, {third}, then {fresh} without a cookie "
                f"(cookie {cookie!r}); expected {expected}"
            )

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        said = self.said()
        self.errors.close()
        if "Traceback" in said:  # a failure in the server must not pass unseen
            print(f"{self.label}: {said}", file=sys.stderr)


# -- the load ------------------------------------------------------------------------


@dataclass
class Load:
    """One wrk run: requests, seconds, answers by status, and e2e.lua's counts (see check)."""

    requests: int
    seconds: float
    socket_errors: int
    answers: dict[str, int]
    counts: dict[str, int]

    @property
    def rps(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds


def run_wrk(wrk: str, port: int, seconds: int) -> Load:
    """Drive 127.0.0.1:port with e2e.lua for `seconds`."""
    proc = subprocess.run(
        [wrk, "-t", str(CONNECTIONS), "-c", str(CONNECTIONS), "-d", f"{seconds}s", "--timeout", "10s"]
        + ["-s", SCRIPT, f"http://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    found = re.search(r"^e2e-result (\{.*\})$", proc.stdout, re.M)
    if proc.returncode or found is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
    out = json.loads(found.group(1))
    return Load(
        out["requests"], out["duration_us"] / 1e6, out["socket_errors"], out["answers"], out["counts"]
    )


def check(label: str, variant: str, load: Load) -> None:
    """RuntimeError unless every answer was 200 and counted as the variant must count.

    With a session, every answer is one more than the one before on its
    connection and every connection holds a cookie at the end; the floor's
    counter, shared by all, only grows. memsession's and the floor's answers
    all say Vary: Cookie, so the two carry the same headers.
    """
    c = load.counts
    answered = sum(load.answers.values())
    problems = []
    if set(load.answers) - {"200"} or load.socket_errors:
        problems.append(f"answers {load.answers}, {load.socket_errors} socket errors")
    if c.get("counted", 0) != answered or answered != load.requests or answered == 0:
        problems.append(f"{c.get('counted', 0)} counters in {answered} answers to {load.requests} requests")
    if variant == FLOOR:
        if c.get("rising", 0) != answered:
            problems.append(f"the shared counter grew in only {c.get('rising', 0)} of {answered} answers")
    else:
        if c.get("in_step", 0) != answered:
            problems.append(
                f"only {c.get('in_step', 0)} of {answered} answers counted one more than the last"
            )
        if c.get("sessions", 0) != CONNECTIONS:
            problems.append(f"{c.get('sessions', 0)} of {CONNECTIONS} connections kept a cookie")
    if variant in (OURS, FLOOR) and c.get("vary_cookie", 0) != answered:
        problems.append(f"only {c.get('vary_cookie', 0)} of {answered} answers said Vary: Cookie")
    if problems:
        raise RuntimeError(f"{label} under wrk: " + "; ".join(problems))


class _Rig:
    """One group's servers, started at once, checked and warmed on first use."""

    def __init__(self, server: _Server, variants: list[str], wrk: str, warmup: int) -> None:
        self.server = server
        self.variants = variants
        self.wrk = wrk
        self.warmup = warmup
        self.processes: dict[str, _Process] = {}

    def start(self) -> None:
        if self.processes:
            return
        try:
            for variant in self.variants:
                self.processes[variant] = _Process(self.server, variant)
            deadline = time.monotonic() + 60
            for process in self.processes.values():
                process.wait_listening(deadline)
            for process in self.processes.values():
                process.verify()
                check(process.label, process.variant, run_wrk(self.wrk, process.port, self.warmup))
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        while self.processes:
            self.processes.popitem()[1].stop()

    def prepare(self, variant: str, seconds: int) -> Callable[[], Load]:
        """The servers up; the run is one checked wrk run against variant's (timed by wrk)."""
        self.start()
        process = self.processes[variant]

        def run() -> Load:
            load = run_wrk(self.wrk, process.port, seconds)
            check(process.label, variant, load)
            return load

        return run


def describe(runs: list[Load]) -> str:
    """How many answers set a cookie: a signed cookie is sent anew with each, a session id once."""
    answers = sum(m.requests for m in runs)
    set_cookie = sum(m.counts.get("set_cookie", 0) for m in runs)
    if not set_cookie:
        return "no Set-Cookie"
    if set_cookie == answers:
        return "Set-Cookie on every answer"
    return f"Set-Cookie on {set_cookie:,} of {answers:,} answers"


@dataclass
class E2EGroup(LatencyGroup):
    """One server's group: wrk runs for a time, so each run reports its own requests and seconds."""

    server: str = ""
    ours: str = ""  # memsession's candidate
    floor: str = ""  # the plain dict's
    runs: dict[str, list[Load]] = field(default_factory=dict)

    def measure(self, progress: Optional[Progress] = None) -> E2EGroup:
        """Run wrk against every server `rounds` times in a balanced order; seconds per request."""
        self.times = {c.name: [] for c in self.candidates}
        self.runs = {c.name: [] for c in self.candidates}
        for i in balanced_order(len(self.candidates), self.rounds):
            cand = self.candidates[i]
            if progress is not None:
                done = len(self.runs[cand.name])
                progress.show(f"{self.key}: {cand.name} (round {done + 1}/{self.rounds})")
            load = cand.prepare()()
            assert isinstance(load, Load)
            self.runs[cand.name].append(load)
            self.times[cand.name].append(load.seconds / load.requests)
        return self

    def spread(self) -> dict[str, list[float]]:
        """Requests per second of each candidate: its slowest and its fastest round."""
        return {
            name: [min(m.rps for m in runs), max(m.rps for m in runs)] for name, runs in self.runs.items()
        }

    def notes(self) -> dict[str, str]:
        """Per candidate: how often answers set a cookie (describe); for memsession, each round's ratio."""
        notes = {name: describe(runs) for name, runs in self.runs.items() if runs}
        ours, floor = self.runs.get(self.ours), self.runs.get(self.floor)
        if ours and floor:
            # Each round's own ratio: drift of the machine between rounds cancels out.
            ratios = sorted(f.rps / o.rps for o, f in zip(ours, floor))
            notes[self.ours] += (
                f"; floor / memsession round by round: median {statistics.median(ratios):.2f}"
                f" ({ratios[0]:.2f}-{ratios[-1]:.2f})"
            )
        return notes

    def bar_text(self) -> str:
        """The bar's label in the report."""
        return f"{STACKS.get(self.server, self.server)}: floor / memsession requests/s"


def balanced_order(n: int, runs: int) -> list[int]:
    """n candidates' indices, each `runs` times, each following every other equally often and never itself.

    The order walks every ordered pair of distinct candidates once (a circuit
    of the complete directed graph), over and over: for exact balance `runs`
    is a multiple of n - 1 (e2e_rounds rounds up to one).
    """
    if n == 1:
        return [0] * runs
    unused = {v: [w for w in range(n - 1, -1, -1) if w != v] for v in range(n)}
    stack, circuit = [0], []
    while stack:  # Hierholzer: every vertex has as many edges in as out
        if unused[stack[-1]]:
            stack.append(unused[stack[-1]].pop())
        else:
            circuit.append(stack.pop())
    circuit = circuit[::-1][:-1]  # a closed walk: its last vertex is its first
    order = circuit * -(-runs // (n - 1))
    return order[: runs * n]


def e2e_rounds(wanted: int, n: int) -> int:
    """At least `wanted` runs per candidate, a multiple of n - 1 so that balanced_order is exact."""
    step = max(n - 1, 1)
    return -(-wanted // step) * step


def _group(server: str, apps: dict[str, str], needs: list[str], title: str, quick: bool) -> E2EGroup:
    """One server's group over apps (variant -> name); without candidates, and why, if it cannot run."""
    size = e2e_sizes(quick)
    key = f"e2e-{server}"
    ours, floor = apps[OURS], apps[FLOOR]

    def empty(why: str) -> E2EGroup:
        return E2EGroup(key, f"{title} ({why})", [], 1, rounds=size.rounds, server=server)

    missing = [m for m in needs if importlib.util.find_spec(m) is None]
    if missing:
        return empty(f"{', '.join(missing)} not installed")
    wrk, why = find_wrk()
    if wrk is None:
        return empty(why)
    variants = [v for v in apps if v != "flask-session" or _has("flask_session", "cachelib")]
    rig = _Rig(SERVERS[server], variants, wrk, size.warmup)
    cands = []
    for variant in variants:

        def prepare(variant: str = variant) -> Callable[[], object]:
            return rig.prepare(variant, size.seconds)

        cands.append(Candidate(apps[variant], prepare))
    return E2EGroup(
        key,
        title,
        cands,
        1,
        cleanup=rig.stop,
        rounds=e2e_rounds(size.rounds, len(cands)),
        server=server,
        ours=ours,
        floor=floor,
    )


def _has(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


def e2e_groups(quick: bool) -> list[E2EGroup]:
    """The two groups: uvicorn + Starlette and gunicorn + Flask (each without candidates if it cannot run)."""
    load = f"wrk: {CONNECTIONS} connections, each keeping its cookie, GET reading and writing one session key"
    loop = "uvloop" if _has("uvloop") else "asyncio"
    parser = "httptools" if _has("httptools") else "h11"
    return [
        _group(
            "uvicorn",
            STARLETTE,
            ["uvicorn", "starlette"],
            f"uvicorn, 1 worker ({loop}, {parser}) + Starlette, {load}",
            quick,
        ),
        _group("gunicorn", FLASK, ["gunicorn", "flask"], f"gunicorn -w 1 (sync) + Flask, {load}", quick),
    ]
