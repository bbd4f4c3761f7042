"""The compiled core is used whenever it is expected."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import memsession
from memsession._impl import NO_EXTENSIONS


def test_compiled_core_loads_when_expected() -> None:
    if NO_EXTENSIONS or platform.python_implementation() != "CPython":
        assert memsession.IMPLEMENTATION == "python"
        return
    from memsession import _core

    assert _core.MemoryProvider.__module__ == "memsession._core"
    assert memsession.IMPLEMENTATION == "cython"
    assert memsession.MemoryProvider is _core.MemoryProvider
    assert memsession._impl.Session is _core.Session


def test_both_cores_sessions_are_registered_memsession_sessions() -> None:
    from memsession import _core_py, _impl

    # memsession.Session is the interface; the chosen core's class implements it.
    assert memsession.Session is memsession.session.Session
    chosen: object = _impl.Session
    assert chosen is not memsession.Session
    assert issubclass(_impl.Session, memsession.Session)
    assert issubclass(_core_py.Session, memsession.Session)
    provider = memsession.MemoryProvider()
    assert isinstance(provider.session_init("a"), memsession.Session)
    assert isinstance(_core_py.MemoryProvider().session_init("a"), memsession.Session)
    if not NO_EXTENSIONS:
        from memsession import _core

        assert _impl.Session is _core.Session
        assert issubclass(_core.Session, memsession.Session)
        assert isinstance(_core.MemoryProvider().session_init("a"), memsession.Session)


def test_env_switch_selects_the_python_twin() -> None:
    env = dict(os.environ, MEMSESSION_NO_EXTENSIONS="1")
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import memsession, memsession._impl as i, memsession._core_py as t;"
            "print(memsession.IMPLEMENTATION, memsession.MemoryProvider.__module__,"
            " i.Session is t.Session, isinstance(memsession.MemoryProvider().session_init('a'),"
            " memsession.Session))",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["python", "memsession._core_py", "True", "True"]


def test_memory_provider_is_registered_on_import() -> None:
    assert isinstance(memsession.get_provider("memory"), memsession.MemoryProvider)


def test_version_is_a_string() -> None:
    assert isinstance(memsession.__version__, str) and memsession.__version__.count(".") == 2
