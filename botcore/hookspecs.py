"""Every hook botcore calls: the plugin author's manual.

A plugin is any module or object with functions named after these specs and decorated with
``botcore.hookimpl``::

    from botcore import hookimpl

    @hookimpl
    def botcore_register_strategies(register):
        register("my-strategy", MyStrategy)

Installed plugins are found through the ``botcore`` entry-point group (``pip install`` is
enough); built-in plugins register through exactly the same group. A loose ``.py`` file can be
tried with ``botcore --plugins-dir DIR``. Misspelled hook names stop start-up
(``PluginManager.check_pending``).

Hooks are grouped by phase:

1. Registration: called once at start-up; each receives a ``register(name, factory)`` callable.
2. Lifecycle: start-up and shutdown of a run.
3. Per-event: called by the engine thread at event boundaries (an order, a fill, a book batch),
   never inside the order-book update loop. They run on the engine thread: do not block.

Unless stated otherwise the return value is ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from botcore.model import ExecutionReport, Fill, OrderOutcome, OrderRequest, Quote

hookspec = pluggy.HookspecMarker("botcore")

Register = Callable[[str, Callable[..., Any]], None]

# ---------------------------------------------------------------------------------------------
# 1. Registration
# ---------------------------------------------------------------------------------------------


@hookspec
def botcore_register_exchanges(register: Register) -> None:
    """Register exchange adapters.

    :param register: call ``register(name, factory)`` once per adapter.
        ``factory(config, endpoints)`` gets the whole validated ``botcore.config.BotConfig`` (read
        ``config.exchange`` and your block in ``config.plugins``) and the
        ``botcore.contracts.VenueEndpoints`` of an embedded venue (or None), and returns an object
        satisfying ``botcore.contracts.ExchangeAdapter``. ``name`` is what ``exchange.name`` in
        the YAML selects.
    """


@hookspec
def botcore_register_strategies(register: Register) -> None:
    """Register strategy types.

    :param register: call ``register(name, factory)``. ``factory(name, params, instruments)``
        gets the instance name, the strategy's ``params`` mapping from YAML and the exchange's
        ``Instrument`` per symbol; it returns a ``botcore.contracts.Strategy``. Raise
        ``botcore.config.ConfigError`` (or ``ValueError``) for bad parameters: the message is
        shown to the user with the YAML key path. Optionally give the strategy a side-effect-free
        ``rehearse(ctx, top)`` (``botcore.contracts.RehearsingStrategy``): the engine then keeps
        its order path warm in idle moments, which shortens the next requote's tick-to-order.
    """


@hookspec
def botcore_register_risk_checks(register: Register) -> None:
    """Register risk checks that configs can put in the risk chain.

    :param register: call ``register(name, factory)``. ``factory(params)`` returns a
        ``botcore.contracts.RiskCheck``. The chain runs in config order before every order.
        Set ``rehearsable = True`` on a check whose ``check`` changes nothing (count sent orders
        in ``order_sent`` instead, see ``botcore.contracts.StatefulRiskCheck``): it then also runs
        in the engine's idle rehearsals and stays warm for real orders. Set ``per_decision = True``
        on a check that never looks at the order (data age, a halt): it is then asked once per
        decision instead of once per order (see ``botcore.contracts.RiskCheck``).
    """


@hookspec
def botcore_register_jobs(register: Register) -> None:
    """Register scheduled job kinds that ``schedules:`` entries in YAML can name.

    :param register: call ``register(name, job)``. ``job(engine_handle, params)`` runs on a
        scheduler worker thread (never the engine thread); it may do blocking I/O through the
        exchange adapter and must hand results to the engine through ``engine_handle.put(event)``.
    """


@hookspec
def botcore_register_commands(register: Register) -> None:
    """Add sub-commands to the ``botcore`` command line.

    :param register: call ``register(name, setup)``. ``setup(parser: argparse.ArgumentParser)``
        adds arguments and returns the function to run, ``run(args) -> int`` (the exit code).
    """


# ---------------------------------------------------------------------------------------------
# 2. Lifecycle
# ---------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def botcore_start_venue(config: Any) -> Any:
    """Start an embedded venue (e.g. the paper exchange) for ``exchange.mode: paper``.

    Stops at first non-None result. Called before the exchange adapter is built.

    :param config: the validated ``botcore.config.BotConfig``.
    :return: ``botcore.contracts.VenueEndpoints`` the adapter should use (with ``close`` set to
        stop the venue; a venue with an end, such as a replay, also sets ``done`` so that
        ``botcore run`` stops with "replay finished", and ``progress`` for the status line), or
        None if this plugin does not provide the venue asked for.
    """


@hookspec
def botcore_startup(engine: Any) -> None:
    """The engine has been wired and is about to start trading.

    :param engine: the ``botcore.engine.Engine``; keep a reference if you need to enqueue events
        later (``engine.put(event)`` is the only method safe to call from other threads).
    """


@hookspec
def botcore_shutdown(engine: Any, reason: str) -> None:
    """The engine stopped: open orders were cancelled and the run is closing.

    :param engine: the ``botcore.engine.Engine``.
    :param reason: why it stopped (``"replay finished"``, ``"SIGTERM"``, ...).
    """


# ---------------------------------------------------------------------------------------------
# 3. Per-event (engine thread)
# ---------------------------------------------------------------------------------------------


@hookspec
def botcore_quotes_decided(strategy: str, symbol: str, quotes: Sequence[Quote]) -> None:
    """A strategy decided the quotes it wants live for ``symbol`` (before risk and diffing).

    :param strategy: the strategy instance name.
    :param symbol: the symbol quoted.
    :param quotes: the desired quotes, level 0 first.
    """


@hookspec(firstresult=True)
def botcore_order_check(order: OrderRequest, context: Any) -> str | None:
    """Veto an order before it is sent.

    Stops at first non-None result. Runs after the configured risk chain.

    :param order: the order about to be sent (client order id already assigned).
    :param context: the ``botcore.contracts.StrategyContext`` (read-only state).
    :return: a reason string to veto the order, or None to let it through.
    """


@hookspec
def botcore_order_submit(order: OrderRequest) -> None:
    """Around-advice for handing an order to the gateway (timing, audit).

    Implement it as a new-style wrapper, ``@hookimpl(wrapper=True)``: code before ``yield`` runs
    before the hand-off, ``result = yield`` lets it happen, and the wrapper must
    ``return result``. Plain (non-wrapper) implementations are called just before the hand-off.

    :param order: the order being handed to the gateway.
    """


@hookspec
def botcore_order_submitted(order: OrderRequest) -> None:
    """An order was tracked and handed to the gateway (it is not acknowledged yet).

    Called once every order of the same decision has been handed over (a requote's orders leave
    back to back), so slow work here (the journal's write) never delays the next order.

    :param order: the order, with its deterministic client order id.
    """


@hookspec
def botcore_order_outcome(outcome: OrderOutcome) -> None:
    """The gateway reported what happened to a request (ack, reject, unknown, cancel result).

    :param outcome: the normalized outcome; ``outcome.status`` is ``UNKNOWN`` when the venue may
        or may not have executed it.
    """


@hookspec
def botcore_order_filled(fill: Fill) -> None:
    """One of our orders traded (partially or fully).

    :param fill: the execution, deduplicated by trade id.
    """


@hookspec
def botcore_order_cancelled(report: ExecutionReport) -> None:
    """One of our orders left the book without filling completely (cancelled or expired).

    :param report: the venue's execution report.
    """


@hookspec
def botcore_trust_changed(stream: str, trusted: bool, reason: str) -> None:
    """A market or user stream, or order entry, became untrustworthy (quoting pauses) or
    trustworthy again.

    :param stream: ``"market:<SYMBOL>"``, ``"market"``, ``"user"``, or ``"orders"`` (the venue
        refuses new orders for a while: cancel-only after HTTP 429, banned after 418).
    :param trusted: the new state.
    :param reason: e.g. ``"sequence gap"``, ``"stalled"``, ``"reconnecting"``, ``"resynced"``.
    """


@hookspec
def botcore_reconcile_report(job: str, drifts: Sequence[Any]) -> None:
    """A reconciliation compared local state with the venue.

    :param job: the scheduled job's name.
    :param drifts: one ``botcore.reconcile.Drift`` record per difference (empty: in sync).
    """

