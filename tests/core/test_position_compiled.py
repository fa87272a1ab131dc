"""The selector in ``botcore.core`` must hand out the compiled PositionCache unless told not to.

Fails if the extension was not built (or stopped importing) and botcore silently fell back to the
pure twin; with ``BOTCORE_NO_EXTENSIONS=1`` it checks the opposite: the twin is the one in use.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import botcore.core
from botcore.core import _position_py

NO_EXTENSIONS = os.environ.get("BOTCORE_NO_EXTENSIONS", "") not in ("", "0")


def test_selected_position_cache_matches_the_environment() -> None:
    if NO_EXTENSIONS:
        assert botcore.core.PositionCache is _position_py.PositionCache
        return
    compiled = importlib.import_module("botcore.core._position_c")  # ImportError here = not built
    assert compiled.__file__ is not None and not compiled.__file__.endswith(".py")
    assert botcore.core.PositionCache is compiled.PositionCache
    assert type(botcore.core.PositionCache().view()) is compiled.PositionView


def test_no_extensions_env_selects_the_twin() -> None:
    code = "import botcore.core as c; print(c.PositionCache.__module__)"
    env = {**os.environ, "BOTCORE_NO_EXTENSIONS": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "botcore.core._position_py"


def test_twins_export_the_same_public_api() -> None:
    if NO_EXTENSIONS:
        return
    compiled = importlib.import_module("botcore.core._position_c")
    assert compiled.__all__ == _position_py.__all__
    for name in ("PositionCache", "PositionView"):
        public_c = {a for a in dir(getattr(compiled, name)) if not a.startswith("_")}
        public_py = {a for a in dir(getattr(_position_py, name)) if not a.startswith("_")}
        assert public_c == public_py, name
    for name in ("FEE_ROUNDING_UNITS", "TRADE_ID_WINDOW", "CLOSED_ORDER_MEMORY", "WIDE_PRECISION"):
        assert getattr(compiled, name) == getattr(_position_py, name)
