"""The whole bot (engine + gateway + marketmaker) through the Binance adapter against the paper
exchange, with faults injected through the exchange: after each, the engine's book equals the
exchange's, its open orders and balances equal the exchange's, and quoting paused while a stream
was untrusted and resumed afterwards.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from botcore_exchange_binance import plugin as binance_plugin
from botcore_exchange_paper.config import PaperConfig
from botcore_exchange_paper.embedded import EmbeddedPaper, start_embedded
from botcore_strategy_marketmaker import plugin as mm_plugin
from e2e_support import wait

from botcore import hookimpl
from botcore.app import build_strategies
from botcore.config import config_from_dict
from botcore.engine import Engine, EngineHandle
from botcore.jobs import Jobs
from botcore.plugins import Hooks, collect_registry, get_plugin_manager
from botcore.scheduler import Scheduler

pytestmark = pytest.mark.e2e

SYMBOL = "BTCUSDT"


class JobsPlugin:
    """botcore's reconcile jobs (registered by hand: the test loads no entry points)."""

    @hookimpl
    def botcore_register_jobs(self, register: Any) -> None:
        Jobs().register(register)


class TrustRecorder:
    """A plugin recording the engine's trust changes (quoting pauses / resumes)."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, bool, str]] = []
        self.lock = threading.Lock()

    @hookimpl
    def botcore_trust_changed(self, stream: str, trusted: bool, reason: str) -> None:
        with self.lock:
            self.changes.append((stream, trusted, reason))

    def since(self, n: int) -> list[tuple[str, bool, str]]:
        with self.lock:
            return self.changes[n:]


class OrdersSeen:
    """A venue listener: every order the venue accepted (its NEW report), to catch duplicates."""

    def __init__(self) -> None:
        self.new_ids: list[str] = []
        self.lock = threading.Lock()

    def on_market(self, stream: str, payload: bytes) -> None:
        pass

    def on_user(self, api_key: str, event: dict[str, Any]) -> None:
        if event.get("e") == "executionReport" and event.get("x") == "NEW":
            with self.lock:
                self.new_ids.append(event["c"])

    def duplicates(self) -> list[str]:
        with self.lock:
            return sorted({c for c in self.new_ids if self.new_ids.count(c) > 1})


class Bot:
    def __init__(self, paper: EmbeddedPaper, transport: str) -> None:
        self.paper = paper
        self.seen = OrdersSeen()
        paper.venue_call(lambda v: v.add_listener(self.seen))
        config = config_from_dict({
            "exchange": {"name": "binance", "mode": "paper", "symbols": [SYMBOL], "options": {
                "order_transport": transport, "stall_timeout_s": 1.5, "request_timeout_s": 1.0,
                "backoff_initial_s": 0.05, "backoff_max_s": 0.2}},
            # The engine reconciles through REST on a schedule; after a user-stream outage the
            # position cache is only corrected by the next run, so run it often here.
            "schedules": [{"name": "reconcile", "job": "reconcile_light", "every": 0.5}],
            "strategies": [{"name": "mm", "type": "marketmaker", "params": {
                "amount": "0.002", "bid_distance": {"ticks": 2}, "ask_distance": {"ticks": 2}, "levels": 1,
                "post_only": True, "requote_tolerance_bps": "0.5", "min_requote_interval": 0.05,
                "max_position": "0.02"}}],
        })
        self.recorder = TrustRecorder()
        pm = get_plugin_manager(load_entrypoints=False,
                                extra=[binance_plugin, mm_plugin, JobsPlugin(), self.recorder])
        registry = collect_registry(pm)
        self.adapter = registry.exchanges["binance"](config, paper.endpoints())
        instruments = self.adapter.exchange_info([SYMBOL])
        self.inst = instruments[SYMBOL]
        strategies = build_strategies(config, registry, instruments)
        self.engine = Engine(instruments, strategies, [], adapter=self.adapter, hooks=Hooks(pm), run_id="e2ebot")
        self.engine.load_snapshot(self.adapter.account_snapshot())
        self.scheduler = Scheduler(config.schedules, registry.jobs, EngineHandle(self.engine, self.adapter, config))
        self.market_on = threading.Event()
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, daemon=True)

    def _tick(self) -> None:
        while not self._stop.is_set():
            if self.market_on.wait(0.05):
                self.paper.step(1)
                time.sleep(0.01)

    def start(self) -> None:
        if self.adapter.ws_api is not None:
            self.adapter.ws_api.start()
            assert self.adapter.ws_api.socket.wait_open(5)
        self.engine.start()
        self.adapter.start(self.engine, [SYMBOL])
        self.scheduler.start()
        self._ticker.start()
        self.market_on.set()

    def stop(self) -> None:
        self._stop.set()
        self.market_on.clear()
        self._ticker.join(2)
        self.scheduler.shutdown(wait=True)
        self.engine.stop("test done")
        self.engine.join(15)
        self.adapter.stop()

    # --- what the assertions compare -------------------------------------------------------------
    def quoting(self) -> bool:
        return self.engine.is_quoting(SYMBOL) and self.engine.status().get("live_orders", 0) > 0

    def venue_state(self) -> tuple[list[dict[str, Any]], dict[str, tuple[Decimal, Decimal]]]:
        snap = self.paper.snapshot()["accounts"][0]
        balances = {b["asset"]: (Decimal(b["free"]), Decimal(b["locked"])) for b in snap["balances"]}
        return snap["open_orders"], balances

    def consistent(self) -> bool:
        """Book, open orders and balances equal the venue's (call with the market paused).

        The venue is read directly (not through the adapter: no rate-limit weight, no shared code).
        """
        raw = self.paper.venue_call(lambda v: v.depth(SYMBOL, 100))
        book = self.engine.book_sync(SYMBOL).book
        assert book.last_update_id == raw["lastUpdateId"], (book.last_update_id, raw["lastUpdateId"])
        bids, asks = book.depth(20)
        want_b = [(self.inst.price_to_ticks(p), self.inst.qty_to_units(q)) for p, q in raw["bids"][:20]]
        want_a = [(self.inst.price_to_ticks(p), self.inst.qty_to_units(q)) for p, q in raw["asks"][:20]]
        assert (list(bids), list(asks)) == (want_b, want_a)
        venue_orders, balances = self.venue_state()
        venue_ids = sorted(o["clientOrderId"] for o in venue_orders)
        cache_ids = sorted(o.client_order_id for o in self.engine.positions.open_orders(SYMBOL))
        assert cache_ids == venue_ids, (cache_ids, venue_ids)
        live = sorted(o.client_order_id for o in self.engine.tracker.live(SYMBOL))
        assert live == venue_ids, (live, venue_ids)
        for asset in ("BTC", "USDT"):
            free, locked = balances[asset]
            assert (self.engine.positions.free(asset), self.engine.positions.locked(asset)) == (free, locked), asset
        return True

    def settle_and_check(self, attempts: int = 8) -> None:
        """Pause the market briefly (shorter than the stall watchdog) and compare; retry a few times."""
        last: AssertionError | None = None
        for _ in range(attempts):
            self.market_on.clear()
            try:
                time.sleep(0.25)
                wait(self.consistent, 0.6, "engine state == venue state")
                return
            except AssertionError as exc:
                last = exc
            finally:
                self.market_on.set()
            time.sleep(0.5)
        raise AssertionError(f"engine state never matched the venue: {last}")


@pytest.fixture(params=["ws_api", "rest"])
def bot(request: pytest.FixtureRequest) -> Iterator[Bot]:
    # A short first ban, so the 418 path ends inside the test.
    paper = start_embedded(PaperConfig(synthetic=True, symbols=[SYMBOL], options={"ban_seconds": 1.5}),
                           run_market=False)
    paper.step(300)
    b = Bot(paper, request.param)
    try:
        b.start()
        yield b
    finally:
        b.stop()
        try:
            assert b.venue_state()[0] == []  # the engine cancelled everything on stop
        finally:
            paper.close()


def pause_and_resume(bot: Bot, inject: Callable[[], Any], stream_prefix: str) -> list[tuple[str, bool, str]]:
    """Inject a fault; quoting must pause (an untrusted change) and resume (trusted again)."""
    wait(bot.quoting, 10, "quoting before the fault")
    n = len(bot.recorder.changes)
    inject()
    wait(lambda: any(s.startswith(stream_prefix) and not ok for s, ok, _ in bot.recorder.since(n)), 10,
         f"{stream_prefix} untrusted")
    wait(lambda: any(s.startswith(stream_prefix) and ok for s, ok, _ in bot.recorder.since(n)), 15,
         f"{stream_prefix} trusted again")
    wait(bot.quoting, 10, "quoting resumed")
    return bot.recorder.since(n)


def test_bot_survives_faults_and_stays_consistent(bot: Bot) -> None:
    wait(bot.quoting, 15, "first quotes")
    bot.settle_and_check()

    changes = pause_and_resume(bot, lambda: bot.paper.faults.drop("market"), "market")
    assert any(not ok for s, ok, _ in changes if s.startswith("market"))
    bot.settle_and_check()

    pause_and_resume(bot, lambda: bot.paper.faults.depth_gap(SYMBOL), "market")
    bot.settle_and_check()

    pause_and_resume(bot, lambda: bot.paper.faults.stall("market", seconds=2.5), "market")
    bot.settle_and_check()

    pause_and_resume(bot, lambda: bot.paper.faults.user_stream_terminated(), "user")
    bot.settle_and_check()

    pause_and_resume(bot, lambda: bot.paper.faults.drop("user"), "user")
    bot.settle_and_check()

    # an order answered 5xx although it executed: UNKNOWN, resolved by query, never duplicated
    unknown_before = bot.engine.status().get("counters", {}).get("unknown_outcomes", 0)
    bot.paper.faults.order_5xx(count=1)
    wait(lambda: not bot.paper.faults.state()["order_faults"], 15, "the 5xx fault consumed by an order")
    bot.settle_and_check()
    venue_orders, _ = bot.venue_state()
    ids = [o["clientOrderId"] for o in venue_orders]
    assert len(ids) == len(set(ids))
    assert not bot.engine.tracker.unknown()  # resolved
    assert bot.seen.duplicates() == []
    del unknown_before


def counter(bot: Bot, name: str) -> int:
    return int(bot.engine.status().get("counters", {}).get(name, 0))


def hammer(bot: Bot, requests: int) -> None:
    """Another client on the bot's IP keeps sending after its 429s: the venue bans the IP (418)."""
    for _ in range(requests):
        try:
            urllib.request.urlopen(f"{bot.paper.rest_url}/v3/ping", timeout=2).close()
        except urllib.error.HTTPError:
            pass


def test_bot_rides_out_429_418_clock_skew_and_lost_acks(bot: Bot) -> None:
    wait(bot.quoting, 15, "first quotes")
    bot.settle_and_check()

    # 429: order entry closes (the engine pauses quoting, so rejected orders are not retried at
    # every tick), only cancels go out until Retry-After, then quoting resumes.
    orders_before, rejects_before = bot.engine.n_orders, counter(bot, "rejects")
    changes = pause_and_resume(bot, lambda: bot.paper.faults.rate_limit_storm(1.0), "orders")
    closed = [why for s, ok, why in changes if s == "orders" and not ok]
    assert closed and "429" in closed[0], changes
    assert counter(bot, "rejects") - rejects_before <= 4, "orders were retried while entry was closed"
    wait(lambda: bot.engine.n_orders > orders_before, 10, "orders flow again")
    bot.settle_and_check()
    assert bot.seen.duplicates() == []

    # 418: the IP is banned; the adapter sends nothing until the ban ends.
    def ban() -> None:
        bot.paper.faults.rate_limit_storm(0.5)
        hammer(bot, 8)

    rejects_before = counter(bot, "rejects")
    changes = pause_and_resume(bot, ban, "orders")
    closed = [why for s, ok, why in changes if s == "orders" and not ok]
    assert any("418" in why for why in closed), changes
    assert counter(bot, "rejects") - rejects_before <= 4
    bot.paper.faults.clear()
    bot.settle_and_check()
    assert bot.seen.duplicates() == []

    # -1021: the venue's clock jumps 7 s ahead; signed requests fail until the adapter resyncs its
    # server-time offset, then orders flow again.
    generation = bot.adapter.sync_generation
    orders_before = bot.engine.n_orders
    bot.paper.faults.clock_skew(7_000)
    wait(lambda: bot.adapter.sync_generation > generation and abs(bot.adapter.clock.offset_ms - 7_000) < 1_000,
         15, "server-time offset resynchronised")
    wait(lambda: bot.engine.n_orders > orders_before + 2, 15, "orders accepted after the resync")
    bot.settle_and_check()
    assert bot.seen.duplicates() == []

    # lost ack: the order is placed but its answer never comes; the engine holds it UNKNOWN (in
    # its live-order slot), queries it by client id, and never sends it again.
    unknown_before = counter(bot, "unknown_outcomes")
    bot.paper.faults.ack_lost(count=1)
    wait(lambda: not bot.paper.faults.state()["order_faults"], 15, "the lost-ack fault consumed by an order")
    wait(lambda: counter(bot, "unknown_outcomes") > unknown_before, 10, "the order held as UNKNOWN")
    wait(lambda: not bot.engine.tracker.unknown(), 15, "UNKNOWN resolved by query")
    bot.settle_and_check()
    assert bot.seen.duplicates() == []
    venue_orders, _ = bot.venue_state()
    assert len(venue_orders) <= 2  # one level a side: the cap held
