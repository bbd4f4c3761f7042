"""Calls a precise API must reject; mypy --strict must report each line marked E."""

from memsession import Manager, MemoryProvider

manager = Manager("memory")
manager.session_start(5)  # E: a cookie header is str or None
manager.session_cookie("sid")  # E: a Session, not a str
MemoryProvider(max_sessions="10")  # E: an int
MemoryProvider().session_read(b"sid")  # E: ids are str
count: str = MemoryProvider().session_gc(10.0)  # E: returns int
