"""What can go wrong with one request, classified by what it means for the order's state.

The classification is the whole point: a ``VenueError`` means the venue answered and did NOT
execute the request; ``UnknownStatus`` means it may or may not have (5xx, timeout, -1006/-1007,
connection lost after sending) and must be resolved by a query, never by a blind resend;
``NotSent`` means the request certainly never reached the venue. Messages are scrubbed.
"""

from __future__ import annotations

from typing import Any

from botcore_exchange_binance.scrub import scrub

UNKNOWN_CODES = frozenset({-1006, -1007})
"""Binance codes that say "execution status unknown"."""


class BinanceAdapterError(Exception):
    """Base class; the message is scrubbed of signatures and secrets."""

    def __init__(self, message: str) -> None:
        super().__init__(scrub(message))

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class VenueError(BinanceAdapterError):
    """The venue answered with an error: the request was not executed."""

    def __init__(
        self,
        code: int,
        msg: str,
        http_status: int = 400,
        data: dict[str, Any] | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(f"HTTP {http_status} code {code}: {msg}")
        self.code = int(code or 0)
        self.msg = scrub(msg or "")
        self.http_status = http_status
        self.data = data
        self.retry_after_s = retry_after_s


class RateLimited(VenueError):
    """HTTP 429: too much weight (-1003) or too many orders (-1015); obey Retry-After."""


class Banned(VenueError):
    """HTTP 418: the IP is banned until Retry-After; send nothing until then."""


class UnknownStatus(BinanceAdapterError):
    """The request may have been executed (5xx, timeout, -1006/-1007, connection lost)."""

    def __init__(self, message: str, code: int = 0, http_status: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = http_status


class NotSent(BinanceAdapterError):
    """The request certainly did not reach the venue (connect failed, refused locally)."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code
