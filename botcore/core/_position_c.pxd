# cython: language_level=3
"""The contract of the compiled position cache (bodies in ``_position_c.pyx``).

Amounts are int64 counts of 1e-8 units; the public ``cpdef`` API speaks Decimal and the
``botcore.model`` value types. ``PositionCache`` is the writer (engine thread only),
``PositionView`` the read-only facade strategies get: both share one ``_PositionReader`` read
side and the same state containers, and the view holds no reference to the cache.
"""

from libc.stdint cimport int64_t


cdef class _Balance:
    cdef int64_t free
    cdef int64_t locked
    cdef int64_t update_ms


cdef class _Order:
    cdef str symbol
    cdef str client_order_id
    cdef int64_t order_id
    cdef object side
    cdef object order_type
    cdef object status
    cdef int64_t price
    cdef int64_t orig_qty
    cdef int64_t cum_qty
    cdef int64_t cum_quote
    cdef int64_t time_ms
    cdef int64_t update_ms

    cdef object to_open_order(self)


cdef class _Position:
    cdef str symbol
    cdef str base
    cdef str quote
    cdef int64_t qty
    """Signed base units of 1e-8 (net of base-asset commissions)."""
    cdef object qty_dec
    """``qty`` as the Decimal ``position`` returns, made when ``qty_dec_of`` != ``qty`` (a risk
    check and the strategy ask on every order; the position changes only on fills)."""
    cdef int64_t qty_dec_of
    cdef object cost
    """Exact int, signed 1e-16 quote units (sign of ``qty``): what the open position cost."""
    cdef object realized
    """Exact int, 1e-16 quote units, gross of fees."""
    cdef object fees_quote
    """Exact int, 1e-16 quote units."""
    cdef dict fees
    """Asset -> int64 units of 1e-8."""
    cdef int64_t last_trade_id
    cdef set seen
    cdef object seen_order
    cdef int64_t seen_floor


cdef class _PositionReader:
    cdef dict _balances
    cdef dict _orders
    cdef dict _positions

    cdef _Position _pos(self, str symbol)

# -- BALANCES -------------------------------------------------------------------------------------

    cpdef object free(self, str asset)
    cpdef object locked(self, str asset)
    cpdef object total(self, str asset)
    cpdef dict balances(self)
    cpdef int64_t balance_update_ms(self, str asset)

# -- POSITIONS ------------------------------------------------------------------------------------

    cpdef list symbols(self)
    cpdef object position(self, str symbol)
    cpdef object cost_basis(self, str symbol)
    cpdef object avg_entry_price(self, str symbol)
    cpdef object realized_pnl(self, str symbol)
    cpdef object unrealized_pnl(self, str symbol, object mark_price)
    cpdef object fees(self, str symbol)
    cpdef dict fees_by_asset(self, str symbol)
    cpdef int64_t last_trade_id(self, str symbol) except? -2

# -- ORDERS ---------------------------------------------------------------------------------------

    cpdef list open_orders(self, str symbol=*)
    cpdef object open_order(self, str client_order_id)
    cpdef Py_ssize_t open_order_count(self, str symbol=*)


cdef class PositionView(_PositionReader):
    pass


cdef class PositionCache(_PositionReader):
    cdef readonly int64_t trade_id_window
    """Trade ids remembered per symbol for de-duplication."""
    cdef object _closed  # OrderedDict: client id -> order id of recently closed orders

    cpdef PositionView view(self)
    cpdef void add_instrument(self, object instrument)
    cpdef bint apply_fill(self, object fill) except -1
    cpdef object apply_execution_report(self, object report)
    cpdef Py_ssize_t apply_account_update(self, object update) except -1
    cpdef bint apply_balance_delta(self, object delta) except -1

    cdef bint _is_seen(self, _Position p, int64_t trade_id)
    cdef tuple _fill_math(
        self, _Position p, bint buy, int64_t qty, int64_t price, int64_t commission, object commission_asset
    )
    cdef void _commit_fill(self, _Position p, int64_t trade_id, tuple m)
    cdef void _remember_closed(self, str cid, int64_t order_id)
    cdef list _apply_snapshot(self, object snapshot, int64_t now_ms, bint correct)
