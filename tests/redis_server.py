"""A private redis-server for the tests (and the benchmarks), installed with apt when absent."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from typing import Callable, Optional

from .system_deps import ensure_program

__all__ = ["LocalRedis", "RedisServer", "free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalRedis:
    """A throwaway redis-server on a free loopback port, without persistence; a restart keeps the port."""

    def __init__(self, executable: Optional[str] = None) -> None:
        found = executable or shutil.which("redis-server")
        if found is None:
            raise RuntimeError("redis-server is not installed")
        self.executable = found
        self.port = free_port()
        self.proc: Optional[subprocess.Popen[bytes]] = None

    @property
    def url(self) -> str:
        """The server's redis:// URL, database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Launch the server and wait until it answers PING."""
        self.proc = subprocess.Popen(
            [
                self.executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while not self.ping():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)  # waiting for a real process to listen

    def ping(self) -> bool:
        """True when the server answers PING."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Terminate the server (its data goes with it); start() brings it back on the same port."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(15)
            self.proc = None


def RedisServer() -> LocalRedis:  # noqa: N802 - reads as the class it builds
    """A stopped LocalRedis running Debian's redis-server (installed if needed)."""
    return LocalRedis(ensure_program("redis-server", "redis-server"))


def eventually(check: Callable[[], bool], what: str) -> None:
    """Wait (for a real redis-server to notice a closed socket) until check() holds."""
    deadline = time.monotonic() + 10
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.01)
