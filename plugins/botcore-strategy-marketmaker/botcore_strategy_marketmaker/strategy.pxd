# Cython augmenting declarations for strategy.py: read by the build only, the .py is the code.
# Each class below becomes an extension type whose instance attributes are C slots, so its own
# methods read and write them directly instead of looking them up by name (bench/ab_replay.py
# measures what that buys). Every slot is a plain ``object``: behaviour is the source's. A class
# the source gives no __slots__ keeps a __dict__ for anything else set on it, and can still be
# weakly referenced. Keep it in step with the source: every ``self.x = ...`` there is declared
# here (tests/test_compiled.py checks it).

cdef class _Grid:
    cdef public object all_fixed
    cdef public object ask_off
    cdef public object bid_off
    cdef public object max_notional
    cdef public object max_price
    cdef public object memo
    cdef public object min_notional
    cdef public object min_price
    cdef public object offsets
    cdef public object plain
    cdef public object pp
    cdef public object price_unit
    cdef public object qty
    cdef public object qty_exp
    cdef public object qty_fail
    cdef public object qty_units
    cdef public object quotes
    cdef public object skew_free
    cdef public object spacing
    cdef public object tick

cdef class _SymbolState:
    cdef public object fill_pending
    cdef public object last_change_ns
    cdef public object last_live_count
    cdef public object last_quotes
    cdef public object paused_until
    cdef public object ref_mid2
    cdef public object refresh_pending
    cdef public object replaced_vanished

cdef class MarketMaker:
    cdef public object _states
    cdef public object _tolerance
    cdef public object instruments
    cdef public object max_live_orders
    cdef public object name
    cdef public object order_type
    cdef public object params
    cdef public object symbols
    cdef public object time_in_force
    cdef dict __dict__
    cdef object __weakref__
