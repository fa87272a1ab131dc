"""Binance spot adapter for botcore.

python-binance (REST, sync ``Client`` redirected per instance), websocket-client (market streams,
user-data stream and WebSocket API order entry on threads). See ``adapter.BinanceAdapter``.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
