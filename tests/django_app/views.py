"""Views of the test project; every answer is plain text."""

from __future__ import annotations

from django.contrib.auth import authenticate, login, logout
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_POST


@require_POST
def login_view(request: HttpRequest) -> HttpResponse:
    """POST username and password: log the user in (django.contrib.auth rotates the session key)."""
    user = authenticate(request, username=request.POST.get("username"), password=request.POST.get("password"))
    if user is None:
        return HttpResponse("bad credentials", status=403, content_type="text/plain")
    login(request, user)
    return HttpResponse(f"hello {user.get_username()}", content_type="text/plain")


def logout_view(request: HttpRequest) -> HttpResponse:
    """End the session (django.contrib.auth flushes it)."""
    logout(request)
    return HttpResponse("bye", content_type="text/plain")


def whoami(request: HttpRequest) -> HttpResponse:
    """The logged-in user's name, or "anonymous"; reads the session, never changes it."""
    name = request.user.get_username() if request.user.is_authenticated else "anonymous"
    return HttpResponse(name, content_type="text/plain")


def count(request: HttpRequest) -> HttpResponse:
    """Add one to the session's counter; answer its new value."""
    request.session["count"] = request.session.get("count", 0) + 1
    return HttpResponse(str(request.session["count"]), content_type="text/plain")


def expire(request: HttpRequest) -> HttpResponse:
    """set_expiry(?seconds=N) (0: at browser close; none: the default again); answer the expiry age."""
    seconds = request.GET.get("seconds", "none")
    request.session.set_expiry(None if seconds == "none" else int(seconds))
    request.session["expiry"] = seconds
    return HttpResponse(str(request.session.get_expiry_age()), content_type="text/plain")
