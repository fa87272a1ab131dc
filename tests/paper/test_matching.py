"""Rules A0-A10 of MATCHING.md, the optional queue models, feed fusion and consumption, on tiny books.

Each test builds its own ``Book`` from a hand-written snapshot; quantities are in BTC, prices in
USDT (BTCUSDT rules from the shipped exchangeInfo: tick 0.01, step 0.00001).
"""

from __future__ import annotations

import itertools
import json
import math
from decimal import Decimal
from typing import Any

import pytest
from botcore_exchange_paper.config import FillConfig, shipped_exchange_info
from botcore_exchange_paper.filters import SymbolSpec, to_units
from botcore_exchange_paper.matching import Book, Order
from botcore_exchange_paper.testing import diff, snapshot, ticker

with open(shipped_exchange_info(), encoding="utf-8") as _fh:
    SPEC = SymbolSpec(next(s for s in json.load(_fh)["symbols"] if s["symbol"] == "BTCUSDT"))
UNIT = 10**8
LOT = SPEC.lot_u
ACC_A, ACC_B = object(), object()
_ids = itertools.count(1)


def U(x: Any) -> int:
    """Price or quantity -> integer units (both have 8 decimals for BTCUSDT)."""
    u = to_units(str(Decimal(str(x))), 8)
    assert u is not None
    return u


def make_book(bids: list[tuple[Any, Any]], asks: list[tuple[Any, Any]], model: str = "power:3",
              partial: bool = True, show_own: bool = True) -> Book:
    book = Book(SPEC, FillConfig(queue_model=model).queue_family(), partial, show_own)
    book.apply_snapshot(snapshot(bids, asks, 100))
    book.end_batch()
    return book


def rest(book: Book, side: str, price: Any, qty: Any, account: object = ACC_A, stp: str = "NONE") -> Order:
    o = Order(account, "BTCUSDT", next(_ids), "c", side, "LIMIT", "GTC", U(price), U(qty), stp=stp)
    book.add_resting(o)
    return o


def taker(side: str, account: object = ACC_B, stp: str = "NONE", qty: Any = 0, price: Any = 0) -> Order:
    return Order(account, "BTCUSDT", next(_ids), "t", side, "LIMIT", "GTC", U(price), U(qty), stp=stp)


def d(U_: int, u: int, bids: list[tuple[Any, Any]] = (), asks: list[tuple[Any, Any]] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    return diff(U_, u, bids, asks)["data"]


def tk(u: int, b: Any, bq: Any, a: Any, aq: Any) -> dict[str, Any]:
    return ticker(u, b, bq, a, aq)["data"]


def filled(execs: list[Any]) -> list[int]:
    return [e.qty_u for e in execs if e.kind == "fill"]


# ----------------------------------------------------------------------------------------------
# A0: acceptance
# ----------------------------------------------------------------------------------------------


def test_a0_queue_ahead_is_the_recorded_quantity_at_acceptance() -> None:
    book = make_book([(100, 2), (99, 1)], [(101, 1)])
    o1 = rest(book, "BUY", 100, 1)
    o_new_level = rest(book, "BUY", "99.50", 1)
    assert o1.a == U(2)
    assert o_new_level.a == 0
    assert book.own_bids[U(100)] == [o1]


def test_a0_would_take_checks_the_served_opposite_best() -> None:
    book = make_book([(100, 2)], [(101, 1)])
    assert book.would_take(True, U(101))
    assert not book.would_take(True, U("100.99"))
    assert book.would_take(False, U(100))
    assert not book.would_take(False, U("100.01"))
    rest(book, "SELL", "100.50", 1, ACC_B)  # an own order inside the spread is part of the served book
    assert book.would_take(True, U("100.50"))


# ----------------------------------------------------------------------------------------------
# A1 / A8: prints at our price
# ----------------------------------------------------------------------------------------------

A1_CASES = [
    # (queue ahead, leaves, prints [qty], expected fills, expected final a)
    ("no fill while the print is inside the queue", 2, 1, ["1.5"], [], "0.5"),
    ("a print that exactly empties the queue fills nothing", 2, 1, ["1.5", "0.5"], [], "0"),
    ("overshoot fills the excess", 2, 1, ["2.5"], ["0.5"], "0"),
    ("overshoot is capped by leaves", 2, 1, ["5"], ["1"], "0"),
    ("#5017: later prints keep filling after the queue cleared", 2, 1, ["2", "0.3", "0.4"], ["0.3", "0.4"], "0"),
    ("overshoot rounds down to whole lots", 0, 1, ["0.000015"], ["0.00001"], "0"),
]


@pytest.mark.parametrize(("name", "ahead", "leaves", "prints", "fills", "final_a"), A1_CASES, ids=[c[0] for c in A1_CASES])
def test_a1_trade_at_our_price(name: str, ahead: Any, leaves: Any, prints: list[str], fills: list[str],
                               final_a: str) -> None:
    book = make_book([(100, ahead)] if ahead else [(99, 1)], [(101, 1)])
    o = rest(book, "BUY", 100, leaves)
    got: list[int] = []
    for q in prints:
        got += filled(book.on_trade(U(100), U(q), True))
    assert got == [U(f) for f in fills]
    assert o.a == pytest.approx(U(final_a))
    assert o.executed_u == sum(got)


def test_2549_prints_of_the_wrong_aggressor_side_never_fill_or_move_the_queue() -> None:
    book = make_book([(100, 1)], [(101, 1)])
    buy = rest(book, "BUY", 100, 1)
    sell = rest(book, "SELL", 101, 1)
    assert book.on_trade(U(100), U(5), False) == []  # a buyer aggressed at 100: not our seller-side flow
    assert book.on_trade(U(101), U(5), True) == []
    assert buy.a == U(1) and buy.executed_u == 0
    assert sell.a == U(1) and sell.executed_u == 0
    assert filled(book.on_trade(U(101), U(1.5), False)) == [U(0.5)]  # the right side does fill the SELL


def test_2564_one_print_is_one_budget_for_several_own_orders() -> None:
    book = make_book([(100, 1)], [(101, 1)])
    o1 = rest(book, "BUY", 100, 1)
    o2 = rest(book, "BUY", 100, 1, ACC_B)
    assert (o1.a, o2.a) == (U(1), U(1))
    # 1.5 traded: 1 was market ahead, 0.5 reaches o1, nothing is left for o2
    execs = book.on_trade(U(100), U(1.5), True)
    assert [(e.maker, e.qty_u) for e in execs] == [(o1, U(0.5))]
    # the next 2: 0.5 completes o1, then o2 gets 1 (no market between them)
    execs = book.on_trade(U(100), U(2), True)
    assert [(e.maker, e.qty_u) for e in execs] == [(o1, U(0.5)), (o2, U(1))]
    assert U(100) not in book.own_bids


def test_a8_market_quantity_between_own_orders_is_consumed_in_queue_order() -> None:
    book = make_book([(100, 1)], [(101, 1)])
    o1 = rest(book, "BUY", 100, 1)
    book.apply_diff(d(101, 101, [(100, 3)]))  # 2 more joined behind o1
    o2 = rest(book, "BUY", 100, 1)
    assert (o1.a, o2.a) == (U(1), U(3))
    execs = book.on_trade(U(100), U("3.5"), True)  # 1 ahead, o1 (1), then 1.5 of the 2 between them
    assert [(e.maker, e.qty_u) for e in execs] == [(o1, U(1))]
    assert o2.a == pytest.approx(U("0.5"))  # 2.5 of the 3 market ahead of o2 traded
    assert filled(book.on_trade(U(100), U(1), True)) == [U("0.5")]


def test_a8_a_partially_filled_order_blocks_the_ones_behind_it() -> None:
    book = make_book([(99, 1)], [(101, 1)])
    o1 = rest(book, "BUY", 100, 1)
    o2 = rest(book, "BUY", 100, 1)
    execs = book.on_trade(U(100), U(0.4), True)
    assert [(e.maker, e.qty_u) for e in execs] == [(o1, U(0.4))]
    assert o2.executed_u == 0


# ----------------------------------------------------------------------------------------------
# A2 / A3 / A4: trade-through, opposite side crossing, better price on our side
# ----------------------------------------------------------------------------------------------


def test_a2_trade_through_fills_everything_at_our_price() -> None:
    book = make_book([(100, 50)], [(101, 1)])
    o = rest(book, "BUY", 100, 1)
    execs = book.on_trade(U("99.99"), U(0.001), True)
    assert [(e.qty_u, e.price_u, e.rule) for e in execs] == [(U(1), U(100), "A2")]
    sell = rest(book, "SELL", 101, 2)
    assert book.on_trade(U("101.01"), U(0.001), True) == []  # seller-aggressor prints never fill SELLs
    assert [(e.qty_u, e.price_u) for e in book.on_trade(U("101.01"), U(0.001), False)] == [(U(2), U(101))]
    assert o.leaves == 0 and sell.leaves == 0


@pytest.mark.parametrize("via", ["diff", "ticker"])
def test_a3_opposite_best_reaching_our_price_fills_as_maker(via: str) -> None:
    book = make_book([(99, 1)], [(101, 1)])
    o = rest(book, "BUY", 100, 1)
    if via == "diff":
        execs = book.apply_diff(d(101, 101, asks=[(100, 3)]))
    else:
        execs = book.apply_ticker(tk(101, 99, 1, "99.99", 3))
    assert [(e.maker, e.qty_u, e.price_u, e.rule) for e in execs] == [(o, U(1), U(100), "A3")]


def test_a4_a_better_bid_does_not_move_our_queue() -> None:
    book = make_book([(100, 2)], [(101, 1)])
    o = rest(book, "BUY", 100, 1)
    book.apply_diff(d(101, 101, [("100.50", 5)]))
    assert o.a == U(2)


# ----------------------------------------------------------------------------------------------
# A5 and the optional models
# ----------------------------------------------------------------------------------------------


def _prob(model: str, a: float, b: float) -> float:
    family, _, arg = model.partition(":")
    n = float(arg or 3)
    if family == "power":
        return b**n / (b**n + a**n)
    if family == "power2":
        return b**n / (a + b) ** n
    if family == "power3":
        return 1 - (a / (a + b)) ** n
    if family == "log":
        return math.log1p(b) / (math.log1p(b) + math.log1p(a))
    if family == "log2":
        return math.log1p(b) / math.log1p(a + b)
    raise AssertionError(model)


@pytest.mark.parametrize("model", ["power:3", "power:2", "power2:3", "power3:3", "log", "log2"])
def test_a5_non_trade_decrease_credits_the_share_ahead_of_us(model: str) -> None:
    book = make_book([(100, 4)], [(101, 1)], model=model)
    o = rest(book, "BUY", 100, 1)  # a = 4
    book.apply_diff(d(101, 101, [(100, 10)]))  # 6 joined behind: a stays 4
    assert o.a == U(4)
    book.apply_diff(d(102, 102, [(100, 7)]))  # 3 cancelled somewhere
    a, b, dq = 4.0, 6.0, 3.0
    p = _prob(model, a, b)
    expected = min(a - (1 - p) * dq + min(b - p * dq, 0.0), 7.0)
    assert o.a == pytest.approx(expected * UNIT)
    assert o.executed_u == 0


def test_a5_default_power3_value() -> None:
    book = make_book([(100, 4)], [(101, 1)])
    o = rest(book, "BUY", 100, 1)
    book.apply_diff(d(101, 101, [(100, 10)]))
    book.apply_diff(d(102, 102, [(100, 7)]))
    # p = 6^3/(6^3+4^3) = 216/280; a = 4 - (64/280)*3
    assert o.a == pytest.approx((4 - 64 / 280 * 3) * UNIT)


def test_a5_risk_averse_gives_no_cancellation_credit() -> None:
    book = make_book([(100, 4)], [(101, 1)], model="risk_averse")
    o = rest(book, "BUY", 100, 1)
    book.apply_diff(d(101, 101, [(100, 10)]))
    book.apply_diff(d(102, 102, [(100, 7)]))
    assert o.a == U(4)
    book.apply_diff(d(103, 103, [(100, 3)]))
    assert o.a == U(3)  # only capped by the level


def test_a5_trade_then_depth_is_not_counted_twice() -> None:
    book = make_book([(100, 10)], [(101, 1)])
    o = rest(book, "BUY", 100, 1)
    book.on_trade(U(100), U(2), True)
    assert o.a == U(8) and o.c == U(2)
    book.apply_diff(d(101, 101, [(100, 8)]))  # the decrease the trade caused
    assert o.a == U(8) and o.c == 0


def test_a5_additions_only_cap_and_a_depth_change_alone_never_fills() -> None:
    book = make_book([(100, 2)], [(101, 1)])
    o = rest(book, "BUY", 100, 1)
    assert book.apply_diff(d(101, 101, [(100, 9)])) == []
    assert o.a == U(2)
    assert book.apply_diff(d(102, 102, [(100, "0.1")])) == []
    assert o.a == pytest.approx(U("0.1"))
    assert o.executed_u == 0


def test_a6_level_gone_puts_us_at_the_head_and_the_served_book_shows_us_alone() -> None:
    book = make_book([(100, 2), (99, 1)], [(101, 1)])
    o = rest(book, "BUY", 100, 1)
    book.apply_diff(d(101, 101, [(100, 0)]))
    assert o.a == 0 and o.is_open
    assert book.served_levels(True, 2) == [(U(100), U(1)), (U(99), U(1))]
    assert filled(book.on_trade(U(100), U(0.3), True)) == [U(0.3)]


def test_a10_resnapshot_caps_the_queue_and_4370_a_partial_delete_does_not_zero_it() -> None:
    book = make_book([(100, 4)], [(101, 1)])
    o = rest(book, "BUY", 100, 1)
    book.apply_diff(d(101, 101, [(100, 10)]))
    book.apply_snapshot(snapshot([(100, 6)], [(101, 1)], 200))
    assert o.a == U(4)  # capped at 6, not reset
    book.apply_snapshot(snapshot([(100, 3)], [(101, 1)], 300))
    assert o.a == U(3)
    book.apply_diff(d(301, 301, [(100, 2)]))  # someone's order at our price was deleted
    assert 0 < o.a <= U(2)


def test_partial_false_fills_whole_order_once_half_a_lot_passed() -> None:
    book = make_book([(99, 1)], [(101, 1)], partial=False)
    o = rest(book, "BUY", 100, 1)
    half = LOT // 2
    assert book.on_trade(U(100), half - 1, True) == []
    assert filled(book.on_trade(U(100), half, True)) == [U(1)]
    assert o.leaves == 0


@pytest.mark.parametrize("model", ["cross_only", "touch"])
def test_queue_free_models_fill_only_through_or_on_cross(model: str) -> None:
    book = make_book([(99, 1)], [(101, 1)], model=model)
    o = rest(book, "BUY", 100, 1)
    assert book.on_trade(U(100), U(50), True) == []  # a print at our price never fills
    assert o.executed_u == 0
    assert filled(book.on_trade(U("99.99"), U(0.001), True)) == [U(1)]
    o2 = rest(book, "BUY", 100, 1)
    assert filled(book.apply_ticker(tk(101, 99, 1, 100, 1))) == [U(1)]
    assert o2.leaves == 0


# ----------------------------------------------------------------------------------------------
# the recording itself: sync rules, fusion, crossing
# ----------------------------------------------------------------------------------------------


def test_diffs_before_the_snapshot_are_buffered_and_old_ones_dropped() -> None:
    book = Book(SPEC)
    book.apply_diff(d(90, 95, [(100, 5)]))  # u <= lastUpdateId: dropped at sync
    book.apply_diff(d(96, 102, [(99, 7)]))  # straddles lastUpdateId + 1: applied
    assert not book.bids
    book.apply_snapshot(snapshot([(100, 1)], [(101, 1)], 100))
    assert book.bids == {U(100): U(1), U(99): U(7)}
    assert book.last_u == 102
    assert book.apply_diff(d(101, 102, [(98, 1)])) == [] and U(98) not in book.bids  # stale
    assert book.dropped_diffs >= 1
    book.apply_diff(d(110, 111, [(98, 1)]))
    assert book.gaps == 1 and book.bids[U(98)] == U(1)  # a gap is applied best effort and counted


def test_ticker_fused_only_when_newer_and_older_diffs_do_not_regress_the_top() -> None:
    book = make_book([(100, 1), (99, 1)], [(101, 1), (102, 1)])
    book.apply_ticker(tk(100, 100, 5, 101, 1))  # u <= last depth u: stale
    assert book.bids[U(100)] == U(1) and book.stale_tickers == 1
    book.apply_ticker(tk(105, 99, 2, 102, 3))  # newer: 100 and 101 are gone
    assert book.best_bid() == U(99) and book.bids[U(99)] == U(2)
    assert book.best_ask() == U(102) and book.asks[U(102)] == U(3)
    # a diff older than that ticker must not resurrect the top it already superseded...
    book.apply_diff(d(101, 103, [(100, 1), (98, 4)], [(101, 1)]))
    assert book.best_bid() == U(99) and book.best_ask() == U(102)
    assert book.bids[U(98)] == U(4)  # ...but deeper levels are applied
    # a diff at or after the ticker wins everywhere
    book.apply_diff(d(104, 106, [(100, 1)], [(101, 2)]))
    assert book.best_bid() == U(100) and book.best_ask() == U(101)


def test_crossed_after_conflation_the_latest_update_wins() -> None:
    book = make_book([(100, 1)], [(101, 1), (102, 1)])
    book.apply_diff(d(101, 101, [(101, 2)]))  # new bid at the old best ask
    assert book.best_bid() == U(101) and book.best_ask() == U(102)
    assert U(101) not in book.asks


# ----------------------------------------------------------------------------------------------
# taker walks, consumption, served book and ids
# ----------------------------------------------------------------------------------------------


def test_taker_walks_levels_and_consumes_until_the_recording_refreshes() -> None:
    book = make_book([(100, 1)], [(101, 1), (102, 1), (103, 1)])
    t = taker("BUY", qty="1.5")
    plan = book.plan_take(t, U(102), U("1.5"), None)
    assert [(s[0], s[1], s[2]) for s in plan.steps] == [("mkt", U(101), U(1)), ("mkt", U(102), U("0.5"))]
    assert plan.cost_u == SPEC.quote_floor(U(101), U(1)) + SPEC.quote_floor(U(102), U("0.5"))
    book.execute_take(t, plan)
    assert book.served_levels(False, 2) == [(U(102), U("0.5")), (U(103), U(1))]
    assert book.avail_best_ask() == U(102) and book.best_ask() == U(101)
    # the same displayed liquidity cannot be taken twice (hummingbot #4877, nautilus #2564)
    again = book.plan_take(taker("BUY"), U(101), U(1), None)
    assert again.filled_u == 0
    book.apply_diff(d(101, 101, asks=[(101, "0.7")]))  # fresh data wins
    assert book.served_levels(False, 1) == [(U(101), U("0.7"))]


def test_taker_meets_own_resting_orders_behind_their_market_queue() -> None:
    book = make_book([(100, 1)], [(101, 1)])
    maker = rest(book, "SELL", 101, 1, ACC_A)
    assert maker.a == U(1)
    t = taker("BUY", ACC_B)
    plan = book.plan_take(t, U(101), U("1.5"), None)
    assert [(s[0], s[2] if s[0] == "mkt" else s[3]) for s in plan.steps] == [("mkt", U(1)), ("own", U("0.5"))]
    book.execute_take(t, plan)
    assert maker.executed_u == U("0.5") and maker.a == 0


@pytest.mark.parametrize(
    ("mode", "maker_prev", "taker_prev", "taker_stops"),
    [("EXPIRE_MAKER", 1, 0, False), ("EXPIRE_TAKER", 0, 2, True), ("EXPIRE_BOTH", 1, 2, True),
     ("DECREMENT", 1, 1, False)],
)
def test_stp_modes_in_the_walk(mode: str, maker_prev: Any, taker_prev: Any, taker_stops: bool) -> None:
    book = make_book([(100, 1)], [(102, 5)])
    own = rest(book, "SELL", 101, 1, ACC_A)
    t = taker("BUY", ACC_A, stp=mode)
    plan = book.plan_take(t, U(102), U(2), None)
    stp = [s for s in plan.steps if s[0] == "stp"]
    assert [(s[2], s[3], s[4], s[5]) for s in stp] == [(own, mode, U(taker_prev), U(maker_prev))]
    assert plan.taker_stp == taker_stops
    if not taker_stops:
        assert plan.filled_u == U(2) - U(taker_prev)


def test_stp_none_trades_with_itself() -> None:
    book = make_book([(100, 1)], [(102, 5)])
    own = rest(book, "SELL", 101, 1, ACC_A)
    plan = book.plan_take(taker("BUY", ACC_A, stp="NONE"), U(102), U(2), None)
    assert [s[0] for s in plan.steps] == ["own", "mkt"] and plan.steps[0][2] is own


def test_quote_sized_walk_spends_at_most_the_quote() -> None:
    book = make_book([(100, 1)], [(101, 1), (102, 10)])
    plan = book.plan_take(taker("BUY"), None, None, U(200))
    assert plan.cost_u <= U(200)
    assert plan.filled_u == U(1) + SPEC.qty_for_quote(U(102), U(200) - SPEC.quote_floor(U(101), U(1)))


def test_served_ids_are_one_counter_and_diffs_are_contiguous() -> None:
    book = make_book([(100, 1)], [(101, 1)])
    book.track = True
    book.take_diff()  # what the venue does when the first listener arrives
    start = book.uid
    book.apply_diff(d(101, 101, [(100, 2)]))
    book.end_batch()
    book.apply_ticker(tk(102, 100, 3, 101, 1))
    book.end_batch()
    first = book.take_diff()
    assert first is not None
    assert (first[0], first[1]) == (start + 1, start + 2)
    assert first[2] == [["100.00000000", "3.00000000"]]
    rest(book, "BUY", "100.50", 1)
    book.end_batch()
    second = book.take_diff()
    assert second is not None and second[0] == first[1] + 1 == second[1]
    assert second[2] == [["100.50000000", "1.00000000"]]
    assert book.take_diff() is None
    assert book.served_top() == (U("100.50"), U(1), U(101), U(1))


def test_show_own_false_serves_the_recorded_book_only() -> None:
    book = make_book([(100, 1)], [(101, 1)], show_own=False)
    rest(book, "BUY", "100.50", 1)
    assert book.served_top() == (U(100), U(1), U(101), U(1))
    assert book.served_levels(True, 5) == [(U(100), U(1))]
