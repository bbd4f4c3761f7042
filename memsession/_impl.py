"""Picks the session core: compiled unless told otherwise or unavailable."""

from __future__ import annotations

import os
import platform
from typing import TYPE_CHECKING

from . import _core_py
from .session import Session as _SessionABC

NO_EXTENSIONS = bool(os.environ.get("MEMSESSION_NO_EXTENSIONS")) or (
    platform.python_implementation() != "CPython"
)

if TYPE_CHECKING:
    from ._core import (
        MemoryProvider,
        NearReader,
        RequestGate,
        RequestSession,
        Session,
        is_session_id,
        local_write,
        readable,
    )
elif NO_EXTENSIONS:
    from ._core_py import (
        MemoryProvider,
        NearReader,
        RequestGate,
        RequestSession,
        Session,
        is_session_id,
        local_write,
        readable,
    )
else:
    try:
        from ._core import (
            MemoryProvider,
            NearReader,
            RequestGate,
            RequestSession,
            Session,
            is_session_id,
            local_write,
            readable,
        )
    except ImportError:
        from ._core_py import (
            MemoryProvider,
            NearReader,
            RequestGate,
            RequestSession,
            Session,
            is_session_id,
            local_write,
            readable,
        )

IMPLEMENTATION = "python" if MemoryProvider.__module__.endswith("_core_py") else "cython"

# Both cores' sessions, stored and per request, are memsession.Session at runtime too.
for _type in (Session, _core_py.Session, RequestSession, _core_py.RequestSession):
    _SessionABC.register(_type)

__all__ = [
    "IMPLEMENTATION",
    "NO_EXTENSIONS",
    "MemoryProvider",
    "NearReader",
    "RequestGate",
    "RequestSession",
    "Session",
    "is_session_id",
    "local_write",
    "readable",
]
