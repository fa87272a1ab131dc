# Cython augmenting declarations for booksync.py: read by the build only, the .py is the code.
# Each class below becomes an extension type whose instance attributes are C slots, so its own
# methods read and write them directly instead of looking them up by name (bench/ab_replay.py
# measures what that buys). Every slot is a plain ``object``: behaviour is the source's. A class
# the source gives no __slots__ keeps a __dict__ for anything else set on it, and can still be
# weakly referenced. Keep it in step with the source: every ``self.x = ...`` there is declared
# here (tests/test_compiled.py checks it).

cdef class BookSync:
    cdef public object _buffer
    cdef public object _buffering
    cdef public object _last_top
    cdef public object _on_trust
    cdef public object _request_snapshot
    cdef public object _snapshot_pending
    cdef public object book
    cdef public object buffer_overflow
    cdef public object gaps
    cdef public object last_recv_ns
    cdef public object malformed
    cdef public object resyncs
    cdef public object snapshots_applied
    cdef public object snapshots_rejected
    cdef public object snapshots_requested
    cdef public object stale
    cdef public object symbol
    cdef public object trusted
    cdef dict __dict__
    cdef object __weakref__
