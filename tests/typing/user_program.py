"""A user's program written against memsession's public names; mypy --strict must accept it."""

from __future__ import annotations

from typing import Optional

import memsession
from memsession import Manager, MemoryProvider, Provider, RequestSession, Session
from memsession.testing import FakeClock, StartedSession, parse_set_cookie, start_session


def handle(manager: Manager, header: Optional[str]) -> Optional[str]:
    session: RequestSession = manager.session_start(header, https=True)
    visits: int = session.get("visits", 0) + 1
    session["visits"] = visits
    session.set("user", "ann")
    session.delete("gone")
    sid: str = session.session_id()
    assert sid == session.sid and session.created <= session.last_used
    if session.modified and session.new and session.accessed and session.permanent is None:
        manager.session_regenerate(session)
    return manager.session_cookie(session, https=True)


def store(provider: MemoryProvider) -> int:
    s = provider.session_init("x" * 43)
    found: Optional[Session] = provider.session_read(s.sid, 60.0)
    ok: bool = provider.session_update(s.sid)
    stats: dict[str, int] = provider.stats()
    for live in provider.sessions():
        provider.session_destroy(live.sid)
    return provider.session_gc(1800.0) + len(provider) + stats["live"] + int(ok) + int(found is None)


def protocol(p: Provider) -> float:
    return p.now()


clock = FakeClock()
provider = MemoryProvider(max_sessions=10, clock=clock)
memsession.register("typed", provider)
with Manager(memsession.get_provider("typed"), "sid", 60.0, absolute_lifetime=600.0) as manager:
    handle(manager, None)
    started: StartedSession = start_session(manager, {"user_id": 1})
    assert parse_set_cookie("sid=x; Max-Age=5").max_age == 5
    store(provider)
    protocol(provider)
    clock.advance(61.0)
    removed: int = manager.gc()
version: str = memsession.__version__
implementation: str = memsession.IMPLEMENTATION
