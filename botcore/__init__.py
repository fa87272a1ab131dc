"""botcore: a Cython-accelerated, plugin-based market-making bot for Binance spot.

``from botcore import hookimpl`` is all a plugin author needs; the hooks are documented in
``botcore.hookspecs``.
"""

import pluggy

from botcore import compiled as _compiled

_compiled.install()  # before any order-path module is imported: see botcore.compiled

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("botcore")
"""Marker for hook implementations (project name and entry-point group: ``botcore``)."""

__all__ = ["__version__", "hookimpl"]
