"""Checks with memory, driven by a controllable clock: order rate windows, drawdown and daily-loss
halts and their resume conditions, equity from fills."""

from __future__ import annotations

from decimal import Decimal

import pytest
from botcore_risk_basic.checks import DailyLossCheck, DrawdownCheck, OrderRateCheck
from botcore_risk_basic.pnl import EquityTracker
from risk_support import D, RiskCtx, S, fill, order

from botcore.model import Side

BUY, SELL = Side.BUY, Side.SELL
DAY = 86_400 * S

# ------------------------------------------------------------------------------------------------
# order_rate
# ------------------------------------------------------------------------------------------------


def _send(check: OrderRateCheck, ctx: RiskCtx, at: int) -> str | None:
    """What the engine does: ask, and report the order as sent if it goes out (allowed, or the
    veto was only a shadow's)."""
    ctx.now = at
    o = order()
    reason = check.check(o, ctx)
    if reason is None or check.shadow:
        check.order_sent(o, ctx)
    return reason


RATE_SEQUENCE = [
    # (send time, denied?, reason fragment): per_second 3, per_10s 5, sliding windows
    (0, False, ""),
    (0, False, ""),
    (0, False, ""),  # 3 in the same instant: per_second reached
    (S - 1, True, "per second"),  # the window still holds all 3
    (S, False, ""),  # the first 3 are exactly 1 s old: out of the 1 s window
    (S + S // 2, False, ""),  # 5 in 10 s: per_10s reached
    (2 * S + S // 2, True, "per 10 s"),
    (10 * S - 1, True, "per 10 s"),
    (10 * S, False, ""),  # the t=0 orders are exactly 10 s old: gone
    (10 * S, False, ""),
    (10 * S, False, ""),  # 10 s window: t=1 s, 1.5 s, 3 x 10 s = 5
    (10 * S + 1, True, "per 10 s"),  # both windows are full: the 10 s one is reported
]


def test_order_rate_windows() -> None:
    check = OrderRateCheck.from_params({"per_second": 3, "per_10s": 5})
    ctx = RiskCtx()
    for i, (at, denied, why) in enumerate(RATE_SEQUENCE):
        reason = _send(check, ctx, at)
        assert (reason is not None) == denied, (i, at, reason)
        if denied:
            assert reason is not None and why in reason, (i, reason)


def test_denied_orders_do_not_fill_the_window() -> None:
    check = OrderRateCheck.from_params({"per_second": 1})
    ctx = RiskCtx()
    assert _send(check, ctx, 0) is None
    for t in range(1, 100):
        assert _send(check, ctx, t) is not None  # a strategy hammering: all denied, none counted
    assert _send(check, ctx, S) is None
    assert check.count(S, S) == 1


def test_shadow_order_rate_counts_what_goes_out_anyway() -> None:
    check = OrderRateCheck.from_params({"per_second": 1})
    check.shadow = True  # set by the host from the entry's `shadow: true`
    ctx = RiskCtx()
    assert _send(check, ctx, 0) is None
    assert _send(check, ctx, 1) is not None  # would deny (the chain lets it through)...
    assert check.count(1, S) == 2  # ...and it is counted, since it was sent


def test_order_rate_check_only_reads_its_windows() -> None:
    """``check`` counts nothing (the engine rehearses it in idle moments); only ``order_sent`` does."""
    check = OrderRateCheck.from_params({"per_second": 2})
    assert check.rehearsable is True
    ctx = RiskCtx()
    for _ in range(10):
        assert check.check(order(), ctx) is None
    assert check.count(0, S) == 0
    check.order_sent(order(), ctx)
    check.order_sent(order(), ctx)
    assert check.check(order(), ctx) is not None and check.count(0, S) == 2


def test_order_rate_counts_only_its_symbols() -> None:
    check = OrderRateCheck.from_params({"per_second": 1, "symbols": ["ETHUSDT"]})
    ctx = RiskCtx()
    check.order_sent(order(), ctx)  # BTCUSDT: not this check's business
    assert check.count(0, S) == 0
    eth = order(symbol="ETHUSDT")
    check.order_sent(eth, ctx)
    assert check.check(eth, ctx) is not None
    assert check.check(order(), ctx) is None


def test_order_rate_is_capped_by_the_exchange_orders_limit() -> None:
    check = OrderRateCheck.from_params({"per_second": 100, "exchange_orders_per_10s": 4})
    ctx = RiskCtx()
    assert [_send(check, ctx, i * S) is None for i in range(5)] == [True, True, True, True, False]


# ------------------------------------------------------------------------------------------------
# equity
# ------------------------------------------------------------------------------------------------


def test_equity_is_realized_plus_unrealized_minus_fees() -> None:
    ctx = RiskCtx()
    ctx.set_mid("BTCUSDT", "60000.00", "60000.02")  # mid 60000.01
    ctx.set_mid("BNBUSDT", "499.99", "500.01")  # mid 500
    eq = EquityTracker()
    assert eq.apply(fill(BUY, "0.01", "60000.00", fee="0.6", fee_asset="USDT"), ctx)
    assert eq.equity(ctx) == D("0.0001") - D("0.6")
    # sell 0.004 at 60010: realized 0.04, fee 0.0001 BTC reduces the inventory
    eq.apply(fill(SELL, "0.004", "60010.00", fee="0.0001", fee_asset="BTC"), ctx)
    assert eq.inventory("BTCUSDT") == D("0.0059")
    cash = D("-600") - D("0.6") + D("240.04")
    assert eq.equity(ctx) == cash + D("0.0059") * D("60000.01")
    # a BNB fee is valued at the BNBUSDT mid
    eq.apply(fill(BUY, "0.001", "60000.00", fee="0.002", fee_asset="BNB"), ctx)
    assert eq.equity(ctx) == cash - D("60") + D("0.0069") * D("60000.01") - D("0.002") * D("500")
    # without a book the last price seen is the mark
    ctx.tops.pop("BTCUSDT")
    assert eq.equity(ctx) == cash - D("60") + D("0.0069") * D("60000.01") - D("1")


def test_equity_ignores_duplicate_fills() -> None:
    ctx = RiskCtx()
    eq = EquityTracker()
    f = fill(BUY, "1", "100.00", fee="1", fee_asset="USDT")
    assert eq.apply(f, ctx) and not eq.apply(f, ctx)
    assert eq.inventory("BTCUSDT") == 1


# ------------------------------------------------------------------------------------------------
# drawdown
# ------------------------------------------------------------------------------------------------


def _btc_at(ctx: RiskCtx, mid: str) -> None:
    m = Decimal(mid)
    ctx.set_mid("BTCUSDT", str(m - D("0.01")), str(m + D("0.01")))


def _long_one(check: DrawdownCheck | DailyLossCheck, ctx: RiskCtx) -> None:
    """Buy 1 BTC at 60000 (no fee): equity then is (mid - 60000) per unit."""
    _btc_at(ctx, "60000.00")
    check.on_fill(fill(BUY, "1", "60000.00"), ctx)


@pytest.mark.parametrize(("mid", "halted"), [("59990.00", False), ("59989.99", True)])
def test_drawdown_limit_is_inclusive(mid: str, halted: bool) -> None:
    check = DrawdownCheck.from_params({"max_drawdown": "10"})
    ctx = RiskCtx()
    _long_one(check, ctx)
    _btc_at(ctx, mid)
    reason = check.halted(ctx)
    assert (reason is not None) == halted
    if halted:
        assert "drawdown 10.01 > max_drawdown 10" in reason
        veto = check.check(order(), ctx)
        assert veto is not None and veto.startswith("halted: drawdown")
    else:
        assert check.check(order(), ctx) is None


def test_drawdown_follows_the_high_water_mark() -> None:
    check = DrawdownCheck.from_params({"max_drawdown": "10"})
    ctx = RiskCtx()
    _long_one(check, ctx)
    _btc_at(ctx, "60025.00")
    assert check.halted(ctx) is None and check.high_water == 25
    _btc_at(ctx, "60015.00")  # 10 below the mark: still fine
    assert check.halted(ctx) is None
    _btc_at(ctx, "60014.99")
    assert check.halted(ctx) is not None


def test_drawdown_manual_resume_never_lifts_by_itself() -> None:
    check = DrawdownCheck.from_params({"max_drawdown": "10", "resume": "manual"})
    ctx = RiskCtx()
    _long_one(check, ctx)
    _btc_at(ctx, "59900.00")
    assert check.halted(ctx) is not None
    _btc_at(ctx, "61000.00")  # equity recovered far above the mark
    ctx.now = 30 * DAY
    assert check.halted(ctx) is not None
    check.resume()
    assert check.halted(ctx) is None and check.check(order(), ctx) is None
    assert check.high_water == 1000  # the limit restarts from the equity at resume
    _btc_at(ctx, "60989.99")
    assert check.halted(ctx) is not None  # 10.01 below the new mark


@pytest.mark.parametrize(
    ("elapsed", "mid", "resumed"),
    [
        (60 * S - 1, "60000.00", False),  # equity recovered, but too early
        (60 * S, "59995.00", False),  # on time, equity -5 is not above -5
        (60 * S, "59995.01", True),
        (3600 * S, "59980.00", False),  # no amount of waiting without recovery
    ],
)
def test_drawdown_resume_after_with_equity_threshold(elapsed: int, mid: str, resumed: bool) -> None:
    check = DrawdownCheck.from_params(
        {"max_drawdown": "10", "resume_after": "1m", "resume_equity_above": "-5"}
    )
    ctx = RiskCtx(now=1000 * S)
    _long_one(check, ctx)
    _btc_at(ctx, "59980.00")
    assert check.halted(ctx) is not None
    ctx.now += elapsed
    _btc_at(ctx, mid)
    assert (check.halted(ctx) is None) == resumed
    if resumed:
        assert check.high_water == check.last_equity == D("-4.99")


def test_drawdown_resume_after_defaults_to_back_within_the_limit() -> None:
    check = DrawdownCheck.from_params({"max_drawdown": "10", "resume_after": 5})
    ctx = RiskCtx()
    _long_one(check, ctx)
    _btc_at(ctx, "59980.00")
    assert check.halted(ctx) is not None
    ctx.now = 5 * S
    _btc_at(ctx, "59989.99")
    assert check.halted(ctx) is not None  # still 10.01 down
    _btc_at(ctx, "59990.00")
    assert check.halted(ctx) is None


def test_drawdown_counts_fees_and_only_its_symbols() -> None:
    check = DrawdownCheck.from_params({"max_drawdown": "1", "symbols": ["BTCUSDT"]})
    ctx = RiskCtx()
    _btc_at(ctx, "60000.00")
    check.on_fill(fill(BUY, "0.01", "60000.00", fee="1", fee_asset="USDT"), ctx)
    assert check.halted(ctx) is None  # exactly 1 of fees
    check.on_fill(fill(BUY, "5", "3000.00", symbol="ETHUSDT", fee="100", fee_asset="USDT"), ctx)
    assert check.halted(ctx) is None  # ETHUSDT is not watched
    check.on_fill(fill(SELL, "0.01", "60000.00", fee="0.01", fee_asset="USDT"), ctx)
    reason = check.halted(ctx)
    assert reason is not None and "drawdown 1.01" in reason


# ------------------------------------------------------------------------------------------------
# daily_loss
# ------------------------------------------------------------------------------------------------


class WallClock:
    def __init__(self, ns: int) -> None:
        self.ns = ns

    def __call__(self) -> int:
        return self.ns


MIDNIGHT = 19_943 * DAY  # 2024-08-08T00:00:00Z


@pytest.mark.parametrize(("mid", "halted"), [("59950.00", False), ("59949.99", True)])
def test_daily_loss_limit_is_inclusive(mid: str, halted: bool) -> None:
    wall = WallClock(MIDNIGHT + 3600 * S)
    check = DailyLossCheck(DailyLossCheck.params_model(max_daily_loss=D("50")), wall_clock=wall)
    ctx = RiskCtx()
    _long_one(check, ctx)
    _btc_at(ctx, mid)
    reason = check.halted(ctx)
    assert (reason is not None) == halted
    if halted:
        assert "loss 50.01 since UTC day start > max_daily_loss 50" in reason


def test_daily_loss_lifts_at_the_next_utc_day_and_rebases() -> None:
    wall = WallClock(MIDNIGHT + DAY - 10 * S)  # 23:59:50
    check = DailyLossCheck(DailyLossCheck.params_model(max_daily_loss=D("50")), wall_clock=wall)
    ctx = RiskCtx()
    _long_one(check, ctx)
    _btc_at(ctx, "59900.00")
    assert check.halted(ctx) is not None
    wall.ns = MIDNIGHT + 2 * DAY - 1  # the last nanosecond of the next UTC day
    assert check.halted(ctx) is None
    assert check.day_start_equity == -100  # the new day's loss counts from here
    _btc_at(ctx, "59850.00")
    assert check.halted(ctx) is None  # 50 lost today: exactly the limit
    _btc_at(ctx, "59849.99")
    assert check.halted(ctx) is not None


def test_daily_loss_same_day_stays_halted_even_if_equity_recovers() -> None:
    wall = WallClock(MIDNIGHT)
    check = DailyLossCheck(DailyLossCheck.params_model(max_daily_loss=D("50")), wall_clock=wall)
    ctx = RiskCtx()
    _long_one(check, ctx)
    _btc_at(ctx, "59900.00")
    assert check.halted(ctx) is not None
    _btc_at(ctx, "60100.00")
    wall.ns = MIDNIGHT + DAY - 1
    assert check.halted(ctx) is not None
    wall.ns = MIDNIGHT + DAY
    assert check.halted(ctx) is None


def test_daily_loss_manual_resume() -> None:
    wall = WallClock(MIDNIGHT)
    check = DailyLossCheck(
        DailyLossCheck.params_model(max_daily_loss=D("50"), resume="manual"), wall_clock=wall
    )
    ctx = RiskCtx()
    _long_one(check, ctx)
    _btc_at(ctx, "59900.00")
    assert check.halted(ctx) is not None
    wall.ns += 3 * DAY
    assert check.halted(ctx) is not None  # new days do not lift a manual halt
    check.resume()
    assert check.halted(ctx) is None
    _btc_at(ctx, "59850.00")
    assert check.halted(ctx) is None  # loss counted from the resume: exactly 50
    _btc_at(ctx, "59849.99")
    assert check.halted(ctx) is not None


def _reference_rate(sent: list[int], now: int, per_second: int | None, per_10s: int) -> str | None:
    """The windows counted the slow way (every send time compared), as the check once did."""
    n10 = sum(1 for t in sent if t > now - 10 * S)
    if n10 + 1 > per_10s:
        return "per 10 s"
    if per_second is not None and sum(1 for t in sent if t > now - S) + 1 > per_second:
        return "per second"
    return None


@pytest.mark.parametrize("seed", range(5))
def test_order_rate_windows_match_a_brute_force_count(seed: int) -> None:
    import random

    rng = random.Random(seed)
    check = OrderRateCheck.from_params({"per_second": 4, "per_10s": 20})
    ctx = RiskCtx()
    sent: list[int] = []
    now = 0
    for _ in range(2000):
        now += rng.choice((0, 1, S // 50, S // 7, S // 3, 2 * S))  # bursts, same-instant sends, lulls
        want = _reference_rate(sent, now, 4, 20)
        got = _send(check, ctx, now)
        assert (got is None) == (want is None), (now, got, want)
        if got is not None:
            assert want is not None and want in got
        else:
            sent.append(now)
    assert check.count(now, 10 * S) == sum(1 for t in sent if t > now - 10 * S)
