"""A Starlette app on AsyncCachedRedisProvider, for tests/test_cached_uvicorn.py to serve with uvicorn.

Configured by the environment (each uvicorn worker imports this module):
MEMSESSION_TEST_REDIS_URL and MEMSESSION_TEST_PREFIX. Every answer names
the worker process (pid) and its near cache's counters.
"""

from __future__ import annotations

import os
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from memsession import Manager
from memsession.asgi import SessionMiddleware
from memsession.redis import AsyncCachedRedisProvider

COOKIE = "sid"
LIFETIME = 600

provider = AsyncCachedRedisProvider(
    os.environ["MEMSESSION_TEST_REDIS_URL"], prefix=os.environ["MEMSESSION_TEST_PREFIX"]
)
manager = Manager(provider, COOKIE, LIFETIME)


def answer(**more: Any) -> JSONResponse:
    """This worker's pid and near-cache counters, and more."""
    return JSONResponse({"pid": os.getpid(), **provider.stats(), **more})


async def health(request: Request) -> JSONResponse:
    """Never touches the session."""
    return answer()


async def put(request: Request) -> JSONResponse:
    """Write ?v= into the session."""
    request.session["v"] = int(request.query_params["v"])
    return answer()


async def get(request: Request) -> JSONResponse:
    """Read the session's v (None without a live session)."""
    return answer(v=request.session.get("v"))


async def logout(request: Request) -> JSONResponse:
    """End the session (deleted at once, for every worker)."""
    await manager.asession_destroy(request.session)
    return answer()


app = Starlette(
    routes=[Route("/health", health), Route("/put", put), Route("/get", get), Route("/logout", logout)],
    middleware=[Middleware(SessionMiddleware, manager=manager)],
)
