"""Compile the risk checks and the equity they follow (on every requote's path) with Cython from the
package's own .py files, as botcore compiles its order path (see botcore/compiled.py, which
loads the sources instead when BOTCORE_NO_EXTENSIONS=1 or when a source is newer than its build).

BOTCORE_NO_EXTENSIONS=1 at build time skips compiling: the package is then pure Python.
"""

import os

from setuptools import Extension, setup

MODULES = ["checks", "pnl"]  # listed in botcore.compiled.COMPILED_FROM_SOURCE too


def extensions() -> list:
    if os.environ.get("BOTCORE_NO_EXTENSIONS", "") not in ("", "0"):
        return []
    from Cython.Build import cythonize

    return cythonize(
        [Extension(f"botcore_risk_basic.{m}", [f"botcore_risk_basic/{m}.py"], extra_compile_args=["-O2"]) for m in MODULES],
        compiler_directives={"language_level": 3, "annotation_typing": False, "binding": True},
    )


setup(ext_modules=extensions())
