"""Restart recovery: after a crash or restart, learn the truth from the venue before quoting.

The journal (``Journal.load``) says which orders a previous run may have left behind (any order
not known terminal, including those whose fate was UNKNOWN), the client-order-id prefixes of
every run (so our orders are recognisable on the venue), and the last trade id journaled per
symbol. ``recover`` runs at start-up on the calling thread (blocking REST is fine: nothing trades
yet) and:

1. lists the venue's open orders (per symbol) and splits them into ours and foreign ones;
2. resolves every journal order that is not open on the venue by querying it: a terminal
   status resolves it, "order does not exist" (-2013) does too once the order is older than
   ``grace_ms`` (a delayed request could still land inside its recvWindow), anything else stays
   unresolved (the engine tracks it as UNKNOWN and keeps querying);
3. applies the policy to our live orders: ``adopt`` (the engine tracks them again, under their
   strategy if it still exists) or ``cancel`` (cancelled now; a cancel whose outcome is unknown
   is tracked as UNKNOWN so the engine resolves it);
4. fetches the trades of our orders after the last journaled trade id (fills the crash lost);
5. takes the account snapshot *after* the cancels, the state the engine starts from.

Every difference between the journal and the venue becomes a ``Drift`` record. ``apply_plan``
applies a plan to an engine that is built but not started, through its public API.

A run that did not end cleanly (crash, SIGKILL) is *continued*: its position, cost basis,
realized PnL and fees are rebuilt from the fills journaled by it (and by the unclean runs it
continued itself) plus the fills the crash lost, so inventory limits and skew see the inventory
the bot really holds, and the stateful risk checks (drawdown, daily loss) the session's equity
(``Engine.carry_fills``): a bot that keeps crashing cannot reset its kill switches. After a clean exit a new run starts flat, as documented for the position
cache ("since start"). ``apply_plan`` ends with one log line, ``recovery: state before quoting:``
and a JSON object (tracked orders, balances, positions): what the engine starts from, written
before it can send anything, for operators and end-to-end tests to hold against the venue.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any, Literal

import msgspec

from botcore.events import GatewayResult
from botcore.journal import (
    Journal,
    JournalError,
    JournalOrder,
    JournalState,
    PnlSample,
)
from botcore.model import (
    AccountSnapshot,
    CancelRequest,
    Drift,
    Fill,
    OpenOrder,
    OrderOutcome,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    plain,
)
from botcore.reconcile import (
    CAUSE_LOST_CANCEL,
    CAUSE_MISSED_FILL,
    CAUSE_OUTSIDE,
    CAUSE_UNKNOWN,
    CAUSE_UNTRACKED_OWN,
)

__all__ = [
    "POLICIES",
    "RecoveryPlan",
    "Resolution",
    "apply_plan",
    "recover",
    "session_fills",
    "state_summary",
]

log = logging.getLogger(__name__)

RecoveryPolicy = Literal["adopt", "cancel"]
POLICIES: tuple[str, ...] = ("adopt", "cancel")
_ERR_UNKNOWN_ORDER = -2011
_ERR_NO_SUCH_ORDER = -2013
_LIVE = frozenset({OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED, OrderStatus.PENDING_CANCEL})


class Resolution(msgspec.Struct, frozen=True):
    """What the venue said about one order the journal had left open."""

    order: JournalOrder
    status: str
    order_id: int = 0
    source: str = "query"  # "open_orders" | "query" | "cancel"


class RecoveryPlan(msgspec.Struct, frozen=True):
    """What ``recover`` found and did; ``apply_plan`` hands it to the engine and the journal.

    ``adopt``: our live venue orders to track again. ``cancelled``: outcomes of the cancels sent
    (policy ``cancel``). ``unknown``: our orders whose state is still in doubt (a failed query or
    cancel): track them as UNKNOWN. ``resolved``: journal orders now known (terminal or live).
    ``foreign``: open orders not made by any journaled run. ``fills``: our trades after the last
    journaled trade id. ``snapshot``: the account after the cancels. ``continued``: the last run
    did not end cleanly, so this run continues its session; ``carried``: that session's journaled
    fills (``session_fills``), which with ``fills`` rebuild the position. ``resume_run_id`` /
    ``next_seq``: to continue the previous run's ids instead of starting a new run id.
    """

    policy: str
    snapshot: AccountSnapshot
    adopt: tuple[OpenOrder, ...] = ()
    cancelled: tuple[OrderOutcome, ...] = ()
    unknown: tuple[JournalOrder | OpenOrder, ...] = ()
    resolved: tuple[Resolution, ...] = ()
    foreign: tuple[OpenOrder, ...] = ()
    fills: tuple[Fill, ...] = ()
    drifts: tuple[Drift, ...] = ()
    carried: tuple[Fill, ...] = ()
    continued: bool = False
    resume_run_id: str = ""
    next_seq: int = 1

    def summary(self) -> str:
        return (
            f"recovery ({self.policy}): {len(self.resolved)} resolved, {len(self.adopt)} adopted, "
            f"{len(self.cancelled)} cancelled, {len(self.unknown)} still unknown, "
            f"{len(self.foreign)} foreign, {len(self.fills)} missed fills, {len(self.drifts)} drifts, "
            f"{len(self.carried)} fills carried"
        )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def recover(
    state: JournalState,
    adapter: Any,
    policy: str = "cancel",
    *,
    symbols: Iterable[str] = (),
    is_ours: Callable[[str], bool] | None = None,
    grace_ms: int = 10_000,
    now_ms: Callable[[], int] = _now_ms,
) -> RecoveryPlan:
    """Reconcile the journal's view with the venue (see the module docstring).

    :param state: ``Journal.load(path)``.
    :param adapter: a ``contracts.ExchangeAdapter`` (blocking calls; not the engine thread).
    :param policy: ``"adopt"`` or ``"cancel"`` for our live orders found on the venue.
    :param symbols: the run's symbols; the journal's open-order symbols are added.
    :param is_ours: overrides ``state.is_ours`` (prefix match over every journaled run).
    :param grace_ms: an order younger than this is not believed gone on "does not exist".
    """
    if policy not in POLICIES:
        raise ValueError(f"recovery policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    ours_fn = is_ours or state.is_ours
    wanted = list(dict.fromkeys([*symbols, *(o.symbol for o in state.open_orders)]))
    venue_open: list[OpenOrder] = []
    for symbol in wanted:
        venue_open.extend(adapter.open_orders(symbol))
    by_cid = {o.client_order_id: o for o in venue_open}
    ours = [o for o in venue_open if ours_fn(o.client_order_id)]
    foreign = [o for o in venue_open if not ours_fn(o.client_order_id)]
    drifts: list[Drift] = []
    resolved: list[Resolution] = []
    unknown: list[JournalOrder | OpenOrder] = []
    journal_open = {o.client_order_id: o for o in state.open_orders}
    t = now_ms()

    # 2. resolve what the journal left open ------------------------------------------------------
    for jo in state.open_orders:
        live = by_cid.get(jo.client_order_id)
        if live is not None:
            resolved.append(Resolution(jo, str(live.status), live.order_id, "open_orders"))
            continue
        out: OrderOutcome = adapter.query_order(jo.symbol, jo.client_order_id)
        status = out.status
        if status is OrderStatus.REJECTED and out.error_code == _ERR_NO_SUCH_ORDER:
            if t - jo.created_ms < grace_ms:
                unknown.append(jo)
                continue
            resolved.append(Resolution(jo, "REJECTED", 0, "query"))
            drifts.append(
                Drift(
                    "order.missing_venue",
                    jo.client_order_id,
                    jo.status,
                    "does not exist",
                    t - jo.created_ms,
                    CAUSE_UNKNOWN,
                )
            )
        elif status.is_terminal:
            resolved.append(Resolution(jo, str(status), out.order_id, "query"))
            cause = CAUSE_MISSED_FILL if status is OrderStatus.FILLED else CAUSE_LOST_CANCEL
            drifts.append(
                Drift(
                    "order.missing_venue",
                    jo.client_order_id,
                    jo.status,
                    str(status),
                    t - jo.created_ms,
                    cause,
                    True,
                )
            )
        else:
            # UNKNOWN (the query failed) or live but not listed (a race with open_orders).
            unknown.append(jo)

    # our live orders the journal did not have open, and foreign ones ------------------------------
    for o in ours:
        if o.client_order_id not in journal_open:
            drifts.append(
                Drift("order.missing_local", o.client_order_id, "", str(o.status), 0, CAUSE_UNTRACKED_OWN)
            )
    for o in foreign:
        drifts.append(Drift("order.missing_local", o.client_order_id, "", str(o.status), 0, CAUSE_OUTSIDE))

    # 3. policy ------------------------------------------------------------------------------------
    adopt: list[OpenOrder] = []
    cancelled: list[OrderOutcome] = []
    if policy == "adopt":
        adopt = list(ours)
    else:
        for o in ours:
            out = adapter.cancel(CancelRequest(o.symbol, o.client_order_id, "recovery"))
            cancelled.append(out)
            if out.status is OrderStatus.UNKNOWN or (
                out.status is OrderStatus.REJECTED and out.error_code == _ERR_UNKNOWN_ORDER
            ):
                # Gone meanwhile (filled?) or fate unknown: the engine resolves it by querying.
                unknown.append(o)
            elif out.status is OrderStatus.REJECTED:
                log.warning(
                    "recovery: cancel of %s refused (%s); adopting it", o.client_order_id, out.error_msg
                )
                adopt.append(o)
            else:
                jo = journal_open.get(o.client_order_id)
                if jo is not None:  # its final word replaces "open" from the listing
                    resolved = [r for r in resolved if r.order.client_order_id != o.client_order_id]
                    resolved.append(Resolution(jo, str(out.status), o.order_id, "cancel"))

    # 4. fills the crash lost -------------------------------------------------------------------------
    fills: list[Fill] = []
    for symbol in wanted:
        last = state.last_trade_id.get(symbol, -1)
        trades = adapter.my_trades(symbol, last + 1 if last >= 0 else 0)
        mine = [f for f in trades if f.trade_id > last and ours_fn(f.client_order_id)]
        if mine:
            fills.extend(sorted(mine, key=lambda f: f.trade_id))
            drifts.append(
                Drift(
                    "fills.missing_local",
                    symbol,
                    str(last),
                    str(max(f.trade_id for f in mine)),
                    0,
                    CAUSE_MISSED_FILL,
                    True,
                )
            )

    # 5. the state to start from ------------------------------------------------------------------------
    snapshot = adapter.account_snapshot()
    plan = RecoveryPlan(
        policy=policy,
        snapshot=snapshot,
        adopt=tuple(adopt),
        cancelled=tuple(cancelled),
        unknown=tuple(unknown),
        resolved=tuple(resolved),
        foreign=tuple(foreign),
        fills=tuple(fills),
        drifts=tuple(drifts),
        carried=session_fills(state),
        continued=state.run is not None and not state.clean_exit,
        resume_run_id=state.run_id,
        next_seq=state.seq_high + 1,
    )
    log.info("%s", plan.summary())
    return plan


def session_fills(state: JournalState) -> tuple[Fill, ...]:
    """The journaled fills of the session a restart after ``state`` continues, by trade id.

    The session is the last journaled run and, going back, every run before it that did not end
    cleanly either (a crash-resumed run carried its predecessor's fills): it starts after the
    last clean exit. Empty when the last run ended cleanly or the journal is missing/empty.
    """
    if state.run is None or state.clean_exit:
        return ()
    try:
        return Journal.unclean_session_fills(state.path, state.run)
    except JournalError:
        log.exception("recovery: could not read the fills of the interrupted session; starting flat")
        return ()


def state_summary(engine: Any) -> dict[str, Any]:
    """The engine's account view as plain JSON-able data: live tracked orders, balances, positions.

    Amounts are plain decimal strings (exact). ``apply_plan`` logs it once recovery is applied.
    """
    positions = engine.positions
    orders = {
        o.client_order_id: {
            "symbol": o.symbol,
            "side": str(o.side),
            "price": plain(o.price),
            "qty": plain(o.qty),
            "cum_qty": plain(o.cum_qty),
            "status": str(o.status),
            "strategy": o.strategy,
        }
        for o in engine.tracker.live()
    }
    balances = {a: [plain(b.free), plain(b.locked)] for a, b in sorted(positions.balances().items())}
    return {
        "orders": orders,
        "balances": balances,
        "positions": {s: plain(positions.position(s)) for s in engine.instruments},
    }


# ------------------------------------------------------------------------------------------------
# Applying a plan
# ------------------------------------------------------------------------------------------------


def _level(tag: str) -> int:
    return int(tag[1:]) if tag.startswith("L") and tag[1:].isdigit() else 0


def _order_type(value: str) -> OrderType:
    try:
        return OrderType(value)
    except ValueError:
        return OrderType.LIMIT


def apply_plan(
    plan: RecoveryPlan,
    engine: Any,
    journal: Journal | None = None,
    *,
    strategies: Sequence[str] = (),
    journal_orders: Iterable[JournalOrder] = (),
) -> list[str]:
    """Hand a plan to an engine that is built but not running; returns the adopted client ids.

    Uses the engine's public surface only: ``load_snapshot`` (the post-recovery account),
    ``tracker.track`` + ``tracker.on_outcome`` (adopted orders, under their journaled strategy
    when that strategy runs again, else under ``""``: tracked, counted, cancelled at stop), and
    ``put`` of an UNKNOWN outcome for orders in doubt, which makes the engine query them as soon
    as it starts. When the plan continues an interrupted session, ``positions.apply_fill`` of
    its carried and missed fills rebuilds the position (trade ids de-duplicate). The journal gets
    the resolutions, the missed fills, the drift records and (when a position was rebuilt) a PnL
    sample. Last, the ``recovery: state before quoting:`` line (``state_summary``) is logged.
    """
    if getattr(engine, "is_running", False):
        raise RuntimeError("apply_plan must run before the engine starts")
    engine.load_snapshot(plan.snapshot)
    strategy_of = {o.client_order_id: o.strategy for o in journal_orders}
    known = set(strategies)
    tracker = engine.tracker
    adopted: list[str] = []

    def track(o: OpenOrder | JournalOrder, status: OrderStatus, cum: Decimal) -> str:
        cid = o.client_order_id
        strategy = strategy_of.get(cid, "")
        if strategy not in known:
            strategy = ""
        if tracker.get(cid) is None:
            price = Decimal(o.price) if o.price is not None else None
            qty = Decimal(o.orig_qty) if isinstance(o, OpenOrder) else Decimal(o.qty)
            otype = o.order_type
            request = OrderRequest(
                o.symbol, Side(o.side), qty, price, _order_type(str(otype)), None, cid, strategy, "L0"
            )
            tracker.track(request, _level(request.tag))
            tracker.on_outcome(
                OrderOutcome("new", o.symbol, cid, status, order_id=getattr(o, "order_id", 0), cum_qty=cum)
            )
        return cid

    for o in plan.adopt:
        status = o.status if o.status in _LIVE else OrderStatus.NEW
        adopted.append(track(o, OrderStatus(status), o.cum_qty))
    for o in plan.unknown:
        cum = o.cum_qty if isinstance(o, OpenOrder) else Decimal(o.filled)
        cid = track(o, OrderStatus.NEW, cum)
        adopted.append(cid)
        tracker.mark_unknown(cid, "state unknown after restart")
        # A failed-query outcome makes the engine schedule a query as soon as it runs.
        engine.put(
            GatewayResult(
                OrderOutcome(
                    "query", o.symbol, cid, OrderStatus.UNKNOWN, error_msg="state unknown after restart"
                )
            )
        )
    carry = plan.carried + plan.fills if plan.continued else ()
    positions = engine.positions
    carried = engine.carry_fills(carry)
    if journal is not None:
        for r in plan.resolved:
            journal.resolve_order(r.order.run, r.order.client_order_id, r.status, r.order_id)
        run_of = {o.client_order_id: o.run for o in journal_orders}
        for fill in plan.fills:
            journal.record_fill(fill, run=run_of.get(fill.client_order_id))
        journal.record_drifts("recovery", list(plan.drifts), ["recovery"] * len(plan.drifts))
        if carried:  # the PnL chart continues where the interrupted run left it
            journal.record_pnl(
                PnlSample(s, positions.position(s), positions.realized_pnl(s), Decimal(0), positions.fees(s))
                for s in engine.instruments
            )
    log.info("recovery: state before quoting: %s", json.dumps(state_summary(engine), sort_keys=True))
    return adopted
