"""Requests/s of `gunicorn -w 4`: MemoryProvider, RedisProvider and CachedRedisProvider, 10 reads per write.

Each provider gets one gunicorn with four sync workers on 127.0.0.1, all
three started at once; every worker serves a small WSGI app at /login
(stores a user: a new session), /read (403 unless logged in) and /write
(403 unless logged in, else one key written), naming itself in an
X-Worker header; /stats answers its provider's stats(), collected from
every worker after each run (a near cache's local hits and Redis reads).

wrk drives it with benchmarks/mix.lua: one connection per wrk thread,
each keeping its own session cookie; it logs in, then sends 10 reads per
write. Sync workers close the connection after every response, so each
request is accepted anew by whichever worker is free, and the load spreads
over all four; the report says how many served and the busiest one's share.

With MemoryProvider every worker holds its own sessions: a login is known
only to the worker that served it, so about three requests in four are
refused (403). Its requests/s is reported anyway, labelled, with the share
refused. For the Redis providers any answer but 200 is an error.

Rounds are interleaved: each round runs wrk once against every gunicorn,
the order rotated. wrk runs for a time, so the group times itself; the
times are seconds per request (1 / requests per second), like every other
group's.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .asgi_latency import LatencyGroup
from .runner import Candidate, Progress

__all__ = ["KINDS", "Mix", "WorkersGroup", "check", "describe", "workers_group", "workers_sizes"]

WORKERS = 4
CONNECTIONS = 8  # wrk threads too: one connection each
READS_PER_WRITE = 10
COOKIE = "sid"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mix.lua")
KINDS = {
    "memory": "MemoryProvider (per-worker: logins break)",
    "redis": "RedisProvider",
    "cached": "CachedRedisProvider",
}
PREFIXES = {"redis": "bench-workers:", "cached": "bench-workers-near:"}  # one kind of provider each


@dataclass(frozen=True)
class WorkersSizes:
    """Rounds, and seconds per wrk run (whole seconds: wrk's unit)."""

    rounds: int
    seconds: int


def workers_sizes(quick: bool) -> WorkersSizes:
    """Full sizes, or a smoke run of a few seconds."""
    return WorkersSizes(rounds=2, seconds=1) if quick else WorkersSizes(rounds=3, seconds=5)


# -- the workers' app ------------------------------------------------------------


def wsgi_app(kind: str, redis_url: str) -> Callable[..., Any]:
    """The app of one gunicorn worker (built in each, after the fork): login, read, write."""
    from memsession import Manager, MemoryProvider
    from memsession.wsgi import SessionMiddleware

    provider: Any
    if kind == "memory":
        provider = MemoryProvider()
    else:
        from memsession.redis import CachedRedisProvider, RedisProvider

        cls: Any = CachedRedisProvider if kind == "cached" else RedisProvider
        provider = cls(redis_url, prefix=PREFIXES[kind])
    manager = Manager(provider, COOKIE, 1800.0)
    worker = str(os.getpid())

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session = environ["memsession.session"]
        path = environ.get("PATH_INFO", "")
        status, body = "200 OK", b"ok"
        if path == "/login":
            session["user"] = "bench"
        elif path in ("/read", "/write"):
            if session.get("user") is None:
                status = "403 Forbidden"
            elif path == "/write":
                session["n"] = session.get("n", 0) + 1
        elif path == "/stats":
            body = json.dumps(provider.stats() if hasattr(provider, "stats") else {}).encode()
        elif path != "/ping":
            status = "404 Not Found"
        headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body))), ("X-Worker", worker)]
        start_response(status, headers)
        return [body]

    return SessionMiddleware(app, manager)


class _Gunicorn:
    """`gunicorn -w 4` serving wsgi_app(kind) on a free loopback port."""

    def __init__(self, kind: str, redis_url: str) -> None:
        from tests.redis_server import free_port

        self.kind = kind
        self.port = free_port()
        self.errors = tempfile.TemporaryFile()
        app = f"benchmarks.workers:wsgi_app({kind!r}, {redis_url!r})"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", str(WORKERS), "-b", f"127.0.0.1:{self.port}"]
            + ["--log-level", "warning", "--graceful-timeout", "5", app],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.errors,
        )

    def said(self) -> str:
        """What gunicorn wrote to stderr so far."""
        self.errors.seek(0)
        return self.errors.read().decode(errors="replace").strip()

    def get(self, path: str) -> Optional[tuple[str, bytes]]:
        """(pid of the worker that answered, body) of GET path, or None."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", path)
            answer = conn.getresponse()
            body = answer.read()
            worker = answer.getheader("X-Worker")
            return (worker, body) if answer.status == 200 and worker else None
        except OSError:
            return None
        finally:
            conn.close()

    def each_worker(self, path: str) -> dict[str, bytes]:
        """Every worker's answer to GET path (concurrent requests spread over them)."""
        seen: dict[str, bytes] = {}
        deadline = time.monotonic() + 60
        with ThreadPoolExecutor(CONNECTIONS) as pool:
            while len(seen) < WORKERS:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"gunicorn ({self.kind}) did not answer from every worker: {self.said()}"
                    )
                seen.update(a for a in pool.map(lambda _: self.get(path), range(4 * CONNECTIONS)) if a)
                if len(seen) < WORKERS:
                    time.sleep(0.05)  # workers still booting
        return seen

    def stats(self) -> dict[str, int]:
        """The providers' stats() summed over the workers."""
        total: dict[str, int] = {}
        for body in self.each_worker("/stats").values():
            for k, v in json.loads(body).items():
                total[k] = total.get(k, 0) + v
        return total

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        said = self.said()
        self.errors.close()
        if "Traceback" in said:  # a worker's failure must not pass unseen
            print(f"gunicorn ({self.kind}): {said}", file=sys.stderr)


# -- the load ----------------------------------------------------------------------


@dataclass
class Mix:
    """One wrk run: requests, seconds, answers by "<request> <status>", requests served per worker."""

    requests: int
    seconds: float
    socket_errors: int
    answers: dict[str, int]
    workers: dict[str, int]
    stats: dict[str, int] = field(default_factory=dict)  # the workers' stats() since they started

    @property
    def rps(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds


def run_wrk(wrk: str, port: int, seconds: int) -> Mix:
    """Drive 127.0.0.1:port with mix.lua for `seconds`."""
    proc = subprocess.run(
        [wrk, "-t", str(CONNECTIONS), "-c", str(CONNECTIONS), "-d", f"{seconds}s", "--timeout", "10s"]
        + ["-s", SCRIPT, f"http://127.0.0.1:{port}/", "--", str(READS_PER_WRITE)],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    found = re.search(r"^mix-result (\{.*\})$", proc.stdout, re.M)
    if proc.returncode or found is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
    out = json.loads(found.group(1))
    return Mix(
        out["requests"], out["duration_us"] / 1e6, out["socket_errors"], out["answers"], out["workers"]
    )


class _Rig:
    """The three gunicorns, started at once on first use."""

    def __init__(self, redis_url: str, wrk: str) -> None:
        self.redis_url = redis_url
        self.wrk = wrk
        self.servers: dict[str, _Gunicorn] = {}

    def start(self) -> None:
        if self.servers:
            return
        try:
            for kind in KINDS:
                self.servers[kind] = _Gunicorn(kind, self.redis_url)
            for server in self.servers.values():
                server.each_worker("/ping")  # every worker up
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        while self.servers:
            self.servers.popitem()[1].stop()

    def prepare(self, kind: str, seconds: int) -> Callable[[], Mix]:
        """The gunicorns up; the run is one wrk run against kind's (timed by wrk), then its stats."""
        self.start()
        server = self.servers[kind]

        def run() -> Mix:
            mix = run_wrk(self.wrk, server.port, seconds)
            mix.stats = server.stats()
            return mix

        return run


def check(name: str, mix: Mix) -> None:
    """Raise RuntimeError when a provider sharing sessions (not MemoryProvider) answered other than 200."""
    wrong = {k: v for k, v in mix.answers.items() if not k.endswith(" 200")}
    if name != KINDS["memory"] and (wrong or mix.socket_errors):
        raise RuntimeError(
            f"{name} under gunicorn answered {wrong} ({mix.socket_errors} socket errors): "
            "a user's requests did not all see its login"
        )


def describe(runs: list[Mix]) -> str:
    """How the runs' load spread over the workers, what was refused, what the near cache served."""
    served: dict[str, int] = {}
    for m in runs:
        for pid, n in m.workers.items():
            served[pid] = served.get(pid, 0) + n
    fewest = min(len(m.workers) for m in runs)
    busiest = max(served.values()) / sum(served.values())
    note = f"every run served by {fewest} of {WORKERS} workers, the busiest taking {busiest:.0%}"
    answered = sum(sum(m.answers.values()) for m in runs)
    refused = sum(n for m in runs for k, n in m.answers.items() if k.endswith(" 403"))
    if refused:
        note += f"; {refused / answered:.0%} of the answers were 403 (not logged in on that worker)"
    stats = runs[-1].stats  # counted since the workers started: every run
    if "local_hits" in stats:
        reads = stats["local_hits"] + stats["redis_reads"]
        note += f"; local hits: {stats['local_hits'] / reads:.0%} of the session reads"
    errors = sum(m.socket_errors for m in runs)
    if errors:
        note += f"; {errors} socket errors"
    return note


@dataclass
class WorkersGroup(LatencyGroup):
    """The gunicorn group: wrk runs for a time, so each run reports its own requests and seconds."""

    runs: dict[str, list[Mix]] = field(default_factory=dict)

    def measure(self, progress: Optional[Progress] = None) -> WorkersGroup:
        """Run wrk against every gunicorn `rounds` times, rotating the order; seconds per request."""
        self.times = {c.name: [] for c in self.candidates}
        self.runs = {c.name: [] for c in self.candidates}
        n = len(self.candidates)
        for r in range(self.rounds):
            for i in range(n):
                cand = self.candidates[(i + r) % n]
                if progress is not None:
                    progress.show(f"{self.key}: {cand.name} (round {r + 1}/{self.rounds})")
                mix = cand.prepare()()
                assert isinstance(mix, Mix)
                check(cand.name, mix)
                self.runs[cand.name].append(mix)
                self.times[cand.name].append(mix.seconds / mix.requests)
        return self

    def spread(self) -> dict[str, list[float]]:
        """Requests per second of each candidate: its slowest and its fastest round."""
        return {
            name: [min(m.rps for m in runs), max(m.rps for m in runs)] for name, runs in self.runs.items()
        }

    def notes(self) -> dict[str, str]:
        """Per candidate: how the load spread over the workers, what was refused (see describe)."""
        return {name: describe(runs) for name, runs in self.runs.items() if runs}


def find_wrk() -> tuple[Optional[str], str]:
    """wrk's path (Debian's wrk package installed first if absent and possible), or None and why."""
    import pytest

    from tests.system_deps import ensure_program

    try:
        return ensure_program("wrk", "wrk"), ""
    except (pytest.skip.Exception, pytest.fail.Exception) as exc:
        return None, str(exc)


def workers_group(redis_url: str, quick: bool) -> WorkersGroup:
    """The group: one gunicorn per provider, all on the Redis at redis_url."""
    size = workers_sizes(quick)
    title = (
        f"gunicorn -w {WORKERS} (sync), wrk: {CONNECTIONS} logged-in users, {READS_PER_WRITE} reads per write"
    )
    if importlib.util.find_spec("gunicorn") is None:
        return WorkersGroup("workers", title + " (gunicorn not installed)", [], 1, rounds=size.rounds)
    wrk, why = find_wrk()
    if wrk is None:
        return WorkersGroup("workers", f"{title} ({why})", [], 1, rounds=size.rounds)
    rig = _Rig(redis_url, wrk)
    cands = []
    for kind, name in KINDS.items():

        def prepare(kind: str = kind) -> Callable[[], object]:
            return rig.prepare(kind, size.seconds)

        cands.append(Candidate(name, prepare))
    return WorkersGroup("workers", title, cands, 1, cleanup=rig.stop, rounds=size.rounds)
