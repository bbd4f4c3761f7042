"""Session ids in arguments and messages: checked once, shown only in part."""

from __future__ import annotations

__all__ = ["check_sid", "short_id"]


def check_sid(sid: object) -> str:
    """sid as an exact str; TypeError or ValueError otherwise (as both cores check it)."""
    if type(sid) is not str:
        if not isinstance(sid, str):
            raise TypeError(f"sid must be str, not {type(sid).__name__}")
        sid = str.__str__(sid)  # a str subclass could run code in __eq__/__hash__
    if not sid:
        raise ValueError("sid must not be empty")
    return sid


def short_id(sid: str) -> str:
    """The first characters of an id, for messages and reprs: ids are secrets."""
    return sid[:8] + "…" if len(sid) > 8 else sid
