"""The local rate limiter: budgets from exchangeInfo, venue headers, 429 cancel-only, 418 ban."""

from __future__ import annotations

import pytest
from botcore_exchange_binance.errors import NotSent
from botcore_exchange_binance.limiter import Kind, RateLimiter, retry_after_seconds


class Clocks:
    def __init__(self) -> None:
        self.server_ms = 1_700_000_000_000  # on a 10 s boundary
        self.mono_ns = 0

    def advance(self, seconds: float) -> None:
        self.server_ms += int(seconds * 1000)
        self.mono_ns += int(seconds * 1e9)


@pytest.fixture
def clk() -> Clocks:
    return Clocks()


def limiter(clk: Clocks, orders_10s: int = 10, weight: int = 100) -> RateLimiter:
    lim = RateLimiter(lambda: clk.server_ms, monotonic_ns=lambda: clk.mono_ns, order_reserve=0.1,
                      min_order_reserve=1, weight_reserve=0.1)
    lim.configure([
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": weight},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": orders_10s},
        {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 1000},
        {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 300000},
    ])
    return lim


def place(lim: RateLimiter, headers: dict[str, str] | None = None) -> None:
    lim.acquire(Kind.ORDER, 1)
    lim.release(Kind.ORDER, 1, headers)


def test_configured_from_exchange_info(clk: Clocks) -> None:
    lim = limiter(clk)
    assert ("ORDERS", "10S", 10) in lim.limits and ("REQUEST_WEIGHT", "1M", 100) in lim.limits
    assert not any(k == "RAW_REQUESTS" for k, _, _ in lim.limits)


def test_new_orders_refused_before_the_10s_budget_is_spent(clk: Clocks) -> None:
    lim = limiter(clk, orders_10s=10)  # reserve 1 -> 9 usable
    for _ in range(9):
        place(lim)
    with pytest.raises(NotSent) as info:
        lim.acquire(Kind.ORDER, 1)
    assert info.value.code == -1015 and "order budget" in info.value.message
    lim.acquire(Kind.CANCEL, 1)  # cancels are not orders
    lim.release(Kind.CANCEL, 1, None)
    clk.advance(10)  # next fixed window
    place(lim)


def test_venue_header_is_authoritative_for_order_count(clk: Clocks) -> None:
    lim = limiter(clk, orders_10s=10)
    place(lim, {"X-MBX-ORDER-COUNT-10S": "9", "X-MBX-ORDER-COUNT-1D": "9", "X-MBX-USED-WEIGHT-1M": "3"})
    assert lim.used("ORDERS", "10S") == 9 and lim.used("REQUEST_WEIGHT", "1M") == 3
    with pytest.raises(NotSent):
        lim.acquire(Kind.ORDER, 1)  # 9 + 1 > 10 - 1
    clk.advance(10)  # refused until the fixed window rolls over
    place(lim, {"x-mbx-order-count-10s": "5"})
    # a fill decremented the venue's count: the next answer says so and we trust it (no max())
    place(lim, {"x-mbx-order-count-10s": "2"})
    assert lim.used("ORDERS", "10S") == 2


def test_in_flight_orders_count(clk: Clocks) -> None:
    lim = limiter(clk, orders_10s=10)
    for _ in range(9):
        lim.acquire(Kind.ORDER, 1)  # nine concurrent, none answered yet
    with pytest.raises(NotSent):
        lim.acquire(Kind.ORDER, 1)


def test_rejected_order_without_header_is_not_counted(clk: Clocks) -> None:
    lim = limiter(clk)
    lim.acquire(Kind.ORDER, 1)
    lim.release(Kind.ORDER, 1, None, counted=False)
    assert lim.used("ORDERS", "10S") == 0
    lim.acquire(Kind.ORDER, 1)
    lim.release(Kind.ORDER, 1, None)  # unknown outcome: assume it counted
    assert lim.used("ORDERS", "10S") == 1


def test_weight_reserve_kept_for_cancels(clk: Clocks) -> None:
    lim = limiter(clk, weight=100)
    lim.acquire(Kind.OTHER, 85)
    lim.release(Kind.OTHER, 85, {"X-MBX-USED-WEIGHT-1M": "85"})
    with pytest.raises(NotSent, match="request weight"):
        lim.acquire(Kind.OTHER, 6)  # 91 > 90
    lim.acquire(Kind.CANCEL, 1)  # cancels may use the reserve
    clk.advance(60)
    lim.acquire(Kind.OTHER, 50)


def test_429_means_cancel_only_until_retry_after(clk: Clocks) -> None:
    lim = limiter(clk)
    assert lim.penalize(429, 3.0, "-1003 too much weight") == 3.0
    assert lim.cancel_only and not lim.banned
    with pytest.raises(NotSent, match="cancel-only"):
        lim.acquire(Kind.ORDER, 1)
    with pytest.raises(NotSent, match="cancel-only"):  # backing off: reads wait too
        lim.acquire(Kind.OTHER, 1)
    lim.acquire(Kind.CANCEL, 1)
    clk.advance(3.01)
    assert not lim.cancel_only and lim.seconds_until_clear() == 0
    lim.acquire(Kind.ORDER, 1)
    lim.acquire(Kind.OTHER, 1)


def test_a_penalty_is_announced_to_the_listener(clk: Clocks) -> None:
    lim = limiter(clk)
    heard: list[tuple[int, float, str]] = []
    lim.on_penalty = lambda status, seconds, reason: heard.append((status, seconds, reason))
    lim.penalize(429, None, "-1003 too much weight")
    lim.penalize(418, 7.0)
    assert heard == [(429, 10.0, "-1003 too much weight"), (418, 7.0, "HTTP 418")]


def test_418_stops_everything_until_the_ban_ends(clk: Clocks) -> None:
    lim = limiter(clk)
    lim.penalize(418, None)  # default ban length when Retry-After is missing
    for kind in Kind:
        with pytest.raises(NotSent, match="banned"):
            lim.acquire(kind, 1)
    assert lim.seconds_until_clear() == pytest.approx(120.0)
    clk.advance(121)
    lim.acquire(Kind.CANCEL, 1)


def test_ws_api_rate_limits_are_adopted(clk: Clocks) -> None:
    lim = limiter(clk)
    lim.observe_ws([
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 10, "count": 9},
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 100, "count": 7},
    ])
    assert lim.used("ORDERS", "10S") == 9 and lim.used("REQUEST_WEIGHT", "1M") == 7
    with pytest.raises(NotSent):
        lim.acquire(Kind.ORDER, 1)


def test_retry_after_parsing() -> None:
    assert retry_after_seconds({"Retry-After": "7"}) == 7.0
    assert retry_after_seconds({"retry-after": "junk"}) is None
    assert retry_after_seconds(None, {"data": {"retryAfter": 5000, "serverTime": 2000}}) == 3.0
    assert retry_after_seconds(None, None) is None
