"""Flask integration: flask.session becomes a memsession session; Flask's settings keep their meaning."""

from __future__ import annotations

import operator
import threading
import warnings
from datetime import timedelta
from typing import Any, Optional, cast

from flask import Flask, current_app, g, request
from flask import session as _session_proxy
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import NullSession, SessionInterface, SessionMixin
from werkzeug.wrappers import Request, Response

from ._impl import RequestSession
from .cookies import CACHE_CONTROL, VARY_COOKIE, session_headers
from .errors import UNAVAILABLE_BODY, UNAVAILABLE_HEADERS, ConfigWarning, ProviderUnavailableError
from .manager import Manager
from .registry import Provider

__all__ = ["ConfigWarning", "MemsessionInterface", "destroy_session", "init_app", "regenerate_session"]

_EXTENSION = "memsession"
_UNAVAILABLE = "_memsession_unavailable"

# The settings Flask reads per request for its session cookie, with Flask's defaults.
_COOKIE_SETTINGS: dict[str, Any] = {
    "SESSION_COOKIE_NAME": "session",
    "SESSION_COOKIE_DOMAIN": None,
    "SESSION_COOKIE_PATH": None,
    "APPLICATION_ROOT": "/",
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SECURE": False,
    "SESSION_COOKIE_SAMESITE": None,
    "SESSION_COOKIE_PARTITIONED": False,
    "PERMANENT_SESSION_LIFETIME": timedelta(days=31),
    "SESSION_PERMANENT": None,
}
_STORE_TYPES = ("memsession", "memory", "redis")

# A request's session has everything Flask asks of a session (permanent, new,
# modified, accessed and the mapping protocol), so extensions that check may see it.
SessionMixin.register(RequestSession)


_SETTING_VALUES = operator.itemgetter(*_COOKIE_SETTINGS)


def _settings(app: Flask) -> tuple[Any, ...]:
    try:
        # One C call per request: Flask's config holds every one of these.
        return tuple(_SETTING_VALUES(app.config))
    except KeyError:  # a setting deleted from the config: its default
        return tuple(app.config.get(key, default) for key, default in _COOKIE_SETTINGS.items())


def _provider_from_config(app: Flask) -> Provider:
    """The store Flask-Session's SESSION_TYPE names (memory unless it says redis)."""
    kind = app.config.get("SESSION_TYPE") or "memsession"
    kind = kind.lower() if isinstance(kind, str) else kind
    if kind not in _STORE_TYPES:
        raise ValueError(
            f"SESSION_TYPE {kind!r} has no memsession store; use 'memsession' (in memory) or 'redis'"
        )
    if kind == "redis":
        from .redis import RedisProvider

        client = app.config.get("SESSION_REDIS")
        prefix = app.config.get("SESSION_KEY_PREFIX") or "session:"
        # Flask's tagged JSON, so tuples (flashed messages), bytes, dates,
        # UUIDs and Markup come back as they went in, as with Flask's cookie.
        serializer = _TaggedJSON()
        if client is not None:
            return RedisProvider(client=client, prefix=prefix, serializer=serializer)
        return RedisProvider(prefix=prefix, serializer=serializer)
    from ._impl import MemoryProvider

    return MemoryProvider()


class _TaggedJSON:
    """Flask's tagged JSON as a Redis serializer (bytes in, bytes out)."""

    def __init__(self) -> None:
        self._tagged = TaggedJSONSerializer()

    def dumps(self, value: Any) -> bytes:
        return self._tagged.dumps(value).encode()

    def loads(self, data: bytes) -> Any:
        return self._tagged.loads(data.decode())


def _manager_from_config(app: Flask, provider: Provider) -> Manager:
    """A Manager over provider honouring Flask's (and Flask-Session's) settings."""
    config = app.config
    permanent = config.get("SESSION_PERMANENT")
    if permanent is None:
        # Flask: a browser-session cookie unless session.permanent is set;
        # Flask-Session (SESSION_TYPE set): permanent by default.
        permanent = config.get("SESSION_TYPE") is not None
    return Manager(
        provider,
        config.get("SESSION_COOKIE_NAME") or "session",
        config.get("PERMANENT_SESSION_LIFETIME", _COOKIE_SETTINGS["PERMANENT_SESSION_LIFETIME"]),
        cookie_domain=config.get("SESSION_COOKIE_DOMAIN") or None,
        cookie_path=config.get("SESSION_COOKIE_PATH") or config.get("APPLICATION_ROOT") or "/",
        cookie_httponly=bool(config.get("SESSION_COOKIE_HTTPONLY", True)),
        cookie_secure=True if config.get("SESSION_COOKIE_SECURE") else None,
        cookie_samesite=config.get("SESSION_COOKIE_SAMESITE") or "Lax",
        cookie_partitioned=bool(config.get("SESSION_COOKIE_PARTITIONED", False)),
        cookie_persistent=bool(permanent),
    )


class MemsessionInterface(SessionInterface):
    """A Flask session interface backed by a memsession Manager.

    Built by init_app. With a Manager of its own making, Flask's settings are
    read per request as Flask reads them; with a Manager given to init_app,
    that Manager decides, and changing a Flask session setting later is an
    error rather than silently ignored.
    """

    def __init__(self, manager: Manager, *, app: Optional[Flask] = None) -> None:
        if not isinstance(manager, Manager):
            raise TypeError(f"manager must be a memsession Manager, not {type(manager).__name__}")
        self.manager = manager
        self._from_config = app is not None
        self._seen = _settings(app) if app is not None else None
        self._lock = threading.Lock()

    def manager_for(self, app: Flask) -> Manager:
        """The Manager for this request, rebuilt when Flask's settings changed."""
        if self._seen is None:
            self._seen = _settings(app)
            return self.manager
        current = _settings(app)
        if current == self._seen:
            return self.manager
        if not self._from_config:
            changed = [k for k, a, b in zip(_COOKIE_SETTINGS, self._seen, current) if a != b]
            raise RuntimeError(
                f"{', '.join(changed)} changed after init_app, but the Manager given to init_app "
                "decides the session cookie; pass the matching Manager option instead"
            )
        with self._lock:
            if current != self._seen:
                self.manager = _manager_from_config(app, self.manager.provider)
                app.extensions[_EXTENSION] = self.manager
                self._seen = current
        return self.manager

    def open_session(self, app: Flask, request: Request) -> Optional[SessionMixin]:
        manager = self.manager_for(app)
        try:
            session = manager.session_start(request.environ.get("HTTP_COOKIE"), https=_is_secure(request))
        except ProviderUnavailableError:
            setattr(g, _UNAVAILABLE, True)  # answered with 503 before the view runs
            return None
        return cast(SessionMixin, session)

    def is_null_session(self, obj: object) -> bool:
        return isinstance(obj, NullSession)

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        if not isinstance(session, RequestSession):
            return  # a NullSession: nothing to save
        try:
            cookie = session._owner.session_cookie(session, https=_is_secure(request))
        except ProviderUnavailableError:
            _make_unavailable(response)
            return
        if cookie is None and not session.accessed:
            return
        headers = response.headers
        if "Vary" not in headers and (cookie is None or "Cache-Control" not in headers):
            # The usual response: nothing of its own to merge ours into.
            headers.add(*VARY_COOKIE)
            if cookie is not None:
                headers.add("Set-Cookie", cookie)
                headers.add(*CACHE_CONTROL)
            return
        merged = session_headers(list(headers.items()), cookie, session.accessed)
        headers.clear()
        headers.extend(merged)


def _is_secure(request: Request) -> bool:
    """Werkzeug's request.is_secure, read from the environ without building request properties."""
    return request.environ.get("wsgi.url_scheme") in ("https", "wss")


def _make_unavailable(response: Response) -> None:
    """Turn a finished response into 503: its session could not be saved."""
    response.status_code = 503
    response.set_data(UNAVAILABLE_BODY)
    for name, value in UNAVAILABLE_HEADERS:
        response.headers[name] = value


def _unavailable(error: ProviderUnavailableError) -> Response:
    """503 for a store failure inside a view."""
    response = Response()
    _make_unavailable(response)
    return response


def _refuse_when_unavailable() -> None:
    if g.get(_UNAVAILABLE):
        raise ProviderUnavailableError("the session store could not be read for this request")


def _warn_about_settings(app: Flask, manager: Optional[Manager]) -> None:
    """Warn about the settings memsession cannot honour."""
    if app.config.get("SESSION_USE_SIGNER"):
        warnings.warn(
            "SESSION_USE_SIGNER has no effect with memsession: session ids are 256 random bits "
            "from the OS, so there is nothing a signature would add",
            ConfigWarning,
            stacklevel=3,
        )
    if manager is None:
        return
    for key, default in _COOKIE_SETTINGS.items():
        if key != "APPLICATION_ROOT" and key in app.config and app.config[key] != default:
            warnings.warn(
                f"{key} is set, but memsession's Manager decides this; "
                f"pass the matching option to Manager (cookie_name={manager.cookie_name!r}, "
                f"max_lifetime={manager.max_lifetime}, ...) or call init_app(app) without a "
                "manager to build one from Flask's settings",
                ConfigWarning,
                stacklevel=3,
            )


def init_app(app: Flask, manager: Optional[Manager] = None) -> Manager:
    """Make flask.session a memsession session; return the Manager in use.

    Without a manager, one is built from Flask's SESSION_COOKIE_* settings,
    PERMANENT_SESSION_LIFETIME and Flask-Session's SESSION_TYPE ("memsession"
    or "redis" with SESSION_REDIS), SESSION_KEY_PREFIX and SESSION_PERMANENT,
    and rebuilt whenever those cookie settings change, as Flask reads them
    per request.
    """
    if not isinstance(app, Flask):
        raise TypeError(f"app must be a Flask app, not {type(app).__name__}")
    if _EXTENSION in app.extensions:
        raise RuntimeError("memsession.flask.init_app() was called already for this app")
    if manager is not None and not isinstance(manager, Manager):
        raise TypeError(f"manager must be a memsession Manager, not {type(manager).__name__}")
    _warn_about_settings(app, manager)
    if manager is None:
        manager = _manager_from_config(app, _provider_from_config(app))
        interface = MemsessionInterface(manager, app=app)
    else:
        interface = MemsessionInterface(manager)
        interface.manager_for(app)  # remembers the settings as they are now
    app.session_interface = interface
    app.extensions[_EXTENSION] = manager
    # First of all hooks: one registered earlier must not meet Flask's NullSession.
    app.before_request_funcs.setdefault(None, []).insert(0, _refuse_when_unavailable)
    app.register_error_handler(ProviderUnavailableError, _unavailable)
    return manager


def _current() -> tuple[Manager, RequestSession]:
    if _EXTENSION not in current_app.extensions:
        raise RuntimeError("memsession.flask.init_app() was not called for this app")
    session = _session_proxy._get_current_object()  # type: ignore[attr-defined]
    if not isinstance(session, RequestSession):
        raise RuntimeError("this request has no memsession session (the store was unavailable)")
    return session._owner, session


def regenerate_session() -> None:
    """Give the current request's session a fresh id, keeping its data (after log in)."""
    manager, session = _current()
    manager.session_regenerate(session)


def destroy_session() -> None:
    """Destroy the current request's session; the response expires the cookie (log out)."""
    manager, session = _current()
    manager.session_destroy(session)
