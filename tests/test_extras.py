"""Optional integrations say which extra to install when their library is missing."""

from __future__ import annotations

import subprocess
import sys


def test_redis_provider_without_redis_py_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "try:\n"
        "    import memsession.redis\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
        "else:\n"
        "    print('imported')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "pip install 'memsession[redis]'" in done.stdout
