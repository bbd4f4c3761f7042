"""How session values become bytes in Redis and back."""

from __future__ import annotations

import json
from typing import Any, Protocol

__all__ = ["JSONSerializer", "Serializer"]


class Serializer(Protocol):
    """How session values become bytes in Redis and back."""

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class JSONSerializer:
    """JSON values (the default): safe to load whatever is in the store."""

    def dumps(self, value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()

    def loads(self, data: bytes) -> Any:
        return json.loads(data)
