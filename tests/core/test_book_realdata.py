"""Real Binance data: rebuild books from recorded snapshots and diffs and check them.

BTCUSDT (botcore/data/hftbacktest, 2024-08-08/09): the oracle is Binance itself. Every
bookTicker whose ``u`` equals the ``u`` of an applied diff must show exactly the rebuilt ladder's
best bid/ask price AND quantity. The data README states the expected facts independently:
1,072 such checkpoints, 0 mismatches, the first 2 diffs are older than the snapshot, no gaps, never
crossed.

cryptofeed (tests/data/cryptofeed, 2021-10-12): four symbols on one combined stream with REST
snapshots taken during the session; for NKNUSDT one buffered diff ends exactly at lastUpdateId
and must be STALE.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import pytest

from botcore.replay import is_snapshot, iter_recording, shipped_recording, stream_name

CRYPTOFEED = Path(__file__).resolve().parents[1] / "data" / "cryptofeed"


def ticks(text: str, precision: int) -> int:
    """Independent decoding (Decimal) of a wire decimal into integer units."""
    value = Decimal(text).scaleb(precision)
    assert value == value.to_integral_value(), text
    return int(value)


@pytest.fixture(scope="module")
def btcusdt_records() -> list[tuple[int, bytes]]:
    return list(iter_recording(shipped_recording()))


def test_btcusdt_book_matches_every_book_ticker_checkpoint(
    book_mod: ModuleType, btcusdt_records: list
) -> None:
    book = book_mod.OrderBook("BTCUSDT", 2, 8)
    buffered: list[bytes] = []  # diffs that arrived before the snapshot
    pending: dict[int, tuple[int, int, int, int]] = {}  # bookTicker u -> expected top, until that diff lands
    codes = {code: 0 for code in (book_mod.APPLIED, book_mod.STALE, book_mod.GAP, book_mod.NOT_SYNCED)}
    checkpoints = mismatches = tickers_applied = 0

    def check(expected: tuple[int, int, int, int]) -> None:
        nonlocal checkpoints, mismatches
        checkpoints += 1
        (bid,), (ask,) = book.bids(1), book.asks(1)  # the ladder, not the overlay
        if bid + ask != expected:
            mismatches += 1

    def apply_diff(raw: bytes) -> None:
        code = book.apply_json(raw)
        codes[code] += 1
        if code == book_mod.NOT_SYNCED:
            buffered.append(raw)
        elif code == book_mod.APPLIED:
            expected = pending.pop(book.last_update_id, None)
            if expected is not None:
                check(expected)
            for u in [u for u in pending if u < book.last_update_id]:
                del pending[u]

    for _, raw in btcusdt_records:
        if is_snapshot(raw):
            book.apply_snapshot_json(raw)
            assert book.state == book_mod.SYNCING
            for frame in buffered:
                apply_diff(frame)
            buffered.clear()
            continue
        stream = stream_name(raw)
        if stream == "btcusdt@depth@100ms":
            apply_diff(raw)
        elif stream == "btcusdt@bookTicker":
            data = json.loads(raw)["data"]
            expected = (ticks(data["b"], 2), ticks(data["B"], 8), ticks(data["a"], 2), ticks(data["A"], 8))
            code = book.apply_json(raw)
            if code == book_mod.APPLIED:
                tickers_applied += 1
                assert book.top() == expected and book.ticker_update_id == data["u"]
            if data["u"] == book.last_update_id:
                check(expected)
            elif data["u"] > book.last_update_id:
                pending[data["u"]] = expected
        else:
            assert stream == "btcusdt@trade"
            assert book.apply_json(raw) == book_mod.IGNORED
        assert not book.is_crossed()

    assert (checkpoints, mismatches) == (1072, 0)
    assert codes == {
        book_mod.APPLIED: 3451 + 3044 - 2,
        book_mod.STALE: 2,
        book_mod.GAP: 0,
        book_mod.NOT_SYNCED: 3,
    }
    assert book.state == book_mod.LIVE and book.last_update_id == 50093696318
    assert tickers_applied > 60_000
    bids, asks = book.depth(1_000_000)
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
    assert bids[0][0] < asks[0][0]


CRYPTOFEED_PRECISIONS = {"NKNUSDT": (5, 1), "LRCBTC": (8, 0), "BLZETH": (8, 0), "RUNEEUR": (3, 1)}
"""(price, qty) decimals = the most nonzero decimals any price/quantity in the session has (the
2021 tickSize/stepSize); a book rejects a wire value with more, so a wrong guess fails the test."""


def cryptofeed_session() -> tuple[dict[str, tuple[float, bytes]], list[tuple[float, bytes]]]:
    """REST snapshots by symbol (``<url> -> <epoch>: <json>``) and ws frames (``<epoch>: <json>``)."""
    snapshots: dict[str, tuple[float, bytes]] = {}
    for line in (CRYPTOFEED / "BINANCE.http.0.0").read_bytes().splitlines():
        if line.strip():
            url, rest = line.split(b" -> ", 1)
            epoch, body = rest.split(b": ", 1)
            symbol = url.split(b"symbol=")[1].split(b"&")[0].decode()
            snapshots[symbol] = (float(epoch), body)
    frames = []
    for line in (CRYPTOFEED / "BINANCE.ws.1.0").read_bytes().splitlines()[1:]:  # line 1 is the URL
        if line.strip():
            epoch, body = line.split(b": ", 1)
            frames.append((float(epoch), body))
    return snapshots, frames


def test_cryptofeed_session_syncs_every_symbol(book_mod: ModuleType) -> None:
    snapshots, frames = cryptofeed_session()
    assert set(snapshots) == set(CRYPTOFEED_PRECISIONS)
    books = {s: book_mod.OrderBook(s, p, q) for s, (p, q) in CRYPTOFEED_PRECISIONS.items()}
    buffered: dict[str, list[bytes]] = {s: [] for s in books}
    results: dict[str, list[int]] = {s: [] for s in books}
    pending: dict[str, dict[int, tuple[int, int, int, int]]] = {s: {} for s in books}
    checkpoints = 0

    def check(symbol: str) -> None:
        nonlocal checkpoints
        book = books[symbol]
        expected = pending[symbol].pop(book.last_update_id, None)
        if expected is not None:
            checkpoints += 1
            assert book.bids(1)[0] + book.asks(1)[0] == expected, symbol

    def deliver(symbol: str, raw: bytes) -> None:
        code = books[symbol].apply_json(raw)
        if code == book_mod.NOT_SYNCED:
            buffered[symbol].append(raw)
        else:
            results[symbol].append(code)
            check(symbol)

    for epoch, raw in frames:
        for symbol, (taken, body) in snapshots.items():  # the REST answer arrived before this frame
            if taken <= epoch and books[symbol].state == book_mod.EMPTY:
                books[symbol].apply_snapshot_json(body)
                for frame in buffered[symbol]:
                    deliver(symbol, frame)
        envelope = json.loads(raw)
        symbol = envelope["stream"].split("@")[0].upper()
        if "@depth" in envelope["stream"]:
            deliver(symbol, raw)
        elif envelope["stream"].endswith("@bookTicker"):
            data, (p, q) = envelope["data"], CRYPTOFEED_PRECISIONS[symbol]
            pending[symbol][data["u"]] = (
                ticks(data["b"], p),
                ticks(data["B"], q),
                ticks(data["a"], p),
                ticks(data["A"], q),
            )
            assert books[symbol].apply_json(raw) in (book_mod.APPLIED, book_mod.STALE, book_mod.NOT_SYNCED)
            check(symbol)
        else:  # kline, aggTrade; and below: every book ignores another symbol's frames
            assert books[symbol].apply_json(raw) == book_mod.IGNORED
        for other in books.values():
            if other.symbol != symbol:
                assert other.apply_json(raw) == book_mod.IGNORED
            assert not other.is_crossed()

    nkn_id = json.loads(snapshots["NKNUSDT"][1])["lastUpdateId"]
    first_nkn = json.loads(frames[0][1])["data"]
    assert (first_nkn["s"], first_nkn["u"]) == ("NKNUSDT", nkn_id)  # the diff ending exactly at the snapshot
    assert results["NKNUSDT"][0] == book_mod.STALE
    for symbol, book in books.items():
        codes = results[symbol]
        assert book.state == book_mod.LIVE, symbol
        assert book_mod.GAP not in codes and codes.count(book_mod.APPLIED) >= 1, (symbol, codes)
        assert codes == sorted(codes, key=lambda c: c != book_mod.STALE), (
            symbol,
            codes,
        )  # stale only before sync
        assert book.level_count(True) > 0 and book.level_count(False) > 0
    assert checkpoints > 0, checkpoints
