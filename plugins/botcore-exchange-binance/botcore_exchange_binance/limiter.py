"""A local mirror of Binance's rate limits so the bot stays under them instead of hitting them.

Initialised from ``exchangeInfo.rateLimits`` (defaults until then), fed by the venue's own
counters (``X-MBX-USED-WEIGHT-1M``, ``X-MBX-ORDER-COUNT-10S/1D`` headers, WebSocket API
``rateLimits``), and by 429/418 answers:

* a new order is refused locally when an ORDERS window is nearly spent (reserve kept for safety),
* after a 429 the adapter backs off until ``Retry-After`` passes: only cancels go out (reads and
  new orders are refused locally; a client that keeps sending after a 429 gets a 418 ban),
* after a 418 nothing is sent until the ban ends.

Windows are fixed (a 1-minute window resets at each minute boundary of server time, 10 s at :00,
:10, ..., a day at 00:00 UTC), as Binance documents. In-flight requests are counted so concurrent
gateway threads cannot all squeeze through the last slot.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from botcore_exchange_binance.clock import now_ns
from botcore_exchange_binance.errors import NotSent

_INTERVAL_MS = {"SECOND": 1_000, "MINUTE": 60_000, "HOUR": 3_600_000, "DAY": 86_400_000}
_LETTER = {"SECOND": "s", "MINUTE": "m", "HOUR": "h", "DAY": "d"}

DEFAULT_RATE_LIMITS: tuple[dict[str, Any], ...] = (
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
)
"""Production values seen in 2025-2026; replaced by the venue's own as soon as exchangeInfo is read."""


class Kind(Enum):
    """What a request is, for the limiter: new orders, cancels (always allowed unless banned), reads."""

    ORDER = "order"
    CANCEL = "cancel"
    OTHER = "other"


@dataclass
class _Window:
    kind: str  # REQUEST_WEIGHT | ORDERS | RAW_REQUESTS
    interval: str
    num: int
    limit: int
    used: int = 0
    index: int = -1  # which fixed window ``used`` belongs to
    inflight: int = 0

    @property
    def interval_ms(self) -> int:
        return _INTERVAL_MS[self.interval] * self.num

    @property
    def label(self) -> str:
        return f"{self.num}{_LETTER[self.interval].upper()}"

    @property
    def header(self) -> str:
        """The (lower-case) response header carrying the venue's count for this window."""
        suffix = f"{self.num}{_LETTER[self.interval]}"
        if self.kind == "REQUEST_WEIGHT":
            return f"x-mbx-used-weight-{suffix}"
        return f"x-mbx-order-count-{suffix}"

    def roll(self, server_ms: int) -> None:
        idx = server_ms // self.interval_ms
        if idx != self.index:
            self.index = idx
            self.used = 0


class RateLimiter:
    """Thread-safe budget keeper shared by every transport of one adapter.

    :param server_ms: the venue clock (``ServerClock.now_ms``), for fixed-window boundaries.
    :param order_reserve: fraction of each ORDERS window kept free (at least ``min_order_reserve``).
    :param weight_reserve: fraction of the weight window kept free for cancels.
    """

    def __init__(
        self,
        server_ms: Callable[[], int],
        *,
        order_reserve: float = 0.05,
        min_order_reserve: int = 2,
        weight_reserve: float = 0.1,
        default_429_s: float = 10.0,
        default_418_s: float = 120.0,
        monotonic_ns: Callable[[], int] = now_ns,
    ) -> None:
        self._server_ms = server_ms
        self._order_reserve = order_reserve
        self._min_order_reserve = min_order_reserve
        self._weight_reserve = weight_reserve
        self._default_429_s = default_429_s
        self._default_418_s = default_418_s
        self._mono = monotonic_ns
        self._lock = threading.Lock()
        self._windows: list[_Window] = []
        self._cancel_only_until_ns = 0
        self._banned_until_ns = 0
        self._penalty_reason = ""
        # Told (http_status, seconds, reason) after every 429/418 penalty, outside the lock: the
        # adapter turns it into an "orders" trust change so the engine stops quoting meanwhile.
        self.on_penalty: Callable[[int, float, str], None] | None = None
        self.configure(DEFAULT_RATE_LIMITS)

    # --- configuration ---------------------------------------------------------------------------
    def configure(self, rate_limits: Iterable[Mapping[str, Any]]) -> None:
        """Adopt the venue's limits (``exchangeInfo.rateLimits``); counts already seen are kept."""
        windows = []
        for rl in rate_limits:
            kind = str(rl.get("rateLimitType", ""))
            interval = str(rl.get("interval", ""))
            if kind not in ("REQUEST_WEIGHT", "ORDERS") or interval not in _INTERVAL_MS:
                continue  # RAW_REQUESTS (300k / 5 min) is far above anything a single bot sends
            windows.append(_Window(kind, interval, int(rl.get("intervalNum", 1)), int(rl["limit"])))
        if not windows:
            return
        with self._lock:
            old = {(w.kind, w.interval, w.num): w for w in self._windows}
            for w in windows:
                prev = old.get((w.kind, w.interval, w.num))
                if prev is not None:
                    w.used, w.index, w.inflight = prev.used, prev.index, prev.inflight
            self._windows = windows

    @property
    def limits(self) -> list[tuple[str, str, int]]:
        """(type, window label, limit) of every tracked window."""
        return [(w.kind, w.label, w.limit) for w in self._windows]

    # --- state -----------------------------------------------------------------------------------
    @property
    def banned(self) -> bool:
        return self._mono() < self._banned_until_ns

    @property
    def cancel_only(self) -> bool:
        return self._mono() < self._cancel_only_until_ns

    def seconds_until_clear(self) -> float:
        """Seconds until neither a ban nor cancel-only applies (0 when clear)."""
        until = max(self._banned_until_ns, self._cancel_only_until_ns)
        return max(0.0, (until - self._mono()) / 1e9)

    def used(self, kind: str, label: str) -> int:
        """The current count of one window, e.g. ``used("ORDERS", "10S")``."""
        with self._lock:
            now = self._server_ms()
            for w in self._windows:
                if w.kind == kind and w.label == label:
                    w.roll(now)
                    return w.used
        raise KeyError((kind, label))

    # --- the request protocol: acquire -> send -> release ----------------------------------------
    def acquire(self, kind: Kind, weight: int) -> None:
        """Reserve budget for one request or raise ``NotSent`` with the reason it may not go out."""
        with self._lock:
            mono = self._mono()
            if mono < self._banned_until_ns:
                left = (self._banned_until_ns - mono) / 1e9
                raise NotSent(f"IP banned by the venue (418), {left:.1f}s left: sending nothing", code=-1003)
            if kind is not Kind.CANCEL and mono < self._cancel_only_until_ns:
                left = (self._cancel_only_until_ns - mono) / 1e9
                raise NotSent(
                    f"cancel-only after HTTP 429 ({self._penalty_reason}), {left:.1f}s left", code=-1003
                )
            now = self._server_ms()
            for w in self._windows:
                w.roll(now)
                if w.kind == "ORDERS" and kind is Kind.ORDER:
                    reserve = max(self._min_order_reserve, math.ceil(w.limit * self._order_reserve))
                    if w.used + w.inflight + 1 > w.limit - reserve:
                        raise NotSent(
                            f"order budget nearly spent: {w.used + w.inflight}/{w.limit} per {w.label}",
                            code=-1015,
                        )
                elif w.kind == "REQUEST_WEIGHT":
                    cap = w.limit if kind is Kind.CANCEL else w.limit - math.ceil(w.limit * self._weight_reserve)
                    if w.used + w.inflight + weight > cap:
                        raise NotSent(
                            f"request weight nearly spent: {w.used + w.inflight}/{w.limit} per {w.label}",
                            code=-1003,
                        )
            for w in self._windows:
                if w.kind == "REQUEST_WEIGHT":
                    w.inflight += weight
                elif kind is Kind.ORDER:
                    w.inflight += 1

    def release(
        self,
        kind: Kind,
        weight: int,
        headers: Mapping[str, str] | None,
        *,
        counted: bool = True,
    ) -> None:
        """Account for a finished request.

        :param headers: the response headers (any case), None if no response arrived.
        :param counted: whether the venue counted it when no header says so (False for a
            definite rejection of an order, True when unknown: assume the worst).
        """
        lower = {k.lower(): v for k, v in headers.items()} if headers else {}
        with self._lock:
            now = self._server_ms()
            for w in self._windows:
                w.roll(now)
                if w.kind == "REQUEST_WEIGHT":
                    w.inflight = max(0, w.inflight - weight)
                    value = _int(lower.get(w.header))
                    if value is not None:
                        w.used = max(w.used, value)
                    elif counted:
                        w.used += weight
                elif kind is Kind.ORDER:
                    w.inflight = max(0, w.inflight - 1)
                    value = _int(lower.get(w.header))
                    if value is not None:
                        w.used = value  # authoritative; fills decrement it, so no max()
                    elif counted:
                        w.used += 1

    def observe_ws(self, rate_limits: Iterable[Mapping[str, Any]]) -> None:
        """Adopt the counters a WebSocket API response echoes in ``rateLimits``."""
        with self._lock:
            now = self._server_ms()
            for rl in rate_limits:
                for w in self._windows:
                    if (
                        w.kind == rl.get("rateLimitType")
                        and w.interval == rl.get("interval")
                        and w.num == int(rl.get("intervalNum", 1))
                    ):
                        w.roll(now)
                        count = int(rl.get("count", 0))
                        w.used = max(w.used, count) if w.kind == "REQUEST_WEIGHT" else count

    def penalize(self, http_status: int, retry_after_s: float | None, reason: str = "") -> float:
        """Apply a 429 (cancel-only) or 418 (ban); returns the seconds it lasts."""
        if http_status == 418:
            seconds = retry_after_s if retry_after_s and retry_after_s > 0 else self._default_418_s
        else:
            seconds = retry_after_s if retry_after_s and retry_after_s > 0 else self._default_429_s
        until = self._mono() + int(seconds * 1e9)
        with self._lock:
            self._penalty_reason = reason or f"HTTP {http_status}"
            if http_status == 418:
                self._banned_until_ns = max(self._banned_until_ns, until)
            self._cancel_only_until_ns = max(self._cancel_only_until_ns, until)
        listener = self.on_penalty
        if listener is not None:
            listener(http_status, seconds, self._penalty_reason)
        return seconds


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def retry_after_seconds(headers: Mapping[str, str] | None, body: Mapping[str, Any] | None = None) -> float | None:
    """``Retry-After`` in seconds from headers, or the WebSocket API's ``error.data.retryAfter`` (ms epoch)."""
    if headers:
        for k, v in headers.items():
            if k.lower() == "retry-after":
                try:
                    return float(v)
                except ValueError:
                    return None
    if body:
        data = body.get("data")
        if isinstance(data, Mapping) and "retryAfter" in data:
            server_time = data.get("serverTime")
            try:
                if server_time is not None:
                    return max(0.0, (int(data["retryAfter"]) - int(server_time)) / 1000.0)
            except (TypeError, ValueError):
                return None
    return None
