"""Every lifetime argument takes seconds or a datetime.timedelta, and refuses the rest clearly."""

from __future__ import annotations

import math
import types
from datetime import timedelta
from typing import Any

import pytest

from memsession import Manager
from memsession.testing import FakeClock


def test_manager_lifetimes_take_timedeltas(provider: Any) -> None:
    with Manager(
        provider,
        "sid",
        timedelta(minutes=30),
        absolute_lifetime=timedelta(hours=8),
        gc_interval=timedelta(hours=1),
    ) as m:
        assert m.max_lifetime == 1800.0 and m.absolute_lifetime == 28800.0


def test_a_timedelta_lifetime_expires_sessions_as_seconds_do(provider: Any, clock: FakeClock) -> None:
    with Manager(provider, "sid", timedelta(seconds=100)) as m:
        s = m.session_start(None)
        s["user"] = "ann"
        header = m.session_cookie(s) or ""
        assert "Max-Age=150" in header
        cookie = header.split(";")[0]
        clock.advance(timedelta(seconds=100))
        assert m.session_start(cookie)["user"] == "ann"
        clock.advance(timedelta(seconds=101))
        assert m.session_start(cookie).new


def test_core_lifetime_arguments_take_timedeltas(core: types.ModuleType, clock: FakeClock) -> None:
    p = core.MemoryProvider(clock=clock)
    p.session_init("a")
    clock.advance(10)
    assert p.session_read("a", timedelta(seconds=10)) is not None
    clock.advance(11)
    assert p.session_gc(timedelta(seconds=10)) == 1


@pytest.mark.parametrize("bad", [timedelta(0), timedelta(seconds=-1), -1, 0, math.inf, math.nan])
def test_non_positive_or_infinite_lifetimes_are_value_errors_naming_the_argument(
    provider: Any, bad: Any
) -> None:
    with pytest.raises(ValueError, match="max_lifetime"):
        Manager(provider, "sid", bad)
    with pytest.raises(ValueError, match="absolute_lifetime"):
        Manager(provider, "sid", 10, absolute_lifetime=bad)


@pytest.mark.parametrize("bad", ["10", b"10", True, None, [10]])
def test_lifetimes_of_other_types_are_type_errors_naming_the_argument(provider: Any, bad: Any) -> None:
    with pytest.raises(TypeError, match="max_lifetime must be a number of seconds or a timedelta"):
        Manager(provider, "sid", bad)


def test_fake_clock_moves_by_timedeltas() -> None:
    clock = FakeClock(0)
    assert clock.advance(timedelta(minutes=2)) == 120.0
    with pytest.raises(ValueError, match="seconds"):
        clock.advance(timedelta(seconds=-1))


def test_redis_provider_durations_take_timedeltas() -> None:
    pytest.importorskip("redis")
    from memsession.redis import RedisProvider

    with RedisProvider("redis://127.0.0.1:1/0", ttl=timedelta(days=1), timeout=timedelta(seconds=2)) as p:
        assert p._ttl_ms == 86_400_000
    with pytest.raises(ValueError, match="ttl"):
        RedisProvider("redis://127.0.0.1:1/0", ttl=timedelta(0))
