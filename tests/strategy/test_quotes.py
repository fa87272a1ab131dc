"""Where the market maker quotes: ``compute_quotes`` table-driven over recorded BTCUSDT tops.

Expected prices come from an independent integer/Fraction model of each rule (BTCUSDT's tick is
its price unit, so BookTop ticks are tick counts), checked on every recorded top.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from botcore_strategy_marketmaker.params import parse_params
from botcore_strategy_marketmaker.strategy import compute_quotes
from mm_support import FakeOrder, btcusdt, recorded_tops, top

from botcore.model import BookTop, OrderStatus, Quote, Side

INST = btcusdt()
D = Decimal


def ticks(price: Decimal) -> int:
    return INST.price_to_ticks(price)


def sides(quotes: list[Quote]) -> tuple[list[Quote], list[Quote]]:
    return [q for q in quotes if q.side is Side.BUY], [q for q in quotes if q.side is Side.SELL]


def params(**kw: Any) -> Any:
    kw.setdefault("amount", "0.001")
    return parse_params(kw)


def expected_level0(spec: Any, b: int, a: int, side: Side) -> int:
    """Independent model of one side's level-0 price in ticks (before skew)."""
    if spec in ("join", {"ticks": 0}):
        return b if side is Side.BUY else a
    if spec == "improve":
        if side is Side.BUY:
            return b + 1 if b + 1 < a else b
        return a - 1 if a - 1 > b else a
    if "ticks" in spec:
        return b - spec["ticks"] if side is Side.BUY else a + spec["ticks"]
    x = Fraction(str(spec["bps"])) / 10_000
    if side is Side.BUY:
        return min(math.floor(b * (1 - x)), a - 1)
    return max(math.ceil(a * (1 + x)), b + 1)


def test_recording_has_wide_spreads_too() -> None:
    """The table below must exercise improve/bps on wide spreads, not only 1-tick ones."""
    spreads = [t.spread for _, t in recorded_tops()]
    assert len(spreads) == 3000
    assert sum(1 for s in spreads if s == 1) > 2000
    assert sum(1 for s in spreads if s >= 3) > 100


DISTANCES = [
    ("join", "join"),
    ({"ticks": 0}, {"ticks": 0}),
    ({"ticks": 3}, {"ticks": 7}),
    ({"bps": 5}, {"bps": "2.5"}),
    ({"bps": "0.1"}, "join"),
    ("improve", "join"),
    ("join", "improve"),
]


@pytest.mark.parametrize(("bid_d", "ask_d"), DISTANCES)
def test_distances_on_recorded_tops(bid_d: Any, ask_d: Any) -> None:
    p = params(bid_distance=bid_d, ask_distance=ask_d)
    for _, t in recorded_tops():
        quotes = compute_quotes(p, INST, t)
        bids, asks = sides(quotes)
        assert len(bids) == 1 and len(asks) == 1, t
        b, a = ticks(bids[0].price), ticks(asks[0].price)
        assert b == expected_level0(bid_d, t.bid_price, t.ask_price, Side.BUY), t
        assert a == expected_level0(ask_d, t.bid_price, t.ask_price, Side.SELL), t
        assert b < t.ask_price and a > t.bid_price and b < a
        for q in quotes:
            assert q.qty == D("0.001")
            assert INST.filter_failure(q.price, q.qty) is None


@pytest.mark.parametrize(
    ("spread", "bid_d", "ask_d", "want"),
    [
        # spread in ticks, modes, (bid offset from best bid, ask offset from best ask) in ticks
        (1, "improve", "improve", (0, 0)),  # no room: join
        (2, "improve", "improve", (0, 0)),  # both would meet at the middle tick: both join
        (2, "improve", "join", (1, 0)),
        (2, "join", "improve", (0, -1)),
        (3, "improve", "improve", (1, -1)),
        (40, "improve", "improve", (1, -1)),
    ],
)
def test_improve_needs_room(spread: int, bid_d: str, ask_d: str, want: tuple[int, int]) -> None:
    b = 6_000_000
    quotes = compute_quotes(params(bid_distance=bid_d, ask_distance=ask_d), INST, top(b, b + spread))
    bids, asks = sides(quotes)
    assert (ticks(bids[0].price) - b, ticks(asks[0].price) - (b + spread)) == want


@pytest.mark.parametrize(
    ("t", "why"),
    [
        (top(6_000_000, 6_000_000), "locked"),
        (top(6_000_001, 6_000_000), "crossed"),
        (top(0, 6_000_000), "no bid"),
        (BookTop("BTCUSDT", 6_000_000, 0, 6_000_001, 5, 1), "empty bid size"),
        (BookTop("BTCUSDT", 6_000_000, 5, 6_000_001, 0, 1), "empty ask size"),
    ],
)
def test_unusable_book_gives_no_quotes(t: BookTop, why: str) -> None:
    assert compute_quotes(params(), INST, t) == [], why


@pytest.mark.parametrize(
    ("spacing", "levels"),
    [({"ticks": 1}, 3), ({"ticks": 5}, 4), ({"bps": 1}, 3), ({"bps": "0.5"}, 5)],
)
def test_levels_on_recorded_tops(spacing: dict[str, Any], levels: int) -> None:
    p = params(levels=levels, level_spacing=spacing, bid_distance={"ticks": 1}, ask_distance={"ticks": 1})
    for _, t in recorded_tops()[::10]:
        bids, asks = sides(compute_quotes(p, INST, t))
        assert [q.level for q in bids] == list(range(levels))
        assert [q.level for q in asks] == list(range(levels))
        bid0, ask0 = t.bid_price - 1, t.ask_price + 1
        prev_b, prev_a = None, None
        for i, (qb, qa) in enumerate(zip(bids, asks, strict=True)):
            if "ticks" in spacing:
                eb, ea = bid0 - i * spacing["ticks"], ask0 + i * spacing["ticks"]
            else:
                x = Fraction(str(spacing["bps"])) * i / 10_000
                eb, ea = math.floor(bid0 * (1 - x)), math.ceil(ask0 * (1 + x))
                if prev_b is not None:  # rounding may merge levels: they stay one tick apart
                    eb, ea = min(eb, prev_b - 1), max(ea, prev_a + 1)
            assert (ticks(qb.price), ticks(qa.price)) == (eb, ea), (t, i)
            prev_b, prev_a = eb, ea


def test_level_sizes() -> None:
    t = top(6_000_000, 6_000_001)
    mult = compute_quotes(params(levels=3, level_multipliers=["1", "1.5", "2"]), INST, t)
    assert [q.qty for q in mult if q.side is Side.BUY] == [D("0.001"), D("0.0015"), D("0.002")]
    amounts = compute_quotes(parse_params({"levels": 2, "level_amounts": ["0.0003", "0.00077"]}), INST, t)
    assert [q.qty for q in amounts if q.side is Side.SELL] == [D("0.0003"), D("0.00077")]


@pytest.mark.parametrize("notional", ["10", "25.5", "100"])
def test_notional_sizing_rounds_down_to_step(notional: str) -> None:
    p = parse_params({"notional": notional})
    for _, t in recorded_tops()[::50]:
        for q in compute_quotes(p, INST, t):
            exact = Fraction(notional) / Fraction(str(q.price))
            assert Fraction(str(q.qty)) == Fraction(math.floor(exact / Fraction("0.00001"))) * Fraction(
                "0.00001"
            )
            assert q.qty * q.price <= D(notional)


def test_quotes_failing_filters_are_dropped() -> None:
    t = top(6_000_000, 6_000_001)  # 60000.00
    # 0.00008 BTC * 60000 = 4.8 USDT < min notional 5: NOTIONAL filter.
    assert compute_quotes(params(amount="0.00008"), INST, t) == []
    # 0.00009 * 60000 = 5.4: passes.
    assert len(compute_quotes(params(amount="0.00009"), INST, t)) == 2
    # Sized by notional 5 the floor to step lands just under 5: dropped, never rounded up.
    assert compute_quotes(parse_params({"notional": "5"}), INST, top(6_183_763, 6_183_764)) == []
    # Qty below the step rounds to zero: dropped.
    assert compute_quotes(params(amount="0.000001"), INST, t) == []


@pytest.mark.parametrize(
    ("position", "skew", "cap"),
    [
        ("0.01", "100", None),
        ("-0.02", "100", None),
        ("0.5", "100", "3"),
        ("-0.5", "40", "2"),
        ("0", "100", None),
    ],
)
def test_skew_shifts_both_sides(position: str, skew: str, cap: str | None) -> None:
    kw: dict[str, Any] = {
        "skew_bps_per_unit": skew,
        "bid_distance": {"ticks": 20},
        "ask_distance": {"ticks": 20},
    }
    if cap is not None:
        kw["max_skew_bps"] = cap
    p = params(**kw)
    shift = -Fraction(position) * Fraction(skew)
    if cap is not None:
        shift = max(-Fraction(cap), min(Fraction(cap), shift))
    for _, t in recorded_tops()[::25]:
        bids, asks = sides(compute_quotes(p, INST, t, position=D(position)))
        f = 1 + shift / 10_000
        eb = min(math.floor((t.bid_price - 20) * f), t.ask_price - 1)
        ea = max(math.ceil((t.ask_price + 20) * f), t.bid_price + 1)
        assert (ticks(bids[0].price), ticks(asks[0].price)) == (eb, ea), t


def test_skew_never_crosses_the_book() -> None:
    """A huge long skew drags the ask down to one tick above the best bid, never below."""
    p = params(skew_bps_per_unit="10000", levels=3)
    for _, t in recorded_tops()[::100]:
        bids, asks = sides(compute_quotes(p, INST, t, position=D("1")))
        assert [ticks(q.price) for q in asks] == [t.bid_price + 1, t.bid_price + 2, t.bid_price + 3]
        assert all(ticks(q.price) < t.bid_price for q in bids)


@pytest.mark.parametrize(
    ("position", "bid_qty", "ask_qty"),
    [
        ("0", "0.01", "0.01"),
        ("2", "0.006", "0.01"),  # long by 2 vs target 0: bids (adding) shrink by 2 * 0.2
        ("-1", "0.01", "0.008"),  # short: asks shrink
        ("5", None, "0.01"),  # shrink floors at zero: the bid disappears
    ],
)
def test_size_skew_reduces_the_side_that_adds_exposure(
    position: str, bid_qty: str | None, ask_qty: str
) -> None:
    p = params(amount="0.01", skew_size_per_unit="0.2")
    bids, asks = sides(compute_quotes(p, INST, top(6_000_000, 6_000_001), position=D(position)))
    assert [q.qty for q in bids] == ([D(bid_qty)] if bid_qty else [])
    assert [q.qty for q in asks] == [D(ask_qty)]


def test_size_skew_is_relative_to_the_inventory_target() -> None:
    p = params(amount="0.01", skew_size_per_unit="0.2", inventory_target="1")
    bids, asks = sides(compute_quotes(p, INST, top(6_000_000, 6_000_001), position=D("1")))
    assert bids[0].qty == asks[0].qty == D("0.01")
    bids, asks = sides(compute_quotes(p, INST, top(6_000_000, 6_000_001), position=D("0")))
    assert (bids[0].qty, asks[0].qty) == (D("0.01"), D("0.008"))


@pytest.mark.parametrize(
    ("position", "n_bids", "n_asks"),
    [
        ("0", 3, 3),
        ("0.007", 3, 3),  # 0.007 + 3 * 0.001 = 0.010: exactly at the limit is allowed
        ("0.00701", 2, 3),  # one step more: the outer bid would breach
        ("0.009", 1, 3),
        ("0.01", 0, 3),
        ("0.02", 0, 3),  # already over: only the reducing side quotes
        ("-0.007", 3, 3),
        ("-0.00701", 3, 2),
        ("-0.01", 3, 0),
    ],
)
def test_max_position_caps_each_side(position: str, n_bids: int, n_asks: int) -> None:
    p = params(levels=3, max_position="0.01")
    bids, asks = sides(compute_quotes(p, INST, top(6_000_000, 6_000_001), position=D(position)))
    assert (len(bids), len(asks)) == (n_bids, n_asks)
    assert [q.level for q in bids] == list(range(n_bids))


def test_max_position_counts_open_orders_remaining() -> None:
    p = params(levels=2, max_position="0.01")
    t = top(6_000_000, 6_000_001)
    # A stale bid elsewhere (about to be cancelled, could still fill) with 0.0075 remaining.
    stale = FakeOrder("BTCUSDT", "mm", Side.BUY, D("59990"), D("0.01"), cum_qty=D("0.0025"))
    bids, _ = sides(compute_quotes(p, INST, t, position=D("0.0005"), live=[stale]))
    assert len(bids) == 2  # 0.0005 + 0.0075 + 2 * 0.001 = 0.010: exactly at the limit
    bids, _ = sides(compute_quotes(p, INST, t, position=D("0.0006"), live=[stale]))
    assert len(bids) == 1  # 0.0006 + 0.0075 + 0.001 = 0.0091 fits; a second 0.001 would not
    # A live order that matches a desired quote is kept, so it is counted once, not twice.
    same = FakeOrder("BTCUSDT", "mm", Side.BUY, D("60000.00"), D("0.001"))
    bids, _ = sides(compute_quotes(p, INST, t, position=D("0.008"), live=[same]))
    assert len(bids) == 2  # 0.008 + 0.001 (live, kept) + 0.001 (level 1) = 0.010
    # A cancelled order does not count once it is gone; a pending-cancel one still does.
    pending = FakeOrder(
        "BTCUSDT", "mm", Side.BUY, D("60000.00"), D("0.001"), status=OrderStatus.PENDING_CANCEL
    )
    bids, _ = sides(compute_quotes(p, INST, t, position=D("0.008"), live=[pending]))
    assert len(bids) == 1


@pytest.mark.parametrize(
    ("band", "distance", "levels", "n_per_side"),
    [
        ("10", {"ticks": 0}, 1, 1),
        ("1", {"bps": "0.9"}, 1, 1),
        ("1", {"bps": "1.2"}, 1, 0),
        ("2", {"ticks": 0}, 5, 5),
    ],
)
def test_price_band_drops_quotes_beyond_it(band: str, distance: Any, levels: int, n_per_side: int) -> None:
    p = params(
        price_band_bps=band,
        bid_distance=distance,
        ask_distance=distance,
        levels=levels,
        level_spacing={"ticks": 1},
    )
    for _, t in recorded_tops()[::20]:
        if t.spread > 2:
            continue
        bids, asks = sides(compute_quotes(p, INST, t))
        assert (len(bids), len(asks)) == (n_per_side, n_per_side)


def test_price_band_boundary_is_inclusive() -> None:
    # mid exactly 60000.00, so 1 bp is exactly 6.00: the band is [59994.00, 60006.00]
    t = top(5_999_999, 6_000_001)
    at = params(price_band_bps="1", bid_distance={"ticks": 599}, ask_distance={"ticks": 599})
    bids, asks = sides(compute_quotes(at, INST, t))
    assert (ticks(bids[0].price), ticks(asks[0].price)) == (5_999_400, 6_000_600)
    beyond = params(price_band_bps="1", bid_distance={"ticks": 600}, ask_distance={"ticks": 600})
    assert compute_quotes(beyond, INST, t) == []
    # Levels stop at the band.
    lv = params(price_band_bps="1", bid_distance={"ticks": 597}, ask_distance={"ticks": 597}, levels=4)
    bids, asks = sides(compute_quotes(lv, INST, t))
    assert [ticks(q.price) for q in bids] == [5_999_402, 5_999_401, 5_999_400]
    assert [ticks(q.price) for q in asks] == [6_000_598, 6_000_599, 6_000_600]


def test_paused_and_hung_sides() -> None:
    t = top(6_000_000, 6_000_001)
    p = params(levels=2, fill_delay=1, hang_other_side=True)
    old_ask = FakeOrder("BTCUSDT", "mm", Side.SELL, D("60010.00"), D("0.003"), level=0)
    quotes = compute_quotes(p, INST, t, live=[old_ask], paused=[Side.BUY], hang=[Side.SELL])
    assert quotes == [Quote(Side.SELL, D("60010.00"), D("0.003"), 0)]
    quotes = compute_quotes(p, INST, t, live=[old_ask], paused=[Side.BUY])
    assert [q.side for q in quotes] == [Side.SELL, Side.SELL]
    assert quotes[0].price == D("60000.01")


def test_quotes_are_ordered_level_first_bid_first() -> None:
    quotes = compute_quotes(params(levels=3), INST, top(6_000_000, 6_000_001))
    assert [(q.level, q.side) for q in quotes] == [
        (lvl, side) for lvl in range(3) for side in (Side.BUY, Side.SELL)
    ]
