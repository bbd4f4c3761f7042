"""A FastAPI app with memsession sessions: `uvicorn examples.fastapi_app:app`.

Sessions live in this process's memory; with MEMSESSION_REDIS_URL set, in
that Redis through the async provider, so several workers share them and
no request blocks the event loop on Redis.
"""

from __future__ import annotations

import os
from typing import Any, Union

from fastapi import FastAPI, HTTPException, Request, WebSocket

from memsession import AsyncProvider, Manager
from memsession.asgi import SessionMiddleware


def _provider() -> Union[str, AsyncProvider]:
    url = os.environ.get("MEMSESSION_REDIS_URL")
    if not url:
        return "memory"
    from memsession.redis import AsyncRedisProvider

    return AsyncRedisProvider(url)


manager = Manager(_provider(), "memsession", max_lifetime=1800)
app = FastAPI(title="memsession example")
app.add_middleware(SessionMiddleware, manager=manager)


@app.post("/count")
def count(request: Request) -> dict[str, int]:
    request.session["count"] = request.session.get("count", 0) + 1
    return {"count": request.session["count"]}


@app.post("/login")
def login(request: Request, user: str) -> dict[str, str]:
    if not user or len(user) > 40:
        raise HTTPException(status_code=422, detail="user must be 1 to 40 characters")
    manager.session_regenerate(request.session)  # a new id after log in
    request.session["user"] = user
    return {"user": user}


@app.post("/logout")
def logout(request: Request) -> dict[str, bool]:
    manager.session_destroy(request.session)
    return {"logged_out": True}


@app.get("/me")
def me(request: Request) -> dict[str, Any]:
    return {"user": request.session.get("user"), "count": request.session.get("count", 0)}


@app.websocket("/ws")
async def greet(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"user": websocket.session.get("user")})
    await websocket.close()
