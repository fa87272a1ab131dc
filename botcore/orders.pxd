# Cython augmenting declarations for orders.py: read by the build only, the .py is the code.
# Each class below becomes an extension type whose instance attributes are C slots, so its own
# methods read and write them directly instead of looking them up by name (bench/ab_replay.py
# measures what that buys). Every slot is a plain ``object``: behaviour is the source's. A class
# the source gives no __slots__ keeps a __dict__ for anything else set on it, and can still be
# weakly referenced. Keep it in step with the source: every ``self.x = ...`` there is declared
# here (tests/test_compiled.py checks it).

cdef class ClientOrderIds:
    cdef public object _head
    cdef public object prefix
    cdef public object run_id
    cdef public object seq

cdef class TrackedOrder:
    cdef public object cancel_wanted
    cdef public object client_order_id
    cdef public object created_ns
    cdef public object cum_qty
    cdef public object error
    cdef public object level
    cdef public object order_id
    cdef public object price
    cdef public object qty
    cdef public object query_attempts
    cdef public object query_pending
    cdef public object side
    cdef public object status
    cdef public object strategy
    cdef public object symbol
    cdef public object tag
    cdef public object unknown_since_ns
    cdef public object updated_ns
    cdef public object venue_time_ms

cdef class OrderTracker:
    cdef public object _by_key
    cdef public object _clock
    cdef public object _done
    cdef public object _history
    cdef public object _orders
    cdef public object _owner_check
    cdef public object foreign
    cdef public object illegal
    cdef public object stale
    cdef public object version
    cdef dict __dict__
    cdef object __weakref__
