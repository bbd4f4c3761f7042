"""Settings of the test project: auth users in SQLite, sessions in memsession."""

from __future__ import annotations

import os
import tempfile
from typing import Any

SECRET_KEY = "memsession-django-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "tests.django_app.urls"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("MEMSESSION_TEST_DJANGO_DB")
        or os.path.join(tempfile.gettempdir(), "memsession-django-app.sqlite3"),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
# Fast hashing: the tests create and log in users, nothing here is a real secret.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

SESSION_ENGINE = "memsession.django"
MEMSESSION: dict[str, Any] = {"provider": os.environ.get("MEMSESSION_TEST_PROVIDER", "memory")}
if os.environ.get("MEMSESSION_TEST_REDIS_URL"):
    MEMSESSION["url"] = os.environ["MEMSESSION_TEST_REDIS_URL"]
if os.environ.get("MEMSESSION_TEST_PREFIX"):
    MEMSESSION["prefix"] = os.environ["MEMSESSION_TEST_PREFIX"]
