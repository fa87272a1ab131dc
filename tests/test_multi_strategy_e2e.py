"""Two market-maker instances in one bot on one account, against the paper exchange replaying the
recorded BTCUSDT data: each quotes with its own parameters, and they share the risk chain (a total
open-order cap smaller than the two strategies' caps added up), the rate limits and the balances.

Checked from the exchange's side (a listener inside the venue): both instances' orders reach the
book, the account never has more orders resting than the shared cap, and at the end the bot's
balances and open orders equal the exchange's.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import pytest
from botcore_exchange_paper.config import PaperConfig
from botcore_exchange_paper.embedded import EmbeddedPaper, start_embedded
from e2e_support import PaperBot, wait

from botcore import hookimpl
from botcore.model import OrderRequest, Quote

pytestmark = pytest.mark.e2e

SYMBOL = "BTCUSDT"
TOTAL_CAP = 4  # "tight" alone may have 2 live, "wide" 4: together they must share 4


class RestingWatch:
    """Venue listener: the most orders of the account resting at once, and every order id seen."""

    def __init__(self, venue: Any, api_key: str) -> None:
        self.venue = venue
        self.account = venue.account_for_key(api_key)
        self.max_open = 0
        self.new_ids: list[str] = []

    def on_market(self, stream: str, payload: bytes) -> None:
        return None

    def on_user(self, api_key: str, event: dict[str, Any]) -> None:
        if api_key != self.account.api_key or event.get("e") != "executionReport":
            return
        if event["x"] == "NEW":
            self.new_ids.append(event["c"])
        self.max_open = max(self.max_open, len(self.venue.open_orders(self.account, SYMBOL)))


class Submitted:
    """Plugin: which strategy sent which client order id, and the levels each decided to quote."""

    def __init__(self) -> None:
        self.orders: dict[str, OrderRequest] = {}
        self.levels: dict[str, set[int]] = {}
        self.lock = threading.Lock()

    @hookimpl
    def botcore_quotes_decided(self, strategy: str, symbol: str, quotes: Sequence[Quote]) -> None:
        with self.lock:
            self.levels.setdefault(strategy, set()).update(q.level for q in quotes)

    @hookimpl
    def botcore_order_submitted(self, order: OrderRequest) -> None:
        with self.lock:
            self.orders[order.client_order_id] = order

    def by_strategy(self) -> dict[str, list[OrderRequest]]:
        out: dict[str, list[OrderRequest]] = {}
        with self.lock:
            for o in self.orders.values():
                out.setdefault(o.strategy, []).append(o)
        return out


class Bot(PaperBot):
    """Two market-maker instances ("tight", "wide") behind one risk chain with a total cap."""

    def __init__(self, paper: EmbeddedPaper) -> None:
        common = {"post_only": True, "requote_tolerance_bps": "0.5", "min_requote_interval": 0.05,
                  "max_position": "0.01"}
        config = {
            "exchange": {"name": "binance", "mode": "paper", "symbols": [SYMBOL], "options": {
                "stall_timeout_s": 2.0, "backoff_initial_s": 0.05, "backoff_max_s": 0.2}},
            "strategies": [
                {"name": "tight", "type": "marketmaker", "params": {
                    **common, "amount": "0.002", "bid_distance": "join", "ask_distance": "join", "levels": 1}},
                {"name": "wide", "type": "marketmaker", "params": {
                    **common, "amount": "0.001", "bid_distance": {"ticks": 5}, "ask_distance": {"ticks": 5},
                    "levels": 2, "level_spacing": {"ticks": 3}}},
            ],
            "risk": {"checks": [
                {"type": "max_open_orders", "params": {"total": TOTAL_CAP}},
                {"type": "max_order_notional", "params": {"max_notional": "500"}},
            ]},
        }
        self.submitted = Submitted()
        super().__init__(paper, config, run_id="multi", plugins=[self.submitted])

    def consistent(self) -> bool:
        """The one position cache both strategies share equals the account at the venue."""
        snap = self.paper.snapshot()["accounts"][0]
        venue_ids = sorted(o["clientOrderId"] for o in snap["open_orders"])
        assert sorted(o.client_order_id for o in self.engine.tracker.live(SYMBOL)) == venue_ids
        for b in snap["balances"]:
            if b["asset"] in ("BTC", "USDT"):
                local = (self.engine.positions.free(b["asset"]), self.engine.positions.locked(b["asset"]))
                assert local == (Decimal(b["free"]), Decimal(b["locked"])), b["asset"]
        return True


@pytest.fixture
def bot() -> Iterator[tuple[Bot, RestingWatch]]:
    paper = start_embedded(PaperConfig(symbols=[SYMBOL]), run_market=False)
    paper.step(200)
    watch = paper.venue_call(lambda v: RestingWatch(v, paper.api_key))
    paper.venue_call(lambda v: v.add_listener(watch))
    b = Bot(paper)
    try:
        b.start()
        yield b, watch
    finally:
        b.stop()
        paper.close()


def test_two_instances_share_the_account_the_risk_chain_and_the_cap(bot: tuple[Bot, RestingWatch]) -> None:
    b, watch = bot
    assert [s.name for s in b.strategies] == ["tight", "wide"]
    assert sum(s.max_live_orders for s in b.strategies) > TOTAL_CAP  # the shared cap binds

    def both_traded() -> bool:
        sent = b.submitted.by_strategy()
        return all(len(sent.get(name, [])) >= 6 for name in ("tight", "wide"))

    wait(both_traded, 60, "both instances placing and re-quoting")
    wait(lambda: b.engine.vetoes.get("max_open_orders", 0) > 0, 30, "the shared cap vetoing an order")

    sent = b.submitted.by_strategy()
    # each instance quotes with its own parameters
    assert {o.qty for o in sent["tight"]} == {Decimal("0.002")}
    assert {o.qty for o in sent["wide"]} == {Decimal("0.001")}
    assert b.submitted.levels == {"tight": {0}, "wide": {0, 1}}
    # from the exchange's side: never more resting than the shared cap, no id sent twice
    assert watch.max_open <= TOTAL_CAP, f"{watch.max_open} resting at once, shared cap {TOTAL_CAP}"
    assert [c for c, n in Counter(watch.new_ids).items() if n > 1] == []

    b.market_on.clear()  # settle, then compare the shared cache with the account
    time.sleep(0.3)
    wait(b.consistent, 10, "bot state == exchange state")
