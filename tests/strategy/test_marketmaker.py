"""When the market maker requotes: tolerance, interval, order age, fills, trust, independence.

Recorded BTCUSDT tops are replayed through a ``MarketMaker`` with a controllable clock, a fake
context and an engine stand-in that applies the returned quotes to fake live orders.
"""

from __future__ import annotations

import json
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
import pytest
from botcore_strategy_marketmaker.params import parse_params
from botcore_strategy_marketmaker.strategy import MarketMaker, compute_quotes, make_strategy
from mm_support import FakeCtx, FakeOrder, apply_quotes, btcusdt, recorded_tops, top

from botcore.model import BookTop, Fill, Instrument, OrderType, Quote, Side, TimeInForce

S = 1_000_000_000
D = Decimal
SYM = "BTCUSDT"


def instrument(symbol: str) -> Instrument:
    path = Path(str(resources.files("botcore") / "data" / "exchangeinfo" / "exchangeInfo_2025-08-07.json"))
    info = json.loads(path.read_text())
    return Instrument.from_exchange_info(next(s for s in info["symbols"] if s["symbol"] == symbol))


def mm(name: str = "mm", **params: Any) -> tuple[MarketMaker, FakeCtx]:
    if not {"notional", "level_amounts"} & params.keys():
        params.setdefault("amount", "0.001")
    strat = make_strategy(name, params, {SYM: btcusdt()})
    return strat, FakeCtx(instruments={SYM: btcusdt()})


def step(strat: MarketMaker, ctx: FakeCtx, t: Any, now: int) -> list[Quote] | None:
    """One engine iteration: advance the clock, ask the strategy, apply what it returned."""
    ctx.now = now
    ctx.tops[t.symbol] = t
    quotes = strat.on_top(ctx, t)
    if quotes is not None:
        apply_quotes(ctx, strat.name, t.symbol, quotes)
    return quotes


def fill(order: FakeOrder, ctx: FakeCtx, qty: Decimal | None = None) -> Fill:
    """Fill ``order`` (fully unless ``qty``): update the fake live orders and position."""
    qty = order.remaining if qty is None else qty
    order.cum_qty += qty
    if order.remaining == 0:
        ctx.orders.remove(order)
    ctx.pos[order.symbol] = ctx.pos.get(order.symbol, D(0)) + order.side.sign * qty
    return Fill(order.symbol, "cid", 1, 1, order.side, order.price, qty, D(0), "BNB", True, 0)


# ------------------------------------------------------------------------------------------------
# Requote tolerance and interval on the recording
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tolerance", "interval"),
    [("0", 0), ("0", "0.2"), ("0.5", 0), ("0.5", "0.2"), ("2", "1"), ("1.5", "5s"), ("0.37", 0), ("0.013", 0)],
)
def test_requotes_follow_tolerance_and_interval(tolerance: str, interval: Any) -> None:
    strat, ctx = mm(requote_tolerance_bps=tolerance, min_requote_interval=interval, levels=2)
    p = strat.params
    t0 = recorded_tops()[0][0]
    ref_mid2: int | None = None
    last = 0
    n_requotes = 0
    for recv_ns, t in recorded_tops():
        now = recv_ns - t0
        quotes = step(strat, ctx, t, now)
        if ref_mid2 is None:
            expected = True
        else:
            moved = abs(t.mid2 - ref_mid2) * 10_000 > D(tolerance) * ref_mid2
            expected = moved and now - last >= p.min_requote_interval
        assert (quotes is not None) == expected, (now, t)
        if quotes is not None:
            assert quotes == compute_quotes(p, btcusdt(), t)
            ref_mid2, last = t.mid2, now
            n_requotes += 1
        # The live orders always are what the strategy last asked for.
        assert len(ctx.orders) == 4
    assert n_requotes >= 2


@pytest.mark.parametrize(("tolerance", "limit"), [("1", 200), ("0.37", 74), ("0.013", 2)])
def test_a_move_exactly_at_the_tolerance_is_no_move(tolerance: str, limit: int) -> None:
    """Mid (in half-ticks, mid2) 2,000,002: a tolerance of t bps allows a move of t/10,000 of it."""
    strat, ctx = mm(requote_tolerance_bps=tolerance, min_requote_interval=0)
    base = BookTop(SYM, 1_000_000, 5, 1_000_002, 5, 1)
    assert step(strat, ctx, base, 0) is not None
    for move, moves in ((limit, False), (limit + 1, True)):
        up = move // 2
        t = BookTop(SYM, base.bid_price + up, 5, base.ask_price + move - up, 5, 2)
        assert t.mid2 - base.mid2 == move
        assert (step(strat, ctx, t, 1) is not None) is moves, (tolerance, move)


def test_wider_tolerance_means_fewer_requotes() -> None:
    counts = []
    for tolerance in ("0", "0.5", "2", "10"):
        strat, ctx = mm(requote_tolerance_bps=tolerance, min_requote_interval=0)
        t0 = recorded_tops()[0][0]
        counts.append(sum(step(strat, ctx, t, ns - t0) is not None for ns, t in recorded_tops()))
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]


# ------------------------------------------------------------------------------------------------
# Orders that went missing, order age
# ------------------------------------------------------------------------------------------------


def test_a_vetoed_quote_is_retried_after_the_interval() -> None:
    strat, ctx = mm(min_requote_interval=1, requote_tolerance_bps=100)
    t = top(6_000_000, 6_000_001)
    ctx.now = 0
    quotes = strat.on_top(ctx, t)
    assert quotes is not None
    apply_quotes(ctx, "mm", SYM, quotes, veto=lambda q: q.side is Side.BUY)  # risk denied the bid
    ctx.orders.append(FakeOrder(SYM, "other", Side.BUY, D("1"), D("1")))  # another strategy's: ignored
    assert step(strat, ctx, t, S // 2) is None  # within the interval and no move: keep
    assert step(strat, ctx, t, S - 1) is None
    again = step(strat, ctx, t, S)
    assert again is not None and any(q.side is Side.BUY for q in again)
    assert sum(1 for o in ctx.orders if o.strategy == "mm") == 2
    assert step(strat, ctx, t, 3 * S) is None  # all placed now: nothing to repair


def test_an_order_that_vanished_is_replaced_at_once() -> None:
    strat, ctx = mm(min_requote_interval=10, requote_tolerance_bps=100)
    t = top(6_000_000, 6_000_001)
    step(strat, ctx, t, 0)
    assert step(strat, ctx, t, 1) is None
    ctx.orders.pop()  # cancelled from outside / expired: the live count dropped
    quotes = step(strat, ctx, t, 2)
    assert quotes is not None and len(quotes) == 2 and len(ctx.orders) == 2


def test_a_replacement_that_vanishes_again_waits_for_the_interval() -> None:
    """A post-only rejection or a rate-limit ban refuses every order: no retry at every tick."""
    strat, ctx = mm(min_requote_interval=1, requote_tolerance_bps=100)
    t = top(6_000_000, 6_000_001)
    step(strat, ctx, t, 0)
    assert step(strat, ctx, t, 1) is None
    ctx.orders.pop()  # the venue cancelled one: put back at once
    assert step(strat, ctx, t, 2) is not None and len(ctx.orders) == 2
    ctx.orders.pop()  # ... and the replacement was rejected
    for ns in (3, 4, S // 2, S + 1):  # the gate counts from the replacement at t=2
        assert step(strat, ctx, t, ns) is None
    assert len(ctx.orders) == 1
    assert step(strat, ctx, t, S + 2) is not None and len(ctx.orders) == 2  # the gate opened
    assert step(strat, ctx, t, S + 3) is None
    ctx.orders.pop()  # a later loss, after an ordinary decision, is again put back at once
    assert step(strat, ctx, t, S + 4) is not None and len(ctx.orders) == 2


def test_aged_orders_are_cancelled_then_replaced() -> None:
    strat, ctx = mm(max_order_age=5, min_requote_interval="0.5", requote_tolerance_bps=100)
    t = top(6_000_000, 6_000_001)
    step(strat, ctx, t, 0)
    first = list(ctx.orders)
    assert step(strat, ctx, t, 5 * S) is None  # exactly max_order_age old: not older yet
    assert step(strat, ctx, t, 5 * S + 1) == []  # both aged: left out, the engine cancels them
    assert ctx.orders == []
    quotes = step(strat, ctx, t, 5 * S + 2)  # put back at the next top, without waiting
    assert quotes is not None and len(quotes) == 2
    assert all(o.created_ns == 5 * S + 2 for o in ctx.orders)
    assert not any(o in first for o in ctx.orders)
    assert step(strat, ctx, t, 6 * S) is None


def test_only_the_aged_order_is_refreshed() -> None:
    strat, ctx = mm(max_order_age=5, min_requote_interval=0, requote_tolerance_bps=100)
    t = top(6_000_000, 6_000_001)
    step(strat, ctx, t, 0)
    ask = next(o for o in ctx.orders if o.side is Side.SELL)
    ask.created_ns = 3 * S  # as if re-placed later
    quotes = step(strat, ctx, t, 5 * S + 1)
    assert quotes is not None and [q.side for q in quotes] == [Side.SELL]
    assert ctx.orders == [ask]


# ------------------------------------------------------------------------------------------------
# After a fill
# ------------------------------------------------------------------------------------------------


def test_fill_pauses_the_filled_side_for_fill_delay() -> None:
    strat, ctx = mm(fill_delay=2, min_requote_interval=0, requote_tolerance_bps=0, levels=2)
    t = top(6_000_000, 6_000_001)
    step(strat, ctx, t, 0)
    bid0 = next(o for o in ctx.orders if o.side is Side.BUY and o.level == 0)
    ctx.now = S
    strat.on_fill(ctx, fill(bid0, ctx))
    quotes = step(strat, ctx, t, S + 1)  # requote right after the fill, even with no move
    assert quotes is not None and {q.side for q in quotes} == {Side.SELL}
    assert all(o.side is Side.SELL for o in ctx.orders)  # the level-1 bid was cancelled too
    moved = top(6_000_500, 6_000_501)
    quotes = step(strat, ctx, moved, 3 * S - 1)  # still paused, but the ask follows the market
    assert quotes is not None and {q.side for q in quotes} == {Side.SELL}
    assert min(q.price for q in quotes) == D("60005.01")
    quotes = step(strat, ctx, moved, 3 * S)  # pause over: bids come back with no move needed
    assert quotes is not None and sum(q.side is Side.BUY for q in quotes) == 2


def test_hang_other_side_keeps_its_order_during_the_pause() -> None:
    strat, ctx = mm(fill_delay="500ms", hang_other_side=True, min_requote_interval=0)
    step(strat, ctx, top(6_000_000, 6_000_001), 0)
    ask = next(o for o in ctx.orders if o.side is Side.SELL)
    bid = next(o for o in ctx.orders if o.side is Side.BUY)
    strat.on_fill(ctx, fill(bid, ctx))
    for now, t in ((1, top(6_000_100, 6_000_101)), (S // 2 - 1, top(5_999_000, 5_999_001))):
        quotes = step(strat, ctx, t, now)
        assert quotes is not None and [(q.side, q.price, q.qty) for q in quotes] == [
            (Side.SELL, ask.price, ask.qty)
        ]
        assert ctx.orders == [ask]  # the very same order, untouched
    quotes = step(strat, ctx, top(5_999_000, 5_999_001), S // 2)
    assert quotes is not None
    assert [(q.side, q.price) for q in quotes] == [(Side.BUY, D("59990.00")), (Side.SELL, D("59990.01"))]


def test_partial_fill_cancels_the_rest_of_the_paused_side() -> None:
    strat, ctx = mm(amount="0.01", fill_delay=1, min_requote_interval=0)
    step(strat, ctx, top(6_000_000, 6_000_001), 0)
    bid = next(o for o in ctx.orders if o.side is Side.BUY)
    strat.on_fill(ctx, fill(bid, ctx, D("0.004")))
    quotes = step(strat, ctx, top(6_000_000, 6_000_001), 1)
    assert quotes is not None and [q.side for q in quotes] == [Side.SELL]
    assert bid not in ctx.orders


def test_fill_without_delay_requotes_with_the_new_position() -> None:
    strat, ctx = mm(amount="0.01", skew_bps_per_unit="100", min_requote_interval=10, requote_tolerance_bps=50)
    t = top(6_000_000, 6_000_001)
    step(strat, ctx, t, 0)
    bid = next(o for o in ctx.orders if o.side is Side.BUY)
    strat.on_fill(ctx, fill(bid, ctx))
    quotes = step(strat, ctx, t, 1)  # ungated by interval and tolerance: the position changed
    assert quotes == compute_quotes(strat.params, btcusdt(), t, position=D("0.01"))
    assert {q.side for q in quotes} == {Side.BUY, Side.SELL}


# ------------------------------------------------------------------------------------------------
# Trust, crossed books, other symbols
# ------------------------------------------------------------------------------------------------


def test_untrusted_data_cancels_everything_and_recovers() -> None:
    strat, ctx = mm(min_requote_interval=60)
    t = top(6_000_000, 6_000_001)
    step(strat, ctx, t, 0)
    assert len(ctx.orders) == 2
    ctx.untrusted.add(SYM)
    assert step(strat, ctx, t, 1) == []
    assert ctx.orders == []
    assert step(strat, ctx, t, 2) == []  # stays cancelled while untrusted
    ctx.untrusted.clear()
    quotes = step(strat, ctx, t, 3)  # quotes at once, the interval does not hold back a restart
    assert quotes is not None and len(quotes) == 2


@pytest.mark.parametrize("bad", [top(6_000_001, 6_000_000), top(6_000_000, 6_000_000)])
def test_crossed_or_locked_top_cancels_everything(bad: Any) -> None:
    strat, ctx = mm(min_requote_interval=60)
    step(strat, ctx, top(6_000_000, 6_000_001), 0)
    assert step(strat, ctx, bad, 1) == []
    assert ctx.orders == []


def test_halted_symbol_status_cancels_everything() -> None:
    halted = msgspec.structs.replace(btcusdt(), status="BREAK")
    strat = make_strategy("mm", {"amount": "0.001"}, {SYM: halted})
    ctx = FakeCtx(instruments={SYM: halted})
    assert strat.on_top(ctx, top(6_000_000, 6_000_001)) == []


def test_top_of_a_symbol_not_quoted_is_ignored() -> None:
    strat, ctx = mm()
    assert strat.on_top(ctx, top(100, 101, symbol="ETHUSDT")) is None


def test_instances_and_symbols_share_no_state() -> None:
    insts = {SYM: btcusdt(), "ETHUSDT": instrument("ETHUSDT")}
    a = make_strategy("a", {"amount": "0.01", "fill_delay": 5}, insts)
    b = make_strategy("b", {"amount": "0.02", "symbols": [SYM], "bid_distance": {"ticks": 3}}, insts)
    assert a.symbols == (SYM, "ETHUSDT") and b.symbols == (SYM,)
    ctx = FakeCtx(instruments=insts)
    btc, eth = top(6_000_000, 6_000_001), top(300_000, 300_001, symbol="ETHUSDT")
    for s in (a, b):
        for t in (btc, eth):
            q = step(s, ctx, t, 0)
            assert (q is None) == (s is b and t is eth)
    a_bid = next(o for o in ctx.orders if o.strategy == "a" and o.symbol == SYM and o.side is Side.BUY)
    a.on_fill(ctx, fill(a_bid, ctx))
    ctx.now = 1
    qa_btc = a.on_top(ctx, btc)
    assert qa_btc is not None and {q.side for q in qa_btc} == {Side.SELL}  # a paused its BTC bid
    qa_eth = a.on_top(ctx, eth)
    assert qa_eth is None  # a's ETH quotes are unaffected
    qb = b.on_top(ctx, top(6_000_000, 6_000_001))
    assert qb is None  # b saw no fill: nothing to do
    assert all(q.qty == D("0.01") for q in qa_btc)


def test_first_quotes_is_pure_and_validated() -> None:
    strat, ctx = mm(levels=2, notional="12")
    t = top(6_183_763, 6_183_764)
    first = strat.first_quotes(t, {SYM: btcusdt()})
    assert len(first) == 4
    assert all(btcusdt().filter_failure(q.price, q.qty) is None for q in first)
    assert strat.first_quotes(t) == first  # same answer again: nothing was remembered
    assert step(strat, ctx, t, 0) == first  # and the live strategy still starts from scratch
    skewed = make_strategy("s", {"amount": "0.001", "max_position": "0.001"}, {SYM: btcusdt()})
    assert [q.side for q in skewed.first_quotes(t, positions={SYM: D("0.001")})] == [Side.SELL]
    assert [q.side for q in skewed.first_quotes(t, positions=ctx.positions)] == [Side.BUY, Side.SELL]


def test_order_shape_and_live_order_cap() -> None:
    maker, _ = mm(levels=3)
    assert maker.max_live_orders == 6
    assert (maker.order_type, maker.time_in_force) == (OrderType.LIMIT_MAKER, None)
    limit, _ = mm(post_only=False)
    assert (limit.order_type, limit.time_in_force) == (OrderType.LIMIT, TimeInForce.GTC)
    req = limit.order_request(SYM, Quote(Side.BUY, D("60000.00"), D("0.001"), 2))
    assert (req.order_type, req.time_in_force, req.strategy, req.tag) == (
        OrderType.LIMIT,
        TimeInForce.GTC,
        "mm",
        "L2",
    )
    assert parse_params({"amount": 1, "post_only": False, "time_in_force": "GTC"}).time_in_force == "GTC"


def test_first_quotes_explains_what_the_filters_refused(caplog: pytest.LogCaptureFixture) -> None:
    strat, _ = mm(notional="5", levels=2)  # floor to step lands under minNotional 5 on every level
    t = top(6_183_763, 6_183_764)
    quotes, rejected = strat.first_quotes_explained(t)
    assert quotes == []
    assert [(q.side, q.level, why) for q, why in rejected] == [
        (Side.BUY, 0, "NOTIONAL"),
        (Side.BUY, 1, "NOTIONAL"),
        (Side.SELL, 0, "NOTIONAL"),
        (Side.SELL, 1, "NOTIONAL"),
    ]
    assert all(q.qty * q.price < 5 for q, _ in rejected)
    with caplog.at_level("WARNING", logger="botcore.strategy.marketmaker"):
        assert strat.first_quotes(t) == []
    assert len(caplog.records) == 4 and "fails NOTIONAL" in caplog.records[0].getMessage()


def _state(strat: MarketMaker) -> list[tuple[Any, ...]]:
    return [
        tuple(getattr(st, name) if name != "paused_until" else dict(st.paused_until) for name in st.__slots__)
        for st in strat._states.values()
    ]


def test_rehearse_answers_what_a_requote_would_place_and_changes_nothing() -> None:
    """Along the recorded tops, with fills pausing a side: at every top ``rehearse`` returns the
    quotes ``on_top`` returns whenever it requotes, and the strategy's state is the same after it."""
    strat, ctx = mm(requote_tolerance_bps="0", min_requote_interval=0, levels=2, fill_delay=1)
    t0 = recorded_tops()[0][0]
    compared = 0
    for i, (recv_ns, t) in enumerate(recorded_tops()[:400]):
        ctx.now = recv_ns - t0
        ctx.tops[t.symbol] = t
        before = _state(strat)
        rehearsed = strat.rehearse(ctx, t)
        assert _state(strat) == before
        quotes = step(strat, ctx, t, recv_ns - t0)
        if quotes is not None:
            assert rehearsed == quotes
            compared += 1
        if i % 50 == 25 and ctx.orders:  # a fill now and then: paused sides, changed position
            strat.on_fill(ctx, fill(ctx.orders[0], ctx))
    assert compared > 20


def test_rehearse_has_nothing_to_say_on_an_untrusted_or_unusable_book() -> None:
    strat, ctx = mm()
    t = top(6_000_000, 6_000_001)
    ctx.untrusted.add("BTCUSDT")
    assert strat.rehearse(ctx, t) is None
    ctx.untrusted.clear()
    assert strat.rehearse(ctx, top(6_000_001, 6_000_000)) is None  # crossed
    assert strat.rehearse(ctx, top(6_000_000, 6_000_001, symbol="ETHUSDT")) is None  # not ours
    assert strat.rehearse(ctx, t)  # quotes for a usable book
