"""Order-book throughput on the shipped real recording (BTCUSDT, Binance spot, 2024-08-08/09).

Books compared in one process: (a) the compiled ``botcore.core._book_c.OrderBook``, (b) its
pure-Python twin ``botcore.core._book_py.OrderBook``, (c) a baseline written here the way a
Python bot usually does it: ``sortedcontainers.SortedDict`` per side, frames decoded with
``json.loads`` and ``Decimal``. Each repetition starts from a fresh book with the recorded REST
snapshot (not timed) and replays every frame recorded after it (plus the diffs buffered before
it, as a client replays them). Figures are medians over repetitions, the contenders taking turns
inside each repetition; ratios are against the pure twin.

Rows:
  levels/s   depth levels applied through ``apply_diff`` from pre-decoded (price, qty) int lists;
  depth      raw websocket frames (combined-stream envelope bytes as recorded) of the depth
             stream -> ``apply_json`` -> ``top()``;
  depth<=10  the same level stream re-framed into frames of at most 10 levels with contiguous
             update ids (re-encoded like Binance; the final book is the recorded one), the
             "~10-level message" case;
  ticker     raw bookTicker frames -> ``apply_json`` -> ``top()``;
  all        every recorded frame in order (depth, bookTicker, trade) -> ``apply_json`` -> ``top()``;
  decode     decoding alone (no book) of the depth frames with json.loads / orjson / msgspec.

Run: ``python bench/bench_book.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from sortedcontainers import SortedDict

from botcore.core import _book_py
from botcore.replay import is_snapshot, iter_recording, shipped_recording, stream_name

try:
    from botcore.core import _book_c
except ImportError:  # not built: the bench still runs the twin and the baseline
    _book_c = None  # type: ignore[assignment]

PRICE_PRECISION = 2
QTY_PRECISION = 8


class SortedDictBook:
    """Baseline: a typical Python book (SortedDict per side, json.loads + Decimal), same rules."""

    def __init__(self, symbol: str, price_precision: int, qty_precision: int = 8) -> None:
        self.price_scale = Decimal(10) ** price_precision
        self.qty_scale = Decimal(10) ** qty_precision
        self.bids_: SortedDict = SortedDict()
        self.asks_: SortedDict = SortedDict()
        self.last_update_id = -1
        self.ticker_update_id = -1
        self.ticker = (0, 0, 0, 0)

    def _ticks(self, text: str, scale: Decimal) -> int:
        value = Decimal(text) * scale
        if value != value.to_integral_value():
            raise ValueError(f"{text!r} is off precision")
        return int(value)

    def _levels(self, raw: list[list[str]]) -> list[tuple[int, int]]:
        return [(self._ticks(p, self.price_scale), self._ticks(q, self.qty_scale)) for p, q in raw]

    def apply_snapshot(self, last_update_id: int, bids: Sequence, asks: Sequence) -> None:
        self.bids_ = SortedDict({p: q for p, q in bids if q})
        self.asks_ = SortedDict({p: q for p, q in asks if q})
        self.last_update_id, self.ticker_update_id = last_update_id, -1

    def apply_snapshot_json(self, raw: bytes) -> None:
        obj = json.loads(raw)
        self.apply_snapshot(obj["lastUpdateId"], self._levels(obj["bids"]), self._levels(obj["asks"]))

    def apply_diff(self, first_id: int, final_id: int, bids: Sequence, asks: Sequence) -> int:
        if final_id <= self.last_update_id:
            return 1
        if first_id > self.last_update_id + 1:
            return 2
        for side, levels in ((self.bids_, bids), (self.asks_, asks)):
            for price, qty in levels:
                if qty:
                    side[price] = qty
                else:
                    side.pop(price, None)
        self.last_update_id = final_id
        return 0

    def apply_json(self, raw: bytes) -> int:
        obj = json.loads(raw)
        data = obj["data"] if "stream" in obj and "data" in obj else obj
        if data.get("e") == "depthUpdate":
            return self.apply_diff(data["U"], data["u"], self._levels(data["b"]), self._levels(data["a"]))
        if "e" not in data and "u" in data:
            if data["u"] <= max(self.last_update_id, self.ticker_update_id):
                return 1
            self.ticker = (
                self._ticks(data["b"], self.price_scale),
                self._ticks(data["B"], self.qty_scale),
                self._ticks(data["a"], self.price_scale),
                self._ticks(data["A"], self.qty_scale),
            )
            self.ticker_update_id = data["u"]
            return 0
        return 4

    def top(self) -> tuple[int, int, int, int]:
        if self.ticker_update_id > self.last_update_id:
            return self.ticker
        bid = self.bids_.peekitem(-1) if self.bids_ else (0, 0)
        ask = self.asks_.peekitem(0) if self.asks_ else (0, 0)
        return bid + ask


class Recording:
    """The shipped capture split the way the benchmark needs it."""

    def __init__(self) -> None:
        records = [raw for _, raw in iter_recording(shipped_recording())]
        at = next(i for i, raw in enumerate(records) if is_snapshot(raw))
        self.snapshot = records[at]
        # the diffs buffered before the snapshot come first (two are stale, one straddles), as a
        # client replays them; without them the first live diff would be a gap
        buffered = [raw for raw in records[:at] if stream_name(raw).endswith("@depth@100ms")]
        self.frames = buffered + records[at + 1 :]
        self.depth = [raw for raw in self.frames if stream_name(raw).endswith("@depth@100ms")]
        self.ticker = [raw for raw in self.frames if stream_name(raw).endswith("@bookTicker")]
        snapshot_id = json.loads(self.snapshot)["lastUpdateId"]
        self.depth10 = [chunk for raw in self.depth for chunk in self._rechunk(raw, 10, snapshot_id)]
        self.diffs = []
        for raw in self.depth:
            data = json.loads(raw)["data"]
            self.diffs.append((data["U"], data["u"], self._levels(data["b"]), self._levels(data["a"])))
        snap = json.loads(self.snapshot)
        self.snapshot_args = (snap["lastUpdateId"], self._levels(snap["bids"]), self._levels(snap["asks"]))
        self.levels = sum(len(b) + len(a) for _, _, b, a in self.diffs)
        self.levels10 = 0
        for raw in self.depth10:
            data = json.loads(raw)["data"]
            self.levels10 += len(data["b"]) + len(data["a"])

    @staticmethod
    def _levels(raw: list[list[str]]) -> list[tuple[int, int]]:
        return [
            (
                _book_py.parse_decimal(p, PRICE_PRECISION, "price"),
                _book_py.parse_decimal(q, QTY_PRECISION, "qty"),
            )
            for p, q in raw
        ]

    @staticmethod
    def _rechunk(raw: bytes, size: int, snapshot_id: int) -> list[bytes]:
        """Split one diff into frames of at most ``size`` levels with contiguous update ids.

        The level stream and the final book are exactly the recorded ones; only the frames are
        smaller (the "~10-level message" case). Ids: chunk i covers U+i, the last one up to u.
        Diffs reaching back to the snapshot are kept whole (splitting would make part of the
        straddling diff look stale).
        """
        obj = json.loads(raw)
        data = obj["data"]
        if data["U"] <= snapshot_id:
            return [raw]
        levels = [("b", level) for level in data["b"]] + [("a", level) for level in data["a"]]
        chunks = [levels[i : i + size] for i in range(0, len(levels), size)] or [[]]
        while len(chunks) > data["u"] - data["U"] + 1:  # more chunks than ids: merge the tail
            chunks[-2:] = [chunks[-2] + chunks[-1]]
        frames = []
        for i, chunk in enumerate(chunks):
            part = dict(
                data, b=[lv for side, lv in chunk if side == "b"], a=[lv for side, lv in chunk if side == "a"]
            )
            part["U"] = data["U"] + i
            part["u"] = data["u"] if i == len(chunks) - 1 else data["U"] + i
            frames.append(json.dumps({"stream": obj["stream"], "data": part}, separators=(",", ":")).encode())
        return frames


def median_rates(work: float, runs: dict[str, Callable[[], float]], repeat: int) -> dict[str, float]:
    """``work`` units per second for each contender, median over ``repeat`` runs.

    The contenders take turns inside every repetition, so a burst of load from elsewhere on
    the machine hits all of them alike instead of skewing one column's ratios.
    """
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            seconds[name].append(run())
    return {name: work / statistics.median(times) for name, times in seconds.items()}


def time_diffs(factory: Callable[[], Any], rec: Recording) -> float:
    book = factory()
    book.apply_snapshot(*rec.snapshot_args)
    apply = book.apply_diff
    start = time.perf_counter()
    for first, final, bids, asks in rec.diffs:
        apply(first, final, bids, asks)
    return time.perf_counter() - start


def time_frames(factory: Callable[[], Any], rec: Recording, frames: list[bytes]) -> float:
    book = factory()
    book.apply_snapshot_json(rec.snapshot)
    apply, top = book.apply_json, book.top
    start = time.perf_counter()
    for raw in frames:
        apply(raw)
        top()
    return time.perf_counter() - start


def time_decode(decode: Callable[[bytes], Any], frames: list[bytes]) -> float:
    start = time.perf_counter()
    for raw in frames:
        decode(raw)
    return time.perf_counter() - start


def check_agreement(rec: Recording, factories: dict[str, Callable[[], Any]]) -> None:
    """Every book must apply every diff and end in the same place, or the rows measure nothing."""
    final_id = rec.diffs[-1][1]
    ends = {}
    for name, factory in factories.items():
        for replay in ("frames", "diffs"):
            book = factory()
            if replay == "frames":
                book.apply_snapshot_json(rec.snapshot)
                for raw in rec.frames:
                    book.apply_json(raw)
            else:
                book.apply_snapshot(*rec.snapshot_args)
                for diff in rec.diffs:
                    book.apply_diff(*diff)
            ends[name, replay] = (book.last_update_id, book.top())
    if any(end[0] != final_id for end in ends.values()):
        raise SystemExit(f"books did not replay the recording alike: {ends}")
    for replay in ("frames", "diffs"):
        if len({end for (_, r), end in ends.items() if r == replay}) != 1:
            raise SystemExit(f"books disagree after the {replay} replay: {ends}")
    ladders = []
    for frames in (rec.depth, rec.depth10):  # re-framing must not change the book
        book = next(iter(factories.values()))()
        book.apply_snapshot_json(rec.snapshot)
        for raw in frames:
            book.apply_json(raw)
        ladders.append((book.last_update_id, book.depth(1_000_000)))
    if ladders[0] != ladders[1]:
        raise SystemExit("the <=10-level re-framing changed the book")


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="repetitions per measurement (median reported)")
    args = parser.parse_args(argv)
    repeat = max(1, args.repeat)

    rec = Recording()
    # the recording is ~1M long-lived objects: keep the cyclic GC from re-walking them in the
    # middle of timed loops (it would bill a few ms per collection to whichever book is running)
    gc.collect()
    gc.freeze()
    factories: dict[str, Callable[[], Any]] = {}
    if _book_c is not None:
        factories["compiled"] = lambda: _book_c.OrderBook("BTCUSDT", PRICE_PRECISION, QTY_PRECISION)
    else:
        print("botcore.core._book_c is not built: compiled column omitted", file=sys.stderr)
    factories["pure twin"] = lambda: _book_py.OrderBook("BTCUSDT", PRICE_PRECISION, QTY_PRECISION)
    factories["SortedDict"] = lambda: SortedDictBook("BTCUSDT", PRICE_PRECISION, QTY_PRECISION)
    check_agreement(rec, factories)

    print(
        f"BTCUSDT recording: {len(rec.frames):,} frames from the snapshot on, {len(rec.depth):,} depth diffs "
        f"({rec.levels / len(rec.depth):.1f} levels each on average), {len(rec.ticker):,} bookTickers; "
        f"median of {repeat} runs; Python {sys.version.split()[0]}"
    )
    rows: list[tuple[str, str, dict[str, float]]] = []
    diff_runs = {name: lambda f=f: time_diffs(f, rec) for name, f in factories.items()}
    rows.append(
        ("levels/s", "apply_diff, pre-decoded int levels", median_rates(rec.levels, diff_runs, repeat))
    )
    for label, what, frames, levels in (
        (
            "depth",
            f"raw depth frames -> apply_json+top ({rec.levels / len(rec.depth):.0f} lv)",
            rec.depth,
            rec.levels,
        ),
        (
            "depth<=10",
            f"same levels re-framed <=10 per frame ({rec.levels10 / len(rec.depth10):.1f} lv)",
            rec.depth10,
            rec.levels10,
        ),
        ("ticker", "raw bookTicker frames -> apply_json+top", rec.ticker, 0),
        ("all", "every frame as recorded -> apply_json+top", rec.frames, 0),
    ):
        frame_runs = {name: lambda f=f, fr=frames: time_frames(f, rec, fr) for name, f in factories.items()}
        rates = median_rates(len(frames), frame_runs, repeat)
        rows.append((f"{label} msg/s", what, rates))
        if levels:
            per_level = {n: r * levels / len(frames) for n, r in rates.items()}
            rows.append((f"{label} lv/s", "  = levels/s from raw bytes", per_level))

    names = list(factories)
    others = [n for n in names if n != "pure twin"]
    header = f"{'row':<16}{'what':<50}" + "".join(f"{n:>14}" for n in names)
    header += "".join(f"{n + '/twin':>16}" for n in others)
    print(header)
    print("-" * len(header))
    for label, what, rates in rows:
        line = f"{label:<16}{what:<50}" + "".join(f"{fmt_rate(rates[n]):>14}" for n in names)
        line += "".join(f"{rates[n] / rates['pure twin']:>15.1f}x" for n in others)
        print(line)

    decoders: dict[str, Callable[[bytes], Any]] = {"json.loads": json.loads}
    try:
        import orjson

        decoders["orjson.loads"] = orjson.loads
    except ImportError:
        pass
    try:
        import msgspec

        decoders["msgspec.json"] = msgspec.json.Decoder().decode
    except ImportError:
        pass
    if _book_c is not None:  # the compiled scanner alone: a book that must resync decodes, then drops
        scanner = _book_c.OrderBook("BTCUSDT", PRICE_PRECISION, QTY_PRECISION)
        scanner.apply_snapshot(0, [], [])
        scanner.apply_diff(2, 2, [], [])
        decoders["compiled scan"] = scanner.apply_json
    print()
    print(
        "decode share, depth frames: json/orjson/msgspec to Python objects (decimals left as str); "
        "'compiled scan' = the book's own scanner to int64 scratch, no book update"
    )
    decode_runs = {name: lambda d=decode: time_decode(d, rec.depth) for name, decode in decoders.items()}
    decode_rates = median_rates(len(rec.depth), decode_runs, repeat)
    for name, rate in decode_rates.items():
        print(f"  {name:<14}{fmt_rate(rate):>12} msg/s  {rate / decode_rates['json.loads']:5.1f}x json.loads")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
