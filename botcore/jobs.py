"""Built-in scheduled jobs: reconciliation, time sync, book rebuild (scheduler threads only).

Every job has the ``job(engine_handle, params)`` shape of ``botcore_register_jobs``: it runs on an
APScheduler worker thread, does its blocking REST work through ``engine_handle.adapter`` and
hands the result to the engine with ``engine_handle.put(event)``; it never touches engine state.

- ``reconcile_light``: ``adapter.account_snapshot()`` -> ``ReconcileSnapshot(job, snapshot)``.
- ``reconcile_full``: the same plus ``adapter.my_trades(symbol, from_id=watermark + 1)`` per
  symbol; the trades of our own orders travel in ``ReconcileSnapshot.fills`` (the engine
  de-duplicates them by trade id), so a fill the user stream lost still reaches the position.
- ``time_sync``: ``adapter.server_time_ms()`` measured NTP-style ->
  ``JobRequest("clock_skew", {"skew_ms": local_minus_venue, "rtt_ms": ..., "server_ms": ...})``
  (the engine's built-in handler feeds ``StrategyContext.clock_skew_ms``).
- ``book_rebuild``: ``JobRequest("book_rebuild", {"symbols": [...], "reason": ...})``; the
  engine-thread handler ``rebuild_books`` (registered with ``engine.on_job`` at start-up) resets
  each book, so the engine's own sync fetches a fresh depth snapshot through its rate-limited
  path. An unsolicited ``DepthSnapshot`` would be ignored by a live book, hence the detour.
  Quoting on the symbol pauses until the book is live again.

Each REST call is measured (wall time, and REST weight when the adapter exposes its limiter:
``adapter.used_weight()`` or ``adapter.limiter.used("REQUEST_WEIGHT", window)``) into
``FetchCost`` records: the raw material of the reconcile-cost benchmark and of the metrics. The
weight is the change of the shared window across the call, so concurrent requests of the gateway
can inflate it (an upper bound); a window that rolled over during the call reports the new count.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec

from botcore.events import JobRequest, ReconcileSnapshot
from botcore.model import Fill
from botcore.reconcile import TradeWatermark

__all__ = [
    "BOOK_REBUILD",
    "CLOCK_SKEW",
    "JOB_NAMES",
    "FetchCost",
    "Jobs",
    "rebuild_books",
    "used_weight",
]

log = logging.getLogger(__name__)

CLOCK_SKEW = "clock_skew"
"""JobRequest name the engine handles by setting its clock-skew estimate."""
BOOK_REBUILD = "book_rebuild"
"""JobRequest name handled by ``rebuild_books`` on the engine thread."""
JOB_NAMES = ("reconcile_light", "reconcile_full", "time_sync", "book_rebuild")


class FetchCost(msgspec.Struct, frozen=True):
    """One measured REST call of a job."""

    job: str
    call: str
    seconds: float
    weight: int | None
    ok: bool
    time_ms: int


def used_weight(adapter: Any) -> int | None:
    """The adapter's current REQUEST_WEIGHT window count, or None if it does not expose one."""
    fn = getattr(adapter, "used_weight", None)
    try:
        if callable(fn):
            value = fn()
            return None if value is None else int(value)
        limiter = getattr(adapter, "limiter", None)
        if limiter is None or not hasattr(limiter, "used"):
            return None
        for kind, label, _limit in getattr(limiter, "limits", ()):
            if kind == "REQUEST_WEIGHT":
                return int(limiter.used(kind, label))
    except Exception:  # a metrics nicety must never fail a job
        log.debug("could not read the adapter's used weight", exc_info=True)
    return None


class Jobs:
    """The built-in jobs, sharing a trade-id watermark and a bounded cost log.

    :param watermark: highest trade id applied per symbol (the engine side keeps it current).
    :param is_ours: tells our client order ids from foreign ones for ``reconcile_full``; default
        ``engine_handle.is_own_order`` (this run's ids).
    :param on_cost: called (on the job thread) with every ``FetchCost`` (metrics).
    :param history: how many cost records to keep.
    """

    def __init__(
        self,
        watermark: TradeWatermark | None = None,
        *,
        is_ours: Callable[[str], bool] | None = None,
        on_cost: Callable[[FetchCost], None] | None = None,
        history: int = 1024,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.watermark = watermark or TradeWatermark()
        self.is_ours = is_ours
        self.on_cost = on_cost
        self._clock = clock
        self._lock = threading.Lock()
        self._costs: deque[FetchCost] = deque(maxlen=history)

    def register(self, register: Callable[[str, Callable[..., Any]], None]) -> None:
        """Register the four jobs under their ``JOB_NAMES``."""
        register("reconcile_light", self.reconcile_light)
        register("reconcile_full", self.reconcile_full)
        register("time_sync", self.time_sync)
        register("book_rebuild", self.book_rebuild)

    def costs(self, job: str | None = None) -> list[FetchCost]:
        with self._lock:
            return [c for c in self._costs if job is None or c.job == job]

    # --- measuring ---------------------------------------------------------------------------------
    def _fetch(self, job: str, call: str, adapter: Any, fn: Callable[..., Any], *args: Any) -> Any:
        w0 = used_weight(adapter)
        t0 = self._clock()
        ok = False
        try:
            result = fn(*args)
            ok = True
            return result
        finally:
            seconds = self._clock() - t0
            w1 = used_weight(adapter)
            weight = None if w0 is None or w1 is None else (w1 - w0 if w1 >= w0 else w1)
            cost = FetchCost(job, call, seconds, weight, ok, time.time_ns() // 1_000_000)
            with self._lock:
                self._costs.append(cost)
            if self.on_cost is not None:
                try:
                    self.on_cost(cost)
                except Exception:
                    log.exception("cost callback failed")

    # --- the jobs ----------------------------------------------------------------------------------
    def reconcile_light(self, handle: Any, params: Mapping[str, Any]) -> None:
        """Balances and open orders from REST, handed to the engine for a fenced reset."""
        job = str(params.get("label") or "reconcile_light")
        adapter = handle.adapter
        snapshot = self._fetch(job, "account_snapshot", adapter, adapter.account_snapshot)
        handle.put(ReconcileSnapshot(job, snapshot))

    def reconcile_full(self, handle: Any, params: Mapping[str, Any]) -> None:
        """``reconcile_light`` plus the venue's trades since the last one applied (missed fills).

        Trades are fetched *before* the account snapshot, so every trade the snapshot's balances
        reflect is in the event (a trade in between is caught by the next run; the cache's
        fencing keeps the snapshot from undoing newer stream state).
        """
        job = str(params.get("label") or "reconcile_full")
        adapter = handle.adapter
        symbols: Sequence[str] = params.get("symbols") or getattr(handle, "symbols", ()) or ()
        is_ours = self.is_ours or getattr(handle, "is_own_order", None)
        fills: list[Fill] = []
        for symbol in symbols:
            last = self.watermark.get(symbol)
            # No watermark yet: from_id=0 asks for the most recent trades; only ours are kept.
            from_id = last + 1 if last >= 0 else 0
            trades = self._fetch(job, f"my_trades:{symbol}", adapter, adapter.my_trades, symbol, from_id)
            for fill in trades:
                if fill.trade_id <= last:
                    continue
                if is_ours is not None and not is_ours(fill.client_order_id):
                    continue
                fills.append(fill)
            if trades:
                # Everything fetched is now known: ours travel in the event, the rest is foreign.
                self.watermark.update(symbol, max(f.trade_id for f in trades))
        snapshot = self._fetch(job, "account_snapshot", adapter, adapter.account_snapshot)
        handle.put(ReconcileSnapshot(job, snapshot, tuple(fills)))

    def time_sync(self, handle: Any, params: Mapping[str, Any]) -> None:
        """Measure local-minus-venue clock offset from the midpoint of the round trip."""
        adapter = handle.adapter
        t0 = time.time_ns()
        server_ms = self._fetch("time_sync", "server_time", adapter, adapter.server_time_ms)
        t1 = time.time_ns()
        local_mid_ms = (t0 + t1) / 2 / 1e6
        payload = {
            "skew_ms": round(local_mid_ms - server_ms),
            "rtt_ms": (t1 - t0) / 1e6,
            "server_ms": int(server_ms),
        }
        handle.put(JobRequest(CLOCK_SKEW, payload))

    def book_rebuild(self, handle: Any, params: Mapping[str, Any]) -> None:
        """Ask the engine to rebuild books from a fresh depth snapshot (see the module docstring)."""
        symbols = list(params.get("symbols") or getattr(handle, "symbols", ()) or ())
        reason = str(params.get("reason") or "scheduled book rebuild")
        handle.put(JobRequest(BOOK_REBUILD, {"symbols": symbols, "reason": reason}))


def rebuild_books(engine: Any, payload: Mapping[str, Any]) -> None:
    """Engine-thread handler for ``JobRequest("book_rebuild")``: reset each named book.

    ``BookSync.reset`` clears the book and marks it untrusted (quoting pauses); the next depth
    frame makes the engine request a snapshot, and the book is live again once it connects.
    """
    reason = str(payload.get("reason") or "book rebuild")
    for symbol in payload.get("symbols") or ():
        try:
            sync = engine.book_sync(symbol)
        except KeyError:
            log.warning("book rebuild: unknown symbol %s", symbol)
            continue
        sync.reset(reason)
