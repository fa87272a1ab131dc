"""Drift injected at the paper exchange is found, explained and acted on by the next reset.

The whole bot (Binance adapter, engine, the built-in services: reconcile jobs, ``Reconciler`` as
``reconcile_guard``, journal) runs against ``EmbeddedPaper``. Each test makes the bot's view go
wrong through the exchange itself: a fill whose user-data events are lost, an order cancelled at
the venue while the CANCELED report is lost, an order placed on the account outside the bot.
The next ``reconcile_full`` (trade-id watermark + account snapshot) must find the drift, name its
cause, journal it, and correct it or halt quoting as the policy says.

Determinism: the market only moves when the test steps it (no ticker thread, a long stall
timeout), and the bot quotes what the test tells it (``Manual``), at prices the synthetic market
does not reach on its own; fills are made by a second account's IOC order.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from botcore_exchange_binance import plugin as binance_plugin
from botcore_exchange_paper.config import PaperConfig
from botcore_exchange_paper.embedded import EmbeddedPaper, start_embedded
from e2e_support import wait

from botcore import builtin_services, hookimpl
from botcore.app import build_risk_chain, with_reconcile_guard
from botcore.config import config_from_dict
from botcore.engine import Engine, EngineConfig, EngineHandle
from botcore.model import BookTop, Drift, ExecutionReport, Fill, OrderStatus, Quote, Side
from botcore.plugins import Hooks, collect_registry, get_plugin_manager
from botcore.reconcile import CAUSE_LOST_CANCEL, CAUSE_MISSED_FILL, CAUSE_OUTSIDE, CAUSE_TRACKED_OWN
from botcore.scheduler import Scheduler

pytestmark = pytest.mark.e2e

SYMBOL = "BTCUSDT"
QTY = Decimal("0.001")
GRACE_S = 0.1  # EngineConfig.reconcile_grace
START_BTC = Decimal(1)  # the paper venue's default account
CORRECT = {
    "balance": "correct",
    "position": "correct",
    "order.missing_venue": "correct",
    "order.cum_qty": "correct",
}
TAKER_KEY, TAKER_SECRET = "taker-key-0123456789", "taker-secret-0123456789"


class Manual:
    """A strategy that quotes exactly what the test sets (None = leave orders as they are)."""

    name = "manual"
    symbols = [SYMBOL]
    max_live_orders = 4

    def __init__(self) -> None:
        self.quotes: list[Quote] | None = None

    def on_top(self, ctx: Any, top: BookTop) -> list[Quote] | None:
        return self.quotes

    def on_fill(self, ctx: Any, fill: Fill) -> None: ...

    def on_order_update(self, ctx: Any, report: ExecutionReport) -> None: ...


class DriftRecorder:
    """A plugin keeping every ``botcore_reconcile_report`` (what the journal and metrics get)."""

    def __init__(self) -> None:
        self.reports: list[tuple[str, tuple[Drift, ...]]] = []
        self.lock = threading.Lock()

    @hookimpl
    def botcore_reconcile_report(self, job: str, drifts: Any) -> None:
        with self.lock:
            self.reports.append((job, tuple(drifts)))

    def jobs(self) -> list[str]:
        with self.lock:
            return [job for job, _ in self.reports]

    def drifts(self) -> list[Drift]:
        with self.lock:
            return [d for _, ds in self.reports for d in ds]


class Bot:
    """The bot wired as ``botcore run`` wires it (app.run), minus signals and the status line."""

    def __init__(self, paper: EmbeddedPaper, journal: Path, policy: dict[str, str] | None = None) -> None:
        self.paper = paper
        self.journal = journal
        self.config = config_from_dict(
            {
                "run": {"name": "drift", "journal": str(journal)},
                "exchange": {
                    "name": "binance",
                    "mode": "paper",
                    "symbols": [SYMBOL],
                    "options": {
                        "stall_timeout_s": 60.0,
                        "request_timeout_s": 2.0,
                        "backoff_initial_s": 0.05,
                        "backoff_max_s": 0.2,
                    },
                },
                # Never fires by itself within a test: each test runs it when it wants the reset.
                "schedules": [{"name": "reset", "job": "reconcile_full", "every": 3600}],
                "plugins": {"reconcile": {"policy": policy or {}, "trigger_cooldown": 0}},
            }
        )
        self.recorder = DriftRecorder()
        self.pm = get_plugin_manager(
            load_entrypoints=False, extra=[binance_plugin, builtin_services, self.recorder]
        )
        registry = collect_registry(self.pm)
        self.hooks = Hooks(self.pm)
        self.adapter = registry.exchanges["binance"](self.config, paper.endpoints())
        instruments = self.adapter.exchange_info([SYMBOL])
        self.inst = instruments[SYMBOL]
        self.trade_calls: list[tuple[int, list[Fill]]] = []  # (from_id, fills) of each my_trades
        real_my_trades = self.adapter.my_trades

        def my_trades(symbol: str, from_id: int = 0) -> list[Fill]:
            fills = real_my_trades(symbol, from_id)
            self.trade_calls.append((from_id, list(fills)))
            return fills

        self.adapter.my_trades = my_trades  # type: ignore[method-assign]
        self.strategy = Manual()
        risk, reconciler = with_reconcile_guard(build_risk_chain(self.config, registry), registry)
        assert reconciler is builtin_services.SERVICES.reconciler
        self.reconciler = reconciler
        self.engine = Engine(
            instruments,
            [self.strategy],
            risk,
            adapter=self.adapter,
            hooks=self.hooks,
            run_id="drift1",
            reconciler=reconciler,
            config=EngineConfig(reconcile_grace=GRACE_S, unknown_grace=1.0),
        )
        self.engine.bot_config = self.config
        self.engine.load_snapshot(self.adapter.account_snapshot())
        self.scheduler = Scheduler(
            self.config.schedules, registry.jobs, EngineHandle(self.engine, self.adapter, self.config)
        )
        self.hooks.startup(self.engine)

    def start(self) -> None:
        if self.adapter.ws_api is not None:
            self.adapter.ws_api.start()
            assert self.adapter.ws_api.socket.wait_open(5)
        self.engine.start()
        self.adapter.start(self.engine, [SYMBOL])
        self.scheduler.start()
        self.step_until(
            lambda: self.engine.book_sync(SYMBOL).trusted and self.engine.is_quoting(SYMBOL),
            "book live and quoting",
        )

    def stop(self) -> None:
        self.scheduler.shutdown(wait=True)
        self.engine.stop("test done")
        self.engine.join(15)
        self.adapter.stop()
        self.hooks.shutdown(self.engine, "test done")

    # --- driving -----------------------------------------------------------------------------------
    def step_until(self, pred: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
        """Step the market one event at a time (a top change makes the engine ask the strategy)."""

        def stepped() -> Any:
            ok = pred()
            if not ok:
                self.paper.step(1)
                time.sleep(0.03)
            return ok

        return wait(stepped, timeout, what)

    def rest_order(self, side: Side, ticks_away: int) -> str:
        """Have the bot place one order ``ticks_away`` behind the touch; its client id once resting."""
        known = {o.client_order_id for o in self.engine.tracker.live(SYMBOL)}
        bid, ask = self.venue_top()
        tick = self.inst.tick_size
        price = bid - ticks_away * tick if side is Side.BUY else ask + ticks_away * tick
        self.strategy.quotes = [Quote(side, price, QTY)]

        def resting() -> str | None:
            venue = {o["clientOrderId"] for o in self.venue_orders()}
            for o in self.engine.tracker.live(SYMBOL):
                cid = o.client_order_id
                if cid not in known and o.status is OrderStatus.NEW and cid in venue:
                    return cid
            return None

        cid: str = self.step_until(resting, "the bot's order resting at the venue")
        self.strategy.quotes = None  # no opinion from now on: the engine leaves the order alone
        return cid

    def take(self, cid: str) -> None:
        """A second account's IOC order trades through the bot's resting order ``cid``.

        It takes every served level up to the order's price, the bot's order included (it is in
        the served book), so the bot's order fills completely, as maker, at its own price.
        """
        order = next(o for o in self.venue_orders() if o["clientOrderId"] == cid)
        price = Decimal(order["price"])
        buy = order["side"] == "SELL"
        depth = self.paper.venue_call(lambda v: v.depth(SYMBOL, 1000))
        levels = depth["asks"] if buy else depth["bids"]
        qty = sum(Decimal(q) for p, q in levels if (Decimal(p) <= price if buy else Decimal(p) >= price))
        params = {
            "symbol": SYMBOL,
            "side": "BUY" if buy else "SELL",
            "type": "LIMIT",
            "timeInForce": "IOC",
            "price": order["price"],
            "quantity": str(qty),
        }
        resp = self.paper.external_order(params, api_key=TAKER_KEY)
        assert Decimal(resp["executedQty"]) == qty, resp
        assert cid not in {o["clientOrderId"] for o in self.venue_orders()}, "the bot's order did not fill"

    def cancel_outside(self, cid: str) -> None:
        """Cancel the bot's order at the venue, as a person on the website would."""

        def cancel() -> Any:
            account = self.paper.server.account_for(self.paper.api_key)  # type: ignore[union-attr]
            return self.paper.venue.cancel_order(account, {"symbol": SYMBOL, "origClientOrderId": cid})

        assert self.paper.call(cancel)["status"] == "CANCELED"

    def reset(self) -> None:
        """Run the scheduled ``reconcile_full`` now and wait until the engine applied it."""
        before = len(self.recorder.reports)
        self.scheduler.run_now("reset")
        wait(
            lambda: "reconcile_full" in self.recorder.jobs()[before:],
            10,
            "the reset applied",
        )

    def past_grace(self, cid: str) -> None:
        """Wait until the order's last change is older than ``reconcile_grace``: a reset then makes
        the engine query it (younger orders are left alone, the snapshot may predate them)."""
        o = self.engine.tracker.get(cid)
        wait(
            lambda: self.engine.ctx.now_ns() - o.updated_ns > GRACE_S * 1e9,
            2,
            "the order older than the grace",
        )

    def lose_user_events(self, count: int) -> None:
        self.paper.faults.lost_user_events(count=count, api_key=self.paper.api_key)

    def assert_all_lost(self) -> None:
        assert self.paper.faults.state()["lost_user_events"] == 0, "the fault was not consumed"

    # --- the exchange's view -------------------------------------------------------------------------
    def venue_top(self) -> tuple[Decimal, Decimal]:
        d = self.paper.venue_call(lambda v: v.depth(SYMBOL, 5))
        return Decimal(d["bids"][0][0]), Decimal(d["asks"][0][0])

    def venue_account(self) -> dict[str, Any]:
        snap = self.paper.snapshot()
        return next(a for a in snap["accounts"] if a["api_key"] == self.paper.api_key)

    def venue_orders(self) -> list[dict[str, Any]]:
        return list(self.venue_account()["open_orders"])

    def venue_balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        return {
            b["asset"]: (Decimal(b["free"]), Decimal(b["locked"])) for b in self.venue_account()["balances"]
        }

    # --- what the assertions compare -----------------------------------------------------------------
    def consistent(self, foreign: frozenset[str] = frozenset()) -> bool:
        """Open orders, balances and position equal the exchange's (``foreign``: not the bot's own).

        The cache books every open order of the account; the engine tracks only its own.
        """
        venue_ids = sorted(o["clientOrderId"] for o in self.venue_orders())
        cache_ids = sorted(o.client_order_id for o in self.engine.positions.open_orders(SYMBOL))
        assert cache_ids == venue_ids, (cache_ids, venue_ids)
        live = sorted(o.client_order_id for o in self.engine.tracker.live(SYMBOL))
        assert live == [c for c in venue_ids if c not in foreign], (live, venue_ids)
        balances = self.venue_balances()
        for asset in ("BTC", "USDT"):
            free, locked = balances[asset]
            assert (self.engine.positions.free(asset), self.engine.positions.locked(asset)) == (
                free,
                locked,
            ), asset
        # The bot only buys here: its position is what its account gained in BTC (net of fees).
        assert self.engine.positions.position(SYMBOL) == sum(balances["BTC"]) - START_BTC
        return True

    def drift_rows(self) -> list[tuple[str, str, str, str, int, str]]:
        conn = sqlite3.connect(f"file:{self.journal}?mode=ro", uri=True)
        try:
            return list(
                conn.execute("SELECT job, field, key, cause, corrected, action FROM drifts ORDER BY id")
            )
        finally:
            conn.close()

    def journaled(self, drifts: list[Drift]) -> list[tuple[str, str, str, int, str]]:
        """The journal rows of ``drifts`` (waits for them: the hook writes on the engine thread)."""
        want = {(d.field, d.key, d.cause) for d in drifts}

        def rows() -> list[tuple[str, str, str, int, str]]:
            found = [r[1:] for r in self.drift_rows() if r[0] == "reconcile_full" and r[1:4] in want]
            return found if len(found) >= len(want) else []

        return wait(rows, 5, "the drifts in the journal")


def by_field(drifts: list[Drift]) -> dict[tuple[str, str], tuple[str, bool]]:
    return {(d.field, d.key): (d.cause, d.corrected) for d in drifts}


@pytest.fixture
def paper() -> Iterator[EmbeddedPaper]:
    p = start_embedded(PaperConfig(synthetic=True, symbols=[SYMBOL]), run_market=False)
    p.add_account(TAKER_KEY, TAKER_SECRET, {"BTC": 10, "USDT": 1_000_000})
    p.step(300)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def make_bot(paper: EmbeddedPaper, tmp_path: Path) -> Iterator[Callable[..., Bot]]:
    bots: list[Bot] = []

    def make(policy: dict[str, str] | None = None) -> Bot:
        bot = Bot(paper, tmp_path / "journal.sqlite", policy)
        bots.append(bot)
        bot.start()
        return bot

    yield make
    for bot in bots:
        bot.stop()


# ------------------------------------------------------------------------------------------------
# 1. missed fill
# ------------------------------------------------------------------------------------------------


def test_missed_fill_is_found_by_the_trades_since_the_watermark_and_corrected(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot(CORRECT)
    first = bot.rest_order(Side.BUY, 2)
    bot.take(first)  # heard: it sets the trade-id watermark
    wait(lambda: bot.engine.positions.position(SYMBOL) > 0, 5, "the first fill heard")
    mark = builtin_services.SERVICES.watermark.get(SYMBOL)
    assert mark >= 0

    cid = bot.rest_order(Side.BUY, 2)
    bot.lose_user_events(2)  # the fill's executionReport and outboundAccountPosition
    bot.take(cid)
    bot.assert_all_lost()
    position_before = bot.engine.positions.position(SYMBOL)
    assert bot.engine.positions.open_order(cid) is not None and bot.engine.tracker.get(cid).is_live
    bot.past_grace(cid)  # so the reset also makes the engine ask the venue about the order

    bot.reset()
    ((from_id, fills),) = bot.trade_calls
    assert from_id == mark + 1  # only the trades the bot has not seen
    assert [(f.client_order_id, f.qty) for f in fills] == [(cid, QTY)]
    found = bot.recorder.drifts()
    assert by_field(found) == {
        ("position", SYMBOL): (CAUSE_MISSED_FILL, True),
        ("order.missing_venue", cid): (CAUSE_MISSED_FILL, True),
        ("balance.locked", "USDT"): (CAUSE_MISSED_FILL, True),  # the bid's lock is spent
        ("balance.free", "BTC"): (CAUSE_MISSED_FILL, True),  # and the BTC came in
    }
    pos = next(d for d in found if d.field == "position")
    assert (Decimal(pos.local), Decimal(pos.venue)) == (
        position_before,
        position_before + fills[0].qty - fills[0].commission,
    )
    assert {(f, k, a) for f, k, _, _, a in bot.journaled(found)} == {
        (d.field, d.key, "correct") for d in found
    }

    wait(bot.consistent, 5, "the bot's state equals the exchange's")
    assert bot.engine.tracker.get(cid).status is OrderStatus.FILLED
    assert bot.engine.status()["halted"] is None


# ------------------------------------------------------------------------------------------------
# 2. lost cancel
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lost", [1, 2], ids=["report", "report+balances"])
def test_lost_cancel_is_found_and_corrected(make_bot: Callable[..., Bot], lost: int) -> None:
    bot = make_bot(CORRECT)
    cid = bot.rest_order(Side.BUY, 2)
    bot.lose_user_events(lost)  # the CANCELED report (and the balance update that unlocks the funds)
    bot.cancel_outside(cid)
    bot.assert_all_lost()
    assert bot.engine.positions.open_order(cid) is not None and bot.engine.tracker.get(cid).is_live
    bot.past_grace(cid)

    bot.reset()
    drifts = bot.recorder.drifts()
    want = {("order.missing_venue", cid): (CAUSE_LOST_CANCEL, True)}
    if lost == 2:  # the funds went back from locked to free: not a fill
        want[("balance.free", "USDT")] = want[("balance.locked", "USDT")] = (CAUSE_LOST_CANCEL, True)
    assert by_field(drifts) == want
    assert {a for *_, a in bot.journaled(drifts)} == {"correct"}
    wait(bot.consistent, 5, "the bot's state equals the exchange's")
    assert bot.engine.tracker.get(cid).status is OrderStatus.CANCELED
    assert bot.engine.status()["halted"] is None


# ------------------------------------------------------------------------------------------------
# 3. an order placed outside the bot
# ------------------------------------------------------------------------------------------------


def outside_order(bot: Bot) -> str:
    bid, _ = bot.venue_top()
    resp = bot.paper.external_order(
        {
            "symbol": SYMBOL,
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "price": str(bid - 100 * bot.inst.tick_size),
            "quantity": str(QTY),
        }
    )
    return str(resp["clientOrderId"])


def test_order_placed_outside_halts_quoting_under_the_default_policy(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot()  # default policy: order.missing_local -> halt
    own = bot.rest_order(Side.BUY, 2)
    # Its NEW report reaches the bot: the cache books it, the engine does not know it and asks for
    # a reconcile_full at once (a trigger): that reset finds it.
    web = outside_order(bot)
    halt = wait(lambda: bot.engine.status()["halted"], 5, "quoting halted")
    assert web in halt and CAUSE_OUTSIDE in halt
    (found,) = [d for d in bot.recorder.drifts() if d.key == web]
    assert (found.field, found.cause, found.venue) == ("order.missing_local", CAUSE_OUTSIDE, "NEW")
    rows = wait(lambda: [r for r in bot.drift_rows() if r[2] == web], 5, "the drift in the journal")
    assert [r[1:] for r in rows] == [("order.missing_local", web, CAUSE_OUTSIDE, 1, "halt")]
    assert not bot.engine.is_quoting(SYMBOL) and bot.reconciler.halted() is not None
    wait(
        lambda: [o["clientOrderId"] for o in bot.venue_orders()] == [web], 5, "the bot's own order cancelled"
    )
    wait(lambda: bot.engine.tracker.get(own).status is OrderStatus.CANCELED, 5)
    assert not bot.engine.is_quoting(SYMBOL)  # still halted: nothing lifts it but a clean reset

    # Reported once: the next reset is clean and lifts the halt (halt_clears_after: 1).
    bot.reset()
    wait(
        lambda: bot.engine.is_quoting(SYMBOL) and bot.engine.status()["halted"] is None, 5, "quoting resumed"
    )
    assert [d.key for d in bot.recorder.drifts()] == [web]
    wait(lambda: bot.consistent(foreign=frozenset({web})), 5, "the bot's state equals the exchange's")


def test_order_placed_outside_is_adopted_under_correct_and_quoting_continues(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot({"order.missing_local": "correct"})
    own = bot.rest_order(Side.BUY, 2)
    bot.lose_user_events(2)  # the bot hears nothing of it: NEW report and balance update lost
    web = outside_order(bot)
    bot.assert_all_lost()
    assert bot.engine.positions.open_order(web) is None
    bot.reset()
    drifts = bot.recorder.drifts()
    assert by_field(drifts) == {
        ("order.missing_local", web): (CAUSE_OUTSIDE, True),
        ("balance.free", "USDT"): (CAUSE_OUTSIDE, True),  # the funds it locked
        ("balance.locked", "USDT"): (CAUSE_OUTSIDE, True),
    }
    assert {a for *_, a in bot.journaled(drifts)} == {"correct"}
    assert bot.engine.positions.open_order(web) is not None  # adopted by the cache, not by the engine
    assert bot.engine.status()["halted"] is None and bot.engine.is_quoting(SYMBOL)
    assert bot.engine.tracker.get(own).status is OrderStatus.NEW  # untouched
    wait(lambda: bot.consistent(foreign=frozenset({web})), 5, "the bot's state equals the exchange's")
    bot.rest_order(Side.BUY, 3)  # quoting goes on


# ------------------------------------------------------------------------------------------------
# The reconcile.py fix: an order the engine tracks is not foreign
# ------------------------------------------------------------------------------------------------


def test_own_order_whose_new_report_is_lost_is_adopted_not_halted_on(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot()  # default policy: order.missing_local -> halt, but not for the bot's own orders
    bot.lose_user_events(2)  # the NEW report and the balance update of the next order
    cid = bot.rest_order(Side.BUY, 2)  # the engine knows it from the order's answer
    bot.assert_all_lost()
    assert bot.engine.positions.open_order(cid) is None
    bot.reset()
    drifts = bot.recorder.drifts()
    assert by_field(drifts)[("order.missing_local", cid)] == (CAUSE_TRACKED_OWN, True)
    assert {d.cause for d in drifts} == {CAUSE_TRACKED_OWN}  # its locked funds too
    assert {a for *_, a in bot.journaled(drifts)} == {"correct"}
    assert bot.engine.status()["halted"] is None and bot.engine.is_quoting(SYMBOL)
    wait(bot.consistent, 5, "the bot's state equals the exchange's")
