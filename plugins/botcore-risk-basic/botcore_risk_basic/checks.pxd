# Cython augmenting declarations for checks.py: read by the build only, the .py is the code.
# Each class below becomes an extension type whose instance attributes are C slots, so its own
# methods read and write them directly instead of looking them up by name (bench/ab_replay.py
# measures what that buys). Every slot is a plain ``object``: behaviour is the source's. A class
# the source gives no __slots__ keeps a __dict__ for anything else set on it, and can still be
# weakly referenced. Keep it in step with the source: every ``self.x = ...`` there is declared
# here (tests/test_compiled.py checks it).

cdef class BasicCheck:
    cdef public object _symbols
    cdef public object limits
    cdef public object name
    cdef public object params
    cdef public object shadow
    cdef dict __dict__
    cdef object __weakref__

cdef class MaxPositionCheck(BasicCheck):
    pass

cdef class MaxInventoryValueCheck(BasicCheck):
    pass

cdef class MaxOrderNotionalCheck(BasicCheck):
    pass

cdef class MaxOpenOrdersCheck(BasicCheck):
    pass

cdef class OrderRateCheck(BasicCheck):
    cdef public object _sent
    cdef public object _sent_1s
    cdef public object per_10s
    cdef public object per_second

cdef class PriceBandCheck(BasicCheck):
    cdef public object _band

cdef class StaleDataCheck(BasicCheck):
    pass

cdef class _HaltingCheck(BasicCheck):
    cdef public object _rebase
    cdef public object equity
    cdef public object halt_reason
    cdef public object halted_at_ns
    cdef public object halts

cdef class DrawdownCheck(_HaltingCheck):
    cdef public object high_water
    cdef public object last_equity

cdef class DailyLossCheck(_HaltingCheck):
    cdef public object _wall
    cdef public object day
    cdef public object day_start_equity
    cdef public object last_equity
