"""Request path: each middleware on a minimal app reading and writing one session key."""

from __future__ import annotations

from typing import Any

from memsession.bench import web
from memsession.bench.runner import Candidate

from .conftest import QUICK, measure, params

REQUESTS = 500 if QUICK else 5_000
ASGI = web.asgi_group(REQUESTS)
WSGI = web.wsgi_group(REQUESTS)
FLASK = web.flask_group(REQUESTS)


@params(ASGI)
def test_asgi(benchmark: Any, case: Candidate) -> None:
    measure(benchmark, ASGI, case)


@params(WSGI)
def test_wsgi(benchmark: Any, case: Candidate) -> None:
    measure(benchmark, WSGI, case)


@params(FLASK)
def test_flask(benchmark: Any, case: Candidate) -> None:
    measure(benchmark, FLASK, case)
