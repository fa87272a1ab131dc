"""The top-of-book market maker: where to quote (a pure function) and when to requote (per-symbol state).

``compute_quotes`` turns one top of book, the position and the live orders into the quotes the
strategy wants; it has no state, so ``botcore check`` can print the first quotes without trading
and tests can table-drive it. ``MarketMaker`` adds the *when*: it returns None (keep the live
orders) while the mid stays within ``requote_tolerance_bps`` and ``min_requote_interval`` has not
passed, and it remembers fills (after-fill pause), aged orders and orders the venue never took.
Each instance keeps its state in its own ``_SymbolState`` objects: instances share nothing.
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
        return Decimal(rem)
    return Decimal(o.qty) - Decimal(getattr(o, "cum_qty", ZERO))


def _matches(q: Quote, o: Any) -> bool:
    """The engine keeps a live order for a quote with the same side, price and (original) qty."""
    return _side(o) is q.side and o.price == q.price and o.qty == q.qty and _status(o) in _KEEPABLE


def position_of(positions: PositionView | Mapping[str, Decimal] | None, symbol: str) -> Decimal:
    """Position from a ``PositionView``, a plain ``{symbol: qty}`` mapping, or 0 if None."""
    if positions is None:
        return ZERO
    if isinstance(positions, Mapping):
        return Decimal(positions.get(symbol, ZERO))
    return Decimal(positions.position(symbol))


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
) -> list[Quote]:
    """The quotes wanted for ``top``: level 0 first, bid before ask within a level.

    ``paused`` sides get no quotes (after-fill delay); ``hang`` sides keep their live orders
    exactly as they are. Returns [] when the book is crossed, locked or one-sided. Quotes an
    exchange filter would reject are left out; pass a list as ``rejected`` to learn which and why.
    """
    if not book_usable(top):
        return []
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
    same = [o for o in live if _side(o) is side]
    projected = position + side.sign * sum((_remaining(o) for o in same), ZERO)
    kept: list[Quote] = []
    for q in quotes:
        if any(_matches(q, o) for o in same):
            kept.append(q)  # already counted as a live order
            continue
        projected += side.sign * q.qty
        if abs(projected) > max_position and projected * side.sign > 0:
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
    )

    def __init__(self) -> None:
        self.last_quotes: tuple[Quote, ...] | None = None  # None: nothing decided since (re)start
        self.ref_mid2 = 0
        self.last_change_ns = 0
        self.paused_until: dict[Side, int] = {}
        self.fill_pending = False
        self.refresh_pending = False
        self.last_live_count = 0

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
        live = list(ctx.live_orders(top.symbol, self.name))

        pause_over = False
        for side, until in list(st.paused_until.items()):
            if until <= now:
                del st.paused_until[side]
                pause_over = True
        count_dropped = len(live) < st.last_live_count
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
            moved = open_gate and self._moved(st, top)
            missing = (open_gate or count_dropped) and not self._covered(st.last_quotes, live)
            if not (moved or aged or missing):
                return None

        paused = tuple(st.paused_until)
        hang = tuple(s.opposite for s in paused) if p.hang_other_side else ()
        quotes = compute_quotes(
            p, inst, top, position_of(ctx.positions, top.symbol), live, paused=paused, hang=hang
        )
        if aged:  # leave aged orders out once (the engine cancels them); put them back next time
            quotes = [q for q in quotes if not any(_matches(q, o) for o in aged)]
        st.refresh_pending = bool(aged)
        st.last_quotes = tuple(quotes)
        st.ref_mid2 = top.mid2
        st.last_change_ns = now
        st.fill_pending = False
        return quotes

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
        return abs(top.mid2 - ref) * BPS > self.params.requote_tolerance_bps * ref

    @staticmethod
    def _covered(quotes: tuple[Quote, ...] | None, live: Sequence[Any]) -> bool:
        """Every quote we asked for has a live order (else it was vetoed, rejected or filled)."""
        if not quotes:
            return True
        return all(any(_matches(q, o) for o in live) for q in quotes)


def make_strategy(
    name: str, params: Mapping[str, Any] | None, instruments: Mapping[str, Instrument]
) -> MarketMaker:
    """The factory registered as ``marketmaker``: ``factory(name, params, instruments)``."""
    return MarketMaker(name, parse_params(params, where=f"strategy {name!r} (marketmaker)"), instruments)
