# Cython augmenting declarations for metrics.py: read by the build only, the .py is the code.
# Each class below becomes an extension type whose instance attributes are C slots, so its own
# methods read and write them directly instead of looking them up by name (bench/ab_replay.py
# measures what that buys). Every slot is a plain ``object``: behaviour is the source's. A class
# the source gives no __slots__ keeps a __dict__ for anything else set on it, and can still be
# weakly referenced. Keep it in step with the source: every ``self.x = ...`` there is declared
# here (tests/test_compiled.py checks it).

cdef class LatencyHistogram:
    cdef public object count
    cdef public object counts
    cdef public object max_ns
    cdef public object min_ns
    cdef public object total_ns
