"""Reading the Cookie header, validating ids and cookie attributes."""

from __future__ import annotations

import re
import secrets

from ._impl import is_session_id

__all__ = [
    "CACHE_HEADERS",
    "ID_LENGTH",
    "cookie_values",
    "is_session_id",
    "new_session_id",
    "validate_cookie_name",
    "validate_domain",
    "validate_path",
]

ID_LENGTH = 43  # 32 bytes, URL-safe base64 without padding

# A response that sets the session cookie must not be stored by shared caches.
CACHE_HEADERS = (("Vary", "Cookie"), ("Cache-Control", 'no-cache="set-cookie"'))

_TOKEN_SEPARATORS = frozenset('()<>@,;:\\"/[]?={} \t')
_DOMAIN = re.compile(
    r"\.?[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\Z"
)


def new_session_id() -> str:
    """A fresh id: 32 bytes from the OS CSPRNG, URL-safe base64, 43 characters."""
    return secrets.token_urlsafe(32)


def cookie_values(header: str, name: str) -> list[str]:
    """Every value the Cookie header gives for name, in order; linear in its length."""
    if name not in header:
        return []
    values = []
    for part in header.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip(" \t") == name:
            value = value.strip(" \t")
            if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
                value = value[1:-1]
            values.append(value)
    return values


def validate_cookie_name(name: object) -> str:
    """Return name if it is a valid cookie name (an RFC 7230 token)."""
    if not isinstance(name, str):
        raise TypeError(f"cookie_name must be str, not {type(name).__name__}")
    if not name:
        raise ValueError("cookie_name must not be empty")
    for ch in name:
        if ch in _TOKEN_SEPARATORS or not (" " < ch < "\x7f"):
            raise ValueError(f"cookie_name {name!r} has a character not allowed in a cookie name")
    return name


def validate_path(path: object) -> str:
    """Return path if it is a valid cookie Path attribute."""
    if not isinstance(path, str):
        raise TypeError(f"cookie_path must be str, not {type(path).__name__}")
    if not path.startswith("/"):
        raise ValueError(f"cookie_path must start with '/', got {path!r}")
    for ch in path:
        if ch == ";" or not (" " <= ch < "\x7f"):
            raise ValueError(f"cookie_path {path!r} has a character not allowed in a cookie path")
    return path


def validate_domain(domain: object) -> str | None:
    """Return domain if it is None or a valid cookie Domain attribute."""
    if domain is None:
        return None
    if not isinstance(domain, str):
        raise TypeError(f"cookie_domain must be str or None, not {type(domain).__name__}")
    if len(domain) > 253 or not _DOMAIN.match(domain):
        raise ValueError(f"cookie_domain {domain!r} is not a valid domain")
    return domain
