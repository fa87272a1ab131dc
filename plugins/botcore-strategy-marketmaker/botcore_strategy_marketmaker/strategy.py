"""The top-of-book market maker: where to quote (a pure function) and when to requote (per-symbol state).

``compute_quotes`` turns one top of book, the position and the live orders into the quotes the
strategy wants; it has no state, so ``botcore check`` can print the first quotes without trading
and tests can table-drive it. ``MarketMaker`` adds the *when*: it returns None (keep the live
orders) while the mid stays within ``requote_tolerance_bps`` and ``min_requote_interval`` has not
passed, and it remembers fills (after-fill pause), aged orders and orders the venue never took.
Each instance keeps its state in its own ``_SymbolState`` objects: instances share nothing but
the module's caches of values derived from immutable inputs (``_GRIDS``: per (params, instrument)
integer constants, memoized sides and Quote objects), which cannot change any answer.

Speed: ``compute_quotes`` runs on every requote, inside the tick-to-order latency. Tick offsets
and spacing without a price skew (the common configuration) run in integer price units and only
build Decimals for the final quotes; ``tests/strategy/test_fastpath.py`` proves the result equal
to the Decimal implementation, which remains the path for bps offsets/spacing and skew.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from botcore.contracts import PositionView, StrategyContext
from botcore.model import (
    BookTop,
    ExecutionReport,
    Fill,
    Instrument,
    OrderRequest,
    OrderType,
    Quote,
    Side,
    TimeInForce,
    decimals_of,
)

from botcore_strategy_marketmaker.params import MarketMakerParams, Offset, ParamsError, parse_params

log = logging.getLogger("botcore.strategy.marketmaker")

BPS = Decimal(10_000)
ZERO = Decimal(0)
ONE = Decimal(1)

_KEEPABLE = frozenset({"PENDING_NEW", "NEW", "PARTIALLY_FILLED"})
"""Live-order statuses a quote diff may keep (not being cancelled, not in doubt)."""
_AGEABLE = frozenset({"NEW", "PARTIALLY_FILLED"})
"""Statuses whose age is judged (a PENDING_CANCEL order is already on its way out)."""


# ------------------------------------------------------------------------------------------------
# Live-order accessors: the engine's tracked orders (``botcore.orders.TrackedOrder``) expose side,
# price, qty (original), cum_qty/remaining, status, level and created_ns. Read them defensively so
# a leaner live-order object (e.g. in ``botcore check``) still works.
# ------------------------------------------------------------------------------------------------


def _side(o: Any) -> Side:
    s = o.side
    return s if isinstance(s, Side) else Side(str(s))


def _status(o: Any) -> str:
    s = getattr(o, "status", None)
    return "NEW" if s is None else str(s)


def _remaining(o: Any) -> Decimal:
    rem = getattr(o, "remaining", None)
    if rem is not None:
        return rem if rem.__class__ is Decimal else Decimal(rem)
    return Decimal(o.qty) - Decimal(getattr(o, "cum_qty", ZERO))


def _matches(q: Quote, o: Any) -> bool:
    """The engine keeps a live order for a quote with the same side, price and (original) qty."""
    return _side(o) is q.side and o.price == q.price and o.qty == q.qty and _status(o) in _KEEPABLE


def _live_keys(live: Iterable[Any]) -> set[tuple[Side, Any, Any]]:
    """(side, price, qty) of the keepable orders: ``_matches(q, o)`` for some o <=> q's key is in it
    (Decimal hashes by value like ``==`` compares), in one pass instead of quotes x orders."""
    keys: set[tuple[Side, Any, Any]] = set()
    for o in live:
        status = getattr(o, "status", None)
        if status is None or str(status) in _KEEPABLE:
            side = o.side
            keys.add((side if isinstance(side, Side) else Side(str(side)), o.price, o.qty))
    return keys


def position_of(positions: PositionView | Mapping[str, Decimal] | None, symbol: str) -> Decimal:
    """Position from a ``PositionView``, a plain ``{symbol: qty}`` mapping, or 0 if None."""
    if positions is None:
        return ZERO
    position = getattr(positions, "position", None)
    if position is None:  # a plain mapping (a PositionView answers ``position``)
        return Decimal(positions.get(symbol, ZERO))
    pos = position(symbol)
    return pos if pos.__class__ is Decimal else Decimal(pos)


def book_usable(top: BookTop) -> bool:
    """Both sides present and the spread positive (not crossed, not locked)."""
    return top.bid_qty > 0 and top.ask_qty > 0 and top.bid_price > 0 and top.ask_price > top.bid_price


# ------------------------------------------------------------------------------------------------
# Where to quote: pure
# ------------------------------------------------------------------------------------------------


def _level0(off: Offset, touch: Decimal, other: Decimal, tick: Decimal, side: Side) -> Decimal:
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


def skew_shift_bps(p: MarketMakerParams, position: Decimal) -> Decimal:
    """Price shift in bps: long vs. target lowers both quotes (sell sooner, buy later), short raises."""
    shift = -(position - p.inventory_target) * p.skew_bps_per_unit
    if p.max_skew_bps is not None:
        shift = max(-p.max_skew_bps, min(p.max_skew_bps, shift))
    return shift


def compute_quotes(
    p: MarketMakerParams,
    inst: Instrument,
    top: BookTop,
    position: Decimal = ZERO,
    live: Sequence[Any] = (),
    paused: Iterable[Side] = (),
    hang: Iterable[Side] = (),
    rejected: list[tuple[Quote, str]] | None = None,
    cached: bool = True,
) -> list[Quote]:
    """The quotes wanted for ``top``: level 0 first, bid before ask within a level.

    ``paused`` sides get no quotes (after-fill delay); ``hang`` sides keep their live orders
    exactly as they are. Returns [] when the book is crossed, locked or one-sided. Quotes an
    exchange filter would reject are left out; pass a list as ``rejected`` to learn which and why.

    Tick-based offsets without a skew shift take an integer-tick path (every Decimal step of the
    general path is exact there, so the result is identical); anything else takes the Decimal path.
    ``cached=False`` computes the tick path as if nothing were memoised (and memoises the result):
    the idle rehearsals use it, so that a requote on a top never seen before runs warm.
    """
    if not book_usable(top):
        return []
    grid = _grid(p, inst)
    if grid is not None and (grid.skew_free or skew_shift_bps(p, position) == 0):
        return _compute_quotes_ticks(grid, p, inst, top, position, live, paused, hang, rejected, cached)
    return _compute_quotes_decimal(p, inst, top, position, live, paused, hang, rejected)


class _Grid:
    """Per (params, instrument) integer constants of the tick path, computed once.

    Prices are in units of ``10**-pp`` (the BookTop's ticks); ``tick`` is the tick size in those
    units. ``qty`` holds, per level, the base-unit size already rounded and quantized as the
    Decimal path would (None for notional sizes, which depend on the price), and ``qty_fail`` the
    filter it fails on its own (LOT_SIZE) or None.
    """

    __slots__ = (
        "memo",
        "quotes",
        "qty_exp",
        "pp",
        "price_unit",
        "tick",
        "min_price",
        "max_price",
        "qty",
        "qty_units",
        "qty_fail",
        "min_notional",
        "max_notional",
        "bid_off",
        "ask_off",
        "spacing",
        "offsets",
        "all_fixed",
        "skew_free",
        "plain",
    )

    def __init__(self, p: MarketMakerParams, inst: Instrument) -> None:
        pp = inst.price_precision
        self.pp = pp
        self.price_unit = ONE.scaleb(-pp)  # Decimal(units) * price_unit == Decimal(units).scaleb(-pp), cheaper
        self.tick = int(inst.tick_size.scaleb(pp))
        self.min_price = int(inst.min_price.scaleb(pp))
        self.max_price = int(inst.max_price.scaleb(pp))
        qd = decimals_of(inst.step_size)
        qty_exp = self.qty_exp = ONE.scaleb(-qd)
        self.memo: dict[tuple[int, int, Decimal, frozenset[Side]], tuple[Sequence[Quote], ...]] = {}
        self.quotes: dict[tuple[int, int, int], tuple[Quote, str | None]] = {}
        self.qty: list[Decimal | None] = []
        self.qty_units: list[int] = []
        self.qty_fail: list[str | None] = []
        for level in range(p.levels):
            unit, size = p.level_size(level)
            if unit != "base":
                self.qty.append(None)
                self.qty_units.append(0)
                self.qty_fail.append(None)
                continue
            qty = inst.round_qty(size).quantize(qty_exp)
            self.qty.append(qty)
            self.qty_units.append(int(qty.scaleb(qd)))
            self.qty_fail.append("LOT_SIZE" if qty <= 0 else inst.filter_failure(None, qty))
        # Notional limits in price-unit * qty-unit scale (exactness checked by _grid).
        self.min_notional = int(inst.min_notional.scaleb(pp + qd))
        self.max_notional = int(inst.max_notional.scaleb(pp + qd))
        self.bid_off = p.bid_distance.kind, int(p.bid_distance.value)
        self.ask_off = p.ask_distance.kind, int(p.ask_distance.value)
        self.spacing = int(p.level_spacing.value)
        # Per level: distance from level 0 in price units; every level of a fixed base size.
        self.offsets = tuple(level * self.spacing * self.tick for level in range(p.levels))
        self.all_fixed = all(q is not None for q in self.qty)
        self.skew_free = p.skew_bps_per_unit == 0  # never a price skew
        # Fixed sizes never resized (no size skew), no price band: ``_sides_fixed`` applies whatever
        # the position, unless a side is hung.
        self.plain = self.all_fixed and p.skew_size_per_unit == 0 and p.price_band_bps is None


_GRIDS: dict[tuple[int, int], tuple[MarketMakerParams, Instrument, _Grid | None]] = {}


def _is_int(d: Decimal) -> bool:
    return d.is_finite() and d == d.to_integral_value()


def _grid(p: MarketMakerParams, inst: Instrument) -> _Grid | None:
    """The tick-path constants for (p, inst), or None when the tick path does not apply."""
    key = (id(p), id(inst))
    hit = _GRIDS.get(key)
    if hit is not None and hit[0] is p and hit[1] is inst:
        return hit[2]
    grid: _Grid | None = None
    if (
        p.bid_distance.kind != "bps"
        and p.ask_distance.kind != "bps"
        and p.level_spacing.kind == "ticks"
        and inst.tick_size > 0
        and inst.step_size > 0
    ):
        pp = inst.price_precision
        qd = decimals_of(inst.step_size)
        if all(_is_int(v.scaleb(pp)) for v in (inst.tick_size, inst.min_price, inst.max_price)) and all(
            _is_int(v.scaleb(pp + qd)) for v in (inst.min_notional, inst.max_notional)
        ):
            grid = _Grid(p, inst)
    if len(_GRIDS) > 64:  # params/instruments are few and long-lived; bound it anyway
        _GRIDS.clear()
    _GRIDS[key] = (p, inst, grid)  # holding p and inst keeps their ids from being reused
    return grid


def _level0_ticks(off: tuple[str, int], touch: int, other: int, tick: int, away: int) -> int:
    """``_level0`` in integer price units."""
    kind, value = off
    if kind == "join":
        return touch
    if kind == "improve":
        inside = touch - away * tick
        return inside if (inside < other if away < 0 else inside > other) else touch
    return touch + away * value * tick


def _compute_quotes_ticks(
    g: _Grid,
    p: MarketMakerParams,
    inst: Instrument,
    top: BookTop,
    position: Decimal,
    live: Sequence[Any],
    paused: Iterable[Side],
    hang: Iterable[Side],
    rejected: list[tuple[Quote, str]] | None,
    cached: bool = True,
) -> list[Quote]:
    """``_compute_quotes_decimal`` in integer price units (see ``compute_quotes``).

    Without hung sides the quotes depend only on (bid, ask, position, paused): the mid oscillates
    over a few ticks, so they are memoized per grid (Quotes are immutable; the list is fresh).
    The position cap cannot cut anything while even the worst case stays inside the limit (every
    live order and every quote of the larger side filling the same way): then it is skipped.
    """
    paused_set = frozenset(paused) if paused else _NO_SIDES
    hang_set = frozenset(hang) if hang else _NO_SIDES
    if hang_set or rejected is not None:
        buys, sells = _sides_ticks(g, p, inst, top, position, live, paused_set, hang_set, rejected)
    else:
        key = (top.bid_price, top.ask_price, position, paused_set)
        hit = g.memo.get(key) if cached else None
        if hit is None:
            if len(g.memo) >= _MEMO_SIZE:
                g.memo.clear()
            buys, sells = _sides_ticks(g, p, inst, top, position, live, paused_set, hang_set, None, cached)
            hit = g.memo[key] = (buys, sells, _interleave(buys, sells), max(_total_qty(buys), _total_qty(sells)))
        max_position = p.max_position
        if max_position is None:
            return list(hit[2])
        bound = abs(position) + hit[3]
        for o in live:
            bound += abs(_remaining(o))
        if bound <= max_position:
            return list(hit[2])
        buys, sells = hit[0], hit[1]
    if p.max_position is not None:
        if _BUY not in hang_set:
            buys = _cap_position(list(buys), _BUY, position, p.max_position, live)
        if _SELL not in hang_set:
            sells = _cap_position(list(sells), _SELL, position, p.max_position, live)
    if hang_set:  # a hung side holds the live orders as they come: sort
        quotes = [*buys, *sells]
        quotes.sort(key=_quote_order)
        return quotes
    return list(_interleave(buys, sells))  # computed sides (and capped prefixes) are level-ordered


_MEMO_SIZE = 4096
_NO_SIDES: frozenset[Side] = frozenset()
_BUY = Side.BUY
_SELL = Side.SELL
_Sides = tuple[tuple[Quote, ...], tuple[Quote, ...]]


def _sides_ticks(
    g: _Grid,
    p: MarketMakerParams,
    inst: Instrument,
    top: BookTop,
    position: Decimal,
    live: Sequence[Any],
    paused_set: frozenset[Side],
    hang_set: frozenset[Side],
    rejected: list[tuple[Quote, str]] | None,
    cached: bool = True,
) -> _Sides:
    """(bids, asks) before the position cap, innermost level first; ``cached=False`` ignores the
    per-price quote cache (see ``compute_quotes``)."""
    tick = g.tick
    best_bid = top.bid_price
    best_ask = top.ask_price
    bid0 = _level0_ticks(g.bid_off, best_bid, best_ask, tick, -1)
    ask0 = _level0_ticks(g.ask_off, best_ask, best_bid, tick, 1)
    if bid0 >= ask0:
        bid0, ask0 = best_bid, best_ask
    if g.plain and not hang_set:  # no Decimal step below would change anything
        return _sides_fixed(g, bid0, ask0, best_bid, best_ask, paused_set, rejected, cached)

    band = p.price_band_bps
    deviation = position - p.inventory_target
    shrink = max(ZERO, ONE - abs(deviation) * p.skew_size_per_unit) if deviation else ONE
    # A shrink factor of exactly 1 leaves every size as it is (rounded and quantized the same).
    resized = shrink != ONE
    if band is None and not resized and not hang_set and g.all_fixed:
        return _sides_fixed(g, bid0, ask0, best_bid, best_ask, paused_set, rejected, cached)
    pp = g.pp
    spacing = g.spacing * tick
    cache = g.quotes
    fixed_qty = g.qty

    out: list[tuple[Quote, ...]] = []
    for side, start, away in ((_BUY, bid0, -1), (_SELL, ask0, 1)):
        if side in paused_set:
            out.append(())
            continue
        if side in hang_set:
            out.append(
                tuple(
                    Quote(side=side, price=o.price, qty=o.qty, level=int(getattr(o, "level", 0)))
                    for o in live
                    if _side(o) is side and _status(o) in _KEEPABLE
                )
            )
            continue
        band_edge = (
            inst.ticks_to_price(best_bid + best_ask) / 2 * (ONE + away * band / BPS)
            if band is not None
            else None
        )
        shrinks = resized and deviation * away < 0  # this side would move the position further from target
        quotes: list[Quote] = []
        prev: int | None = None
        for level in range(p.levels):
            raw = start + away * level * spacing
            if away < 0:  # bids: floor to the tick, never cross, keep a tick below the previous level
                price = (raw // tick) * tick
                price = min(price, best_ask - tick)
                if prev is not None:
                    price = min(price, prev - tick)
            else:  # asks: ceiling
                price = -((-raw) // tick) * tick
                price = max(price, best_bid + tick)
                if prev is not None:
                    price = max(price, prev + tick)
            prev = price
            if price <= 0:
                break
            if band_edge is not None and (Decimal(price).scaleb(-pp) - band_edge) * away > 0:
                break
            qty = fixed_qty[level]
            if qty is not None and not shrinks:
                # A fixed size: the quote and its filter verdict depend on (price, level, side) only.
                key = (price, level, away)
                hit = cache.get(key) if cached else None
                if hit is None:
                    if len(cache) >= _MEMO_SIZE:
                        cache.clear()
                    hit = cache[key] = _fixed_quote(g, side, price, level, qty)
                quote, failure = hit
            else:  # size from a notional or shrunk by inventory: the Decimal steps, as before
                price_dec = Decimal(price).scaleb(-pp)
                unit, size = p.level_size(level)
                dq = size if unit == "base" else size / price_dec
                if shrinks:
                    dq *= shrink
                dq = inst.round_qty(dq).quantize(g.qty_exp)
                quote = Quote(side, price_dec, dq, level)
                failure = "LOT_SIZE" if dq <= 0 else inst.filter_failure(price_dec, dq)
            if failure is not None:
                if rejected is not None:
                    rejected.append((quote, failure))
                continue
            quotes.append(quote)
        out.append(tuple(quotes))
    return out[0], out[1]


def _sides_fixed(
    g: _Grid,
    bid0: int,
    ask0: int,
    best_bid: int,
    best_ask: int,
    paused_set: frozenset[Side],
    rejected: list[tuple[Quote, str]] | None,
    cached: bool = True,
) -> _Sides:
    """``_sides_ticks`` for the common configuration (fixed base sizes at every level, no price
    band, no size shrink, no hung side): the same prices, clamps and filter verdicts, with the
    per-level quotes taken from the grid's cache; fewer steps on the requote path."""
    tick = g.tick
    cache = g.quotes
    qtys = g.qty
    offsets = g.offsets
    out: list[tuple[Quote, ...]] = []
    for side, start, away, limit in ((_BUY, bid0, -1, best_ask - tick), (_SELL, ask0, 1, best_bid + tick)):
        if side in paused_set:
            out.append(())
            continue
        quotes: list[Quote] = []
        prev = 0
        for level, off in enumerate(offsets):
            if away < 0:  # bids: floor to the tick, never cross, keep a tick below the previous level
                price = ((start - off) // tick) * tick
                if price > limit:
                    price = limit
                if level and price > prev - tick:
                    price = prev - tick
            else:  # asks: ceiling
                price = -((-(start + off)) // tick) * tick
                if price < limit:
                    price = limit
                if level and price < prev + tick:
                    price = prev + tick
            prev = price
            if price <= 0:
                break
            key = (price, level, away)
            hit = cache.get(key) if cached else None
            if hit is None:
                if len(cache) >= _MEMO_SIZE:
                    cache.clear()
                hit = cache[key] = _fixed_quote(g, side, price, level, qtys[level])  # type: ignore[arg-type]
            if hit[1] is not None:
                if rejected is not None:
                    rejected.append(hit)  # type: ignore[arg-type]
                continue
            quotes.append(hit[0])
        out.append(tuple(quotes))
    return out[0], out[1]


def _fixed_quote(g: _Grid, side: Side, price: int, level: int, qty: Decimal) -> tuple[Quote, str | None]:
    """A fixed-size quote at ``price`` (integer units) and the filter it fails, in
    ``filter_failure``'s order: qty <= 0, price filters, qty filters, notional."""
    failure = g.qty_fail[level]
    units = g.qty_units[level]
    if units <= 0:
        pass
    elif g.min_price and price < g.min_price or g.max_price and price > g.max_price or price % g.tick:
        failure = "PRICE_FILTER"
    elif failure is None:
        notional = price * units
        if g.min_notional and notional < g.min_notional or g.max_notional and notional > g.max_notional:
            failure = "NOTIONAL"
    return Quote(side, Decimal(price) * g.price_unit, qty, level), failure


def _total_qty(quotes: Sequence[Quote]) -> Decimal:
    total = ZERO
    for q in quotes:  # a loop, not sum() over a generator: no generator object on the requote path
        total += q.qty
    return total


def _interleave(buys: Sequence[Quote], sells: Sequence[Quote]) -> tuple[Quote, ...]:
    """Quote order (level, then bid before ask) for two sides each in strictly increasing level
    order, as computed sides are: a merge, cheaper than sorting with a key function."""
    out: list[Quote] = []
    i = j = 0
    nb, ns = len(buys), len(sells)
    while i < nb and j < ns:
        if buys[i].level <= sells[j].level:
            out.append(buys[i])
            i += 1
        else:
            out.append(sells[j])
            j += 1
    out += buys[i:]
    out += sells[j:]
    return tuple(out)


def _quote_order(q: Quote) -> tuple[int, bool]:
    return q.level, q.side is Side.SELL


def _compute_quotes_decimal(
    p: MarketMakerParams,
    inst: Instrument,
    top: BookTop,
    position: Decimal,
    live: Sequence[Any],
    paused: Iterable[Side],
    hang: Iterable[Side],
    rejected: list[tuple[Quote, str]] | None,
) -> list[Quote]:
    """The general path of ``compute_quotes`` (bps offsets or spacing, skew): Decimal throughout."""
    tick = inst.tick_size
    best_bid = inst.ticks_to_price(top.bid_price)
    best_ask = inst.ticks_to_price(top.ask_price)
    mid = (best_bid + best_ask) / 2

    bid0 = _level0(p.bid_distance, best_bid, best_ask, tick, Side.BUY)
    ask0 = _level0(p.ask_distance, best_ask, best_bid, tick, Side.SELL)
    if bid0 >= ask0:  # both sides improved into the same price (spread of 2 ticks): both join
        bid0, ask0 = best_bid, best_ask
    factor = ONE + skew_shift_bps(p, position) / BPS
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
                out[side] = _cap_position(out[side], side, position, p.max_position, live)

    quotes = out[Side.BUY] + out[Side.SELL]
    quotes.sort(key=lambda q: (q.level, q.side is Side.SELL))
    return quotes


def _cap_position(
    quotes: list[Quote], side: Side, position: Decimal, max_position: Decimal, live: Sequence[Any]
) -> list[Quote]:
    """Keep levels (innermost first) while the position if every order on this side filled stays
    within +-max_position. Live orders count with their remaining qty, including those about to be
    cancelled: a cancel in flight can still fill.
    """
    sign = 1 if side is _BUY else -1
    open_qty = ZERO
    keys: set[tuple[Any, Any]] = set()  # (price, qty) of the keepable orders: ``_matches`` by hash
    for o in live:
        s = o.side
        if (s if s.__class__ is Side else Side(str(s))) is side:
            open_qty += _remaining(o)
            if _status(o) in _KEEPABLE:
                keys.add((o.price, o.qty))
    projected = position + sign * open_qty
    kept: list[Quote] = []
    for q in quotes:
        if keys and q.side is side and (q.price, q.qty) in keys:
            kept.append(q)  # already counted as a live order
            continue
        projected += sign * q.qty
        if abs(projected) > max_position and projected * sign > 0:
            break
        kept.append(q)
    return kept


# ------------------------------------------------------------------------------------------------
# When to quote: per-symbol state
# ------------------------------------------------------------------------------------------------


class _SymbolState:
    """What one instance remembers about one symbol (engine thread only)."""

    __slots__ = (
        "last_quotes",
        "ref_mid2",
        "last_change_ns",
        "paused_until",
        "fill_pending",
        "refresh_pending",
        "last_live_count",
        "replaced_vanished",
    )

    def __init__(self) -> None:
        self.last_quotes: tuple[Quote, ...] | None = None  # None: nothing decided since (re)start
        self.ref_mid2 = 0
        self.last_change_ns = 0
        self.paused_until: dict[Side, int] = {}
        self.fill_pending = False
        self.refresh_pending = False
        self.last_live_count = 0
        self.replaced_vanished = False  # the last decision put back an order that had vanished

    def reset(self) -> None:
        """After a cancel-all: the next usable top quotes afresh (after-fill pauses still hold)."""
        self.last_quotes = None
        self.fill_pending = False
        self.refresh_pending = False


class MarketMaker:
    """Quote ``levels`` orders per side around the fused top of book of each of ``symbols``."""

    def __init__(self, name: str, params: MarketMakerParams, instruments: Mapping[str, Instrument]) -> None:
        self.name = name
        self.params = params
        self.symbols: tuple[str, ...] = params.selected_symbols(instruments)
        self.instruments: dict[str, Instrument] = {s: instruments[s] for s in self.symbols}
        self.max_live_orders = 2 * params.levels
        self.order_type = OrderType.LIMIT_MAKER if params.post_only else OrderType.LIMIT
        self.time_in_force: TimeInForce | None = None if params.post_only else TimeInForce.GTC
        self._states = {s: _SymbolState() for s in self.symbols}
        self._tolerance = params.requote_tolerance_bps.as_integer_ratio()  # bps as num / den

    def __repr__(self) -> str:
        return f"MarketMaker({self.name!r}, symbols={list(self.symbols)})"

    # --- Strategy protocol ---------------------------------------------------------------------
    def on_top(self, ctx: StrategyContext, top: BookTop) -> list[Quote] | None:
        st = self._states.get(top.symbol)
        if st is None:
            return None
        inst = self.instruments[top.symbol]
        if not ctx.is_trusted(top.symbol) or not book_usable(top) or inst.status != "TRADING":
            st.reset()
            return []
        p = self.params
        now = ctx.now_ns()
        live = ctx.live_orders(top.symbol, self.name)
        if live.__class__ is not tuple:
            live = list(live)

        pause_over = False
        if st.paused_until:
            for side, until in list(st.paused_until.items()):
                if until <= now:
                    del st.paused_until[side]
                    pause_over = True
        # A live order vanished (cancelled by the venue, expired, rejected): put it back at once,
        # but only once per ``min_requote_interval``. A replacement that vanishes again (a post-only
        # rejection, a ban refusing every order) waits for the gate instead of retrying each tick.
        count_dropped = len(live) < st.last_live_count and not st.replaced_vanished
        st.last_live_count = len(live)

        aged: list[Any] = []
        if st.last_quotes is None or st.fill_pending or st.refresh_pending or pause_over:
            pass  # decide now: nothing live to protect from churn, or a fill/pause changed the picture
        else:
            open_gate = now - st.last_change_ns >= p.min_requote_interval
            if p.max_order_age is not None and open_gate:
                aged = [
                    o
                    for o in live
                    if _status(o) in _AGEABLE and now - getattr(o, "created_ns", now) > p.max_order_age
                ]
            # short-circuit: the coverage walk is only needed when nothing else triggers a requote
            if not (
                (open_gate and self._moved(st, top))
                or aged
                or ((open_gate or count_dropped) and not self._covered(st.last_quotes, live))
            ):
                return None
            st.replaced_vanished = not open_gate

        quotes = self._wanted(ctx, top, inst, live, tuple(st.paused_until))
        if aged:  # leave aged orders out once (the engine cancels them); put them back next time
            aged_keys = _live_keys(aged)
            quotes = [q for q in quotes if (q.side, q.price, q.qty) not in aged_keys]
        st.refresh_pending = bool(aged)
        if st.last_quotes is None or st.fill_pending or pause_over:
            st.replaced_vanished = False
        st.last_quotes = tuple(quotes)
        st.ref_mid2 = top.bid_price + top.ask_price  # BookTop.mid2, without the property call
        st.last_change_ns = now
        st.fill_pending = False
        return quotes

    def rehearse(self, ctx: StrategyContext, top: BookTop) -> list[Quote] | None:
        """The quotes a requote on ``top`` would want now, for the engine's idle rehearsals
        (``contracts.RehearsingStrategy``): ``on_top``'s computation without its state changes."""
        st = self._states.get(top.symbol)
        if st is None:
            return None
        inst = self.instruments[top.symbol]
        if not ctx.is_trusted(top.symbol) or not book_usable(top) or inst.status != "TRADING":
            return None
        live = ctx.live_orders(top.symbol, self.name)
        if live.__class__ is not tuple:
            live = list(live)
        now = ctx.now_ns()
        paused = tuple(side for side, until in st.paused_until.items() if until > now)  # as on_top sees them
        # Uncached: the next requote comes with a new top, which misses the memos; keep that path warm.
        return self._wanted(ctx, top, inst, live, paused, cached=False)

    def _wanted(
        self,
        ctx: StrategyContext,
        top: BookTop,
        inst: Instrument,
        live: Sequence[Any],
        paused: tuple[Side, ...],
        cached: bool = True,
    ) -> list[Quote]:
        """The quotes for ``top`` with ``paused`` sides left out (and the other side hung if configured)."""
        hang = tuple(s.opposite for s in paused) if self.params.hang_other_side else ()
        return compute_quotes(
            self.params,
            inst,
            top,
            position_of(ctx.positions, top.symbol),
            live,
            paused=paused,
            hang=hang,
            cached=cached,
        )

    def on_fill(self, ctx: StrategyContext, fill: Fill) -> None:
        """Requote at the next top (the position changed); pause the filled side if configured."""
        st = self._states.get(fill.symbol)
        if st is None:
            return
        st.fill_pending = True
        if self.params.fill_delay > 0:
            until = ctx.now_ns() + self.params.fill_delay
            st.paused_until[fill.side] = max(until, st.paused_until.get(fill.side, 0))

    def on_order_update(self, ctx: StrategyContext, report: ExecutionReport) -> None:
        """Nothing to do: a vanished order shows up as a missing quote at the next top."""

    # --- helpers for the host ------------------------------------------------------------------
    def first_quotes(
        self,
        top: BookTop,
        instruments: Mapping[str, Instrument] | None = None,
        positions: PositionView | Mapping[str, Decimal] | None = None,
    ) -> list[Quote]:
        """The quotes this strategy would place first for ``top`` (no state read or written).

        For ``botcore check CONFIG``: every returned quote already passes the instrument's
        filters (quotes that would fail are dropped, so an empty side means "cannot quote").
        """
        quotes, rejected = self.first_quotes_explained(top, instruments, positions)
        for q, failure in rejected:
            log.warning(
                "%s: %s %s L%d %s@%s left out: fails %s",
                self.name,
                top.symbol,
                q.side,
                q.level,
                q.qty,
                q.price,
                failure,
            )
        return quotes

    def first_quotes_explained(
        self,
        top: BookTop,
        instruments: Mapping[str, Instrument] | None = None,
        positions: PositionView | Mapping[str, Decimal] | None = None,
    ) -> tuple[list[Quote], list[tuple[Quote, str]]]:
        """``first_quotes`` plus the quotes left out and the exchange filter each would fail."""
        inst = (instruments or self.instruments).get(top.symbol) or self.instruments.get(top.symbol)
        if inst is None:
            raise ParamsError(f"{self.name}: no instrument for {top.symbol}")
        rejected: list[tuple[Quote, str]] = []
        quotes = compute_quotes(self.params, inst, top, position_of(positions, top.symbol), rejected=rejected)
        return quotes, rejected

    def order_request(self, symbol: str, quote: Quote) -> OrderRequest:
        """The order for ``quote``: LIMIT_MAKER (post-only) or LIMIT GTC, tagged with the level."""
        return OrderRequest(
            symbol=symbol,
            side=quote.side,
            qty=quote.qty,
            price=quote.price,
            order_type=self.order_type,
            time_in_force=self.time_in_force,
            strategy=self.name,
            tag=f"L{quote.level}",
        )

    # --- internals -----------------------------------------------------------------------------
    def _moved(self, st: _SymbolState, top: BookTop) -> bool:
        """The mid moved more than ``requote_tolerance_bps`` from the mid of the last decision."""
        ref = st.ref_mid2
        if ref <= 0:
            return True
        mid2 = top.bid_price + top.ask_price  # BookTop.mid2: a Python property, on every top change
        num, den = self._tolerance
        if not num:  # any move at all
            return mid2 != ref
        # |move| / ref > num / (den * 10_000), in integers: exact, and it runs on every top change
        return abs(mid2 - ref) * den * 10_000 > num * ref

    @staticmethod
    def _covered(quotes: tuple[Quote, ...] | None, live: Sequence[Any]) -> bool:
        """Every quote we asked for has a live order (else it was vetoed, rejected or filled)."""
        if not quotes:
            return True
        keys = _live_keys(live)
        return all((q.side, q.price, q.qty) in keys for q in quotes)


def make_strategy(
    name: str, params: Mapping[str, Any] | None, instruments: Mapping[str, Instrument]
) -> MarketMaker:
    """The factory registered as ``marketmaker``: ``factory(name, params, instruments)``."""
    return MarketMaker(name, parse_params(params, where=f"strategy {name!r} (marketmaker)"), instruments)
