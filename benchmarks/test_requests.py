"""Request path: each middleware on a minimal app reading and writing one session key."""

from __future__ import annotations

from typing import Any

from .conftest import SIZES, measure, params
from .runner import Candidate
from .suite import request_groups

ASGI, WSGI, FLASK = request_groups(SIZES)


@params(ASGI)
def test_asgi(benchmark: Any, case: Candidate) -> None:
    measure(benchmark, ASGI, case)


@params(WSGI)
def test_wsgi(benchmark: Any, case: Candidate) -> None:
    measure(benchmark, WSGI, case)


@params(FLASK)
def test_flask(benchmark: Any, case: Candidate) -> None:
    measure(benchmark, FLASK, case)
