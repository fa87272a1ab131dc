"""botcore's built-in services plugin: reconciliation, journal, metrics and the report command.

Registered like any plugin (entry point ``services = "botcore.builtin_services"`` in the
``botcore`` group); every registration is ``trylast`` so an installed plugin can replace a job,
the command or the risk check by name.

- Jobs ``reconcile_light``, ``reconcile_full``, ``time_sync``, ``book_rebuild`` (``botcore.jobs``).
- Risk check ``reconcile_guard``: the run's ``Reconciler`` as a stateful risk check, so drift
  whose policy is ``halt`` pauses quoting (``risk: {checks: [{type: reconcile_guard}]}``).
- Command ``botcore report JOURNAL`` (``botcore.report``).
- ``botcore_startup``: restart recovery from the journal (``botcore.recovery``), a new journal
  run, the Prometheus endpoint (``metrics.port``), engine-thread handlers for ``book_rebuild``
  and PnL sampling, and a small sampler thread (sampling requests and WAL checkpoints).
- Per-event hooks: journal writes (one small transaction each), metrics, and drift triggers
  (``Reconciler.should_reconcile_now``) that run ``reconcile_full`` at once on a worker thread.
- ``botcore_shutdown``: last samples, the run's end and exit reason, endpoint closed.

The run's ``BotConfig`` is read from ``engine.bot_config`` (the app sets it before
``botcore_startup``); without it the services run with defaults: no journal, no endpoint.

Plugin config::

    plugins:
      journal: {sample_every: 1s, latency_every: 10s, checkpoint_every: 10s}
      recovery: {enabled: true, policy: cancel, grace: 10s}     # policy: cancel | adopt
      reconcile: {...}                                           # see botcore.reconcile

One run per process at a time: the per-event hooks are module functions, so the state of the
current run lives in this module's ``SERVICES`` (reset by each ``botcore_startup``).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from botcore import hookimpl
from botcore.events import JobRequest
from botcore.jobs import BOOK_REBUILD, FetchCost, Jobs, rebuild_books
from botcore.journal import Journal, PnlSample
from botcore.model import Drift, ExecutionReport, Fill, OrderOutcome, OrderRequest
from botcore.reconcile import CAUSE_OUTSIDE, ReconcilePolicy, Reconciler, TradeWatermark

__all__ = ["SERVICES", "ServiceOptions", "Services"]

log = logging.getLogger(__name__)

SAMPLE_JOB = "journal_sample"
"""JobRequest name of the engine-thread PnL/latency sampler."""


class ServiceOptions(msgspec.Struct, frozen=True):
    """The ``plugins.journal`` and ``plugins.recovery`` blocks, validated."""

    sample_every_s: float = 1.0
    latency_every_s: float = 10.0
    checkpoint_every_s: float = 10.0
    recovery: bool = True
    recovery_policy: str = "cancel"
    recovery_grace_s: float = 10.0

    @classmethod
    def from_config(cls, config: Any) -> ServiceOptions:
        from botcore.config import parse_duration

        plugins: Mapping[str, Any] = getattr(config, "plugins", None) or {}
        kwargs: dict[str, Any] = {}
        specs: dict[str, dict[str, tuple[str, Callable[[Any], Any]]]] = {
            "journal": {
                "sample_every": ("sample_every_s", parse_duration),
                "latency_every": ("latency_every_s", parse_duration),
                "checkpoint_every": ("checkpoint_every_s", parse_duration),
            },
            "recovery": {
                "enabled": ("recovery", _bool),
                "policy": ("recovery_policy", _policy),
                "grace": ("recovery_grace_s", parse_duration),
            },
        }
        for block, fields in specs.items():
            values = plugins.get(block) or {}
            for key, value in values.items():
                if key not in fields:
                    raise _config_error(config, (block,), f"unknown key {key!r}; known: {', '.join(fields)}")
                attr, parse = fields[key]
                try:
                    kwargs[attr] = parse(value)
                except (ValueError, TypeError) as exc:
                    raise _config_error(config, (block, key), str(exc)) from None
        return cls(**kwargs)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _policy(value: Any) -> str:
    if value not in ("cancel", "adopt"):
        raise ValueError(f"expected 'cancel' or 'adopt', got {value!r}")
    return str(value)


def _config_error(config: Any, loc: tuple[str, ...], message: str) -> Exception:
    error_at = getattr(config, "error_at", None)
    if error_at is None:
        return ValueError(f"plugins.{'.'.join(loc)}: {message}")
    err: Exception = error_at(("plugins", *loc), message)
    return err


def _nothing() -> None:
    """Submitted once to start an executor's worker thread from the submitting thread."""


class Services:
    """The state of one run's services (journal, metrics, reconciler, trigger worker, sampler)."""

    def __init__(self) -> None:
        self.watermark = TradeWatermark()
        self.jobs = Jobs(self.watermark, is_ours=self._is_ours, on_cost=self._on_cost)
        self.reconciler = Reconciler()
        self.options = ServiceOptions()
        self.engine: Any = None
        self.config: Any = None
        self.handle: Any = None
        self.journal: Journal | None = None
        self.metrics: Any = None
        self.adopted: set[str] = set()
        self.prefixes: tuple[str, ...] = ()
        self.errors = 0
        self._last_sample: dict[str, tuple[Any, ...]] = {}
        self._samples_seen = 0
        self._pool: ThreadPoolExecutor | None = None
        self._busy = threading.Lock()
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None

    # --- identity ------------------------------------------------------------------------------------
    def _is_ours(self, cid: str) -> bool:
        """This run's ids, orders adopted at recovery, and any journaled run's prefix."""
        h = self.handle
        if h is not None and h.is_own_order(cid):
            return True
        return cid in self.adopted or any(cid.startswith(p) for p in self.prefixes if p)

    # --- lifecycle -------------------------------------------------------------------------------------
    def start(self, engine: Any, config: Any = None) -> None:
        """Wire the run (engine built, not started; see the module docstring)."""
        from botcore.engine import EngineHandle
        from botcore.orders import ClientOrderIds

        self.stop(None, "replaced by a new run")
        self.engine, self.config = engine, config
        self.options = ServiceOptions.from_config(config) if config is not None else ServiceOptions()
        self.handle = EngineHandle(engine, config=config)
        self.adopted, self.prefixes, self.errors = set(), (), 0
        self._last_sample = {}
        self._samples_seen = 0
        self.watermark = self.jobs.watermark = TradeWatermark()
        r = self.reconciler
        r.reset()
        r.policy = ReconcilePolicy.from_config(config) if config is not None else ReconcilePolicy()
        r.is_own_order = self._is_ours
        r.is_known_order = lambda cid: engine.tracker.get(cid) is not None
        r.trigger = self._trigger
        for sym in engine.instruments:
            self.watermark.update(sym, engine.positions.last_trade_id(sym))

        journal_path = getattr(getattr(config, "run", None), "journal", None)
        if journal_path is not None:
            self._open_journal(
                Path(journal_path), engine, config, ClientOrderIds(self.handle.run_id).make(0)[:-1]
            )
        metrics = getattr(config, "metrics", None)
        if metrics is not None and metrics.port is not None:
            from botcore.prometheus import PrometheusMetrics

            self.metrics = PrometheusMetrics(
                status=engine.status, adapter=engine.adapter, book_age=self._book_age
            )
            self.metrics.serve(metrics.host, metrics.port)
        engine.on_job(BOOK_REBUILD, rebuild_books)
        engine.on_job(SAMPLE_JOB, self._sample)
        # The reconcile-now worker starts here, on the thread wiring the run: started by the engine
        # thread (whose trigger uses it) it would inherit that thread's CPU pin (``engine.cpu``).
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="botcore-reconcile-now")
        self._pool.submit(_nothing)  # the executor starts its thread at the first submit
        if self.journal is not None:
            self._stop.clear()
            self._sampler = threading.Thread(target=self._sampler_loop, name="botcore-journal", daemon=True)
            self._sampler.start()

    def _open_journal(self, path: Path, engine: Any, config: Any, prefix: str) -> None:
        from botcore.recovery import apply_plan, recover

        state = Journal.load(path)
        self.prefixes = tuple(state.prefixes)
        self.watermark.seed(state.last_trade_id)
        journal = self.journal = Journal(path)
        journal.start_run(
            name=str(getattr(config.run, "name", "botcore")),
            run_id=self.handle.run_id,
            id_prefix=prefix,
            config_text=_config_text(config),
            instruments=engine.instruments.values(),
        )
        opts = self.options
        needed = state.run is not None and (state.open_orders or not state.clean_exit)
        if opts.recovery and needed and engine.adapter is not None:
            log.warning(
                "journal %s: previous run %s %s with %d order(s) not known terminal; recovering (%s)",
                path,
                state.run,
                "ended" if state.clean_exit else "did not end cleanly",
                len(state.open_orders),
                opts.recovery_policy,
            )
            plan = recover(
                state,
                engine.adapter,
                opts.recovery_policy,
                symbols=list(engine.instruments),
                grace_ms=int(opts.recovery_grace_s * 1000),
            )
            adopted = apply_plan(
                plan,
                engine,
                journal,
                strategies=[s.name for s in engine.strategies],
                journal_orders=state.open_orders,
            )
            self.adopted.update(adopted)
            for fill in plan.fills:
                self.watermark.update(fill.symbol, fill.trade_id)
            foreign = [d for d in plan.drifts if d.cause == CAUSE_OUTSIDE]
            if foreign:
                self.reconciler.review("recovery", foreign)
        journal.record_balances(engine.positions.balances().values(), "startup")

    def stop(self, engine: Any, reason: str) -> None:
        """Close the run: last samples, end row, endpoint and threads down (idempotent)."""
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join(timeout=5)
            self._sampler = None
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        journal, self.journal = self.journal, None
        if journal is not None:
            try:
                if self.engine is not None:
                    self._write_samples(journal, self.engine, force=True)
                    journal.record_balances(self.engine.positions.balances().values(), "shutdown")
                journal.end_run(reason)
            except sqlite3.Error:
                log.exception("journal: could not record the end of the run")
            journal.close()
        if self.metrics is not None:
            self.metrics.close()
            self.metrics = None
        self.engine = self.handle = None

    # --- background work -------------------------------------------------------------------------------
    def _sampler_loop(self) -> None:
        """Ask the engine thread for PnL samples; checkpoint the WAL here, off the engine thread."""
        opts = self.options
        engine, journal = self.engine, self.journal
        since_ckpt = 0.0
        while not self._stop.wait(opts.sample_every_s):
            if engine is not None:
                engine.put(JobRequest(SAMPLE_JOB))
            since_ckpt += opts.sample_every_s
            if journal is not None and since_ckpt >= opts.checkpoint_every_s:
                since_ckpt = 0.0
                try:
                    journal.checkpoint()
                except sqlite3.Error:
                    log.warning("journal checkpoint failed", exc_info=True)

    def _trigger(self, reason: str) -> None:
        """Run ``reconcile_full`` now on a worker thread; at most one at a time."""
        pool = self._pool
        if self.handle is None or self.handle.adapter is None or pool is None:
            return
        if not self._busy.acquire(blocking=False):
            return  # one is running: it or the next scheduled run will see the drift
        handle = self.handle

        def run() -> None:
            try:
                self.jobs.reconcile_full(handle, {"label": "reconcile_now"})
            except Exception:
                log.exception("immediate reconcile (%s) failed", reason)
            finally:
                self._busy.release()

        try:
            pool.submit(run)
        except RuntimeError:  # shutting down
            self._busy.release()

    def _on_cost(self, cost: FetchCost) -> None:
        if self.metrics is not None:
            self.metrics.fetch_cost(cost)

    def _book_age(self, symbol: str) -> float | None:
        engine = self.engine
        if engine is None:
            return None
        age_ns = engine.ctx.market_age_ns(symbol)  # one int read; the engine writes it
        return None if age_ns >= 1 << 62 else age_ns / 1e9

    # --- engine thread -----------------------------------------------------------------------------------
    def _sample(self, engine: Any, payload: Mapping[str, Any]) -> None:
        if self.journal is not None:
            self._guard("sample", self._write_samples, self.journal, engine)

    def _write_samples(
        self, journal: Journal, engine: Any, force: bool = False, latency: bool = True
    ) -> None:
        samples = []
        pos = engine.positions
        for sym, inst in engine.instruments.items():
            try:
                bp, _, ap, _ = engine.book_sync(sym).top()
            except KeyError:
                bp = ap = 0
            mid = inst.ticks_to_price(bp + ap) / 2 if bp > 0 and ap > 0 else None
            qty = pos.position(sym)
            unrealized = pos.unrealized_pnl(sym, mid) if mid is not None else Decimal(0)
            s = PnlSample(sym, qty, pos.realized_pnl(sym), unrealized, pos.fees(sym), mid)
            key = (s.position, s.realized, s.fees, s.mid)
            if force or self._last_sample.get(sym) != key:
                self._last_sample[sym] = key
                samples.append(s)
        journal.record_pnl(samples)
        if not latency:
            return
        every = max(1, int(round(self.options.latency_every_s / self.options.sample_every_s)))
        self._samples_seen += 1
        if force or self._samples_seen % every == 0:
            hist = getattr(engine, "tick_to_order", None)
            if hist is not None and hist.count:
                journal.record_latency("tick_to_order", hist.summary())

    def _guard(self, what: str, fn: Callable[..., Any], *args: Any) -> None:
        """A journal or metrics failure must never stop trading: count it, log the first ones."""
        try:
            fn(*args)
        except Exception:
            self.errors += 1
            if self.errors <= 5 or self.errors % 1000 == 0:
                log.exception("services: %s failed (%d failures so far)", what, self.errors)

    def order_submitted(self, order: OrderRequest) -> None:
        if self.journal is not None:
            self._guard("journal order", self.journal.record_order, order)
        if self.metrics is not None:
            self._guard("metrics order", self.metrics.order_submitted, order)

    def order_outcome(self, outcome: OrderOutcome) -> None:
        if self.journal is not None:
            self._guard("journal outcome", self.journal.record_outcome, outcome)
        if self.metrics is not None:
            self._guard("metrics outcome", self.metrics.order_outcome, outcome)
        if self.engine is not None:
            self.reconciler.should_reconcile_now(outcome)

    def order_filled(self, fill: Fill) -> None:
        self.watermark.update(fill.symbol, fill.trade_id)
        if self.journal is not None:
            self._guard("journal fill", self.journal.record_fill, fill)
        if self.metrics is not None:
            self._guard("metrics fill", self.metrics.order_filled, fill)
        if self.engine is not None:
            self.reconciler.should_reconcile_now(fill)
            if self.journal is not None:
                self._guard("pnl sample", self._write_samples, self.journal, self.engine, False, False)

    def order_cancelled(self, report: ExecutionReport) -> None:
        if self.journal is not None:
            self._guard("journal cancel", self.journal.record_cancel, report)
        if self.metrics is not None:
            self._guard("metrics cancel", self.metrics.order_cancelled, report)
        if self.engine is not None:
            self.reconciler.should_reconcile_now(report)

    def trust_changed(self, stream: str, trusted: bool, reason: str) -> None:
        if self.metrics is not None:
            self._guard("metrics trust", self.metrics.trust_changed, stream, trusted, reason)
        if self.engine is not None:
            self.reconciler.should_reconcile_now((stream, trusted, reason))

    def reconcile_report(self, job: str, drifts: Sequence[Drift]) -> None:
        result = self.reconciler.review(job, drifts)
        if self.journal is not None:
            self._guard("journal drifts", self.journal.record_drifts, job, list(drifts), result.actions)
            if self.engine is not None:
                self._guard(
                    "journal balances",
                    self.journal.record_balances,
                    self.engine.positions.balances().values(),
                    job,
                )
        if self.metrics is not None:
            self._guard("metrics drifts", self.metrics.reconcile_report, job, drifts)


def _config_text(config: Any) -> str:
    """The config file as written (only ``$env:`` references, never secrets), else a dump."""
    source = getattr(config, "source", None)
    if source:
        try:
            return Path(source).read_text(encoding="utf-8")
        except OSError:
            pass
    try:
        import yaml

        return str(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    except Exception:
        return ""


SERVICES = Services()
"""The current run's services (one run per process at a time)."""


# ------------------------------------------------------------------------------------------------
# Hook implementations
# ------------------------------------------------------------------------------------------------


@hookimpl(trylast=True)
def botcore_register_jobs(register: Any) -> None:
    SERVICES.jobs.register(register)


@hookimpl(trylast=True)
def botcore_register_risk_checks(register: Any) -> None:
    def reconcile_guard(params: Mapping[str, Any]) -> Reconciler:
        if params:
            raise ValueError(
                f"reconcile_guard takes no params (policy lives in plugins.reconcile), got {sorted(params)}"
            )
        return SERVICES.reconciler

    register("reconcile_guard", reconcile_guard)


@hookimpl(trylast=True)
def botcore_register_commands(register: Any) -> None:
    from botcore.report import setup_command

    register("report", setup_command)


@hookimpl
def botcore_startup(engine: Any) -> None:
    config = getattr(engine, "bot_config", None)
    if config is None:
        log.info("services: engine.bot_config is not set; running without journal and metrics endpoint")
    SERVICES.start(engine, config)


@hookimpl
def botcore_shutdown(engine: Any, reason: str) -> None:
    SERVICES.stop(engine, reason)


@hookimpl
def botcore_order_submitted(order: OrderRequest) -> None:
    SERVICES.order_submitted(order)


@hookimpl
def botcore_order_outcome(outcome: OrderOutcome) -> None:
    SERVICES.order_outcome(outcome)


@hookimpl
def botcore_order_filled(fill: Fill) -> None:
    SERVICES.order_filled(fill)


@hookimpl
def botcore_order_cancelled(report: ExecutionReport) -> None:
    SERVICES.order_cancelled(report)


@hookimpl
def botcore_trust_changed(stream: str, trusted: bool, reason: str) -> None:
    SERVICES.trust_changed(stream, trusted, reason)


@hookimpl
def botcore_reconcile_report(job: str, drifts: Sequence[Any]) -> None:
    SERVICES.reconcile_report(job, drifts)
