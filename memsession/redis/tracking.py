"""The tracking connection: a RESP3 socket on which Redis pushes key invalidations."""

from __future__ import annotations

import os
import socket
import ssl
import time
import weakref
from typing import Any, Callable, Optional

from .._impl import readable

__all__ = ["Tracker", "TrackingError"]

_CRLF = b"\r\n"
_AGGREGATES = frozenset(b"*~>%|")
_BULK = frozenset(b"$=!")


class TrackingError(Exception):
    """The tracking connection could not be opened or broke."""


class _Incomplete(Exception):
    pass


class _Push(list):  # type: ignore[type-arg]
    """An out-of-band message (RESP3 '>')."""


class _ErrorReply(str):
    """An error reply ('-' or '!')."""


def _parse(buf: bytes, pos: int) -> tuple[Any, int]:
    """One RESP3 value from buf at pos, and where the next begins; _Incomplete if cut short."""
    end = buf.find(_CRLF, pos)
    if end < 0:
        raise _Incomplete
    kind, line, pos = buf[pos], buf[pos + 1 : end], end + 2
    if kind in _BULK:
        size = int(line)
        if size < 0:
            return None, pos
        if len(buf) < pos + size + 2:
            raise _Incomplete
        value = buf[pos : pos + size]
        return (_ErrorReply(value.decode(errors="replace")) if kind == 0x21 else value), pos + size + 2
    if kind in _AGGREGATES:
        count = int(line)
        if count < 0:
            return None, pos
        items: list[Any] = _Push() if kind == 0x3E else []
        for _ in range(count * 2 if kind in b"%|" else count):
            item, pos = _parse(buf, pos)
            items.append(item)
        if kind == 0x7C:  # attributes come before the value they describe
            return _parse(buf, pos)
        return items, pos
    if kind == 0x2D:
        return _ErrorReply(line.decode(errors="replace")), pos
    if kind == 0x5F:
        return None, pos
    if kind in b"+:,#(":
        return line, pos
    raise ValueError(f"unexpected RESP3 type byte {kind!r}")


def _command(*args: Any) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class Tracker:
    """One RESP3 connection in CLIENT TRACKING BCAST mode for a set of key prefixes.

    drain() never blocks: it reads whatever the server has pushed so far and
    reports it. Its socket, whether a drain is under way and when the next
    PING is due are kept on state (a NearReader) for reads to check. The
    connection belongs to the process that opened it; after a fork the
    child finds it closed and opens its own.
    """

    def __init__(
        self,
        params: dict[str, Any],
        prefixes: list[str],
        timeout: float,
        heartbeat: float,
        state: Any,
    ) -> None:
        self._params = params
        self._prefixes = prefixes
        self._timeout = timeout
        self._heartbeat = heartbeat
        self._sock: Optional[socket.socket] = None
        self._fd = -1
        self._pid = 0
        # Where reads look without a lock: fd (-1 while down), busy (pushes
        # taken off the socket, not yet applied), next_ping.
        self._state = state
        self._buf = b""
        self._ping_sent = 0.0  # when the unanswered PING went out; 0: none outstanding
        self._last_ping = 0.0

    @property
    def up(self) -> bool:
        """True while the connection is open in this process."""
        return self._sock is not None and self._pid == os.getpid()

    def connect(self) -> None:
        """Open the connection and turn tracking on; TrackingError on any failure."""
        self.close()
        try:
            sock = self._open()
            try:
                sock.settimeout(self._timeout)
                params = self._params
                hello: list[Any] = ["HELLO", 3]
                if params.get("password"):
                    hello += ["AUTH", params.get("username") or "default", params["password"]]
                commands = [
                    _command(*hello),
                    _command("CLIENT", "SETNAME", "memsession-tracking"),
                    _command(
                        "CLIENT",
                        "TRACKING",
                        "ON",
                        "BCAST",
                        *[part for p in self._prefixes for part in ("PREFIX", p)],
                    ),
                ]
                sock.sendall(b"".join(commands))
                replies = self._replies(sock, len(commands))
                for reply in replies:
                    if isinstance(reply, _ErrorReply):
                        raise TrackingError(_explain(reply))
                sock.setblocking(False)
            except BaseException:
                sock.close()
                raise
        except (OSError, ValueError) as exc:
            raise TrackingError(f"cannot open the tracking connection: {exc}") from None
        self._sock, self._fd, self._pid, self._buf = sock, sock.fileno(), os.getpid(), b""
        self._ping_sent, self._last_ping = 0.0, time.monotonic()
        self._state.next_ping = self._last_ping + self._heartbeat
        self._state.busy = False
        self._state.fd = self._fd
        _open_trackers.add(self)

    def _open(self) -> socket.socket:
        params = self._params
        if params.get("path"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self._timeout)
            sock.connect(params["path"])
            return sock
        sock = socket.create_connection(
            (params.get("host") or "127.0.0.1", int(params.get("port") or 6379)), self._timeout
        )
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if params.get("ssl"):
            context = ssl.create_default_context(cafile=params.get("ssl_ca_certs"))
            if params.get("ssl_cert_reqs") in ("none", ssl.CERT_NONE):
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            sock = context.wrap_socket(sock, server_hostname=params.get("host"))
        return sock

    def _replies(self, sock: socket.socket, count: int) -> list[Any]:
        buf, pos = b"", 0
        out: list[Any] = []
        while len(out) < count:
            try:
                value, end = _parse(buf, pos)
            except _Incomplete:
                chunk = sock.recv(65536)
                if not chunk:
                    raise OSError("the server closed the connection") from None
                buf += chunk
                continue
            pos = end
            if not isinstance(value, _Push):
                out.append(value)
        return out

    def drain(self, on_keys: Callable[[list[bytes]], None], on_flush: Callable[[], None]) -> bool:
        """Apply every invalidation received so far; False when the connection is down."""
        sock = self._sock
        if sock is None:
            return False
        try:
            if readable(self._fd):
                self._state.busy = True
                self._receive(sock, on_keys, on_flush)
            self._keep_alive(sock)
        except (OSError, ValueError):
            self.close()
            return False
        finally:
            self._state.busy = False
        return True

    def _receive(
        self, sock: socket.socket, on_keys: Callable[[list[bytes]], None], on_flush: Callable[[], None]
    ) -> None:
        buf = self._buf
        while True:
            try:
                chunk = sock.recv(262144)
            except (BlockingIOError, ssl.SSLWantReadError):
                break
            if not chunk:
                raise OSError("the server closed the tracking connection")
            buf += chunk
            if len(chunk) < 262144:
                break
        pos = 0
        while pos < len(buf):
            try:
                value, pos_next = _parse(buf, pos)
            except _Incomplete:
                break
            pos = pos_next
            if isinstance(value, _Push):
                if len(value) >= 2 and value[0] == b"invalidate":
                    if value[1] is None:
                        on_flush()
                    else:
                        on_keys(value[1])
            elif value == b"PONG":
                self._ping_sent = 0.0
            elif isinstance(value, _ErrorReply):
                raise OSError(f"the tracking connection got an error: {value}")
        self._buf = buf[pos:]

    def _keep_alive(self, sock: socket.socket) -> None:
        # A connection that died without a FIN (a cut network, a frozen
        # server) is found out here: a PING unanswered for max(heartbeat, timeout).
        now = time.monotonic()
        if self._ping_sent:
            if now - self._ping_sent > max(self._heartbeat, self._timeout):
                raise OSError("the tracking connection stopped answering")
        elif now - self._last_ping >= self._heartbeat:
            sock.send(_command("PING"))
            self._ping_sent = self._last_ping = now
        self._state.next_ping = (self._ping_sent or self._last_ping) + self._heartbeat

    def close(self) -> None:
        """Close the connection (in this process only; a forked child's copy is just dropped)."""
        sock, self._sock = self._sock, None
        _open_trackers.discard(self)
        if sock is not None and self._state.fd == self._fd:
            self._state.fd = -1
        if sock is not None and self._pid == os.getpid():
            try:
                sock.close()
            except OSError:  # pragma: no cover - closing a broken socket
                pass


# A forked child must not read its parent's pushes: it drops the inherited
# connections (without closing the parent's socket) and opens its own.
_open_trackers: weakref.WeakSet[Tracker] = weakref.WeakSet()


def _forget_inherited() -> None:
    for tracker in list(_open_trackers):
        tracker._sock = None
        tracker._state.fd = -1
    _open_trackers.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_inherited)


def _explain(reply: str) -> str:
    if reply.startswith(("ERR unknown command", "NOPROTO", "ERR Unknown subcommand")):
        return f"CachedRedisProvider needs Redis 6 or later (RESP3 and CLIENT TRACKING): {reply}"
    return f"the tracking connection was refused: {reply}"
