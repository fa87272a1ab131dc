"""Reconciliation: compare the local copy with the venue, explain each difference, act on it.

botcore trades from a local copy of its account (the position cache, fed by the user stream) and
makes it *eventually* consistent with the venue: scheduled jobs (``botcore.jobs``) fetch REST
state off the engine thread and hand the engine a ``ReconcileSnapshot``; on the engine thread a
``Reconciler`` applies it with the cache's fencing (REST never overwrites newer websocket state),
refines the likely cause of every drift and applies a per-field policy:

``log``      record the drift, leave the local value alone;
``correct``  record it and take the venue's value (the default for balances and orders);
``halt``     correct, record, and pause quoting until ``halt_clears_after`` clean reconciles
             (0 = until ``clear_halt()``). Halting goes through the engine's stateful-risk-check
             mechanism: the Reconciler *is* a ``StatefulRiskCheck`` (``name``, ``check``,
             ``halted``), so it only has to sit in the risk chain.

Config (``plugins: {reconcile: {...}}``; durations like the rest of the file)::

    plugins:
      reconcile:
        policy: {balance: correct, order.missing_local: halt, order.missing_venue: correct,
                 order.cum_qty: correct, position: correct, default: log}
        causes: {fee rounding: log}        # a cause overrides the field's action
        halt_clears_after: 1               # clean reconciles before a halt lifts; 0 = manual
        trigger_cooldown: 2s               # at most one drift-triggered reconcile per this long

A drift's cause is looked up first (``causes``), then its field exactly (``balance.free``), then by
its head (``balance``), then ``default``. One cause has a built-in action unless ``causes`` names
it: an order the engine itself tracks (``CAUSE_TRACKED_OWN``: the venue lists it before its NEW
report reached us) is corrected, never halted on: it is not foreign. Missed fills found by
``reconcile_full`` are facts, never "corrected away": they are applied (deduplicated by trade id)
whatever the policy, which only decides whether to halt.

Causes. The position cache guesses from balances (a drifted balance of a traded asset means a
missed fill); the reconciler sharpens that with what only it knows: the venue's trades, which
client ids are this run's and which orders the engine tracks, and the shape of the balance drift
(a move between free and locked that leaves the asset's total unchanged is an order opening or
closing, never a fill). An open order the cache took from the user stream although the engine
never placed it (placed on the website: the cache books every order of the account) is reported
once as ``order.missing_local`` too: the snapshot agrees with the cache, yet the bot does not
know the order.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal

import msgspec

from botcore.core._position_py import FEE_ROUNDING_UNITS
from botcore.events import GatewayResult, ReconcileSnapshot, StreamStatus, UserEvent
from botcore.model import (
    AMOUNT_PRECISION,
    AccountSnapshot,
    Balance,
    Drift,
    ExecutionReport,
    Fill,
    OpenOrder,
    OrderOutcome,
    plain,
)

__all__ = [
    "ACTIONS",
    "CAUSE_FEE_ROUNDING",
    "CAUSE_LOST_CANCEL",
    "CAUSE_MISSED_FILL",
    "CAUSE_OUTSIDE",
    "CAUSE_TRACKED_OWN",
    "CAUSE_UNKNOWN",
    "CAUSE_UNTRACKED_OWN",
    "DEFAULT_POLICY",
    "Decision",
    "Drift",
    "ReconcilePolicy",
    "ReconcileResult",
    "Reconciler",
    "TradeWatermark",
]

log = logging.getLogger(__name__)

Action = Literal["log", "correct", "halt"]
ACTIONS: tuple[str, ...] = ("log", "correct", "halt")
_SEVERITY = {"log": 0, "correct": 1, "halt": 2}

CAUSE_MISSED_FILL = "missed fill"
CAUSE_LOST_CANCEL = "lost cancel"
CAUSE_OUTSIDE = "order placed outside the bot"
CAUSE_UNTRACKED_OWN = "own order not tracked (lost ack or restart)"
CAUSE_TRACKED_OWN = "own order, its report not seen yet"
CAUSE_FEE_ROUNDING = "fee rounding"
CAUSE_UNKNOWN = "unknown"

DEFAULT_POLICY: Mapping[str, str] = {
    "balance": "correct",
    "order.cum_qty": "correct",
    "order.missing_venue": "correct",
    # An open order on our account that the bot does not know is how a bot ends up trading twice.
    "order.missing_local": "halt",
    "position": "correct",
    "default": "log",
}

# Built-in cause actions, used unless the config's ``causes`` names the cause.
_CAUSE_DEFAULTS: Mapping[str, str] = {CAUSE_TRACKED_OWN: "correct"}

_ERR_UNKNOWN_ORDER = -2011
_ROUNDING = Decimal(FEE_ROUNDING_UNITS).scaleb(-AMOUNT_PRECISION)


# ------------------------------------------------------------------------------------------------
# Policy
# ------------------------------------------------------------------------------------------------


class ReconcilePolicy(msgspec.Struct, frozen=True):
    """Per-field actions, cause overrides, and the halt/trigger knobs (see the module docstring)."""

    fields: dict[str, str] = msgspec.field(default_factory=lambda: dict(DEFAULT_POLICY))
    causes: dict[str, str] = msgspec.field(default_factory=dict)
    halt_clears_after: int = 1
    trigger_cooldown_s: float = 2.0

    def __post_init__(self) -> None:
        for where, mapping in (("policy", self.fields), ("causes", self.causes)):
            for key, action in mapping.items():
                if action not in ACTIONS:
                    raise ValueError(
                        f"{where}.{key}: action must be one of {', '.join(ACTIONS)}, got {action!r}"
                    )
        if self.halt_clears_after < 0:
            raise ValueError("halt_clears_after must be >= 0")
        if self.trigger_cooldown_s < 0:
            raise ValueError("trigger_cooldown must be >= 0")

    def action_for(self, drift: Drift) -> str:
        """The action for one drift: cause override, then exact field, field head, ``default``."""
        by_cause = self.causes.get(drift.cause) or _CAUSE_DEFAULTS.get(drift.cause)
        if by_cause is not None:
            return by_cause
        f = self.fields
        action = f.get(drift.field)
        if action is None:
            action = f.get(drift.field.split(".", 1)[0])
        if action is None:
            action = f.get("default", "log")
        return action

    @classmethod
    def from_mapping(cls, block: Mapping[str, Any] | None) -> ReconcilePolicy:
        """Build from the ``plugins.reconcile`` block; ValueError names the bad key."""
        from botcore.config import parse_duration

        block = dict(block or {})
        unknown = sorted(set(block) - {"policy", "causes", "halt_clears_after", "trigger_cooldown"})
        if unknown:
            raise ValueError(
                f"unknown key(s) {', '.join(unknown)}; known: policy, causes, halt_clears_after, trigger_cooldown"
            )
        fields = dict(DEFAULT_POLICY)
        for key, value in dict(block.get("policy") or {}).items():
            fields[str(key)] = str(value)
        kwargs: dict[str, Any] = {
            "fields": fields,
            "causes": {str(k): str(v) for k, v in dict(block.get("causes") or {}).items()},
        }
        if "halt_clears_after" in block:
            kwargs["halt_clears_after"] = int(block["halt_clears_after"])
        if "trigger_cooldown" in block:
            value = block["trigger_cooldown"]
            kwargs["trigger_cooldown_s"] = 0.0 if value in (0, "0") else parse_duration(value)
        return cls(**kwargs)

    @classmethod
    def from_config(cls, config: Any) -> ReconcilePolicy:
        """From a ``BotConfig`` (``config.plugins["reconcile"]``); errors carry the YAML line."""
        block = (getattr(config, "plugins", None) or {}).get("reconcile")
        try:
            return cls.from_mapping(block)
        except (ValueError, TypeError) as exc:
            error_at = getattr(config, "error_at", None)
            if error_at is None:
                raise
            raise error_at(("plugins", "reconcile"), str(exc)) from None


# ------------------------------------------------------------------------------------------------
# Results
# ------------------------------------------------------------------------------------------------


class Decision(msgspec.Struct, frozen=True):
    """What the policy decided for one drift."""

    drift: Drift
    action: str


class ReconcileResult(msgspec.Struct, frozen=True):
    """The outcome of one reconciliation on the engine thread."""

    job: str
    drifts: tuple[Drift, ...]
    decisions: tuple[Decision, ...]
    fills_applied: int = 0
    halt_reason: str | None = None

    @property
    def actions(self) -> list[str]:
        return [d.action for d in self.decisions]


# ------------------------------------------------------------------------------------------------
# Trade-id watermark: the one fact a reconcile_full job needs from the engine thread
# ------------------------------------------------------------------------------------------------


class TradeWatermark:
    """Highest trade id applied per symbol, written on the engine thread, read by job threads.

    ``reconcile_full`` asks the venue for trades from ``get(symbol) + 1``; it cannot read the
    position cache (engine-owned), so the engine side publishes the watermark here.
    """

    def __init__(self, initial: Mapping[str, int] | None = None) -> None:
        self._lock = threading.Lock()
        self._ids: dict[str, int] = dict(initial or {})

    def update(self, symbol: str, trade_id: int) -> None:
        with self._lock:
            if trade_id > self._ids.get(symbol, -1):
                self._ids[symbol] = trade_id

    def seed(self, ids: Mapping[str, int]) -> None:
        for symbol, trade_id in ids.items():
            self.update(symbol, int(trade_id))

    def get(self, symbol: str) -> int:
        """-1 when nothing is known for ``symbol``."""
        with self._lock:
            return self._ids.get(symbol, -1)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._ids)


# ------------------------------------------------------------------------------------------------
# The reconciler (engine thread)
# ------------------------------------------------------------------------------------------------


class Reconciler:
    """Applies REST snapshots with a per-field policy; halts quoting on serious drift.

    Runs on the engine thread only (``apply``, ``review``, ``should_reconcile_now``); it holds no
    reference to the engine. As a ``StatefulRiskCheck`` it vetoes orders and reports ``halted``
    while a halt is in force.

    :param policy: the policy (``ReconcilePolicy.from_config(config)``).
    :param is_own_order: tells this run's client order ids from foreign ones (cause refinement).
    :param is_known_order: True if the engine tracks the client order id (triggers, causes, and
        the open orders the cache holds but the engine does not know).
    :param trigger: called with a reason when ``should_reconcile_now`` decides to reconcile now;
        it must only *schedule* the work (e.g. ``Scheduler.run_now``), never block.
    :param clock_ns: monotonic clock for the trigger cooldown.
    """

    name = "reconcile"
    rehearsable = True  # ``check`` only reads the halt
    per_decision = True  # ...which no order of a decision can change

    def __init__(
        self,
        policy: ReconcilePolicy | None = None,
        *,
        is_own_order: Callable[[str], bool] | None = None,
        is_known_order: Callable[[str], bool] | None = None,
        trigger: Callable[[str], None] | None = None,
        clock_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.policy = policy or ReconcilePolicy()
        self.is_own_order = is_own_order
        self.is_known_order = is_known_order
        self.trigger = trigger
        self._clock = clock_ns
        self._halt: str | None = None
        self._clean = 0
        self._last_trigger_ns: int | None = None
        self._user_untrusted = False
        self._last_drifts: Sequence[Drift] | None = None
        self._last_result: ReconcileResult | None = None
        self._reported: set[str] = set()  # client ids already decided as order.missing_local
        self.reconciles = 0
        self.triggers = 0
        self.halts = 0

    # --- StatefulRiskCheck -------------------------------------------------------------------------
    def check(self, order: Any, ctx: Any) -> str | None:
        return self._halt

    def halted(self, ctx: Any = None) -> str | None:
        return self._halt

    def reset(self) -> None:
        """Forget halt, trigger and counter state (a new run reusing this object)."""
        self._halt = None
        self._clean = 0
        self._last_trigger_ns = None
        self._user_untrusted = False
        self._last_drifts = None
        self._last_result = None
        self._reported.clear()
        self.reconciles = self.triggers = self.halts = 0

    def clear_halt(self) -> None:
        """Lift a halt by hand (an operator decided the venue state is fine)."""
        if self._halt is not None:
            log.warning("reconcile halt cleared by hand (was: %s)", self._halt)
        self._halt = None
        self._clean = 0

    # --- applying a snapshot -----------------------------------------------------------------------
    def apply(
        self,
        event: ReconcileSnapshot,
        positions: Any,
        now_ms: int,
        *,
        apply_fill: Callable[[Fill], bool] | None = None,
    ) -> ReconcileResult:
        """Apply ``event`` to ``positions`` (a ``core.PositionCache``) under the policy.

        1. Missed fills (``event.fills``, oldest first) go through ``apply_fill`` (the engine's
           own path, so hooks, strategies and risk checks see them; default
           ``positions.apply_fill``); each symbol whose position moved yields a ``position``
           drift, cause "missed fill".
        2. A dry run (``apply_snapshot(correct=False)``) lists the drifts; causes are refined and
           the policy decides each one.
        3. If anything is to be corrected, the snapshot is *masked* (the drifts to leave alone
           are made to agree with the local values) and applied with ``correct=True``, so the
           cache's fencing rules hold for exactly the drifts the policy corrects.
        4. Open orders the cache holds and the venue lists, but the engine does not track (the
           cache took them from the user stream), are reported once as ``order.missing_local``.
        """
        fills = sorted(event.fills, key=lambda f: (f.symbol, f.trade_id))
        applied = 0
        moved: dict[str, Decimal] = {}
        fee_assets: set[str] = set()
        for fill in fills:
            try:
                before = positions.position(fill.symbol)
            except (ValueError, KeyError):
                continue  # a symbol the cache does not book
            new = apply_fill(fill) if apply_fill is not None else positions.apply_fill(fill)
            if new:
                applied += 1
                moved.setdefault(fill.symbol, before)
                if fill.commission_asset:
                    fee_assets.add(fill.commission_asset)
        pos_drifts = [
            Drift("position", sym, plain(before), plain(positions.position(sym)), 0, CAUSE_MISSED_FILL, True)
            for sym, before in moved.items()
        ]

        dry = positions.apply_snapshot(event.snapshot, now_ms, correct=False)
        dry = self._refine_all(dry, {f.client_order_id for f in event.fills}, fee_assets)
        actions = [self.policy.action_for(d) for d in dry]
        unknown = self._untracked(event.snapshot, positions, dry)

        final: list[Drift] = []
        if any(a != "log" for a in actions):
            keep = [d for d, a in zip(dry, actions, strict=True) if a == "log"]
            masked = _mask(event.snapshot, keep, positions)
            corrected = {
                (d.field, d.key): d.corrected for d in positions.apply_snapshot(masked, now_ms, correct=True)
            }
            for d, a in zip(dry, actions, strict=True):
                fixed = a != "log" and corrected.get((d.field, d.key), False)
                final.append(msgspec.structs.replace(d, corrected=bool(fixed)))
        else:
            final = [msgspec.structs.replace(d, corrected=False) for d in dry]

        # Already in the cache: "correct" (and "halt") have nothing left to change.
        unknown_actions = [self.policy.action_for(d) for d in unknown]
        final += [
            msgspec.structs.replace(d, corrected=a != "log")
            for d, a in zip(unknown, unknown_actions, strict=True)
        ]
        actions += unknown_actions
        pos_actions = [self.policy.action_for(d) for d in pos_drifts]
        drifts = tuple(pos_drifts + final)
        decisions = tuple(Decision(d, a) for d, a in zip(drifts, pos_actions + actions, strict=True))
        result = self._conclude(event.job, drifts, decisions, applied)
        self._last_drifts = result.drifts
        self._last_result = result
        return result

    def review(self, job: str, drifts: Sequence[Drift]) -> ReconcileResult:
        """Decide on drifts someone else already applied (the engine's default reconcile path).

        Used from the ``botcore_reconcile_report`` hook; the drifts ``apply`` just returned are
        recognised and not decided twice.
        """
        if self._last_drifts is not None and drifts is self._last_drifts and self._last_result is not None:
            return self._last_result
        decisions = tuple(Decision(d, self.policy.action_for(d)) for d in drifts)
        result = self._conclude(job, tuple(drifts), decisions, 0)
        self._last_drifts = drifts
        self._last_result = result
        return result

    def _conclude(
        self, job: str, drifts: tuple[Drift, ...], decisions: tuple[Decision, ...], applied: int
    ) -> ReconcileResult:
        self.reconciles += 1
        self._reported.update(d.key for d in drifts if d.field == "order.missing_local")
        serious = [d for d in decisions if d.action == "halt"]
        if serious:
            first = serious[0].drift
            reason = (
                f"reconcile {job}: {first.field} {first.key} local={first.local or '-'} "
                f"venue={first.venue or '-'} ({first.cause})"
            )
            if len(serious) > 1:
                reason += f" and {len(serious) - 1} more"
            if self._halt is None:
                self.halts += 1
                log.error("quoting halted by reconciliation: %s", reason)
            self._halt = reason
            self._clean = 0
        elif self._halt is not None:
            self._clean += 1
            need = self.policy.halt_clears_after
            if need and self._clean >= need:
                log.warning("reconcile halt lifted after %d clean reconcile(s): %s", self._clean, self._halt)
                self._halt = None
                self._clean = 0
        return ReconcileResult(job, drifts, decisions, applied, self._halt)

    def _untracked(self, snapshot: AccountSnapshot, positions: Any, dry: Sequence[Drift]) -> list[Drift]:
        """Open orders of the cache that the venue lists and the engine does not track, not yet reported.

        The cache books every order of the account from the user stream, so an order placed on
        the website is already "local" when the snapshot comes: only the engine's tracker tells
        it is not ours. Reported once (``_reported``; also fed by ``review``, e.g. the start-up
        drifts), since after that the order is known and the policy has acted on it.
        """
        if self.is_known_order is None:
            return []
        open_ids = {o.client_order_id for o in positions.open_orders()}
        self._reported &= open_ids | {d.key for d in dry}  # forget orders that are gone
        venue = {o.client_order_id: o for o in snapshot.open_orders}
        out = []
        for cid in sorted(open_ids):
            vo = venue.get(cid)
            if vo is None or cid in self._reported or self.is_known_order(cid):
                continue
            own = self.is_own_order(cid) if self.is_own_order is not None else False
            cause = CAUSE_UNTRACKED_OWN if own else CAUSE_OUTSIDE
            out.append(Drift("order.missing_local", cid, "", str(vo.status), 0, cause, False))
        return out

    def _refine_all(self, dry: Sequence[Drift], filled_cids: set[str], fee_assets: set[str]) -> list[Drift]:
        """Sharpen the cache's causes with what only the reconciler knows (trades, own ids, shapes).

        The cache blames any drifted balance of a traded asset on a missed fill, and an order the
        venue no longer lists on a missed fill when such a balance drifted. A fill changes the
        asset's total; an order opening or closing only moves funds between free and locked. So
        when no asset's total moved, nothing filled: a vanished order was cancelled (a lost
        cancel) and the balances moved for it, or for an order that appeared.
        """
        totals: dict[str, Decimal] = {}
        for d in dry:
            if d.field in ("balance.free", "balance.locked"):
                totals[d.key] = totals.get(d.key, Decimal(0)) + Decimal(d.venue) - Decimal(d.local)
        filled = any(abs(t) > _ROUNDING for t in totals.values()) or bool(fee_assets)
        orders = [self._refine_order(d, filled_cids, filled) for d in dry if d.field.startswith("order.")]
        unfilled_gone = any(d.field == "order.missing_venue" and d.cause == CAUSE_LOST_CANCEL for d in orders)
        appeared = next((d.cause for d in orders if d.field == "order.missing_local"), CAUSE_UNKNOWN)
        by_id = {(d.field, d.key): d for d in orders}
        out = []
        for d in dry:
            if d.field.startswith("order."):
                out.append(by_id[(d.field, d.key)])
                continue
            cause = d.cause
            if d.field.startswith("balance.") and cause == CAUSE_UNKNOWN and d.key in fee_assets:
                cause = CAUSE_MISSED_FILL  # e.g. a BNB commission of a trade the stream never showed
            elif (
                d.field.startswith("balance.")
                and cause == CAUSE_MISSED_FILL
                and d.key not in fee_assets
                and abs(totals.get(d.key, Decimal(0))) <= _ROUNDING
            ):
                # Funds released (locked down, free up) belong to an order that went away;
                # funds locked, to an order that appeared.
                released = (Decimal(d.venue) < Decimal(d.local)) == (d.field == "balance.locked")
                gone_cause = CAUSE_LOST_CANCEL if unfilled_gone else CAUSE_UNKNOWN
                cause = gone_cause if released else appeared
            out.append(d if cause == d.cause else msgspec.structs.replace(d, cause=cause))
        return out

    def _refine_order(self, d: Drift, filled_cids: set[str], filled: bool) -> Drift:
        cause = d.cause
        if d.field == "order.missing_local":
            if self.is_known_order is not None and self.is_known_order(d.key):
                cause = CAUSE_TRACKED_OWN  # ours and in flight: the NEW report is late, not lost
            else:
                own = self.is_own_order(d.key) if self.is_own_order is not None else False
                cause = CAUSE_UNTRACKED_OWN if own else CAUSE_OUTSIDE
        elif d.field == "order.missing_venue":
            if d.key in filled_cids:
                cause = CAUSE_MISSED_FILL  # the venue's trades show it filled
            elif cause == CAUSE_MISSED_FILL and not filled:
                cause = CAUSE_LOST_CANCEL  # the balances only moved from locked to free
        return d if cause == d.cause else msgspec.structs.replace(d, cause=cause)

    # --- triggers ----------------------------------------------------------------------------------
    def should_reconcile_now(self, event: Any) -> str | None:
        """A reason to reconcile immediately, or None; calls ``trigger(reason)`` when set.

        Suspicious: an execution report (or fill) for an order the engine does not know, a cancel
        rejected with -2011 (the order is gone or never arrived), the user stream coming back
        after a reconnect. Accepts engine events (``UserEvent``, ``GatewayResult``,
        ``StreamStatus``), their payloads (``ExecutionReport``, ``Fill``, ``OrderOutcome``) and
        ``(stream, trusted, reason)`` tuples from the trust hook. Triggers are spaced by
        ``trigger_cooldown``: the scheduled reconcile catches whatever a cooldown swallowed.
        """
        reason = self._suspicion(event)
        if reason is None:
            return None
        now = self._clock()
        cooldown = int(self.policy.trigger_cooldown_s * 1e9)
        if self._last_trigger_ns is not None and now - self._last_trigger_ns < cooldown:
            return None
        self._last_trigger_ns = now
        self.triggers += 1
        log.info("reconciling now: %s", reason)
        if self.trigger is not None:
            try:
                self.trigger(reason)
            except Exception:
                log.exception("reconcile trigger failed")
        return reason

    def _suspicion(self, event: Any) -> str | None:
        if isinstance(event, UserEvent):
            event = event.event
        elif isinstance(event, GatewayResult):
            event = event.outcome
        if isinstance(event, (ExecutionReport, Fill)):
            if self.is_known_order is not None and not self.is_known_order(event.client_order_id):
                kind = "fill" if isinstance(event, Fill) else "execution report"
                return f"{kind} for unknown order {event.client_order_id}"
            return None
        if isinstance(event, OrderOutcome):
            if event.action == "cancel" and event.error_code == _ERR_UNKNOWN_ORDER:
                return f"cancel of {event.client_order_id} rejected: unknown order (-2011)"
            return None
        if isinstance(event, StreamStatus):
            return self._stream(event.stream, event.trusted, event.reason)
        if isinstance(event, tuple) and len(event) == 3:
            return self._stream(str(event[0]), bool(event[1]), str(event[2]))
        return None

    def _stream(self, stream: str, trusted: bool, reason: str) -> str | None:
        if stream != "user":
            return None
        if not trusted:
            self._user_untrusted = True
            return None
        if self._user_untrusted:
            self._user_untrusted = False
            return f"user stream back ({reason}): events may have been missed"
        return None


# ------------------------------------------------------------------------------------------------
# Masking: make the drifts the policy leaves alone agree with the local values
# ------------------------------------------------------------------------------------------------


def _mask(snapshot: AccountSnapshot, keep: Iterable[Drift], positions: Any) -> AccountSnapshot:
    keep = list(keep)
    if not keep:
        return snapshot
    balances = {b.asset: b for b in snapshot.balances}
    orders = {o.client_order_id: o for o in snapshot.open_orders}
    for d in keep:
        if d.field in ("balance.free", "balance.locked"):
            b = balances.get(d.key) or Balance(d.key, Decimal(0), Decimal(0))
            if d.field == "balance.free":
                b = Balance(b.asset, positions.free(d.key), b.locked)
            else:
                b = Balance(b.asset, b.free, positions.locked(d.key))
            balances[d.key] = b
        elif d.field == "order.missing_local":
            orders.pop(d.key, None)
        elif d.field in ("order.missing_venue", "order.cum_qty"):
            local: OpenOrder | None = positions.open_order(d.key)
            if local is not None:
                orders[d.key] = local
        else:
            log.warning("reconcile: cannot leave drift %s/%s alone while correcting others", d.field, d.key)
    return msgspec.structs.replace(
        snapshot, balances=tuple(balances.values()), open_orders=tuple(orders.values())
    )
