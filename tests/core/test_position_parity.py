"""Hypothesis tests for PositionCache.

- parity: random sequences of every kind of operation (valid and invalid) applied to the compiled
  and the pure twin give identical results, errors and observable state after every step;
- properties, on each implementation: the PnL identity (realized + unrealized - fees == quote
  flows + base flows * mark) holds exactly, realized PnL matches a Decimal reference model of the
  average-cost method, and a duplicate trade never changes anything.

With ``BOTCORE_NO_EXTENSIONS=1`` the parity test compares the twin with a second twin instance
(still checking determinism and the view); the compiled build is covered by the default run.
"""

from __future__ import annotations

import importlib
import os
from decimal import ROUND_HALF_EVEN, Context, Decimal
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botcore.model import (
    AccountSnapshot,
    AccountUpdate,
    Balance,
    BalanceDelta,
    ExecutionReport,
    Fill,
    Instrument,
    OpenOrder,
    OrderStatus,
    Side,
)

NO_EXTENSIONS = os.environ.get("BOTCORE_NO_EXTENSIONS", "") not in ("", "0")
POSITION_IMPLS = ["py"] if NO_EXTENSIONS else ["py", "c"]

D = Decimal
INSTRUMENTS = (
    Instrument("BTCUSDT", "BTC", "USDT", D("0.01"), D("0.00001")),
    Instrument("ETHBTC", "ETH", "BTC", D("0.000001"), D("0.0001")),
)
SYMBOLS = ["BTCUSDT", "ETHBTC"]
ASSETS = ["BTC", "USDT", "ETH", "BNB", "XRP"]
MARKS = (D("0.05"), D("99.5"), D("101.25"))
SETTINGS = settings(
    max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def module(name: str) -> ModuleType:
    return importlib.import_module(f"botcore.core._position_{name}")


def new_cache(mod: ModuleType, **kwargs: Any) -> Any:
    c = mod.PositionCache(**kwargs)
    for inst in INSTRUMENTS:
        c.add_instrument(inst)
    return c


# ------------------------------------------------------------------------------------------------
# strategies
# ------------------------------------------------------------------------------------------------

qty8 = st.integers(0, 3 * 10**8).map(lambda u: D(u).scaleb(-8))
coarse_qty = st.sampled_from(["0", "0.5", "1", "1.00000003", "1.5", "2", "3"]).map(D)
BAD = D("0.000000001")  # not a whole 1e-8 unit: must be rejected by both, changing nothing
amount = st.integers(0, 24).flatmap(lambda i: st.just(BAD) if i == 0 else st.one_of(coarse_qty, qty8))
price = st.one_of(st.sampled_from(["100", "99.5", "101.25", "0.05", "0.04999"]).map(D), qty8)
signed_amount = st.builds(lambda a, neg: -a if neg else a, st.one_of(coarse_qty, qty8), st.booleans())
times = st.integers(0, 60)
statuses = st.sampled_from(
    [
        OrderStatus.NEW,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.EXPIRED,
        OrderStatus.REJECTED,
    ]
)


@st.composite
def reports(draw: st.DrawFn) -> ExecutionReport:
    symbol = draw(st.sampled_from([*SYMBOLS, *SYMBOLS, *SYMBOLS, *SYMBOLS, "XRPUSDT"]))  # XRPUSDT: unknown
    trade = draw(st.booleans())
    last_qty = draw(st.one_of(coarse_qty, qty8)) if trade else D(0)
    t = draw(times)
    return ExecutionReport(
        symbol=symbol,
        client_order_id=draw(st.sampled_from("abcde")),
        order_id=draw(st.integers(1, 4)),
        side=draw(st.sampled_from(Side)),
        order_type="LIMIT",
        status=draw(statuses),
        execution_type="TRADE" if trade else draw(st.sampled_from(["NEW", "CANCELED", "EXPIRED"])),
        price=draw(price),
        orig_qty=draw(coarse_qty),
        cum_qty=draw(amount),
        cum_quote=draw(coarse_qty),
        last_qty=last_qty,
        last_price=draw(price),
        commission=draw(st.sampled_from(["0", "0.001", "0.00000029", "0.1"]).map(D)),
        commission_asset=draw(st.sampled_from([None, "BTC", "USDT", "ETH", "BNB"])),
        trade_id=draw(st.integers(-1, 12)),
        event_time_ms=t,
        transaction_time_ms=t,
    )


@st.composite
def fills(draw: st.DrawFn) -> Fill:
    return Fill(
        symbol=draw(st.sampled_from(SYMBOLS)),
        client_order_id="x",
        order_id=1,
        trade_id=draw(st.integers(-1, 12)),
        side=draw(st.sampled_from(Side)),
        price=draw(price),
        qty=draw(st.one_of(coarse_qty, qty8)),
        commission=draw(st.sampled_from(["0", "0.001", "0.3"]).map(D)),
        commission_asset=draw(st.sampled_from(["", "BTC", "USDT", "ETH", "BNB"])),
        is_maker=True,
        time_ms=0,
    )


balances = st.lists(
    st.builds(Balance, st.sampled_from(ASSETS), amount, st.one_of(coarse_qty, qty8)), max_size=4
).map(tuple)


@st.composite
def open_orders(draw: st.DrawFn) -> OpenOrder:
    t = draw(times)
    return OpenOrder(
        symbol=draw(st.sampled_from([*SYMBOLS, "XRPUSDT"])),
        client_order_id=draw(st.sampled_from("abcdef")),
        order_id=draw(st.integers(1, 4)),
        side=draw(st.sampled_from(Side)),
        order_type="LIMIT",
        status=draw(st.sampled_from([OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED])),
        price=draw(price),
        orig_qty=D(3),
        cum_qty=draw(coarse_qty),
        cum_quote=draw(coarse_qty),
        time_ms=t,
        update_time_ms=t,
    )


operations = st.one_of(
    st.tuples(st.just("report"), reports()),
    st.tuples(st.just("fill"), fills()),
    st.tuples(st.just("account"), st.builds(AccountUpdate, balances, times)),
    st.tuples(st.just("delta"), st.builds(BalanceDelta, st.sampled_from(ASSETS), signed_amount, times)),
    st.tuples(
        st.just("snapshot"),
        st.tuples(
            st.builds(
                AccountSnapshot,
                balances,
                st.lists(open_orders(), max_size=3).map(tuple),
                times,
                times,
            ),
            times,
            st.booleans(),
        ),
    ),
)


# ------------------------------------------------------------------------------------------------
# observation
# ------------------------------------------------------------------------------------------------


def apply(c: Any, op: tuple[str, Any]) -> tuple:
    kind, arg = op
    try:
        if kind == "report":
            return ("ok", c.apply_execution_report(arg))
        if kind == "fill":
            return ("ok", c.apply_fill(arg))
        if kind == "account":
            return ("ok", c.apply_account_update(arg))
        if kind == "delta":
            return ("ok", c.apply_balance_delta(arg))
        snap, now, correct = arg
        return ("ok", c.apply_snapshot(snap, now, correct=correct))
    except (ValueError, TypeError, OverflowError) as e:
        return ("error", type(e).__name__, str(e))


def observe(r: Any) -> tuple:
    """Everything the read side can tell, through the cache or a view."""
    per_symbol = [
        (
            s,
            r.position(s),
            r.cost_basis(s),
            r.avg_entry_price(s),
            r.realized_pnl(s),
            [r.unrealized_pnl(s, m) for m in MARKS],
            r.fees(s),
            r.fees_by_asset(s),
            r.last_trade_id(s),
            r.open_order_count(s),
            r.open_orders(s),
        )
        for s in r.symbols()
    ]
    per_asset = [(a, r.free(a), r.locked(a), r.total(a), r.balance_update_ms(a)) for a in ASSETS]
    return (r.balances(), per_asset, per_symbol, r.open_orders(), r.open_order_count())


def same(a: Any, b: Any) -> bool:
    """Equal values *and* equal Decimal representations (str), not just numeric equality."""
    return a == b and repr(a) == repr(b)


@pytest.mark.parametrize("impls", [(POSITION_IMPLS[0], POSITION_IMPLS[-1])], ids=lambda p: "-vs-".join(p))
@SETTINGS
@given(ops=st.lists(operations, max_size=40))
def test_parity_random_operation_sequences(impls: tuple[str, str], ops: list[tuple[str, Any]]) -> None:
    a = new_cache(module(impls[0]), trade_id_window=4)  # small window: eviction paths get exercised
    b = new_cache(module(impls[1]), trade_id_window=4)
    view_a = a.view()
    for op in ops:
        ra = apply(a, op)
        rb = apply(b, op)
        assert same(ra, rb), op
        sa = observe(a)
        assert same(sa, observe(b)), op
        assert same(sa, observe(view_a))


# ------------------------------------------------------------------------------------------------
# properties on each implementation
# ------------------------------------------------------------------------------------------------

E16 = D("1e-16")
_CTX = Context(prec=80)


class ReferencePosition:
    """Average-cost position in plain Decimal arithmetic (the textbook method, no int units)."""

    def __init__(self) -> None:
        self.qty = D(0)
        self.cost = D(0)
        self.realized = D(0)

    def apply(self, signed: Decimal, px: Decimal) -> None:
        if self.qty == 0 or (self.qty > 0) == (signed > 0):
            self.qty += signed
            self.cost += signed * px
            return
        close = min(abs(signed), abs(self.qty))
        closing = close if signed > 0 else -close
        removed = _CTX.divide(self.cost * close, abs(self.qty)).quantize(E16, rounding=ROUND_HALF_EVEN)
        self.realized += -closing * px - removed
        self.qty += closing
        self.cost -= removed
        rest = signed - closing
        if rest:
            self.qty = rest
            self.cost = rest * px


trade_fills = st.lists(
    st.tuples(
        st.sampled_from(Side),
        st.integers(1, 5 * 10**8).map(lambda u: D(u).scaleb(-8)),
        st.integers(1, 2 * 10**10).map(lambda u: D(u).scaleb(-8)),
        st.sampled_from(["", "BTC", "USDT", "BNB"]),
        st.integers(0, 10**5).map(lambda u: D(u).scaleb(-8)),
    ),
    min_size=1,
    max_size=25,
)


@pytest.mark.parametrize("impl", POSITION_IMPLS)
@SETTINGS
@given(trades=trade_fills, mark=st.integers(1, 2 * 10**10).map(lambda u: D(u).scaleb(-8)))
def test_pnl_identity_and_reference_model(impl: str, trades: list[tuple], mark: Decimal) -> None:
    c = new_cache(module(impl))
    ref = ReferencePosition()
    quote = D(0)
    base = D(0)
    for i, (side, qty, px, fee_asset, fee) in enumerate(trades):
        commission = fee if fee_asset else D(0)
        assert c.apply_fill(Fill("BTCUSDT", "x", i, i, side, px, qty, commission, fee_asset, True, i)) is True
        signed = side.sign * qty - (commission if fee_asset == "BTC" else 0)
        ref.apply(signed, px)
        base += signed
        quote += -side.sign * qty * px - (commission if fee_asset == "USDT" else 0)
    assert c.position("BTCUSDT") == base == ref.qty
    assert c.realized_pnl("BTCUSDT") == ref.realized
    assert c.cost_basis("BTCUSDT") == ref.cost
    pnl = c.realized_pnl("BTCUSDT") + c.unrealized_pnl("BTCUSDT", mark) - c.fees("BTCUSDT")
    assert pnl == quote + base * mark
    bnb = sum((f for _, _, _, a, f in trades if a == "BNB"), D(0))
    assert c.fees_by_asset("BTCUSDT").get("BNB", D(0)) == bnb


@pytest.mark.parametrize("impl", POSITION_IMPLS)
@SETTINGS
@given(trades=trade_fills, data=st.data())
def test_replaying_any_trade_changes_nothing(impl: str, trades: list[tuple], data: st.DataObject) -> None:
    c = new_cache(module(impl))
    applied = []
    for i, (side, qty, px, fee_asset, fee) in enumerate(trades):
        f = Fill("BTCUSDT", "x", i, 100 + i, side, px, qty, fee if fee_asset else D(0), fee_asset, True, i)
        c.apply_fill(f)
        applied.append(f)
    before = observe(c)
    for f in data.draw(st.lists(st.sampled_from(applied), max_size=10)):
        assert c.apply_fill(f) is False
    assert same(observe(c), before)
