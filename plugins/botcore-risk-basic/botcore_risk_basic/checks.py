"""The built-in risk checks: each one answers "may this order go out?" with a reason or None.

Checks decide; they do not log or count (the chain does, so shadow mode, counting and the log
line are the same for every check, built-in or third-party). Limits are inclusive: an order that
lands exactly on a limit passes, one unit over is denied. Orders that *reduce* exposure are never
denied by the position and inventory checks (a bot over its limit must be able to get back).

``DrawdownCheck`` and ``DailyLossCheck`` are ``StatefulRiskCheck``s: they follow equity through
``on_fill`` and tell the engine to cancel everything and pause through ``halted``.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import deque, namedtuple
from collections.abc import Callable, Mapping
from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow
from typing import Any, ClassVar

from botcore.contracts import StrategyContext
from botcore.model import Fill, OrderRequest, Side, plain

from botcore_risk_basic.params import (
    NS_PER_MS,
    NS_PER_S,
    CheckParams,
    DailyLossParams,
    DrawdownParams,
    MaxInventoryValueParams,
    MaxOpenOrdersParams,
    MaxOrderNotionalParams,
    MaxPositionParams,
    OrderRateParams,
    PriceBandParams,
    StaleDataParams,
    parse,
)
from botcore_risk_basic.pnl import EquityTracker

log = logging.getLogger("botcore.risk")

ZERO = Decimal(0)
BPS = Decimal(10_000)
_EXACT = Context(prec=60, traps=[Inexact, InvalidOperation, Overflow])
"""Arithmetic that raises instead of rounding (the price band's edges)."""
NS_PER_DAY = 86_400 * NS_PER_S
_BUY = Side.BUY  # enum member access is a descriptor call on Python 3.11: read it once


def _mid(ctx: StrategyContext, symbol: str) -> Decimal | None:
    """Mid of the engine's top of book, None when there is no two-sided book."""
    found = _mid2(ctx, symbol)
    return None if found is None else _mid_price(*found)


def _mid_price(inst: Any, mid2: int) -> Decimal:
    """The mid price of (instrument, bid + ask in ticks); the last one is kept, since every check
    asking during one decision meets the same top."""
    last_inst, last_mid2, last_mid = _last_mid[0]  # one read: another thread may replace it
    if last_inst is inst and last_mid2 == mid2:
        return last_mid
    mid = inst.ticks_to_price(mid2) / 2
    _last_mid[0] = (inst, mid2, mid)  # holds inst: its id cannot be reused meanwhile
    return mid


def _mid2(ctx: StrategyContext, symbol: str) -> tuple[Any, int] | None:
    """(instrument, bid + ask in price ticks) of the engine's top of book; None when there is no
    two-sided book. Both are cheap to compare: the checks key their per-top work on them."""
    inst = ctx.instruments.get(symbol)
    if inst is None:
        return None
    try:
        top = ctx.book(symbol).top()
    except LookupError:
        return None
    if top is None:
        return None
    bid, ask = top.bid_price, top.ask_price
    if bid <= 0 or ask <= 0:
        return None
    return inst, bid + ask


_last_mid: list[tuple[Any, int, Decimal]] = [(None, 0, ZERO)]
"""(instrument, mid2, mid) of the last ``_mid``: the orders of one requote are all checked against
the same top. Instrument is immutable, so the same object and mid2 give the same mid."""


def _open_qty(ctx: StrategyContext, order: OrderRequest) -> Decimal:
    """Remaining qty of this strategy's live orders on the order's symbol and side."""
    total = ZERO
    want = order.side
    for o in ctx.live_orders(order.symbol, order.strategy):
        side = o.side
        if side.__class__ is not Side:
            side = Side(str(side))
        if side is want:
            rem = getattr(o, "remaining", None)
            if rem is None:
                rem = Decimal(o.qty) - Decimal(getattr(o, "cum_qty", ZERO))
            elif rem.__class__ is not Decimal:
                rem = Decimal(rem)
            total += rem
    return total


def _position_before_after(
    ctx: StrategyContext, order: OrderRequest, include_open: bool
) -> tuple[Decimal, Decimal]:
    """Position (base units) before and after ``order`` fills, optionally counting the strategy's
    live orders on the same side as already filled (the worst case the exposure checks judge)."""
    pos = ctx.positions.position(order.symbol)
    if order.side is _BUY:  # adding or subtracting, not multiplying by a sign: no int -> Decimal
        if include_open:
            pos += _open_qty(ctx, order)
        return pos, pos + order.qty
    if include_open:
        pos -= _open_qty(ctx, order)
    return pos, pos - order.qty


@functools.cache
def _limits_type(model: type[CheckParams]) -> Callable[..., Any]:
    return namedtuple(f"{model.__name__}Limits", list(model.model_fields))  # type: ignore[misc]


def _limits_of(params: CheckParams) -> Any:
    """``params``' fields, in a named tuple of their own type (one per params model)."""
    fields = type(params).model_fields
    return _limits_type(type(params))(*(getattr(params, f) for f in fields))


def _ms(ns: int) -> str:
    return plain(Decimal(ns) / NS_PER_MS)


class BasicCheck:
    """Common shape: validated params, a name, a symbol filter, ``check`` -> reason | None.

    ``name`` (default: the type) and ``shadow`` are plain attributes the host sets from the
    ``risk.checks`` entry; a check never reads its own ``shadow`` to decide, only to keep its
    books right (``OrderRateCheck`` counts orders that go out despite its shadowed veto).
    """

    kind: ClassVar[str] = ""
    """The check's type in ``risk.checks`` and its default name (every built-in check sets it)."""
    params_model: ClassVar[type[CheckParams]] = CheckParams
    """The validated form of the ``params`` of the check's ``risk.checks`` entry."""
    rehearsable: ClassVar[bool] = True
    """``check`` changes nothing a later answer depends on (see ``contracts.RiskCheck``)."""
    per_decision: ClassVar[bool] = False
    """The answer never depends on the order: asked once per decision (``contracts.RiskCheck``)."""

    def __init__(self, params: CheckParams) -> None:
        self.params = params
        self.limits: Any = _limits_of(params)
        """``params``' fields as built, in a named tuple: what ``evaluate`` reads on every order
        (each attribute read on a pydantic model goes through its ``__getattr__`` hook)."""
        self.name: str = self.kind or type(self).__name__
        self.shadow: bool = False
        self._symbols = frozenset(params.symbols) if params.symbols else None
        if self._symbols is None and type(self).check is BasicCheck.check:
            # No symbol filter: ``check`` is ``evaluate`` (one call less per check and order).
            self.check = self.evaluate  # type: ignore[method-assign]

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> BasicCheck:
        """The registered factory: ``factory(params)``."""
        return cls(parse(cls.params_model, params, where=f"risk check {cls.kind!r}"))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, shadow={self.shadow})"

    def applies_to(self, symbol: str) -> bool:
        """The ``symbols`` filter: this check judges (and counts) orders on ``symbol``."""
        return self._symbols is None or symbol in self._symbols

    def check(self, order: OrderRequest, ctx: StrategyContext) -> str | None:
        if not self.applies_to(order.symbol):
            return None
        return self.evaluate(order, ctx)

    def evaluate(self, order: OrderRequest, ctx: StrategyContext) -> str | None:
        raise NotImplementedError


class MaxPositionCheck(BasicCheck):
    """|position after the order| (base units) <= max_position; optionally counting open orders."""

    kind = "max_position"
    params_model = MaxPositionParams

    def evaluate(self, order: OrderRequest, ctx: StrategyContext) -> str | None:
        p = self.limits
        pos, after = _position_before_after(ctx, order, p.include_open_orders)
        if abs(after) > p.max_position and abs(after) >= abs(pos):
            return (
                f"position {plain(after)} after {order.side} {plain(order.qty)} {order.symbol} "
                f"would exceed max_position {plain(p.max_position)}"
            )
        return None


class MaxInventoryValueCheck(BasicCheck):
    """|position after the order| * mid (quote asset) <= max_value."""

    kind = "max_inventory_value"
    params_model = MaxInventoryValueParams

    def evaluate(self, order: OrderRequest, ctx: StrategyContext) -> str | None:
        p = self.limits
        pos, after = _position_before_after(ctx, order, p.include_open_orders)
        if abs(after) < abs(pos) or after == 0:
            return None  # reduces exposure: always allowed
        mid = _mid(ctx, order.symbol)
        if mid is None:
            return f"no top of book for {order.symbol}: cannot value the inventory"
        value = abs(after) * mid
        if value > p.max_value:
            return (
                f"inventory value {plain(value)} ({plain(after)} {order.symbol} at mid {plain(mid)}) "
                f"would exceed max_value {plain(p.max_value)}"
            )
        return None


class MaxOrderNotionalCheck(BasicCheck):
    """price * qty <= max_notional (market orders valued at mid)."""

    kind = "max_order_notional"
    params_model = MaxOrderNotionalParams

    def evaluate(self, order: OrderRequest, ctx: StrategyContext) -> str | None:
        price = order.price if order.price is not None else _mid(ctx, order.symbol)
        if price is None:
            return f"market order on {order.symbol} with no top of book: cannot value it"
        notional = price * order.qty
        max_notional = self.limits.max_notional
        if notional > max_notional:
            return f"order notional {plain(notional)} exceeds max_notional {plain(max_notional)}"
        return None


class MaxOpenOrdersCheck(BasicCheck):
    """Live orders (after this one) per symbol and in total stay within the limits.

    Counts every live order of the account if the engine's context offers
    ``live_order_count(symbol | None)``; otherwise the sending strategy's own live orders. With no
    ``per_symbol`` given, the instrument's MAX_NUM_ORDERS filter is the per-symbol limit.
    """

    kind = "max_open_orders"
    params_model = MaxOpenOrdersParams

    def evaluate(self, order: OrderRequest, ctx: StrategyContext) -> str | None:
        p = self.limits
        per_symbol = p.per_symbol
        if per_symbol is None:
            inst = ctx.instruments.get(order.symbol)
            per_symbol = inst.max_num_orders if inst is not None and inst.max_num_orders > 0 else None
        if per_symbol is not None:
            n = _live_count(ctx, order.symbol, order.strategy)
            if n + 1 > per_symbol:
                return f"{n} open orders on {order.symbol}: one more exceeds per_symbol {per_symbol}"
        if p.total is not None:
            n = _live_count(ctx, None, order.strategy)
            if n + 1 > p.total:
                return f"{n} open orders in total: one more exceeds total {p.total}"
        return None


def _live_count(ctx: StrategyContext, symbol: str | None, strategy: str) -> int:
    counter = getattr(ctx, "live_order_count", None)
    if counter is not None:
        return int(counter(symbol))
    symbols = [symbol] if symbol is not None else list(ctx.instruments)
    return sum(len(ctx.live_orders(s, strategy)) for s in symbols)


class OrderRateCheck(BasicCheck):
    """At most ``per_second`` orders in any 1 s and ``per_10s`` in any 10 s (sliding windows).

    The 10 s window is also capped by ``exchange_orders_per_10s`` (the venue's ORDERS limit), so
    the bot never earns a -1015. ``check`` only reads the windows; the engine reports every order
    that leaves through ``order_sent``, so the windows hold exactly what went out: not orders a
    later link of the chain denied, and (in shadow mode) every order this check would have
    denied. An order sent exactly 1 s (10 s) ago has left the window.
    """

    kind = "order_rate"
    params_model = OrderRateParams

    def __init__(self, params: CheckParams) -> None:
        super().__init__(params)
        p: OrderRateParams = params  # type: ignore[assignment]
        self.per_second = p.per_second
        self.per_10s = min(p.per_10s or p.exchange_orders_per_10s, p.exchange_orders_per_10s)
        self._sent: deque[int] = deque()
        self._sent_1s: deque[int] = deque()  # the tail of ``_sent`` within the last second

    def evaluate(self, order: OrderRequest, ctx: StrategyContext) -> str | None:
        """O(1) amortised: each send time enters and leaves each window's deque once. Dropping
        expired times changes no answer, so ``check`` is rehearsable."""
        now = ctx.now_ns()
        sent = self._sent
        horizon = now - 10 * NS_PER_S
        while sent and sent[0] <= horizon:
            sent.popleft()
        if len(sent) + 1 > self.per_10s:
            return f"{len(sent)} orders in the last 10 s: one more exceeds {self.per_10s} per 10 s"
        per_second = self.per_second
        if per_second is not None:
            recent = self._sent_1s
            last_second = now - NS_PER_S
            while recent and recent[0] <= last_second:
                recent.popleft()
            if len(recent) + 1 > per_second:
                return f"{len(recent)} orders in the last 1 s: one more exceeds {per_second} per second"
        return None

    def order_sent(self, order: OrderRequest, ctx: StrategyContext) -> None:
        """The engine handed ``order`` to the gateway: it counts in both windows from now on."""
        if not self.applies_to(order.symbol):
            return
        now = ctx.now_ns()
        self._sent.append(now)
        if self.per_second is not None:
            self._sent_1s.append(now)

    def count(self, now_ns: int, window_ns: int) -> int:
        """Orders counted within ``window_ns`` before ``now_ns`` (for status displays and tests)."""
        return sum(1 for t in self._sent if t > now_ns - window_ns)


class PriceBandCheck(BasicCheck):
    """Fat-finger guard: |price - mid| <= max_bps of mid."""

    kind = "price_band"
    params_model = PriceBandParams

    def __init__(self, params: CheckParams) -> None:
        super().__init__(params)
        # (instrument, mid2, mid, lowest, highest) of the last top judged: the orders of one
        # requote all meet the same top, so the band is worked out once per top, not per order.
        self._band: tuple[Any, int, Decimal, Decimal | None, Decimal | None] = (None, 0, ZERO, None, None)

    def evaluate(self, order: OrderRequest, ctx: StrategyContext) -> str | None:
        price = order.price
        if price is None:
            return None if self.limits.allow_market else "market order: no price to check against the band"
        found = _mid2(ctx, order.symbol)
        if found is None:
            return f"no top of book for {order.symbol}: cannot check the price band"
        inst, mid2 = found
        band = self._band
        if band[0] is not inst or band[1] != mid2:
            band = self._band = self._band_around(inst, mid2)
        mid, lowest, highest = band[2], band[3], band[4]
        if lowest is not None and highest is not None:
            if lowest <= price <= highest:
                return None
        elif abs(price - mid) * BPS <= self.limits.max_bps * mid:  # the band's edges were not exact
            return None
        off = (price - mid) * BPS / mid
        return (
            f"price {plain(price)} is {plain(off.quantize(Decimal('0.01')))} bps from mid "
            f"{plain(mid)}, beyond max_bps {plain(self.limits.max_bps)}"
        )

    def _band_around(self, inst: Any, mid2: int) -> tuple[Any, int, Decimal, Decimal | None, Decimal | None]:
        """mid, and the lowest and highest prices within ``max_bps`` of it, computed exactly
        (``lowest <= price <= highest`` is then ``|price - mid| * 10000 <= max_bps * mid``); None
        edges if they cannot be exact (absurd magnitudes): then each order is judged by the formula."""
        mid = _mid_price(inst, mid2)
        try:
            half_width = _EXACT.multiply(self.limits.max_bps, mid).scaleb(-4, _EXACT)
            return inst, mid2, mid, _EXACT.subtract(mid, half_width), _EXACT.add(mid, half_width)
        except ArithmeticError:
            return inst, mid2, mid, None, None


class StaleDataCheck(BasicCheck):
    """Deny orders priced off data we cannot trust: old book, silent private stream, clock skew, gap."""

    kind = "stale_data"
    params_model = StaleDataParams
    per_decision = True  # symbol and the decision's instant only

    def evaluate(self, order: OrderRequest, ctx: StrategyContext) -> str | None:
        p = self.limits
        sym = order.symbol
        if p.check_gaps and ctx.has_gap(sym):
            return f"unresolved sequence gap on {sym} (book resyncing)"
        max_age = p.max_book_age
        if max_age is not None:
            age = ctx.market_age_ns(sym)
            if age > max_age:
                return f"stale book: last {sym} market data {_ms(age)} ms ago > max_book_age {_ms(max_age)} ms"
        max_silence = p.max_user_silence
        if max_silence is not None:
            age = ctx.user_stream_age_ns()
            if age > max_silence:
                return f"private stream silent for {_ms(age)} ms > max_user_silence {_ms(max_silence)} ms"
        max_skew = p.max_clock_skew_ms
        if max_skew is not None:
            skew = ctx.clock_skew_ms()
            if abs(skew) > max_skew:
                return f"clock skew {skew} ms beyond +-{max_skew} ms (max_clock_skew_ms)"
        return None


class _HaltingCheck(BasicCheck):
    """Shared halt bookkeeping: equity from fills, a halt reason, a manual ``resume``."""

    per_decision = True  # the halt: no order of a decision moves equity (fills arrive as events)

    def __init__(self, params: CheckParams) -> None:
        super().__init__(params)
        self.equity = EquityTracker()
        self.halt_reason: str | None = None
        self.halted_at_ns = 0
        self.halts = 0
        self._rebase = False

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> None:
        if not self.applies_to(fill.symbol):
            return
        if self.equity.apply(fill, ctx):
            self._update(ctx)

    def halted(self, ctx: StrategyContext) -> str | None:
        self._update(ctx)
        return self.halt_reason

    def evaluate(self, order: OrderRequest, ctx: StrategyContext) -> str | None:
        self._update(ctx)
        return None if self.halt_reason is None else f"halted: {self.halt_reason}"

    def resume(self) -> None:
        """Operator's manual resume: lift the halt; the limit restarts from the current equity."""
        if self.halt_reason is not None:
            log.info("risk resume check=%s manual=true after=%r", self.name, self.halt_reason)
        self.halt_reason = None
        self._rebase = True

    def _halt(self, now: int, reason: str) -> None:
        self.halt_reason = reason
        self.halted_at_ns = now
        self.halts += 1
        log.info("risk halt check=%s reason=%r", self.name, reason)

    def _lift(self, why: str) -> None:
        log.info("risk resume check=%s manual=false why=%r after=%r", self.name, why, self.halt_reason)
        self.halt_reason = None

    def _update(self, ctx: StrategyContext) -> None:
        raise NotImplementedError


class DrawdownCheck(_HaltingCheck):
    """Halt when equity falls more than ``max_drawdown`` (quote) below its high-water mark.

    Resume: ``resume: manual`` (default; only ``resume()``), or ``resume_after: <duration>``:
    once that long has passed since the halt *and* equity is above ``resume_equity_above`` (if
    given; else back within ``max_drawdown`` of the mark). On resume the high-water mark restarts
    at the current equity.
    """

    kind = "drawdown"
    params_model = DrawdownParams

    def __init__(self, params: CheckParams) -> None:
        super().__init__(params)
        self.high_water = ZERO
        self.last_equity = ZERO

    def _update(self, ctx: StrategyContext) -> None:
        p = self.limits
        if self.equity.empty and not self._rebase and self.halt_reason is None:
            return  # no fills yet: equity is 0 and so is the drawdown
        eq = self.equity.equity(ctx)
        self.last_equity = eq
        if self._rebase:
            self.high_water = eq
            self._rebase = False
        if self.halt_reason is None:
            self.high_water = max(self.high_water, eq)
            dd = self.high_water - eq
            if dd > p.max_drawdown:
                self._halt(
                    ctx.now_ns(),
                    f"drawdown {plain(dd)} > max_drawdown {plain(p.max_drawdown)} "
                    f"(equity {plain(eq)}, high-water mark {plain(self.high_water)})",
                )
            return
        if p.resume_after is None or ctx.now_ns() - self.halted_at_ns < p.resume_after:
            return
        if p.resume_equity_above is not None:
            recovered = eq > p.resume_equity_above
        else:
            recovered = self.high_water - eq <= p.max_drawdown
        if recovered:
            self._lift(f"resume_after elapsed and equity {plain(eq)} recovered")
            self.high_water = eq


class DailyLossCheck(_HaltingCheck):
    """Halt when equity falls more than ``max_daily_loss`` below its value at the UTC day start.

    The day's baseline is the equity at the first look after midnight UTC. Days are read from
    ``wall_clock`` (epoch ns, default ``time.time_ns``), not ``ctx.now_ns()``: the engine clock is
    monotonic and knows no midnight. ``resume: next_day`` (default) lifts the halt at the next UTC
    day; ``resume: manual`` only through ``resume()`` (after which the day's loss restarts at 0).
    """

    kind = "daily_loss"
    params_model = DailyLossParams

    def __init__(self, params: CheckParams, wall_clock: Callable[[], int] = time.time_ns) -> None:
        super().__init__(params)
        self._wall = wall_clock
        self.day: int | None = None
        self.day_start_equity = ZERO
        self.last_equity = ZERO

    def _update(self, ctx: StrategyContext) -> None:
        p = self.limits
        now = ctx.now_ns()
        day = self._wall() // NS_PER_DAY
        if self.day == day and self.equity.empty and not self._rebase:
            return
        eq = self.equity.equity(ctx)
        self.last_equity = eq
        if self.day is None:
            self.day, self.day_start_equity = day, eq
        elif day != self.day:
            self.day, self.day_start_equity = day, eq
            if self.halt_reason is not None and p.resume == "next_day":
                self._lift("new UTC day")
        if self._rebase:
            self.day_start_equity = eq
            self._rebase = False
        if self.halt_reason is None:
            loss = self.day_start_equity - eq
            if loss > p.max_daily_loss:
                self._halt(
                    now,
                    f"loss {plain(loss)} since UTC day start > max_daily_loss {plain(p.max_daily_loss)} "
                    f"(equity {plain(eq)}, day start {plain(self.day_start_equity)})",
                )


CHECKS: tuple[type[BasicCheck], ...] = (
    MaxPositionCheck,
    MaxInventoryValueCheck,
    MaxOrderNotionalCheck,
    MaxOpenOrdersCheck,
    OrderRateCheck,
    PriceBandCheck,
    StaleDataCheck,
    DrawdownCheck,
    DailyLossCheck,
)
"""Every built-in check, registered under its ``kind``."""
