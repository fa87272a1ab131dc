"""Hypothesis parity: the compiled book and its pure twin give the same answers to everything.

Random sequences of snapshot/diff/ticker/clear operations (ids drawn relative to the book so
every sync branch is hit), JSON frames against the equivalent direct calls, and mutated JSON bytes
(the compiled scanner against the twin's json.loads-based decoder). Outcomes compared: return
code or exception type and message, then every observable piece of state.
"""

from __future__ import annotations

import importlib
import json
import os
from types import ModuleType
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

NO_EXTENSIONS = os.environ.get("BOTCORE_NO_EXTENSIONS", "") not in ("", "0")
MODULES: list[ModuleType] = [
    importlib.import_module(f"botcore.core._book_{name}")
    for name in (["py"] if NO_EXTENSIONS else ["py", "c"])
]
PRICE_PRECISION = 2
QTY_PRECISION = 3

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def everything(book: Any) -> tuple:
    return (
        book.state,
        book.last_update_id,
        book.ticker_update_id,
        book.top(),
        book.depth(1_000_000),
        book.is_crossed(),
        book.level_count(True),
        book.level_count(False),
        (book.best_bid_price, book.best_bid_qty, book.best_ask_price, book.best_ask_qty),
    )


def outcome(call: Any) -> tuple:
    try:
        return ("ok", call())
    except (ValueError, TypeError, OverflowError) as exc:
        return (type(exc).__name__, str(exc))


def new_books(n_per_module: int = 1) -> list[Any]:
    return [
        m.OrderBook("BTCUSDT", PRICE_PRECISION, QTY_PRECISION) for m in MODULES for _ in range(n_per_module)
    ]


# -- operation sequences -----------------------------------------------------------------------

prices = st.integers(-1, 25)  # a few invalid prices and quantities, mostly valid ones
qtys = st.integers(-1, 3)
levels = st.lists(st.tuples(prices, qtys), max_size=6)
valid_levels = st.lists(st.tuples(st.integers(1, 25), st.integers(0, 3)), max_size=6)
valid_diffs = st.tuples(st.just("diff"), st.integers(-3, 1), st.integers(0, 3), valid_levels, valid_levels)


def best_first(is_bid: bool, max_size: int = 15) -> st.SearchStrategy[list[tuple[int, int]]]:
    """Distinct prices in Binance's order (bids descending, asks ascending): the compiled book
    applies such a side in one pass, anything else level by level; both must agree."""
    qty = st.sampled_from([0, 0, 1, 2])  # many deletes: runs then shift down as well as up
    levels = st.lists(st.tuples(st.integers(1, 40), qty), max_size=max_size, unique_by=lambda lv: lv[0])
    return levels.map(lambda lv: sorted(lv, reverse=is_bid))


wire_diffs = st.tuples(
    st.just("diff"), st.integers(-1, 0), st.integers(0, 3), best_first(True), best_first(False)
)

ops = st.one_of(
    st.tuples(st.just("snapshot"), st.integers(-1, 30), levels, valid_levels),
    st.tuples(st.just("snapshot"), st.integers(0, 30), best_first(True, 30), best_first(False, 30)),
    valid_diffs,
    wire_diffs,
    wire_diffs,
    st.tuples(st.just("diff"), st.integers(-4, 2), st.integers(-1, 3), levels, levels),
    st.tuples(
        st.just("ticker"), st.integers(-2, 2), st.integers(0, 25), st.integers(0, 3), st.integers(0, 25), qtys
    ),
    st.tuples(
        st.just("ticker"), st.integers(-2, 2), st.integers(0, 25), st.integers(0, 3), st.integers(0, 25), qtys
    ),
    st.tuples(st.just("clear")),
)


def run(book: Any, op: tuple, last: int) -> tuple:
    kind = op[0]
    if kind == "snapshot":
        return outcome(lambda: book.apply_snapshot(op[1], op[2], op[3]))
    if kind == "diff":
        first = max(0, last + 1 + op[1])
        return outcome(lambda: book.apply_diff(first, first + op[2], op[3], op[4]))
    if kind == "ticker":
        return outcome(lambda: book.apply_book_ticker(max(0, last + op[1]), op[2], op[3], op[4], op[5]))
    return outcome(book.clear)


@SETTINGS
@given(st.booleans(), st.integers(0, 10), valid_levels, valid_levels, st.lists(ops, max_size=50))
def test_random_operation_sequences_agree(
    start_synced: bool, snapshot_id: int, bids: list, asks: list, sequence: list[tuple]
) -> None:
    books = new_books()
    for book in books:
        if start_synced:
            book.apply_snapshot(snapshot_id, bids, asks)
    for op in sequence:
        last = books[0].last_update_id
        results = [run(book, op, last) for book in books]
        states = [everything(book) for book in books]
        assert all(r == results[0] for r in results), (op, results)
        assert all(s == states[0] for s in states), (op, states)


# -- JSON against direct calls -----------------------------------------------------------------


def decimal_text(value: int, precision: int, extra_zeros: int, strip: bool) -> str:
    """``value`` units as Binance might print it: fixed decimals plus padding, or trimmed."""
    whole, frac = divmod(value, 10**precision)
    text = f"{whole}.{frac:0{precision}d}{'0' * extra_zeros}" if precision else f"{whole}"
    if strip and "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


@st.composite
def json_levels(draw: Any) -> tuple[list[tuple[int, int]], list[list[str]]]:
    pairs = draw(st.lists(st.tuples(st.integers(1, 10**9), st.integers(0, 10**12)), max_size=8))
    texts = [
        [
            decimal_text(p, PRICE_PRECISION, draw(st.integers(0, 6)), draw(st.booleans())),
            decimal_text(q, QTY_PRECISION, draw(st.integers(0, 6)), draw(st.booleans())),
        ]
        for p, q in pairs
    ]
    return pairs, texts


@st.composite
def json_frames(draw: Any) -> tuple[tuple, bytes]:
    """(the equivalent direct call, the frame bytes), in Binance's or a shuffled key order."""
    extra = draw(
        st.dictionaries(
            st.sampled_from(["E", "x", "T", "pu", "k"]),
            st.integers(0, 10**13) | st.text(max_size=3),
            max_size=2,
        )
    )
    if draw(st.booleans()):
        first = draw(st.integers(0, 40))
        final = first + draw(st.integers(0, 5))
        bids, bid_text = draw(json_levels())
        asks, ask_text = draw(json_levels())
        call: tuple = ("diff", first, final, bids, asks)
        payload: dict[str, Any] = {
            "e": "depthUpdate",
            "E": 1,
            "s": "BTCUSDT",
            "U": first,
            "u": final,
            "b": bid_text,
            "a": ask_text,
        }
        stream = "btcusdt@depth@100ms"
    else:
        u = draw(st.integers(0, 45))
        values = [draw(st.integers(0, 10**9)) for _ in range(4)]
        precisions = [PRICE_PRECISION, QTY_PRECISION] * 2
        texts = [
            decimal_text(v, p, draw(st.integers(0, 3)), draw(st.booleans()))
            for v, p in zip(values, precisions, strict=True)
        ]
        call = ("ticker", u, *values)
        payload = {"u": u, "s": "BTCUSDT", "b": texts[0], "B": texts[1], "a": texts[2], "A": texts[3]}
        stream = "btcusdt@bookTicker"
    payload |= extra
    if draw(st.booleans()):
        payload = dict(draw(st.permutations(list(payload.items()))))
    obj = {"stream": stream, "data": payload} if draw(st.booleans()) else payload
    indent = draw(st.sampled_from([None, None, 1]))
    text = json.dumps(obj, indent=indent, separators=None if indent else (",", ":"))
    return call, text.encode()


def direct(book: Any, call: tuple) -> tuple:
    if call[0] == "diff":
        return outcome(lambda: book.apply_diff(*call[1:]))
    return outcome(lambda: book.apply_book_ticker(*call[1:]))


@settings(SETTINGS, max_examples=150)
@given(st.integers(0, 10), valid_levels, valid_levels, st.lists(json_frames(), max_size=20))
def test_json_frames_match_direct_calls(
    snapshot_id: int, bids: list, asks: list, frames: list[tuple[tuple, bytes]]
) -> None:
    by_json = new_books()
    by_call = new_books()
    for book in by_json + by_call:
        book.apply_snapshot(snapshot_id, bids, asks)
    for call, raw in frames:
        results = [outcome(lambda b=book, r=raw: b.apply_json(r)) for book in by_json]
        results += [direct(book, call) for book in by_call]
        assert all(r == results[0] for r in results), (raw, results)
        states = [everything(book) for book in by_json + by_call]
        assert all(s == states[0] for s in states), (raw, states)


@settings(SETTINGS, max_examples=150)
@given(st.integers(0, 10**12), json_levels(), json_levels(), st.booleans())
def test_snapshot_json_matches_apply_snapshot(
    last_update_id: int, bids: tuple, asks: tuple, pretty: bool
) -> None:
    raw = json.dumps(
        {"lastUpdateId": last_update_id, "bids": bids[1], "asks": asks[1]}, indent=1 if pretty else None
    )
    by_json, by_call = new_books(), new_books()
    for book in by_json:
        book.apply_snapshot_json(raw.encode())
    for book in by_call:
        book.apply_snapshot(last_update_id, bids[0], asks[0])
    states = [everything(book) for book in by_json + by_call]
    assert all(s == states[0] for s in states)


# -- mutated bytes: the scanner must accept and reject exactly what the twin does --------------

mutations = st.lists(
    st.tuples(
        st.sampled_from(["replace", "insert", "delete"]),
        st.integers(0, 10**6),
        st.sampled_from(list(b'{}[]",:.-+0159eE aAbBuU\\\x00\xc3\xff')),
    ),
    min_size=1,
    max_size=3,
)


def mutate(raw: bytes, edits: list[tuple[str, int, int]]) -> bytes:
    data = bytearray(raw)
    for kind, pos, byte in edits:
        pos %= len(data) + 1
        if kind == "insert":
            data.insert(pos, byte)
        elif pos < len(data):
            if kind == "delete":
                del data[pos]
            else:
                data[pos] = byte
    return bytes(data)


@SETTINGS
@given(json_frames(), mutations, st.booleans())
def test_mutated_frames_get_the_same_verdict(frame: tuple[tuple, bytes], edits: list, as_text: bool) -> None:
    raw: bytes | str = mutate(frame[1], edits)
    if as_text:
        raw = raw.decode("utf-8", "surrogateescape")  # non-UTF-8 bytes become lone surrogates
    books = new_books()
    for book in books:
        book.apply_snapshot(5, [(100, 1)], [(200, 1)])
    results = [outcome(lambda b=book: b.apply_json(raw)) for book in books]
    assert all(r == results[0] for r in results), (raw, results)
    states = [everything(book) for book in books]
    assert all(s == states[0] for s in states), raw


@SETTINGS
@given(json_levels(), mutations)
def test_mutated_snapshots_get_the_same_verdict(levels: tuple, edits: list) -> None:
    raw = mutate(json.dumps({"lastUpdateId": 9, "bids": levels[1], "asks": levels[1]}).encode(), edits)
    books = new_books()
    results = [outcome(lambda b=book: b.apply_snapshot_json(raw)) for book in books]
    assert all(r == results[0] for r in results), (raw, results)
    states = [everything(book) for book in books]
    assert all(s == states[0] for s in states), raw
