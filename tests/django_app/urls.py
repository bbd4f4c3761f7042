"""URLs of the test project."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("login", views.login_view),
    path("logout", views.logout_view),
    path("whoami", views.whoami),
    path("count", views.count),
    path("expire", views.expire),
]
