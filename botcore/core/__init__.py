"""The hot core: L2 order book and position cache, compiled (Cython) or pure Python.

The compiled modules are used when they were built and ``BOTCORE_NO_EXTENSIONS`` is not set;
otherwise the readable pure-Python twins, which have the same API and pass the same tests.
Type checkers always see the Python twins.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

NO_EXTENSIONS: bool = os.environ.get("BOTCORE_NO_EXTENSIONS", "") not in ("", "0")

if TYPE_CHECKING or NO_EXTENSIONS:
    from botcore.core._book_py import OrderBook
    from botcore.core._position_py import PositionCache
else:
    try:
        from botcore.core._book_c import OrderBook
        from botcore.core._position_c import PositionCache
    except ImportError:  # not built (e.g. a source checkout without build_ext)
        from botcore.core._book_py import OrderBook
        from botcore.core._position_py import PositionCache

USING_EXTENSIONS: bool = OrderBook.__module__.endswith("_c") and PositionCache.__module__.endswith("_c")

__all__ = ["NO_EXTENSIONS", "USING_EXTENSIONS", "OrderBook", "PositionCache"]
