"""Equity of a run, in the quote asset, rebuilt from our own fills.

equity = realized + unrealized PnL - fees, computed the cash-flow way: the quote paid/received
by every fill, minus fees, plus the inventory bought/sold marked at the current mid. That needs
no average-cost bookkeeping and is exact in Decimal. A risk check owns its own tracker (no state
shared between checks), fed through ``StatefulRiskCheck.on_fill``.

Fees paid in the base asset reduce the inventory (Binance delivers qty minus fee); fees in a
third asset (BNB) are valued at that asset's mid against the symbol's quote asset when the engine
has a book for it, else at the last price seen; unvalued fees are logged once.
All symbols are assumed to share one quote asset (the sum is in that asset).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from decimal import Decimal

from botcore.contracts import StrategyContext
from botcore.model import Fill

log = logging.getLogger("botcore.risk")

ZERO = Decimal(0)
_SEEN_MAX = 10_000


class EquityTracker:
    """Cash, inventory and third-asset fees per symbol since the tracker was created."""

    def __init__(self) -> None:
        self._cash: dict[str, Decimal] = {}
        self._inventory: dict[str, Decimal] = {}
        self._other_fees: dict[tuple[str, str], Decimal] = {}  # (fee asset, quote asset) -> amount
        self._last_price: dict[str, Decimal] = {}
        self._seen: OrderedDict[tuple[str, int, int, str], None] = OrderedDict()
        self._warned: set[str] = set()

    @property
    def empty(self) -> bool:
        return not self._cash

    def apply(self, fill: Fill, ctx: StrategyContext) -> bool:
        """Account one fill; False if it was seen before (a duplicate delivery is not double-counted)."""
        key = (fill.symbol, fill.order_id, fill.trade_id, fill.client_order_id)
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > _SEEN_MAX:
            self._seen.popitem(last=False)
        sym = fill.symbol
        sign = fill.side.sign
        cash = self._cash.get(sym, ZERO) - sign * fill.price * fill.qty
        inventory = self._inventory.get(sym, ZERO) + sign * fill.qty
        inst = ctx.instruments.get(sym)
        if fill.commission:
            asset = fill.commission_asset
            if inst is not None and asset == inst.quote_asset:
                cash -= fill.commission
            elif inst is not None and asset == inst.base_asset:
                inventory -= fill.commission
            elif inst is not None:
                k = (asset, inst.quote_asset)
                self._other_fees[k] = self._other_fees.get(k, ZERO) + fill.commission
            else:
                self._warn_once(
                    f"fee:{sym}", f"no instrument for {sym}: fee {fill.commission} {asset} not counted"
                )
        self._cash[sym] = cash
        self._inventory[sym] = inventory
        self._last_price[sym] = fill.price
        return True

    def inventory(self, symbol: str) -> Decimal:
        return self._inventory.get(symbol, ZERO)

    def equity(self, ctx: StrategyContext) -> Decimal:
        """Current equity in the quote asset (0 before the first fill)."""
        total = ZERO
        for sym, cash in self._cash.items():
            total += cash
            inv = self._inventory[sym]
            if inv:
                total += inv * self._mark(sym, ctx)
        for (asset, quote), amount in self._other_fees.items():
            sym = self._symbol_for(asset, quote, ctx)
            if sym is None:
                self._warn_once(
                    f"fee:{asset}", f"no {asset}/{quote} market to value {amount} {asset} of fees"
                )
                continue
            total -= amount * self._mark(sym, ctx)
        return total

    def _mark(self, symbol: str, ctx: StrategyContext) -> Decimal:
        """Mid from the engine's book; the last known price when the book has no top."""
        inst = ctx.instruments.get(symbol)
        top = None
        if inst is not None:
            try:
                top = ctx.book(symbol).top()
            except LookupError:  # no book for that symbol in this run
                top = None
        if inst is not None and top is not None and top.bid_price > 0 and top.ask_price > 0:
            mid = inst.ticks_to_price(top.mid2) / 2
            self._last_price[symbol] = mid
            return mid
        return self._last_price.get(symbol, ZERO)

    def _symbol_for(self, asset: str, quote: str, ctx: StrategyContext) -> str | None:
        for sym, inst in ctx.instruments.items():
            if inst.base_asset == asset and inst.quote_asset == quote:
                return sym if (sym in self._last_price or _has_book(ctx, sym)) else None
        return None

    def _warn_once(self, key: str, msg: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("risk equity: %s", msg)


def _has_book(ctx: StrategyContext, symbol: str) -> bool:
    try:
        return ctx.book(symbol).top() is not None
    except LookupError:  # no book for that symbol in this run
        return False
