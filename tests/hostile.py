"""Hostile Cookie headers for the fuzz tests, and a provider that counts lookups."""

from __future__ import annotations

import string
from typing import Any, Optional

from hypothesis import strategies as st

ALPHABET = string.ascii_letters + string.digits + "-_"


class CountingProvider:
    """A memory provider that counts store lookups."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.reads = 0

    def session_read(self, sid: str, max_lifetime: Optional[float] = None) -> Any:
        self.reads += 1
        return self.inner.session_read(sid, max_lifetime)

    def session_init(self, sid: str) -> Any:
        return self.inner.session_init(sid)

    def session_new(self, sid: str) -> Any:
        return self.inner.session_new(sid)

    def session_insert(self, session: Any) -> None:
        self.inner.session_insert(session)

    def session_destroy(self, sid: str) -> None:
        self.inner.session_destroy(sid)

    def session_gc(self, max_lifetime: float) -> int:
        return int(self.inner.session_gc(max_lifetime))

    def now(self) -> float:
        return float(self.inner.now())

    def __contains__(self, sid: object) -> bool:
        return sid in self.inner

    def __len__(self) -> int:
        return len(self.inner)


def shaped_ids() -> st.SearchStrategy[str]:
    """Strings of exactly an issued id's shape (so they reach the store)."""
    return st.tuples(st.text(ALPHABET, min_size=42, max_size=42), st.sampled_from("AEIMQUYcgkosw048")).map(
        "".join
    )


NASTY = st.one_of(
    st.text(max_size=60),
    st.binary(max_size=60).map(lambda b: b.decode("latin-1")),
    st.sampled_from(['"', '""', "=", ";", "\x00", "\xff", "é", "\udcff", " ", "\t", "\r\n", ",", "\\"]),
    shaped_ids(),
    shaped_ids().map(lambda v: f'"{v}"'),
    shaped_ids().map(lambda v: v[:-1] + "B"),
)
NAMES = st.sampled_from(["sid", "SID", " sid", "sid ", "si d", "other", "", "sid\x00", "sid=sid"])
SEPARATORS = st.sampled_from(["; ", ";", ";;", ", ", " ", "", "\x00", ";\t"])


@st.composite
def cookie_headers(draw: Any, live: Optional[str] = None) -> str:
    """A Cookie header of hostile pieces, sometimes with the live cookie among them."""
    pieces = draw(st.lists(st.tuples(NAMES, NASTY).map(lambda nv: f"{nv[0]}={nv[1]}"), max_size=12))
    if live is not None and draw(st.booleans()):
        pieces.insert(draw(st.integers(0, len(pieces))), f"sid={live}")
    if draw(st.booleans()):
        pieces.append(draw(st.text(max_size=40)))
    return draw(SEPARATORS).join(pieces)
