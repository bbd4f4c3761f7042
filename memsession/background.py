"""Periodic work in a daemon thread that never keeps its owner alive."""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

__all__ = ["Periodic"]

_log = logging.getLogger("memsession")


class Periodic:
    """Calls owner.<method>() every interval seconds until stopped or the owner is gone."""

    def __init__(self, owner: Any, method: str, interval: float, name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=_loop,
            args=(weakref.ref(owner), method, self._stop, interval),
            name=name,
            daemon=True,
        )
        weakref.finalize(owner, self._stop.set)
        self._thread.start()

    def stop(self) -> None:
        """Stop, and wait for a call under way to end (unless called from it)."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()


def _loop(ref: weakref.ref[Any], method: str, stop: threading.Event, interval: float) -> None:
    while not stop.wait(interval):
        owner = ref()
        if owner is None:
            return
        try:
            getattr(owner, method)()
        except Exception:
            _log.exception("memsession: background %s failed", method)
        del owner
