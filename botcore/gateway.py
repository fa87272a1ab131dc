"""The order gateway: blocking venue requests on a small worker pool, outcomes back as events.

The engine thread must never wait on the network, so every method here only enqueues work and
returns. Workers call the exchange adapter (whose REST methods block) and put the result on the
engine's sink as a ``GatewayResult`` (or ``DepthSnapshot``). A request that raised may or may not
have reached the venue, so a failed order or cancel becomes ``OrderOutcome(status=UNKNOWN)``: the
engine resolves it with a query, never with a blind resend (which could double an order).

A plain ``SimpleQueue`` feeding N threads instead of ``ThreadPoolExecutor``: the hand-off is on
the engine's tick-to-order path, and a bare ``put`` of a tuple costs a fraction of a ``Future``.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any

import msgspec

from botcore.contracts import ExchangeAdapter
from botcore.events import DepthSnapshot, EventSink, GatewayResult
from botcore.metrics import LatencyHistogram, now_ns
from botcore.model import CancelRequest, OrderOutcome, OrderRequest, OrderStatus

log = logging.getLogger(__name__)

_SECRETISH = re.compile(r"(signature|apikey|api_key|secret|x-mbx-apikey)([=:\"'\s]+)[^&\s\"',}]+", re.I)


def describe_error(exc: BaseException, limit: int = 300) -> str:
    """``Type: message`` for an outcome, truncated, with anything secret-looking redacted."""
    text = f"{type(exc).__name__}: {exc}"
    return _SECRETISH.sub(r"\1\2<redacted>", text)[:limit]


class Gateway:
    """Non-blocking front of an ``ExchangeAdapter``.

    ``queue_wait`` (hand-off -> request start) and ``round_trip[action]`` (request start -> answer)
    histograms are written by workers under a lock (never on the engine thread's path) and are
    read with ``timings()``.
    """

    def __init__(
        self,
        adapter: ExchangeAdapter,
        sink: EventSink,
        max_workers: int = 4,
        clock: Callable[[], int] = now_ns,
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be >= 1")
        self.adapter = adapter
        self._sink = sink
        self._clock = clock
        self._queue: SimpleQueue[tuple[Callable[..., None], tuple[Any, ...], int] | None] = SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self.sent = 0  # requests handed over (written by the caller thread only)
        self._done = 0  # requests finished (workers, under the lock)
        self.queue_wait = LatencyHistogram()
        self.round_trip: dict[str, LatencyHistogram] = {
            k: LatencyHistogram() for k in ("new", "cancel", "cancel_replace", "query", "depth")
        }
        self.errors = 0
        self._threads = [
            threading.Thread(target=self._work, name=f"botcore-gateway-{i}", daemon=True)
            for i in range(max_workers)
        ]
        for t in self._threads:
            t.start()

    # --- non-blocking API (engine thread) ----------------------------------------------------------
    def submit(self, order: OrderRequest) -> None:
        """Place ``order``; a ``GatewayResult`` with action "new" follows."""
        if self._closed:
            self._sink.put(GatewayResult(_closed_outcome("new", order.symbol, order.client_order_id)))
            return
        self.sent += 1
        self._queue.put((self._do_submit, (order,), self._clock()))

    def cancel(self, request: CancelRequest) -> None:
        if self._closed:
            self._sink.put(GatewayResult(_closed_outcome("cancel", request.symbol, request.client_order_id)))
            return
        self.sent += 1
        self._queue.put((self._do_cancel, (request,), self._clock()))

    def cancel_replace(self, cancel: CancelRequest, new: OrderRequest) -> None:
        """Two ``GatewayResult``s follow: the cancel's (action "cancel"), then the new order's."""
        if self._closed:
            self._sink.put(GatewayResult(_closed_outcome("cancel", cancel.symbol, cancel.client_order_id)))
            self._sink.put(GatewayResult(_closed_outcome("new", new.symbol, new.client_order_id)))
            return
        self.sent += 1
        self._queue.put((self._do_cancel_replace, (cancel, new), self._clock()))

    def query(self, symbol: str, client_order_id: str) -> None:
        if self._closed:
            self._sink.put(
                GatewayResult(_closed_outcome("query", symbol, client_order_id, OrderStatus.UNKNOWN))
            )
            return
        self.sent += 1
        self._queue.put((self._do_query, (symbol, client_order_id), self._clock()))

    def fetch_depth(self, symbol: str, limit: int = 1000) -> None:
        """A ``DepthSnapshot`` follows (``raw == b""`` if the request failed)."""
        if self._closed:
            self._sink.put(DepthSnapshot(symbol, b"", self._clock()))
            return
        self.sent += 1
        self._queue.put((self._do_depth, (symbol, limit), self._clock()))

    @property
    def in_flight(self) -> int:
        return self.sent - self._done

    def close(self, timeout: float = 5.0) -> bool:
        """Stop accepting work, let queued requests finish; True if all workers ended in time."""
        if not self._closed:
            self._closed = True
            for _ in self._threads:
                self._queue.put(None)
        deadline = self._clock() + int(timeout * 1e9)
        for t in self._threads:
            t.join(max(0.0, (deadline - self._clock()) / 1e9))
        return not any(t.is_alive() for t in self._threads)

    def timings(self) -> dict[str, dict[str, float]]:
        """Percentile summaries (µs) of queue wait and round trips, copied under the lock."""
        with self._lock:
            out = {"queue_wait": self.queue_wait.summary((50, 99))}
            for k, h in self.round_trip.items():
                if h.count:
                    out[k] = h.summary((50, 99))
        return out

    # --- workers ------------------------------------------------------------------------------------
    def _work(self) -> None:
        get = self._queue.get
        while True:
            item = get()
            if item is None:
                return
            fn, args, handoff_ns = item
            try:
                fn(handoff_ns, *args)
            except BaseException:  # a bug here must not kill the worker silently
                log.exception("gateway worker error")
            finally:
                with self._lock:
                    self._done += 1

    def _timed(self, action: str, handoff_ns: int, start_ns: int, done_ns: int) -> None:
        with self._lock:
            self.queue_wait.record(start_ns - handoff_ns)
            self.round_trip[action].record(done_ns - start_ns)

    def _failed(self, action: str, exc: BaseException) -> str:
        with self._lock:
            self.errors += 1
        msg = describe_error(exc)
        log.warning("gateway %s failed, outcome unknown: %s", action, msg)
        return msg

    def _do_submit(self, handoff_ns: int, order: OrderRequest) -> None:
        start = self._clock()
        try:
            outcome, fills = self.adapter.submit(order)
        except Exception as exc:
            outcome = OrderOutcome(
                "new",
                order.symbol,
                order.client_order_id,
                OrderStatus.UNKNOWN,
                error_msg=self._failed("new", exc),
            )
            fills = ()
        done = self._clock()
        self._timed("new", handoff_ns, start, done)
        self._sink.put(GatewayResult(_stamp(outcome, start, done), tuple(fills)))

    def _do_cancel(self, handoff_ns: int, request: CancelRequest) -> None:
        start = self._clock()
        try:
            outcome = self.adapter.cancel(request)
        except Exception as exc:
            outcome = OrderOutcome(
                "cancel",
                request.symbol,
                request.client_order_id,
                OrderStatus.UNKNOWN,
                error_msg=self._failed("cancel", exc),
            )
        done = self._clock()
        self._timed("cancel", handoff_ns, start, done)
        self._sink.put(GatewayResult(_stamp(outcome, start, done)))

    def _do_cancel_replace(self, handoff_ns: int, cancel: CancelRequest, new: OrderRequest) -> None:
        start = self._clock()
        try:
            c_out, n_out, fills = self.adapter.cancel_replace(cancel, new)
        except Exception as exc:
            msg = self._failed("cancel_replace", exc)
            c_out = OrderOutcome(
                "cancel", cancel.symbol, cancel.client_order_id, OrderStatus.UNKNOWN, error_msg=msg
            )
            n_out = OrderOutcome("new", new.symbol, new.client_order_id, OrderStatus.UNKNOWN, error_msg=msg)
            fills = ()
        done = self._clock()
        self._timed("cancel_replace", handoff_ns, start, done)
        self._sink.put(GatewayResult(_stamp(c_out, start, done)))
        self._sink.put(GatewayResult(_stamp(n_out, start, done), tuple(fills)))

    def _do_query(self, handoff_ns: int, symbol: str, cid: str) -> None:
        start = self._clock()
        try:
            outcome = self.adapter.query_order(symbol, cid)
        except Exception as exc:
            outcome = OrderOutcome(
                "query", symbol, cid, OrderStatus.UNKNOWN, error_msg=self._failed("query", exc)
            )
        done = self._clock()
        self._timed("query", handoff_ns, start, done)
        self._sink.put(GatewayResult(_stamp(outcome, start, done)))

    def _do_depth(self, handoff_ns: int, symbol: str, limit: int) -> None:
        start = self._clock()
        try:
            raw = self.adapter.depth_snapshot(symbol, limit)
        except Exception as exc:
            self._failed("depth", exc)
            raw = b""
        done = self._clock()
        self._timed("depth", handoff_ns, start, done)
        self._sink.put(DepthSnapshot(symbol, bytes(raw), done))


def _stamp(outcome: OrderOutcome, start: int, done: int) -> OrderOutcome:
    if outcome.sent_ns and outcome.done_ns:
        return outcome
    return msgspec.structs.replace(outcome, sent_ns=outcome.sent_ns or start, done_ns=outcome.done_ns or done)


def _closed_outcome(
    action: str, symbol: str, cid: str, status: OrderStatus = OrderStatus.REJECTED
) -> OrderOutcome:
    """Never sent: certainly not executed (REJECTED), except a query, which learned nothing."""
    return OrderOutcome(action, symbol, cid, status, error_msg="gateway closed")
