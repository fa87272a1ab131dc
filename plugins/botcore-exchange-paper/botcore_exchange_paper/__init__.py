"""botcore-exchange-paper: a local exchange that speaks the Binance spot protocol.

The venue (matching, accounts, replayed market) is pure logic; the server modules put it behind
one aiohttp port (REST ``/api/v3``, market streams ``/ws`` and ``/stream``, WebSocket API
``/ws-api/v3``, test controls ``/paper/*``). ``start_embedded`` runs it in a background thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from botcore_exchange_paper.embedded import EmbeddedPaper, start_embedded

__all__ = ["EmbeddedPaper", "__version__", "start_embedded"]


def __getattr__(name: str) -> Any:
    # Lazy so that importing the package (e.g. for the pluggy entry point) stays cheap.
    if name in ("EmbeddedPaper", "start_embedded"):
        from botcore_exchange_paper import embedded

        return getattr(embedded, name)
    raise AttributeError(name)
