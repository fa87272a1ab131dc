"""nautilus-trader's L2 ``OrderBook`` fed the way its Binance adapter feeds it (separate interpreter).

nautilus-trader needs Python 3.12+, botcore runs on 3.11, so ``bench/run.py`` writes its input
(the same snapshot and frames every other contender gets) to a folder and runs this script with
the interpreter of a venv where ``pip install nautilus-trader`` worked. Per frame, as
``BinanceCommonDataClient._handle_ws_message`` / ``_handle_book_diff_update`` do: decode the
envelope (``BinanceDataMsgWrapper``), decode ``BinanceOrderBookMsg`` with msgspec,
``parse_to_order_book_deltas`` (Price/Quantity from the JSON strings, one ``OrderBookDelta`` per
level), ``OrderBook.apply_deltas``, then read ``best_bid_price()`` / ``best_ask_price()``. The data
engine's dispatch between the client and the book is left out (it would only add time).

Prints one JSON line: msgs/s (median over repetitions) per framing and the final best bid/ask.
Usage: ``python nautilus_book.py FOLDER [--repeat N] [--min-seconds S]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from pathlib import Path
from typing import Any

import msgspec
import nautilus_trader
from nautilus_trader.adapters.binance.common.schemas.market import (
    BinanceDataMsgWrapper,
    BinanceDepth,
    BinanceOrderBookMsg,
)
from nautilus_trader.model.book import OrderBook
from nautilus_trader.model.enums import BookType
from nautilus_trader.model.identifiers import InstrumentId

INSTRUMENT = InstrumentId.from_str("BTCUSDT.BINANCE")


class Feed:
    """One book plus the adapter's decoders; ``on_frame`` is the timed path."""

    def __init__(self, snapshot: bytes) -> None:
        self.wrapper = msgspec.json.Decoder(BinanceDataMsgWrapper)
        self.decoder = msgspec.json.Decoder(BinanceOrderBookMsg)
        self.book = OrderBook(INSTRUMENT, BookType.L2_MBP)
        depth = msgspec.json.Decoder(BinanceDepth).decode(snapshot)
        self.book.apply_deltas(depth.parse_to_order_book_snapshot(INSTRUMENT, time.time_ns()))
        self.last_id = depth.lastUpdateId

    def on_frame(self, raw: bytes) -> None:
        self.wrapper.decode(raw)  # the data client routes on the envelope's stream name first
        msg = self.decoder.decode(raw)
        if msg.data.u <= self.last_id:  # the adapter drops diffs older than its snapshot
            return
        deltas = msg.data.parse_to_order_book_deltas(INSTRUMENT, time.time_ns())
        self.book.apply_deltas(deltas)
        self.last_id = msg.data.u
        self.book.best_bid_price()
        self.book.best_ask_price()

    def top(self) -> list[str]:
        b = self.book
        return [
            str(b.best_bid_price()),
            str(b.best_bid_size()),
            str(b.best_ask_price()),
            str(b.best_ask_size()),
        ]


def lines(path: Path) -> list[bytes]:
    return [ln for ln in path.read_bytes().split(b"\n") if ln]


def one_pass(snapshot: bytes, warm: list[bytes], live: list[bytes]) -> tuple[float, Feed]:
    feed = Feed(snapshot)
    for raw in warm:
        feed.on_frame(raw)
    on_frame = feed.on_frame
    start = time.perf_counter()
    for raw in live:
        on_frame(raw)
    return time.perf_counter() - start, feed


def apply_only_pass(snapshot: bytes, warm: list[bytes], live: list[bytes]) -> float:
    """Seconds for ``apply_deltas`` + best bid/ask alone, the deltas built beforehand (untimed):
    the book's own share of the path, to tell it apart from the adapter's parsing."""
    feed = Feed(snapshot)
    for raw in warm:
        feed.on_frame(raw)
    decoded = [feed.decoder.decode(raw) for raw in live]
    batches = [m.data.parse_to_order_book_deltas(INSTRUMENT, 0) for m in decoded]
    book = feed.book
    start = time.perf_counter()
    for deltas in batches:
        book.apply_deltas(deltas)
        book.best_bid_price()
        book.best_ask_price()
    return time.perf_counter() - start


def rate(snapshot: bytes, warm: list[bytes], live: list[bytes], min_seconds: float) -> float:
    timed = 0.0
    passes = 0
    while passes == 0 or timed < min_seconds:
        timed += one_pass(snapshot, warm, live)[0]
        passes += 1
    return len(live) * passes / timed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", type=Path)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--min-seconds", type=float, default=0.25)
    a = ap.parse_args()
    snapshot = (a.folder / "snapshot.json").read_bytes()
    data = {name: lines(a.folder / f"{name}.txt") for name in ("warm10", "live10", "warm46", "live46")}
    gc.collect()
    gc.freeze()
    out: dict[str, Any] = {"version": nautilus_trader.__version__}
    for key in ("10", "46"):
        warm, live = data["warm" + key], data["live" + key]
        rates = [rate(snapshot, warm, live, a.min_seconds) for _ in range(max(1, a.repeat))]
        out["depth" + key] = statistics.median(rates)
        out["top" + key] = one_pass(snapshot, warm, live)[1].top()
    warm, live = data["warm10"], data["live10"]
    apply_only = []
    for _ in range(max(1, a.repeat)):
        timed = 0.0
        passes = 0
        while passes == 0 or timed < a.min_seconds:
            timed += apply_only_pass(snapshot, warm, live)
            passes += 1
        apply_only.append(len(live) * passes / timed)
    out["apply10"] = statistics.median(apply_only)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
