"""Binance rate limits: request weight per IP, unfilled order count per account, 429 then 418 bans.

Windows are fixed and aligned to the epoch (a ``1 MINUTE`` window resets at each minute boundary,
``10 SECOND`` at :00, :10, ...), as Binance documents for its counters. Limits come from the venue's
``exchangeInfo.rateLimits`` times a ``scale`` so tests can hit them with a handful of requests; the
scaled values are what ``exchangeInfo`` then reports, so clients that read their budget see the truth.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

_INTERVAL_MS = {"SECOND": 1_000, "MINUTE": 60_000, "HOUR": 3_600_000, "DAY": 86_400_000}
_LETTER = {"SECOND": "S", "MINUTE": "M", "HOUR": "H", "DAY": "D"}

WEIGHT = "REQUEST_WEIGHT"
ORDERS = "ORDERS"
RAW = "RAW_REQUESTS"

DEFAULT_RATE_LIMITS: tuple[dict[str, Any], ...] = (
    {"rateLimitType": WEIGHT, "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
    {"rateLimitType": ORDERS, "interval": "SECOND", "intervalNum": 10, "limit": 100},
    {"rateLimitType": ORDERS, "interval": "DAY", "intervalNum": 1, "limit": 200000},
    {"rateLimitType": RAW, "interval": "MINUTE", "intervalNum": 5, "limit": 300000},
)


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Limit:
    kind: str
    interval: str
    interval_num: int
    limit: int

    @property
    def span_ms(self) -> int:
        return _INTERVAL_MS[self.interval] * self.interval_num

    @property
    def suffix(self) -> str:
        """Header suffix: ``1M``, ``10S``, ``1D``."""
        return f"{self.interval_num}{_LETTER[self.interval]}"

    @property
    def per_text(self) -> str:
        return f"{self.interval_num} {self.interval}"

    def as_json(self, count: int | None = None) -> dict[str, Any]:
        d: dict[str, Any] = {
            "rateLimitType": self.kind,
            "interval": self.interval,
            "intervalNum": self.interval_num,
            "limit": self.limit,
        }
        if count is not None:
            d["count"] = count
        return d


@dataclass(slots=True)
class _Window:
    start: int = -1
    count: int = 0


class _Counter:
    """One fixed-window counter per key (an IP or an API key) for one limit."""

    __slots__ = ("limit", "_w")

    def __init__(self, limit: Limit) -> None:
        self.limit = limit
        self._w: dict[str, _Window] = {}

    def _window(self, key: str, now_ms: int) -> _Window:
        start = now_ms - now_ms % self.limit.span_ms
        w = self._w.get(key)
        if w is None:
            w = self._w[key] = _Window(start, 0)
        elif w.start != start:
            w.start, w.count = start, 0
        return w

    def add(self, key: str, n: int, now_ms: int) -> int:
        w = self._window(key, now_ms)
        w.count = max(0, w.count + n)
        return w.count

    def peek(self, key: str, now_ms: int) -> int:
        return self._window(key, now_ms).count

    def reset_in_ms(self, now_ms: int) -> int:
        return self.limit.span_ms - now_ms % self.limit.span_ms


@dataclass(slots=True)
class Verdict:
    """What the limiter decided for one request."""

    status: int = 200  # 200 allowed, 429 limited, 418 banned
    code: int = 0
    msg: str = ""
    retry_after_s: int = 0


@dataclass(slots=True)
class _Ip:
    strikes: int = 0  # requests sent while already limited
    banned_until: int = 0
    bans: int = 0


class RateLimiter:
    """Counters for every limit plus the 429 -> 418 escalation of one server.

    ``ban_after`` is how many more requests a client may send after its first 429 (in the same
    limited period) before it is banned; ``ban_seconds`` is the first ban, doubling per ban up to
    three days, like Binance's "2 minutes to 3 days".
    """

    def __init__(
        self,
        rate_limits: Iterable[Mapping[str, Any]] = DEFAULT_RATE_LIMITS,
        *,
        scale: float = 1.0,
        ban_after: int = 3,
        ban_seconds: float = 120.0,
        clock: Callable[[], int] = wall_ms,
    ) -> None:
        self.clock = clock
        self.ban_after = ban_after
        self.ban_seconds = ban_seconds
        self.limits: list[Limit] = [
            Limit(
                str(r["rateLimitType"]),
                str(r["interval"]),
                int(r["intervalNum"]),
                max(1, math.floor(int(r["limit"]) * scale)),
            )
            for r in rate_limits
            if str(r.get("interval")) in _INTERVAL_MS
        ]
        self._weight = [_Counter(lim) for lim in self.limits if lim.kind == WEIGHT]
        self._raw = [_Counter(lim) for lim in self.limits if lim.kind == RAW]
        self._orders = [_Counter(lim) for lim in self.limits if lim.kind == ORDERS]
        self._ips: dict[str, _Ip] = {}
        self.storm_until = 0  # fault injection: everything is over the limit until then (ms)

    # -- exchangeInfo -----------------------------------------------------------------------------
    def exchange_info_limits(self) -> list[dict[str, Any]]:
        return [lim.as_json() for lim in self.limits]

    # -- request weight per IP --------------------------------------------------------------------
    def _ip(self, ip: str) -> _Ip:
        st = self._ips.get(ip)
        if st is None:
            st = self._ips[ip] = _Ip()
        return st

    def admit(self, ip: str, weight: int) -> Verdict:
        """Charge one request of ``weight`` to ``ip`` and decide 200 / 429 / 418."""
        now = self.clock()
        st = self._ip(ip)
        if st.banned_until > now:
            return self._banned(st, now)
        for c in self._raw:
            c.add(ip, 1, now)
        for c in self._weight:
            c.add(ip, weight, now)
        over = self._over(ip, now)
        if over is None:
            st.strikes = 0
            return Verdict()
        st.strikes += 1
        if st.strikes > self.ban_after + 1:
            st.bans += 1
            span = min(self.ban_seconds * 2 ** (st.bans - 1), 3 * 86_400)
            st.banned_until = now + int(span * 1000)
            st.strikes = 0
            return self._banned(st, now)
        return over

    def charge(self, ip: str, weight: int) -> None:
        """Add weight after the fact (failed order requests cost their documented weight)."""
        if weight:
            now = self.clock()
            for c in self._weight:
                c.add(ip, weight, now)

    def _over(self, ip: str, now: int) -> Verdict | None:
        if self.storm_until > now:
            lim = self._weight[0].limit if self._weight else Limit(WEIGHT, "MINUTE", 1, 6000)
            return Verdict(
                429,
                -1003,
                f"Too much request weight used; current limit is {lim.limit} request weight per "
                f"{lim.per_text}. Please use WebSocket Streams for live updates to avoid polling the API.",
                max(1, math.ceil((self.storm_until - now) / 1000)),
            )
        for c in self._weight:
            if c.peek(ip, now) > c.limit.limit:
                return Verdict(
                    429,
                    -1003,
                    f"Too much request weight used; current limit is {c.limit.limit} request weight per "
                    f"{c.limit.per_text}. Please use WebSocket Streams for live updates to avoid polling the API.",
                    max(1, math.ceil(c.reset_in_ms(now) / 1000)),
                )
        for c in self._raw:
            if c.peek(ip, now) > c.limit.limit:
                return Verdict(
                    429,
                    -1003,
                    f"Too many requests; current limit is {c.limit.limit} requests per {c.limit.per_text}.",
                    max(1, math.ceil(c.reset_in_ms(now) / 1000)),
                )
        return None

    def _banned(self, st: _Ip, now: int) -> Verdict:
        return Verdict(
            418,
            -1003,
            f"Way too much request weight used; IP banned until {st.banned_until}. "
            "Please use WebSocket Streams for live updates to avoid bans.",
            max(1, math.ceil((st.banned_until - now) / 1000)),
        )

    def unban(self, ip: str | None = None) -> None:
        """Lift bans and strikes (tests, ``/paper/faults`` clear)."""
        targets = [self._ips[ip]] if ip and ip in self._ips else list(self._ips.values())
        for st in targets:
            st.banned_until = 0
            st.strikes = 0
            st.bans = 0

    def weight_headers(self, ip: str) -> dict[str, str]:
        now = self.clock()
        headers: dict[str, str] = {}
        for c in self._weight:
            n = str(c.peek(ip, now))
            headers[f"X-MBX-USED-WEIGHT-{c.limit.suffix}"] = n
            headers.setdefault("X-MBX-USED-WEIGHT", n)
        return headers

    def weight_json(self, ip: str) -> list[dict[str, Any]]:
        now = self.clock()
        return [c.limit.as_json(c.peek(ip, now)) for c in self._weight]

    # -- unfilled order count per account ---------------------------------------------------------
    def orders_exceeded(self, key: str, n: int = 1) -> Verdict | None:
        """-1015 if placing ``n`` more orders would exceed an ORDERS limit (checked before placing)."""
        now = self.clock()
        for c in self._orders:
            if c.peek(key, now) + n > c.limit.limit:
                return Verdict(
                    429,
                    -1015,
                    f"Too many new orders; current limit is {c.limit.limit} orders per {c.limit.per_text}.",
                    max(1, math.ceil(c.reset_in_ms(now) / 1000)),
                )
        return None

    def orders_add(self, key: str, n: int = 1) -> None:
        now = self.clock()
        for c in self._orders:
            c.add(key, n, now)

    def order_count_headers(self, key: str) -> dict[str, str]:
        now = self.clock()
        return {f"X-MBX-ORDER-COUNT-{c.limit.suffix}": str(c.peek(key, now)) for c in self._orders}

    def orders_json(self, key: str) -> list[dict[str, Any]]:
        now = self.clock()
        return [c.limit.as_json(c.peek(key, now)) for c in self._orders]
