"""Build the Cython extensions. Everything else is declared in pyproject.toml.

Two kinds: the core (``botcore/core/_*_c.pyx``, typed Cython with a pure-Python twin) and the
order path (``botcore.compiled.COMPILED_FROM_SOURCE``: plain ``.py`` modules compiled as they
are, see ``botcore/compiled.py``).

BOTCORE_NO_EXTENSIONS=1 skips the extensions (the pure-Python twins and sources are used),
BOTCORE_CYTHON_ANNOTATE=1 writes Cython's HTML annotation next to each source,
BOTCORE_CYTHON_TRACE=1 builds with line tracing for profiling/coverage.
"""

import os

from setuptools import Extension, setup

NO_EXTENSIONS = os.environ.get("BOTCORE_NO_EXTENSIONS", "") not in ("", "0")
CORE_MODULES = ["book", "position"]
# The botcore entries of botcore.compiled.COMPILED_FROM_SOURCE (importing botcore here would need
# its dependencies in the build environment); tests/test_compiled.py checks the two agree.
ORDER_PATH_MODULES = ["booksync", "engine", "metrics", "orders", "quoting"]


def extensions() -> list:
    if NO_EXTENSIONS:
        return []
    from Cython.Build import cythonize

    trace = os.environ.get("BOTCORE_CYTHON_TRACE", "") not in ("", "0")
    macros = [("CYTHON_TRACE_NOGIL", "1")] if trace else []
    annotate = os.environ.get("BOTCORE_CYTHON_ANNOTATE", "") not in ("", "0")
    directives = {"language_level": 3, "embedsignature": True, "linetrace": trace}
    core = [
        Extension(
            f"botcore.core._{name}_c",
            [f"botcore/core/_{name}_c.pyx"],
            define_macros=macros,
            extra_compile_args=["-O3"],
        )
        for name in CORE_MODULES
    ]
    order_path = [
        Extension(f"botcore.{name}", [f"botcore/{name}.py"], define_macros=macros, extra_compile_args=["-O2"])
        for name in ORDER_PATH_MODULES
    ]
    return cythonize(core, annotate=annotate, compiler_directives=directives) + cythonize(
        order_path,
        annotate=annotate,
        # Plain Python compiled as it is: annotations are documentation, never C types.
        compiler_directives={**directives, "annotation_typing": False, "binding": True},
    )


setup(ext_modules=extensions())
