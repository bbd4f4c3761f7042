"""memsession as a Django session engine (SESSION_ENGINE = "memsession.django").

memsession.django.SessionStore is held to what Django's own session-backend
tests check, on each provider MEMSESSION can name (memory, redis,
cached-redis, and a dotted path to a provider with only the five required
methods); then Django's test client and a real gunicorn serve
tests/django_app with django.contrib.auth on top.

Django is configured for this module only (see django_project), from
tests/django_app/settings.py, and unconfigured afterwards. Where time must
pass, wall_clock moves a fake clock behind memsession.django's expiry and
django.utils.timezone.now: nothing sleeps.
"""

from __future__ import annotations

import asyncio
import math
import os
import runpy
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Optional
from urllib.parse import urlencode

import django
import pytest
from django.conf import settings
from django.contrib.sessions.backends.base import CreateError, UpdateError
from django.contrib.sessions.serializers import JSONSerializer
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import Client, override_settings
from django.utils import timezone
from django.utils.functional import empty

import memsession.django
from memsession import Manager, MemoryProvider
from memsession.cookies import is_session_id
from memsession.django import SessionStore
from memsession.errors import ProviderUnavailableError
from memsession.testing import FakeClock, start_session

from .redis_server import eventually, free_port
from .webserver import Browser

ROOT = Path(__file__).resolve().parent.parent
APP_SETTINGS = ROOT / "tests" / "django_app" / "settings.py"
APP_ENV = ("MEMSESSION_TEST_PROVIDER", "MEMSESSION_TEST_REDIS_URL", "MEMSESSION_TEST_PREFIX")
USER, PASSWORD = "alice", "wonderland"
CREDENTIALS = {"username": USER, "password": PASSWORD}
ENGINES = ("memory", "redis", "cached-redis", "dotted-path")
REDIS_ENGINES = ("redis", "cached-redis")


# -- Django, configured for this module only ------------------------------------------------------


def app_settings(db: Path) -> dict[str, Any]:
    """The settings of tests/django_app with its auth database at db, read with its other variables unset."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MEMSESSION_TEST_DJANGO_DB", str(db))
        for name in APP_ENV:
            env.delenv(name, raising=False)
        values = runpy.run_path(str(APP_SETTINGS))
    return {name: value for name, value in values.items() if name.isupper()}


@pytest.fixture(scope="module", autouse=True)
def django_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Django set up as tests/django_app (auth tables migrated, one user) for this module, undone after it."""
    if settings.configured:
        # Its database cannot be switched (Django warns against overriding DATABASES), and these tests
        # would migrate and fill it: they run where they configure Django themselves.
        pytest.skip("Django was configured before this module; it configures Django as tests/django_app")
    values = app_settings(tmp_path_factory.mktemp("django") / "auth.sqlite3")
    values["LOGGING_CONFIG"] = None  # leave the process's logging as the other tests have it
    settings.configure(**values)
    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connections

    try:
        call_command("migrate", verbosity=0, interactive=False)
        get_user_model().objects.create_user(USER, password=PASSWORD)
        yield
    finally:
        memsession.django.close()
        connections.close_all()
        settings._wrapped = empty  # unconfigured again, as the other test modules found it


# -- the providers memsession.django stores in ------------------------------------------------------


class PlainProvider:
    """A provider with only the five methods the Provider protocol requires (over a MemoryProvider)."""

    def __init__(self) -> None:
        self._inner = MemoryProvider()

    def session_init(self, sid: str) -> Any:
        return self._inner.session_init(sid)

    def session_read(self, sid: str, max_lifetime: Optional[float] = None) -> Any:
        return self._inner.session_read(sid, max_lifetime)

    def session_destroy(self, sid: str) -> None:
        self._inner.session_destroy(sid)

    def session_gc(self, max_lifetime: float) -> int:
        return self._inner.session_gc(max_lifetime)

    def now(self) -> float:
        return self._inner.now()

    def __contains__(self, sid: object) -> bool:
        return sid in self._inner


class AsyncOnlyProvider:
    """The Provider methods as coroutines: what Django's sync session engine cannot use."""

    async def session_init(self, sid: str) -> Any: ...

    async def session_read(self, sid: str, max_lifetime: Optional[float] = None) -> Any: ...

    async def session_destroy(self, sid: str) -> None: ...

    async def session_gc(self, max_lifetime: float) -> int: ...

    def now(self) -> float:
        return 0.0


# What clocked_provider builds: set by the test that names it in MEMSESSION.
CLOCKED: dict[str, Any] = {}


def clocked_provider() -> Any:
    """A provider on the test's fake clock, of the kind CLOCKED says (MEMSESSION's dotted-path option)."""
    from memsession.redis import CachedRedisProvider, RedisProvider

    if CLOCKED["kind"] == "memory":
        return MemoryProvider(clock=CLOCKED["clock"])
    kind = CachedRedisProvider if CLOCKED["kind"] == "cached-redis" else RedisProvider
    return kind(CLOCKED["url"], prefix=CLOCKED["prefix"], clock=CLOCKED["clock"])


def redis_prefix() -> str:
    """A Redis key prefix of this test's own."""
    return f"dj-{uuid.uuid4().hex[:8]}:"


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Iterator[str]:
    """memsession.django on each provider in turn, made afresh from settings.MEMSESSION for this test."""
    kind: str = request.param
    config: dict[str, Any]
    if kind == "memory":
        config = {"provider": "memory"}
    elif kind == "dotted-path":
        config = {"provider": f"{__name__}.PlainProvider"}
    else:
        redis = request.getfixturevalue("running_redis")
        config = {"provider": kind, "url": redis.url, "prefix": redis_prefix()}
    with override_settings(MEMSESSION=config):
        memsession.django.close()
        try:
            yield kind
        finally:
            memsession.django.close()


def engines(only: Iterable[str] = ENGINES, **xfail: str) -> Any:
    """Parametrize the engine fixture; xfail names engines (with _ for -) expected to fail, and why."""
    params = []
    for kind in only:
        reason = xfail.get(kind.replace("-", "_"))
        marks = [pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason)] if reason else []
        params.append(pytest.param(kind, marks=marks, id=kind))
    return pytest.mark.parametrize("engine", params, indirect=True)


@pytest.fixture
def wall_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """A fake wall clock behind memsession.django's expiry (its time.time) and django.utils.timezone.now."""
    clock = FakeClock(time.time())
    monkeypatch.setattr(memsession.django, "time", SimpleNamespace(time=clock))
    monkeypatch.setattr(timezone, "now", lambda: datetime.fromtimestamp(clock(), tz=dt_timezone.utc))
    return clock


def stored(key: Optional[str]) -> bool:
    """True when the provider holds a session under key (whatever its Django expiry)."""
    return key is not None and key in memsession.django.provider()


def saved(data: Optional[dict[str, Any]] = None, expiry: Any = None) -> SessionStore:
    """A session stored with data (and set_expiry(expiry) when given)."""
    session = SessionStore()
    session.update(data or {"cat": "dog"})
    if expiry is not None:
        session.set_expiry(expiry)
    session.save()
    return session


def load(key: Optional[str]) -> dict[str, Any]:
    """The data a new store finds under key."""
    data: dict[str, Any] = SessionStore(key).load()
    return data


# -- the mapping, and the accessed / modified flags ------------------------------------------------


def test_a_new_store_is_empty_and_neither_accessed_nor_modified(engine: str) -> None:
    session = SessionStore()
    assert (session.accessed, session.modified, session.session_key) == (False, False, None)
    assert session.is_empty()


def test_get_of_a_missing_key_gives_the_default_and_marks_accessed_only(engine: str) -> None:
    session = SessionStore()
    assert session.get("cat") is None and session.get("cat", "none") == "none"
    assert (session.accessed, session.modified) == (True, False)


def test_setting_a_key_marks_modified_and_pop_returns_its_value(engine: str) -> None:
    session = SessionStore()
    session["cat"] = "dog"
    assert session.modified and not session.is_empty()
    session.modified = session.accessed = False
    assert session.pop("cat") == "dog"
    assert (session.accessed, session.modified) == (True, True)
    assert session.get("cat") is None


def test_pop_with_a_default_of_a_missing_key_leaves_the_store_unmodified(engine: str) -> None:
    session = SessionStore()
    assert session.pop("some key", "does not exist") == "does not exist"
    assert (session.accessed, session.modified) == (True, False)
    with pytest.raises(KeyError):
        session.pop("some key")


def test_setdefault_sets_only_a_missing_key(engine: str) -> None:
    session = SessionStore()
    assert session.setdefault("foo", "bar") == "bar"
    assert session.setdefault("foo", "baz") == "bar"
    assert (session.accessed, session.modified) == (True, True)


def test_update_sets_every_key_given(engine: str) -> None:
    session = SessionStore()
    session.update({"update key": 1, "other": [2]})
    assert (session.accessed, session.modified) == (True, True)
    assert session.get("update key") == 1 and session["other"] == [2]


def test_membership_and_the_views_mark_accessed_but_not_modified(engine: str) -> None:
    session = SessionStore(saved({"x": 1}).session_key)
    assert (session.accessed, session.modified) == (False, False)
    assert "x" in session and "y" not in session
    assert list(session.keys()) == ["x"]
    assert list(session.values()) == [1]
    assert list(session.items()) == [("x", 1)]
    assert (session.accessed, session.modified) == (True, False)


def test_clear_empties_the_data_and_marks_accessed_and_modified(engine: str) -> None:
    session = SessionStore()
    session["x"] = 1
    session.modified = session.accessed = False
    assert list(session.items()) == [("x", 1)]
    session.clear()
    assert list(session.items()) == []
    assert (session.accessed, session.modified) == (True, True)


def test_the_session_key_is_read_only(engine: str) -> None:
    session = SessionStore()
    with pytest.raises(AttributeError):
        session.session_key = session._get_new_session_key()


@pytest.mark.parametrize("key", ["", "1", "1234567"])
def test_a_key_shorter_than_8_characters_is_dropped_when_the_store_is_made(engine: str, key: str) -> None:
    session = SessionStore(key)
    assert session.session_key is None
    session["cat"] = "dog"
    session.save()
    assert is_session_id(session.session_key) and load(session.session_key) == {"cat": "dog"}


def test_encode_and_decode_round_trip_and_a_corrupt_encoding_is_logged_as_suspicious(
    engine: str, caplog: pytest.LogCaptureFixture
) -> None:
    session = SessionStore()
    data = {"a test key": "a test value", "n": [1, 2]}
    assert session.decode(session.encode(data)) == data
    with caplog.at_level("WARNING", logger="django.security.SuspiciousSession"):
        assert session.decode("bm90IGEgc2Vzc2lvbg:bad:signature") == {}
    assert "corrupted" in caplog.text


# -- save, exists, delete, flush -------------------------------------------------------------------


def test_save_stores_the_session_under_a_new_memsession_id_that_exists_finds(engine: str) -> None:
    session = SessionStore()
    session["cat"] = "dog"
    session.save()
    assert is_session_id(session.session_key)
    assert session.exists(session.session_key) and stored(session.session_key)
    assert not session.exists(SessionStore()._get_new_session_key())


def test_save_of_an_empty_new_store_stores_an_empty_session(engine: str) -> None:
    session = SessionStore()
    session.save()
    assert session.exists(session.session_key) and load(session.session_key) == {}


def test_saved_data_loads_in_another_store_as_djangos_json_gives_it(engine: str) -> None:
    data = {"s": "é ✓", "i": 2**60, "f": 1.5, "t": True, "n": None, "l": [1, "2"], "d": {"k": {"deep": []}}}
    session = saved({**data, "tuple": (1, 2), 3: "int key"})
    assert load(session.session_key) == {**data, "tuple": [1, 2], "3": "int key"}


def test_save_keeps_the_data_in_the_saving_store(engine: str) -> None:
    session = SessionStore()
    session["a"] = "b"
    session.save()
    assert session["a"] == "b" and session.session_key is not None


def test_a_value_changed_in_place_reaches_the_store_only_by_a_save(engine: str) -> None:
    session = saved({"items": [1]})
    session["items"].append(2)  # no save
    other = SessionStore(session.session_key)
    other["items"].append(3)  # on a loaded copy, no save
    assert load(session.session_key) == {"items": [1]}
    session.modified = True
    session.save()
    assert load(session.session_key) == {"items": [1, 2]}


def test_a_load_creates_nothing_for_an_unknown_key(engine: str) -> None:
    unknown = SessionStore()._get_new_session_key()
    session = SessionStore(unknown)
    assert session.load() == {}
    assert session.session_key is None and not stored(unknown) and not session.exists(unknown)


def test_delete_ends_the_session(engine: str) -> None:
    session = saved()
    key = session.session_key
    session.delete()
    assert not session.exists(key) and not stored(key) and load(key) == {}


def test_delete_with_a_key_ends_that_session_only(engine: str) -> None:
    first, second = saved({"n": 1}), saved({"n": 2})
    SessionStore().delete(first.session_key)
    assert not stored(first.session_key) and load(second.session_key) == {"n": 2}
    SessionStore().delete(first.session_key)  # an unknown key is no error
    SessionStore().delete("not a memsession id")


def test_flush_ends_the_session_and_drops_its_key(engine: str) -> None:
    session = saved({"foo": "bar"})
    previous = session.session_key
    session.modified = session.accessed = False
    session.flush()
    assert not session.exists(previous) and not stored(previous)
    assert session.session_key is None and dict(session.items()) == {}
    assert (session.modified, session.accessed) == (True, True)
    session["after"] = 1
    session.save()
    assert session.session_key != previous and load(session.session_key) == {"after": 1}


# -- cycle_key ----------------------------------------------------------------------------------------


def test_cycle_key_moves_the_data_to_a_new_key_and_ends_the_old_one(engine: str) -> None:
    session = saved({"a": "c", "b": "d"})
    previous = session.session_key
    session.cycle_key()
    assert is_session_id(session.session_key) and session.session_key != previous
    assert sorted(session.items()) == [("a", "c"), ("b", "d")]
    assert not stored(previous) and load(previous) == {}
    assert load(session.session_key) == {"a": "c", "b": "d"}


def test_cycle_key_works_without_a_loaded_session_cache(engine: str) -> None:
    previous = saved({"a": "c", "b": "d"}).session_key
    session = SessionStore(previous)
    assert not hasattr(session, "_session_cache")
    session.cycle_key()
    assert sorted(session.items()) == [("a", "c"), ("b", "d")]
    assert session.session_key != previous and not stored(previous)
    assert load(session.session_key) == {"a": "c", "b": "d"}


def test_cycle_key_of_a_session_never_saved_stores_it_under_a_new_key(engine: str) -> None:
    session = SessionStore()
    session["x"] = 1
    session.cycle_key()
    assert is_session_id(session.session_key) and load(session.session_key) == {"x": 1}


def test_a_store_still_holding_the_old_key_sees_nothing_written_after_cycle_key(engine: str) -> None:
    first = saved({"user": "ann"})
    old = first.session_key
    late = SessionStore(old)
    assert late["user"] == "ann"  # loaded before the cycle
    first.cycle_key()
    first["after"] = "cycle"
    first.save()
    assert SessionStore(old).load() == {} and not late.exists(old)
    late["stale"] = "write"
    with pytest.raises(UpdateError):
        late.save()
    assert not stored(old)
    assert load(first.session_key) == {"user": "ann", "after": "cycle"}


def test_cycle_key_keeps_a_key_another_store_wrote_just_before(engine: str) -> None:
    key = saved({"user": "ann"}).session_key
    cycling = SessionStore(key)
    cycling["step"] = 2  # loaded, and changed by this request
    other = SessionStore(key)
    other["cart"] = ["book"]
    other.save()
    cycling.cycle_key()
    assert load(cycling.session_key) == {"user": "ann", "step": 2, "cart": ["book"]}


def test_cycle_key_after_the_session_ended_elsewhere_moves_only_this_stores_changes(engine: str) -> None:
    key = saved({"_auth_user_id": "1", "theme": "dark"}).session_key
    cycling = SessionStore(key)
    cycling["step"] = 2
    SessionStore(key).delete()  # a logout in another tab
    cycling.cycle_key()
    assert load(cycling.session_key) == {"step": 2}


ASYNC_CYCLE = (
    "acycle_key() is SessionBase's own (create a new key with this store's view of the data, then delete "
    "the old key): memsession.django overrides cycle_key() only, so async code (django.contrib.auth.alogin, "
    "aupdate_session_auth_hash) gets neither the atomic take nor the merge. A write another request made "
    "just before is lost, and a session that ended elsewhere (a logout in another tab) comes back whole, "
    "_auth_user_id included. Repro: c = SessionStore(key); await c.aset('step', 2); "
    "SessionStore(key).delete(); await c.acycle_key(); "
    "SessionStore(c.session_key).load() -> the logged-out data"
)


def acycle(key: str, before: Any) -> str:
    """Load key in a store, change it, run before(key), then acycle_key(); the new key."""

    async def scenario() -> Optional[str]:
        cycling = SessionStore(key)
        await cycling.aset("step", 2)
        await before(key)
        await cycling.acycle_key()
        return cycling.session_key

    new = asyncio.run(scenario())
    assert new is not None and new != key
    return new


@engines()
def test_acycle_key_keeps_a_key_another_store_wrote_just_before(engine: str) -> None:
    async def other_writes(key: str) -> None:
        other = SessionStore(key)
        await other.aset("cart", ["book"])
        await other.asave()

    new = acycle(saved({"user": "ann"}).session_key, other_writes)
    assert load(new) == {"user": "ann", "step": 2, "cart": ["book"]}


@engines()
def test_acycle_key_after_the_session_ended_elsewhere_moves_only_this_stores_changes(engine: str) -> None:
    async def logout_elsewhere(key: str) -> None:
        await SessionStore(key).adelete()

    new = acycle(saved({"_auth_user_id": "1", "theme": "dark"}).session_key, logout_elsewhere)
    assert load(new) == {"step": 2}


# -- keys memsession did not issue ---------------------------------------------------------------------

FOREIGN_KEYS = {
    "unknown": "A" * 42 + "A",
    "eight-characters": "abcdefgh",
    "django-style": "k3jx0x8ffdyquzjoew2t8bq1xxfnnqd5",
    "overlong": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" * 20,
    "43-with-a-dot": "A" * 42 + ".",
    "43-bad-last-character": "A" * 42 + "B",
}


@pytest.mark.parametrize("key", FOREIGN_KEYS.values(), ids=FOREIGN_KEYS.keys())
def test_a_key_memsession_did_not_issue_loads_nothing_and_is_never_adopted(engine: str, key: str) -> None:
    session = SessionStore(key)
    assert session.get("cat") is None and session.load() == {}
    assert session.session_key is None and not session.exists(key)
    session["cat"] = "dog"
    session.save()
    assert session.session_key != key and is_session_id(session.session_key)
    assert not stored(key) and load(key) == {}
    assert load(session.session_key) == {"cat": "dog"}


@pytest.mark.parametrize("key", FOREIGN_KEYS.values(), ids=FOREIGN_KEYS.keys())
def test_a_save_under_a_key_memsession_did_not_issue_raises_update_error_as_djangos_engines_do(
    engine: str, key: str
) -> None:
    with pytest.raises(UpdateError):
        SessionStore(key).save()
    assert not stored(key)


def test_save_must_create_on_a_key_memsession_did_not_issue_raises_create_error(engine: str) -> None:
    session = SessionStore()
    session["x"] = 1
    session._session_key = "abcdefgh12345678"
    with pytest.raises(CreateError):
        session.save(must_create=True)
    assert not stored("abcdefgh12345678")


# -- CreateError, UpdateError --------------------------------------------------------------------------


def test_save_must_create_on_a_live_key_raises_create_error_and_keeps_that_session(engine: str) -> None:
    first = saved({"owner": "first"})
    second = SessionStore()
    second["owner"] = "second"
    second._session_key = first.session_key
    with pytest.raises(CreateError):
        second.save(must_create=True)
    assert load(first.session_key) == {"owner": "first"}


def test_a_save_after_another_store_deleted_the_session_raises_update_error_and_does_not_revive_it(
    engine: str,
) -> None:
    first = SessionStore()
    first["test_data"] = "value1"
    first.save(must_create=True)
    SessionStore(first.session_key).delete()
    first["test_data"] = "value2"
    with pytest.raises(UpdateError):
        first.save()
    assert not stored(first.session_key)
    assert first.load() == {}


# -- concurrent stores of one session -------------------------------------------------------------------


def test_two_stores_of_one_session_writing_different_keys_both_survive(engine: str) -> None:
    key = saved({"base": 0}).session_key
    first, second = SessionStore(key), SessionStore(key)
    first["a"], second["b"] = 1, 2  # both loaded before either saves
    first.save()
    second.save()
    assert load(key) == {"base": 0, "a": 1, "b": 2}


def test_a_key_one_store_removed_stays_removed_when_another_store_writes_another_key(engine: str) -> None:
    key = saved({"keep": 1, "drop": 2}).session_key
    first, second = SessionStore(key), SessionStore(key)
    del first["drop"]
    second["new"] = 3
    first.save()
    second.save()
    assert load(key) == {"keep": 1, "new": 3}


INTERNAL_KEY = (
    "the expiry is kept in the session's own data under the key '\\x00expires': a Django session key of that "
    "name is overwritten at save and filtered out at load, so its value is lost without an error. "
    "Repro: s['\\x00expires'] = 'mine'; s.save(); SessionStore(s.session_key).load() -> {} "
    "(Django's engines keep any str key)"
)


@engines()
def test_the_key_the_engine_keeps_its_expiry_under_is_refused_at_save_not_lost(engine: str) -> None:
    with pytest.raises(ValueError, match="expires"):
        saved({"\x00expires": "mine", "other": 1})


CLEAR_UNLOADED = (
    "clear() sets an empty cache without loading the session (SessionBase.clear skips the load on "
    "purpose), so the store's record of what was loaded stays empty and save()/cycle_key() see nothing "
    "to remove: the old data survives. Repro: s = SessionStore(key); s.clear(); s.save(); "
    "SessionStore(key).load() -> the old data (Django's db and cache engines give {})"
)


@engines()
@pytest.mark.parametrize("then", ["save", "cycle_key"])
def test_clear_as_the_first_use_of_a_store_removes_the_stored_data(engine: str, then: str) -> None:
    key = saved({"_auth_user_id": "1", "cart": ["book"]}).session_key
    session = SessionStore(key)
    session.clear()
    session["fresh"] = True
    getattr(session, then)()
    assert load(session.session_key) == {"fresh": True}


# -- expiry -----------------------------------------------------------------------------------------------


def test_the_default_expiry_age_is_session_cookie_age_also_for_a_browser_close_session(engine: str) -> None:
    session = SessionStore()
    assert session.get_expiry_age() == settings.SESSION_COOKIE_AGE
    session.set_expiry(0)
    assert session.get_expiry_age() == settings.SESSION_COOKIE_AGE


def expiry_value(kind: str, seconds: int) -> Any:
    """set_expiry's argument for an expiry seconds from now, of the given kind."""
    if kind == "seconds":
        return seconds
    if kind == "timedelta":
        return timedelta(seconds=seconds)
    return timezone.now() + timedelta(seconds=seconds)


@pytest.mark.parametrize("kind", ["seconds", "timedelta", "datetime"])
def test_set_expiry_gives_that_expiry_age_and_date_also_after_a_reload(
    engine: str, wall_clock: FakeClock, kind: str
) -> None:
    modification = timezone.now()
    session = SessionStore()
    session.set_expiry(expiry_value(kind, 10))
    assert session.get_expiry_age(modification=modification) == 10
    assert session.get_expiry_date(modification=modification) == modification + timedelta(seconds=10)
    session.save()
    reloaded = SessionStore(session.session_key)
    assert reloaded.get_expiry_age(modification=modification) == 10
    assert reloaded.get_expiry_date(modification=modification) == modification + timedelta(seconds=10)


def test_set_expiry_none_restores_the_default(engine: str) -> None:
    session = SessionStore()
    session.set_expiry(None)
    session.set_expiry(10)
    session.set_expiry(None)
    assert session.get_expiry_age() == settings.SESSION_COOKIE_AGE
    assert "_session_expiry" not in session


@pytest.mark.parametrize("at_browser_close", [False, True])
def test_get_expire_at_browser_close_follows_set_expiry_and_the_setting(
    engine: str, at_browser_close: bool
) -> None:
    with override_settings(SESSION_EXPIRE_AT_BROWSER_CLOSE=at_browser_close):
        session = SessionStore()
        session.set_expiry(10)
        assert session.get_expire_at_browser_close() is False
        session.set_expiry(0)
        assert session.get_expire_at_browser_close() is True
        session.save()
        assert SessionStore(session.session_key).get_expire_at_browser_close() is True
        session.set_expiry(None)
        assert session.get_expire_at_browser_close() is at_browser_close


@pytest.mark.parametrize("kind", ["seconds", "timedelta", "datetime"])
def test_a_session_saved_with_an_expiry_in_the_past_is_not_loaded(engine: str, kind: str) -> None:
    session = SessionStore()
    session["foo"] = "bar"
    session.set_expiry(expiry_value(kind, -10))
    session.save()
    old = session.session_key
    again = SessionStore(old)
    assert "foo" not in again and again.session_key is None
    assert not SessionStore().exists(old)


@pytest.mark.parametrize(
    "expiry, lifetime",
    [(60, 60), (timedelta(seconds=60), 60), ("datetime", 60), (0, 100), (None, 100)],
    ids=["seconds", "timedelta", "datetime", "browser-close", "default"],
)
def test_a_session_lives_until_its_expiry_age_after_its_last_save_and_not_longer(
    engine: str, wall_clock: FakeClock, expiry: Any, lifetime: int
) -> None:
    with override_settings(SESSION_COOKIE_AGE=100):
        session = SessionStore()
        session["foo"] = "bar"
        session.set_expiry(expiry_value("datetime", 60) if expiry == "datetime" else expiry)
        session.save()
        key = session.session_key
        wall_clock.advance(lifetime - 1)
        assert SessionStore().exists(key) and load(key)["foo"] == "bar"  # reads push nothing out
        wall_clock.advance(2)
        assert not SessionStore().exists(key)
        late = SessionStore(key)
        assert late.load() == {} and late.session_key is None


def test_a_save_pushes_an_expiry_in_seconds_out(engine: str, wall_clock: FakeClock) -> None:
    session = saved({"foo": "bar"}, expiry=60)
    key = session.session_key
    wall_clock.advance(50)
    again = SessionStore(key)
    again.modified = True
    again.save()
    wall_clock.advance(50)
    assert load(key)["foo"] == "bar"
    wall_clock.advance(11)
    assert load(key) == {}


HORIZON = (
    "with Redis every process keeps a hash a fixed ttl (MEMSESSION['ttl'], default SESSION_COOKIE_AGE) "
    "after its last use, whatever the session's own expiry: a set_expiry() longer than that is cut to it "
    "(documented). Repro: COOKIE_AGE=100, s.set_expiry(1000); s.save(); 500 s idle later "
    "SessionStore(key).load() -> {}"
)


@engines(only=REDIS_ENGINES, redis=HORIZON, cached_redis=HORIZON)
def test_an_expiry_longer_than_session_cookie_age_holds_in_a_process_that_did_not_save_it(
    engine: str, wall_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(CLOCKED, "kind", engine)
    monkeypatch.setitem(CLOCKED, "url", settings.MEMSESSION["url"])
    monkeypatch.setitem(CLOCKED, "prefix", settings.MEMSESSION["prefix"])
    monkeypatch.setitem(CLOCKED, "clock", wall_clock)
    with override_settings(SESSION_COOKIE_AGE=100, MEMSESSION={"provider": f"{__name__}.clocked_provider"}):
        memsession.django.close()
        key = saved({"remember": "me"}, expiry=1000).session_key
        wall_clock.advance(500)
        assert load(key) == {"remember": "me", "_session_expiry": 1000}  # the process that saved it
        memsession.django.close()  # a worker process of its own, with a provider of its own
        wall_clock.advance(500)  # idle 500 s: longer than SESSION_COOKIE_AGE, within the expiry
        assert load(key) == {"remember": "me", "_session_expiry": 1000}


MEMORY_KEEPS_EXPIRED = (
    "README: 'the memory store also reclaims such sessions on its own'; it reclaims only sessions idle "
    "longer than the horizon (the longest expiry age saved, at least SESSION_COOKIE_AGE), and a read of "
    "an expired session marks it used first: a session past a short set_expiry() stays in memory, data "
    "and all, until clearsessions or SESSION_COOKIE_AGE of idleness. Repro: COOKIE_AGE=100, "
    "s.set_expiry(10); s.save(); 20 s later, new sessions and reads: s.session_key in provider() -> True"
)


@engines(only=("memory",), memory=MEMORY_KEEPS_EXPIRED)
def test_the_memory_store_reclaims_a_session_past_its_expiry_without_clearsessions(
    engine: str, wall_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(CLOCKED, "kind", "memory")
    monkeypatch.setitem(CLOCKED, "clock", wall_clock)
    with override_settings(SESSION_COOKIE_AGE=100, MEMSESSION={"provider": f"{__name__}.clocked_provider"}):
        memsession.django.close()
        expired = saved({"secret": "data"}, expiry=10).session_key
        wall_clock.advance(20)
        assert load(expired) == {}
        for _ in range(5):  # the traffic that follows: new sessions, and reads of them
            load(saved().session_key)
        assert not stored(expired)


REDIS_KEEPS_EXPIRED = (
    "clear_expired() does nothing for Redis ('Redis expires its own'), but the hash's TTL is the idle "
    "horizon (SESSION_COOKIE_AGE+1s at least), not the session's expiry: an expired session's data stays "
    "in Redis up to SESSION_COOKIE_AGE after it expired. Repro: s.set_expiry(-3600); s.save(); "
    "call_command('clearsessions'); s.session_key in provider() -> True"
)
PLAIN_KEEPS_EXPIRED = (
    "with a provider that has no sessions() (the Provider protocol does not require it), clear_expired() "
    "returns without removing anything and without the NotImplementedError Django's contract asks for; "
    "session_gc() is never called either. Repro: MEMSESSION={'provider': 'tests.test_django.PlainProvider'}, "
    "an expired session, call_command('clearsessions') -> still stored"
)


@engines(redis=REDIS_KEEPS_EXPIRED, cached_redis=REDIS_KEEPS_EXPIRED, dotted_path=PLAIN_KEEPS_EXPIRED)
def test_clearsessions_removes_the_sessions_past_their_expiry_and_keeps_the_others(engine: str) -> None:
    live = saved({"foo": "bar"}, expiry=3600)
    expired = saved({"foo": "bar"}, expiry=-3600)
    call_command("clearsessions")
    assert stored(live.session_key) and load(live.session_key)["foo"] == "bar"
    assert not stored(expired.session_key)


# A provider instance MEMSESSION names by dotted path: set by the test that shares it.
SHARED: Any = None

FOREIGN_SWEPT = (
    "clear_expired() destroys every session in the store that lacks the engine's expiry record, so the "
    "sessions another memsession user keeps in a shared provider (a Manager naming the same provider "
    "instance) are wiped by clearsessions. Repro: MEMSESSION={'provider': 'app.SHARED'} with SHARED a "
    "MemoryProvider a Manager also uses; a Manager session; call_command('clearsessions') -> it is gone"
)


@engines(only=("memory",))
def test_clearsessions_leaves_the_sessions_of_other_users_of_a_shared_provider_alone(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = MemoryProvider()
    monkeypatch.setattr(sys.modules[__name__], "SHARED", shared)
    with override_settings(MEMSESSION={"provider": f"{__name__}.SHARED"}):
        memsession.django.close()
        assert memsession.django.provider() is shared
        with Manager(shared, "sid", 3600) as manager:
            other = start_session(manager, {"cart": ["book"]})
            expired = saved({"x": 1}, expiry=-10).session_key
            call_command("clearsessions")
            assert not stored(expired)
            assert other.cookie_value in shared


def test_clear_expired_keeps_a_session_whose_expiry_a_later_save_pushed_out(
    engine: str, wall_clock: FakeClock
) -> None:
    session = saved({"foo": "bar"}, expiry=60)
    wall_clock.advance(50)
    session.modified = True
    session.save()
    wall_clock.advance(20)
    SessionStore.clear_expired()
    assert load(session.session_key)["foo"] == "bar"


# -- what Django's serializer accepts and refuses -----------------------------------------------------

REFUSED = {
    "set": {1, 2},
    "object": object(),
    "datetime": datetime(2020, 1, 1),
    "bytes": b"raw",
    "decimal": Decimal("1.5"),
}


def djangos_error(value: Any) -> type[BaseException]:
    """The exception type Django's JSONSerializer raises for a session holding value."""
    try:
        JSONSerializer().dumps({"v": value})
    except Exception as exc:  # noqa: BLE001 - whatever it is, the engine must raise the same
        return type(exc)
    raise AssertionError(f"Django's JSONSerializer accepts {value!r}")


@pytest.mark.parametrize("value", REFUSED.values(), ids=REFUSED.keys())
def test_a_value_djangos_serializer_refuses_is_refused_at_save_with_its_exception(
    engine: str, value: Any
) -> None:
    expected = djangos_error(value)
    fresh = SessionStore()
    fresh["v"] = value
    with pytest.raises(expected) as raised:
        fresh.save()
    assert type(raised.value) is expected
    assert not stored(fresh.session_key)

    key = saved({"kept": 1}).session_key
    existing = SessionStore(key)
    existing["v"] = value
    existing["also"] = 2
    with pytest.raises(expected) as raised:
        existing.save()
    assert type(raised.value) is expected
    assert load(key) == {"kept": 1}


ACCEPTED = {"nan": float("nan"), "infinity": float("inf"), "lone-surrogate": "\ud800"}
REDIS_JSON = (
    "Django's JSONSerializer (and so its db, cache and file engines) stores NaN, Infinity and lone "
    "surrogates, but the Redis providers' serializer (allow_nan=False, UTF-8 encoding) refuses them: "
    "save() raises TypeError 'session value ... cannot be stored in Redis'. Repro: s['v'] = float('nan'); "
    "s.save() with provider redis"
)


@engines(redis=REDIS_JSON, cached_redis=REDIS_JSON)
@pytest.mark.parametrize("value", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_a_value_djangos_serializer_accepts_is_stored(engine: str, value: Any) -> None:
    JSONSerializer().loads(JSONSerializer().dumps({"v": value}))  # Django takes it
    session = SessionStore()
    session["v"] = value
    try:
        session.save()
    except TypeError as exc:
        raise AssertionError(f"save() refused {value!r}: {exc}") from exc
    back = load(session.session_key)["v"]
    assert (isinstance(value, float) and math.isnan(value) and math.isnan(back)) or back == value


# -- the async API -------------------------------------------------------------------------------------


def test_the_async_methods_read_write_save_cycle_and_flush_like_the_sync_ones(engine: str) -> None:
    async def scenario() -> None:
        session = SessionStore()
        await session.aset("a", 1)
        assert await session.aget("a") == 1 and await session.ahas_key("a")
        await session.asave()
        key = session.session_key
        assert await session.aexists(key)
        other = SessionStore(key)
        assert await other.aload() == {"a": 1}
        await other.aset_expiry(300)
        assert await other.aget_expiry_age() == 300
        await other.acycle_key()
        assert other.session_key != key and not await other.aexists(key)
        assert await SessionStore(other.session_key).aget("a") == 1
        moved = other.session_key
        await other.aflush()
        assert other.session_key is None and not await other.aexists(moved)
        await SessionStore.aclear_expired()

    asyncio.run(scenario())


# -- settings.MEMSESSION ---------------------------------------------------------------------------------


def test_close_makes_the_next_use_follow_the_settings_of_then(running_redis: Any) -> None:
    from memsession.redis import RedisProvider

    prefix = redis_prefix()
    try:
        with override_settings(MEMSESSION={"provider": "memory"}):
            memsession.django.close()
            key = saved({"where": "memory"}).session_key
            memory = memsession.django.provider()
            assert isinstance(memory, MemoryProvider) and memsession.django.provider() is memory
            redis = {"provider": "redis", "url": running_redis.url, "prefix": prefix}
            with override_settings(MEMSESSION=redis):
                assert memsession.django.provider() is memory  # made once per process
                memsession.django.close()
                assert isinstance(memsession.django.provider(), RedisProvider)
                assert load(key) == {}
                redis_key = saved({"where": "redis"}).session_key
                memsession.django.close()
                assert load(redis_key) == {"where": "redis"}
    finally:
        memsession.django.close()


BAD_VALUE = (
    "a MEMSESSION option of the right name but a bad value reaches the provider's constructor unchecked and "
    "comes out as its TypeError / ValueError, not ImproperlyConfigured (as bad snapshot options and every "
    "other bad MEMSESSION do). Repro: MEMSESSION={'provider': 'memory', 'max_sessions': 0}; "
    "memsession.django.provider() -> ValueError"
)
UNKNOWN_NAME = (
    "a provider name that is not registered raises memsession's UnknownProviderError (a LookupError), not "
    "ImproperlyConfigured as every other bad MEMSESSION does. Repro: MEMSESSION={'provider': 'memroy'}; "
    "memsession.django.provider()"
)
BAD_SETTINGS = {
    "not-a-dict": ["memory"],
    "unknown-option": {"provider": "memory", "ttl": 60},
    "url-for-memory": {"provider": "memory", "url": "redis://127.0.0.1:1/0"},
    "max-sessions-for-redis": {"provider": "redis", "max_sessions": 10},
    "provider-not-a-str": {"provider": 5},
    "dotted-path-not-importable": {"provider": "tests.no_such_module.provider"},
    "dotted-path-not-a-provider": {"provider": "collections.OrderedDict"},
    "async-provider": {"provider": f"{__name__}.AsyncOnlyProvider"},
}


@pytest.mark.parametrize(
    "config",
    [pytest.param(value, id=name) for name, value in BAD_SETTINGS.items()]
    + [
        pytest.param(
            {"provider": "memroy"},
            id="unregistered-name",
        )
    ]
    + [
        pytest.param(
            value,
            id=name,
        )
        for name, value in {
            "max-sessions-zero": {"provider": "memory", "max_sessions": 0},
            "max-sessions-not-an-int": {"provider": "memory", "max_sessions": "many"},
            "url-not-redis": {"provider": "redis", "url": "ftp://127.0.0.1/"},
            "prefix-not-a-str": {"provider": "redis", "prefix": 5},
        }.items()
    ],
)
def test_memsession_settings_that_name_no_usable_provider_are_improperly_configured(config: Any) -> None:
    try:
        with override_settings(MEMSESSION=config):
            memsession.django.close()
            with pytest.raises(ImproperlyConfigured):
                memsession.django.provider()
    finally:
        memsession.django.close()


# -- through Django's test client -------------------------------------------------------------------------


def cookie_of(client: Client) -> Optional[str]:
    """The session key in the client's cookie jar (None when it holds none, or a deleted one)."""
    morsel = client.cookies.get(settings.SESSION_COOKIE_NAME)
    return morsel.value if morsel is not None and morsel.value else None


def test_a_counter_in_request_session_counts_across_requests_under_one_memsession_id(engine: str) -> None:
    client = Client()
    assert [client.get("/count").content for _ in range(3)] == [b"1", b"2", b"3"]
    key = cookie_of(client)
    assert is_session_id(key) and load(key) == {"count": 3}


def test_login_moves_the_session_to_a_new_key_and_the_old_cookie_no_longer_authenticates(engine: str) -> None:
    client = Client()
    assert client.get("/count").content == b"1"
    before = cookie_of(client)
    response = client.post("/login", CREDENTIALS)
    assert response.status_code == 200 and response.content == b"hello alice"
    after = cookie_of(client)
    assert is_session_id(after) and after != before
    assert client.get("/whoami").content == b"alice"
    assert client.get("/count").content == b"2"  # the data moved with the key
    assert not stored(before)
    old = Client()
    old.cookies[settings.SESSION_COOKIE_NAME] = before
    assert old.get("/whoami").content == b"anonymous"


def test_a_wrong_password_logs_nobody_in(engine: str) -> None:
    client = Client()
    assert client.post("/login", {"username": USER, "password": "wrong"}).status_code == 403
    assert client.get("/whoami").content == b"anonymous"


def test_logout_ends_the_session_and_deletes_the_cookie(engine: str) -> None:
    client = Client()
    client.post("/login", CREDENTIALS)
    key = cookie_of(client)
    assert stored(key)
    response = client.get("/logout")
    morsel = response.cookies[settings.SESSION_COOKIE_NAME]
    assert morsel.value == "" and morsel["max-age"] == 0
    assert not stored(key)
    assert client.get("/whoami").content == b"anonymous"
    old = Client()
    old.cookies[settings.SESSION_COOKIE_NAME] = key
    assert old.get("/whoami").content == b"anonymous"


def test_a_cookie_naming_an_unknown_session_gets_a_new_key_and_nothing_under_its_own(engine: str) -> None:
    unknown = SessionStore()._get_new_session_key()
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = unknown
    assert client.get("/count").content == b"1"
    assert cookie_of(client) != unknown and not stored(unknown)


@pytest.mark.parametrize(
    "cookie_settings, name, httponly, samesite, secure",
    [
        ({}, "sessionid", True, "Lax", ""),
        (
            {
                "SESSION_COOKIE_NAME": "sid",
                "SESSION_COOKIE_HTTPONLY": False,
                "SESSION_COOKIE_SAMESITE": "Strict",
                "SESSION_COOKIE_SECURE": True,
            },
            "sid",
            "",
            "Strict",
            True,
        ),
    ],
    ids=["defaults", "changed"],
)
def test_the_session_cookie_carries_the_session_cookie_settings(
    engine: str, cookie_settings: dict[str, Any], name: str, httponly: Any, samesite: str, secure: Any
) -> None:
    with override_settings(**cookie_settings):
        response = Client().get("/count")
    assert list(response.cookies) == [name]
    morsel = response.cookies[name]
    assert (morsel["httponly"], morsel["samesite"], morsel["secure"]) == (httponly, samesite, secure)
    assert morsel["max-age"] == settings.SESSION_COOKIE_AGE and morsel["path"] == "/"
    assert load(morsel.value) == {"count": 1}


def test_set_expiry_sets_the_cookie_max_age_and_zero_gives_a_browser_session_cookie(engine: str) -> None:
    client = Client()
    response = client.get("/expire", {"seconds": 300})
    assert response.content == b"300" and response.cookies["sessionid"]["max-age"] == 300
    response = client.get("/expire", {"seconds": 0})
    morsel = response.cookies["sessionid"]
    assert (morsel["max-age"], morsel["expires"]) == ("", "")
    response = client.get("/expire", {"seconds": "none"})
    assert response.cookies["sessionid"]["max-age"] == settings.SESSION_COOKIE_AGE
    assert load(cookie_of(client)) == {"expiry": "none"}


def test_a_session_set_to_expire_in_the_past_is_gone_by_the_next_request(engine: str) -> None:
    client = Client()
    assert client.get("/count").content == b"1"
    client.get("/expire", {"seconds": -1})
    assert client.get("/count").content == b"1"


@pytest.mark.parametrize("every_request", [True, False])
def test_save_every_request_pushes_the_expiry_out_on_requests_that_only_read(
    engine: str, wall_clock: FakeClock, every_request: bool
) -> None:
    with override_settings(SESSION_SAVE_EVERY_REQUEST=every_request, SESSION_COOKIE_AGE=100):
        client = Client()
        assert client.get("/count").content == b"1"
        key = cookie_of(client)
        for _ in range(3):
            wall_clock.advance(60)
            response = client.get("/whoami")
            if every_request:  # the same session, its cookie sent again
                assert response.cookies[settings.SESSION_COOKIE_NAME].value == key
        # 180 s after the count: alive only when each read saved it.
        assert client.get("/count").content == (b"2" if every_request else b"1")


def test_the_test_clients_login_session_and_force_login_helpers_work_with_the_engine(engine: str) -> None:
    from django.contrib.auth import get_user_model

    client = Client()
    assert client.login(username=USER, password=PASSWORD)
    assert client.get("/whoami").content == b"alice"
    session = client.session
    session["count"] = 41
    session.save()
    assert client.get("/count").content == b"42"
    client.logout()
    assert client.get("/whoami").content == b"anonymous"
    client.force_login(get_user_model().objects.get(username=USER))
    assert client.get("/whoami").content == b"alice"


@engines(only=REDIS_ENGINES)
def test_a_store_outage_fails_the_request_instead_of_serving_it_without_the_session(
    engine: str, running_redis: Any
) -> None:
    client = Client()
    client.post("/login", CREDENTIALS)
    assert client.get("/whoami").content == b"alice"
    running_redis.stop()
    with pytest.raises(ProviderUnavailableError):
        client.get("/whoami")


# -- a real server ------------------------------------------------------------------------------------------


def manage(env: dict[str, str], *args: str) -> None:
    """Run `python -m django ...` for tests/django_app (in env), failing with its output."""
    done = subprocess.run(
        [sys.executable, "-m", "django", *args], env=env, cwd=ROOT, capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")


@pytest.fixture
def django_site(tmp_path: Path, running_redis: Any) -> Iterator[tuple[str, Path]]:
    """gunicorn -w 2 serving tests/django_app (sessions in cached-redis, user alice); yields (URL, log)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.django_app.settings",
        "MEMSESSION_TEST_DJANGO_DB": str(tmp_path / "auth.sqlite3"),
        "MEMSESSION_TEST_PROVIDER": "cached-redis",
        "MEMSESSION_TEST_REDIS_URL": running_redis.url,
        "MEMSESSION_TEST_PREFIX": redis_prefix(),
    }
    manage(env, "migrate", "--noinput", "--verbosity", "0")
    manage(
        env,
        "shell",
        "--command",
        "from django.contrib.auth.models import User; "
        f"User.objects.create_user({USER!r}, password={PASSWORD!r})",
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-w",
                "2",
                "-k",
                "sync",
                "-b",
                f"127.0.0.1:{port}",
                "--graceful-timeout",
                "5",
                "--log-level",
                "warning",
                "django.core.wsgi:get_wsgi_application()",
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:

            def answers() -> bool:
                if proc.poll() is not None:
                    raise AssertionError(f"gunicorn exited: {log_path.read_text(errors='replace')}")
                try:
                    return Browser(base).request("/whoami")[0] == 200
                except OSError:
                    return False  # not listening yet

            eventually(answers, "gunicorn serves tests/django_app")
            yield base, log_path
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(15)


def test_a_real_gunicorn_logs_a_browser_in_shows_whoami_and_logs_it_out(
    django_site: tuple[str, Path],
) -> None:
    base, log_path = django_site
    browser = Browser(base)
    assert browser.request("/count")[2] == "1"
    before = browser.cookie("sessionid")
    status, _, body = browser.request("/login", data=urlencode(CREDENTIALS).encode())
    assert (status, body) == (200, "hello alice")
    after = browser.cookie("sessionid")
    assert is_session_id(after) and after != before
    for _ in range(4):  # whichever worker answers
        assert browser.request("/whoami")[2] == "alice"
    assert browser.request("/count")[2] == "2"

    def whoami_with(key: Optional[str]) -> str:
        return Browser(base).request("/whoami", headers={"Cookie": f"sessionid={key}"})[2]

    assert whoami_with(before) == "anonymous"
    status, headers, body = browser.request("/logout")
    assert (status, body) == (200, "bye")
    assert browser.cookie("sessionid") is None
    assert browser.request("/whoami")[2] == "anonymous"
    assert [whoami_with(after) for _ in range(4)] == ["anonymous"] * 4
    assert log_path.read_text(errors="replace") == ""
