"""A TCP proxy on 127.0.0.1 that delays every chunk it forwards: a slow network, for tests.

    with LatencyProxy(target_port=6379, delay=0.020) as proxy:
        url = f"redis://127.0.0.1:{proxy.port}/0"   # each direction 20 ms late

Each accepted connection gets its own connection to the target and two
pumps, one per direction. A pump reads a chunk, stamps it due at
arrival + delay and queues it; its writer releases the chunks in arrival
order once due, so order is kept per connection and a burst of chunks
costs one delay, not one per chunk (as on a real link). The proxy runs
its own event loop in a daemon thread: start() returns once it listens,
stop() closes everything and joins the thread.

Bounded: at most max_connections at once (more are closed at once), at
most `backlog` chunks waiting per direction (the reader then stops reading:
TCP backpressure), and the proxy stops itself after `lifetime` seconds
whatever its owner does.

`python -m tests.latency_proxy TARGET_PORT [--delay S]` runs one in its own
process (the benchmarks do): it prints its port, and stops when its stdin
closes, on SIGTERM, or after --lifetime seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any, Optional

__all__ = ["LatencyProxy"]

_CHUNK = 65536


class LatencyProxy:
    """Forward 127.0.0.1:<port> to 127.0.0.1:<target_port>, `delay` seconds late each way."""

    def __init__(
        self,
        target_port: int,
        delay: float = 0.020,
        *,
        target_host: str = "127.0.0.1",
        max_connections: int = 512,
        backlog: int = 1024,
        lifetime: float = 300.0,
    ) -> None:
        if delay < 0:
            raise ValueError("delay must be >= 0")
        self.target = (target_host, int(target_port))
        self.delay = float(delay)  # may be changed while running: applies to chunks read after
        self.max_connections = max_connections
        self.backlog = backlog
        self.lifetime = lifetime
        self.port = 0
        self.accepted = 0  # connections forwarded so far
        self.refused = 0  # connections closed at once (over max_connections, target down)
        self.forwarded = 0  # bytes forwarded, both directions
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._ready = threading.Event()
        self._error: Optional[BaseException] = None
        self._stopping: Optional[asyncio.Event] = None
        self._handlers: set[asyncio.Task[None]] = set()

    # -- owner's side (any thread) ------------------------------------------

    def start(self) -> LatencyProxy:
        """Listen on a free loopback port (self.port) and forward in a background thread."""
        if self._thread is not None:
            raise RuntimeError("the proxy is started already")
        self._thread = threading.Thread(target=self._main, name="latency-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            self.stop()
            raise RuntimeError(f"latency proxy did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        """Close the listener and every connection; wait for the thread (idempotent)."""
        loop, thread = self._loop, self._thread
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._request_stop)
        if thread is not None and thread is not threading.current_thread():
            thread.join(10)

    @property
    def url(self) -> str:
        """redis:// URL of the proxy, database 0 (for a Redis target)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> LatencyProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the proxy's thread --------------------------------------------------

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start() or lost with the thread
            self._error = exc
        finally:
            self._ready.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _request_stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._accept, "127.0.0.1", 0, backlog=256)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.lifetime)
        finally:
            server.close()
            for task in list(self._handlers):
                task.cancel()
            if self._handlers:
                await asyncio.wait(list(self._handlers), timeout=5)
            await server.wait_closed()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._handlers) >= self.max_connections or self._stopping is None or self._stopping.is_set():
            self.refused += 1
            client_w.close()
            return
        self._handlers.add(task)
        target_w: Optional[asyncio.StreamWriter] = None
        try:
            try:
                target_r, target_w = await asyncio.open_connection(*self.target)
            except OSError:
                self.refused += 1
                return
            self.accepted += 1
            up = asyncio.ensure_future(self._pump(client_r, target_w))
            down = asyncio.ensure_future(self._pump(target_r, client_w))
            try:
                # A failed write ends both directions; an EOF (or a reset) read
                # on one side half-closes the other and lets the reverse finish.
                await asyncio.wait({up, down}, return_when=asyncio.FIRST_EXCEPTION)
            finally:
                for t in (up, down):
                    t.cancel()
                await asyncio.gather(up, down, return_exceptions=True)
        except asyncio.CancelledError:
            pass  # stop(): fall through to closing
        finally:
            for w in (client_w, target_w):
                if w is not None:
                    w.close()
            self._handlers.discard(task)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        """Copy src to dst, each chunk released `delay` seconds after it arrived, in order."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(self.backlog)

        async def read() -> None:
            while True:
                try:
                    chunk = await src.read(_CHUNK)
                except OSError:  # a reset: ends this direction like EOF
                    chunk = b""
                # b"" is EOF: queued like data, so it too arrives after the data before it.
                await queue.put((loop.time() + self.delay, chunk))
                if not chunk:
                    return

        reader = asyncio.ensure_future(read())
        try:
            while True:
                due, chunk = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not chunk:
                    if dst.can_write_eof():
                        with contextlib.suppress(OSError):
                            dst.write_eof()
                    return
                dst.write(chunk)
                self.forwarded += len(chunk)
                await dst.drain()
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)


def main(argv: Optional[list[str]] = None) -> int:
    import argparse
    import signal
    import sys

    parser = argparse.ArgumentParser(prog="python -m tests.latency_proxy")
    parser.add_argument("target_port", type=int)
    parser.add_argument("--delay", type=float, default=0.020, help="seconds added each way (default 0.020)")
    parser.add_argument("--lifetime", type=float, default=600.0, help="stop after this many seconds")
    args = parser.parse_args(argv)
    proxy = LatencyProxy(args.target_port, args.delay, lifetime=args.lifetime).start()
    stop = threading.Event()

    def on_signal(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def watch_stdin() -> None:
        sys.stdin.read()  # returns when the owner closes the pipe (or dies)
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    print(proxy.port, flush=True)
    assert proxy._thread is not None
    while not stop.is_set() and proxy._thread.is_alive():
        stop.wait(0.2)
    proxy.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
