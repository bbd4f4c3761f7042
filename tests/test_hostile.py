"""Hostile Cookie headers: never an exception, never an adopted id, never a lost session."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memsession import Manager, Session
from memsession.manager import MAX_LOOKUPS

from .hostile import CountingProvider, cookie_headers, shaped_ids

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def counted(core: types.ModuleType) -> tuple[Manager, CountingProvider, Session]:
    """A Manager over a counting provider that already holds one live session."""
    provider = CountingProvider(core.MemoryProvider())
    manager = Manager(provider, "sid", 100)  # type: ignore[arg-type]
    live = manager.session_start(None)
    live["user"] = "ann"
    manager.session_cookie(live)
    return manager, provider, live


def snapshot(provider: CountingProvider) -> list[tuple[str, dict[str, Any]]]:
    return [(s.sid, dict(s)) for s in provider.inner.sessions()]


def check_outcome(manager: Manager, provider: CountingProvider, live: Session, header: str) -> None:
    before = snapshot(provider)
    session = manager.session_start(header)
    assert snapshot(provider) == before, "a request changed the store"
    if session.sid == live.sid:
        assert live.sid in header
    else:
        assert session.new and len(session) == 0
        assert session.sid not in provider and session.sid not in header, "a client's id was adopted"
    assert manager.session_cookie(session) is None


@FUZZ
@given(data=st.data())
def test_fuzzed_headers_resolve_safely(counted: Any, data: st.DataObject) -> None:
    manager, provider, live = counted
    check_outcome(manager, provider, live, data.draw(cookie_headers(live.sid)))


@FUZZ
@given(header=st.text(max_size=300))
def test_any_text_is_a_safe_header(counted: Any, header: str) -> None:
    check_outcome(*counted, header)


@FUZZ
@given(raw=st.binary(max_size=300))
def test_any_bytes_decoded_as_wsgi_does_are_a_safe_header(counted: Any, raw: bytes) -> None:
    check_outcome(*counted, raw.decode("latin-1"))


@FUZZ
@given(forged=shaped_ids())
def test_valid_shaped_unknown_ids_are_looked_up_and_refused(counted: Any, forged: str) -> None:
    manager, provider, live = counted
    before = provider.reads
    session = manager.session_start(f"sid={forged}")
    assert provider.reads == before + 1
    assert session.sid != live.sid and session.sid != forged


@pytest.mark.parametrize(
    "header",
    [
        "sid=" + "A" * 1_000_000,
        "a" * 1_000_000,
        "; ".join(f"c{i}=v{i}" for i in range(20_000)),
        "sid=x; " * 20_000,
        "\x00" * 100_000,
        "é" * 100_000,
        '"' * 100_000,
        "=" * 100_000 + "sid",
    ],
    ids=["huge-value", "huge-junk", "many-cookies", "many-ours", "nuls", "non-ascii", "quotes", "equals"],
)
def test_huge_headers_get_a_fresh_session_and_no_lookup(counted: Any, header: str) -> None:
    manager, provider, live = counted
    before = provider.reads
    check_outcome(manager, provider, live, header)
    assert provider.reads == before  # nothing of an id's shape: the store is not asked


def test_the_live_cookie_is_found_among_thousands(counted: Any) -> None:
    manager, provider, live = counted
    header = "; ".join([f"sid=junk{i}" for i in range(5000)] + [f"sid={live.sid}"])
    assert manager.session_start(header).sid == live.sid


def test_the_live_cookie_is_found_among_a_few_stale_or_forged_ones(counted: Any) -> None:
    manager, provider, live = counted
    forged = ["Q" * 42 + "A", "R" * 42 + "E", "S" * 42 + "I"]
    header = "; ".join(f"sid={f}; x={f}" for f in forged) + f"; sid={live.sid}"
    before = provider.reads
    assert manager.session_start(header).sid == live.sid
    assert provider.reads - before == 4


def test_repeated_ids_are_looked_up_once(counted: Any) -> None:
    manager, provider, live = counted
    header = "; ".join(["sid=" + "Q" * 42 + "A"] * 50 + [f"sid={live.sid}"])
    before = provider.reads
    assert manager.session_start(header).sid == live.sid
    assert provider.reads - before == 2


def test_a_megabyte_of_forged_ids_costs_a_fixed_number_of_lookups(counted: Any) -> None:
    manager, provider, live = counted
    forged = [f"sid={i:042d}A" for i in range(22_000)]  # ~1 MB of distinct, well-formed ids
    header = "; ".join(forged + [f"sid={live.sid}"])
    assert len(header) > 1_000_000
    before = provider.reads
    session = manager.session_start(header)
    assert provider.reads - before == MAX_LOOKUPS
    assert session.new and session.sid != live.sid and len(provider) == 1


def c_calls(action: Callable[[], object]) -> int:
    """How many C functions an action calls: a count, not a time."""
    count = 0

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal count
        if event == "c_call":
            count += 1

    sys.setprofile(profile)
    try:
        action()
    finally:
        sys.setprofile(None)
    return count


@pytest.mark.parametrize("piece", ["sid=" + "Q" * 42 + "A", "x=1", "sid=bad", '"sid"="v"'])
def test_work_grows_linearly_with_the_header(counted: Any, piece: str) -> None:
    manager = counted[0]
    small = c_calls(lambda: manager.session_start("; ".join([piece] * 1000)))
    large = c_calls(lambda: manager.session_start("; ".join([piece] * 8000)))
    assert large <= 8 * small + 50


FUZZER = Path(__file__).resolve().parent.parent / "fuzz" / "session_start.py"


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris is not installed")
def test_atheris_finds_nothing_in_session_start(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(FUZZER), "-runs=200000", "-seed=1", "-max_len=2048"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done 200000 runs" in result.stderr
