"""Order-book fixtures: every book test runs once per implementation (compiled and pure twin).

Like uvloop/yarl: the test is written once; the compiled module is imported directly, so a
missing build fails loudly instead of silently testing the twin twice. With
``BOTCORE_NO_EXTENSIONS=1`` (the tox ``pure`` env) only the twin is collected.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

NO_EXTENSIONS = os.environ.get("BOTCORE_NO_EXTENSIONS", "") not in ("", "0")
BOOK_IMPLS = ["py"] if NO_EXTENSIONS else ["py", "c"]


@pytest.fixture(params=BOOK_IMPLS)
def book_mod(request: pytest.FixtureRequest) -> ModuleType:
    """The book module under test: ``botcore.core._book_py`` or ``botcore.core._book_c``."""
    return importlib.import_module(f"botcore.core._book_{request.param}")
