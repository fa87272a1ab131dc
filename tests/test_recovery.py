"""Restart recovery against a fake venue: resolve, adopt or cancel, missed fills, then apply.

The journal of a killed run is built with the real ``Journal``; the venue is a fake adapter whose
answers are set per test. ``apply_plan`` is checked on a real (not started) engine.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from botcore import builtin_services
from botcore.config import config_from_dict
from botcore.engine import Engine, EngineConfig
from botcore.events import JobRequest
from botcore.journal import Journal, JournalState, connect_readonly
from botcore.model import (
    AccountSnapshot,
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
    OrderType,
    Quote,
    Side,
)
from botcore.plugins import Hooks, get_plugin_manager
from botcore.reconcile import CAUSE_LOST_CANCEL, CAUSE_MISSED_FILL, CAUSE_OUTSIDE, CAUSE_UNTRACKED_OWN
from botcore.recovery import RecoveryPlan, apply_plan, recover, session_fills

D = Decimal
S = OrderStatus
SYM = "BTCUSDT"
INST = Instrument(SYM, "BTC", "USDT", D("0.01"), D("0.00001"), min_qty=D("0.00001"), min_notional=D("5"))
NOW = 10_000_000


def oo(cid: str, order_id: int, status: S = S.NEW, cum: str = "0") -> OpenOrder:
    return OpenOrder(
        SYM, cid, order_id, Side.SELL, "LIMIT_MAKER", status, D("101"), D("0.002"), D(cum), D(cum) * 101, 1, 2
    )


def fill(cid: str, trade_id: int) -> Fill:
    return Fill(SYM, cid, 1, trade_id, Side.BUY, D("100"), D("0.001"), D(0), "USDT", True, 5)


class Venue:
    """A fake adapter: open orders, query answers, cancel answers, trades, account."""

    def __init__(self) -> None:
        self.open: list[OpenOrder] = []
        self.queries: dict[str, OrderOutcome] = {}
        self.cancel_status: dict[str, OrderOutcome] = {}
        self.trades: list[Fill] = []
        self.calls: list[str] = []

    def open_orders(self, symbol: str | None = None) -> list[OpenOrder]:
        self.calls.append(f"open_orders:{symbol}")
        return [o for o in self.open if symbol is None or o.symbol == symbol]

    def query_order(self, symbol: str, cid: str) -> OrderOutcome:
        self.calls.append(f"query:{cid}")
        return self.queries.get(cid, OrderOutcome("query", symbol, cid, S.UNKNOWN, error_msg="timeout"))

    def cancel(self, request: CancelRequest) -> OrderOutcome:
        self.calls.append(f"cancel:{request.client_order_id}")
        out = self.cancel_status.get(request.client_order_id) or OrderOutcome(
            "cancel", request.symbol, request.client_order_id, S.CANCELED
        )
        if out.status is S.CANCELED:
            self.open = [o for o in self.open if o.client_order_id != request.client_order_id]
        return out

    def my_trades(self, symbol: str, from_id: int = 0) -> list[Fill]:
        self.calls.append(f"my_trades:{symbol}:{from_id}")
        return [t for t in self.trades if t.trade_id >= from_id]

    def account_snapshot(self) -> AccountSnapshot:
        self.calls.append("account_snapshot")
        return AccountSnapshot(
            (Balance("USDT", D("900"), D(0)), Balance("BTC", D("1"), D(0))), tuple(self.open), 50, 60
        )


def killed_run(path: Path) -> JournalState:
    """Run r1 placed A..D and crashed: A resting, B UNKNOWN (it filled), C NEW (lost), D just sent."""
    with Journal(path) as j:
        j.start_run(name="mm", run_id="r1", id_prefix="bcr1-", started_ms=NOW - 60_000)
        for seq, created in ((1, NOW - 50_000), (2, NOW - 40_000), (3, NOW - 30_000), (4, NOW - 2_000)):
            req = OrderRequest(
                SYM, Side.SELL, D("0.002"), D("101"), OrderType.LIMIT_MAKER, None, f"bcr1-{seq}", "mm", "L1"
            )
            j.record_order(req, time_ms=created)
        j.record_outcome(OrderOutcome("new", SYM, "bcr1-1", S.NEW, order_id=11))
        j.record_outcome(OrderOutcome("new", SYM, "bcr1-2", S.UNKNOWN, error_msg="timeout"))
        j.record_outcome(OrderOutcome("new", SYM, "bcr1-3", S.NEW, order_id=13))
        j.record_fill(fill("bcr1-1", 40))
    return Journal.load(path)


def venue_after_crash() -> Venue:
    v = Venue()
    v.open = [oo("bcr1-1", 11, S.PARTIALLY_FILLED, "0.001"), oo("bcr1-9", 19), oo("web-7", 77)]
    v.queries = {
        "bcr1-2": OrderOutcome("query", SYM, "bcr1-2", S.FILLED, order_id=12, cum_qty=D("0.002")),
        "bcr1-3": OrderOutcome(
            "query", SYM, "bcr1-3", S.REJECTED, error_code=-2013, error_msg="Order does not exist."
        ),
        "bcr1-4": OrderOutcome(
            "query", SYM, "bcr1-4", S.REJECTED, error_code=-2013, error_msg="Order does not exist."
        ),
    }
    v.trades = [fill("bcr1-1", 40), fill("bcr1-2", 41), fill("web-7", 42), fill("bcr1-2", 43)]
    return v


def test_cancel_policy(tmp_path: Path) -> None:
    state = killed_run(tmp_path / "j.sqlite")
    v = venue_after_crash()
    plan = recover(state, v, "cancel", symbols=[SYM], now_ms=lambda: NOW)
    resolved = [(r.order.client_order_id, r.status, r.source) for r in plan.resolved]
    assert len(resolved) == 3
    assert dict((c, (st, src)) for c, st, src in resolved) == {
        "bcr1-1": ("CANCELED", "cancel"),
        "bcr1-2": ("FILLED", "query"),
        "bcr1-3": ("REJECTED", "query"),  # "does not exist", and old enough to believe it
    }
    assert [o.client_order_id for o in plan.unknown] == ["bcr1-4"]  # too young: maybe still landing
    assert sorted(o.client_order_id for o in plan.cancelled) == ["bcr1-1", "bcr1-9"]  # ours only
    assert [o.client_order_id for o in plan.foreign] == ["web-7"] and plan.adopt == ()
    assert [f.trade_id for f in plan.fills] == [41, 43]  # after the journal's 40, ours only
    assert "my_trades:BTCUSDT:41" in v.calls
    assert v.calls[-1] == "account_snapshot"  # the state to start from is taken after the cancels
    assert [o.client_order_id for o in plan.snapshot.open_orders] == ["web-7"]
    drifts = {(d.field, d.key): d.cause for d in plan.drifts}
    assert drifts == {
        ("order.missing_venue", "bcr1-2"): CAUSE_MISSED_FILL,
        ("order.missing_venue", "bcr1-3"): "unknown",
        ("order.missing_local", "bcr1-9"): CAUSE_UNTRACKED_OWN,
        ("order.missing_local", "web-7"): CAUSE_OUTSIDE,
        ("fills.missing_local", SYM): CAUSE_MISSED_FILL,
    }
    assert (plan.resume_run_id, plan.next_seq) == ("r1", 5)
    assert "2 cancelled" in plan.summary()


def test_adopt_policy_cancels_nothing(tmp_path: Path) -> None:
    state = killed_run(tmp_path / "j.sqlite")
    v = venue_after_crash()
    plan = recover(state, v, "adopt", symbols=[SYM], now_ms=lambda: NOW)
    assert sorted(o.client_order_id for o in plan.adopt) == ["bcr1-1", "bcr1-9"]
    assert plan.cancelled == () and not [c for c in v.calls if c.startswith("cancel")]


def test_cancels_in_doubt_stay_unknown_and_refused_ones_are_adopted(tmp_path: Path) -> None:
    state = killed_run(tmp_path / "j.sqlite")
    v = venue_after_crash()
    v.cancel_status = {
        "bcr1-1": OrderOutcome("cancel", SYM, "bcr1-1", S.UNKNOWN, error_msg="timeout"),
        "bcr1-9": OrderOutcome("cancel", SYM, "bcr1-9", S.REJECTED, error_code=-1013, error_msg="nope"),
    }
    plan = recover(state, v, "cancel", symbols=[SYM], now_ms=lambda: NOW)
    assert {o.client_order_id for o in plan.unknown} == {"bcr1-1", "bcr1-4"}
    assert [o.client_order_id for o in plan.adopt] == ["bcr1-9"]


def test_a_failed_query_leaves_the_order_unknown(tmp_path: Path) -> None:
    state = killed_run(tmp_path / "j.sqlite")
    v = venue_after_crash()
    del v.queries["bcr1-2"]  # the query times out
    plan = recover(state, v, "cancel", symbols=[SYM], now_ms=lambda: NOW)
    assert "bcr1-2" in {o.client_order_id for o in plan.unknown}


def test_a_journal_order_cancelled_on_the_venue_is_a_lost_cancel(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    with Journal(path) as j:
        j.start_run(name="mm", run_id="r1", id_prefix="bcr1-", started_ms=NOW - 60_000)
        req = OrderRequest(SYM, Side.BUY, D("0.002"), D("99"), OrderType.LIMIT_MAKER, None, "bcr1-1", "mm")
        j.record_order(req, time_ms=NOW - 50_000)
        j.record_outcome(OrderOutcome("new", SYM, "bcr1-1", S.NEW, order_id=3))
        j.end_run("SIGTERM")  # a clean stop whose cancel never got its answer
    v = Venue()
    v.queries = {"bcr1-1": OrderOutcome("query", SYM, "bcr1-1", S.CANCELED, order_id=3)}
    plan = recover(Journal.load(path), v, "cancel", now_ms=lambda: NOW)
    assert [(d.field, d.key, d.local, d.venue, d.cause) for d in plan.drifts] == [
        ("order.missing_venue", "bcr1-1", "NEW", "CANCELED", CAUSE_LOST_CANCEL)
    ]
    assert v.calls[0] == f"open_orders:{SYM}"  # the journal's symbols are always looked at


def test_bad_policy() -> None:
    with pytest.raises(ValueError, match="adopt, cancel"):
        recover(JournalState(path="x"), Venue(), "ignore")


# ------------------------------------------------------------------------------------------------
# Applying a plan
# ------------------------------------------------------------------------------------------------


class Gateway:
    def __init__(self) -> None:
        self.queries: list[str] = []

    def submit(self, order: OrderRequest) -> None: ...

    def cancel(self, request: CancelRequest) -> None: ...

    def query(self, symbol: str, cid: str) -> None:
        self.queries.append(cid)

    def fetch_depth(self, symbol: str, limit: int = 1000) -> None: ...

    def close(self, timeout: float = 5.0) -> bool:
        return True


class Strategy:
    name = "mm"
    symbols = [SYM]
    max_live_orders = 4

    def on_top(self, ctx: Any, top: BookTop) -> Sequence[Quote] | None:
        return None

    def on_fill(self, ctx: Any, fill: Fill) -> None: ...

    def on_order_update(self, ctx: Any, report: ExecutionReport) -> None: ...


def engine(adapter: Any = None) -> tuple[Engine, Gateway]:
    gw = Gateway()
    eng = Engine(
        {SYM: INST},
        [Strategy()],
        [],
        gateway=gw,
        adapter=adapter,
        run_id="r2",
        config=EngineConfig(query_retry=0.01),
    )
    return eng, gw


def test_apply_plan_hands_everything_to_engine_and_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    state = killed_run(path)
    v = venue_after_crash()
    plan = recover(state, v, "adopt", symbols=[SYM], now_ms=lambda: NOW)
    eng, gw = engine()
    with Journal(path) as j:
        j.start_run(name="mm", run_id="r2", id_prefix="bcr2-")
        adopted = apply_plan(plan, eng, j, strategies=["mm"], journal_orders=state.open_orders)
    assert sorted(adopted) == ["bcr1-1", "bcr1-4", "bcr1-9"]
    assert eng.positions.free("USDT") == D("900")  # the post-recovery snapshot
    a = eng.tracker.get("bcr1-1")
    assert (a.status, a.strategy, a.cum_qty, a.order_id, a.qty) == (
        S.PARTIALLY_FILLED,
        "mm",
        D("0.001"),
        11,
        D("0.002"),
    )
    assert eng.tracker.get("bcr1-9").strategy == ""  # not in the journal: tracked, not quoted
    assert eng.tracker.get("bcr1-4").status is S.UNKNOWN
    assert [o.client_order_id for o in eng.tracker.live(SYM, "mm")] == [
        "bcr1-1",
        "bcr1-4",
    ]  # counts for max_live
    eng.drain()  # the engine starts: an order in doubt gets a query (after the retry delay)
    deadline = time.monotonic() + 3
    while "bcr1-4" not in gw.queries and time.monotonic() < deadline:
        time.sleep(0.05)
        eng.drain()
    assert gw.queries == ["bcr1-4"]
    after = Journal.load(path)
    assert {o.client_order_id for o in after.open_orders} == {"bcr1-1", "bcr1-4"}  # B and C resolved
    assert after.last_trade_id[SYM] == 43
    conn = connect_readonly(path)
    assert conn.execute("SELECT run FROM fills WHERE trade_id = 41").fetchone()[0] == 1  # filed under r1
    assert (
        conn.execute("SELECT status FROM orders WHERE client_order_id = 'bcr1-2'").fetchone()[0] == "FILLED"
    )
    assert conn.execute("SELECT COUNT(*) FROM drifts WHERE job = 'recovery'").fetchone()[0] == len(
        plan.drifts
    )
    conn.close()


def test_apply_plan_refuses_a_running_engine() -> None:
    eng, _ = engine()
    eng.process(JobRequest("noop"))
    plan = RecoveryPlan("cancel", AccountSnapshot((), (), 1, 1))
    with pytest.raises(RuntimeError):
        apply_plan(plan, eng)


# ------------------------------------------------------------------------------------------------
# The position of an interrupted session
# ------------------------------------------------------------------------------------------------


def trade(cid: str, trade_id: int, side: Side, qty: str, fee: str = "0", fee_asset: str = "USDT") -> Fill:
    return Fill(SYM, cid, 1, trade_id, side, D("100"), D(qty), D(fee), fee_asset, True, 5)


def three_runs(path: Path, *, last_ends: bool) -> None:
    """r1 ends cleanly after a fill; r2 is killed after two; r3 (continuing r2) too, unless ``last_ends``."""
    runs = [
        ("r1", [trade("bcr1-1", 1, Side.BUY, "0.5")], True),
        (
            "r2",
            [
                trade("bcr2-1", 2, Side.BUY, "0.003", "0.000003", "BTC"),
                trade("bcr2-2", 3, Side.SELL, "0.001"),
            ],
            False,
        ),
        ("r3", [trade("bcr3-1", 5, Side.BUY, "0.002")], last_ends),
    ]
    for run_id, fills, ends in runs:
        with Journal(path) as j:  # closing without end_run is what a SIGKILL leaves
            j.start_run(name="mm", run_id=run_id, id_prefix=f"bc{run_id}-")
            for f in fills:
                j.record_fill(f)
            if ends:
                j.end_run("SIGTERM")


def test_an_interrupted_session_is_continued_with_its_position(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "j.sqlite"
    three_runs(path, last_ends=False)
    state = Journal.load(path)
    assert [f.trade_id for f in session_fills(state)] == [2, 3, 5]  # r2 and r3: since r1's clean exit
    v = Venue()
    v.trades = [trade("bcr3-1", 5, Side.BUY, "0.002"), trade("bcr3-2", 6, Side.SELL, "0.0005")]  # 6: missed
    plan = recover(state, v, "cancel", symbols=[SYM], now_ms=lambda: NOW)
    assert plan.continued and [f.trade_id for f in plan.fills] == [6]
    eng, _ = engine()
    with caplog.at_level(logging.INFO, logger="botcore.recovery"):
        apply_plan(plan, eng)
    # 0.003 - 0.000003 (base fee) - 0.001 + 0.002 - 0.0005: what the account holds more than at r2's start
    assert eng.positions.position(SYM) == D("0.003497")
    assert eng.positions.fees(SYM) == D("0.0003")  # the base fee at the fill price
    assert eng.positions.last_trade_id(SYM) == 6
    line = next(r.getMessage() for r in caplog.records if "state before quoting" in r.getMessage())
    summary = json.loads(line.split("state before quoting: ", 1)[1])
    assert summary == {
        "orders": {},
        "balances": {"BTC": ["1", "0"], "USDT": ["900", "0"]},
        "positions": {SYM: "0.003497"},
    }


def test_the_loss_limits_continue_the_interrupted_session(tmp_path: Path) -> None:
    """A bot that crashes after losing must not come back with its kill switches at zero."""
    from botcore_risk_basic.checks import DailyLossCheck, DrawdownCheck

    path = tmp_path / "j.sqlite"
    with Journal(path) as j:  # bought 1 at 100, sold it at 40: -60 USDT, then SIGKILL
        j.start_run(name="mm", run_id="r1", id_prefix="bcr1-")
        j.record_fill(Fill(SYM, "bcr1-1", 1, 1, Side.BUY, D("100"), D("1"), D("0"), "USDT", True, NOW))
        j.record_fill(Fill(SYM, "bcr1-2", 2, 2, Side.SELL, D("40"), D("1"), D("0"), "USDT", True, NOW))
    plan = recover(Journal.load(path), Venue(), "cancel", symbols=[SYM], now_ms=lambda: NOW)
    drawdown = DrawdownCheck.from_params({"max_drawdown": "50"})
    daily = DailyLossCheck(DailyLossCheck.params_model(max_daily_loss=D("50")), wall_clock=lambda: NOW * 1_000_000)
    eng = Engine({SYM: INST}, [Strategy()], [drawdown, daily], gateway=Gateway(), run_id="r2")
    apply_plan(plan, eng)
    assert eng.positions.realized_pnl(SYM) == D("-60")
    assert "drawdown 60" in (drawdown.halted(eng.ctx) or "")
    assert "loss 60" in (daily.halted(eng.ctx) or "")
    again = Engine({SYM: INST}, [Strategy()], [], gateway=Gateway(), run_id="r3")
    again.process(JobRequest("noop"))
    with pytest.raises(RuntimeError):  # carrying is for start-up only
        again.carry_fills(plan.carried)


def test_after_a_clean_exit_a_run_starts_flat(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    three_runs(path, last_ends=True)
    state = Journal.load(path)
    assert session_fills(state) == ()
    v = Venue()
    v.trades = [trade("bcr3-2", 6, Side.SELL, "0.0005")]  # after r3 ended: not this session's
    plan = recover(state, v, "cancel", symbols=[SYM], now_ms=lambda: NOW)
    assert not plan.continued and plan.carried == ()
    eng, _ = engine()
    apply_plan(plan, eng)
    assert eng.positions.position(SYM) == 0


def test_a_missing_journal_carries_nothing(tmp_path: Path) -> None:
    assert session_fills(JournalState(path=str(tmp_path / "gone.sqlite"), run=3, clean_exit=False)) == ()


def test_the_state_line_lists_the_adopted_orders(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "j.sqlite"
    state = killed_run(path)
    plan = recover(state, venue_after_crash(), "adopt", symbols=[SYM], now_ms=lambda: NOW)
    eng, _ = engine()
    with caplog.at_level(logging.INFO, logger="botcore.recovery"):
        apply_plan(plan, eng, strategies=["mm"], journal_orders=state.open_orders)
    line = next(r.getMessage() for r in caplog.records if "state before quoting" in r.getMessage())
    orders = json.loads(line.split("state before quoting: ", 1)[1])["orders"]
    assert {cid: (o["status"], o["cum_qty"], o["strategy"]) for cid, o in orders.items()} == {
        "bcr1-1": ("PARTIALLY_FILLED", "0.001", "mm"),
        "bcr1-4": ("UNKNOWN", "0", "mm"),
        "bcr1-9": ("NEW", "0", ""),
    }
    # killed_run's fills: trade 40 (journaled) plus 41 and 43 the crash lost, all BUY 0.001
    assert eng.positions.position(SYM) == D("0.003")


def test_a_restart_within_the_second_of_the_killed_run_gets_a_fresh_run_id(tmp_path: Path) -> None:
    from botcore.app import fresh_run_id, make_run_id

    path = tmp_path / "j.sqlite"
    t = 1_700_000_000
    assert fresh_run_id(path, t) == make_run_id(t)  # no journal yet
    for run_id in (make_run_id(t), make_run_id(t + 1)):
        with Journal(path) as j:
            j.start_run(name="mm", run_id=run_id, id_prefix=f"bc{run_id}-")
    assert fresh_run_id(path, t) == make_run_id(t + 2)  # its client order ids cannot repeat theirs
    assert fresh_run_id(path, t + 5) == make_run_id(t + 5)
    assert fresh_run_id(None, t) == make_run_id(t)


# ------------------------------------------------------------------------------------------------
# Through the services plugin at start-up
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def services() -> Iterator[builtin_services.Services]:
    yield builtin_services.SERVICES
    builtin_services.SERVICES.stop(None, "test end")


def test_startup_recovers_a_killed_run_before_trading(
    tmp_path: Path, services: builtin_services.Services
) -> None:
    path = tmp_path / "j.sqlite"
    killed_run(path)
    v = venue_after_crash()
    config = config_from_dict(
        {
            "run": {"name": "mm", "journal": str(path)},
            "exchange": {"name": "replay", "symbols": [SYM]},
            "plugins": {"recovery": {"policy": "cancel", "grace": "1s"}},
        }
    )
    eng, gw = engine(adapter=v)
    eng.bot_config = config  # what the app sets before botcore_startup
    hooks = Hooks(get_plugin_manager(load_entrypoints=False, extra=[builtin_services]))
    hooks.startup(eng)
    assert "cancel:bcr1-1" in v.calls and "cancel:bcr1-9" in v.calls and "cancel:web-7" not in v.calls
    assert services.reconciler.halted() is not None  # a foreign order on the account: halt (default)
    assert services.watermark.get(SYM) == 43
    assert (
        services.jobs.is_ours is not None and services._is_ours("bcr1-77") and not services._is_ours("web-7")
    )
    hooks.shutdown(eng, "test")
    state = Journal.load(path)
    assert state.run == 2 and state.clean_exit and state.exit_reason == "test"
    assert {o.client_order_id for o in state.open_orders} == set()  # bcr1-4: >1s old, so resolved
    conn = connect_readonly(path)
    assert conn.execute("SELECT source FROM balances WHERE run = 2 ORDER BY id").fetchall()[0][0] == "startup"
    assert "journal: " in conn.execute("SELECT config FROM runs WHERE id = 2").fetchone()[0]
    conn.close()


def test_recovery_options_are_validated(tmp_path: Path) -> None:
    config = config_from_dict(
        {"exchange": {"name": "replay", "symbols": [SYM]}, "plugins": {"recovery": {"policy": "ignore"}}}
    )
    with pytest.raises(Exception, match="plugins.recovery.policy: expected 'cancel' or 'adopt'"):
        builtin_services.ServiceOptions.from_config(config)
    config = config_from_dict(
        {"exchange": {"name": "replay", "symbols": [SYM]}, "plugins": {"journal": {"every": "1s"}}}
    )
    with pytest.raises(Exception, match="unknown key 'every'"):
        builtin_services.ServiceOptions.from_config(config)
