"""Shared value types: what flows between adapters, the engine, strategies and risk checks.

Every type here is a plain, immutable, serializable value (msgspec Struct), so the engine queue
could be swapped for a message bus without touching producers or consumers.

Money convention (never a binary float on its way to the exchange):
- prices are int64 *ticks* of ``10**-price_precision`` (``Instrument.price_precision`` is the
  number of decimals of the symbol's tickSize),
- quantities and balances are int64 *units* of ``10**-qty_precision`` (``qty_precision`` is the
  base asset precision, 8 on Binance), so every quantity Binance prints is exact,
- ``Instrument`` converts both ways through ``Decimal`` and formats plain decimals for the wire.
"""

from __future__ import annotations

import enum
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal
from typing import Any

import msgspec

AMOUNT_PRECISION = 8
"""Decimals Binance uses for balances, commissions and quote amounts."""


class Side(enum.StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(enum.StrEnum):
    LIMIT = "LIMIT"
    LIMIT_MAKER = "LIMIT_MAKER"
    MARKET = "MARKET"


class TimeInForce(enum.StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class OrderStatus(enum.StrEnum):
    """Binance order statuses plus the client-side states of an order's life.

    PENDING_NEW: tracked locally, request not yet acknowledged.
    PENDING_CANCEL: cancel requested, not yet acknowledged.
    UNKNOWN: the venue may or may not have it (timeout, 5xx); resolved only by a query.
    """

    PENDING_NEW = "PENDING_NEW"
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    PENDING_CANCEL = "PENDING_CANCEL"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    EXPIRED_IN_MATCH = "EXPIRED_IN_MATCH"
    UNKNOWN = "UNKNOWN"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_ORDER_STATUSES

    @property
    def is_open(self) -> bool:
        """Could still rest on the book (and so counts against open-order limits)."""
        return not self.is_terminal


TERMINAL_ORDER_STATUSES: frozenset[OrderStatus] = frozenset(
    {
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.REJECTED,
        OrderStatus.EXPIRED,
        OrderStatus.EXPIRED_IN_MATCH,
    }
)


def decimals_of(step: Decimal | str) -> int:
    """Number of decimals needed to write ``step`` exactly ("0.01000000" -> 2, "1" -> 0)."""
    d = Decimal(step).normalize()
    exp = d.as_tuple().exponent
    assert isinstance(exp, int)
    return max(0, -exp)


def plain(d: Decimal) -> str:
    """Format a Decimal as a plain decimal string, never scientific notation."""
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s or "0"


class Instrument(msgspec.Struct, frozen=True):
    """A tradable symbol with the exchange filters a quote must satisfy."""

    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal = Decimal(0)
    max_qty: Decimal = Decimal(0)
    min_price: Decimal = Decimal(0)
    max_price: Decimal = Decimal(0)
    min_notional: Decimal = Decimal(0)
    max_notional: Decimal = Decimal(0)
    max_num_orders: int = 0
    qty_precision: int = AMOUNT_PRECISION
    status: str = "TRADING"

    @property
    def price_precision(self) -> int:
        """Decimals of tickSize; memoised per tick size (every price conversion reads it)."""
        tick = self.tick_size
        precision = _PRICE_PRECISION.get(tick)
        if precision is None:
            precision = decimals_of(tick)
            if len(_PRICE_PRECISION) < 4096:  # tick sizes are few; bound it anyway
                _PRICE_PRECISION[tick] = precision
        return precision

    # --- conversions -------------------------------------------------------------------------
    def price_to_ticks(self, price: Decimal | str) -> int:
        """Exact conversion; raises ValueError if ``price`` has more decimals than a tick unit."""
        return _to_units(Decimal(price), self.price_precision, "price")

    def ticks_to_price(self, ticks: int) -> Decimal:
        return Decimal(ticks).scaleb(-self.price_precision)

    def qty_to_units(self, qty: Decimal | str) -> int:
        return _to_units(Decimal(qty), self.qty_precision, "quantity")

    def units_to_qty(self, units: int) -> Decimal:
        return Decimal(units).scaleb(-self.qty_precision)

    def format_price(self, ticks: int) -> str:
        return plain(self.ticks_to_price(ticks))

    def format_qty(self, units: int) -> str:
        return plain(self.units_to_qty(units))

    # --- filters -------------------------------------------------------------------------------
    def round_price(self, price: Decimal, side: Side) -> Decimal:
        """Round to tickSize, away from the touch: bids down, asks up (never more aggressive)."""
        rounding = ROUND_FLOOR if side is Side.BUY else ROUND_CEILING
        return (price / self.tick_size).to_integral_value(rounding) * self.tick_size

    def round_qty(self, qty: Decimal) -> Decimal:
        """Floor to stepSize (never send more than intended)."""
        return (qty / self.step_size).to_integral_value(ROUND_DOWN) * self.step_size

    def filter_failure(self, price: Decimal | None, qty: Decimal) -> str | None:
        """The Binance filter name this order would fail (as in ``-1013 Filter failure: X``), or None."""
        if price is not None:
            if self.min_price and price < self.min_price:
                return "PRICE_FILTER"
            if self.max_price and price > self.max_price:
                return "PRICE_FILTER"
            if self.tick_size and price % self.tick_size != 0:
                return "PRICE_FILTER"
        if self.min_qty and qty < self.min_qty:
            return "LOT_SIZE"
        if self.max_qty and qty > self.max_qty:
            return "LOT_SIZE"
        if self.step_size and qty % self.step_size != 0:
            return "LOT_SIZE"
        if price is not None:
            notional = price * qty
            if self.min_notional and notional < self.min_notional:
                return "NOTIONAL"
            if self.max_notional and notional > self.max_notional:
                return "NOTIONAL"
        return None

    @classmethod
    def from_exchange_info(cls, sym: dict[str, Any]) -> Instrument:
        """Build from one entry of ``exchangeInfo.symbols``."""
        filters = {f["filterType"]: f for f in sym.get("filters", [])}
        pf = filters.get("PRICE_FILTER", {})
        lot = filters.get("LOT_SIZE", {})
        notional = filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL") or {}
        mno = filters.get("MAX_NUM_ORDERS", {})
        return cls(
            symbol=sym["symbol"],
            base_asset=sym["baseAsset"],
            quote_asset=sym["quoteAsset"],
            tick_size=Decimal(pf.get("tickSize", "0.00000001")),
            step_size=Decimal(lot.get("stepSize", "0.00000001")),
            min_qty=Decimal(lot.get("minQty", "0")),
            max_qty=Decimal(lot.get("maxQty", "0")),
            min_price=Decimal(pf.get("minPrice", "0")),
            max_price=Decimal(pf.get("maxPrice", "0")),
            min_notional=Decimal(notional.get("minNotional", "0")),
            max_notional=Decimal(notional.get("maxNotional", "0")),
            max_num_orders=int(mno.get("maxNumOrders", 0)),
            qty_precision=int(sym.get("baseAssetPrecision", AMOUNT_PRECISION)),
            status=sym.get("status", "TRADING"),
        )


_PRICE_PRECISION: dict[Decimal, int] = {}
"""tickSize -> its decimals (Decimals hash by value: equal tick sizes share an entry)."""


def _to_units(value: Decimal, precision: int, what: str) -> int:
    scaled = value.scaleb(precision)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{what} {plain(value)} has more than {precision} decimals")
    return int(scaled)


# ------------------------------------------------------------------------------------------------
# Orders and their outcomes
# ------------------------------------------------------------------------------------------------


class OrderRequest(msgspec.Struct, frozen=True):
    """What a strategy asks for; the engine assigns ``client_order_id`` before it is sent.

    ``price`` and ``qty`` are Decimals already on the instrument's tick/step grid.
    """

    symbol: str
    side: Side
    qty: Decimal
    price: Decimal | None = None
    order_type: OrderType = OrderType.LIMIT_MAKER
    time_in_force: TimeInForce | None = None
    client_order_id: str = ""
    strategy: str = ""
    tag: str = ""

    @property
    def notional(self) -> Decimal:
        return (self.price or Decimal(0)) * self.qty


class CancelRequest(msgspec.Struct, frozen=True):
    symbol: str
    client_order_id: str
    strategy: str = ""


class Fill(msgspec.Struct, frozen=True):
    """One execution of one of our orders."""

    symbol: str
    client_order_id: str
    order_id: int
    trade_id: int
    side: Side
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    is_maker: bool
    time_ms: int


class ExecutionReport(msgspec.Struct, frozen=True):
    """Normalized Binance ``executionReport``: one state change of one order.

    ``client_order_id`` is always the *order's* id (for cancels Binance puts the cancel request's
    id in ``c`` and the order's in ``C``; adapters normalize that).
    """

    symbol: str
    client_order_id: str
    order_id: int
    side: Side
    order_type: str
    status: OrderStatus
    execution_type: str
    price: Decimal
    orig_qty: Decimal
    cum_qty: Decimal
    cum_quote: Decimal
    last_qty: Decimal = Decimal(0)
    last_price: Decimal = Decimal(0)
    commission: Decimal = Decimal(0)
    commission_asset: str | None = None
    trade_id: int = -1
    is_maker: bool = False
    reject_reason: str = "NONE"
    event_time_ms: int = 0
    transaction_time_ms: int = 0

    def fill(self) -> Fill | None:
        if self.execution_type != "TRADE" or self.last_qty <= 0:
            return None
        return Fill(
            symbol=self.symbol,
            client_order_id=self.client_order_id,
            order_id=self.order_id,
            trade_id=self.trade_id,
            side=self.side,
            price=self.last_price,
            qty=self.last_qty,
            commission=self.commission,
            commission_asset=self.commission_asset or "",
            is_maker=self.is_maker,
            time_ms=self.transaction_time_ms,
        )


class Balance(msgspec.Struct, frozen=True):
    asset: str
    free: Decimal
    locked: Decimal

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


class AccountUpdate(msgspec.Struct, frozen=True):
    """``outboundAccountPosition``: absolute balances of the assets that changed."""

    balances: tuple[Balance, ...]
    update_time_ms: int
    event_time_ms: int = 0


class BalanceDelta(msgspec.Struct, frozen=True):
    """``balanceUpdate``: a deposit, withdrawal or transfer outside trading."""

    asset: str
    delta: Decimal
    time_ms: int


class OpenOrder(msgspec.Struct, frozen=True):
    """An order as the venue reports it in REST (openOrders / order query)."""

    symbol: str
    client_order_id: str
    order_id: int
    side: Side
    order_type: str
    status: OrderStatus
    price: Decimal
    orig_qty: Decimal
    cum_qty: Decimal
    cum_quote: Decimal
    time_ms: int
    update_time_ms: int


class AccountSnapshot(msgspec.Struct, frozen=True):
    """REST state used to initialise and reset the local cache."""

    balances: tuple[Balance, ...]
    open_orders: tuple[OpenOrder, ...]
    update_time_ms: int
    fetched_at_ms: int  # venue time just before the order list was asked for: orders newer than it may be missing


class BookTop(msgspec.Struct, frozen=True):
    """Top of book in ticks/units, with the update id it reflects."""

    symbol: str
    bid_price: int
    bid_qty: int
    ask_price: int
    ask_qty: int
    update_id: int

    @property
    def mid2(self) -> int:
        """Twice the mid in ticks (exact integer)."""
        return self.bid_price + self.ask_price

    @property
    def spread(self) -> int:
        return self.ask_price - self.bid_price


class Quote(msgspec.Struct, frozen=True):
    """One order a strategy wants live: ``level`` 0 is closest to the touch."""

    side: Side
    price: Decimal
    qty: Decimal
    level: int = 0


class OrderOutcome(msgspec.Struct, frozen=True):
    """What the gateway learned from one request: the engine applies it to the order tracker.

    ``status`` is the venue status when known, ``OrderStatus.UNKNOWN`` when the request may or may
    not have been executed (timeout, 5xx, -1006/-1007), ``REJECTED`` when it certainly was not.
    """

    action: str  # "new" | "cancel" | "query" | "cancel_replace"
    symbol: str
    client_order_id: str
    status: OrderStatus
    order_id: int = 0
    error_code: int = 0
    error_msg: str = ""
    cum_qty: Decimal = Decimal(0)
    sent_ns: int = 0
    done_ns: int = 0


class Drift(msgspec.Struct, frozen=True):
    """One difference a REST reset found between the local cache and the venue.

    ``field`` names what differs (``"balance.free"``, ``"balance.locked"``, ``"order.missing_local"``,
    ``"order.missing_venue"``, ``"order.cum_qty"``, ``"position"``), ``key`` the asset, client order
    id or symbol; ``local``/``venue`` are plain decimal strings (or statuses); ``age_ms`` is how old
    the local value was; ``cause`` is the likely cause (``"missed fill"``, ``"lost cancel"``,
    ``"order placed outside the bot"``, ``"fee rounding"``, ``"unknown"``).
    """

    field: str
    key: str
    local: str
    venue: str
    age_ms: int = 0
    cause: str = "unknown"
    corrected: bool = False
