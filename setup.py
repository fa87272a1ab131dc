"""Build the Cython core. Everything else is declared in pyproject.toml.

BOTCORE_NO_EXTENSIONS=1 skips the extensions (the pure-Python twins are used),
BOTCORE_CYTHON_ANNOTATE=1 writes Cython's HTML annotation next to each .pyx,
BOTCORE_CYTHON_TRACE=1 builds with line tracing for profiling/coverage.
"""

import os

from setuptools import Extension, setup

NO_EXTENSIONS = os.environ.get("BOTCORE_NO_EXTENSIONS", "") not in ("", "0")
CORE_MODULES = ["book", "position"]


def extensions() -> list:
    if NO_EXTENSIONS:
        return []
    from Cython.Build import cythonize

    trace = os.environ.get("BOTCORE_CYTHON_TRACE", "") not in ("", "0")
    macros = [("CYTHON_TRACE_NOGIL", "1")] if trace else []
    exts = [
        Extension(
            f"botcore.core._{name}_c",
            [f"botcore/core/_{name}_c.pyx"],
            define_macros=macros,
            extra_compile_args=["-O3"],
        )
        for name in CORE_MODULES
    ]
    return cythonize(
        exts,
        annotate=os.environ.get("BOTCORE_CYTHON_ANNOTATE", "") not in ("", "0"),
        compiler_directives={
            "language_level": 3,
            "embedsignature": True,
            "linetrace": trace,
        },
    )


setup(ext_modules=extensions())
