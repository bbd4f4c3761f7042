"""A minimal Django project whose sessions memsession stores (SESSION_ENGINE = "memsession.django").

Settings come from tests/django_app/settings.py, steered by environment variables
so that a server subprocess and the tests agree:

    MEMSESSION_TEST_DJANGO_DB   the SQLite file holding the auth users
    MEMSESSION_TEST_PROVIDER    MEMSESSION["provider"] (default "memory")
    MEMSESSION_TEST_REDIS_URL   MEMSESSION["url"], when set
    MEMSESSION_TEST_PREFIX      MEMSESSION["prefix"], when set

Serve it with gunicorn as "django.core.wsgi:get_wsgi_application()" and
DJANGO_SETTINGS_MODULE=tests.django_app.settings.
"""
