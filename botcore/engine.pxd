# Cython augmenting declarations for engine.py: read by the build only, the .py is the code.
# Each class below becomes an extension type whose instance attributes are C slots, so its own
# methods read and write them directly instead of looking them up by name (bench/ab_replay.py
# measures what that buys). Every slot is a plain ``object``: behaviour is the source's. A class
# the source gives no __slots__ keeps a __dict__ for anything else set on it, and can still be
# weakly referenced. Keep it in step with the source: every ``self.x = ...`` there is declared
# here (tests/test_compiled.py checks it).

cdef class _ChainStep:
    cdef public object answer
    cdef public object decision
    cdef public object link
    cdef public object once

cdef class _BookView:
    cdef public object _sync
    cdef public object _top
    cdef public object symbol

cdef class _Context:
    cdef public object _engine
    cdef public object _order_views
    cdef public object _positions
    cdef public object _views
    cdef public object instruments

cdef class Engine:
    cdef public object _by_symbol
    cdef public object _clock
    cdef public object _clock_skew_ms
    cdef public object _decision
    cdef public object _decision_ns
    cdef public object _decisions
    cdef public object _dispatch
    cdef public object _errors
    cdef public object _fill_watchers
    cdef public object _h
    cdef public object _halt_checks
    cdef public object _halted
    cdef public object _handoff_ns
    cdef public object _handoffs
    cdef public object _ids
    cdef public object _job_handlers
    cdef public object _last_quotes
    cdef public object _market_ok
    cdef public object _max_live
    cdef public object _next_halt_poll
    cdef public object _next_rehearsal
    cdef public object _next_status
    cdef public object _order_type
    cdef public object _orders_ok
    cdef public object _owner
    cdef public object _positions
    cdef public object _queue
    cdef public object _quoting
    cdef public object _reconciler
    cdef public object _rehearsal_steps
    cdef public object _rehearsers
    cdef public object _replace_cancel
    cdef public object _replace_ok
    cdef public object _replace_refused
    cdef public object _replaced_by
    cdef public object _replaces
    cdef public object _risk
    cdef public object _routes
    cdef public object _running
    cdef public object _send_watchers
    cdef public object _shadow_halts
    cdef public object _shortfall
    cdef public object _snap_last
    cdef public object _snap_timer
    cdef public object _stand_in
    cdef public object _started_ns
    cdef public object _status
    cdef public object _steps
    cdef public object _stop_deadline
    cdef public object _stop_reason
    cdef public object _stopping
    cdef public object _strategy_by_name
    cdef public object _submitted
    cdef public object _syncs
    cdef public object _thread
    cdef public object _timer_seq
    cdef public object _timers
    cdef public object _tracker
    cdef public object _user_last_ns
    cdef public object _user_ok
    cdef public object _vetting_replace
    cdef public object adapter
    cdef public object bot_config
    cdef public object config
    cdef public object counters
    cdef public object ctx
    cdef public object gateway
    cdef public object hooks
    cdef public object instruments
    cdef public object n_cancels
    cdef public object n_events
    cdef public object n_fills
    cdef public object n_frames
    cdef public object n_orders
    cdef public object n_quotes
    cdef public object n_rehearsals
    cdef public object n_replaces
    cdef public object n_trades
    cdef public object shadow_vetoes
    cdef public object strategies
    cdef public object tick_to_order
    cdef public object tick_wait
    cdef public object vetoes
    cdef dict __dict__
    cdef object __weakref__
