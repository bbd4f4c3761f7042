"""Packaging: what the sdist and the wheel hold, and installing without a C compiler.

These build the project for real in a throwaway venv (about half a minute,
most of it compiling the core once); `-m "not slow"` leaves them out locally.
They work on a copy of the checkout, so they never write into the work tree.
Under CI=true a missing prerequisite fails them instead of skipping them.
"""

from __future__ import annotations

import ast
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
EXT_SUFFIX = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
MAX_EXTENSION_BYTES = 300_000
FALLBACK_WARNING = "memsession's compiled core could not be built"
NOT_SOURCES = shutil.ignore_patterns(
    ".git", "build", "dist", "wheelhouse", "*.egg-info", "__pycache__", "*.py[cod]", "*.so", "*.pyd",
    "_core.c", "_core.html", ".venv", ".mypy_cache", ".pytest_cache", ".hypothesis", ".benchmarks",
)  # fmt: skip


def need(ok: object, why: str) -> None:
    """Skip when a prerequisite is missing, but fail under CI: no silent gaps there."""
    if not ok:
        if os.environ.get("CI") == "true":
            pytest.fail(f"packaging test cannot run: {why}")
        pytest.skip(why)


def run(*args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    """Run a command, return its stdout and stderr together; fail with them on error."""
    proc = subprocess.run(
        [str(a) for a in args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, f"{args} exited {proc.returncode}:\n{proc.stdout[-6000:]}"
    return proc.stdout


def build_env(**extra: str) -> dict[str, str]:
    """The environment for builds: no core switch inherited from this test run."""
    env = {k: v for k, v in os.environ.items() if k not in ("MEMSESSION_NO_EXTENSIONS", "PYTHONPATH")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
    return env


def build_requirements() -> list[str]:
    """[build-system] requires, read from pyproject.toml (no TOML parser on 3.9)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r"^\[build-system\]\s*\nrequires\s*=\s*(\[[^\]]*\])", text, re.M)
    assert match, "pyproject.toml has no [build-system] requires"
    return list(ast.literal_eval(match.group(1)))


def copy_of_checkout(dest: Path) -> Path:
    shutil.copytree(ROOT, dest, ignore=NOT_SOURCES)
    return dest


class Venv:
    def __init__(self, path: Path) -> None:
        self.path = path
        bindir = path / ("Scripts" if sys.platform == "win32" else "bin")
        self.python = bindir / ("python.exe" if sys.platform == "win32" else "python")

    def pip(self, *args: str | Path, **env: str) -> str:
        return run(self.python, "-m", "pip", *args, env=build_env(**env))

    def implementation(self) -> str:
        code = "import memsession; print(memsession.IMPLEMENTATION)"
        return run(self.python, "-c", code, env=build_env(), cwd=self.path).strip()


@pytest.fixture(scope="module")
def builder(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """A venv with the build requirements, used with --no-build-isolation / --no-isolation."""
    path = tmp_path_factory.mktemp("build-venv")
    try:
        venv.create(path, with_pip=True)
    except Exception as exc:  # e.g. Debian's python without python3-venv
        need(False, f"cannot create a venv with pip: {exc!r}")
    env = Venv(path)
    try:
        env.pip("install", "-q", "build>=1", *build_requirements())
    except AssertionError as exc:
        need(False, f"cannot install the build requirements: {exc}")
    return env


@pytest.fixture(scope="module")
def dists(builder: Venv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, str]]:
    """(sdist, wheel, build log): `python -m build`, which builds the wheel from the sdist."""
    if platform.python_implementation() != "CPython":
        pytest.skip("the compiled core is built for CPython only")
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    need(shutil.which(os.environ.get("CC", cc).split()[0]), f"no C compiler ({cc})")
    tmp = tmp_path_factory.mktemp("dists")
    src = copy_of_checkout(tmp / "src")
    log = run(builder.python, "-m", "build", "--no-isolation", "-o", tmp / "dist", src, env=build_env())
    (sdist,) = (tmp / "dist").glob("*.tar.gz")
    (wheel,) = (tmp / "dist").glob("*.whl")
    yield sdist, wheel, log


def test_wheel_holds_the_package_and_its_stripped_core_only(dists: tuple[Path, Path, str]) -> None:
    _, wheel, log = dists
    with zipfile.ZipFile(wheel) as zf:
        infos = {i.filename: i for i in zf.infolist()}
        metadata = next(zf.read(n) for n in infos if n.endswith(".dist-info/METADATA")).decode()
    names = set(infos)
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"memsession"}
    assert not [n for n in names if n.startswith("memsession/bench/")]
    assert not [n for n in names if n.endswith((".pyx", ".c", ".h", ".html"))]
    assert {"memsession/_core.pyi", "memsession/py.typed", "memsession/_core_py.py"} <= names
    assert [n for n in names if re.fullmatch(r"[^/]+\.dist-info/licenses/LICENSE", n)]
    assert "License-Expression: MIT" in metadata and "Classifier: License ::" not in metadata
    (core,) = [n for n in names if re.fullmatch(r"memsession/_core\.[^/]*(\.so|\.pyd)", n)]
    assert infos[core].file_size < MAX_EXTENSION_BYTES, f"{core}: {infos[core].file_size} bytes"
    assert "DeprecationWarning" not in log, log
    assert FALLBACK_WARNING not in log, log


def test_sdist_holds_the_sources_and_everything_the_tests_use(dists: tuple[Path, Path, str]) -> None:
    sdist, _, _ = dists
    with tarfile.open(sdist) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    assert {"LICENSE", "README.md", "MANIFEST.in", "pyproject.toml", "setup.py"} <= names
    assert {"memsession/_core.pyx", "memsession/_core.pyi", "memsession/py.typed"} <= names
    assert not [n for n in names if n.endswith((".c", ".so", ".pyd", ".pyc", ".html"))]
    tests = [p for p in (ROOT / "tests").rglob("*.py") if "__pycache__" not in p.parts]
    assert {p.relative_to(ROOT).as_posix() for p in tests} <= names
    # every top-level file or folder of the checkout that a test imports or opens
    used = set()
    for path in tests:
        text = path.read_text(encoding="utf-8")
        used |= set(re.findall(r"^\s*(?:from|import)\s+(\w+)", text, re.M))
        used |= set(re.findall(r"parent\s*/\s*[\"']([\w.-]+)[\"']", text))
    for name in sorted(used - {"memsession", "tests"}):
        if (ROOT / name).exists():
            assert name in names or any(n.startswith(name + "/") for n in names), f"sdist lacks {name}"


def test_install_without_a_compiler_falls_back_to_the_python_core(builder: Venv, tmp_path: Path) -> None:
    src = copy_of_checkout(tmp_path / "src")
    log = builder.pip("install", "-v", "--no-build-isolation", "--no-deps", src, CC="false")
    assert FALLBACK_WARNING in log, log
    assert "install a C compiler and the Python development" in log
    try:
        assert builder.implementation() == "python"
        code = "import memsession; print(memsession.__file__)"
        package = Path(run(builder.python, "-c", code, env=build_env(), cwd=tmp_path).strip()).parent
        assert not [p.name for p in package.iterdir() if p.suffix in (".so", ".pyd")]
    finally:
        builder.pip("uninstall", "-y", "memsession")


def test_failed_editable_build_removes_a_stale_compiled_core(builder: Venv, tmp_path: Path) -> None:
    src = copy_of_checkout(tmp_path / "src")
    stale = src / "memsession" / f"_core{EXT_SUFFIX}"
    stale.write_bytes(b"left over from an older build")
    log = builder.pip("install", "-v", "--no-build-isolation", "--no-deps", "-e", src, CC="false")
    assert FALLBACK_WARNING in log, log
    try:
        assert not stale.exists()
        assert builder.implementation() == "python"
    finally:
        builder.pip("uninstall", "-y", "memsession")


def test_no_extensions_switch_skips_the_build(builder: Venv, tmp_path: Path) -> None:
    src = copy_of_checkout(tmp_path / "src")
    args = ("wheel", "-v", "--no-build-isolation", "--no-deps", "-w", tmp_path, src)
    log = builder.pip(*args, MEMSESSION_NO_EXTENSIONS="1")
    assert FALLBACK_WARNING not in log
    (wheel,) = tmp_path.glob("memsession-*.whl")
    assert wheel.name.endswith("-py3-none-any.whl"), wheel.name
