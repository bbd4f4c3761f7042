"""The demo: a small WSGI site showing a session at work, served by wsgiref."""

from __future__ import annotations

import errno
import html
import socketserver
import sys
from typing import Any, Callable, Iterable, Optional
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from .manager import Manager
from .wsgi import ENVIRON_KEY, SessionMiddleware

__all__ = ["create_app", "make_app", "serve"]

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>memsession demo</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 36rem; margin: 2rem auto; padding: 0 1rem; }}
form {{ display: inline-block; margin: 0 .5rem .5rem 0; }}
button, input {{ font-size: 1rem; padding: .3rem .6rem; }}
dt {{ font-weight: bold; }} code {{ background: #eee; padding: 0 .2rem; }}
</style></head>
<body>
<h1>memsession demo</h1>
<dl>
<dt>Button presses</dt><dd id="count">{count}</dd>
<dt>User</dt><dd id="user">{user}</dd>
<dt>Session id</dt><dd id="sid">{sid}</dd>
<dt>Time left</dt><dd id="left" data-seconds="{seconds}">{left}</dd>
</dl>
<form method="post" action="/count"><button id="count-button">Press me</button></form>
{account}
<p>Nothing is stored and no cookie is sent until you press a button.
Logging in gives the session a new id; logging out destroys it.
Leave the page idle and watch the session run out; reload to see it gone.</p>
<script>
(function () {{
  var left = document.getElementById("left");
  var end = Date.now() + 1000 * Number(left.dataset.seconds);
  if (!(Number(left.dataset.seconds) > 0)) return;
  function show() {{
    var s = Math.max(0, Math.ceil((end - Date.now()) / 1000));
    left.firstChild.textContent = s > 0
      ? Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0")
      : "expired: reload for a fresh session";
    if (s > 0) setTimeout(show, 250);
  }}
  show();
}})();
</script>
</body></html>
"""

_LOGIN = """<form method="post" action="/login">
<input name="user" id="user-input" value="alice" maxlength="40">
<button id="login-button">Log in</button></form>"""
_LOGOUT = """<form method="post" action="/logout"><button id="logout-button">Log out</button></form>"""

StartResponse = Callable[..., Any]


def _clock_text(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def make_app(manager: Manager) -> SessionMiddleware:
    """The demo site as a WSGI app wrapped in the session middleware."""

    def page(session: Any) -> bytes:
        seconds = 0
        if len(session):
            sid = f"<code>{html.escape(session.sid[:8])}</code>… (first 8 of 43 characters)"
            # This request just used the session: its idle time starts over.
            seconds = int(manager.max_lifetime)
            note = "idle before it expires (each request restarts it)"
            if manager.absolute_lifetime is not None:
                absolute = int(session.created + manager.absolute_lifetime - session.last_used)
                if absolute < seconds:
                    seconds, note = absolute, "before it ends (absolute lifetime)"
            left = f"{_clock_text(seconds)}<small> {note}</small>"
        else:
            sid = "none yet: nothing stored, no cookie sent"
            left = "-"
        user = session.get("user")
        return _PAGE.format(
            count=int(session.get("count", 0)),
            user=html.escape(user) if user else "not logged in",
            sid=sid,
            seconds=seconds,
            left=left,
            account=_LOGOUT if user else _LOGIN,
        ).encode()

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        session = environ[ENVIRON_KEY]
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/")
        if method == "GET" and path == "/":
            body = page(session)
            start_response(
                "200 OK",
                [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))],
            )
            return [body]
        if method == "POST" and path in ("/count", "/login", "/logout"):
            if path == "/count":
                session["count"] = int(session.get("count", 0)) + 1
            elif path == "/login":
                form = _read_form(environ)
                name = (form.get("user") or ["guest"])[0].strip()[:40] or "guest"
                manager.session_regenerate(session)
                session["user"] = name
            else:
                manager.session_destroy(session)
            start_response("303 See Other", [("Location", "/"), ("Content-Length", "0")])
            return [b""]
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
        return [b"not found"]

    return SessionMiddleware(app, manager)


def create_app(
    max_lifetime: float = 300.0, snapshot: Optional[str] = None, snapshot_interval: Optional[float] = None
) -> SessionMiddleware:
    """The demo for WSGI servers (gunicorn "memsession.demo:create_app()").

    With MEMSESSION_REDIS_URL set, sessions live in that Redis; otherwise in
    this process's memory, kept across restarts in the snapshot file if one
    is given. Sessions end after max_lifetime idle seconds, and an hour
    after they began.
    """
    import os

    absolute = max(3600.0, max_lifetime)
    url = os.environ.get("MEMSESSION_REDIS_URL")
    if url:
        from .redis import RedisProvider

        return make_app(Manager(RedisProvider(url), "memsession", max_lifetime, absolute_lifetime=absolute))
    manager = Manager(
        "memory",
        "memsession",
        max_lifetime,
        absolute_lifetime=absolute,
        snapshot=snapshot,
        snapshot_interval=snapshot_interval,
    )
    return make_app(manager)


def _read_form(environ: dict[str, Any]) -> dict[str, list[str]]:
    try:
        length = min(int(environ.get("CONTENT_LENGTH") or 0), 4096)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    return parse_qs(body.decode("utf-8", "replace"))


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    manager: Optional[Manager] = None,
    *,
    max_lifetime: float = 300.0,
    snapshot: Optional[str] = None,
    snapshot_interval: Optional[float] = None,
) -> int:
    """Serve the demo until interrupted (Ctrl+C or SIGTERM); return the exit status."""
    app = create_app(max_lifetime, snapshot, snapshot_interval) if manager is None else make_app(manager)
    try:
        server = make_server(host, port, app, _ThreadingServer, _QuietHandler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(
                f"memsession demo: port {port} on {host} is taken; "
                f"pick another with --port (e.g. --port {port + 1}, or --port 0 for any free one)",
                file=sys.stderr,
            )
        else:
            print(f"memsession demo: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    with server:
        shown = f"[{host}]" if ":" in host else host
        print(f"memsession demo on http://{shown}:{server.server_port}/ (Ctrl+C stops it)")
        sys.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            app.manager.close()  # the last snapshot, if there is one
    return 0
