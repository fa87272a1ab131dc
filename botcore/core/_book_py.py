"""L2 order book, pure-Python twin of ``_book_c`` (same API, same tests, same answers).

Prices are int64 ticks of ``10**-price_precision`` and quantities int64 units of
``10**-qty_precision``; nothing here is ever a binary float. Each side is a dict of levels plus a
sorted list of *ranks* (``price`` for bids, ``-price`` for asks), so on both sides the best level
is the last rank, exactly like the compiled ladder keeps its best level at the end of a C array.

Sync rules are Binance's (``BINANCE_PROTOCOL.md`` section 8): a diff before any snapshot is
NOT_SYNCED (the caller buffers it), ``u <= last_update_id`` is STALE, the first diff after a
snapshot must straddle ``last_update_id + 1``, later ones must continue it; anything else is a
GAP that sticks until the book is re-snapshotted. bookTicker frames never touch the ladder: they
are an overlay that the fused top-of-book reports while it is newer than the ladder.

``decode_frame`` and ``decode_snapshot`` are also the compiled module's slow path: its hand-written
scanner accepts only canonical Binance shapes and hands anything unusual (escapes, non-ASCII,
malformed input) to these functions, so both implementations accept and reject the same bytes
with the same messages.
"""

from __future__ import annotations

import json
import operator
from bisect import bisect_left, insort
from typing import Any

APPLIED = 0
"""The update changed the book (or the ticker overlay)."""
STALE = 1
"""Older than what the book already reflects: dropped, nothing changed."""
GAP = 2
"""Update ids skipped: the book is now RESYNC_NEEDED and must be re-snapshotted."""
NOT_SYNCED = 3
"""No snapshot yet: buffer the frame and replay it after ``apply_snapshot``."""
IGNORED = 4
"""Not a depth/bookTicker frame for this book (trade, kline, control message, other symbol)."""

EMPTY = 0
SYNCING = 1
LIVE = 2
RESYNC_NEEDED = 3

INT64_MAX = 2**63 - 1
_MAX_PRECISION = 18

Levels = list[tuple[int, int]]


def _i64(value: Any) -> int:
    """An int that fits int64 (TypeError/OverflowError like the compiled conversion)."""
    value = operator.index(value)
    if not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise OverflowError(f"{value} does not fit in int64")
    return value


def _levels(levels: Any) -> Levels:
    """Validate and copy (price, qty) pairs before anything is mutated."""
    out: Levels = []
    for level in levels:
        price, qty = level
        price, qty = _i64(price), _i64(qty)
        if price <= 0:
            raise ValueError(f"level price must be positive, got {price}")
        if qty < 0:
            raise ValueError(f"level quantity must not be negative, got {qty}")
        out.append((price, qty))
    return out


def _check_id(name: str, value: int) -> int:
    value = _i64(value)
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")
    return value


def parse_decimal(text: Any, precision: int, what: str) -> int:
    """``"123.45000000"`` -> int64 in units of ``10**-precision``; strict plain decimal only.

    Rejected (ValueError): signs, exponents, blanks, more nonzero decimals than ``precision``
    (Binance would never send them for a symbol whose precision we were told), int64 overflow.
    """
    if type(text) is not str:
        raise ValueError(f"{what}: expected a decimal string, got {type(text).__name__}")
    whole, dot, frac = text.partition(".")
    if not (whole.isascii() and whole.isdigit() and (not dot or (frac.isascii() and frac.isdigit()))):
        raise ValueError(f"{what}: {text!r} is not a plain decimal string")
    if len(frac) > precision:
        if frac[precision:].strip("0"):
            raise ValueError(f"{what}: {text!r} has more than {precision} decimals")
        frac = frac[:precision]
    value = int(whole + frac.ljust(precision, "0"))
    if value > INT64_MAX:
        raise ValueError(f"{what}: {text!r} overflows int64 at precision {precision}")
    return value


def _json_id(obj: dict[str, Any], key: str) -> int:
    if key not in obj:
        raise ValueError(f"missing {key!r}")
    value = obj[key]
    if type(value) is not int or not 0 <= value <= INT64_MAX:
        raise ValueError(f"{key!r} must be a non-negative int64, got {value!r}")
    return value


def _json_levels(obj: dict[str, Any], key: str, price_precision: int, qty_precision: int) -> Levels:
    if key not in obj:
        raise ValueError(f"missing {key!r}")
    raw = obj[key]
    if type(raw) is not list:
        raise ValueError(f"{key!r} must be a list of [price, qty] pairs")
    out: Levels = []
    for level in raw:
        if type(level) is not list or len(level) != 2:
            raise ValueError(f"{key!r}: level {level!r} is not a [price, qty] pair")
        out.append(
            (
                parse_decimal(level[0], price_precision, f"{key!r} price"),
                parse_decimal(level[1], qty_precision, f"{key!r} qty"),
            )
        )
    return out


def _json_decimal(obj: dict[str, Any], key: str, precision: int) -> int:
    if key not in obj:
        raise ValueError(f"missing {key!r}")
    return parse_decimal(obj[key], precision, repr(key))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


def _loads(raw: Any) -> Any:
    """Strict JSON: UTF-8 only, no NaN/Infinity; every failure is a ValueError."""
    if type(raw) is bytes:
        raw = raw.decode("utf-8")
    elif type(raw) is not str:
        raise TypeError(f"raw must be bytes or str, not {type(raw).__name__}")
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def decode_frame(raw: bytes | str, symbol: str, price_precision: int, qty_precision: int) -> tuple | None:
    """Decode one market-stream frame (bare or inside a combined-stream envelope).

    Returns ``("depth", U, u, bids, asks)`` for a depthUpdate, ``("ticker", u, bid_price,
    bid_qty, ask_price, ask_qty)`` for a bookTicker, None for anything that is not for this book
    (other event types, other symbols, control messages). Raises ValueError on malformed input.
    """
    obj = _loads(raw)
    if type(obj) is dict and "stream" in obj and "data" in obj:
        obj = obj["data"]
    if type(obj) is not dict:
        return None
    event = obj.get("e")
    if event == "depthUpdate":
        kind = "depth"
    elif (event is None or event == "bookTicker") and "u" in obj:
        kind = "ticker"
    else:
        return None
    sym = obj.get("s")
    if sym is not None and sym != symbol.upper():
        return None
    if kind == "depth":
        return (
            "depth",
            _json_id(obj, "U"),
            _json_id(obj, "u"),
            _json_levels(obj, "b", price_precision, qty_precision),
            _json_levels(obj, "a", price_precision, qty_precision),
        )
    return (
        "ticker",
        _json_id(obj, "u"),
        _json_decimal(obj, "b", price_precision),
        _json_decimal(obj, "B", qty_precision),
        _json_decimal(obj, "a", price_precision),
        _json_decimal(obj, "A", qty_precision),
    )


def decode_snapshot(raw: bytes | str, price_precision: int, qty_precision: int) -> tuple[int, Levels, Levels]:
    """Decode a ``GET /api/v3/depth`` body into ``(lastUpdateId, bids, asks)``; ValueError if malformed."""
    obj = _loads(raw)
    if type(obj) is not dict:
        raise ValueError("depth snapshot must be a JSON object")
    return (
        _json_id(obj, "lastUpdateId"),
        _json_levels(obj, "bids", price_precision, qty_precision),
        _json_levels(obj, "asks", price_precision, qty_precision),
    )


class _Ladder:
    """One side: ``qty`` by price plus ranks sorted ascending, best level last.

    The rank is ``sign * price`` (``sign`` = 1 for bids, -1 for asks) so both sides share one
    code path and the best level is always ``ranks[-1]``.
    """

    __slots__ = ("qty", "ranks", "sign")

    def __init__(self, sign: int) -> None:
        self.sign = sign
        self.qty: dict[int, int] = {}
        self.ranks: list[int] = []

    def set(self, price: int, qty: int) -> None:
        """Absolute quantity for a level; 0 deletes it."""
        if qty:
            if price not in self.qty:
                insort(self.ranks, self.sign * price)
            self.qty[price] = qty
        elif self.qty.pop(price, None) is not None:
            ranks = self.ranks
            del ranks[bisect_left(ranks, self.sign * price)]

    def best(self) -> tuple[int, int]:
        if not self.ranks:
            return 0, 0
        price = self.sign * self.ranks[-1]
        return price, self.qty[price]

    def top(self, n: int) -> Levels:
        if n < 0:
            raise ValueError(f"n must not be negative, got {n}")
        sign, qty = self.sign, self.qty
        return [(sign * r, qty[sign * r]) for r in self.ranks[: -n - 1 : -1]] if n else []


class OrderBook:
    """L2 book of one symbol, synced exactly by Binance's rules, with a bookTicker overlay.

    See the module docstring for the sync rules and return codes. ``top()`` and the ``best_*``
    properties are *fused*: they report the last accepted bookTicker while its id is newer than
    the ladder's, the ladder's best levels otherwise. ``bids(n)``/``asks(n)``/``depth(n)`` are
    always the depth ladder.
    """

    __slots__ = (
        "_asks",
        "_bids",
        "_price_precision",
        "_qty_precision",
        "_state",
        "_symbol",
        "_ticker",
        "_last_update_id",
        "_ticker_update_id",
    )

    def __init__(self, symbol: str, price_precision: int, qty_precision: int = 8) -> None:
        if type(symbol) is not str or not symbol:
            raise ValueError("symbol must be a non-empty str")
        for name, value in (("price_precision", price_precision), ("qty_precision", qty_precision)):
            if not 0 <= operator.index(value) <= _MAX_PRECISION:
                raise ValueError(f"{name} must be in 0..{_MAX_PRECISION}, got {value}")
        self._symbol = symbol
        self._price_precision = operator.index(price_precision)
        self._qty_precision = operator.index(qty_precision)
        self.clear()

    # -- read-only attributes -------------------------------------------------------------------
    @property
    def symbol(self) -> str:
        return self._symbol

    @property
    def price_precision(self) -> int:
        return self._price_precision

    @property
    def qty_precision(self) -> int:
        return self._qty_precision

    @property
    def last_update_id(self) -> int:
        """Id of the last applied snapshot/diff; -1 before any snapshot."""
        return self._last_update_id

    @property
    def ticker_update_id(self) -> int:
        """``u`` of the last accepted bookTicker; -1 if none since the last snapshot."""
        return self._ticker_update_id

    @property
    def state(self) -> int:
        return self._state

    # -- updates --------------------------------------------------------------------------------
    def clear(self) -> None:
        """Forget everything: no levels, no overlay, state EMPTY."""
        self._bids = _Ladder(1)
        self._asks = _Ladder(-1)
        self._ticker = (0, 0, 0, 0)
        self._last_update_id = -1
        self._ticker_update_id = -1
        self._state = EMPTY

    def apply_snapshot(self, last_update_id: int, bids: Levels, asks: Levels) -> None:
        """Replace the whole book (ladder and overlay); state becomes SYNCING.

        Levels are applied in order like a diff onto an empty book (a repeated price keeps its
        last quantity, quantity 0 leaves no level).
        """
        last_update_id = _check_id("last_update_id", last_update_id)
        new_bids, new_asks = _levels(bids), _levels(asks)
        self.clear()
        for price, qty in new_bids:
            self._bids.set(price, qty)
        for price, qty in new_asks:
            self._asks.set(price, qty)
        self._last_update_id = last_update_id
        self._state = SYNCING

    def apply_diff(self, first_id: int, final_id: int, bids: Levels, asks: Levels) -> int:
        """Apply a depthUpdate ``U``..``u``; returns APPLIED, STALE, GAP or NOT_SYNCED."""
        first_id = _check_id("first_id", first_id)
        final_id = _check_id("final_id", final_id)
        if first_id > final_id:
            raise ValueError(f"first_id {first_id} > final_id {final_id}")
        new_bids, new_asks = _levels(bids), _levels(asks)
        if self._state == EMPTY:
            return NOT_SYNCED
        if self._state == RESYNC_NEEDED:
            return GAP
        if final_id <= self._last_update_id:
            return STALE
        if first_id > self._last_update_id + 1:
            self._state = RESYNC_NEEDED
            return GAP
        for price, qty in new_bids:
            self._bids.set(price, qty)
        for price, qty in new_asks:
            self._asks.set(price, qty)
        self._last_update_id = final_id
        self._state = LIVE
        return APPLIED

    def apply_book_ticker(
        self, update_id: int, bid_price: int, bid_qty: int, ask_price: int, ask_qty: int
    ) -> int:
        """Store a bookTicker as the top-of-book overlay; APPLIED, STALE or NOT_SYNCED."""
        update_id = _check_id("update_id", update_id)
        values = (_i64(bid_price), _i64(bid_qty), _i64(ask_price), _i64(ask_qty))
        if min(values) < 0:
            raise ValueError(f"book ticker prices and quantities must not be negative, got {values}")
        if self._state == EMPTY:
            return NOT_SYNCED
        if update_id <= max(self._last_update_id, self._ticker_update_id):
            return STALE
        self._ticker = values
        self._ticker_update_id = update_id
        return APPLIED

    def apply_snapshot_json(self, raw: bytes | str) -> None:
        """Apply the body of ``GET /api/v3/depth``; ValueError (book unchanged) if malformed."""
        self.apply_snapshot(*decode_snapshot(raw, self._price_precision, self._qty_precision))

    def apply_json(self, raw: bytes | str) -> int:
        """Apply one raw market-stream frame; IGNORED for frames that are not depth/bookTicker.

        ValueError (book unchanged) for malformed JSON, numbers or ids.
        """
        frame = decode_frame(raw, self._symbol, self._price_precision, self._qty_precision)
        if frame is None:
            return IGNORED
        if frame[0] == "depth":
            return self.apply_diff(frame[1], frame[2], frame[3], frame[4])
        return self.apply_book_ticker(frame[1], frame[2], frame[3], frame[4], frame[5])

    # -- queries --------------------------------------------------------------------------------
    def top(self) -> tuple[int, int, int, int]:
        """Fused ``(bid_price, bid_qty, ask_price, ask_qty)``; 0s for an empty side."""
        if self._ticker_update_id > self._last_update_id:
            return self._ticker
        return self._bids.best() + self._asks.best()

    @property
    def best_bid_price(self) -> int:
        return self.top()[0]

    @property
    def best_bid_qty(self) -> int:
        return self.top()[1]

    @property
    def best_ask_price(self) -> int:
        return self.top()[2]

    @property
    def best_ask_qty(self) -> int:
        return self.top()[3]

    def is_crossed(self) -> bool:
        """Fused best bid >= fused best ask, both sides present: the book cannot be trusted."""
        bid_price, bid_qty, ask_price, ask_qty = self.top()
        return bid_qty > 0 and ask_qty > 0 and bid_price >= ask_price

    def bids(self, n: int) -> Levels:
        """Up to ``n`` ladder bids, best (highest) first."""
        return self._bids.top(operator.index(n))

    def asks(self, n: int) -> Levels:
        """Up to ``n`` ladder asks, best (lowest) first."""
        return self._asks.top(operator.index(n))

    def depth(self, n: int) -> tuple[Levels, Levels]:
        return self.bids(n), self.asks(n)

    def qty_at(self, is_bid: bool, price: int) -> int:
        """Ladder quantity at ``price`` (0 if no level)."""
        return (self._bids if is_bid else self._asks).qty.get(_i64(price), 0)

    def level_count(self, is_bid: bool) -> int:
        return len((self._bids if is_bid else self._asks).ranks)

    def __repr__(self) -> str:
        return (
            f"OrderBook({self._symbol!r}, state={_STATE_NAMES[self._state]}, "
            f"last_update_id={self._last_update_id}, bids={self.level_count(True)}, "
            f"asks={self.level_count(False)}, top={self.top()})"
        )


_STATE_NAMES = ("EMPTY", "SYNCING", "LIVE", "RESYNC_NEEDED")

__all__ = [
    "APPLIED",
    "EMPTY",
    "GAP",
    "IGNORED",
    "LIVE",
    "NOT_SYNCED",
    "RESYNC_NEEDED",
    "STALE",
    "SYNCING",
    "OrderBook",
    "decode_frame",
    "decode_snapshot",
    "parse_decimal",
]
