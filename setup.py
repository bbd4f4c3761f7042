"""Builds memsession._core from memsession/_core.pyx.

When the extension cannot be built (no C compiler, no Python headers, no
Cython), the install still succeeds: the package then runs on its pure-Python
core, memsession._core_py, and the build prints a warning that says so and how
to get the compiled one. MEMSESSION_NO_EXTENSIONS=1 skips the build on purpose.
"""

import os
import platform
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, ExecError, PlatformError

# What a compiler or linker raises when it cannot build here.
BUILD_ERRORS = (CCompilerError, ExecError, PlatformError)

FALLBACK_WARNING = """
********************************************************************************
WARNING: memsession's compiled core could not be built ({reason}).
memsession is installed with its pure-Python core instead: it behaves the same
but is slower (memsession.IMPLEMENTATION == "python").

To get the compiled core, install a C compiler and the Python development
headers (Debian/Ubuntu: apt-get install gcc python3-dev; Fedora: dnf install gcc
python3-devel; macOS: xcode-select --install; Windows: Microsoft C++ Build
Tools), then reinstall without reusing the wheel pip just built:

    pip install --force-reinstall --no-cache-dir memsession

(from a checkout: pip install --force-reinstall .)
********************************************************************************
"""


def _warn_fallback(reason: str) -> None:
    print(FALLBACK_WARNING.format(reason=reason), file=sys.stderr, flush=True)


class OptionalBuildExt(build_ext):
    """build_ext that falls back to the pure-Python core instead of failing."""

    _copies_in_place = False

    def run(self) -> None:
        self._copies_in_place = self.inplace  # editable installs; cleared by super().run()
        try:
            super().run()
        except PlatformError as exc:  # no usable compiler at all (e.g. no MSVC)
            self._give_up(list(self.extensions), exc)

    def build_extension(self, ext: Extension) -> None:
        self._strip_debug_info(ext)
        try:
            super().build_extension(ext)
        except BUILD_ERRORS as exc:
            self._give_up([ext], exc)

    def _strip_debug_info(self, ext: Extension) -> None:
        # CPython's own CFLAGS carry -g: DWARF would be most of the module's size.
        if self.compiler.compiler_type in ("unix", "mingw32", "cygwin"):
            ext.extra_compile_args = [*ext.extra_compile_args, "-g0"]
            if sys.platform.startswith("linux"):
                ext.extra_link_args = [*ext.extra_link_args, "-Wl,--strip-all"]

    def _give_up(self, failed: list, exc: BaseException) -> None:
        build_py = self.get_finalized_command("build_py")
        for ext in failed:
            # Neither a half-written module in the build tree (it would be
            # packaged) nor a stale one from an earlier build in the source tree
            # (an editable install would import it) may survive a failed build.
            filename = self.get_ext_filename(ext.name)
            stale = [os.path.join(self.build_lib, filename)]
            if self._copies_in_place:
                package = build_py.get_package_dir(".".join(ext.name.split(".")[:-1]))
                stale.append(os.path.join(package, os.path.basename(filename)))
            for path in stale:
                if os.path.exists(path):
                    os.remove(path)
        # Rebinding (not mutating) keeps build_extensions' loop intact; the rest
        # is what get_outputs() and the in-place copy of editable installs see.
        self.extensions = [e for e in self.extensions if e not in failed]
        _warn_fallback(f"{type(exc).__name__}: {exc}")


def _extensions() -> list:
    if os.environ.get("MEMSESSION_NO_EXTENSIONS") or platform.python_implementation() != "CPython":
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        _warn_fallback("Cython is not installed")
        return []

    return cythonize(
        [Extension("memsession._core", ["memsession/_core.pyx"])],
        compiler_directives={"language_level": "3"},
    )


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
