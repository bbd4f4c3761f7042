"""Install the system programs a test needs (Debian packages) when they are absent."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading

import pytest

_lock = threading.Lock()
_updated = False


def ensure_program(program: str, package: str) -> str:
    """The path of program, installing Debian's package for it first if needed."""
    global _updated
    with _lock:
        found = shutil.which(program)
        if found:
            return found
        apt = shutil.which("apt-get")
        if apt is None or os.geteuid() != 0:
            message = f"{program} is absent and cannot be installed here (needs root and apt-get)"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        if not _updated:
            subprocess.run([apt, "update", "-qq"], check=True, env=env, capture_output=True, timeout=600)
            _updated = True
        subprocess.run(
            [apt, "install", "-y", "-qq", "--no-install-recommends", package],
            check=True,
            env=env,
            capture_output=True,
            timeout=1200,
        )
        found = shutil.which(program)
        if not found:
            pytest.fail(f"installing {package} did not provide {program}")
        return found
