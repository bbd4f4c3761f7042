"""The FastAPI example app, used through FastAPI's test client."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from fastapi.testclient import TestClient

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fastapi_app.py"


@pytest.fixture
def example() -> ModuleType:
    """A fresh import of examples/fastapi_app.py."""
    spec = importlib.util.spec_from_file_location("fastapi_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fastapi_example_counts_logs_in_and_out(example: ModuleType) -> None:
    with TestClient(example.app) as client:
        assert client.get("/me").json() == {"user": None, "count": 0}
        assert "set-cookie" not in client.get("/me").headers
        assert client.post("/count").json() == {"count": 1}
        first = client.cookies["memsession"]
        response = client.post("/login", params={"user": "ann"})
        assert response.json() == {"user": "ann"}
        second = client.cookies["memsession"]
        assert second != first and first not in example.manager.provider
        assert client.post("/count").json() == {"count": 2}
        with client.websocket_connect("/ws") as ws:
            assert ws.receive_json() == {"user": "ann"}
        response = client.post("/logout")
        assert "Max-Age=0" in response.headers["set-cookie"]
        assert client.get("/me").json() == {"user": None, "count": 0}
        assert second not in example.manager.provider


def test_fastapi_example_rejects_a_bad_user_name(example: ModuleType) -> None:
    with TestClient(example.app) as client:
        assert client.post("/login", params={"user": "x" * 41}).status_code == 422
        assert "set-cookie" not in client.post("/login", params={"user": ""}).headers
