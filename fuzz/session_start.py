"""Coverage-guided fuzzing of Manager.session_start with atheris.

Run: python fuzz/session_start.py -runs=100000
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from memsession import Manager, MemoryProvider

PROVIDER = MemoryProvider()
MANAGER = Manager(PROVIDER, "sid", 100)
LIVE = MANAGER.session_start(None)
LIVE["user"] = "ann"
MANAGER.session_cookie(LIVE)


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    with_live = fdp.ConsumeBool()
    header = fdp.ConsumeUnicode(fdp.remaining_bytes())
    if with_live:
        header += f"; sid={LIVE.sid}"
    session = MANAGER.session_start(header)
    if session.sid != LIVE.sid:
        if not session.new or len(session) or session.sid in PROVIDER or session.sid in header:
            raise AssertionError(f"unsafe outcome for {header!r}")
    elif LIVE.sid not in header:
        raise AssertionError("the live session was served without its cookie")
    if len(PROVIDER) != 1 or LIVE.get("user") != "ann":
        raise AssertionError("the store changed")


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
