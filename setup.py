"""Builds memsession._core from memsession/_core.pyx."""

import os
import platform

from setuptools import Extension, setup


def _extensions() -> list:
    if os.environ.get("MEMSESSION_NO_EXTENSIONS") or platform.python_implementation() != "CPython":
        return []
    from Cython.Build import cythonize

    return cythonize(
        [Extension("memsession._core", ["memsession/_core.pyx"])],
        compiler_directives={"language_level": "3"},
    )


setup(ext_modules=_extensions())
