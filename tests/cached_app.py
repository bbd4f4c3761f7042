"""A WSGI app for gunicorn workers sharing sessions through CachedRedisProvider.

Configured by MEMSESSION_TEST_REDIS_URL and MEMSESSION_TEST_PREFIX; served as
"tests.cached_app:app". Every answer is JSON: the worker's pid, the session
as this request sees it, where this worker found it ("memory": its near
cache, "redis", or "none": no session was read), and the provider's stats().

    GET /write?key=k&value=v   session[k] = v
    GET /read                  the session, unchanged
    GET /login                 a new id for the session (regenerate)
    GET /logout                the session destroyed
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

from memsession import Manager
from memsession.redis import CachedRedisProvider
from memsession.wsgi import SessionMiddleware

provider = CachedRedisProvider(
    os.environ["MEMSESSION_TEST_REDIS_URL"], prefix=os.environ["MEMSESSION_TEST_PREFIX"], timeout=1.0
)
manager = Manager(provider, "memsession", 300)

# The counters as this worker's previous request left them (a sync worker
# serves one request at a time, and only reading a session moves them).
_seen = {"local_hits": 0, "redis_reads": 0}


def _source(stats: dict[str, int]) -> str:
    hits = stats["local_hits"] - _seen["local_hits"]
    reads = stats["redis_reads"] - _seen["redis_reads"]
    _seen["local_hits"], _seen["redis_reads"] = stats["local_hits"], stats["redis_reads"]
    return "memory" if hits else "redis" if reads else "none"


def _app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    session = environ["memsession.session"]
    stats = provider.stats()
    source = _source(stats)
    path = environ.get("PATH_INFO", "")
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    if path == "/write":
        session[query["key"]] = query["value"]
    elif path == "/login":
        manager.session_regenerate(session)
    elif path == "/logout":
        manager.session_destroy(session)
    elif path != "/read":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    body = json.dumps({"pid": os.getpid(), "session": dict(session), "source": source, "stats": stats})
    start_response("200 OK", [("Content-Type", "application/json"), ("Cache-Control", "no-store")])
    return [body.encode()]


app = SessionMiddleware(_app, manager)
