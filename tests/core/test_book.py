"""OrderBook behaviour: sync rules, ladder, bookTicker overlay, JSON decoding, bad input.

Every test runs on both implementations through the ``book_mod`` fixture (tests/core/conftest.py).
Prices in ticks of 0.01 and quantities in units of 1e-8 (BTCUSDT), so ``6183763`` is 61837.63.
"""

from __future__ import annotations

import importlib
import json
import os
from types import ModuleType
from typing import Any

import pytest

from botcore.core import _book_py

INT64_MAX = 2**63 - 1


def frame(payload: dict[str, Any], stream: str | None = "btcusdt@depth@100ms") -> bytes:
    """A frame as Binance sends it: compact JSON, optionally inside a combined-stream envelope."""
    obj: dict[str, Any] = payload if stream is None else {"stream": stream, "data": payload}
    return json.dumps(obj, separators=(",", ":")).encode()


def depth(U: int, u: int, b: list[list[str]], a: list[list[str]], symbol: str = "BTCUSDT") -> dict[str, Any]:
    return {"e": "depthUpdate", "E": 1723161255208, "s": symbol, "U": U, "u": u, "b": b, "a": a}


def ticker(u: int, b: str, bq: str, a: str, aq: str, symbol: str = "BTCUSDT") -> dict[str, Any]:
    return {"u": u, "s": symbol, "b": b, "B": bq, "a": a, "A": aq}


def everything(book: Any) -> tuple:
    """All observable state, to prove a rejected update changed nothing."""
    return (
        book.state,
        book.last_update_id,
        book.ticker_update_id,
        book.top(),
        book.depth(1_000_000),
        book.is_crossed(),
        book.level_count(True),
        book.level_count(False),
    )


@pytest.fixture
def book(book_mod: ModuleType) -> Any:
    return book_mod.OrderBook("BTCUSDT", 2, 8)


@pytest.fixture
def synced(book_mod: ModuleType) -> Any:
    """A book right after a snapshot at id 100: bids 100.00/99.00, asks 101.00/102.00."""
    b = book_mod.OrderBook("BTCUSDT", 2, 8)
    b.apply_snapshot(100, [(10000, 5), (9900, 7)], [(10100, 3), (10200, 4)])
    return b


# -- the module surface ------------------------------------------------------------------------


def test_constants_are_the_same_ints_in_both_modules(book_mod: ModuleType) -> None:
    names = {"APPLIED": 0, "STALE": 1, "GAP": 2, "NOT_SYNCED": 3, "IGNORED": 4}
    names |= {"EMPTY": 0, "SYNCING": 1, "LIVE": 2, "RESYNC_NEEDED": 3}
    for name, value in names.items():
        got = getattr(book_mod, name)
        assert type(got) is int and got == value == getattr(_book_py, name), name


def test_compiled_book_is_built_unless_extensions_are_disabled() -> None:
    """The compiled environment must really test the compiled book (no silent fallback)."""
    if os.environ.get("BOTCORE_NO_EXTENSIONS", "") in ("", "0"):
        mod = importlib.import_module("botcore.core._book_c")
        assert mod.OrderBook.__module__ == "botcore.core._book_c"
        assert mod.__file__ is not None and not mod.__file__.endswith(".py")
    else:
        from botcore import core

        assert core.OrderBook is _book_py.OrderBook


def test_new_book_is_empty(book: Any, book_mod: ModuleType) -> None:
    assert (book.symbol, book.price_precision, book.qty_precision) == ("BTCUSDT", 2, 8)
    assert book.state == book_mod.EMPTY
    assert book.last_update_id == -1 and book.ticker_update_id == -1
    assert book.top() == (0, 0, 0, 0)
    assert (book.best_bid_price, book.best_bid_qty, book.best_ask_price, book.best_ask_qty) == (0, 0, 0, 0)
    assert book.depth(5) == ([], [])
    assert not book.is_crossed()
    assert book.level_count(True) == book.level_count(False) == 0
    assert "EMPTY" in repr(book) and "BTCUSDT" in repr(book)


@pytest.mark.parametrize(
    "attr", ["symbol", "price_precision", "qty_precision", "last_update_id", "state", "ticker_update_id"]
)
def test_attributes_are_read_only(book: Any, attr: str) -> None:
    with pytest.raises(AttributeError):
        setattr(book, attr, getattr(book, attr))


@pytest.mark.parametrize(
    ("args", "exc"),
    [
        (("", 2), ValueError),
        ((b"BTCUSDT", 2), ValueError),
        (("BTCUSDT", -1), ValueError),
        (("BTCUSDT", 19), ValueError),
        (("BTCUSDT", 2, 19), ValueError),
        (("BTCUSDT", 2.0), TypeError),
    ],
)
def test_constructor_rejects_bad_arguments(book_mod: ModuleType, args: tuple, exc: type) -> None:
    with pytest.raises(exc):
        book_mod.OrderBook(*args)


# -- snapshot and sync rules -------------------------------------------------------------------


def test_diff_before_snapshot_is_not_synced(book: Any, book_mod: ModuleType) -> None:
    assert book.apply_diff(1, 2, [(10000, 1)], []) == book_mod.NOT_SYNCED
    assert book.state == book_mod.EMPTY and book.depth(5) == ([], [])


def test_snapshot_sorts_levels_best_first_and_is_syncing(book: Any, book_mod: ModuleType) -> None:
    book.apply_snapshot(7, [(9900, 7), (10000, 5), (9800, 1)], [(10200, 4), (10100, 3)])
    assert book.state == book_mod.SYNCING and book.last_update_id == 7
    assert book.bids(10) == [(10000, 5), (9900, 7), (9800, 1)]
    assert book.asks(10) == [(10100, 3), (10200, 4)]
    assert book.top() == (10000, 5, 10100, 3)


def test_snapshot_repeated_price_keeps_last_and_zero_qty_leaves_no_level(book: Any) -> None:
    book.apply_snapshot(7, [(10000, 5), (9900, 2), (10000, 6), (9800, 0)], [(10100, 3), (10100, 0)])
    assert book.bids(10) == [(10000, 6), (9900, 2)]
    assert book.asks(10) == []


def test_snapshot_replaces_everything(synced: Any, book_mod: ModuleType) -> None:
    assert synced.apply_diff(101, 102, [(9950, 1)], []) == book_mod.APPLIED
    assert synced.apply_book_ticker(103, 10000, 1, 10100, 1) == book_mod.APPLIED
    synced.apply_snapshot(50, [(9000, 1)], [(9100, 2)])
    assert (synced.state, synced.last_update_id, synced.ticker_update_id) == (book_mod.SYNCING, 50, -1)
    assert synced.depth(10) == ([(9000, 1)], [(9100, 2)])
    assert synced.top() == (9000, 1, 9100, 2)


def test_big_unsorted_snapshot_equals_sorted_one(book_mod: ModuleType) -> None:
    bids = [(100_000 - 3 * i, i + 1) for i in range(2000)]
    asks = [(100_001 + 7 * i, i + 1) for i in range(2000)]
    ordered = book_mod.OrderBook("X", 2)
    ordered.apply_snapshot(1, bids, asks)
    shuffled = book_mod.OrderBook("X", 2)
    shuffled.apply_snapshot(1, bids[1::2] + bids[::2], asks[::-1])
    assert shuffled.depth(5000) == ordered.depth(5000) == (bids, asks)


@pytest.mark.parametrize("final_id", [99, 100])
def test_diff_ending_at_or_before_snapshot_is_stale(synced: Any, book_mod: ModuleType, final_id: int) -> None:
    before = everything(synced)
    assert synced.apply_diff(90, final_id, [(10000, 0)], [(10100, 9)]) == book_mod.STALE
    assert everything(synced) == before


@pytest.mark.parametrize("first_id", [95, 101])
def test_first_diff_straddling_snapshot_goes_live(synced: Any, book_mod: ModuleType, first_id: int) -> None:
    assert synced.apply_diff(first_id, 105, [(10000, 8)], [(10100, 0)]) == book_mod.APPLIED
    assert synced.state == book_mod.LIVE and synced.last_update_id == 105
    assert synced.top() == (10000, 8, 10200, 4)


def test_gap_after_snapshot_needs_resync_until_new_snapshot(synced: Any, book_mod: ModuleType) -> None:
    before = everything(synced)[3:]
    assert synced.apply_diff(102, 103, [(10000, 1)], []) == book_mod.GAP
    assert synced.state == book_mod.RESYNC_NEEDED and synced.last_update_id == 100
    assert everything(synced)[3:] == before  # levels untouched
    for first, final in [(101, 101), (50, 60), (101, 200)]:  # contiguous, stale, straddling: all GAP now
        assert synced.apply_diff(first, final, [(10000, 1)], []) == book_mod.GAP
    assert synced.state == book_mod.RESYNC_NEEDED
    synced.apply_snapshot(120, [(10000, 2)], [(10100, 2)])
    assert synced.state == book_mod.SYNCING
    assert synced.apply_diff(121, 121, [], []) == book_mod.APPLIED and synced.state == book_mod.LIVE


def test_clear_goes_back_to_empty(synced: Any, book_mod: ModuleType) -> None:
    synced.apply_diff(102, 103, [], [])
    synced.clear()
    assert (synced.state, synced.last_update_id, synced.ticker_update_id) == (book_mod.EMPTY, -1, -1)
    assert synced.depth(5) == ([], []) and synced.top() == (0, 0, 0, 0)
    assert synced.apply_diff(1, 2, [], []) == book_mod.NOT_SYNCED


def test_live_continuity_overlap_and_gap(synced: Any, book_mod: ModuleType) -> None:
    assert synced.apply_diff(101, 110, [], []) == book_mod.APPLIED
    assert synced.apply_diff(111, 111, [(9950, 2)], []) == book_mod.APPLIED  # U == last + 1
    assert synced.apply_diff(105, 115, [(9960, 3)], []) == book_mod.APPLIED  # overlapping: U <= last < u
    assert synced.last_update_id == 115
    assert synced.apply_diff(110, 115, [(9970, 3)], []) == book_mod.STALE
    assert synced.qty_at(True, 9970) == 0
    assert synced.apply_diff(117, 120, [(9970, 3)], []) == book_mod.GAP
    assert synced.state == book_mod.RESYNC_NEEDED and synced.qty_at(True, 9970) == 0


def test_quantities_are_absolute_and_zero_deletes(synced: Any, book_mod: ModuleType) -> None:
    assert synced.apply_diff(101, 101, [(10000, 2), (9900, 0), (9000, 0)], [(10150, 1)]) == book_mod.APPLIED
    assert synced.bids(5) == [(10000, 2)]  # overwritten (not added), 99.00 deleted, 90.00 never existed
    assert synced.asks(5) == [(10100, 3), (10150, 1), (10200, 4)]
    assert synced.apply_diff(102, 102, [(10000, 0)], [(10100, 0), (10050, 9)]) == book_mod.APPLIED
    assert synced.top() == (0, 0, 10050, 9)
    assert synced.level_count(True) == 0 and synced.level_count(False) == 3


def test_new_best_levels_move_the_top(synced: Any) -> None:
    synced.apply_diff(101, 101, [(10050, 1)], [(10060, 2)])
    assert synced.top() == (10050, 1, 10060, 2)
    synced.apply_diff(102, 102, [(10050, 0)], [(10060, 0)])
    assert synced.top() == (10000, 5, 10100, 3)


def test_depth_is_best_first_and_bounded(synced: Any) -> None:
    synced.apply_diff(101, 101, [(9950, 1), (9000, 2)], [(10150, 1), (11000, 2)])
    assert synced.bids(3) == [(10000, 5), (9950, 1), (9900, 7)]
    assert synced.asks(3) == [(10100, 3), (10150, 1), (10200, 4)]
    assert synced.depth(2) == ([(10000, 5), (9950, 1)], [(10100, 3), (10150, 1)])
    assert synced.bids(100) == [(10000, 5), (9950, 1), (9900, 7), (9000, 2)]
    assert synced.depth(0) == ([], [])
    with pytest.raises(ValueError):
        synced.bids(-1)


def test_qty_at_and_level_count(synced: Any) -> None:
    assert synced.qty_at(True, 9900) == 7 and synced.qty_at(False, 10200) == 4
    assert synced.qty_at(True, 10100) == 0 and synced.qty_at(False, 10000) == 0
    assert synced.qty_at(True, 1) == 0 and synced.qty_at(False, 0) == 0 and synced.qty_at(False, -5) == 0
    assert synced.level_count(True) == 2 and synced.level_count(False) == 2


# -- bookTicker overlay ------------------------------------------------------------------------


def test_ticker_before_snapshot_is_not_synced(book: Any, book_mod: ModuleType) -> None:
    assert book.apply_book_ticker(5, 1, 1, 2, 1) == book_mod.NOT_SYNCED
    assert book.ticker_update_id == -1 and book.top() == (0, 0, 0, 0)


def test_ticker_overlay_is_fused_into_top_but_never_touches_the_ladder(
    synced: Any, book_mod: ModuleType
) -> None:
    ladder = synced.depth(10)
    assert synced.apply_book_ticker(100, 10010, 1, 10090, 1) == book_mod.STALE  # not newer than the ladder
    assert synced.apply_book_ticker(105, 10010, 6, 10090, 2) == book_mod.APPLIED
    assert synced.ticker_update_id == 105
    assert synced.top() == (10010, 6, 10090, 2)
    assert (synced.best_bid_price, synced.best_bid_qty, synced.best_ask_price, synced.best_ask_qty) == (
        10010,
        6,
        10090,
        2,
    )
    assert synced.depth(10) == ladder
    assert synced.apply_book_ticker(105, 1, 1, 2, 2) == book_mod.STALE
    assert synced.apply_book_ticker(104, 1, 1, 2, 2) == book_mod.STALE
    # a diff older than the ticker updates the ladder; the overlay stays the top
    assert synced.apply_diff(101, 104, [(10005, 1)], []) == book_mod.APPLIED
    assert synced.top() == (10010, 6, 10090, 2) and synced.bids(1) == [(10005, 1)]
    # a diff reaching the ticker's id makes the ladder authoritative again
    assert synced.apply_diff(105, 105, [], [(10095, 1)]) == book_mod.APPLIED
    assert synced.top() == (10005, 1, 10095, 1)
    assert synced.best_ask_price == 10095
    assert synced.apply_book_ticker(105, 1, 1, 2, 2) == book_mod.STALE  # <= last_update_id now
    assert synced.apply_book_ticker(106, 10006, 1, 10094, 1) == book_mod.APPLIED
    assert synced.top() == (10006, 1, 10094, 1)


def test_ticker_is_accepted_while_resync_is_needed(synced: Any, book_mod: ModuleType) -> None:
    synced.apply_diff(150, 160, [], [])
    assert synced.state == book_mod.RESYNC_NEEDED
    assert synced.apply_book_ticker(170, 10001, 1, 10002, 1) == book_mod.APPLIED
    assert synced.top() == (10001, 1, 10002, 1) and synced.state == book_mod.RESYNC_NEEDED


def test_crossed_detection_on_ladder_and_overlay(synced: Any) -> None:
    assert not synced.is_crossed()
    synced.apply_diff(101, 101, [(10100, 1)], [])  # bid == best ask
    assert synced.is_crossed()
    synced.apply_diff(102, 102, [(10100, 0)], [(10000, 1)])  # ask == best bid
    assert synced.is_crossed()
    synced.apply_diff(103, 103, [], [(10000, 0)])
    assert not synced.is_crossed()
    synced.apply_book_ticker(104, 10200, 1, 10150, 1)
    assert synced.is_crossed()
    synced.apply_book_ticker(105, 10200, 1, 10150, 0)  # an empty side cannot cross
    assert not synced.is_crossed()


def test_one_sided_ladder_is_not_crossed(book: Any) -> None:
    book.apply_snapshot(1, [(10000, 1)], [])
    assert not book.is_crossed() and book.top() == (10000, 1, 0, 0)


# -- bad input through the Python API ----------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "exc"),
    [
        (lambda b: b.apply_diff(102, 101, [], []), ValueError),
        (lambda b: b.apply_diff(-1, 101, [], []), ValueError),
        (lambda b: b.apply_diff(101, 101, [(0, 1)], []), ValueError),
        (lambda b: b.apply_diff(101, 101, [(10000, 1)], [(-5, 1)]), ValueError),
        (lambda b: b.apply_diff(101, 101, [(10000, 1), (10001, -1)], []), ValueError),
        (lambda b: b.apply_diff(101, 101, [(10000, 1, 2)], []), ValueError),
        (lambda b: b.apply_diff(101, 101, [(10000.5, 1)], []), TypeError),
        (lambda b: b.apply_diff(101, 101, [("10000", 1)], []), TypeError),
        (lambda b: b.apply_diff(101, 101, [(2**63, 1)], []), OverflowError),
        (lambda b: b.apply_diff(101, 2**63, [], []), OverflowError),
        (lambda b: b.apply_snapshot(-1, [], []), ValueError),
        (lambda b: b.apply_snapshot(1, [(1, 1)], [(0, 1)]), ValueError),
        (lambda b: b.apply_book_ticker(-1, 1, 1, 2, 1), ValueError),
        (lambda b: b.apply_book_ticker(200, 1, -1, 2, 1), ValueError),
        (lambda b: b.apply_book_ticker(200, 1, 1, 2.5, 1), TypeError),
        (lambda b: b.qty_at(True, 10000.0), TypeError),
        (lambda b: b.bids(1.0), TypeError),
        (lambda b: b.apply_json(bytearray(b"{}")), TypeError),
        (lambda b: b.apply_json(None), TypeError),
    ],
)
def test_bad_arguments_raise_and_leave_the_book_unchanged(synced: Any, call: Any, exc: type) -> None:
    before = everything(synced)
    with pytest.raises(exc):
        call(synced)
    assert everything(synced) == before


# -- JSON frames -------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", ["btcusdt@depth@100ms", None])
def test_apply_json_depth_update_bare_or_in_envelope(
    synced: Any, book_mod: ModuleType, stream: str | None
) -> None:
    raw = frame(
        depth(101, 103, [["100.00000000", "0.00000000"], ["99.50", "1.5"]], [["101.01000000", "0.00020000"]]),
        stream,
    )
    assert synced.apply_json(raw) == book_mod.APPLIED
    assert synced.last_update_id == 103 and synced.state == book_mod.LIVE
    assert synced.bids(5) == [(9950, 150_000_000), (9900, 7)]
    assert synced.asks(2) == [(10100, 3), (10101, 20_000)]
    assert synced.apply_json(raw) == book_mod.STALE


@pytest.mark.parametrize("stream", ["btcusdt@bookTicker", None])
def test_apply_json_book_ticker_bare_or_in_envelope(
    synced: Any, book_mod: ModuleType, stream: str | None
) -> None:
    raw = frame(ticker(104, "100.01000000", "3.78826000", "100.02", "1.54698"), stream)
    assert synced.apply_json(raw) == book_mod.APPLIED
    assert synced.ticker_update_id == 104
    assert synced.top() == (10001, 378_826_000, 10002, 154_698_000)
    assert synced.bids(1) == [(10000, 5)]
    assert synced.apply_json(raw) == book_mod.STALE


def test_apply_json_book_ticker_with_event_type_or_null_event(synced: Any, book_mod: ModuleType) -> None:
    futures_style = {
        "e": "bookTicker",
        "u": 104,
        "s": "BTCUSDT",
        "b": "100.01",
        "B": "1",
        "a": "100.02",
        "A": "2",
        "T": 1,
        "E": 2,
    }
    assert synced.apply_json(frame(futures_style, None)) == book_mod.APPLIED
    null_event = dict(futures_style, e=None, u=105, b="100.03")
    assert synced.apply_json(frame(null_event, None)) == book_mod.APPLIED
    assert synced.top() == (10003, 100_000_000, 10002, 200_000_000) and synced.ticker_update_id == 105


def test_apply_json_accepts_str_and_pretty_printed_json(synced: Any, book_mod: ModuleType) -> None:
    payload = depth(101, 101, [["99.99", "1"]], [])
    assert synced.apply_json(json.dumps({"stream": "x", "data": payload}, indent=2)) == book_mod.APPLIED
    assert synced.qty_at(True, 9999) == 100_000_000
    assert (
        synced.apply_json(
            ' {"data": ' + json.dumps(ticker(102, "99.99", "1", "101", "1")) + ', "stream": "s"}\n'
        )
        == book_mod.APPLIED
    )
    assert synced.ticker_update_id == 102


def test_apply_json_key_order_and_unknown_fields_do_not_matter(synced: Any, book_mod: ModuleType) -> None:
    raw = b'{"data":{"a":[],"x":{"y":[1,2.5e-3,true,false,null,{}]},"b":[["99.99","2"]],"u":101,"U":101,"e":"depthUpdate"},"stream":"s"}'
    assert synced.apply_json(raw) == book_mod.APPLIED
    assert synced.qty_at(True, 9999) == 200_000_000


def test_apply_json_escaped_and_unicode_text_is_decoded_like_json(synced: Any, book_mod: ModuleType) -> None:
    # the compiled scanner hands escapes and non-ASCII to the twin's decoder: same answer
    raw = '{"stream":"\\u00e9","data":{"\\u0065":"depth\\u0055pdate","U":101,"u":101,"b":[["99.99","2"]],"a":[],"note":"é"}}'
    assert synced.apply_json(raw) == book_mod.APPLIED
    assert synced.apply_json(raw.replace("101", "102").encode()) == book_mod.APPLIED
    assert synced.qty_at(True, 9999) == 200_000_000 and synced.last_update_id == 102


@pytest.mark.parametrize(
    "raw",
    [
        frame(
            {
                "e": "trade",
                "E": 1,
                "s": "BTCUSDT",
                "t": 1,
                "p": "1.00",
                "q": "1.0",
                "T": 1,
                "m": True,
                "M": True,
            },
            "btcusdt@trade",
        ),
        frame(
            {
                "e": "aggTrade",
                "E": 1,
                "s": "BTCUSDT",
                "a": 5,
                "p": "1.00",
                "q": "1",
                "f": 1,
                "l": 2,
                "T": 1,
                "m": False,
                "M": True,
            },
            "btcusdt@aggTrade",
        ),
        frame({"e": "trade", "E": 1, "s": "BTCUSDT", "t": 1, "b": 88, "a": 50, "p": "1.00", "q": "1"}, None),
        frame(
            {"e": "kline", "E": 1, "s": "BTCUSDT", "k": {"t": 1, "s": "BTCUSDT", "B": "0", "u": 7}},
            "btcusdt@kline_1m",
        ),
        frame({"e": "serverShutdown", "E": 1770123456789}, "!serverShutdown"),
        frame(
            {"lastUpdateId": 160, "bids": [["0.0024", "10"]], "asks": [["0.0026", "100"]]}, "btcusdt@depth5"
        ),
        b'{"result":null,"id":1}',
        b"[1, 2, 3]",
        b"42",
        frame(depth(101, 101, [["99.99", "1"]], [], symbol="ETHUSDT")),
        frame(ticker(101, "1.00", "1", "2.00", "1", symbol="ETHUSDT"), "ethusdt@bookTicker"),
        frame({"e": "depthUpdate", "s": "ETHUSDT", "U": 5, "u": 1, "b": "junk"}),
        frame({"stream": "s", "data": 5}, None),
    ],
)
def test_apply_json_ignores_frames_not_for_this_book(synced: Any, book_mod: ModuleType, raw: bytes) -> None:
    before = everything(synced)
    assert synced.apply_json(raw) == book_mod.IGNORED
    assert everything(synced) == before


MALFORMED = [
    b"",
    b"   ",
    b"{",
    b'{"stream":"s","data":{"e":"depthUpdate","U":101,"u":101,"b":[["99.99","1"]],"a":[]}',
    b'{"stream":"s","data":{"e":"depthUpdate","U":101,"u":101,"b":[["99.99","1"]],"a":[]}}}',
    b'{"stream":"s","data":{"e":"depthUpdate","U":101,"u":101,"b":[["99.99","1"]],"a":[]}} x',
    b'{"e":"depthUpdate","U":101,"u":101,"b":[["99.99","1"],],"a":[]}',
    b'{"e":"depthUpdate","U":101,"u":101,"b":[["99.99" "1"]],"a":[]}',
    b'{"e":"depthUpdate","U":101,"u":101 "b":[],"a":[]}',
    b'{"e":"depthUpdate","U":0101,"u":101,"b":[],"a":[]}',
    b'{"e":"depthUpdate","U":101,"u":101,"b":[],"a":[],"x":NaN}',
    b'{"e":"depthUpdate","U":101,"u":101,"b":[],"a":[],"x":tru}',
    b'{"e":"depthUpdate","U":101,"u":101,"b":[],"a":[],"x":"\x01"}',
    b'{"e":"depthUpdate","U":101,"u":101,"b":[],"a":[],"x":"\\q"}',
    b'{"e":"depthUpdate","U":101,"u":101,"b":[],"a":[],"x":"\xff"}',
    b'{"e":"depthUpdate","U":101,"u":101,"b":[],"a":[],"x":1.}',
    b'{"e":"depthUpdate","U":101,"u":101,"b":[],"a":[]}\x00',
    b'{"e":"depthUpdate","U":101,"u":101,"b":[],"a":[]' + b"," * 3 + b"}",
    b'{"x":' + b"[" * 5000 + b"]" * 5000 + b',"e":"depthUpdate","U":101,"u":101,"b":[],"a":[]}',
    # well-formed JSON, bad depthUpdate
    b'{"e":"depthUpdate","u":101,"b":[],"a":[]}',
    b'{"e":"depthUpdate","U":101,"b":[],"a":[]}',
    b'{"e":"depthUpdate","U":101,"u":101,"a":[]}',
    b'{"e":"depthUpdate","U":101,"u":101,"b":[]}',
    b'{"e":"depthUpdate","U":101,"u":101.0,"b":[],"a":[]}',
    b'{"e":"depthUpdate","U":-1,"u":101,"b":[],"a":[]}',
    b'{"e":"depthUpdate","U":true,"u":101,"b":[],"a":[]}',
    b'{"e":"depthUpdate","U":"101","u":101,"b":[],"a":[]}',
    b'{"e":"depthUpdate","U":101,"u":9223372036854775808,"b":[],"a":[]}',
    b'{"e":"depthUpdate","U":102,"u":101,"b":[],"a":[]}',
    b'{"e":"depthUpdate","U":101,"u":101,"b":{},"a":[]}',
    b'{"e":"depthUpdate","U":101,"u":101,"b":[["99.99"]],"a":[]}',
    b'{"e":"depthUpdate","U":101,"u":101,"b":[["99.99","1","2"]],"a":[]}',
    b'{"e":"depthUpdate","U":101,"u":101,"b":[[99.99,"1"]],"a":[]}',
    b'{"e":"depthUpdate","U":101,"u":101,"b":[["99.99",1]],"a":[]}',
    b'{"e":"depthUpdate","U":101,"u":101,"b":["99.99","1"],"a":[]}',
    b'{"e":"depthUpdate","U":101,"u":101,"b":[],"a":[["0.00","1"]]}',
    # numbers that are not plain decimals at this precision
    b'{"e":"depthUpdate","U":101,"u":101,"b":[["99.999","1"]],"a":[]}',
    b'{"e":"depthUpdate","U":101,"u":101,"b":[["99.99","0.000000001"]],"a":[]}',
    b'{"e":"depthUpdate","U":101,"u":101,"b":[["1e2","1"]],"a":[]}',
    b'{"e":"depthUpdate","U":101,"u":101,"b":[["9.9E1","1"]],"a":[]}',
    b'{"e":"depthUpdate","U":101,"u":101,"b":[["-99.99","1"]],"a":[]}',
    b'{"e":"depthUpdate","U":101,"u":101,"b":[["+99.99","1"]],"a":[]}',
    b'{"e":"depthUpdate","U":101,"u":101,"b":[[" 99.99","1"]],"a":[]}',
    b'{"e":"depthUpdate","U":101,"u":101,"b":[["99.","1"]],"a":[]}',
    b'{"e":"depthUpdate","U":101,"u":101,"b":[[".99","1"]],"a":[]}',
    b'{"e":"depthUpdate","U":101,"u":101,"b":[["","1"]],"a":[]}',
    b'{"e":"depthUpdate","U":101,"u":101,"b":[["1_000","1"]],"a":[]}',
    b'{"e":"depthUpdate","U":101,"u":101,"b":[["NaN","1"]],"a":[]}',
    b'{"e":"depthUpdate","U":101,"u":101,"b":[["99.99","92233720368.54775808"]],"a":[]}',
    b'{"e":"depthUpdate","U":101,"u":101,"b":[["99.99","99999999999999999999"]],"a":[]}',
    # bookTicker
    b'{"u":104,"s":"BTCUSDT","b":"100.01","B":"1","a":"100.02"}',
    b'{"u":104,"s":"BTCUSDT","b":"100.011","B":"1","a":"100.02","A":"1"}',
    b'{"u":104,"s":"BTCUSDT","b":100.01,"B":"1","a":"100.02","A":"1"}',
    b'{"u":null,"s":"BTCUSDT","b":"100.01","B":"1","a":"100.02","A":"1"}',
    b'{"e":"bookTicker","u":-4,"b":"100.01","B":"1","a":"100.02","A":"1"}',
    b'{"u":104,"b":"100.01","B":"1","a":"100.02","A":"1e-8"}',
]


@pytest.mark.parametrize("raw", MALFORMED)
def test_malformed_frames_raise_value_error_and_leave_the_book_unchanged(synced: Any, raw: bytes) -> None:
    synced.apply_book_ticker(101, 10001, 1, 10099, 1)
    before = everything(synced)
    with pytest.raises(ValueError):
        synced.apply_json(raw)
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        pass
    else:
        with pytest.raises(ValueError):
            synced.apply_json(text)
    assert everything(synced) == before


def test_malformed_frame_error_message_names_the_problem(synced: Any) -> None:
    with pytest.raises(ValueError, match="more than 2 decimals"):
        synced.apply_json(b'{"e":"depthUpdate","U":101,"u":101,"b":[["99.999","1"]],"a":[]}')
    with pytest.raises(ValueError, match="'U'"):
        synced.apply_json(b'{"e":"depthUpdate","u":101,"b":[],"a":[]}')


@pytest.mark.parametrize(
    ("text", "precision", "expected"),
    [
        ("61837.63000000", 2, 6183763),
        ("61837.63", 2, 6183763),
        ("61837.6", 2, 6183760),
        ("61837", 2, 6183700),
        ("0.00000001", 8, 1),
        ("0.00000000", 8, 0),
        ("0", 8, 0),
        ("000123.4500", 3, 123450),
        ("12", 0, 12),
        ("12.000", 0, 12),
        ("9223372036854775807", 0, INT64_MAX),
        ("92233720368.54775807", 8, INT64_MAX),
        ("0.000000000000000001", 18, 1),
    ],
)
def test_decimal_strings_parse_exactly(
    book_mod: ModuleType, text: str, precision: int, expected: int
) -> None:
    book = book_mod.OrderBook("BTCUSDT", precision, precision)
    book.apply_snapshot(1, [], [])
    raw = frame(ticker(2, text, text, text, text), None)
    assert book.apply_json(raw) == book_mod.APPLIED
    assert book.top() == (expected,) * 4


@pytest.mark.parametrize(
    ("text", "precision"),
    [("9223372036854775808", 0), ("92233720368.54775808", 8), ("1.5", 0), ("0.0000000000000000001", 18)],
)
def test_decimal_strings_out_of_range_or_precision_are_rejected(
    book_mod: ModuleType, text: str, precision: int
) -> None:
    book = book_mod.OrderBook("BTCUSDT", precision, precision)
    book.apply_snapshot(1, [], [])
    with pytest.raises(ValueError):
        book.apply_json(frame(ticker(2, text, "1", "1", "1"), None))
    assert book.ticker_update_id == -1


def test_apply_json_before_snapshot_is_not_synced_and_ignored_still_ignored(
    book: Any, book_mod: ModuleType
) -> None:
    assert book.apply_json(frame(depth(1, 2, [["1.00", "1"]], []))) == book_mod.NOT_SYNCED
    assert (
        book.apply_json(frame(ticker(3, "1.00", "1", "2.00", "1"), "btcusdt@bookTicker"))
        == book_mod.NOT_SYNCED
    )
    assert book.apply_json(b'{"result":null,"id":1}') == book_mod.IGNORED
    with pytest.raises(ValueError):  # malformed is malformed whatever the state
        book.apply_json(b'{"e":"depthUpdate","U":1,"u":2,"b":[["1.001","1"]],"a":[]}')
    assert book.state == book_mod.EMPTY


def test_symbol_comparison_uses_the_upper_case_symbol(book_mod: ModuleType) -> None:
    book = book_mod.OrderBook("btcusdt", 2)
    book.apply_snapshot(1, [], [])
    assert book.apply_json(frame(depth(2, 2, [["1.00", "1"]], []))) == book_mod.APPLIED
    no_symbol = depth(3, 3, [["1.00", "2"]], [])
    del no_symbol["s"]
    assert book.apply_json(frame(no_symbol)) == book_mod.APPLIED
    assert book.qty_at(True, 100) == 200_000_000


# -- snapshot JSON -----------------------------------------------------------------------------

SNAPSHOT = b'{"lastUpdateId":1027024,"bids":[["4.00000000","431.00000000"],["3.99","1"]],"asks":[["4.00000200","12.00000000"]]}'


def test_apply_snapshot_json(book_mod: ModuleType) -> None:
    book = book_mod.OrderBook("LTCBTC", 8)
    book.apply_snapshot_json(SNAPSHOT)
    assert book.state == book_mod.SYNCING and book.last_update_id == 1027024
    assert book.depth(5) == (
        [(400_000_000, 43_100_000_000), (399_000_000, 100_000_000)],
        [(400_000_200, 1_200_000_000)],
    )
    book.apply_snapshot_json(
        json.dumps({"asks": [], "x": [1, {"y": None}], "bids": [["5", "1"]], "lastUpdateId": 7}, indent=1)
    )
    assert book.last_update_id == 7 and book.depth(5) == ([(500_000_000, 100_000_000)], [])


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"[]",
        SNAPSHOT[:-1],
        SNAPSHOT + b"}",
        b'{"bids":[],"asks":[]}',
        b'{"lastUpdateId":1,"asks":[]}',
        b'{"lastUpdateId":1,"bids":[]}',
        b'{"lastUpdateId":-1,"bids":[],"asks":[]}',
        b'{"lastUpdateId":1.5,"bids":[],"asks":[]}',
        b'{"lastUpdateId":1,"bids":[["4.000000001","1"]],"asks":[]}',
        b'{"lastUpdateId":1,"bids":[["4","1"]],"asks":[["0","1"]]}',
        b'{"lastUpdateId":1,"bids":[["4","1"]],"asks":"x"}',
        b'{"lastUpdateId":1,"bids":[["4",1]],"asks":[]}',
    ],
)
def test_malformed_snapshot_json_raises_and_leaves_the_book_unchanged(
    book_mod: ModuleType, raw: bytes
) -> None:
    book = book_mod.OrderBook("LTCBTC", 8)
    book.apply_snapshot_json(SNAPSHOT)
    before = everything(book)
    with pytest.raises(ValueError):
        book.apply_snapshot_json(raw)
    assert everything(book) == before
