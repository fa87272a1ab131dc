"""The integer-tick fast path of ``compute_quotes`` gives exactly what the Decimal implementation
gave (same quotes, same decimal strings, same rejections), over random instruments, params, tops,
positions, paused/hung sides and live orders. ``reference_compute_quotes`` below is the Decimal
implementation as it was before the fast path, kept verbatim as the oracle.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from botcore_strategy_marketmaker.params import MarketMakerParams, Offset, ParamsError, parse_params
from botcore_strategy_marketmaker.strategy import MarketMaker, compute_quotes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mm_support import FakeCtx, FakeOrder, btcusdt, recorded_tops

from botcore.model import BookTop, Instrument, OrderStatus, Quote, Side, decimals_of

BPS = Decimal(10_000)
ZERO = Decimal(0)
ONE = Decimal(1)
_KEEPABLE = frozenset({"PENDING_NEW", "NEW", "PARTIALLY_FILLED"})


def _side(o: Any) -> Side:
    s = o.side
    return s if isinstance(s, Side) else Side(str(s))


def _status(o: Any) -> str:
    s = getattr(o, "status", None)
    return "NEW" if s is None else str(s)


def _remaining(o: Any) -> Decimal:
    rem = getattr(o, "remaining", None)
    if rem is not None:
        return Decimal(rem)
    return Decimal(o.qty) - Decimal(getattr(o, "cum_qty", ZERO))


def _ref_matches(q: Quote, o: Any) -> bool:
    return _side(o) is q.side and o.price == q.price and o.qty == q.qty and _status(o) in _KEEPABLE


# ------------------------------------------------------------------------------------------------
# Reference: the Decimal implementation before the integer-tick path (do not "fix" it)
# ------------------------------------------------------------------------------------------------


def _ref_level0(off: Offset, touch: Decimal, other: Decimal, tick: Decimal, side: Side) -> Decimal:
    """Unrounded level-0 price for one side; ``touch`` is our side's best, ``other`` the far one."""
    away = -side.sign  # bids move down, asks up, away from the touch
    if off.kind == "join":
        return touch
    if off.kind == "improve":
        inside = touch - away * tick
        return inside if (inside < other if side is Side.BUY else inside > other) else touch
    if off.kind == "ticks":
        return touch + away * off.value * tick
    return touch * (ONE + away * off.value / BPS)


def _ref_skew_shift_bps(p: MarketMakerParams, position: Decimal) -> Decimal:
    """Price shift in bps: long vs. target lowers both quotes (sell sooner, buy later), short raises."""
    shift = -(position - p.inventory_target) * p.skew_bps_per_unit
    if p.max_skew_bps is not None:
        shift = max(-p.max_skew_bps, min(p.max_skew_bps, shift))
    return shift


def reference_compute_quotes(
    p: MarketMakerParams,
    inst: Instrument,
    top: BookTop,
    position: Decimal = ZERO,
    live: Sequence[Any] = (),
    paused: Iterable[Side] = (),
    hang: Iterable[Side] = (),
    rejected: list[tuple[Quote, str]] | None = None,
) -> list[Quote]:
    """The quotes wanted for ``top``: level 0 first, bid before ask within a level.

    ``paused`` sides get no quotes (after-fill delay); ``hang`` sides keep their live orders
    exactly as they are. Returns [] when the book is crossed, locked or one-sided. Quotes an
    exchange filter would reject are left out; pass a list as ``rejected`` to learn which and why.
    """
    if not (top.bid_qty > 0 and top.ask_qty > 0 and top.bid_price > 0 and top.ask_price > top.bid_price):
        return []
    tick = inst.tick_size
    best_bid = inst.ticks_to_price(top.bid_price)
    best_ask = inst.ticks_to_price(top.ask_price)
    mid = (best_bid + best_ask) / 2

    bid0 = _ref_level0(p.bid_distance, best_bid, best_ask, tick, Side.BUY)
    ask0 = _ref_level0(p.ask_distance, best_ask, best_bid, tick, Side.SELL)
    if bid0 >= ask0:  # both sides improved into the same price (spread of 2 ticks): both join
        bid0, ask0 = best_bid, best_ask
    factor = ONE + _ref_skew_shift_bps(p, position) / BPS
    bid0 *= factor
    ask0 *= factor

    # Quantize to the filters' own decimals so quotes print like the venue prints them.
    price_exp = ONE.scaleb(-inst.price_precision)
    qty_exp = ONE.scaleb(-decimals_of(inst.step_size))
    paused_set = frozenset(paused)
    hang_set = frozenset(hang)
    band = p.price_band_bps
    deviation = position - p.inventory_target
    shrink = max(ZERO, ONE - abs(deviation) * p.skew_size_per_unit)

    out: dict[Side, list[Quote]] = {Side.BUY: [], Side.SELL: []}
    for side, start in ((Side.BUY, bid0), (Side.SELL, ask0)):
        if side in paused_set:
            continue
        if side in hang_set:
            out[side] = [
                Quote(side=side, price=o.price, qty=o.qty, level=int(getattr(o, "level", 0)))
                for o in live
                if _side(o) is side and _status(o) in _KEEPABLE
            ]
            continue
        away = -side.sign
        # The furthest price the band allows on this side (bids: mid - band, asks: mid + band).
        band_edge = mid * (ONE + away * band / BPS) if band is not None else None
        prev: Decimal | None = None
        for level in range(p.levels):
            if p.level_spacing.kind == "ticks":
                raw = start + away * level * p.level_spacing.value * tick
            else:
                raw = start * (ONE + away * level * p.level_spacing.value / BPS)
            price = inst.round_price(raw, side)
            # Never cross the book (a post-only order would be rejected, a plain one would take).
            price = min(price, best_ask - tick) if side is Side.BUY else max(price, best_bid + tick)
            if prev is not None:  # clamping or rounding may merge levels: keep them a tick apart
                price = min(price, prev - tick) if side is Side.BUY else max(price, prev + tick)
            prev = price
            if price <= 0:
                break
            if band_edge is not None and (price - band_edge) * away > 0:
                break  # beyond the band; outer levels are further still
            unit, size = p.level_size(level)
            qty = size if unit == "base" else size / price
            if deviation * side.sign > 0:  # this side would move the position further from target
                qty *= shrink
            qty = inst.round_qty(qty).quantize(qty_exp)
            quote = Quote(side=side, price=price.quantize(price_exp), qty=qty, level=level)
            failure = "LOT_SIZE" if qty <= 0 else inst.filter_failure(price, qty)
            if failure is not None:
                if rejected is not None:
                    rejected.append((quote, failure))
                continue
            out[side].append(quote)

    if p.max_position is not None:
        for side in (Side.BUY, Side.SELL):
            if side not in hang_set:
                out[side] = _ref_cap_position(out[side], side, position, p.max_position, live)

    quotes = out[Side.BUY] + out[Side.SELL]
    quotes.sort(key=lambda q: (q.level, q.side is Side.SELL))
    return quotes


def _ref_cap_position(
    quotes: list[Quote], side: Side, position: Decimal, max_position: Decimal, live: Sequence[Any]
) -> list[Quote]:
    """Keep levels (innermost first) while the position if every order on this side filled stays
    within +-max_position. Live orders count with their remaining qty, including those about to be
    cancelled: a cancel in flight can still fill.
    """
    same = [o for o in live if _side(o) is side]
    projected = position + side.sign * sum((_remaining(o) for o in same), ZERO)
    kept: list[Quote] = []
    for q in quotes:
        if any(_ref_matches(q, o) for o in same):
            kept.append(q)  # already counted as a live order
            continue
        projected += side.sign * q.qty
        if abs(projected) > max_position and projected * side.sign > 0:
            break
        kept.append(q)
    return kept


# ------------------------------------------------------------------------------------------------
# Generators
# ------------------------------------------------------------------------------------------------


def _dec(lo: str, hi: str, places: int) -> st.SearchStrategy[Decimal]:
    return st.decimals(Decimal(lo), Decimal(hi), places=places, allow_nan=False, allow_infinity=False)


@st.composite
def instruments(draw: st.DrawFn, on_grid: bool) -> Instrument:
    """Power-of-ten and odd ticks/steps; filters that are on the grid, off it (the Decimal
    fallback) or off (0)."""
    pp = draw(st.integers(0, 8))
    tick = Decimal(draw(st.sampled_from([1, 1, 1, 2, 5, 10, 25]))).scaleb(-pp)
    qd = draw(st.integers(0, 8))
    step = Decimal(draw(st.sampled_from([1, 1, 5, 10]))).scaleb(-qd)
    extra = 0 if on_grid else draw(st.integers(0, 2))  # decimals beyond the grid (Decimal fallback)

    def bound(hi: str) -> Decimal:
        return draw(st.one_of(st.just(ZERO), _dec("0", hi, pp + qd + extra)))

    if on_grid and draw(st.booleans()):  # lenient filters: most quotes pass, the rest fails NOTIONAL
        return Instrument("XYZUSDT", "XYZ", "USDT", tick, step, min_notional=bound("1"))
    return Instrument(
        symbol="XYZUSDT",
        base_asset="XYZ",
        quote_asset="USDT",
        tick_size=tick,
        step_size=step,
        min_qty=draw(st.one_of(st.just(ZERO), st.just(step), _dec("0", "2", qd + extra))),
        max_qty=draw(st.one_of(st.just(ZERO), _dec("0.5", "1000", qd + extra))),
        min_price=bound("50"),
        max_price=draw(st.one_of(st.just(ZERO), _dec("100", "100000", pp + extra))),
        min_notional=bound("20"),
        max_notional=draw(st.one_of(st.just(ZERO), _dec("10", "100000", pp + extra))),
        qty_precision=8,
    )


def offsets(modes: bool, ticks_only: bool) -> st.SearchStrategy[Any]:
    lo = 0 if modes else 1
    ticks = st.builds(lambda n: {"ticks": n}, st.integers(lo, 6))
    bps = st.builds(lambda x: {"bps": str(x)}, _dec("0.5" if not modes else "0", "40", 2))
    if ticks_only:
        return st.one_of(ticks, st.sampled_from(["join", "improve"])) if modes else ticks
    return st.one_of(ticks, st.sampled_from(["join", "improve"]), bps) if modes else st.one_of(ticks, bps)


@st.composite
def params(draw: st.DrawFn, ticks_only: bool) -> MarketMakerParams:
    levels = draw(st.integers(1, 4))
    p: dict[str, Any] = {
        "levels": levels,
        "bid_distance": draw(offsets(True, ticks_only)),
        "ask_distance": draw(offsets(True, ticks_only)),
        "level_spacing": draw(offsets(False, ticks_only)),
    }
    size = draw(st.sampled_from(["amount", "notional", "level_amounts"]))
    if size == "amount":
        p["amount"] = str(draw(_dec("0.00001", "3", 6)))
    elif size == "notional":
        p["notional"] = str(draw(_dec("0.5", "500", 3)))
    else:
        p["level_amounts"] = [str(draw(_dec("0.00001", "3", 6))) for _ in range(levels)]
    if size != "level_amounts" and draw(st.booleans()):
        p["level_multipliers"] = [str(draw(_dec("0.1", "4", 2))) for _ in range(levels)]
    if draw(st.booleans()):
        p["price_band_bps"] = str(draw(_dec("0.5", "60", 2)))
    if not ticks_only and draw(st.booleans()):  # a price skew: the Decimal path unless the shift is 0
        p["skew_bps_per_unit"] = str(draw(_dec("0", "20", 3)))
        if draw(st.booleans()):
            p["max_skew_bps"] = str(draw(_dec("0", "10", 2)))
    if draw(st.booleans()):
        p["skew_size_per_unit"] = str(draw(_dec("0", "2", 3)))
    if draw(st.booleans()):
        p["inventory_target"] = str(draw(_dec("-1", "1", 3)))
    if draw(st.booleans()):
        p["max_position"] = str(draw(_dec("0.001", "5", 3)))
    return parse_params(p)


@st.composite
def tops(draw: st.DrawFn, inst: Instrument, usable: bool) -> BookTop:
    tick_units = int(inst.tick_size.scaleb(inst.price_precision))
    on_grid = draw(st.booleans())
    bid = draw(st.integers(1, 10**9 // 10 ** max(0, 6 - inst.price_precision)))
    spread = draw(st.integers(1, 12) if usable else st.integers(-2, 12))  # <= 0: crossed or locked
    if on_grid:
        bid = max(1, bid // tick_units) * tick_units
        spread *= tick_units
    qty = 1000 if usable else draw(st.sampled_from([1000, 1, 0]))
    return BookTop(inst.symbol, bid, 1000, bid + spread, qty, 1)


@st.composite
def live_orders(draw: st.DrawFn, inst: Instrument, t: BookTop) -> list[FakeOrder]:
    out = []
    for _ in range(draw(st.integers(0, 4))):
        side = draw(st.sampled_from([Side.BUY, Side.SELL]))
        near = t.bid_price if side is Side.BUY else t.ask_price
        price = inst.ticks_to_price(max(1, near + draw(st.integers(-3, 3))))
        qty = draw(_dec("0.00001", "2", 5))
        out.append(
            FakeOrder(
                inst.symbol,
                "mm",
                side,
                price,
                qty,
                cum_qty=draw(st.sampled_from([ZERO, qty / 2])),
                status=draw(st.sampled_from(list(OrderStatus))),
                level=draw(st.integers(0, 3)),
            )
        )
    return out


@st.composite
def cases(draw: st.DrawFn) -> tuple[Any, ...]:
    fast = draw(st.booleans())  # half the cases built to take the integer path, half anything
    inst = draw(instruments(fast))
    t = draw(tops(inst, fast))
    p = draw(params(fast))
    position = draw(st.one_of(st.just(ZERO), _dec("-3", "3", 4)))
    sides = st.frozensets(st.sampled_from([Side.BUY, Side.SELL]), max_size=2)
    return p, inst, t, position, draw(live_orders(inst, t)), draw(sides), draw(sides)


def shape(quotes: Iterable[Quote]) -> list[tuple[Side, str, str, int]]:
    """Quotes with their exact decimal strings (Decimal == ignores trailing zeros; the wire does not)."""
    return [(q.side, str(q.price), str(q.qty), q.level) for q in quotes]


def same(
    p: MarketMakerParams,
    inst: Instrument,
    t: BookTop,
    position: Decimal,
    live: Sequence[Any],
    paused: frozenset[Side],
    hang: frozenset[Side],
) -> None:
    ref_rej: list[tuple[Quote, str]] = []
    new_rej: list[tuple[Quote, str]] = []
    ref = reference_compute_quotes(p, inst, t, position, live, paused, hang, ref_rej)
    new = compute_quotes(p, inst, t, position, live, paused, hang, new_rej)
    assert shape(new) == shape(ref)
    assert [(shape([q]), f) for q, f in new_rej] == [(shape([q]), f) for q, f in ref_rej]
    # twice without ``rejected``: the second call may come from the memo
    for _ in range(2):
        again = compute_quotes(p, inst, t, position, live, paused, hang)
        assert shape(again) == shape(ref)
    # uncached (the idle rehearsals' way): computed afresh, same answer
    assert shape(compute_quotes(p, inst, t, position, live, paused, hang, cached=False)) == shape(ref)


# ------------------------------------------------------------------------------------------------
# Tests
# ------------------------------------------------------------------------------------------------


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_fast_path_equals_decimal_reference(case: tuple[Any, ...]) -> None:
    same(*case)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 2999),
    st.one_of(st.just(ZERO), _dec("-0.05", "0.05", 5)),
    st.frozensets(st.sampled_from([Side.BUY, Side.SELL]), max_size=1),
)
def test_recorded_tops_equal_reference(i: int, position: Decimal, paused: frozenset[Side]) -> None:
    """The bench configuration (3 levels at the touch) and a skewed, banded, capped one on real tops."""
    inst = btcusdt()
    t = recorded_tops()[i][1]
    for p in (
        parse_params(
            {"amount": "0.001", "levels": 3, "bid_distance": {"ticks": 0}, "ask_distance": {"ticks": 0}}
        ),
        parse_params(
            {
                "notional": "20",
                "levels": 3,
                "bid_distance": "improve",
                "level_spacing": {"ticks": 2},
                "price_band_bps": "1",
                "skew_size_per_unit": "5",
                "max_position": "0.05",
            }
        ),
    ):
        same(p, inst, t, position, [], paused, frozenset())


def test_tick_path_is_taken_and_memo_returns_fresh_lists() -> None:
    """The bench setup takes the integer path (no Decimal rounding call) and callers may mutate
    the returned list without touching the memo."""
    inst = btcusdt()
    p = parse_params({"amount": "0.001", "levels": 3})
    t = recorded_tops()[0][1]
    first = compute_quotes(p, inst, t)
    first.clear()
    assert shape(compute_quotes(p, inst, t)) == shape(
        reference_compute_quotes(p, inst, t, ZERO, (), (), (), None)
    )
    assert len(compute_quotes(p, inst, t)) == 6


def test_uncached_computation_ignores_and_refreshes_the_memos() -> None:
    """``cached=False`` (idle rehearsals) computes afresh, and what it computes is memoised."""
    from botcore_strategy_marketmaker import strategy

    inst = btcusdt()
    p = parse_params({"amount": "0.001", "levels": 2})
    t = recorded_tops()[5][1]
    want = shape(reference_compute_quotes(p, inst, t, ZERO, (), (), (), None))
    grid = strategy._grid(p, inst)
    assert grid is not None
    compute_quotes(p, inst, t)
    key = (t.bid_price, t.ask_price, ZERO, frozenset())
    poison = ((), (), (), ZERO)
    grid.memo[key] = poison  # a stale entry: only a cached call can return it
    grid.quotes.clear()
    assert compute_quotes(p, inst, t) == []
    assert shape(compute_quotes(p, inst, t, cached=False)) == want
    assert grid.memo[key] is not poison and len(grid.quotes) == 4  # both memos refilled
    assert shape(compute_quotes(p, inst, t)) == want


def test_memo_keyed_by_position_and_paused_side() -> None:
    """Same top, different position or paused side: different quotes, each equal to the reference."""
    inst = btcusdt()
    p = parse_params({"amount": "1", "levels": 2, "skew_size_per_unit": "0.5"})
    t = recorded_tops()[0][1]
    seen = set()
    for position in (ZERO, Decimal("1"), Decimal("-1"), Decimal("1.000")):
        for paused in (frozenset(), frozenset({Side.BUY})):
            got = compute_quotes(p, inst, t, position, paused=paused)
            assert shape(got) == shape(reference_compute_quotes(p, inst, t, position, (), paused, (), None))
            seen.add(tuple(shape(got)))
    # 4 positions x 2 paused = 8 calls; 1.000 repeats 1, and with the bid paused -1 (only its bid
    # shrinks) repeats 0: 5 distinct answers, so a memo ignoring position or paused would show fewer
    assert len(seen) == 5


def test_on_top_requote_and_coverage_unchanged() -> None:
    """on_top through a fake venue: the coverage check (set-based now) still requotes a missing
    order and keeps quiet while every quote is live."""
    inst = btcusdt()
    mm = MarketMaker(
        "mm", parse_params({"amount": "0.001", "levels": 2, "min_requote_interval": 0}), {"BTCUSDT": inst}
    )
    ctx = FakeCtx({"BTCUSDT": inst})
    t = recorded_tops()[0][1]
    quotes = mm.on_top(ctx, t)
    assert quotes is not None and len(quotes) == 4
    ctx.orders = [FakeOrder("BTCUSDT", "mm", q.side, q.price, q.qty, level=q.level) for q in quotes]
    ctx.now += 1
    assert mm.on_top(ctx, t) is None
    # trailing zeros do not matter for matching (Decimal equality), as before
    ctx.orders[0].price = Decimal(str(ctx.orders[0].price) + "000")
    ctx.now += 1
    assert mm.on_top(ctx, t) is None
    ctx.orders[1].status = OrderStatus.PENDING_CANCEL
    ctx.now += 1
    assert mm.on_top(ctx, t) == quotes
    del ctx.orders[1]
    ctx.now += 1
    assert mm.on_top(ctx, t) == quotes


def test_params_error_still_raised_for_bad_offsets() -> None:
    try:
        parse_params({"amount": "1", "level_spacing": {"ticks": 0}})
    except ParamsError:
        return
    raise AssertionError("spacing 0 must be refused")


def test_notional_and_price_limits_at_the_boundary() -> None:
    """A quote exactly at min/max notional or min/max price passes, one tick beyond fails: the
    integer comparisons are strict where filter_failure's are."""
    base = btcusdt()
    t = recorded_tops()[0][1]
    p = parse_params({"amount": "0.001", "levels": 1})
    bid, ask = base.ticks_to_price(t.bid_price), base.ticks_to_price(t.ask_price)
    amount = Decimal("0.001")
    for lo, hi, want in (
        (dict(min_notional=bid * amount), dict(max_notional=ask * amount), ["BUY", "SELL"]),
        (dict(min_notional=bid * amount + Decimal("0.00001")), {}, ["SELL"]),
        ({}, dict(max_notional=ask * amount - Decimal("0.00001")), ["BUY"]),
        (dict(min_price=bid), dict(max_price=ask), ["BUY", "SELL"]),
        (dict(min_price=bid + base.tick_size), {}, ["SELL"]),
        ({}, dict(max_price=ask - base.tick_size), ["BUY"]),
    ):
        inst = Instrument("BTCUSDT", "BTC", "USDT", base.tick_size, base.step_size, **lo, **hi)
        rej: list[tuple[Quote, str]] = []
        got = compute_quotes(p, inst, t, rejected=rej)
        assert [str(q.side) for q in got] == want
        ref_rej: list[tuple[Quote, str]] = []
        assert shape(got) == shape(reference_compute_quotes(p, inst, t, ZERO, (), (), (), ref_rej))
        assert [f for _, f in rej] == [f for _, f in ref_rej]
