# cython: language_level=3
"""Contract of the compiled L2 order book: C layout and cpdef signatures (bodies in _book_c.pyx)."""

from libc.stdint cimport int64_t


cdef enum:
    # sync outcomes (exported to Python as APPLIED, STALE, ... by the .pyx)
    RC_APPLIED = 0
    RC_STALE = 1
    RC_GAP = 2
    RC_NOT_SYNCED = 3
    RC_IGNORED = 4
    # book states
    ST_EMPTY = 0
    ST_SYNCING = 1
    ST_LIVE = 2
    ST_RESYNC_NEEDED = 3


cdef struct Level:
    int64_t key   # ladder: price for bids, -price for asks (ascending, best last); scratch: price
    int64_t qty


cdef struct Ladder:
    # Sorted ascending by key so the best level is levels[n - 1]: updates cluster near the touch,
    # so inserts and deletes move only the few levels above them.
    Level* levels
    Py_ssize_t n
    Py_ssize_t cap


cdef struct Frame:
    # What the scanner found in one JSON object (a payload or a combined-stream envelope).
    int event          # E_* kind of the "e" field
    bint has_U
    bint has_u_key     # "u" present with any value
    bint has_u         # "u" present and a non-negative int64
    int64_t first_id
    int64_t final_id
    int b_kind         # V_* kind of "b" (levels array, decimal string or other)
    int a_kind
    int B_kind
    int A_kind
    int64_t bid_price
    int64_t bid_qty
    int64_t ask_price
    int64_t ask_qty
    int sym            # S_* outcome of comparing "s" with the book's symbol
    bint has_stream
    bint has_data
    bint data_is_object
    Ladder bids        # scratch levels in wire order, key = price
    Ladder asks


cdef class OrderBook:
    cdef readonly str symbol
    """Exchange symbol, e.g. ``BTCUSDT``."""
    cdef readonly int price_precision
    """Prices are int64 ticks of ``10**-price_precision``."""
    cdef readonly int qty_precision
    """Quantities are int64 units of ``10**-qty_precision``."""
    cdef readonly int64_t last_update_id
    """Id of the last applied snapshot or diff; -1 before any snapshot."""
    cdef readonly int64_t ticker_update_id
    """``u`` of the last accepted bookTicker; -1 if none since the last snapshot."""
    cdef readonly int state
    """EMPTY, SYNCING, LIVE or RESYNC_NEEDED."""

    cdef Ladder _bids
    cdef Ladder _asks
    cdef int64_t _tk_bid_price
    cdef int64_t _tk_bid_qty
    cdef int64_t _tk_ask_price
    cdef int64_t _tk_ask_qty
    cdef Frame _outer            # scratch: bare payload / envelope / list-based updates
    cdef Frame _inner            # scratch: the "data" payload of a combined-stream envelope
    cdef Ladder _slots           # scratch: where each level of a diff side lands
    cdef bytes _symbol_upper     # what "s" must equal

    cpdef void clear(self) noexcept
    # Integer arguments are ``object`` and converted with ``__index__`` semantics: Cython's own
    # int64_t argument conversion would silently truncate a float price.
    cpdef void apply_snapshot(self, object last_update_id, object bids, object asks) except *
    cpdef int apply_diff(self, object first_id, object final_id, object bids, object asks) except -1
    cpdef int apply_book_ticker(self, object update_id, object bid_price, object bid_qty,
                                object ask_price, object ask_qty) except -1
    cpdef void apply_snapshot_json(self, object raw) except *
    cpdef int apply_json(self, object raw) except -1
    cpdef tuple top(self)
    cpdef bint is_crossed(self) noexcept
    cpdef list bids(self, Py_ssize_t n)
    cpdef list asks(self, Py_ssize_t n)
    cpdef tuple depth(self, Py_ssize_t n)
    cpdef int64_t qty_at(self, bint is_bid, object price) except? -1
    cpdef Py_ssize_t level_count(self, bint is_bid) noexcept

    cdef int _commit_snapshot(self, int64_t last_update_id, Ladder* bids, Ladder* asks) except -1
    cdef int _commit_diff(self, int64_t first_id, int64_t final_id, Ladder* bids, Ladder* asks) except -1
    cdef int _commit_ticker(self, int64_t update_id, int64_t bid_price, int64_t bid_qty,
                            int64_t ask_price, int64_t ask_qty) except -1
    cdef int _slow_json(self, object raw) except -1
