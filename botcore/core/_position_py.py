"""Position cache, pure-Python twin of ``_position_c.pyx`` (same API, same state, same tests).

What it holds: balances (free/locked/last update time per asset), our open orders by client order
id, and per symbol the position, average-cost basis, realized PnL, fees and the trade ids already
applied. Only the engine thread writes it (``apply_*``); strategies get ``view()``.

Representation: balances, quantities, commissions and prices are int64 counts of ``10**-8``
units (``model.AMOUNT_PRECISION``; Binance prints every amount and price with 8 decimals). Money
derived from ``qty * price`` (cost basis, realized PnL, fees in quote) is kept *exact* as an
integer count of ``10**-16`` quote units: the product of two 8-decimal numbers needs 16 decimals
(0.00028571 BTC * 52436.85 has 10), and int64 at 1e-16 would cap out at 922 USDT, so these are
arbitrary-precision ints, touched only when a fill is applied. The public API takes and returns
Decimals. A value that is not a whole number of 1e-8 units raises ``ValueError``; an int64 field
that would overflow raises ``OverflowError`` (|amount| < 92,233,720,368 of an asset). Every
``apply_*`` converts and computes first and mutates last, so a raising call leaves the cache as
it was.

Accounting choices (shared by both twins; the tests pin them):

- Average-cost method. The position is signed (net base bought minus sold since start, so it can
  go short); a fill that reduces ``|position|`` realizes ``(price - avg) * qty`` and one that
  crosses zero is split into a closing and an opening part.
- The position is net of commissions paid in the base asset (a BUY of 1 with 0.001 base fee adds
  0.999: what the account really holds); the fee leaves at the fill price, so the average entry
  stays the fill price and realized PnL is *gross*. Fees are tracked apart: per asset, and in
  quote terms (quote commissions as is, base commissions at the fill price). Commissions in a
  third asset (BNB) are kept per asset only: there is no price to convert them.
  Hence ``realized + unrealized(mark) - fees == quote flows + base flows * mark``.
- Notionals are exact. The one rounding is the share of the cost basis a partial close takes
  (``cost * closed / qty``, half-even to 1e-16 quote); realized PnL plus the remaining cost basis
  always add up exactly to what was paid, so the identity above is exact.
- A fill is applied once per (symbol, trade id): duplicates (a replayed event, the same trade seen
  in a REST ``FULL`` response and on the stream) are dropped. The order record only moves forward:
  a report with a lower cumulative qty than the record is stale and leaves the record alone, but
  its fill still counts if its trade id is new (after a snapshot adopted a venue-ahead cum qty,
  the late stream events carry fills the position has never seen).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)

from botcore.model import (
    AMOUNT_PRECISION,
    AccountSnapshot,
    AccountUpdate,
    Balance,
    BalanceDelta,
    Drift,
    ExecutionReport,
    Fill,
    Instrument,
    OpenOrder,
    OrderStatus,
    Side,
    plain,
)

SCALE = 10**AMOUNT_PRECISION
WIDE_PRECISION = 2 * AMOUNT_PRECISION
"""Decimals of the exact money fields (cost basis, realized PnL, fees in quote)."""
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)

FEE_ROUNDING_UNITS = 10
"""A balance drift of at most this many 1e-8 units is blamed on commission rounding: the venue
rounds each commission to 1e-8, and no real fill moves a balance by so little."""

TRADE_ID_WINDOW = 65_536
"""Trade ids remembered per symbol for de-duplication; older ids (at or below the highest id
forgotten) count as already seen. Binance trade ids grow monotonically per symbol."""

CLOSED_ORDER_MEMORY = 4_096
"""Recently closed (client id, order id) pairs kept so a late event or an older snapshot cannot
resurrect an order that is already gone."""

_EXACT = Context(
    prec=80, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact]
)
_WIDE = Context(prec=80, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow])
_DIV = Context(prec=28, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow])


# ------------------------------------------------------------------------------------------------
# Units and checked arithmetic
# ------------------------------------------------------------------------------------------------


def _units(value: object, what: str) -> int:
    """Decimal -> exact int64 count of 1e-8 units (ValueError if not exact, never rounds)."""
    if type(value) is not Decimal:
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise TypeError(f"{what} must be a Decimal, not {type(value).__name__}")
        value = Decimal(value)
    if not value.is_finite():
        raise ValueError(f"{what} {value} is not a finite number")
    if value.adjusted() > 18:  # |value| >= 1e19: out of range, and cheap to reject before as_integer_ratio
        raise OverflowError(f"{what} {plain(value)} is out of the int64 range of 1e-8 units")
    num, den = value.as_integer_ratio()  # exact; den divides 10**8 iff value has <= 8 decimals
    if SCALE % den:
        raise ValueError(f"{what} {plain(value)} has more than {AMOUNT_PRECISION} decimals")
    n = num * (SCALE // den)
    if n > INT64_MAX or n < INT64_MIN:
        raise OverflowError(f"{what} {plain(value)} is out of the int64 range of 1e-8 units")
    return n


def _dec(units: int) -> Decimal:
    return Decimal(units).scaleb(-AMOUNT_PRECISION, _EXACT)


def _dec_wide(units: int) -> Decimal:
    """1e-16 units -> Decimal with 8 decimals, or more only when the value needs them."""
    exp = -WIDE_PRECISION
    while exp < -AMOUNT_PRECISION and units % 10 == 0:
        units //= 10
        exp += 1
    return Decimal(units).scaleb(exp, _EXACT)


def _ck(v: int) -> int:
    """Range check mirroring the C twin's checked int64 arithmetic."""
    if v > INT64_MAX or v < INT64_MIN:
        raise OverflowError("int64 overflow in position arithmetic")
    return v


def _muldiv(a: int, b: int, c: int) -> int:
    """``a * b / c`` rounded half-even (``c > 0``), exact whatever the size."""
    q, r = divmod(a * b, c)
    if r > c - r or (r == c - r and q & 1):
        q += 1
    return q


def _price_arg(value: object) -> Decimal:
    if type(value) is not Decimal:
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise TypeError(f"mark_price must be a Decimal, not {type(value).__name__}")
        value = Decimal(value)
    if not value.is_finite():
        raise ValueError(f"mark_price {value} is not a finite number")
    return value


def _balance_cause(diff: int, traded: bool) -> str:
    if -FEE_ROUNDING_UNITS <= diff <= FEE_ROUNDING_UNITS:
        return "fee rounding"
    return "missed fill" if traded else "unknown"


# ------------------------------------------------------------------------------------------------
# Records (plain mutable slots; the C twin uses cdef classes with int64 fields)
# ------------------------------------------------------------------------------------------------


class _Balance:
    __slots__ = ("free", "locked", "update_ms")

    def __init__(self, free: int, locked: int, update_ms: int) -> None:
        self.free = free
        self.locked = locked
        self.update_ms = update_ms


class _Order:
    __slots__ = (
        "symbol",
        "client_order_id",
        "order_id",
        "side",
        "order_type",
        "status",
        "price",
        "orig_qty",
        "cum_qty",
        "cum_quote",
        "time_ms",
        "update_ms",
    )

    def __init__(
        self,
        symbol: str,
        client_order_id: str,
        order_id: int,
        side: Side,
        order_type: str,
        status: OrderStatus,
        price: int,
        orig_qty: int,
        cum_qty: int,
        cum_quote: int,
        time_ms: int,
        update_ms: int,
    ) -> None:
        self.symbol = symbol
        self.client_order_id = client_order_id
        self.order_id = order_id
        self.side = side
        self.order_type = order_type
        self.status = status
        self.price = price
        self.orig_qty = orig_qty
        self.cum_qty = cum_qty
        self.cum_quote = cum_quote
        self.time_ms = time_ms
        self.update_ms = update_ms

    def to_open_order(self) -> OpenOrder:
        return OpenOrder(
            symbol=self.symbol,
            client_order_id=self.client_order_id,
            order_id=self.order_id,
            side=self.side,
            order_type=self.order_type,
            status=self.status,
            price=_dec(self.price),
            orig_qty=_dec(self.orig_qty),
            cum_qty=_dec(self.cum_qty),
            cum_quote=_dec(self.cum_quote),
            time_ms=self.time_ms,
            update_time_ms=self.update_ms,
        )


class _Position:
    __slots__ = (
        "symbol",
        "base",
        "quote",
        "qty",
        "cost",
        "realized",
        "fees_quote",
        "fees",
        "last_trade_id",
        "seen",
        "seen_order",
        "seen_floor",
    )

    def __init__(self, symbol: str, base: str, quote: str) -> None:
        self.symbol = symbol
        self.base = base
        self.quote = quote
        self.qty = 0  # signed base units (1e-8), int64
        self.cost = 0  # signed 1e-16 quote units (sign of qty): what the open position cost
        self.realized = 0  # 1e-16 quote units
        self.fees_quote = 0  # 1e-16 quote units
        self.fees: dict[str, int] = {}  # asset -> 1e-8 units, int64
        self.last_trade_id = -1
        self.seen: set[int] = set()
        self.seen_order: deque[int] = deque()
        self.seen_floor = -1


_FillMath = tuple[int, int, int, int, str, int]
"""A fill's effect, computed before anything is mutated: qty, cost, realized, fees_quote,
fee asset ("" if no commission) and that asset's new fee total."""


# ------------------------------------------------------------------------------------------------
# Read side: shared by the cache and its view
# ------------------------------------------------------------------------------------------------


class _PositionReader:
    """The read methods. Holds references to the state containers, never to the cache."""

    __slots__ = ("_balances", "_orders", "_positions")

    _balances: dict[str, _Balance]
    _orders: dict[str, _Order]
    _positions: dict[str, _Position]

    def _pos(self, symbol: str) -> _Position:
        p = self._positions.get(symbol)
        if p is None:
            raise ValueError(f"unknown symbol {symbol!r}: call add_instrument() first")
        return p

    # --- balances ------------------------------------------------------------------------------
    def free(self, asset: str) -> Decimal:
        b = self._balances.get(asset)
        return _dec(0 if b is None else b.free)

    def locked(self, asset: str) -> Decimal:
        b = self._balances.get(asset)
        return _dec(0 if b is None else b.locked)

    def total(self, asset: str) -> Decimal:
        b = self._balances.get(asset)
        return _dec(0 if b is None else b.free + b.locked)

    def balances(self) -> dict[str, Balance]:
        return {
            a: Balance(asset=a, free=_dec(b.free), locked=_dec(b.locked)) for a, b in self._balances.items()
        }

    def balance_update_ms(self, asset: str) -> int:
        """Time (ms) of the state the balance reflects; -1 if the asset was never seen."""
        b = self._balances.get(asset)
        return -1 if b is None else b.update_ms

    # --- positions -----------------------------------------------------------------------------
    def symbols(self) -> list[str]:
        return list(self._positions)

    def position(self, symbol: str) -> Decimal:
        return _dec(self._pos(symbol).qty)

    def cost_basis(self, symbol: str) -> Decimal:
        """What the open position cost in quote (negative for a short: what it brought in)."""
        return _dec_wide(self._pos(symbol).cost)

    def avg_entry_price(self, symbol: str) -> Decimal | None:
        """``cost / qty`` (28 significant digits if it does not terminate); None when flat."""
        p = self._pos(symbol)
        if p.qty == 0:
            return None
        return _DIV.divide(Decimal(p.cost), Decimal(p.qty)).scaleb(-AMOUNT_PRECISION, _EXACT)

    def realized_pnl(self, symbol: str) -> Decimal:
        """Gross of fees (see ``fees``)."""
        return _dec_wide(self._pos(symbol).realized)

    def unrealized_pnl(self, symbol: str, mark_price: Decimal) -> Decimal:
        """``position * mark - cost basis``, exact."""
        p = self._pos(symbol)
        mark = _price_arg(mark_price)
        return _WIDE.subtract(_WIDE.multiply(_dec(p.qty), mark), _dec_wide(p.cost))

    def fees(self, symbol: str) -> Decimal:
        """Fees paid in quote terms (quote commissions + base commissions at the fill price)."""
        return _dec_wide(self._pos(symbol).fees_quote)

    def fees_by_asset(self, symbol: str) -> dict[str, Decimal]:
        """Every commission paid on this symbol, in the asset it was paid in (BNB included)."""
        return {a: _dec(u) for a, u in self._pos(symbol).fees.items()}

    def last_trade_id(self, symbol: str) -> int:
        """Highest trade id applied for ``symbol``; -1 if none."""
        return self._pos(symbol).last_trade_id

    # --- orders --------------------------------------------------------------------------------
    def open_orders(self, symbol: str | None = None) -> list[OpenOrder]:
        return [o.to_open_order() for o in self._orders.values() if symbol is None or o.symbol == symbol]

    def open_order(self, client_order_id: str) -> OpenOrder | None:
        o = self._orders.get(client_order_id)
        return None if o is None else o.to_open_order()

    def open_order_count(self, symbol: str | None = None) -> int:
        if symbol is None:
            return len(self._orders)
        n = 0
        for o in self._orders.values():
            if o.symbol == symbol:
                n += 1
        return n


class PositionView(_PositionReader):
    """Read-only view of a ``PositionCache`` for strategies: live state, no ``apply_*``.

    It holds the cache's state containers, not the cache, so no attribute leads back to the
    writer. Get one from ``PositionCache.view()``.
    """

    __slots__ = ()

    def __init__(self) -> None:
        raise TypeError("PositionView cannot be created directly; use PositionCache.view()")

    def __reduce__(self) -> object:
        raise TypeError(f"cannot pickle {type(self).__name__!r} object")

    def __repr__(self) -> str:
        return f"<PositionView symbols={len(self._positions)} assets={len(self._balances)} orders={len(self._orders)}>"


# ------------------------------------------------------------------------------------------------
# The cache
# ------------------------------------------------------------------------------------------------


class PositionCache(_PositionReader):
    """Balances, open orders, positions and PnL; written only by the engine thread."""

    __slots__ = ("_closed", "_trade_id_window")

    def __init__(self, *, trade_id_window: int = TRADE_ID_WINDOW) -> None:
        if trade_id_window < 1:
            raise ValueError("trade_id_window must be >= 1")
        self._balances = {}
        self._orders = {}
        self._positions = {}
        self._closed: OrderedDict[str, int] = OrderedDict()
        self._trade_id_window = int(trade_id_window)

    @property
    def trade_id_window(self) -> int:
        """Trade ids remembered per symbol for de-duplication."""
        return self._trade_id_window

    def __reduce__(self) -> object:
        raise TypeError(f"cannot pickle {type(self).__name__!r} object")

    def __repr__(self) -> str:
        return f"<PositionCache symbols={len(self._positions)} assets={len(self._balances)} orders={len(self._orders)}>"

    def view(self) -> PositionView:
        """A read-only view sharing this cache's live state."""
        v = object.__new__(PositionView)
        v._balances = self._balances
        v._orders = self._orders
        v._positions = self._positions
        return v

    def add_instrument(self, instrument: Instrument) -> None:
        """Register a symbol (its base/quote assets); re-adding refreshes them, keeping the position."""
        p = self._positions.get(instrument.symbol)
        if p is None:
            self._positions[instrument.symbol] = _Position(
                instrument.symbol, instrument.base_asset, instrument.quote_asset
            )
        else:
            p.base = instrument.base_asset
            p.quote = instrument.quote_asset

    # --- fills ---------------------------------------------------------------------------------
    def _is_seen(self, p: _Position, trade_id: int) -> bool:
        return trade_id <= p.seen_floor or trade_id in p.seen

    def _fill_math(
        self, p: _Position, buy: bool, qty: int, price: int, commission: int, commission_asset: str
    ) -> _FillMath:
        signed = qty if buy else _ck(-qty)
        fee_quote = 0
        fee_asset = ""
        fee_total = 0
        if commission != 0:
            if not commission_asset:
                raise ValueError("commission without a commission asset")
            if commission_asset == p.base:
                signed = _ck(signed - commission)
                fee_quote = commission * price
            elif commission_asset == p.quote:
                fee_quote = commission * SCALE
            fee_asset = commission_asset
            fee_total = _ck(p.fees.get(commission_asset, 0) + commission)
        q = p.qty
        cost = p.cost
        realized = p.realized
        if q == 0 or (q > 0) == (signed > 0):
            q = _ck(q + signed)
            cost = cost + signed * price
        else:
            aq = _ck(abs(q))
            asg = _ck(abs(signed))
            close = asg if asg <= aq else aq
            closing = close if signed > 0 else -close
            removed = _muldiv(cost, close, aq)
            realized = realized - closing * price - removed
            q = _ck(q + closing)
            cost = cost - removed
            rest = _ck(signed - closing)
            if rest != 0:
                q = rest
                cost = rest * price
        return (q, cost, realized, p.fees_quote + fee_quote, fee_asset, fee_total)

    def _commit_fill(self, p: _Position, trade_id: int, m: _FillMath) -> None:
        p.qty, p.cost, p.realized, p.fees_quote, fee_asset, fee_total = m
        if fee_asset:
            p.fees[fee_asset] = fee_total
        p.seen.add(trade_id)
        p.seen_order.append(trade_id)
        if len(p.seen_order) > self._trade_id_window:
            old = p.seen_order.popleft()
            p.seen.discard(old)
            if old > p.seen_floor:
                p.seen_floor = old
        if trade_id > p.last_trade_id:
            p.last_trade_id = trade_id

    def apply_fill(self, fill: Fill) -> bool:
        """Apply one fill (e.g. from a REST ``FULL`` response or ``myTrades``); False if already seen."""
        p = self._pos(fill.symbol)
        if fill.trade_id < 0:
            raise ValueError(f"fill of {fill.client_order_id!r} has no trade id")
        qty = _units(fill.qty, "qty")
        if qty <= 0:
            raise ValueError(f"fill qty must be positive, got {plain(fill.qty)}")
        price = _units(fill.price, "price")
        commission = _units(fill.commission, "commission")
        side = Side(fill.side)
        if self._is_seen(p, fill.trade_id):
            return False
        m = self._fill_math(p, side is Side.BUY, qty, price, commission, fill.commission_asset)
        self._commit_fill(p, fill.trade_id, m)
        return True

    # --- orders --------------------------------------------------------------------------------
    def _remember_closed(self, cid: str, order_id: int) -> None:
        self._closed.pop(cid, None)
        self._closed[cid] = order_id
        if len(self._closed) > CLOSED_ORDER_MEMORY:
            self._closed.popitem(last=False)  # O(1); a dict's next(iter()) degrades after front deletes

    def apply_execution_report(self, report: ExecutionReport) -> Fill | None:
        """Update the order record and, for a TRADE with a new trade id, the position.

        Returns the Fill when a new trade was applied, else None (duplicate trade id, stale or
        non-trade event). The record is inserted on an open status, updated unless the report's
        cum qty is older than the record's, and removed on a terminal status.
        """
        p = self._pos(report.symbol)
        status = OrderStatus(report.status)
        side = Side(report.side)
        price = _units(report.price, "price")
        orig = _units(report.orig_qty, "orig_qty")
        cum = _units(report.cum_qty, "cum_qty")
        cum_quote = _units(report.cum_quote, "cum_quote")
        event_ms = report.event_time_ms or report.transaction_time_ms
        m = None
        fill = None
        qty = _units(report.last_qty, "last_qty") if report.execution_type == "TRADE" else 0
        if qty > 0:
            if report.trade_id < 0:
                raise ValueError(f"TRADE report of {report.client_order_id!r} has no trade id")
            last_price = _units(report.last_price, "last_price")
            commission = _units(report.commission, "commission")
            fill = report.fill()
            if not self._is_seen(p, report.trade_id):
                m = self._fill_math(
                    p, side is Side.BUY, qty, last_price, commission, report.commission_asset or ""
                )
        # nothing below can raise: mutate from here on
        if m is not None:
            self._commit_fill(p, report.trade_id, m)
        cid = report.client_order_id
        o = self._orders.get(cid)
        if o is not None and o.order_id != report.order_id:
            if report.order_id < o.order_id:
                return fill if m is not None else None  # an older order that used the same id
            # the venue reuses a client id only once the order holding it closed: we missed that
            del self._orders[cid]
            self._remember_closed(cid, o.order_id)
            o = None
        if o is None:
            if self._closed.get(cid) == report.order_id:
                pass  # a late event of an order already closed
            elif status.is_terminal:
                self._remember_closed(cid, report.order_id)
            else:
                self._orders[cid] = _Order(
                    report.symbol,
                    cid,
                    report.order_id,
                    side,
                    report.order_type,
                    status,
                    price,
                    orig,
                    cum,
                    cum_quote,
                    report.transaction_time_ms or event_ms,
                    event_ms,
                )
        elif cum >= o.cum_qty:
            o.status = status
            o.price = price
            o.orig_qty = orig
            o.cum_qty = cum
            o.cum_quote = cum_quote
            if event_ms > o.update_ms:
                o.update_ms = event_ms
            if status.is_terminal:
                del self._orders[cid]
                self._remember_closed(cid, o.order_id)
        return fill if m is not None else None

    # --- balances ------------------------------------------------------------------------------
    def apply_account_update(self, update: AccountUpdate) -> int:
        """Absolute balances (``outboundAccountPosition``), fenced per asset by update time.

        An asset whose local state is newer than ``update.update_time_ms`` is left alone. Returns
        how many assets changed value.
        """
        rows = [(b.asset, _units(b.free, "free"), _units(b.locked, "locked")) for b in update.balances]
        t = update.update_time_ms
        changed = 0
        for asset, free, locked in rows:
            b = self._balances.get(asset)
            if b is None:
                self._balances[asset] = _Balance(free, locked, t)
                changed += 1
                continue
            if t < b.update_ms:
                continue
            if b.free != free or b.locked != locked:
                changed += 1
            b.free = free
            b.locked = locked
            b.update_ms = t
        return changed

    def apply_balance_delta(self, delta: BalanceDelta) -> bool:
        """A deposit/withdrawal (``balanceUpdate``) added to free; False if already reflected.

        Ignored when the asset's state is as new as the delta (``time_ms <= update time``): a REST
        snapshot or account update of that time already includes it. The venue follows every
        delta with an absolute account update, which heals a same-millisecond misjudgement.
        """
        d = _units(delta.delta, "delta")
        b = self._balances.get(delta.asset)
        if b is None:
            self._balances[delta.asset] = _Balance(d, 0, delta.time_ms)
            return True
        if delta.time_ms <= b.update_ms:
            return False
        b.free = _ck(b.free + d)
        b.update_ms = delta.time_ms
        return True

    # --- REST reset ----------------------------------------------------------------------------
    def apply_snapshot(self, snapshot: AccountSnapshot, now_ms: int, *, correct: bool = True) -> list[Drift]:
        """Reset from REST with fencing; every difference becomes a Drift (corrected if ``correct``).

        Balances: an asset whose local update time is newer than ``snapshot.update_time_ms`` is
        neither compared nor overwritten; an asset missing from the snapshot counts as zero.
        Orders: a venue order unknown locally is adopted (``order.missing_local``) unless we saw
        it close (a snapshot taken before our cancel) or its symbol is not registered (reported,
        not adopted); a local order the venue does not list is removed (``order.missing_venue``)
        unless its last event is at or after ``fetched_at_ms`` (placed after the snapshot was
        taken); the cause is "missed fill" when a balance of its symbol drifted the same way,
        else "lost cancel". A venue cum qty ahead of ours is adopted (``order.cum_qty``, "missed
        fill"); one behind ours is only reported ("unknown"), and not at all if our last event is
        newer than the snapshot. With ``correct=False`` nothing is changed.
        """
        venue_bal = [(b.asset, _units(b.free, "free"), _units(b.locked, "locked")) for b in snapshot.balances]
        venue_orders = [
            (
                o,
                OrderStatus(o.status),
                _units(o.price, "price"),
                _units(o.orig_qty, "orig_qty"),
                _units(o.cum_qty, "cum_qty"),
                _units(o.cum_quote, "cum_quote"),
            )
            for o in snapshot.open_orders
        ]
        correct = bool(correct)
        at = snapshot.update_time_ms
        fetched = snapshot.fetched_at_ms
        drifts: list[Drift] = []
        traded: set[str] = set()
        for p in self._positions.values():
            traded.add(p.base)
            traded.add(p.quote)

        # balances ------------------------------------------------------------------------------
        venue_assets: dict[str, tuple[int, int]] = {}
        for asset, free, locked in venue_bal:
            venue_assets[asset] = (free, locked)
        for asset in self._balances:
            if asset not in venue_assets:
                venue_assets[asset] = (0, 0)
        missed: set[str] = set()
        bal_fixes: list[tuple[str, int, int]] = []
        for asset, (free, locked) in venue_assets.items():
            b = self._balances.get(asset)
            if b is not None and b.update_ms > at:
                continue  # websocket state newer than the snapshot
            lf = 0 if b is None else b.free
            ll = 0 if b is None else b.locked
            age = 0 if b is None else now_ms - b.update_ms
            for field, lv, vv in (("balance.free", lf, free), ("balance.locked", ll, locked)):
                if lv != vv:
                    cause = _balance_cause(lv - vv, asset in traded)
                    if cause == "missed fill":
                        missed.add(asset)
                    drifts.append(Drift(field, asset, plain(_dec(lv)), plain(_dec(vv)), age, cause, correct))
            bal_fixes.append((asset, free, locked))

        # orders --------------------------------------------------------------------------------
        venue_by_cid = {row[0].client_order_id: row for row in venue_orders}
        removals: list[str] = []
        gone: list[Drift] = []
        for cid, o in self._orders.items():
            row = venue_by_cid.get(cid)
            if row is not None and row[0].order_id == o.order_id:
                continue
            if o.update_ms >= fetched:
                continue  # placed or updated after the snapshot was taken
            p = self._positions.get(o.symbol)
            cause = (
                "missed fill" if p is not None and (p.base in missed or p.quote in missed) else "lost cancel"
            )
            gone.append(
                Drift("order.missing_venue", cid, o.status.value, "", now_ms - o.update_ms, cause, correct)
            )
            removals.append(cid)
        cum_fixes: list[tuple[_Order, OrderStatus, int, int, int]] = []
        adoptions: list[_Order] = []
        for vo, vstatus, price, orig, cum, cum_quote in venue_orders:
            cid = vo.client_order_id
            o = self._orders.get(cid)
            if o is not None and o.order_id == vo.order_id:
                if cum > o.cum_qty:
                    drifts.append(
                        Drift(
                            "order.cum_qty",
                            cid,
                            plain(_dec(o.cum_qty)),
                            plain(_dec(cum)),
                            now_ms - o.update_ms,
                            "missed fill",
                            correct,
                        )
                    )
                    cum_fixes.append((o, vstatus, cum, cum_quote, vo.update_time_ms))
                elif cum < o.cum_qty and o.update_ms < fetched:
                    drifts.append(
                        Drift(
                            "order.cum_qty",
                            cid,
                            plain(_dec(o.cum_qty)),
                            plain(_dec(cum)),
                            now_ms - o.update_ms,
                            "unknown",
                            False,
                        )
                    )
                continue
            if o is not None and cid not in removals:
                continue  # a different, newer order holds this id locally
            if self._closed.get(cid) == vo.order_id:
                continue  # we saw it close after the snapshot was taken
            known = vo.symbol in self._positions
            drifts.append(
                Drift(
                    "order.missing_local",
                    cid,
                    "",
                    vstatus.value,
                    0,
                    "order placed outside the bot",
                    bool(correct and known),
                )
            )
            if known:
                adoptions.append(
                    _Order(
                        vo.symbol,
                        cid,
                        vo.order_id,
                        Side(vo.side),
                        vo.order_type,
                        vstatus,
                        price,
                        orig,
                        cum,
                        cum_quote,
                        vo.time_ms,
                        vo.update_time_ms,
                    )
                )
        drifts.extend(gone)
        if not correct:
            return drifts

        # corrections (nothing below can raise) -------------------------------------------------
        for asset, free, locked in bal_fixes:
            b = self._balances.get(asset)
            if b is None:
                self._balances[asset] = _Balance(free, locked, at)
            else:
                b.free = free
                b.locked = locked
                if at > b.update_ms:
                    b.update_ms = at
        for cid in removals:
            o = self._orders.pop(cid)
            self._remember_closed(cid, o.order_id)
        for o, vstatus, cum, cum_quote, vtime in cum_fixes:
            o.status = vstatus
            o.cum_qty = cum
            o.cum_quote = cum_quote
            if vtime > o.update_ms:
                o.update_ms = vtime
        for o in adoptions:
            self._orders[o.client_order_id] = o
        return drifts


__all__ = [
    "CLOSED_ORDER_MEMORY",
    "FEE_ROUNDING_UNITS",
    "TRADE_ID_WINDOW",
    "PositionCache",
    "PositionView",
]
