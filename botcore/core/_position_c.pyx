# cython: language_level=3, embedsignature=True
"""Position cache, compiled twin of ``_position_py.py`` (same API, same state, same tests).

The design notes (units, accounting choices, fencing) live in ``_position_py.py``'s docstring;
this file mirrors it line for line: int64 fields with checked C arithmetic for balances,
quantities, prices and commissions (1e-8 units), exact Python ints for the 1e-16 money fields
(cost basis, realized PnL, fees in quote). Decimal only appears at the API edge.
"""

cimport cython
from libc.stdint cimport INT64_MAX, INT64_MIN, int64_t

from collections import OrderedDict, deque
from decimal import ROUND_HALF_EVEN, Context, Decimal, DivisionByZero, Inexact, InvalidOperation, Overflow

from botcore.model import (
    AMOUNT_PRECISION,
    Balance,
    Drift,
    OpenOrder,
    OrderStatus,
    Side,
    plain,
)

SCALE = 10**AMOUNT_PRECISION
WIDE_PRECISION = 2 * AMOUNT_PRECISION
FEE_ROUNDING_UNITS = 10
TRADE_ID_WINDOW = 65_536
CLOSED_ORDER_MEMORY = 4_096

cdef int64_t _FEE_ROUNDING = FEE_ROUNDING_UNITS
cdef Py_ssize_t _CLOSED_MEMORY = CLOSED_ORDER_MEMORY
cdef int _PRECISION = AMOUNT_PRECISION
cdef int _WIDE_PRECISION = WIDE_PRECISION
cdef object _PY_SCALE = SCALE
cdef object _EXACT = Context(
    prec=80, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact]
)
cdef object _WIDE = Context(prec=80, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow])
cdef object _DIV = Context(prec=28, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow])
cdef object _Decimal = Decimal
cdef object _BUY = Side.BUY
cdef object _SELL = Side.SELL
cdef object _OrderStatus = OrderStatus
cdef frozenset _TERMINAL = frozenset(s for s in OrderStatus if s.is_terminal)
cdef object _PY_INT64_MAX = INT64_MAX
cdef object _PY_INT64_MIN = INT64_MIN


# -------------------------------------------------------------------------------------------------
# Units and checked arithmetic
# -------------------------------------------------------------------------------------------------


cdef int64_t _units(object value, str what) except? -1:
    """Decimal -> exact int64 count of 1e-8 units (ValueError if not exact, never rounds)."""
    if type(value) is not _Decimal:
        if isinstance(value, bool) or not isinstance(value, (int, _Decimal)):
            raise TypeError(f"{what} must be a Decimal, not {type(value).__name__}")
        value = _Decimal(value)
    if not value.is_finite():
        raise ValueError(f"{what} {value} is not a finite number")
    if value.adjusted() > 18:  # |value| >= 1e19: out of range, and cheap to reject before as_integer_ratio
        raise OverflowError(f"{what} {plain(value)} is out of the int64 range of 1e-8 units")
    num, den = value.as_integer_ratio()
    if _PY_SCALE % den:
        raise ValueError(f"{what} {plain(value)} has more than {_PRECISION} decimals")
    n = num * (_PY_SCALE // den)
    if n > _PY_INT64_MAX or n < _PY_INT64_MIN:
        raise OverflowError(f"{what} {plain(value)} is out of the int64 range of 1e-8 units")
    return <int64_t>n


cdef inline object _dec(int64_t units):
    return _Decimal(units).scaleb(-_PRECISION, _EXACT)


cdef object _dec_wide(object units):
    """1e-16 units -> Decimal with 8 decimals, or more only when the value needs them."""
    cdef int exp = -_WIDE_PRECISION
    while exp < -_PRECISION and units % 10 == 0:
        units //= 10
        exp += 1
    return _Decimal(units).scaleb(exp, _EXACT)


cdef inline object _status(object s):
    return s if type(s) is _OrderStatus else _OrderStatus(s)


cdef inline object _side(object s):
    return s if (s is _BUY or s is _SELL) else Side(s)


cdef int _overflow() except -1:
    raise OverflowError("int64 overflow in position arithmetic")


cdef inline int64_t _add(int64_t a, int64_t b) except? -1:
    if (b > 0 and a > INT64_MAX - b) or (b < 0 and a < INT64_MIN - b):
        _overflow()
    return a + b


cdef inline int64_t _sub(int64_t a, int64_t b) except? -1:
    if (b < 0 and a > INT64_MAX + b) or (b > 0 and a < INT64_MIN + b):
        _overflow()
    return a - b


cdef inline int64_t _neg(int64_t a) except? -1:
    if a == INT64_MIN:
        _overflow()
    return -a


cdef inline int64_t _abs(int64_t a) except? -1:
    if a == INT64_MIN:
        _overflow()
    return a if a >= 0 else -a


cdef object _muldiv(object a, object b, object c):
    """``a * b / c`` rounded half-even (``c > 0``), exact whatever the size."""
    q, r = divmod(a * b, c)
    if r > c - r or (r == c - r and q & 1):
        q += 1
    return q


cdef object _price_arg(object value):
    if type(value) is not _Decimal:
        if isinstance(value, bool) or not isinstance(value, (int, _Decimal)):
            raise TypeError(f"mark_price must be a Decimal, not {type(value).__name__}")
        value = _Decimal(value)
    if not value.is_finite():
        raise ValueError(f"mark_price {value} is not a finite number")
    return value


cdef str _balance_cause(object diff, bint traded):
    if -_FEE_ROUNDING <= diff <= _FEE_ROUNDING:
        return "fee rounding"
    return "missed fill" if traded else "unknown"


# -------------------------------------------------------------------------------------------------
# Records
# -------------------------------------------------------------------------------------------------


@cython.final
@cython.auto_pickle(False)
cdef class _Balance:
    def __cinit__(self, int64_t free, int64_t locked, int64_t update_ms):
        self.free = free
        self.locked = locked
        self.update_ms = update_ms


@cython.final
@cython.auto_pickle(False)
cdef class _Order:
    def __cinit__(
        self,
        str symbol,
        str client_order_id,
        int64_t order_id,
        object side,
        object order_type,
        object status,
        int64_t price,
        int64_t orig_qty,
        int64_t cum_qty,
        int64_t cum_quote,
        int64_t time_ms,
        int64_t update_ms,
    ):
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

    cdef object to_open_order(self):
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


@cython.final
@cython.auto_pickle(False)
cdef class _Position:
    def __cinit__(self, str symbol, str base, str quote):
        self.symbol = symbol
        self.base = base
        self.quote = quote
        self.qty = 0
        self.qty_dec = _dec(0)
        self.qty_dec_of = 0
        self.cost = 0
        self.realized = 0
        self.fees_quote = 0
        self.fees = {}
        self.last_trade_id = -1
        self.seen = set()
        self.seen_order = deque()
        self.seen_floor = -1


# -------------------------------------------------------------------------------------------------
# Read side: shared by the cache and its view
# -------------------------------------------------------------------------------------------------


@cython.auto_pickle(False)
cdef class _PositionReader:
    """The read methods. Holds references to the state containers, never to the cache."""

    cdef _Position _pos(self, str symbol):
        p = self._positions.get(symbol)
        if p is None:
            raise ValueError(f"unknown symbol {symbol!r}: call add_instrument() first")
        return <_Position>p

    # --- balances --------------------------------------------------------------------------------
    cpdef object free(self, str asset):
        b = self._balances.get(asset)
        return _dec(0 if b is None else (<_Balance>b).free)

    cpdef object locked(self, str asset):
        b = self._balances.get(asset)
        return _dec(0 if b is None else (<_Balance>b).locked)

    cpdef object total(self, str asset):
        b = self._balances.get(asset)
        if b is None:
            return _dec(0)
        return _dec(_add((<_Balance>b).free, (<_Balance>b).locked))

    cpdef dict balances(self):
        cdef _Balance b
        out = {}
        for a, b in self._balances.items():
            out[a] = Balance(asset=a, free=_dec(b.free), locked=_dec(b.locked))
        return out

    cpdef int64_t balance_update_ms(self, str asset):
        """Time (ms) of the state the balance reflects; -1 if the asset was never seen."""
        b = self._balances.get(asset)
        return -1 if b is None else (<_Balance>b).update_ms

    # --- positions -------------------------------------------------------------------------------
    cpdef list symbols(self):
        return list(self._positions)

    cpdef object position(self, str symbol):
        cdef _Position p = self._pos(symbol)
        cdef int64_t qty = p.qty
        if p.qty_dec_of != qty:  # Decimals are immutable: the last one made is shared
            dec = _dec(qty)
            # No Python code runs between these stores (the GIL is held): a reader on another
            # thread sees the old pair or the new one.
            p.qty_dec = dec
            p.qty_dec_of = qty
        return p.qty_dec

    cpdef object cost_basis(self, str symbol):
        """What the open position cost in quote (negative for a short: what it brought in)."""
        return _dec_wide(self._pos(symbol).cost)

    cpdef object avg_entry_price(self, str symbol):
        """``cost / qty`` (28 significant digits if it does not terminate); None when flat."""
        cdef _Position p = self._pos(symbol)
        if p.qty == 0:
            return None
        return _DIV.divide(_Decimal(p.cost), _Decimal(p.qty)).scaleb(-_PRECISION, _EXACT)

    cpdef object realized_pnl(self, str symbol):
        """Gross of fees (see ``fees``)."""
        return _dec_wide(self._pos(symbol).realized)

    cpdef object unrealized_pnl(self, str symbol, object mark_price):
        """``position * mark - cost basis``, exact."""
        cdef _Position p = self._pos(symbol)
        mark = _price_arg(mark_price)
        return _WIDE.subtract(_WIDE.multiply(_dec(p.qty), mark), _dec_wide(p.cost))

    cpdef object fees(self, str symbol):
        """Fees paid in quote terms (quote commissions + base commissions at the fill price)."""
        return _dec_wide(self._pos(symbol).fees_quote)

    cpdef dict fees_by_asset(self, str symbol):
        """Every commission paid on this symbol, in the asset it was paid in (BNB included)."""
        cdef _Position p = self._pos(symbol)
        return {a: _dec(u) for a, u in p.fees.items()}

    cpdef int64_t last_trade_id(self, str symbol) except? -2:
        """Highest trade id applied for ``symbol``; -1 if none."""
        return self._pos(symbol).last_trade_id

    # --- orders ----------------------------------------------------------------------------------
    cpdef list open_orders(self, str symbol=None):
        cdef _Order o
        out = []
        for o in self._orders.values():
            if symbol is None or o.symbol == symbol:
                out.append(o.to_open_order())
        return out

    cpdef object open_order(self, str client_order_id):
        o = self._orders.get(client_order_id)
        return None if o is None else (<_Order>o).to_open_order()

    cpdef Py_ssize_t open_order_count(self, str symbol=None):
        cdef _Order o
        cdef Py_ssize_t n = 0
        if symbol is None:
            return len(self._orders)
        for o in self._orders.values():
            if o.symbol == symbol:
                n += 1
        return n


@cython.final
@cython.auto_pickle(False)
cdef class PositionView(_PositionReader):
    """Read-only view of a ``PositionCache`` for strategies: live state, no ``apply_*``.

    It holds the cache's state containers (as C-level attributes Python cannot reach), not the
    cache. Get one from ``PositionCache.view()``.
    """

    def __init__(self):
        raise TypeError("PositionView cannot be created directly; use PositionCache.view()")

    def __repr__(self):
        return f"<PositionView symbols={len(self._positions)} assets={len(self._balances)} orders={len(self._orders)}>"


# -------------------------------------------------------------------------------------------------
# The cache
# -------------------------------------------------------------------------------------------------


@cython.final
@cython.auto_pickle(False)
cdef class PositionCache(_PositionReader):
    """Balances, open orders, positions and PnL; written only by the engine thread."""

    def __init__(self, *, trade_id_window=TRADE_ID_WINDOW):
        if trade_id_window < 1:
            raise ValueError("trade_id_window must be >= 1")
        self._balances = {}
        self._orders = {}
        self._positions = {}
        self._closed = OrderedDict()
        self.trade_id_window = trade_id_window

    def __repr__(self):
        return f"<PositionCache symbols={len(self._positions)} assets={len(self._balances)} orders={len(self._orders)}>"

    cpdef PositionView view(self):
        """A read-only view sharing this cache's live state."""
        cdef PositionView v = PositionView.__new__(PositionView)
        v._balances = self._balances
        v._orders = self._orders
        v._positions = self._positions
        return v

    cpdef void add_instrument(self, object instrument):
        """Register a symbol (its base/quote assets); re-adding refreshes them, keeping the position."""
        cdef str symbol = instrument.symbol
        cdef str base = instrument.base_asset
        cdef str quote = instrument.quote_asset
        p = self._positions.get(symbol)
        if p is None:
            self._positions[symbol] = _Position(symbol, base, quote)
        else:
            (<_Position>p).base = base
            (<_Position>p).quote = quote

    # --- fills -----------------------------------------------------------------------------------
    cdef bint _is_seen(self, _Position p, int64_t trade_id):
        return trade_id <= p.seen_floor or trade_id in p.seen

    cdef tuple _fill_math(
        self, _Position p, bint buy, int64_t qty, int64_t price, int64_t commission, object commission_asset
    ):
        """(qty, cost, realized, fees_quote, fee asset or "", that asset's fee total)."""
        cdef int64_t signed, q, aq, asg, close, closing, rest
        cdef int64_t fee_total = 0
        fee_quote = 0
        fee_asset = ""
        signed = qty if buy else _neg(qty)
        if commission != 0:
            if not commission_asset:
                raise ValueError("commission without a commission asset")
            if commission_asset == p.base:
                signed = _sub(signed, commission)
                fee_quote = <object>commission * <object>price
            elif commission_asset == p.quote:
                fee_quote = <object>commission * _PY_SCALE
            fee_asset = commission_asset
            fee_total = _add(<int64_t>p.fees.get(commission_asset, 0), commission)
        q = p.qty
        cost = p.cost
        realized = p.realized
        if q == 0 or (q > 0) == (signed > 0):
            q = _add(q, signed)
            cost = cost + <object>signed * <object>price
        else:
            aq = _abs(q)
            asg = _abs(signed)
            close = asg if asg <= aq else aq
            closing = close if signed > 0 else -close
            removed = _muldiv(cost, close, aq)
            realized = realized - <object>closing * <object>price - removed
            q = _add(q, closing)
            cost = cost - removed
            rest = _sub(signed, closing)
            if rest != 0:
                q = rest
                cost = <object>rest * <object>price
        return (q, cost, realized, p.fees_quote + fee_quote, fee_asset, fee_total)

    cdef void _commit_fill(self, _Position p, int64_t trade_id, tuple m):
        cdef int64_t old
        p.qty = m[0]
        p.cost = m[1]
        p.realized = m[2]
        p.fees_quote = m[3]
        if m[4]:
            p.fees[m[4]] = m[5]
        p.seen.add(trade_id)
        p.seen_order.append(trade_id)
        if len(p.seen_order) > self.trade_id_window:
            old = p.seen_order.popleft()
            p.seen.discard(old)
            if old > p.seen_floor:
                p.seen_floor = old
        if trade_id > p.last_trade_id:
            p.last_trade_id = trade_id

    cpdef bint apply_fill(self, object fill) except -1:
        """Apply one fill (e.g. from a REST ``FULL`` response or ``myTrades``); False if already seen."""
        cdef _Position p = self._pos(fill.symbol)
        cdef int64_t trade_id = fill.trade_id
        if trade_id < 0:
            raise ValueError(f"fill of {fill.client_order_id!r} has no trade id")
        cdef int64_t qty = _units(fill.qty, "qty")
        if qty <= 0:
            raise ValueError(f"fill qty must be positive, got {plain(fill.qty)}")
        cdef int64_t price = _units(fill.price, "price")
        cdef int64_t commission = _units(fill.commission, "commission")
        side = _side(fill.side)
        if self._is_seen(p, trade_id):
            return False
        m = self._fill_math(p, side is _BUY, qty, price, commission, fill.commission_asset)
        self._commit_fill(p, trade_id, m)
        return True

    # --- orders ----------------------------------------------------------------------------------
    cdef void _remember_closed(self, str cid, int64_t order_id):
        self._closed.pop(cid, None)
        self._closed[cid] = order_id
        if len(self._closed) > _CLOSED_MEMORY:
            self._closed.popitem(last=False)  # O(1); a dict's next(iter()) degrades after front deletes

    cpdef object apply_execution_report(self, object report):
        """Update the order record and, for a TRADE with a new trade id, the position.

        Returns the Fill when a new trade was applied, else None (duplicate trade id, stale or
        non-trade event). The record is inserted on an open status, updated unless the report's
        cum qty is older than the record's, and removed on a terminal status.
        """
        cdef tuple m = None
        cdef _Position p = self._pos(report.symbol)
        status = _status(report.status)
        side = _side(report.side)
        cdef str cid = report.client_order_id
        cdef int64_t order_id = report.order_id
        cdef int64_t price = _units(report.price, "price")
        cdef int64_t orig = _units(report.orig_qty, "orig_qty")
        cdef int64_t cum = _units(report.cum_qty, "cum_qty")
        cdef int64_t cum_quote = _units(report.cum_quote, "cum_quote")
        cdef int64_t event_ms = report.event_time_ms or report.transaction_time_ms
        cdef int64_t time_ms = report.transaction_time_ms or event_ms
        cdef int64_t trade_id = report.trade_id
        cdef int64_t qty, last_price, commission
        fill = None
        qty = _units(report.last_qty, "last_qty") if report.execution_type == "TRADE" else 0
        if qty > 0:
            if trade_id < 0:
                raise ValueError(f"TRADE report of {cid!r} has no trade id")
            last_price = _units(report.last_price, "last_price")
            commission = _units(report.commission, "commission")
            fill = report.fill()
            if not self._is_seen(p, trade_id):
                m = self._fill_math(p, side is _BUY, qty, last_price, commission, report.commission_asset or "")
        # nothing below can raise: mutate from here on
        if m is not None:
            self._commit_fill(p, trade_id, m)
        cdef _Order o
        found = self._orders.get(cid)
        o = None if found is None else <_Order>found
        if o is not None and o.order_id != order_id:
            if order_id < o.order_id:
                return fill if m is not None else None  # an older order that used the same id
            # the venue reuses a client id only once the order holding it closed: we missed that
            del self._orders[cid]
            self._remember_closed(cid, o.order_id)
            o = None
        if o is None:
            if self._closed.get(cid) == order_id:
                pass  # a late event of an order already closed
            elif status in _TERMINAL:
                self._remember_closed(cid, order_id)
            else:
                self._orders[cid] = _Order(
                    report.symbol,
                    cid,
                    order_id,
                    side,
                    report.order_type,
                    status,
                    price,
                    orig,
                    cum,
                    cum_quote,
                    time_ms,
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
            if status in _TERMINAL:
                del self._orders[cid]
                self._remember_closed(cid, o.order_id)
        return fill if m is not None else None

    # --- balances --------------------------------------------------------------------------------
    cpdef Py_ssize_t apply_account_update(self, object update) except -1:
        """Absolute balances (``outboundAccountPosition``), fenced per asset by update time.

        An asset whose local state is newer than ``update.update_time_ms`` is left alone. Returns
        how many assets changed value.
        """
        cdef _Balance b
        cdef int64_t free, locked
        cdef int64_t t = update.update_time_ms
        cdef Py_ssize_t changed = 0
        rows = [(x.asset, _units(x.free, "free"), _units(x.locked, "locked")) for x in update.balances]
        for asset, free, locked in rows:
            found = self._balances.get(asset)
            if found is None:
                self._balances[asset] = _Balance(free, locked, t)
                changed += 1
                continue
            b = <_Balance>found
            if t < b.update_ms:
                continue
            if b.free != free or b.locked != locked:
                changed += 1
            b.free = free
            b.locked = locked
            b.update_ms = t
        return changed

    cpdef bint apply_balance_delta(self, object delta) except -1:
        """A deposit/withdrawal (``balanceUpdate``) added to free; False if already reflected.

        Ignored when the asset's state is as new as the delta (``time_ms <= update time``): a REST
        snapshot or account update of that time already includes it. The venue follows every
        delta with an absolute account update, which heals a same-millisecond misjudgement.
        """
        cdef int64_t d = _units(delta.delta, "delta")
        cdef int64_t t = delta.time_ms
        cdef _Balance b
        found = self._balances.get(delta.asset)
        if found is None:
            self._balances[delta.asset] = _Balance(d, 0, t)
            return True
        b = <_Balance>found
        if t <= b.update_ms:
            return False
        b.free = _add(b.free, d)
        b.update_ms = t
        return True

    # --- REST reset ------------------------------------------------------------------------------
    def apply_snapshot(self, snapshot, now_ms, *, correct=True):
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
        return self._apply_snapshot(snapshot, now_ms, correct)

    cdef list _apply_snapshot(self, object snapshot, int64_t now_ms, bint correct):
        cdef _Balance b
        cdef _Order o
        cdef _Position p
        cdef int64_t free, locked, lf, ll, lv, vv, age, cum, cum_quote, price, orig, vtime
        venue_bal = [(x.asset, _units(x.free, "free"), _units(x.locked, "locked")) for x in snapshot.balances]
        venue_orders = [
            (
                x,
                _status(x.status),
                _units(x.price, "price"),
                _units(x.orig_qty, "orig_qty"),
                _units(x.cum_qty, "cum_qty"),
                _units(x.cum_quote, "cum_quote"),
            )
            for x in snapshot.open_orders
        ]
        cdef int64_t at = snapshot.update_time_ms
        cdef int64_t fetched = snapshot.fetched_at_ms
        cdef list drifts = []
        cdef set traded = set()
        for p in self._positions.values():
            traded.add(p.base)
            traded.add(p.quote)

        # balances --------------------------------------------------------------------------------
        cdef dict venue_assets = {}
        for asset, free, locked in venue_bal:
            venue_assets[asset] = (free, locked)
        for asset in self._balances:
            if asset not in venue_assets:
                venue_assets[asset] = (0, 0)
        cdef set missed = set()
        cdef list bal_fixes = []
        for asset, (free, locked) in venue_assets.items():
            found = self._balances.get(asset)
            if found is not None and (<_Balance>found).update_ms > at:
                continue  # websocket state newer than the snapshot
            if found is None:
                lf = 0
                ll = 0
                age = 0
            else:
                b = <_Balance>found
                lf = b.free
                ll = b.locked
                age = now_ms - b.update_ms
            for field, lv, vv in (("balance.free", lf, free), ("balance.locked", ll, locked)):
                if lv != vv:
                    cause = _balance_cause(<object>lv - <object>vv, asset in traded)
                    if cause == "missed fill":
                        missed.add(asset)
                    drifts.append(Drift(field, asset, plain(_dec(lv)), plain(_dec(vv)), age, cause, correct))
            bal_fixes.append((asset, free, locked))

        # orders ----------------------------------------------------------------------------------
        cdef dict venue_by_cid = {row[0].client_order_id: row for row in venue_orders}
        cdef list removals = []
        cdef list gone = []
        for cid, o in self._orders.items():
            row = venue_by_cid.get(cid)
            if row is not None and row[0].order_id == o.order_id:
                continue
            if o.update_ms >= fetched:
                continue  # placed or updated after the snapshot was taken
            found = self._positions.get(o.symbol)
            if found is not None and ((<_Position>found).base in missed or (<_Position>found).quote in missed):
                cause = "missed fill"
            else:
                cause = "lost cancel"
            gone.append(Drift("order.missing_venue", cid, o.status.value, "", now_ms - o.update_ms, cause, correct))
            removals.append(cid)
        cdef list cum_fixes = []
        cdef list adoptions = []
        for vo, vstatus, price, orig, cum, cum_quote in venue_orders:
            cid = vo.client_order_id
            found = self._orders.get(cid)
            if found is not None and (<_Order>found).order_id == vo.order_id:
                o = <_Order>found
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
            if found is not None and cid not in removals:
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
                        _side(vo.side),
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

        # corrections (nothing below can raise) ---------------------------------------------------
        for asset, free, locked in bal_fixes:
            found = self._balances.get(asset)
            if found is None:
                self._balances[asset] = _Balance(free, locked, at)
            else:
                b = <_Balance>found
                b.free = free
                b.locked = locked
                if at > b.update_ms:
                    b.update_ms = at
        for cid in removals:
            o = <_Order>self._orders.pop(cid)
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
