"""Stateless limit checks, table-driven: exactly at a limit passes, one unit over is denied."""

from __future__ import annotations

from typing import Any

import pytest
from botcore_risk_basic.checks import (
    MaxInventoryValueCheck,
    MaxOpenOrdersCheck,
    MaxOrderNotionalCheck,
    MaxPositionCheck,
    PriceBandCheck,
    StaleDataCheck,
)
from risk_support import NS_PER_MS, CountingCtx, D, LiveOrder, RiskCtx, S, order

from botcore.model import BookTop, Instrument, Side

BUY, SELL = Side.BUY, Side.SELL


@pytest.mark.parametrize(
    ("position", "side", "qty", "denied"),
    [
        ("0", BUY, "0.03", False),  # lands exactly on the limit
        ("0", BUY, "0.03001", True),  # one step over
        ("0.02", BUY, "0.01", False),
        ("0.02", BUY, "0.01001", True),
        ("-0.03", SELL, "0.00001", True),
        ("-0.03", BUY, "0.06", False),  # flips to exactly +0.03
        ("-0.03", BUY, "0.06001", True),
        ("0.05", SELL, "0.001", False),  # over the limit but reducing: allowed
        ("0.05", BUY, "0.00001", True),
        ("0.05", SELL, "0.1", True),  # flips to -0.05: |position| not reduced
    ],
)
def test_max_position(position: str, side: Side, qty: str, denied: bool) -> None:
    check = MaxPositionCheck.from_params({"max_position": "0.03"})
    ctx = RiskCtx(pos={"BTCUSDT": D(position)})
    reason = check.check(order(side, qty), ctx)
    assert (reason is not None) == denied
    if denied:
        assert "max_position 0.03" in reason and "BTCUSDT" in reason


@pytest.mark.parametrize(("qty", "denied"), [("0.005", False), ("0.00501", True)])
def test_max_position_counting_open_orders(qty: str, denied: bool) -> None:
    check = MaxPositionCheck.from_params({"max_position": "0.03", "include_open_orders": True})
    ctx = RiskCtx(pos={"BTCUSDT": D("0.01")})
    ctx.orders += [
        LiveOrder("BTCUSDT", "mm", BUY, D("59999"), D("0.02"), cum_qty=D("0.005")),  # 0.015 left
        LiveOrder("BTCUSDT", "mm", SELL, D("60001"), D("0.5")),  # other side: not counted
        LiveOrder("ETHUSDT", "mm", BUY, D("3000"), D("5")),  # other symbol: not counted
    ]
    assert (check.check(order(BUY, qty), ctx) is not None) == denied
    # Without the option only the position and the order count.
    assert MaxPositionCheck.from_params({"max_position": "0.03"}).check(order(BUY, qty), ctx) is None


def test_symbol_filter() -> None:
    check = MaxPositionCheck.from_params({"max_position": "0.001", "symbols": ["ETHUSDT"]})
    ctx = RiskCtx()
    assert check.check(order(BUY, "1"), ctx) is None
    assert check.check(order(BUY, "1", "3000", symbol="ETHUSDT"), ctx) is not None


@pytest.mark.parametrize(
    ("position", "side", "qty", "denied"),
    [
        ("0", BUY, "0.01", False),  # 0.01 * 60000.00 = 600: exactly the limit
        ("0", BUY, "0.01001", True),  # 600.60
        ("-0.005", SELL, "0.005", False),
        ("-0.005", SELL, "0.00501", True),
        ("0.02", SELL, "0.001", False),  # worth 1140 after, over the limit, but reducing
        ("0.02", BUY, "0.001", True),
    ],
)
def test_max_inventory_value(position: str, side: Side, qty: str, denied: bool) -> None:
    check = MaxInventoryValueCheck.from_params({"max_value": "600"})
    ctx = RiskCtx(pos={"BTCUSDT": D(position)})
    ctx.set_mid("BTCUSDT", "59999.99", "60000.01")
    reason = check.check(order(side, qty), ctx)
    assert (reason is not None) == denied
    if denied:
        assert "max_value 600" in reason and "mid 60000" in reason


def test_max_inventory_value_needs_a_mid() -> None:
    check = MaxInventoryValueCheck.from_params({"max_value": "600"})
    reason = check.check(order(BUY, "0.001"), RiskCtx())
    assert reason is not None and "no top of book for BTCUSDT" in reason
    # ... except for orders that reduce the inventory
    assert check.check(order(SELL, "0.001"), RiskCtx(pos={"BTCUSDT": D("1")})) is None


@pytest.mark.parametrize(
    ("price", "qty", "denied"),
    [
        ("60000.00", "0.01", False),  # exactly 600
        ("60000.01", "0.01", True),  # 600.0001
        ("60000.00", "0.01001", True),
        ("1.00", "600", False),
        (None, "0.01", False),  # market order valued at mid 60000.00
        (None, "0.01001", True),
    ],
)
def test_max_order_notional(price: str | None, qty: str, denied: bool) -> None:
    check = MaxOrderNotionalCheck.from_params({"max_notional": "600"})
    ctx = RiskCtx()
    ctx.set_mid("BTCUSDT", "59999.99", "60000.01")
    reason = check.check(order(BUY, qty, price), ctx)
    assert (reason is not None) == denied
    if denied:
        assert "exceeds max_notional 600" in reason
    assert check.check(order(BUY, qty, None), RiskCtx()) is not None  # market order, no book


def _orders(n: int, symbol: str = "BTCUSDT", strategy: str = "mm") -> list[LiveOrder]:
    return [LiveOrder(symbol, strategy, BUY, D("1"), D("1")) for _ in range(n)]


@pytest.mark.parametrize(
    ("btc", "eth", "params", "denied"),
    [
        (2, 0, {"per_symbol": 3}, False),
        (3, 0, {"per_symbol": 3}, True),
        (3, 5, {"per_symbol": 4}, False),  # other symbols do not count per symbol
        (2, 2, {"total": 5}, False),
        (2, 3, {"total": 5}, True),
        (199, 0, {}, False),  # no per_symbol: the instrument's MAX_NUM_ORDERS (200) applies
        (200, 0, {}, True),
    ],
)
def test_max_open_orders_counts_every_strategy(
    btc: int, eth: int, params: dict[str, Any], denied: bool
) -> None:
    check = MaxOpenOrdersCheck.from_params(params)
    ctx = CountingCtx(orders=_orders(btc, strategy="other") + _orders(eth, "ETHUSDT"))
    reason = check.check(order(), ctx)
    assert (reason is not None) == denied
    if denied:
        assert "open orders" in reason


def test_max_open_orders_falls_back_to_the_strategy_s_own_orders() -> None:
    check = MaxOpenOrdersCheck.from_params({"per_symbol": 2})
    ctx = RiskCtx(orders=_orders(1) + _orders(5, strategy="other"))
    assert check.check(order(), ctx) is None
    ctx.orders += _orders(1)
    assert check.check(order(), ctx) is not None


@pytest.mark.parametrize(
    ("price", "denied"),
    [
        ("59940.00", False),  # mid 60000.00, 10 bps = 60.00: exactly on the band
        ("59939.99", True),
        ("60060.00", False),
        ("60060.01", True),
        ("60000.00", False),
    ],
)
def test_price_band(price: str, denied: bool) -> None:
    check = PriceBandCheck.from_params({"max_bps": 10})
    ctx = RiskCtx()
    ctx.set_mid("BTCUSDT", "59999.99", "60000.01")
    reason = check.check(order(BUY, "0.001", price), ctx)
    assert (reason is not None) == denied
    if denied:
        assert "bps from mid 60000" in reason and "max_bps 10" in reason


def test_price_band_without_book_or_price() -> None:
    check = PriceBandCheck.from_params({"max_bps": 10})
    reason = check.check(order(), RiskCtx())
    assert reason is not None and "no top of book" in reason
    ctx = RiskCtx()
    ctx.set_mid("BTCUSDT", "59999.99", "60000.01")
    reason = check.check(order(price=None), ctx)
    assert reason is not None and "market order" in reason
    assert (
        PriceBandCheck.from_params({"max_bps": 10, "allow_market": True}).check(order(price=None), ctx)
        is None
    )


STALE = {"max_book_age": "2s", "max_user_silence": "30s", "max_clock_skew_ms": 500}


@pytest.mark.parametrize(
    ("setup", "needle"),
    [
        ({}, None),
        ({"market_age": 2 * S}, None),  # exactly the limit
        (
            {"market_age": 2 * S + 1},
            "stale book: last BTCUSDT market data 2000.000001 ms ago > max_book_age 2000 ms",
        ),
        ({"market_age_other": 10 * S}, None),  # another symbol's book is not this order's
        ({"user_age": 30 * S}, None),
        ({"user_age": 30 * S + NS_PER_MS}, "private stream silent for 30001 ms > max_user_silence 30000 ms"),
        ({"skew_ms": 500}, None),
        ({"skew_ms": -500}, None),
        ({"skew_ms": 501}, "clock skew 501 ms beyond +-500 ms"),
        ({"skew_ms": -501}, "clock skew -501 ms beyond +-500 ms"),
        ({"gap": True}, "unresolved sequence gap on BTCUSDT"),
        ({"gap": True, "skew_ms": 9999}, "unresolved sequence gap"),  # the most specific reason first
    ],
)
def test_stale_data(setup: dict[str, Any], needle: str | None) -> None:
    check = StaleDataCheck.from_params(STALE)
    ctx = RiskCtx(user_age=setup.get("user_age", 0), skew_ms=setup.get("skew_ms", 0))
    if "market_age" in setup:
        ctx.market_age["BTCUSDT"] = setup["market_age"]
    if "market_age_other" in setup:
        ctx.market_age["ETHUSDT"] = setup["market_age_other"]
    if setup.get("gap"):
        ctx.gaps.add("BTCUSDT")
    reason = check.check(order(), ctx)
    if needle is None:
        assert reason is None
    else:
        assert reason is not None and needle in reason


def test_stale_data_limits_can_be_disabled() -> None:
    check = StaleDataCheck.from_params(
        {"max_book_age": None, "max_user_silence": None, "max_clock_skew_ms": None, "check_gaps": False}
    )
    ctx = RiskCtx(user_age=10**15, skew_ms=10**6, market_age={"BTCUSDT": 10**15}, gaps={"BTCUSDT"})
    assert check.check(order(), ctx) is None


def test_price_band_follows_the_mid_and_the_instrument() -> None:
    """The last mid is remembered per (instrument, mid2): a moved top, or the same tick count on an
    instrument with another tick size, must be judged against its own mid."""
    check = PriceBandCheck.from_params({"max_bps": 10})
    ctx = RiskCtx()
    ctx.set_mid("BTCUSDT", "59999.99", "60000.01")
    assert check.check(order(BUY, "0.001", "60060.00"), ctx) is None
    assert check.check(order(BUY, "0.001", "60060.00"), ctx) is None  # same top again
    ctx.set_mid("BTCUSDT", "59899.99", "59900.01")  # mid moved 100.00 down
    assert check.check(order(BUY, "0.001", "60060.00"), ctx) is not None
    coarse = Instrument("BTCUSDT", "BTC", "USDT", D("0.1"), D("0.00001"))
    ticks = ctx.tops["BTCUSDT"]
    ctx.instruments = {"BTCUSDT": coarse}
    ctx.tops["BTCUSDT"] = BookTop("BTCUSDT", ticks.bid_price, 1, ticks.ask_price, 1, 1)  # same mid2
    reason = check.check(order(BUY, "0.001", "599000.0"), ctx)  # mid 599000.0 in 0.1 ticks
    assert reason is None
    assert check.check(order(BUY, "0.001", "59900.00"), ctx) is not None


def test_price_band_whose_edges_cannot_be_exact_judges_by_the_formula() -> None:
    """The band's edges are computed once per top, exactly; a ``max_bps`` with more digits than
    exact arithmetic keeps leaves them unset, and each order is judged by the formula instead."""
    check = PriceBandCheck.from_params({"max_bps": "10." + "3" * 70})
    ctx = RiskCtx()
    ctx.set_mid("BTCUSDT", "59999.99", "60000.01")
    assert check.check(order(BUY, "0.001", "60061.00"), ctx) is None  # 10.17 bps
    assert check._band[3] is None and check._band[4] is None  # the formula's path
    assert check.check(order(BUY, "0.001", "59939.00"), ctx) is None
    reason = check.check(order(BUY, "0.001", "60063.00"), ctx)  # 10.5 bps
    assert reason is not None and "10.5 bps from mid" in reason
    assert check.check(order(BUY, "0.001", "59937.00"), ctx) is not None


def test_a_subclass_overriding_check_keeps_its_override() -> None:
    """Without a symbol filter ``check`` is bound straight to ``evaluate`` (one call less per order);
    a subclass with its own ``check`` must still be called through it."""

    class Audited(MaxOrderNotionalCheck):
        seen: list[str] = []

        def check(self, order: Any, ctx: Any) -> str | None:
            self.seen.append(order.client_order_id)
            return super().check(order, ctx)

    plain_check = MaxOrderNotionalCheck.from_params({"max_notional": "10"})
    audited = Audited.from_params({"max_notional": "10"})
    o = order(qty="0.001", price="60000.00")  # 60 USDT > 10
    assert plain_check.check(o, RiskCtx()) is not None
    assert audited.check(o, RiskCtx()) is not None and Audited.seen == ["cid-1"]
    filtered = MaxOrderNotionalCheck.from_params({"max_notional": "10", "symbols": ["ETHUSDT"]})
    assert filtered.check(o, RiskCtx()) is None  # the symbol filter still applies
