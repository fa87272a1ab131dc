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

Run: ``python bench/bench_book.py [--repeat N]``. ``measure()`` is the entry of ``bench/run.py``
(adds python-binance's DepthCache, nautilus-trader in its own interpreter and the decode share).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from sortedcontainers import SortedDict

from botcore.core import _book_py
from botcore.replay import is_snapshot, iter_recording, shipped_recording, stream_name

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved, medians, rate_of_passes  # noqa: E402

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


def python_binance_loads() -> tuple[Callable[[bytes], Any], str]:
    """The decoder python-binance 1.0.37's websocket uses: orjson when importable, else json.

    (``binance.ws.reconnecting_websocket.ReconnectingWebsocket.json_loads``.)
    """
    try:
        import orjson

        return orjson.loads, "orjson"
    except ImportError:
        return json.loads, "json"


class DepthCacheBook:
    """Baseline: python-binance 1.0.37's ``DepthCache`` fed the way its ``DepthCacheManager`` does.

    Frame -> ``json_loads`` (as its socket decodes) -> ``u``/``U`` checks -> ``add_bid``/``add_ask``
    per level (float conversion, a dict per side) -> best bid/ask read the way its users read it,
    ``get_bids()[0]`` / ``get_asks()[0]`` (each sorts the whole side). A sequence gap would make
    the manager re-fetch the REST snapshot; the benchmark's input has none after warm-up, so the
    gap is only counted (``gaps``). Prices here are floats: ``top()`` converts them to ticks only
    to compare the final book with the other contenders.
    """

    def __init__(self, symbol: str, price_precision: int, qty_precision: int = 8) -> None:
        from binance.ws.depthcache import DepthCache

        self._cls = DepthCache
        self.symbol = symbol
        self.price_scale = 10**price_precision
        self.qty_scale = 10**qty_precision
        self.loads, self.decoder = python_binance_loads()
        self.cache = DepthCache(symbol)
        self.last_update_id = -1
        self.gaps = 0

    def apply_snapshot_json(self, raw: bytes) -> None:
        res = self.loads(raw)
        self.cache = self._cls(self.symbol)
        for bid in res["bids"]:
            self.cache.add_bid(bid)
        for ask in res["asks"]:
            self.cache.add_ask(ask)
        self.last_update_id = res["lastUpdateId"]

    def apply_json(self, raw: bytes) -> int:
        msg = self.loads(raw)
        msg = msg.get("data", msg)  # combined-stream envelope (its depth_socket is single-stream)
        if msg["u"] <= self.last_update_id:
            return 1
        if msg["U"] != self.last_update_id + 1:
            self.gaps += 1
        cache = self.cache
        for bid in msg.get("b", []) + msg.get("bids", []):
            cache.add_bid(bid)
        for ask in msg.get("a", []) + msg.get("asks", []):
            cache.add_ask(ask)
        cache.update_time = msg.get("E") or msg.get("lastUpdateId")
        self.last_update_id = msg["u"]
        return 0

    def apply_levels(self, bids: list[list[str]], asks: list[list[str]]) -> None:
        """Pre-decoded string levels (its native input), for the levels/s row."""
        cache = self.cache
        for bid in bids:
            cache.add_bid(bid)
        for ask in asks:
            cache.add_ask(ask)

    def top(self) -> tuple[int, int, int, int]:
        bids, asks = self.cache.get_bids(), self.cache.get_asks()
        bid = bids[0] if bids else (0.0, 0.0)
        ask = asks[0] if asks else (0.0, 0.0)
        return (
            round(bid[0] * self.price_scale),
            round(bid[1] * self.qty_scale),
            round(ask[0] * self.price_scale),
            round(ask[1] * self.qty_scale),
        )


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


# ------------------------------------------------------------------------------------------------
# bench/run.py entry: compiled vs pure twin vs SortedDict vs python-binance DepthCache (+ nautilus)
# ------------------------------------------------------------------------------------------------

NAUTILUS_SCRIPT = Path(__file__).with_name("nautilus_book.py")


def _first_id(raw: bytes) -> int:
    return int(json.loads(raw)["data"]["U"])


class BookInput:
    """The runner's input: frames up to the first live diff are warm-up (applied untimed after the
    snapshot, as a client replays its buffer), then the first ``frames`` live frames are timed.

    Two framings of the same recorded level stream: ``live10`` (re-framed to <= 10 levels, the
    "~10-level message" case) and ``live46`` (frames as recorded, ~46 levels on average).
    """

    def __init__(self, rec: Recording, frames: int | None) -> None:
        self.snapshot = rec.snapshot
        self.snapshot_id = int(json.loads(rec.snapshot)["lastUpdateId"])
        self.warm46, live46 = self._split(rec.depth)
        self.warm10, live10 = self._split(rec.depth10)
        self.live46 = live46[:frames] if frames else live46
        self.live10 = live10[:frames] if frames else live10
        self.levels46 = self._count(self.live46)
        self.levels10 = self._count(self.live10)
        self.snapshot_args = rec.snapshot_args
        self.warm_diffs = [self._diff(raw) for raw in self.warm46]
        self.diffs = [self._diff(raw) for raw in self.live46]
        self.str_levels = [(d["b"], d["a"]) for d in (json.loads(raw)["data"] for raw in self.live46)]

    def _split(self, frames: list[bytes]) -> tuple[list[bytes], list[bytes]]:
        warm: list[bytes] = []
        live: list[bytes] = []
        for raw in frames:
            (warm if _first_id(raw) <= self.snapshot_id else live).append(raw)
        return warm, live

    @staticmethod
    def _count(frames: list[bytes]) -> int:
        return sum(len(d["b"]) + len(d["a"]) for d in (json.loads(raw)["data"] for raw in frames))

    @staticmethod
    def _diff(raw: bytes) -> tuple[int, int, list[tuple[int, int]], list[tuple[int, int]]]:
        data = json.loads(raw)["data"]
        return data["U"], data["u"], Recording._levels(data["b"]), Recording._levels(data["a"])


def contenders() -> dict[str, Callable[[], Any]]:
    """Name -> factory of a fresh book, compiled first (it is the reference of every ratio)."""
    out: dict[str, Callable[[], Any]] = {}
    if _book_c is not None:
        out["compiled"] = lambda: _book_c.OrderBook("BTCUSDT", PRICE_PRECISION, QTY_PRECISION)
    out["pure twin"] = lambda: _book_py.OrderBook("BTCUSDT", PRICE_PRECISION, QTY_PRECISION)
    out["SortedDict"] = lambda: SortedDictBook("BTCUSDT", PRICE_PRECISION, QTY_PRECISION)
    out["python-binance DepthCache"] = lambda: DepthCacheBook("BTCUSDT", PRICE_PRECISION, QTY_PRECISION)
    return out


def _warm_book(factory: Callable[[], Any], inp: BookInput, warm: list[bytes]) -> Any:
    book = factory()
    book.apply_snapshot_json(inp.snapshot)
    for raw in warm:
        book.apply_json(raw)
    return book


def frames_pass(factory: Callable[[], Any], inp: BookInput, warm: list[bytes], live: list[bytes]) -> float:
    """Seconds for raw frame bytes -> book -> best bid/ask, over ``live`` (set-up untimed)."""
    book = _warm_book(factory, inp, warm)
    apply, top = book.apply_json, book.top
    start = time.perf_counter()
    for raw in live:
        apply(raw)
        top()
    return time.perf_counter() - start


def levels_pass(factory: Callable[[], Any], inp: BookInput) -> float:
    """Seconds to apply the pre-decoded levels of ``live46``, each contender in its native form."""
    book = factory()
    if isinstance(book, DepthCacheBook):
        book.apply_snapshot_json(inp.snapshot)
        for raw in inp.warm46:
            book.apply_json(raw)
        apply_levels = book.apply_levels
        start = time.perf_counter()
        for bids, asks in inp.str_levels:
            apply_levels(bids, asks)
        return time.perf_counter() - start
    book.apply_snapshot(*inp.snapshot_args)
    for diff in inp.warm_diffs:
        book.apply_diff(*diff)
    apply = book.apply_diff
    start = time.perf_counter()
    for first, final, bids, asks in inp.diffs:
        apply(first, final, bids, asks)
    return time.perf_counter() - start


def final_top(factory: Callable[[], Any], inp: BookInput, warm: list[bytes], live: list[bytes]) -> tuple:
    book = _warm_book(factory, inp, warm)
    for raw in live:
        if book.apply_json(raw) not in (0,):
            raise AssertionError(f"{type(book).__name__} did not apply a live frame")
    if getattr(book, "gaps", 0) > 1:  # the straddling warm-up diff is the only allowed one
        raise AssertionError(f"{type(book).__name__} saw {book.gaps} sequence gaps")
    return tuple(book.top())


def decoders() -> dict[str, Callable[[bytes], Any]]:
    """Decoding alone: stdlib json, orjson, msgspec (to Python objects) and the compiled scanner."""
    out: dict[str, Callable[[bytes], Any]] = {"json.loads": json.loads}
    try:
        import orjson

        out["orjson.loads"] = orjson.loads
    except ImportError:
        pass
    try:
        import msgspec

        out["msgspec.json"] = msgspec.json.Decoder().decode
    except ImportError:
        pass
    if _book_c is not None:  # a book that must resync decodes every frame, then drops it
        scanner = _book_c.OrderBook("BTCUSDT", PRICE_PRECISION, QTY_PRECISION)
        scanner.apply_snapshot(0, [], [])
        scanner.apply_diff(2, 2, [], [])
        out["compiled scan (inside the core)"] = scanner.apply_json
    return out


def write_nautilus_input(inp: BookInput, folder: Path) -> None:
    """One frame per line (frames hold no newline), for the separate nautilus-trader process."""
    (folder / "snapshot.json").write_bytes(inp.snapshot)
    for name in ("warm10", "live10", "warm46", "live46"):
        (folder / f"{name}.txt").write_bytes(b"\n".join(getattr(inp, name)) + b"\n")


def run_nautilus(inp: BookInput, python: str | None, repeat: int, min_seconds: float) -> dict[str, Any]:
    """msgs/s of nautilus-trader's OrderBook in its own interpreter, or {"error": why not}."""
    if not python:
        return {"error": "skipped"}
    if not Path(python).exists():
        return {"error": "not installed"}
    import subprocess

    probe = subprocess.run(
        [python, "-c", "import nautilus_trader; print(nautilus_trader.__version__)"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if probe.returncode != 0:
        return {"error": "not installed"}
    from common import run_child

    with tempfile.TemporaryDirectory(prefix="botcore-bench-nt-") as tmp:
        write_nautilus_input(inp, Path(tmp))
        try:
            out = run_child(
                [
                    python,
                    str(NAUTILUS_SCRIPT),
                    tmp,
                    "--repeat",
                    str(repeat),
                    "--min-seconds",
                    str(min_seconds),
                ],
                timeout=600,
            )
        except Exception as exc:  # a broken optional extra must never fail the suite
            return {"error": f"failed: {exc}"[:200]}
    return dict(out)


def _ticks_of_decimal_top(top: Sequence[str]) -> tuple[int, int, int, int]:
    bp, bq, ap, aq = (Decimal(x) for x in top)
    return (
        int(bp.scaleb(PRICE_PRECISION)),
        int(bq.scaleb(QTY_PRECISION)),
        int(ap.scaleb(PRICE_PRECISION)),
        int(aq.scaleb(QTY_PRECISION)),
    )


def measure(
    repeat: int = 5,
    frames: int | None = 3000,
    min_seconds: float = 0.25,
    nautilus_python: str | None = None,
) -> dict[str, Any]:
    """Everything the runner's order-book rows need; medians over ``repeat`` interleaved runs.

    Every contender gets the same frames, warms up the same way untimed, and must end with the
    same best bid/ask as the compiled book (else AssertionError: a row that measures a different
    result measures nothing).
    """
    rec = Recording()
    inp = BookInput(rec, frames)
    del rec
    gc.collect()
    gc.freeze()  # ~1M long-lived objects: keep the cyclic GC from re-walking them in timed loops
    try:
        books = contenders()
        reference = next(iter(books))
        for warm, live in ((inp.warm10, inp.live10), (inp.warm46, inp.live46)):
            tops = {name: final_top(f, inp, warm, live) for name, f in books.items()}
            if len(set(tops.values())) != 1:
                raise AssertionError(f"books disagree on the final best bid/ask: {tops}")
        rates: dict[str, dict[str, float]] = {}
        for row, warm, live in (("depth10", inp.warm10, inp.live10), ("depth46", inp.warm46, inp.live46)):
            runs = {
                name: (
                    lambda f=f, w=warm, lv=live: (
                        len(lv) / rate_of_passes(lambda: frames_pass(f, inp, w, lv), len(lv), min_seconds)
                    )
                )
                for name, f in books.items()
            }
            rates[row] = {name: len(live) / sec for name, sec in medians(interleaved(runs, repeat)).items()}
        level_runs = {
            name: (
                lambda f=f: (
                    inp.levels46 / rate_of_passes(lambda: levels_pass(f, inp), inp.levels46, min_seconds)
                )
            )
            for name, f in books.items()
        }
        rates["levels"] = {
            name: inp.levels46 / sec for name, sec in medians(interleaved(level_runs, repeat)).items()
        }
        decode_runs = {
            name: (
                lambda d=d: (
                    len(inp.live10)
                    / rate_of_passes(lambda: _decode_pass(d, inp.live10), len(inp.live10), min_seconds)
                )
            )
            for name, d in decoders().items()
        }
        decode = {
            name: len(inp.live10) / sec for name, sec in medians(interleaved(decode_runs, repeat)).items()
        }
        nautilus = run_nautilus(inp, nautilus_python, repeat, min_seconds)
        if "error" not in nautilus:
            ref10 = final_top(books[reference], inp, inp.warm10, inp.live10)
            ref46 = final_top(books[reference], inp, inp.warm46, inp.live46)
            if (
                _ticks_of_decimal_top(nautilus["top10"]) != ref10
                or _ticks_of_decimal_top(nautilus["top46"]) != ref46
            ):
                nautilus = {
                    "error": f"disagrees on the final best bid/ask: {nautilus['top10']} {nautilus['top46']}"
                }
    finally:
        gc.unfreeze()
    return {
        "reference": reference,
        "frames10": len(inp.live10),
        "frames46": len(inp.live46),
        "levels10": inp.levels10,
        "levels46": inp.levels46,
        "rates": rates,
        "decode": decode,
        "nautilus": nautilus,
        "depthcache_decoder": python_binance_loads()[1],
    }


def _decode_pass(decode: Callable[[bytes], Any], frames: list[bytes]) -> float:
    start = time.perf_counter()
    for raw in frames:
        decode(raw)
    return time.perf_counter() - start


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
