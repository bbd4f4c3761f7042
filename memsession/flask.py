"""Flask integration: flask.session becomes a memsession Session."""

from __future__ import annotations

import warnings
from datetime import timedelta
from typing import Any, Optional, cast

from flask import Flask, current_app, g, request
from flask import session as _session_proxy
from flask.sessions import NullSession, SessionInterface, SessionMixin
from werkzeug.wrappers import Request, Response

from .cookies import session_headers
from .errors import UNAVAILABLE_BODY, UNAVAILABLE_HEADERS, ProviderUnavailableError
from .manager import Manager
from .session import RequestSession

__all__ = ["ConfigWarning", "MemsessionInterface", "destroy_session", "init_app", "regenerate_session"]

_EXTENSION = "memsession"
_UNAVAILABLE = "_memsession_unavailable"

# Flask's defaults for the settings the Manager replaces, and the Manager
# value each one maps to.
_FLASK_DEFAULTS: dict[str, Any] = {
    "SESSION_COOKIE_NAME": "session",
    "SESSION_COOKIE_DOMAIN": None,
    "SESSION_COOKIE_PATH": None,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SECURE": False,
    "SESSION_COOKIE_SAMESITE": None,
    "SESSION_COOKIE_PARTITIONED": False,
    "PERMANENT_SESSION_LIFETIME": timedelta(days=31),
    "SESSION_REFRESH_EACH_REQUEST": True,
}


# A request's session has everything Flask asks of a session (permanent, new,
# modified, accessed and the mapping protocol), so extensions that check may see it.
SessionMixin.register(RequestSession)


class ConfigWarning(UserWarning):
    """A Flask session setting differs from the Manager's option that replaces it."""


class MemsessionInterface(SessionInterface):
    """A Flask session interface backed by a memsession Manager."""

    def __init__(self, manager: Manager) -> None:
        if not isinstance(manager, Manager):
            raise TypeError(f"manager must be a memsession Manager, not {type(manager).__name__}")
        self.manager = manager

    def open_session(self, app: Flask, request: Request) -> Optional[SessionMixin]:
        try:
            session = self.manager.session_start(request.headers.get("Cookie"), https=request.is_secure)
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
            cookie = self.manager.session_cookie(session, https=request.is_secure)
        except ProviderUnavailableError:
            _make_unavailable(response)
            return
        if cookie is not None or session.accessed:
            headers = session_headers(list(response.headers.items()), cookie, session.accessed)
            response.headers.clear()
            response.headers.extend(headers)


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


def _from_flask_config(app: Flask) -> Manager:
    """A memory-provider Manager honouring Flask's own session settings."""
    config = app.config
    lifetime = config.get("PERMANENT_SESSION_LIFETIME", _FLASK_DEFAULTS["PERMANENT_SESSION_LIFETIME"])
    if isinstance(lifetime, timedelta):
        lifetime = lifetime.total_seconds()
    return Manager(
        "memory",
        config.get("SESSION_COOKIE_NAME") or "session",
        lifetime,
        cookie_domain=config.get("SESSION_COOKIE_DOMAIN") or None,
        cookie_path=config.get("SESSION_COOKIE_PATH") or config.get("APPLICATION_ROOT") or "/",
        cookie_httponly=bool(config.get("SESSION_COOKIE_HTTPONLY", True)),
        cookie_secure=True if config.get("SESSION_COOKIE_SECURE") else None,
        cookie_samesite=config.get("SESSION_COOKIE_SAMESITE") or "Lax",
        cookie_partitioned=bool(config.get("SESSION_COOKIE_PARTITIONED", False)),
        # As in Flask: a browser-session cookie unless session.permanent is set.
        cookie_persistent=False,
    )


def _warn_replaced_settings(app: Flask, manager: Manager) -> None:
    """Warn about each Flask session setting changed from its default."""
    for key, default in _FLASK_DEFAULTS.items():
        if key in app.config and app.config[key] != default:
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

    Without a manager, one is built over the memory provider from Flask's
    SESSION_COOKIE_* settings and PERMANENT_SESSION_LIFETIME.
    """
    if not isinstance(app, Flask):
        raise TypeError(f"app must be a Flask app, not {type(app).__name__}")
    if manager is None:
        manager = _from_flask_config(app)
    else:
        if not isinstance(manager, Manager):
            raise TypeError(f"manager must be a memsession Manager, not {type(manager).__name__}")
        _warn_replaced_settings(app, manager)
    app.session_interface = MemsessionInterface(manager)
    app.extensions[_EXTENSION] = manager
    app.before_request(_refuse_when_unavailable)
    app.register_error_handler(ProviderUnavailableError, _unavailable)
    return manager


def _current() -> tuple[Manager, RequestSession]:
    manager = current_app.extensions.get(_EXTENSION)
    if manager is None:
        raise RuntimeError("memsession.flask.init_app() was not called for this app")
    return manager, _session_proxy._get_current_object()  # type: ignore[attr-defined]


def regenerate_session() -> None:
    """Give the current request's session a fresh id, keeping its data (after log in)."""
    manager, session = _current()
    manager.session_regenerate(session)


def destroy_session() -> None:
    """Destroy the current request's session; the response expires the cookie (log out)."""
    manager, session = _current()
    manager.session_destroy(session)
