"""The public API is typed precisely: mypy --strict accepts a user's program and rejects misuse."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent / "typing"
ROOT = HERE.parent.parent

pytest.importorskip("mypy")


def mypy(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--python-version", "3.10", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )


def test_a_users_program_type_checks_strictly() -> None:
    result = mypy(HERE / "user_program.py")
    assert result.returncode == 0, result.stdout


def test_misuse_is_reported_on_every_marked_line() -> None:
    path = HERE / "user_mistakes.py"
    marked = {i for i, line in enumerate(path.read_text().splitlines(), 1) if "# E:" in line}
    result = mypy(path)
    reported = {int(line.split(":")[1]) for line in result.stdout.splitlines() if ": error:" in line}
    assert reported == marked, result.stdout


def test_the_package_ships_its_types() -> None:
    import memsession

    package = Path(memsession.__file__).parent
    assert (package / "py.typed").exists() and (package / "_core.pyi").exists()


def test_framework_sessions_type_check_as_manager_arguments() -> None:
    """Starlette types request.session as a dict: passing it to the Manager must type-check."""
    result = mypy(ROOT / "examples" / "fastapi_app.py")
    assert result.returncode == 0, result.stdout
