"""``botcore run`` and ``botcore check``: assemble a run from the config and the loaded plugins.

``run`` wires, in order: registry -> (paper) embedded venue -> exchange adapter -> instruments ->
strategies and risk chain (+ the run's ``Reconciler`` as ``reconcile_guard``) -> engine (+ gateway)
with the REST account snapshot -> scheduler -> ``botcore_startup`` (restart recovery) -> the
start-up drifts through ``botcore_reconcile_report`` (a foreign open order halts quoting); then
streams start and the main thread only waits, prints a status line and handles signals. Every way
out (duration, end of a replay, SIGINT, SIGTERM, an error) goes through the same shutdown: the
engine cancels open orders and waits for their outcomes (bounded), then the scheduler, gateway,
adapter and venue are closed, ``botcore_shutdown`` runs and a summary is printed.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

from botcore.config import BotConfig, ConfigError, validate_against_registry
from botcore.contracts import VenueEndpoints
from botcore.engine import Engine, EngineConfig, EngineHandle, RiskLink
from botcore.journal import Journal
from botcore.model import BookTop, Drift, Instrument
from botcore.orders import ClientOrderIds
from botcore.plugins import Hooks, Registry, collect_registry
from botcore.progress import DriftTally, VenueWatch, money, quiet_libraries, run_summary
from botcore.reconcile import Reconciler
from botcore.scheduler import Scheduler

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2

REPLAY_END_GRACE_S = 1.0
"""Wall seconds between the venue's "replay finished" and the stop: answers and fills on their way land."""
VENUE_POLL_S = 0.5
"""How often a venue with an end (the paper exchange) is asked whether it finished."""

_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def make_run_id(now_s: int | None = None) -> str:
    """Base-36 start second (6 chars until 2039, then 7): unique per run, short for client ids."""
    n = int(time.time() if now_s is None else now_s)
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = _B36[r] + out
    return out or "0"


def fresh_run_id(journal: str | Path | None, now_s: int | None = None) -> str:
    """``make_run_id``, moved past every id a run in ``journal`` used.

    Ids are start seconds: a bot restarted within the second its killed run started would send
    that run's client order ids again (the venue takes an id once its order closed; an adopted
    order would clash with a new one in the tracker).
    """
    n = int(time.time() if now_s is None else now_s)
    if journal is None:
        return make_run_id(n)
    used = set(Journal.load(journal).prefixes)
    while ClientOrderIds(make_run_id(n)).make(0)[:-1] in used:
        n += 1
    return make_run_id(n)


def _seconds(value: timedelta | float | None) -> float | None:
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


# ------------------------------------------------------------------------------------------------
# Building blocks shared by run and check
# ------------------------------------------------------------------------------------------------


def _registry(pm: Any, args: Any) -> Registry:
    registry = getattr(args, "registry", None)
    return registry if registry is not None else collect_registry(pm)


def _start_venue(config: BotConfig, hooks: Hooks) -> VenueEndpoints | None:
    if config.exchange.mode != "paper":
        return None
    venue = hooks.start_venue(config)
    if venue is None:
        raise ConfigError(
            f"exchange.mode is 'paper' but no installed plugin starts a paper venue for exchange "
            f"{config.exchange.name!r}; install botcore-exchange-paper "
            "(pip install ./plugins/botcore-exchange-paper) or use mode: testnet",
            source=config.source,
            key="exchange.mode",
            line=config.line_of(("exchange", "mode")),
        )
    return venue


def build_strategies(
    config: BotConfig, registry: Registry, instruments: Mapping[str, Instrument]
) -> list[Any]:
    """Call each strategy factory; a bad parameter becomes a ConfigError at its YAML key."""
    out = []
    for i, sc in enumerate(config.strategies):
        symbols = sc.symbols or config.exchange.symbols
        try:
            strat = registry.strategies[sc.type](
                sc.name, dict(sc.params), {s: instruments[s] for s in symbols}
            )
        except ConfigError as exc:
            raise config.error_at(("strategies", i, "params"), exc) from None
        except (ValueError, TypeError, KeyError) as exc:
            raise config.error_at(("strategies", i, "params"), exc) from None
        out.append(strat)
    return out


def build_risk_chain(config: BotConfig, registry: Registry) -> list[RiskLink]:
    out = []
    for i, rc in enumerate(config.risk.checks):
        try:
            check = registry.risk_checks[rc.type](dict(rc.params))
        except ConfigError as exc:
            raise config.error_at(("risk", "checks", i, "params"), exc) from None
        except (ValueError, TypeError, KeyError) as exc:
            raise config.error_at(("risk", "checks", i, "params"), exc) from None
        out.append(RiskLink(rc.name or rc.type, check, bool(rc.shadow)))
    return out


RECONCILE_GUARD = "reconcile_guard"


def with_reconcile_guard(
    risk: list[RiskLink], registry: Registry
) -> tuple[list[RiskLink], Reconciler | None]:
    """The risk chain with the run's ``Reconciler`` in it, and that reconciler.

    The reconciler applies REST snapshots under the drift policy (``plugins.reconcile``); it must
    also sit in the risk chain, since that is how a "halt" drift pauses quoting. A chain that
    does not list ``reconcile_guard`` gets it first (ahead of checks that count what they let
    through, such as ``order_rate``). None if no installed plugin registers it.
    """
    for link in risk:
        if isinstance(link.check, Reconciler):
            return risk, link.check
    factory = registry.risk_checks.get(RECONCILE_GUARD)
    if factory is None:
        return risk, None
    guard = factory({})
    if not isinstance(guard, Reconciler):  # a replacement plugin: a plain (stateful) risk check
        return [RiskLink(RECONCILE_GUARD, guard), *risk], None
    return [RiskLink(RECONCILE_GUARD, guard), *risk], guard


def startup_drifts(engine: Engine, drifts: Sequence[Drift]) -> list[Drift]:
    """The start-up drifts still worth a decision once ``botcore_startup`` (restart recovery) ran.

    Loading the first account snapshot into an empty cache reports every open order on the
    account as ``order.missing_local``. Recovery adopts the previous run's orders (the engine
    tracks them) or cancels them (the post-recovery snapshot removed them from the cache): those
    are dealt with (and journaled by recovery). An order still open in the cache and not tracked
    is foreign, or ours but unrecovered: it is reported, and the policy halts quoting.
    Balances and positions loaded into the empty cache are initialisation, not drift.
    """
    positions = engine.positions
    out = []
    for d in drifts:
        if d.field.startswith(("balance.", "position")):
            continue
        if d.field == "order.missing_local" and (
            engine.tracker.get(d.key) is not None or positions.open_order(d.key) is None
        ):
            continue
        out.append(d)
    return out


def _refuse_production(config: BotConfig, args: Any) -> str | None:
    ex = config.exchange
    if ex.mode != "production":
        return None
    if not ex.allow_production:
        return "exchange.mode is 'production' (real money) but exchange.allow_production is not true"
    if not getattr(args, "i_mean_production", False):
        return "exchange.mode is 'production' (real money): add --i-mean-production to run it"
    return None


# ------------------------------------------------------------------------------------------------
# run
# ------------------------------------------------------------------------------------------------


def status_line(st: Mapping[str, Any], *extra: str) -> str:
    """One progress line (stderr) from ``Engine.status()``; ``extra`` parts (replay time, drift) go
    after the elapsed time."""
    pos = " ".join(f"{s}={q}" for s, q in st.get("position", {}).items()) or "-"
    lat = st.get("latency_us", {})
    untrusted = [s for s, ok in st.get("trusted", {}).items() if not ok]
    trust = "ok" if not untrusted else "paused:" + ",".join(untrusted)
    if st.get("halted"):
        trust = "HALTED"
    more = "".join(f"{part} " for part in extra if part)
    return (
        f"[{st.get('elapsed_s', 0.0):8.1f}s] {more}events={st.get('events', 0)} quotes={st.get('quotes', 0)} "
        f"orders={st.get('orders', 0)} cancels={st.get('cancels', 0)} fills={st.get('fills', 0)} "
        f"live={st.get('live_orders', 0)} pos {pos} pnl={money(st.get('pnl', '0'))} "
        + (
            f"t2o p50={lat.get('p50', 0.0):.1f}us p99={lat.get('p99', 0.0):.1f}us "
            if lat.get("count")
            else "t2o - "
        )
        + trust
    )


class _Signals:
    """SIGINT/SIGTERM -> a clean engine stop; a second signal aborts the wait for the cancels.

    After the ``with`` block the run is closing (adapter, venue, journal): that is short and bounded,
    and a signal must not cut it in the middle (an unclosed journal reads as a crashed run), so
    further signals are only acknowledged until :meth:`restore` puts the old handlers back.
    """

    def __init__(self, stop: Callable[[str], None], out: TextIO | None = None) -> None:
        self._stop = stop
        self._out = out or sys.stderr
        self._old: dict[int, Any] = {}
        self.received: str | None = None

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.received is not None:
            raise KeyboardInterrupt(f"second {name}")
        self.received = name
        self._stop(name)  # SimpleQueue.put is safe from a signal handler

    def __exit__(self, *exc: object) -> None:
        for sig in self._old:
            signal.signal(sig, self._closing)

    def _closing(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        print(f"botcore: {name}: closing the run, a moment", file=self._out, flush=True)

    def restore(self) -> None:
        """Put the handlers found at ``__enter__`` back (idempotent)."""
        old, self._old = self._old, {}
        for sig, handler in old.items():
            signal.signal(sig, handler)


def run(config: BotConfig, pm: Any, args: Any, out: TextIO | None = None) -> int:
    """Trade with ``config`` until the duration ends, the market stream ends or a signal arrives."""
    out = out or sys.stderr
    hooks = Hooks(pm)
    registry = _registry(pm, args)
    validate_against_registry(config, registry)
    refusal = _refuse_production(config, args)
    if refusal:
        print(f"botcore: refusing to start: {refusal}", file=out)
        return EXIT_CONFIG
    if getattr(args, "log_level", None) is None:
        logging.getLogger().setLevel(config.run.log_level)
    quiet_libraries(logging.getLogger().getEffectiveLevel())
    duration = _seconds(getattr(args, "duration", None) or config.run.duration)
    status_every = _seconds(config.run.status_every) or 2.0
    ex = config.exchange

    drift_tally = DriftTally.attach(pm)  # live drift count for the status line
    cleanups: list[tuple[str, Callable[[], Any]]] = [("drift tally", drift_tally.detach)]
    engine: Engine | None = None
    reason = "startup failed"
    try:
        venue = _start_venue(config, hooks)
        if venue is not None and venue.close is not None:
            cleanups.append(("venue", venue.close))
        adapter = registry.exchanges[ex.name](config, venue)
        cleanups.append(("adapter", adapter.stop))
        instruments = adapter.exchange_info(list(ex.symbols))
        strategies = build_strategies(config, registry, instruments)
        risk, reconciler = with_reconcile_guard(build_risk_chain(config, registry), registry)
        engine = Engine(
            instruments,
            strategies,
            risk,
            adapter=adapter,
            hooks=hooks,
            config=EngineConfig(cpu=config.engine.engine_cpu()),
            run_id=fresh_run_id(config.run.journal),
            reconciler=reconciler,
        )
        engine.bot_config = config  # before botcore_startup: the services read it
        cleanups.append(("gateway", lambda: engine.gateway.close(5.0)))  # type: ignore[union-attr]
        drifts = engine.load_snapshot(adapter.account_snapshot())
        scheduler = Scheduler(config.schedules, registry.jobs, EngineHandle(engine, adapter, config))
        cleanups.append(("scheduler", lambda: scheduler.shutdown(wait=False)))
        hooks.startup(engine)  # restart recovery runs here, before anything is quoted
        # Journal and judge what the first snapshot found (a foreign order halts quoting); the
        # engine polls the halt before its first event.
        residual = startup_drifts(engine, drifts)
        if residual:
            hooks.reconcile_report("startup", residual)
        started = time.monotonic()
        with _Signals(engine.stop, out) as signals:
            cleanups.insert(0, ("signal handlers", signals.restore))  # the last cleanup: signals stay
            engine.start()
            adapter.start(engine, list(ex.symbols))
            scheduler.start()
            print(
                f"botcore: running {config.run.name} on {ex.name} ({ex.mode}) {', '.join(ex.symbols)}"
                + (f" for {duration:g}s" if duration else ""),
                file=out,
                flush=True,
            )
            watch = VenueWatch(venue, grace_s=REPLAY_END_GRACE_S)
            next_status = started + status_every
            try:
                while True:
                    now = time.monotonic()
                    wait = max(0.0, next_status - now)
                    if watch.active:  # a replay: notice its end before the streams' stall watchdog
                        wait = min(wait, VENUE_POLL_S)
                    if duration is not None:
                        wait = max(0.0, min(wait, started + duration - now))
                    if engine.join(wait):
                        break
                    now = time.monotonic()
                    if duration is not None and now - started >= duration:
                        engine.stop("duration reached")
                        break
                    finished = watch.poll()
                    if finished:
                        engine.stop(finished)
                        break
                    if now >= next_status:
                        next_status = max(next_status + status_every, now)
                        print(
                            status_line(engine.status(), watch.describe(), drift_tally.describe()),
                            file=out,
                            flush=True,
                        )
                # the engine cancels open orders and waits for their outcomes (bounded)
                engine.join(engine.config.stop_timeout + 5.0)
                watch.refresh()  # the market time covered, before the venue closes
            except KeyboardInterrupt:
                print("botcore: second signal: not waiting for the engine any longer", file=out, flush=True)
        reason = engine.stop_reason or signals.received or "stopped"
    finally:
        for what, fn in reversed(cleanups):
            try:
                fn()
            except Exception:
                log.exception("shutdown: closing the %s failed", what)
        if engine is not None:
            try:
                hooks.shutdown(engine, reason)
            except Exception:
                log.exception("shutdown hook failed")
    st = engine.status()
    print(status_line(st, watch.describe(), drift_tally.describe()), file=out)
    summary = run_summary(
        name=config.run.name,
        reason=reason,
        status=st,
        engine=engine,
        journal=config.run.journal,
        wall_s=time.monotonic() - started,
        replay=watch.last,
    )
    print(summary, file=out, flush=True)
    if st.get("live_orders"):
        print(f"botcore: WARNING {st['live_orders']} orders may still be open on the venue", file=out)
        return EXIT_FAILURE
    return EXIT_OK


# ------------------------------------------------------------------------------------------------
# check
# ------------------------------------------------------------------------------------------------


def _top_from_snapshot(symbol: str, raw: bytes, inst: Instrument) -> BookTop | None:
    from botcore.core import OrderBook

    book = OrderBook(symbol, inst.price_precision, inst.qty_precision)
    book.apply_snapshot_json(raw)
    bp, bq, ap, aq = book.top()
    if not bp or not ap:
        return None
    return BookTop(symbol, bp, bq, ap, aq, book.last_update_id)


def check(config: BotConfig, pm: Any, args: Any, out: TextIO | None = None) -> int:
    """Build adapter, instruments and strategies; print them; check first quotes against filters.

    Strategies with a ``first_quotes(top, instruments)`` method are asked for the quotes they would
    place on the venue's current book; a quote failing an exchange filter, or a strategy that
    cannot quote at all, fails the check (exit 2).
    """
    out = out or sys.stdout
    hooks = Hooks(pm)
    registry = _registry(pm, args)
    validate_against_registry(config, registry)
    ex = config.exchange
    problems: list[str] = []
    cleanups: list[Callable[[], Any]] = []
    try:
        venue = _start_venue(config, hooks)
        if venue is not None and venue.close is not None:
            cleanups.append(venue.close)
        adapter = registry.exchanges[ex.name](config, venue)
        cleanups.append(adapter.stop)
        instruments = adapter.exchange_info(list(ex.symbols))
        for sym, inst in instruments.items():
            print(
                f"  instrument {sym}: {inst.base_asset}/{inst.quote_asset} tick {inst.tick_size} "
                f"step {inst.step_size} minNotional {inst.min_notional} status {inst.status}",
                file=out,
            )
            if inst.status != "TRADING":
                problems.append(f"{sym} is not TRADING ({inst.status})")
        strategies = build_strategies(config, registry, instruments)
        build_risk_chain(config, registry)
        print(
            "  registry: "
            + "; ".join(
                f"{kind} {', '.join(sorted(getattr(registry, kind))) or '-'}"
                for kind in ("exchanges", "strategies", "risk_checks", "jobs")
            ),
            file=out,
        )
        tops: dict[str, BookTop | None] = {}
        for strat in strategies:
            first = getattr(strat, "first_quotes", None)
            if not callable(first):
                continue
            for sym in strat.symbols:
                if sym not in tops:
                    tops[sym] = _top_from_snapshot(sym, adapter.depth_snapshot(sym, 5), instruments[sym])
                top = tops[sym]
                if top is None:
                    problems.append(f"{sym}: the venue's book is empty, cannot check first quotes")
                    continue
                quotes = list(first(top, instruments))
                if not quotes:
                    problems.append(f"strategy {strat.name} would place no quotes on {sym}")
                for q in quotes:
                    failure = instruments[sym].filter_failure(q.price, q.qty)
                    verdict = "ok" if failure is None else f"FAILS {failure}"
                    print(
                        f"  first quote {strat.name} {sym} L{q.level} {q.side} {q.qty} @ {q.price}: {verdict}",
                        file=out,
                    )
                    if failure is not None:
                        problems.append(
                            f"strategy {strat.name}: {q.side} {q.qty}@{q.price} on {sym} fails {failure}"
                        )
    finally:
        for fn in reversed(cleanups):
            try:
                fn()
            except Exception:
                log.exception("check: cleanup failed")
    if problems:
        for p in problems:
            print(f"botcore: check failed: {p}", file=sys.stderr)
        return EXIT_CONFIG
    print("check OK", file=out, flush=True)
    return EXIT_OK
