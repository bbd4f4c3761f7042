"""All cookie policy: reading the Cookie header, cookie attributes, Set-Cookie, cache headers."""

from __future__ import annotations

import re
import secrets
from typing import Optional

from ._impl import is_session_id

__all__ = [
    "CACHE_CONTROL",
    "ID_LENGTH",
    "CookiePolicy",
    "cookie_values",
    "is_session_id",
    "new_session_id",
    "vary_with_cookie",
]

ID_LENGTH = 43  # 32 bytes, URL-safe base64 without padding

# A response that sets the session cookie must not be stored by shared caches.
CACHE_CONTROL = ("Cache-Control", 'no-cache="set-cookie"')
VARY_COOKIE = ("Vary", "Cookie")

_EXPIRED = "Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
_SAMESITE = {"lax": "Lax", "strict": "Strict", "none": "None"}
_TOKEN_SEPARATORS = frozenset('()<>@,;:\\"/[]?={} \t')
_DOMAIN = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
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
    # A cookie value never holds ',' (RFC 6265), and servers that join two
    # Cookie header lines do so with ', ': both separate cookies.
    for part in header.replace(",", ";").split(";") if "," in header else header.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip(" \t") == name:
            value = value.strip(" \t")
            if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
                value = value[1:-1]
            values.append(value)
    return values


def vary_with_cookie(current: Optional[str]) -> Optional[str]:
    """The Vary value a response must carry to vary by Cookie; None when it already does."""
    if current is None or not current.strip():
        return "Cookie"
    names = {part.strip().lower() for part in current.split(",")}
    if "cookie" in names or "*" in names:
        return None
    return f"{current}, Cookie"


def _cookie_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"cookie_name must be str, not {type(name).__name__}")
    if not name:
        raise ValueError("cookie_name must not be empty")
    for ch in name:
        if ch in _TOKEN_SEPARATORS or not (" " < ch < "\x7f"):
            raise ValueError(f"cookie_name {name!r} has a character not allowed in a cookie name")
    return name


def _path(path: object) -> str:
    if not isinstance(path, str):
        raise TypeError(f"cookie_path must be str, not {type(path).__name__}")
    if not path.startswith("/"):
        raise ValueError(f"cookie_path must start with '/', got {path!r}")
    for ch in path:
        if ch == ";" or not (" " <= ch < "\x7f"):
            raise ValueError(f"cookie_path {path!r} has a character not allowed in a cookie path")
    return path


def _domain(domain: object) -> Optional[str]:
    """A valid Domain attribute, its leading dot dropped as browsers and Werkzeug do."""
    if domain is None:
        return None
    if not isinstance(domain, str):
        raise TypeError(f"cookie_domain must be str or None, not {type(domain).__name__}")
    bare = domain[1:] if domain.startswith(".") else domain
    if len(bare) > 253 or not _DOMAIN.match(bare):
        raise ValueError(f"cookie_domain {domain!r} is not a valid domain")
    return bare


def _samesite(value: object) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"cookie_samesite must be str or None, not {type(value).__name__}")
    if value.lower() not in _SAMESITE:
        raise ValueError(f"cookie_samesite must be 'Lax', 'Strict', 'None' or None, got {value!r}")
    return _SAMESITE[value.lower()]


def _flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {type(value).__name__}")
    return value


class CookiePolicy:
    """The session cookie's name and attributes, validated once; formats Set-Cookie values."""

    __slots__ = (
        "name",
        "path",
        "domain",
        "secure",
        "httponly",
        "samesite",
        "partitioned",
        "_lead",
        "_plain",
        "_https",
    )

    def __init__(
        self,
        name: str,
        *,
        path: str = "/",
        domain: Optional[str] = None,
        secure: Optional[bool] = None,
        httponly: bool = True,
        samesite: Optional[str] = "Lax",
        partitioned: bool = False,
        style: str = "standard",
    ) -> None:
        if style not in ("standard", "starlette"):
            raise ValueError(f"cookie_style must be 'standard' or 'starlette', got {style!r}")
        self.name = _cookie_name(name)
        self.path = _path(path)
        self.domain = _domain(domain)
        if secure is not None and not isinstance(secure, bool):
            raise TypeError(f"cookie_secure must be a bool or None, not {type(secure).__name__}")
        self.httponly = _flag(httponly, "cookie_httponly")
        self.samesite = _samesite(samesite)
        self.partitioned = _flag(partitioned, "cookie_partitioned")
        self.secure = self._required_secure(secure)
        if style == "starlette":
            # Starlette's own layout, lower-case attribute names and all, so
            # tests written against its header keep matching.
            self._lead = f"; path={self.path}"
            flags = "; httponly" if self.httponly else ""
            if self.samesite is not None:
                flags += f"; samesite={self.samesite.lower()}"
            after = f"; domain={self.domain}" if self.domain is not None else ""
            after += "; partitioned" if self.partitioned else ""
            self._plain = flags + ("; secure" if self.secure else "") + after
            self._https = flags + ("; secure" if self.secure is not False else "") + after
            return
        self._lead = ""
        tail = f"; Path={self.path}"
        if self.domain is not None:
            tail += f"; Domain={self.domain}"
        flags = "; HttpOnly" if self.httponly else ""
        if self.samesite is not None:
            flags += f"; SameSite={self.samesite}"
        if self.partitioned:
            flags += "; Partitioned"
        # None means Secure exactly on https requests.
        self._plain = tail + ("; Secure" if self.secure else "") + flags
        self._https = tail + ("; Secure" if self.secure is not False else "") + flags

    def _required_secure(self, secure: Optional[bool]) -> Optional[bool]:
        """Apply the rules under which browsers only accept Secure cookies."""
        name = self.name.lower()
        reasons = []
        if name.startswith("__host-"):
            if self.path != "/":
                raise ValueError(f"a __Host- cookie needs cookie_path '/', got {self.path!r}")
            if self.domain is not None:
                raise ValueError("a __Host- cookie must not have a cookie_domain")
            reasons.append("a __Host- cookie name")
        if name.startswith("__secure-"):
            reasons.append("a __Secure- cookie name")
        if self.samesite == "None":
            reasons.append("cookie_samesite 'None'")
        if self.partitioned:
            reasons.append("cookie_partitioned")
        if reasons:
            if secure is False:
                raise ValueError(f"{reasons[0]} needs Secure, but cookie_secure is False")
            return True
        return secure

    def live(self, sid: str, max_age: Optional[int], https: bool) -> str:
        """Set-Cookie for sid: a browser-session cookie when max_age is None."""
        tail = self._https if https else self._plain
        if max_age is None:
            return f"{self.name}={sid}{self._lead}{tail}"
        return f"{self.name}={sid}{self._lead}; Max-Age={max_age}{tail}"

    def expired(self, https: bool) -> str:
        """Set-Cookie that removes the cookie from the browser at once."""
        return f"{self.name}={self._lead}; {_EXPIRED}{self._https if https else self._plain}"

    def __repr__(self) -> str:
        return f"<CookiePolicy {self.name}{self._plain}>"


def _merge_cache_control(current: str) -> Optional[str]:
    directives = {part.strip().split("=", 1)[0].lower() for part in current.split(",")}
    if directives & {"no-store", "private", "no-cache"}:
        return None  # already kept out of shared caches
    return f"{current}, {CACHE_CONTROL[1]}" if current.strip() else CACHE_CONTROL[1]


def session_headers(
    headers: list[tuple[str, str]], set_cookie: Optional[str], accessed: bool
) -> list[tuple[str, str]]:
    """headers plus what the session adds: Set-Cookie, Vary: Cookie, Cache-Control.

    The response varies by Cookie whenever its request used the session or it
    sets the cookie; one that sets the cookie is kept out of shared caches.
    An existing Vary or Cache-Control header is extended, never repeated.
    """
    if set_cookie is None and not accessed:
        return headers
    out = []
    vary: Optional[str] = None
    cache: Optional[str] = None
    for name, value in headers:
        lower = name.lower()
        if lower == "vary":
            vary = value if vary is None else f"{vary}, {value}"
        elif lower == "cache-control" and set_cookie is not None:
            cache = value if cache is None else f"{cache}, {value}"
        else:
            out.append((name, value))
    merged_vary = vary_with_cookie(vary)
    out.append(("Vary", merged_vary if merged_vary is not None else vary))  # type: ignore[arg-type]
    if set_cookie is not None:
        out.append(("Set-Cookie", set_cookie))
        if cache is None:
            out.append(CACHE_CONTROL)
        else:
            merged_cache = _merge_cache_control(cache)
            out.append(("Cache-Control", merged_cache if merged_cache is not None else cache))
    return out
