"""The market maker end to end: the whole bot against the paper exchange replaying real BTCUSDT data.

Checked from the exchange's side (a listener inside the venue, on the venue's own thread, at every
user-data event it emits): the bot never has more orders resting than its cap and its inventory
never leaves ±max_position. It places and re-quotes orders and gets fills, and when the market
stream stalls it stops quoting (its orders leave the book) until the stream is trusted again.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from botcore_exchange_paper.config import PaperConfig
from botcore_exchange_paper.embedded import start_embedded
from e2e_support import PaperBot, wait

pytestmark = pytest.mark.e2e

SYMBOL = "BTCUSDT"
MAX_POSITION = Decimal("0.006")


class ExchangeSideWatch:
    """Venue listener: measures the bot's resting orders and inventory as the exchange sees them."""

    def __init__(self, venue: Any, api_key: str) -> None:
        self.venue = venue
        self.account = venue.account_for_key(api_key)
        self.max_open = 0
        self.max_abs_position = Decimal(0)
        self.fills = 0
        self.order_ids: set[str] = set()
        self.open_now = 0
        self.start_btc = self._btc()

    def _btc(self) -> Decimal:
        balances = {b["asset"]: b for b in self.venue.account_info(self.account)["balances"]}
        return Decimal(balances["BTC"]["free"]) + Decimal(balances["BTC"]["locked"])

    def on_market(self, stream: str, payload: bytes) -> None:
        return None

    def on_user(self, api_key: str, event: dict[str, Any]) -> None:
        if api_key != self.account.api_key:
            return
        if event.get("e") == "executionReport":
            self.order_ids.add(event["c"] if event["x"] != "CANCELED" else event["C"])
            if event["x"] == "TRADE":
                self.fills += 1
        self.open_now = len(self.venue.open_orders(self.account, SYMBOL))
        self.max_open = max(self.max_open, self.open_now)
        self.max_abs_position = max(self.max_abs_position, abs(self._btc() - self.start_btc))


def config() -> dict[str, Any]:
    return {
        "exchange": {"name": "binance", "mode": "paper", "symbols": [SYMBOL], "options": {
            "stall_timeout_s": 1.0, "backoff_initial_s": 0.05, "backoff_max_s": 0.2}},
        "strategies": [{"name": "mm", "type": "marketmaker", "params": {
            "amount": "0.002", "bid_distance": "join", "ask_distance": "join", "levels": 1,
            "post_only": True, "requote_tolerance_bps": "0.2", "min_requote_interval": 0.05,
            "max_position": str(MAX_POSITION)}}],
        "risk": {"checks": [
            {"type": "max_order_notional", "params": {"max_notional": "500"}},
            {"type": "price_band", "params": {"max_bps": 50}},
            {"type": "stale_data", "params": {"max_book_age": "5s", "max_user_silence": "120s"}},
        ]},
    }


@pytest.fixture
def bot() -> Iterator[tuple[PaperBot, ExchangeSideWatch]]:
    paper = start_embedded(PaperConfig(symbols=[SYMBOL]), run_market=False)
    paper.step(200)
    watch = paper.venue_call(lambda v: ExchangeSideWatch(v, paper.api_key))
    paper.venue_call(lambda v: v.add_listener(watch))
    b = PaperBot(paper, config(), run_id="mme2e")
    try:
        b.start()
        yield b, watch
    finally:
        b.stop()
        paper.close()


def test_marketmaker_quotes_requotes_fills_and_respects_limits_from_the_exchange_side(
    bot: tuple[PaperBot, ExchangeSideWatch],
) -> None:
    b, watch = bot
    wait(lambda: watch.fills >= 5 and len(watch.order_ids) >= 10, 90, "re-quotes and fills")

    # A stalled market stream: quoting stops and the bot's orders leave the book, then resume.
    b.paper.faults.stall("market", seconds=3.0)
    wait(lambda: not b.engine.is_quoting(SYMBOL), 10, "quoting paused on the stalled stream")
    wait(lambda: b.paper.venue_call(lambda v: len(v.open_orders(watch.account, SYMBOL))) == 0, 10,
         "the bot's orders left the book")
    wait(lambda: b.engine.is_quoting(SYMBOL), 20, "quoting resumed after the stall")
    orders_before = len(watch.order_ids)
    wait(lambda: len(watch.order_ids) > orders_before, 20, "new quotes after the stall")

    cap = b.strategies[0].max_live_orders
    assert watch.max_open <= cap, f"{watch.max_open} orders resting at once, cap {cap}"
    assert watch.max_abs_position <= MAX_POSITION, f"inventory reached {watch.max_abs_position}"
