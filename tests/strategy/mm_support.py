"""Test support for the market maker: recorded tops, the real BTCUSDT instrument, a fake context
and a tiny engine stand-in that applies quotes to fake live orders the way the engine's diff does
(keep an order matching side/price/original qty, cancel the rest, place what is missing).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from importlib import resources
from pathlib import Path

from botcore.model import BookTop, Instrument, OrderStatus, Quote, Side
from botcore.replay import iter_recording, shipped_recording

N_TOPS = 3000
"""Recorded bookTicker tops used by the table tests (~40 s of BTCUSDT on 2024-08-08, with
mostly 1-tick spreads and a few dozen wide ones)."""


@cache
def btcusdt() -> Instrument:
    """BTCUSDT from the shipped exchangeInfo (tick 0.01, step 0.00001, min notional 5)."""
    path = Path(str(resources.files("botcore") / "data" / "exchangeinfo" / "exchangeInfo_2025-08-07.json"))
    info = json.loads(path.read_text())
    sym = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
    return Instrument.from_exchange_info(sym)


@cache
def recorded_tops() -> tuple[tuple[int, BookTop], ...]:
    """``(local_receive_ns, BookTop)`` for the first ``N_TOPS`` bookTicker frames of the recording."""
    inst = btcusdt()
    out: list[tuple[int, BookTop]] = []
    for ns, raw in iter_recording(shipped_recording()[:1]):
        if not raw.startswith(b'{"stream":"btcusdt@bookTicker"'):
            continue
        d = json.loads(raw)["data"]
        out.append(
            (
                ns,
                BookTop(
                    "BTCUSDT",
                    inst.price_to_ticks(d["b"]),
                    inst.qty_to_units(d["B"]),
                    inst.price_to_ticks(d["a"]),
                    inst.qty_to_units(d["A"]),
                    int(d["u"]),
                ),
            )
        )
        if len(out) >= N_TOPS:
            break
    return tuple(out)


def top(bid: int, ask: int, symbol: str = "BTCUSDT", qty: int = 100_000) -> BookTop:
    return BookTop(symbol, bid, qty, ask, qty, 1)


@dataclass(eq=False)  # identity equality: two orders with the same fields are still two orders
class FakeOrder:
    symbol: str
    strategy: str
    side: Side
    price: Decimal
    qty: Decimal
    cum_qty: Decimal = Decimal(0)
    status: OrderStatus = OrderStatus.NEW
    level: int = 0
    created_ns: int = 0

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.cum_qty


class FakePositions:
    def __init__(self, pos: dict[str, Decimal]) -> None:
        self._pos = pos

    def free(self, asset: str) -> Decimal:
        return Decimal(0)

    def locked(self, asset: str) -> Decimal:
        return Decimal(0)

    def position(self, symbol: str) -> Decimal:
        return self._pos.get(symbol, Decimal(0))


class FakeBook:
    def __init__(self, symbol: str, t: BookTop | None) -> None:
        self.symbol = symbol
        self._top = t

    def top(self) -> BookTop | None:
        return self._top

    def depth(self, n: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        return [], []


@dataclass
class FakeCtx:
    """A controllable ``StrategyContext``: clock, trust, positions, live orders are plain fields."""

    instruments: dict[str, Instrument]
    now: int = 0
    pos: dict[str, Decimal] = field(default_factory=dict)
    orders: list[FakeOrder] = field(default_factory=list)
    untrusted: set[str] = field(default_factory=set)
    tops: dict[str, BookTop] = field(default_factory=dict)

    def book(self, symbol: str) -> FakeBook:
        return FakeBook(symbol, self.tops.get(symbol))

    @property
    def positions(self) -> FakePositions:
        return FakePositions(self.pos)

    def live_orders(self, symbol: str, strategy: str) -> Sequence[FakeOrder]:
        return [o for o in self.orders if o.symbol == symbol and o.strategy == strategy]

    def now_ns(self) -> int:
        return self.now

    def is_trusted(self, symbol: str) -> bool:
        return symbol not in self.untrusted

    def market_age_ns(self, symbol: str) -> int:
        return 0

    def user_stream_age_ns(self) -> int:
        return 0

    def clock_skew_ms(self) -> int:
        return 0

    def has_gap(self, symbol: str) -> bool:
        return False


_KEEP = {OrderStatus.PENDING_NEW, OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED}


def apply_quotes(
    ctx: FakeCtx,
    strategy: str,
    symbol: str,
    quotes: Sequence[Quote],
    veto: Callable[[Quote], bool] | None = None,
) -> tuple[int, int]:
    """Engine stand-in: cancels are acknowledged at once; ``veto(q)`` True plays a risk denial
    (the quote is not placed). Returns ``(cancelled, placed)``."""
    mine = [o for o in ctx.orders if o.symbol == symbol and o.strategy == strategy]
    keep: list[FakeOrder] = []
    placed = 0
    for q in quotes:
        match = next(
            (
                o
                for o in mine
                if o not in keep
                and o.status in _KEEP
                and o.side is q.side
                and o.price == q.price
                and o.qty == q.qty
            ),
            None,
        )
        if match is not None:
            keep.append(match)
        elif veto is not None and veto(q):
            continue
        else:
            new = FakeOrder(symbol, strategy, q.side, q.price, q.qty, level=q.level, created_ns=ctx.now)
            ctx.orders.append(new)
            keep.append(new)
            placed += 1
    cancelled = [o for o in mine if o not in keep]
    for o in cancelled:
        ctx.orders.remove(o)
    return len(cancelled), placed
