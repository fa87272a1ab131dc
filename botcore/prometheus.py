"""Prometheus metrics: off by default, served on ``metrics.host:metrics.port`` when configured.

Two feeds, both off the order-book update loop:

- per-event hooks (orders, outcomes, fills, cancels, trust changes, reconcile reports) and job
  costs increment counters and histograms as they happen (label children are cached, so a hook
  costs a dict lookup and a locked add);
- everything the engine already counts is read at *scrape time* from ``engine.status()`` (a
  copy the engine publishes for other threads) and from the adapter's rate limiter, by a custom
  collector: no polling thread, no second copy of the engine's counters.

Each ``PrometheusMetrics`` has its own ``CollectorRegistry`` (tests and several runs in one
process do not collide). Metric names are prefixed ``botcore_``; money-like values are exported
as floats, which is fine for dashboards and never used for trading.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from botcore.model import Drift, ExecutionReport, Fill, OrderOutcome, OrderRequest

__all__ = ["LATENCY_BUCKETS_S", "PrometheusMetrics", "rate_limits"]

log = logging.getLogger(__name__)

LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1.0,
    2.0,
    5.0,
    float("inf"),
)
"""Order round-trip buckets: loopback paper venue (sub-ms) to a slow production REST call."""


def _float(value: Any) -> float:
    try:
        return float(Decimal(str(value)))
    except (InvalidOperation, ValueError, TypeError):
        return 0.0


def rate_limits(adapter: Any) -> list[tuple[str, str, int, int]]:
    """``(kind, window, used, limit)`` per rate-limit window the adapter exposes.

    Reads ``adapter.rate_limits()`` if the adapter has it, else a Binance-style
    ``adapter.limiter`` with ``limits`` and ``used(kind, window)``; empty when neither exists.
    """
    fn = getattr(adapter, "rate_limits", None)
    if callable(fn):
        return [(str(k), str(w), int(u), int(lim)) for k, w, u, lim in fn()]
    limiter = getattr(adapter, "limiter", None)
    if limiter is None or not hasattr(limiter, "used"):
        return []
    out = []
    for kind, window, limit in getattr(limiter, "limits", ()):
        try:
            out.append((str(kind), str(window), int(limiter.used(kind, window)), int(limit)))
        except KeyError:
            continue
    return out


class _StatusCollector(Collector):
    """Turns ``engine.status()`` and the adapter's rate limiter into metric families at scrape time."""

    def __init__(self, owner: PrometheusMetrics) -> None:
        self._owner = owner

    def collect(self) -> Iterator[Metric]:
        o = self._owner
        st: Mapping[str, Any] = {}
        if o.status is not None:
            try:
                st = o.status() or {}
            except Exception:
                log.exception("metrics: engine.status() failed")
        yield from self._engine(st)
        yield from self._books(st)
        yield from self._limits()

    def _engine(self, st: Mapping[str, Any]) -> Iterator[Metric]:
        for key, help_ in (
            ("events", "Events processed by the engine thread."),
            ("frames", "Market frames processed."),
            ("quotes", "Quote decisions made by strategies."),
            ("orders", "Orders handed to the gateway (engine count)."),
            ("cancels", "Cancels sent (engine count)."),
            ("fills", "Fills applied (engine count)."),
            ("illegal_transitions", "Order status changes the tracker refused."),
        ):
            if key in st:
                yield CounterMetricFamily(f"botcore_engine_{key}", help_, value=float(st[key]))
        for key, help_ in (
            ("live_orders", "Orders the venue may have (live, pending, unknown)."),
            ("unknown_orders", "Orders whose fate is unknown (being queried)."),
            ("backlog", "Events waiting in the engine queue."),
        ):
            if key in st:
                yield GaugeMetricFamily(f"botcore_{key}", help_, value=float(st[key]))
        if "halted" in st:
            yield GaugeMetricFamily(
                "botcore_halted",
                "1 while a risk check or reconciliation halts quoting.",
                value=1.0 if st["halted"] else 0.0,
            )
        if "user_trusted" in st:
            yield GaugeMetricFamily(
                "botcore_user_stream_trusted",
                "1 while the private stream is trusted.",
                value=1.0 if st["user_trusted"] else 0.0,
            )
        if "pnl" in st:
            yield GaugeMetricFamily(
                "botcore_pnl",
                "Realized + unrealized - fees, in quote (display only).",
                value=_float(st["pnl"]),
            )
        vetoes = CounterMetricFamily("botcore_risk_vetoes", "Orders vetoed, by risk check.", labels=["check"])
        for name, n in sorted((st.get("vetoes") or {}).items()):
            vetoes.add_metric([str(name)], float(n))
        yield vetoes
        counters = CounterMetricFamily("botcore_engine_counter", "Engine counters by name.", labels=["name"])
        for name, n in sorted((st.get("counters") or {}).items()):
            counters.add_metric([str(name)], float(n))
        yield counters
        position = GaugeMetricFamily(
            "botcore_position", "Net position in base units (display only).", labels=["symbol"]
        )
        for sym, qty in sorted((st.get("position") or {}).items()):
            position.add_metric([str(sym)], _float(qty))
        yield position
        trusted = GaugeMetricFamily(
            "botcore_quoting", "1 while quoting is allowed on the symbol.", labels=["symbol"]
        )
        for sym, ok in sorted((st.get("trusted") or {}).items()):
            trusted.add_metric([str(sym)], 1.0 if ok else 0.0)
        yield trusted
        lat = st.get("latency_us") or {}
        if lat.get("count"):
            t2o = GaugeMetricFamily(
                "botcore_tick_to_order_seconds", "Tick-to-order latency quantiles.", labels=["quantile"]
            )
            for q, key in (("0.5", "p50"), ("0.99", "p99"), ("1", "max")):
                if key in lat:
                    t2o.add_metric([q], float(lat[key]) / 1e6)
            yield t2o
            yield CounterMetricFamily(
                "botcore_tick_to_order_samples", "Orders timed from a tick.", value=float(lat.get("count", 0))
            )

    def _books(self, st: Mapping[str, Any]) -> Iterator[Metric]:
        books: Mapping[str, Mapping[str, Any]] = st.get("books") or {}
        trusted = GaugeMetricFamily(
            "botcore_book_trusted", "1 while the order book is in sync.", labels=["symbol"]
        )
        gaps = CounterMetricFamily("botcore_book_gaps", "Depth sequence gaps detected.", labels=["symbol"])
        resyncs = CounterMetricFamily(
            "botcore_book_resyncs", "Book rebuilds (gaps, reconnects, scheduled).", labels=["symbol"]
        )
        snaps = CounterMetricFamily("botcore_book_snapshots", "Depth snapshots applied.", labels=["symbol"])
        age = GaugeMetricFamily(
            "botcore_book_age_seconds", "Seconds since the last market frame.", labels=["symbol"]
        )
        for sym, b in sorted(books.items()):
            trusted.add_metric([sym], 1.0 if b.get("trusted") else 0.0)
            gaps.add_metric([sym], float(b.get("gaps", 0)))
            resyncs.add_metric([sym], float(b.get("resyncs", 0)))
            snaps.add_metric([sym], float(b.get("snapshots", 0)))
            if "age_ms" in b:
                age.add_metric([sym], float(b["age_ms"]) / 1e3)
        if self._owner.book_age is not None:
            for sym in sorted(books):
                if "age_ms" in books[sym]:
                    continue
                try:
                    seconds = self._owner.book_age(sym)
                except Exception:
                    continue
                if seconds is not None:
                    age.add_metric([sym], float(seconds))
        yield from (trusted, gaps, resyncs, snaps, age)

    def _limits(self) -> Iterator[Metric]:
        if self._owner.adapter is None:
            return
        try:
            windows = rate_limits(self._owner.adapter)
        except Exception:
            log.exception("metrics: reading the adapter's rate limits failed")
            return
        used = GaugeMetricFamily(
            "botcore_rate_limit_used", "Requests/weight used in the window.", labels=["kind", "window"]
        )
        limit = GaugeMetricFamily(
            "botcore_rate_limit_limit", "The venue's limit for the window.", labels=["kind", "window"]
        )
        headroom = GaugeMetricFamily(
            "botcore_rate_limit_headroom",
            "Fraction of the window still available (0..1).",
            labels=["kind", "window"],
        )
        for kind, window, u, lim in windows:
            used.add_metric([kind, window], float(u))
            limit.add_metric([kind, window], float(lim))
            headroom.add_metric([kind, window], max(0.0, 1.0 - u / lim) if lim else 0.0)
        yield from (used, limit, headroom)


class PrometheusMetrics:
    """botcore's metrics registry, its hook feeders and its HTTP endpoint.

    :param status: ``engine.status`` (read at scrape time; must be thread-safe).
    :param adapter: the exchange adapter, for rate-limit headroom (see ``rate_limits``).
    :param book_age: ``symbol -> seconds since the last market frame`` when ``status()`` has no
        ``books[symbol]["age_ms"]``.
    :param process: also export the standard process metrics (CPU, memory, fds).
    """

    def __init__(
        self,
        *,
        status: Callable[[], Mapping[str, Any]] | None = None,
        adapter: Any = None,
        book_age: Callable[[str], float | None] | None = None,
        process: bool = True,
    ) -> None:
        self.status = status
        self.adapter = adapter
        self.book_age = book_age
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        if process:
            from prometheus_client import PlatformCollector, ProcessCollector

            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
        self.orders = Counter(
            "botcore_orders_submitted", "Orders handed to the gateway.", ["symbol", "side"], registry=r
        )
        self.outcomes = Counter(
            "botcore_order_outcomes", "Gateway outcomes.", ["action", "status"], registry=r
        )
        self.fills = Counter("botcore_fills", "Fills.", ["symbol", "side", "liquidity"], registry=r)
        self.fill_volume = Counter(
            "botcore_fill_volume", "Filled base quantity.", ["symbol", "side"], registry=r
        )
        self.fill_notional = Counter(
            "botcore_fill_notional", "Filled quote notional.", ["symbol", "side"], registry=r
        )
        self.cancels = Counter(
            "botcore_orders_cancelled",
            "Orders that left the book unfilled.",
            ["symbol", "status"],
            registry=r,
        )
        self.untrusted = Counter(
            "botcore_stream_untrusted",
            "Times a stream became untrustworthy (gaps, reconnects, stalls).",
            ["stream"],
            registry=r,
        )
        self.stream_trusted = Gauge(
            "botcore_stream_trusted", "1 while the stream is trusted.", ["stream"], registry=r
        )
        self.drifts = Counter(
            "botcore_drifts", "Reconciliation drift records.", ["field", "cause"], registry=r
        )
        self.reconciles = Counter("botcore_reconciles", "Reconciliations applied.", ["job"], registry=r)
        self.latency = Histogram(
            "botcore_order_roundtrip_seconds",
            "Gateway request round trip (sent to answer).",
            ["action"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.fetch_seconds = Histogram(
            "botcore_job_fetch_seconds",
            "REST calls of scheduled jobs.",
            ["job", "call"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.fetch_weight = Counter(
            "botcore_job_fetch_weight", "REST weight used by scheduled jobs.", ["job"], registry=r
        )
        self.fetch_errors = Counter(
            "botcore_job_fetch_errors", "Failed REST calls of scheduled jobs.", ["job"], registry=r
        )
        r.register(_StatusCollector(self))
        self._children: dict[tuple[Any, ...], Any] = {}
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.address: tuple[str, int] | None = None

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    # --- hook feeders (engine thread) --------------------------------------------------------------
    def order_submitted(self, order: OrderRequest) -> None:
        self._child(self.orders, order.symbol, str(order.side)).inc()

    def order_outcome(self, outcome: OrderOutcome) -> None:
        self._child(self.outcomes, outcome.action, str(outcome.status)).inc()
        if outcome.sent_ns and outcome.done_ns and outcome.done_ns >= outcome.sent_ns:
            self._child(self.latency, outcome.action).observe((outcome.done_ns - outcome.sent_ns) / 1e9)

    def order_filled(self, fill: Fill) -> None:
        side = str(fill.side)
        self._child(self.fills, fill.symbol, side, "maker" if fill.is_maker else "taker").inc()
        self._child(self.fill_volume, fill.symbol, side).inc(float(fill.qty))
        self._child(self.fill_notional, fill.symbol, side).inc(float(fill.qty * fill.price))

    def order_cancelled(self, report: ExecutionReport) -> None:
        self._child(self.cancels, report.symbol, str(report.status)).inc()

    def trust_changed(self, stream: str, trusted: bool, reason: str) -> None:
        self._child(self.stream_trusted, stream).set(1.0 if trusted else 0.0)
        if not trusted:
            self._child(self.untrusted, stream).inc()

    def reconcile_report(self, job: str, drifts: Sequence[Drift]) -> None:
        self._child(self.reconciles, job).inc()
        for d in drifts:
            self._child(self.drifts, d.field, d.cause).inc()

    # --- job costs (scheduler threads) --------------------------------------------------------------
    def fetch_cost(self, cost: Any) -> None:
        """A ``botcore.jobs.FetchCost``."""
        call = str(cost.call).split(":", 1)[0]  # my_trades:BTCUSDT -> my_trades (bounded labels)
        self.fetch_seconds.labels(cost.job, call).observe(float(cost.seconds))
        if cost.weight:
            self.fetch_weight.labels(cost.job).inc(cost.weight)
        if not cost.ok:
            self.fetch_errors.labels(cost.job).inc()

    # --- endpoint -------------------------------------------------------------------------------------
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Serve ``/metrics`` on ``host:port`` (0 = a free port) from a daemon thread."""
        if self._server is not None:
            raise RuntimeError("metrics endpoint already running")
        server, thread = start_http_server(port, addr=host, registry=self.registry)
        self._server, self._thread = server, thread
        self.address = (host, int(server.server_port))
        log.info("metrics on http://%s:%d/metrics", host, self.address[1])
        return self.address

    def close(self) -> None:
        """Stop the endpoint (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def render(self) -> bytes:
        """The exposition text (what a scrape returns), without HTTP."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
