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
    assert memsession.Session is _core.Session


def test_env_switch_selects_the_python_twin() -> None:
    env = dict(os.environ, MEMSESSION_NO_EXTENSIONS="1")
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import memsession; print(memsession.IMPLEMENTATION, memsession.MemoryProvider.__module__)",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["python", "memsession._core_py"]


def test_memory_provider_is_registered_on_import() -> None:
    assert isinstance(memsession.get_provider("memory"), memsession.MemoryProvider)


def test_version_is_a_string() -> None:
    assert isinstance(memsession.__version__, str) and memsession.__version__.count(".") == 2
