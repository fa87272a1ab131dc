"""Reconciliation: the per-field policy, cause refinement, triggers, jobs, and every race.

The races are played against the real position cache (compiled and pure twin): a REST snapshot
is fetched at one moment and applied later, after websocket events that are newer than it.
"""

from __future__ import annotations

import importlib
import json
import os
import threading
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import pytest

from botcore import builtin_services
from botcore.config import ConfigError, config_from_text
from botcore.engine import Engine, EngineConfig, RiskLink
from botcore.events import (
    DepthSnapshot,
    GatewayResult,
    JobRequest,
    MarketFrame,
    ReconcileSnapshot,
    Stop,
    StreamStatus,
    UserEvent,
)
from botcore.jobs import BOOK_REBUILD, CLOCK_SKEW, Jobs, rebuild_books, used_weight
from botcore.model import (
    AccountSnapshot,
    AccountUpdate,
    Balance,
    BookTop,
    CancelRequest,
    ExecutionReport,
    Fill,
    Instrument,
    OpenOrder,
    OrderOutcome,
    OrderRequest,
    OrderStatus,
    Quote,
    Side,
)
from botcore.plugins import Hooks, collect_registry, get_plugin_manager
from botcore.reconcile import (
    CAUSE_LOST_CANCEL,
    CAUSE_MISSED_FILL,
    CAUSE_OUTSIDE,
    CAUSE_TRACKED_OWN,
    CAUSE_UNTRACKED_OWN,
    Drift,
    ReconcilePolicy,
    Reconciler,
    TradeWatermark,
)

D = Decimal
S = OrderStatus
SYM = "BTCUSDT"
INST = Instrument(SYM, "BTC", "USDT", D("0.01"), D("0.00001"), min_qty=D("0.00001"), min_notional=D("5"))
IMPLS = ["py"] if os.environ.get("BOTCORE_NO_EXTENSIONS", "") not in ("", "0") else ["py", "c"]


@pytest.fixture(params=IMPLS)
def cache(request: pytest.FixtureRequest) -> Any:
    """A position cache (each implementation) with 1000 USDT and 1 BTC as of t=50."""
    mod = importlib.import_module(f"botcore.core._position_{request.param}")
    c = mod.PositionCache()
    c.add_instrument(INST)
    c.apply_account_update(
        AccountUpdate((Balance("USDT", D("1000"), D(0)), Balance("BTC", D("1"), D(0))), 50)
    )
    return c


def er(
    cid: str,
    status: S,
    t: int,
    exec_type: str = "NEW",
    cum: str = "0",
    last: str = "0",
    trade_id: int = -1,
    order_id: int = 1,
) -> ExecutionReport:
    return ExecutionReport(
        SYM,
        cid,
        order_id,
        Side.BUY,
        "LIMIT_MAKER",
        status,
        exec_type,
        D("100"),
        D("0.002"),
        D(cum),
        D(cum) * 100,
        last_qty=D(last),
        last_price=D("100") if D(last) else D(0),
        commission=D(0),
        commission_asset="USDT" if D(last) else None,
        trade_id=trade_id,
        event_time_ms=t,
        transaction_time_ms=t,
    )


def oo(cid: str, t: int, status: S = S.NEW, cum: str = "0", order_id: int = 1) -> OpenOrder:
    return OpenOrder(
        SYM, cid, order_id, Side.BUY, "LIMIT_MAKER", status, D("100"), D("0.002"), D(cum), D(cum) * 100, t, t
    )


def snap(
    at: int,
    fetched: int,
    orders: Sequence[OpenOrder] = (),
    usdt: str = "1000",
    usdt_locked: str = "0",
    btc: str = "1",
) -> AccountSnapshot:
    balances = (Balance("USDT", D(usdt), D(usdt_locked)), Balance("BTC", D(btc), D(0)))
    return AccountSnapshot(balances, tuple(orders), at, fetched)


def fill(cid: str, trade_id: int, qty: str = "0.001") -> Fill:
    return Fill(SYM, cid, 1, trade_id, Side.BUY, D("100"), D(qty), D(0), "USDT", True, 100)


def reconciler(**policy: Any) -> Reconciler:
    return Reconciler(ReconcilePolicy.from_mapping(policy), is_own_order=lambda cid: cid.startswith("bcr1-"))


def ev(
    snapshot: AccountSnapshot, fills: Sequence[Fill] = (), job: str = "reconcile_light"
) -> ReconcileSnapshot:
    return ReconcileSnapshot(job, snapshot, tuple(fills))


# ------------------------------------------------------------------------------------------------
# Policy
# ------------------------------------------------------------------------------------------------


def test_policy_lookup_cause_then_field_then_head_then_default() -> None:
    p = ReconcilePolicy.from_mapping(
        {
            "policy": {"balance": "log", "balance.locked": "halt", "default": "correct"},
            "causes": {"fee rounding": "log"},
        }
    )
    assert p.action_for(Drift("balance.free", "USDT", "1", "2")) == "log"  # head
    assert p.action_for(Drift("balance.locked", "USDT", "1", "2")) == "halt"  # exact beats head
    assert p.action_for(Drift("balance.locked", "USDT", "1", "1.00000001", cause="fee rounding")) == "log"
    assert p.action_for(Drift("something.new", "k", "", "")) == "correct"  # default
    defaults = ReconcilePolicy()
    assert defaults.action_for(Drift("order.missing_local", "x", "", "NEW")) == "halt"
    assert defaults.action_for(Drift("order.missing_venue", "x", "NEW", "")) == "correct"


def test_policy_refuses_bad_actions_and_keys() -> None:
    with pytest.raises(ValueError, match="action must be one of"):
        ReconcilePolicy.from_mapping({"policy": {"balance": "fix"}})
    with pytest.raises(ValueError, match="unknown key"):
        ReconcilePolicy.from_mapping({"polcy": {}})
    with pytest.raises(ValueError, match="halt_clears_after"):
        ReconcilePolicy.from_mapping({"halt_clears_after": -1})
    assert ReconcilePolicy.from_mapping({"trigger_cooldown": "500ms"}).trigger_cooldown_s == 0.5


def test_policy_errors_point_at_the_yaml_line() -> None:
    text = "exchange:\n  name: replay\n  symbols: [BTCUSDT]\nplugins:\n  reconcile:\n    policy: {balance: fix}\n"
    config = config_from_text(text, source="bot.yaml")
    with pytest.raises(ConfigError) as err:
        ReconcilePolicy.from_config(config)
    assert "bot.yaml:5: plugins.reconcile: policy.balance" in str(err.value)


# ------------------------------------------------------------------------------------------------
# Applying snapshots
# ------------------------------------------------------------------------------------------------


def test_correct_policy_takes_the_venue_values(cache: Any) -> None:
    r = reconciler()
    result = r.apply(ev(snap(100, 100, usdt="990")), cache, 200)
    assert [(d.field, d.key, d.local, d.venue, d.corrected) for d in result.drifts] == [
        ("balance.free", "USDT", "1000", "990", True)
    ]
    assert result.actions == ["correct"] and result.halt_reason is None
    assert cache.free("USDT") == D("990")


def test_log_policy_keeps_local_values_while_other_fields_are_corrected(cache: Any) -> None:
    cache.apply_execution_report(er("bcr1-1", S.NEW, 60))
    r = reconciler(policy={"balance": "log"})
    result = r.apply(ev(snap(100, 100, usdt="990")), cache, 200)  # the venue lost our order too
    by_field = {d.field: d for d in result.drifts}
    assert by_field["balance.free"].corrected is False and cache.free("USDT") == D("1000")
    assert by_field["order.missing_venue"].corrected is True and cache.open_order("bcr1-1") is None
    assert by_field["order.missing_venue"].cause == CAUSE_MISSED_FILL  # its quote balance moved too
    assert dict(zip([d.field for d in result.drifts], result.actions, strict=True)) == {
        "balance.free": "log",
        "order.missing_venue": "correct",
    }
    # the logged drift is still there next time: nothing was overwritten
    again = r.apply(ev(snap(101, 101, usdt="990")), cache, 201)
    assert [d.field for d in again.drifts] == ["balance.free"]


def test_everything_logged_changes_nothing(cache: Any) -> None:
    cache.apply_execution_report(er("bcr1-1", S.NEW, 60))
    r = reconciler(
        policy={
            "default": "log",
            "balance": "log",
            "order.missing_venue": "log",
            "order.missing_local": "log",
        }
    )
    result = r.apply(ev(snap(100, 100, [oo("web-7", 90, order_id=9)], usdt="990")), cache, 200)
    assert {d.field for d in result.drifts} == {"balance.free", "order.missing_venue", "order.missing_local"}
    assert not any(d.corrected for d in result.drifts)
    assert cache.free("USDT") == D("1000") and cache.open_order("bcr1-1") is not None
    assert cache.open_order("web-7") is None


def test_cum_qty_log_keeps_the_local_record(cache: Any) -> None:
    cache.apply_execution_report(er("bcr1-1", S.NEW, 60))
    r = reconciler(policy={"order.cum_qty": "log"})
    result = r.apply(
        ev(snap(100, 100, [oo("bcr1-1", 90, S.PARTIALLY_FILLED, cum="0.001")], usdt="990")), cache, 200
    )
    fields = {d.field: d for d in result.drifts}
    assert fields["order.cum_qty"].corrected is False and fields["balance.free"].corrected is True
    assert cache.open_order("bcr1-1").cum_qty == 0


def test_causes_are_refined_with_own_ids_and_trades(cache: Any) -> None:
    cache.apply_execution_report(er("bcr1-2", S.NEW, 60, order_id=2))
    r = reconciler(policy={"order.missing_local": "correct"})
    orders = [oo("bcr1-1", 90, order_id=1), oo("web-7", 90, order_id=9)]
    result = r.apply(
        ev(snap(100, 100, orders), [fill("bcr1-2", 5, qty="0.002")], "reconcile_full"), cache, 200
    )
    causes = {(d.field, d.key): d.cause for d in result.drifts}
    assert causes[("order.missing_local", "bcr1-1")] == CAUSE_UNTRACKED_OWN
    assert causes[("order.missing_local", "web-7")] == CAUSE_OUTSIDE
    assert causes[("order.missing_venue", "bcr1-2")] == CAUSE_MISSED_FILL  # the trades show it filled


def test_an_order_the_engine_tracks_is_not_foreign_when_its_new_report_is_late(cache: Any) -> None:
    # bcr1-1 was placed by the engine (tracked, ack received) and the venue lists it, but its NEW
    # report is still on its way: the snapshot finds it missing from the cache.
    tracked = {"bcr1-1"}
    r = Reconciler(
        ReconcilePolicy(),  # the defaults: order.missing_local halts
        is_own_order=lambda cid: cid.startswith("bcr1-"),
        is_known_order=tracked.__contains__,
    )
    result = r.apply(ev(snap(100, 100, [oo("bcr1-1", 90)])), cache, 200)
    assert [(d.field, d.key, d.cause, d.corrected) for d in result.drifts] == [
        ("order.missing_local", "bcr1-1", CAUSE_TRACKED_OWN, True)
    ]
    assert result.actions == ["correct"] and result.halt_reason is None and r.halted() is None
    assert cache.open_order("bcr1-1") is not None  # adopted
    cache.apply_execution_report(er("bcr1-1", S.NEW, 90))  # the late report changes nothing
    assert r.apply(ev(snap(101, 101, [oo("bcr1-1", 90)])), cache, 201).drifts == ()
    # an own id the engine does not track still halts (lost track: restart, or a lost request) ...
    halted = r.apply(ev(snap(102, 102, [oo("bcr1-1", 90), oo("bcr1-2", 95, order_id=2)])), cache, 202)
    assert [(d.key, d.cause) for d in halted.drifts] == [("bcr1-2", CAUSE_UNTRACKED_OWN)]
    assert halted.halt_reason is not None
    # ... and the built-in action of the cause gives way to the config
    strict = Reconciler(
        ReconcilePolicy.from_mapping({"causes": {CAUSE_TRACKED_OWN: "halt"}}),
        is_known_order=lambda cid: True,
    )
    assert strict.apply(ev(snap(103, 103, [oo("bcr1-3", 96, order_id=3)])), cache, 203).halt_reason


def test_a_lost_cancel_with_its_balance_update_lost_is_not_a_missed_fill(cache: Any) -> None:
    # our order locked 0.2 USDT; the venue cancelled it and both the CANCELED report and the
    # balance update were lost: the funds only moved from locked back to free
    cache.apply_execution_report(er("bcr1-4", S.NEW, 60, order_id=4))
    cache.apply_account_update(AccountUpdate((Balance("USDT", D("999.8"), D("0.2")),), 60))
    result = reconciler().apply(ev(snap(150, 200, usdt="1000")), cache, 210)
    assert {(d.field, d.key): d.cause for d in result.drifts} == {
        ("balance.free", "USDT"): CAUSE_LOST_CANCEL,
        ("balance.locked", "USDT"): CAUSE_LOST_CANCEL,
        ("order.missing_venue", "bcr1-4"): CAUSE_LOST_CANCEL,
    }
    assert all(d.corrected for d in result.drifts) and result.halt_reason is None
    assert (cache.free("USDT"), cache.locked("USDT"), cache.open_order("bcr1-4")) == (D("1000"), D(0), None)


def test_a_vanished_order_whose_balances_show_a_trade_stays_a_missed_fill(cache: Any) -> None:
    # no trades in the event (a light reconcile), but the totals moved: 0.2 USDT left, 0.002 BTC came
    cache.apply_execution_report(er("bcr1-4", S.NEW, 60, order_id=4))
    cache.apply_account_update(AccountUpdate((Balance("USDT", D("999.8"), D("0.2")),), 60))
    result = reconciler().apply(ev(snap(150, 200, usdt="999.8", btc="1.002")), cache, 210)
    assert {(d.field, d.key): d.cause for d in result.drifts} == {
        ("balance.locked", "USDT"): CAUSE_MISSED_FILL,
        ("balance.free", "BTC"): CAUSE_MISSED_FILL,
        ("order.missing_venue", "bcr1-4"): CAUSE_MISSED_FILL,
    }


def test_funds_locked_by_an_order_placed_outside_are_blamed_on_it(cache: Any) -> None:
    r = reconciler(policy={"order.missing_local": "correct"})
    result = r.apply(
        ev(snap(100, 100, [oo("web-7", 90, order_id=9)], usdt="999.8", usdt_locked="0.2")), cache, 200
    )
    assert {(d.field, d.key): d.cause for d in result.drifts} == {
        ("balance.free", "USDT"): CAUSE_OUTSIDE,
        ("balance.locked", "USDT"): CAUSE_OUTSIDE,
        ("order.missing_local", "web-7"): CAUSE_OUTSIDE,
    }


def test_an_order_the_cache_took_from_the_stream_but_the_engine_never_placed_is_reported_once(
    cache: Any,
) -> None:
    # Placed on the website: its NEW report reached the cache (which books every order of the
    # account), so the snapshot agrees with the cache; only the engine does not know the order.
    cache.apply_execution_report(er("web-7", S.NEW, 60, order_id=9))
    cache.apply_execution_report(er("bcr1-1", S.NEW, 60, order_id=1))
    tracked = {"bcr1-1"}
    r = Reconciler(
        ReconcilePolicy(),
        is_own_order=lambda cid: cid.startswith("bcr1-"),
        is_known_order=tracked.__contains__,
    )
    both = snap(100, 100, [oo("web-7", 60, order_id=9), oo("bcr1-1", 60, order_id=1)])
    result = r.apply(ev(both), cache, 200)
    assert [(d.field, d.key, d.venue, d.cause, d.corrected) for d in result.drifts] == [
        ("order.missing_local", "web-7", "NEW", CAUSE_OUTSIDE, True)
    ]
    assert result.actions == ["halt"] and "web-7" in (r.halted() or "")
    again = r.apply(ev(both), cache, 201)  # reported once: now it is known, the halt lifts
    assert again.drifts == () and r.halted() is None
    # once it is gone and back (a new order under the same id), it is news again
    cache.apply_execution_report(er("web-7", S.CANCELED, 110, "CANCELED", order_id=9))
    assert r.apply(ev(snap(120, 120, [oo("bcr1-1", 60, order_id=1)])), cache, 202).drifts == ()
    cache.apply_execution_report(er("web-7", S.NEW, 130, order_id=10))
    back = r.apply(ev(snap(140, 140, [oo("web-7", 130, order_id=10), oo("bcr1-1", 60)])), cache, 203)
    assert [(d.field, d.key) for d in back.drifts] == [("order.missing_local", "web-7")]
    # without is_known_order (no engine to ask) nothing is guessed
    plain_r = reconciler()
    assert (
        plain_r.apply(
            ev(snap(150, 150, [oo("web-7", 130, order_id=10), oo("bcr1-1", 60)])), cache, 204
        ).drifts
        == ()
    )


def test_missed_fills_are_applied_once_and_reported_as_position_drift(cache: Any) -> None:
    r = reconciler()
    applied: list[int] = []

    def apply_fill(f: Fill) -> bool:  # the engine's path: hooks and strategies see the fill
        new = cache.apply_fill(f)
        if new:
            applied.append(f.trade_id)
        return new

    cache.apply_execution_report(
        er("bcr1-1", S.PARTIALLY_FILLED, 60, "TRADE", cum="0.001", last="0.001", trade_id=4)
    )
    fills = [fill("bcr1-1", 5), fill("bcr1-1", 4)]  # 4 came through the stream already
    result = r.apply(
        ev(snap(100, 100, [oo("bcr1-1", 95, S.FILLED)]), fills, "reconcile_full"),
        cache,
        200,
        apply_fill=apply_fill,
    )
    assert applied == [5] and result.fills_applied == 1
    assert cache.position(SYM) == D("0.002")
    pos = [d for d in result.drifts if d.field == "position"]
    assert [(d.key, d.local, d.venue, d.cause, d.corrected) for d in pos] == [
        (SYM, "0.001", "0.002", CAUSE_MISSED_FILL, True)
    ]
    again = r.apply(ev(snap(100, 100), fills, "reconcile_full"), cache, 201, apply_fill=apply_fill)
    assert not [d for d in again.drifts if d.field == "position"] and applied == [5]


# ------------------------------------------------------------------------------------------------
# Races: the snapshot is fetched at t=100 and applied after newer websocket events
# ------------------------------------------------------------------------------------------------


def test_race_fill_while_the_snapshot_is_in_flight(cache: Any) -> None:
    cache.apply_execution_report(er("bcr1-1", S.NEW, 60))
    cache.apply_account_update(AccountUpdate((Balance("USDT", D("999.8"), D("0.2")),), 60))
    in_flight = snap(60, 100, [oo("bcr1-1", 60)], usdt="999.8", usdt_locked="0.2")
    # the fill reaches us over the stream before the engine takes the snapshot off the queue
    cache.apply_execution_report(er("bcr1-1", S.FILLED, 120, "TRADE", cum="0.002", last="0.002", trade_id=9))
    cache.apply_account_update(
        AccountUpdate((Balance("USDT", D("999.8"), D(0)), Balance("BTC", D("1.002"), D(0))), 120)
    )
    result = reconciler().apply(ev(in_flight), cache, 130)
    assert result.drifts == () and result.halt_reason is None
    assert cache.open_order("bcr1-1") is None  # not resurrected by the older snapshot
    assert (cache.locked("USDT"), cache.free("BTC"), cache.position(SYM)) == (D(0), D("1.002"), D("0.002"))


def test_race_order_placed_after_the_snapshot_was_taken(cache: Any) -> None:
    in_flight = snap(90, 100)
    cache.apply_execution_report(er("bcr1-2", S.NEW, 110, order_id=2))
    result = reconciler().apply(ev(in_flight), cache, 120)
    assert result.drifts == () and cache.open_order("bcr1-2") is not None


def test_race_order_cancelled_after_the_snapshot_was_taken(cache: Any) -> None:
    cache.apply_execution_report(er("bcr1-3", S.NEW, 60, order_id=3))
    in_flight = snap(60, 100, [oo("bcr1-3", 60, order_id=3)])
    cache.apply_execution_report(er("bcr1-3", S.CANCELED, 110, "CANCELED", order_id=3))
    result = reconciler().apply(ev(in_flight), cache, 120)
    assert result.drifts == () and result.halt_reason is None
    assert cache.open_order("bcr1-3") is None  # the older snapshot does not re-adopt it


def test_race_venue_ahead_then_the_late_stream_fill(cache: Any) -> None:
    cache.apply_execution_report(er("bcr1-1", S.NEW, 60))
    venue_ahead = snap(60, 200, [oo("bcr1-1", 190, S.PARTIALLY_FILLED, cum="0.001")])
    result = reconciler().apply(ev(venue_ahead), cache, 210)
    assert [(d.field, d.cause, d.corrected) for d in result.drifts] == [
        ("order.cum_qty", CAUSE_MISSED_FILL, True)
    ]
    assert cache.open_order("bcr1-1").cum_qty == D("0.001") and cache.position(SYM) == 0
    late = er("bcr1-1", S.PARTIALLY_FILLED, 190, "TRADE", cum="0.001", last="0.001", trade_id=11)
    assert cache.apply_execution_report(late) is not None  # the fill itself still counts, once
    assert cache.apply_execution_report(late) is None
    assert cache.position(SYM) == D("0.001")


def test_race_lost_cancel_is_corrected(cache: Any) -> None:
    cache.apply_execution_report(er("bcr1-4", S.NEW, 60, order_id=4))
    result = reconciler().apply(ev(snap(150, 200)), cache, 210)
    assert [(d.field, d.key, d.cause, d.corrected) for d in result.drifts] == [
        ("order.missing_venue", "bcr1-4", CAUSE_LOST_CANCEL, True)
    ]
    assert cache.open_order("bcr1-4") is None


# ------------------------------------------------------------------------------------------------
# Halting
# ------------------------------------------------------------------------------------------------


def test_halt_pauses_until_clean_reconciles(cache: Any) -> None:
    r = reconciler(halt_clears_after=2)
    foreign = snap(100, 100, [oo("web-1", 90, order_id=5)])
    result = r.apply(ev(foreign), cache, 200)
    assert result.halt_reason and "order.missing_local web-1" in result.halt_reason
    assert r.halted() == result.halt_reason and r.check(object(), None) == result.halt_reason
    assert cache.open_order("web-1") is not None  # halt corrects too: the order is now known
    assert r.apply(ev(foreign), cache, 201).halt_reason is not None  # one clean reconcile: not enough
    assert r.apply(ev(foreign), cache, 202).halt_reason is None
    assert r.halted() is None and r.halts == 1


def test_manual_halt_clearing(cache: Any) -> None:
    r = reconciler(halt_clears_after=0)
    r.apply(ev(snap(100, 100, [oo("web-1", 90, order_id=5)])), cache, 200)
    for t in range(3):
        assert r.apply(ev(snap(100, 100, [oo("web-1", 90, order_id=5)])), cache, 300 + t).halt_reason
    r.clear_halt()
    assert r.halted() is None


def test_review_decides_on_drifts_already_applied_and_never_twice(cache: Any) -> None:
    r = reconciler()
    drifts = [Drift("order.missing_local", "web-1", "", "NEW", 0, CAUSE_OUTSIDE, True)]
    assert r.review("light", drifts).halt_reason is not None
    result = r.apply(ev(snap(100, 100, usdt="5")), cache, 200)  # clean of halts: lifts it
    assert result.halt_reason is None and r.reconciles == 2
    assert r.review("light", result.drifts) is result and r.reconciles == 2  # the hook after apply


# ------------------------------------------------------------------------------------------------
# Triggers
# ------------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 10**12

    def __call__(self) -> int:
        return self.now


def test_triggers_on_suspicious_events_with_a_cooldown() -> None:
    clock = Clock()
    fired: list[str] = []
    known = {"bcr1-1"}
    r = Reconciler(
        ReconcilePolicy(trigger_cooldown_s=1.0),
        is_known_order=known.__contains__,
        trigger=fired.append,
        clock_ns=clock,
    )
    assert r.should_reconcile_now(UserEvent(er("bcr1-1", S.NEW, 1), 0)) is None
    reason = r.should_reconcile_now(UserEvent(er("web-9", S.NEW, 1), 0))
    assert reason == "execution report for unknown order web-9" and fired == [reason]
    assert r.should_reconcile_now(fill("web-9", 3)) is None  # cooldown
    clock.now += 1_000_000_000
    assert r.should_reconcile_now(fill("web-9", 3)) == "fill for unknown order web-9"
    clock.now += 1_000_000_000
    cancel_gone = OrderOutcome(
        "cancel", SYM, "bcr1-1", S.REJECTED, error_code=-2011, error_msg="Unknown order sent."
    )
    assert "-2011" in (r.should_reconcile_now(GatewayResult(cancel_gone)) or "")
    clock.now += 1_000_000_000
    assert r.should_reconcile_now(OrderOutcome("cancel", SYM, "bcr1-1", S.REJECTED, error_code=-1013)) is None
    assert r.should_reconcile_now(OrderOutcome("new", SYM, "bcr1-1", S.UNKNOWN)) is None
    # a reconnect of the private stream: untrusted, then trusted again
    assert r.should_reconcile_now(StreamStatus("market:BTCUSDT", False, "gap", 0)) is None
    assert r.should_reconcile_now(StreamStatus("market:BTCUSDT", True, "resynced", 0)) is None
    assert r.should_reconcile_now(StreamStatus("user", True, "heartbeat", 0)) is None
    assert r.should_reconcile_now(("user", False, "reconnecting")) is None
    assert "user stream back" in (r.should_reconcile_now(("user", True, "resubscribed")) or "")
    assert r.triggers == 4 and len(fired) == 4


def test_a_failing_trigger_does_not_escape() -> None:
    def boom(reason: str) -> None:
        raise RuntimeError("no scheduler")

    r = Reconciler(is_known_order=lambda cid: False, trigger=boom)
    assert r.should_reconcile_now(fill("x", 1)) is not None


# ------------------------------------------------------------------------------------------------
# Jobs (scheduler threads): fetch, measure, hand over
# ------------------------------------------------------------------------------------------------


class FakeLimiter:
    limits = [("ORDERS", "10S", 50), ("REQUEST_WEIGHT", "1M", 6000)]

    def __init__(self) -> None:
        self.weight = 100

    def used(self, kind: str, label: str) -> int:
        assert (kind, label) == ("REQUEST_WEIGHT", "1M")
        return self.weight


class FakeAdapter:
    def __init__(self, trades: Sequence[Fill] = ()) -> None:
        self.limiter = FakeLimiter()
        self.trades = list(trades)
        self.calls: list[tuple[str, Any]] = []
        self.server_ms = 0
        self.fail = False

    def account_snapshot(self) -> AccountSnapshot:
        self.calls.append(("account_snapshot", None))
        if self.fail:
            raise ConnectionError("venue down")
        self.limiter.weight += 20
        return snap(1, 2)

    def my_trades(self, symbol: str, from_id: int = 0) -> list[Fill]:
        self.calls.append(("my_trades", (symbol, from_id)))
        self.limiter.weight += 20
        return [t for t in self.trades if t.trade_id >= from_id] if from_id else self.trades[-1000:]

    def server_time_ms(self) -> int:
        return self.server_ms


class Handle:
    def __init__(self, adapter: Any) -> None:
        self.adapter = adapter
        self.symbols = (SYM,)
        self.events: list[Any] = []

    def put(self, event: Any) -> None:
        self.events.append(event)

    def is_own_order(self, cid: str) -> bool:
        return cid.startswith("bcr1-")


def test_reconcile_light_hands_the_snapshot_over_and_measures_it() -> None:
    adapter = FakeAdapter()
    jobs, h = Jobs(), Handle(adapter)
    jobs.reconcile_light(h, {})
    assert h.events == [ReconcileSnapshot("reconcile_light", snap(1, 2))]
    (cost,) = jobs.costs()
    assert (cost.job, cost.call, cost.weight, cost.ok) == ("reconcile_light", "account_snapshot", 20, True)
    assert cost.seconds >= 0
    assert used_weight(object()) is None


def test_reconcile_full_asks_from_the_watermark_and_keeps_only_our_trades() -> None:
    trades = [fill("bcr1-1", 5), fill("web-3", 6), fill("bcr1-2", 7)]
    adapter = FakeAdapter(trades)
    wm = TradeWatermark({SYM: 4})
    seen: list[Any] = []
    jobs, h = Jobs(wm, on_cost=seen.append), Handle(adapter)
    jobs.reconcile_full(h, {})
    assert adapter.calls == [("my_trades", (SYM, 5)), ("account_snapshot", None)]  # trades first
    (event,) = h.events
    assert [f.trade_id for f in event.fills] == [5, 7] and event.job == "reconcile_full"
    assert wm.get(SYM) == 7 and [c.call for c in seen] == [f"my_trades:{SYM}", "account_snapshot"]
    jobs.reconcile_full(h, {"label": "nightly"})
    assert adapter.calls[-2] == ("my_trades", (SYM, 8)) and h.events[-1].fills == ()
    assert h.events[-1].job == "nightly"


def test_reconcile_full_without_a_watermark_takes_the_recent_trades() -> None:
    adapter = FakeAdapter([fill("bcr0-1", 1), fill("bcr1-1", 2)])  # bcr0: another run's order
    jobs, h = Jobs(), Handle(adapter)
    jobs.reconcile_full(h, {})
    assert adapter.calls[0] == ("my_trades", (SYM, 0)) and [f.trade_id for f in h.events[0].fills] == [2]


def test_a_failed_fetch_is_recorded_and_raised() -> None:
    adapter = FakeAdapter()
    adapter.fail = True
    jobs, h = Jobs(), Handle(adapter)
    with pytest.raises(ConnectionError):
        jobs.reconcile_light(h, {})
    assert [c.ok for c in jobs.costs()] == [False] and h.events == []


def test_time_sync_reports_local_minus_venue() -> None:
    import time

    adapter = FakeAdapter()
    adapter.server_ms = time.time_ns() // 1_000_000 - 1_500  # the venue is 1.5 s behind us
    jobs, h = Jobs(), Handle(adapter)
    jobs.time_sync(h, {})
    (req,) = h.events
    assert req.name == CLOCK_SKEW and 1_400 <= req.payload["skew_ms"] <= 1_600
    assert req.payload["rtt_ms"] >= 0 and req.payload["server_ms"] == adapter.server_ms


def test_registered_job_names() -> None:
    names: dict[str, Any] = {}
    Jobs().register(lambda n, f: names.__setitem__(n, f))
    assert sorted(names) == ["book_rebuild", "reconcile_full", "reconcile_light", "time_sync"]


# ------------------------------------------------------------------------------------------------
# On a real engine: book rebuild, and a halt through the risk-check mechanism via hooks only
# ------------------------------------------------------------------------------------------------


def depth(first: int, last: int) -> bytes:
    data = {"e": "depthUpdate", "E": 1, "s": SYM, "U": first, "u": last, "b": [], "a": []}
    return json.dumps({"stream": "btcusdt@depth@100ms", "data": data}, separators=(",", ":")).encode()


SNAP = json.dumps({"lastUpdateId": 100, "bids": [["100.00", "1"]], "asks": [["101.00", "1"]]}).encode()


class Gateway:
    def __init__(self) -> None:
        self.submitted: list[OrderRequest] = []
        self.cancels: list[CancelRequest] = []
        self.depths: list[str] = []
        self.queries: list[str] = []

    def submit(self, order: OrderRequest) -> None:
        self.submitted.append(order)

    def cancel(self, request: CancelRequest) -> None:
        self.cancels.append(request)

    def query(self, symbol: str, cid: str) -> None:
        self.queries.append(cid)

    def fetch_depth(self, symbol: str, limit: int = 1000) -> None:
        self.depths.append(symbol)

    def close(self, timeout: float = 5.0) -> bool:
        return True


class Touch:
    name = "mm"
    symbols = [SYM]
    max_live_orders = 2

    def on_top(self, ctx: Any, top: BookTop) -> list[Quote]:
        return [Quote(Side.BUY, INST.ticks_to_price(top.bid_price), D("0.001"))]

    def on_fill(self, ctx: Any, fill: Fill) -> None: ...

    def on_order_update(self, ctx: Any, report: ExecutionReport) -> None: ...


@pytest.fixture
def services() -> Iterator[builtin_services.Services]:
    yield builtin_services.SERVICES
    builtin_services.SERVICES.stop(None, "test end")


def live_engine(risk: Sequence[Any] = (), hooks: Any = None) -> tuple[Engine, Gateway, Clock]:
    gw, clock = Gateway(), Clock()
    eng = Engine(
        {SYM: INST},
        [Touch()],
        list(risk),
        gateway=gw,
        hooks=hooks,
        clock=clock,
        config=EngineConfig(snapshot_min_interval=0.0),
    )
    eng.process(MarketFrame(depth(99, 103), 0))
    eng.process(DepthSnapshot(SYM, SNAP, 0))
    assert eng.is_quoting(SYM) and len(gw.submitted) == 1
    eng.process(GatewayResult(OrderOutcome("new", SYM, gw.submitted[0].client_order_id, S.NEW, order_id=1)))
    return eng, gw, clock


def test_book_rebuild_resets_the_book_and_the_engine_fetches_a_fresh_snapshot() -> None:
    eng, gw, _ = live_engine()
    eng.on_job(BOOK_REBUILD, rebuild_books)
    h = Handle(None)
    Jobs().book_rebuild(h, {})
    (req,) = h.events
    assert req == JobRequest(BOOK_REBUILD, {"symbols": [SYM], "reason": "scheduled book rebuild"})
    eng.process(req)
    assert not eng.book_sync(SYM).trusted and not eng.is_quoting(SYM)
    eng.process(MarketFrame(depth(104, 105), 0))
    assert gw.depths == [SYM, SYM]  # the rebuild asked the venue again
    eng.process(
        DepthSnapshot(
            SYM,
            json.dumps({"lastUpdateId": 104, "bids": [["100.00", "1"]], "asks": [["101.00", "1"]]}).encode(),
            0,
        )
    )
    assert eng.book_sync(SYM).trusted and eng.is_quoting(SYM)
    eng.process(JobRequest(BOOK_REBUILD, {"symbols": ["NOPE"]}))  # unknown symbols are ignored


def test_halt_through_hooks_and_the_risk_chain_then_resume(services: builtin_services.Services) -> None:
    pm = get_plugin_manager(load_entrypoints=False, extra=[builtin_services])
    registry = collect_registry(pm)
    guard = registry.risk_checks["reconcile_guard"]({})
    assert guard is services.reconciler
    with pytest.raises(ValueError):
        registry.risk_checks["reconcile_guard"]({"x": 1})
    eng, gw, clock = live_engine([RiskLink("reconcile", guard)], Hooks(pm))
    services.start(eng)  # no config: defaults (no journal, no endpoint)
    foreign = snap(100, 100, [oo("web-1", 90, order_id=5)])
    eng.process(ReconcileSnapshot("reconcile_light", foreign))  # the engine's own reconcile path
    assert guard.halted() is not None
    clock.now += 10**9
    eng.drain()  # housekeeping polls halted(): quoting pauses and the live order is cancelled
    assert not eng.is_quoting(SYM) and [c.client_order_id for c in gw.cancels] == [
        gw.submitted[0].client_order_id
    ]
    assert eng.status()["halted"].startswith(
        "risk reconcile: reconcile reconcile_light: order.missing_local web-1"
    )
    eng.process(ReconcileSnapshot("reconcile_light", foreign))  # the cache knows it now: clean
    clock.now += 10**9
    eng.drain()
    assert guard.halted() is None and eng.is_quoting(SYM)


def test_an_unknown_order_report_triggers_an_immediate_full_reconcile(
    services: builtin_services.Services,
) -> None:
    pm = get_plugin_manager(load_entrypoints=False, extra=[builtin_services])
    adapter = FakeAdapter()
    done = threading.Event()
    real = adapter.account_snapshot

    def snapshot() -> AccountSnapshot:
        result = real()
        done.set()
        return result

    adapter.account_snapshot = snapshot  # type: ignore[method-assign]
    gw, clock = Gateway(), Clock()
    eng = Engine({SYM: INST}, [], [], gateway=gw, adapter=adapter, hooks=Hooks(pm), clock=clock)  # type: ignore[arg-type]
    services.start(eng)
    earlier = len(services.jobs.costs("reconcile_now"))  # the cost log outlives runs (other tests)
    late = er("web-5", S.FILLED, 100, "TRADE", cum="0.002", last="0.002", trade_id=3, order_id=5)
    eng.process(UserEvent(late, 0))  # a fill of an order this engine never placed
    assert services.reconciler.triggers == 1
    assert done.wait(5), "reconcile_full did not run"
    deadline = 50
    while eng.backlog() == 0 and deadline:
        threading.Event().wait(0.02)
        deadline -= 1
    eng.drain()
    assert eng.counters["reconciles"] == 1
    assert [c.call for c in services.jobs.costs("reconcile_now")[earlier:]] == [
        f"my_trades:{SYM}",
        "account_snapshot",
    ]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="thread affinity is Linux-only")
def test_the_reconcile_now_worker_does_not_inherit_the_engine_threads_cpu_pin(
    services: builtin_services.Services,
) -> None:
    pm = get_plugin_manager(load_entrypoints=False, extra=[builtin_services])
    adapter = FakeAdapter()
    seen: list[set[int]] = []
    done = threading.Event()
    real = adapter.account_snapshot

    def snapshot() -> AccountSnapshot:
        seen.append(os.sched_getaffinity(0))  # the worker thread's own CPUs
        done.set()
        return real()

    adapter.account_snapshot = snapshot  # type: ignore[method-assign]
    allowed = os.sched_getaffinity(0)
    config = EngineConfig(cpu=max(allowed))
    eng = Engine({SYM: INST}, [], [], gateway=Gateway(), adapter=adapter, hooks=Hooks(pm), config=config)  # type: ignore[arg-type]
    services.start(eng)  # wired on this thread; the engine thread pins itself when it runs
    late = er("web-6", S.FILLED, 100, "TRADE", cum="0.002", last="0.002", trade_id=4, order_id=6)
    eng.put(UserEvent(late, 0))  # a fill of an order this engine never placed: reconcile now
    eng.put(Stop("done"))
    runner = threading.Thread(target=eng.run)
    runner.start()
    runner.join(10)
    assert services.reconciler.triggers == 1
    assert done.wait(5), "reconcile_full did not run"
    assert seen == [allowed]  # not {max(allowed)}: the worker was started before the pin
