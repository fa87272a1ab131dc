"""Test support for the risk checks: real instruments, a controllable context, order/fill builders."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from importlib import resources
from pathlib import Path

from botcore.model import BookTop, Fill, Instrument, OrderRequest, OrderStatus, OrderType, Side

S = 1_000_000_000
NS_PER_MS = 1_000_000
D = Decimal


BNBUSDT = Instrument("BNBUSDT", "BNB", "USDT", D("0.01"), D("0.001"), min_notional=D("5"))
"""Not in the shipped exchangeInfo: built by hand to value fees paid in BNB."""


@cache
def instrument(symbol: str) -> Instrument:
    if symbol == "BNBUSDT":
        return BNBUSDT
    path = Path(str(resources.files("botcore") / "data" / "exchangeinfo" / "exchangeInfo_2025-08-07.json"))
    info = json.loads(path.read_text())
    return Instrument.from_exchange_info(next(s for s in info["symbols"] if s["symbol"] == symbol))


def order(
    side: Side = Side.BUY,
    qty: str = "0.001",
    price: str | None = "60000.00",
    symbol: str = "BTCUSDT",
    strategy: str = "mm",
) -> OrderRequest:
    return OrderRequest(
        symbol,
        side,
        D(qty),
        D(price) if price is not None else None,
        OrderType.LIMIT_MAKER if price is not None else OrderType.MARKET,
        None,
        "cid-1",
        strategy,
    )


_trade_ids = iter(range(1, 10**9))


def fill(
    side: Side,
    qty: str,
    price: str,
    symbol: str = "BTCUSDT",
    fee: str = "0",
    fee_asset: str = "USDT",
    trade_id: int | None = None,
) -> Fill:
    tid = next(_trade_ids) if trade_id is None else trade_id
    return Fill(symbol, "cid-1", 7, tid, side, D(price), D(qty), D(fee), fee_asset, True, 0)


@dataclass(eq=False)
class LiveOrder:
    symbol: str
    strategy: str
    side: Side
    price: Decimal
    qty: Decimal
    cum_qty: Decimal = Decimal(0)
    status: OrderStatus = OrderStatus.NEW

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.cum_qty


class _Positions:
    def __init__(self, pos: dict[str, Decimal]) -> None:
        self._pos = pos

    def free(self, asset: str) -> Decimal:
        return D(0)

    def locked(self, asset: str) -> Decimal:
        return D(0)

    def position(self, symbol: str) -> Decimal:
        return self._pos.get(symbol, D(0))


class _Book:
    def __init__(self, symbol: str, t: BookTop | None) -> None:
        self.symbol = symbol
        self._t = t

    def top(self) -> BookTop | None:
        return self._t

    def depth(self, n: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        return [], []


@dataclass
class RiskCtx:
    """A controllable ``StrategyContext`` (the engine's freshness facts are plain fields)."""

    instruments: dict[str, Instrument] = field(
        default_factory=lambda: {s: instrument(s) for s in ("BTCUSDT", "ETHUSDT", "BNBUSDT")}
    )
    now: int = 0
    pos: dict[str, Decimal] = field(default_factory=dict)
    orders: list[LiveOrder] = field(default_factory=list)
    tops: dict[str, BookTop] = field(default_factory=dict)
    market_age: dict[str, int] = field(default_factory=dict)
    user_age: int = 0
    skew_ms: int = 0
    gaps: set[str] = field(default_factory=set)

    def set_mid(self, symbol: str, bid: str, ask: str) -> None:
        inst = self.instruments[symbol]
        self.tops[symbol] = BookTop(symbol, inst.price_to_ticks(bid), 1, inst.price_to_ticks(ask), 1, 1)

    def book(self, symbol: str) -> _Book:
        if symbol not in self.instruments:
            raise KeyError(symbol)
        return _Book(symbol, self.tops.get(symbol))

    @property
    def positions(self) -> _Positions:
        return _Positions(self.pos)

    def live_orders(self, symbol: str, strategy: str) -> Sequence[LiveOrder]:
        return [o for o in self.orders if o.symbol == symbol and o.strategy == strategy]

    def now_ns(self) -> int:
        return self.now

    def is_trusted(self, symbol: str) -> bool:
        return True

    def market_age_ns(self, symbol: str) -> int:
        return self.market_age.get(symbol, 0)

    def user_stream_age_ns(self) -> int:
        return self.user_age

    def clock_skew_ms(self) -> int:
        return self.skew_ms

    def has_gap(self, symbol: str) -> bool:
        return symbol in self.gaps


@dataclass
class CountingCtx(RiskCtx):
    """A context that also offers the account-wide ``live_order_count`` (every strategy)."""

    def live_order_count(self, symbol: str | None) -> int:
        return sum(1 for o in self.orders if symbol is None or o.symbol == symbol)
