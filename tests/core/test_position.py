"""PositionCache behaviour: order lifecycle, fills and PnL, fees, balances, REST fencing, the view.

Every test runs on both implementations through the ``pos_mod`` fixture (compiled
``_position_c`` and pure ``_position_py``). The compiled module is imported directly, so a missing
build fails loudly; with ``BOTCORE_NO_EXTENSIONS=1`` only the twin is collected.
Expected values are derived from the inputs with Decimal arithmetic in the test, never copied
from the implementation.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import pickle
from decimal import ROUND_HALF_EVEN, Context, Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from botcore.model import (
    AccountSnapshot,
    AccountUpdate,
    Balance,
    BalanceDelta,
    Drift,
    ExecutionReport,
    Fill,
    Instrument,
    OpenOrder,
    OrderStatus,
    Side,
)

NO_EXTENSIONS = os.environ.get("BOTCORE_NO_EXTENSIONS", "") not in ("", "0")
POSITION_IMPLS = ["py"] if NO_EXTENSIONS else ["py", "c"]
USERDATA = Path(__file__).resolve().parents[1] / "data" / "userdata"
EXCHANGE_INFO_2021 = (
    Path(__file__).resolve().parents[1]
    / "data"
    / "cryptofeed"
    / "exchangeInfo_2021_BTCUSDT_ETHUSDT_BNBUSDT.json"
)

D = Decimal
E16 = D("1e-16")
BTCUSDT = Instrument("BTCUSDT", "BTC", "USDT", D("0.01"), D("0.00001"))
ETHBTC = Instrument("ETHBTC", "ETH", "BTC", D("0.000001"), D("0.0001"))
LINKETH = Instrument("LINKETH", "LINK", "ETH", D("0.00000001"), D("0.01"))


def q16(x: Decimal) -> Decimal:
    """The one rounding the cache does: a partial close's share of the cost, half-even to 1e-16."""
    return x.quantize(E16, rounding=ROUND_HALF_EVEN)


@pytest.fixture(params=POSITION_IMPLS)
def pos_mod(request: pytest.FixtureRequest) -> ModuleType:
    """``botcore.core._position_py`` or ``botcore.core._position_c``."""
    return importlib.import_module(f"botcore.core._position_{request.param}")


@pytest.fixture
def cache(pos_mod: ModuleType) -> Any:
    c = pos_mod.PositionCache()
    c.add_instrument(BTCUSDT)
    c.add_instrument(ETHBTC)
    return c


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------


def parse_user_event(line: str) -> ExecutionReport | AccountUpdate | BalanceDelta:
    """One user-data frame (bare, combined-stream or WS-API envelope) -> model type (PROTOCOL 9.2/9.3)."""
    d = json.loads(line)
    d = d.get("data") or d.get("event") or d
    kind = d["e"]
    if kind == "executionReport":
        cid = d["C"] if d["x"] == "CANCELED" and d.get("C") else d["c"]
        return ExecutionReport(
            symbol=d["s"],
            client_order_id=cid,
            order_id=int(d["i"]),
            side=Side(d["S"]),
            order_type=d["o"],
            status=OrderStatus(d["X"]),
            execution_type=d["x"],
            price=D(d["p"]),
            orig_qty=D(d["q"]),
            cum_qty=D(d["z"]),
            cum_quote=D(d["Z"]),
            last_qty=D(d["l"]),
            last_price=D(d["L"]),
            commission=D(d["n"]),
            commission_asset=d["N"],
            trade_id=int(d["t"]),
            is_maker=bool(d["m"]),
            reject_reason=d["r"],
            event_time_ms=int(d["E"]),
            transaction_time_ms=int(d["T"]),
        )
    if kind == "outboundAccountPosition":
        return AccountUpdate(
            balances=tuple(Balance(b["a"], D(b["f"]), D(b["l"])) for b in d["B"]),
            update_time_ms=int(d["u"]),
            event_time_ms=int(d["E"]),
        )
    if kind == "balanceUpdate":
        return BalanceDelta(d["a"], D(d["d"]), int(d["T"]))
    raise ValueError(f"unexpected user event {kind}")


def load_samples(name: str) -> list[Any]:
    return [parse_user_event(line) for line in (USERDATA / name).read_text().splitlines() if line.strip()]


def rep(
    status: str,
    *,
    cid: str = "o1",
    oid: int = 1,
    side: str = "BUY",
    symbol: str = "BTCUSDT",
    price: str = "100",
    qty: str = "2",
    cum: str = "0",
    cum_quote: str | None = None,
    last_qty: str = "0",
    last_price: str = "0",
    commission: str = "0",
    commission_asset: str | None = None,
    trade_id: int = -1,
    t: int = 1_000,
    x: str | None = None,
) -> ExecutionReport:
    if x is None:
        x = "TRADE" if D(last_qty) > 0 else ("NEW" if status == "NEW" else status)
    return ExecutionReport(
        symbol=symbol,
        client_order_id=cid,
        order_id=oid,
        side=Side(side),
        order_type="LIMIT",
        status=OrderStatus(status),
        execution_type=x,
        price=D(price),
        orig_qty=D(qty),
        cum_qty=D(cum),
        cum_quote=D(cum_quote) if cum_quote is not None else D(cum) * D(price),
        last_qty=D(last_qty),
        last_price=D(last_price),
        commission=D(commission),
        commission_asset=commission_asset,
        trade_id=trade_id,
        event_time_ms=t,
        transaction_time_ms=t,
    )


def fill(
    side: str,
    qty: str,
    price: str,
    trade_id: int,
    *,
    symbol: str = "BTCUSDT",
    commission: str = "0",
    commission_asset: str = "",
) -> Fill:
    return Fill(
        symbol=symbol,
        client_order_id=f"f{trade_id}",
        order_id=trade_id,
        trade_id=trade_id,
        side=Side(side),
        price=D(price),
        qty=D(qty),
        commission=D(commission),
        commission_asset=commission_asset,
        is_maker=True,
        time_ms=trade_id,
    )


def everything(c: Any) -> tuple:
    """All observable state, to prove a rejected or duplicate event changed nothing."""
    per_symbol = []
    for s in c.symbols():
        per_symbol.append(
            (
                s,
                c.position(s),
                c.cost_basis(s),
                c.avg_entry_price(s),
                c.realized_pnl(s),
                c.fees(s),
                c.fees_by_asset(s),
                c.last_trade_id(s),
                c.open_order_count(s),
            )
        )
    return (
        c.balances(),
        {a: c.balance_update_ms(a) for a in c.balances()},
        c.open_orders(),
        per_symbol,
    )


def snapshot(
    balances: dict[str, tuple[str, str]] | None = None,
    orders: tuple[OpenOrder, ...] = (),
    update_time_ms: int = 5_000,
    fetched_at_ms: int = 5_000,
) -> AccountSnapshot:
    return AccountSnapshot(
        balances=tuple(Balance(a, D(f), D(lk)) for a, (f, lk) in (balances or {}).items()),
        open_orders=orders,
        update_time_ms=update_time_ms,
        fetched_at_ms=fetched_at_ms,
    )


def open_order(
    cid: str,
    *,
    oid: int = 1,
    symbol: str = "BTCUSDT",
    side: str = "BUY",
    status: str = "NEW",
    price: str = "100",
    qty: str = "2",
    cum: str = "0",
    t: int = 1_000,
) -> OpenOrder:
    return OpenOrder(
        symbol=symbol,
        client_order_id=cid,
        order_id=oid,
        side=Side(side),
        order_type="LIMIT",
        status=OrderStatus(status),
        price=D(price),
        orig_qty=D(qty),
        cum_qty=D(cum),
        cum_quote=D(cum) * D(price),
        time_ms=t,
        update_time_ms=t,
    )


# ------------------------------------------------------------------------------------------------
# recorded executionReports
# ------------------------------------------------------------------------------------------------


def test_samples_2020_lifecycle_pnl_and_fees(pos_mod: ModuleType) -> None:
    """LINKETH: market BUY 1 (0.001 LINK fee), then market SELL 1 (ETH fee): a flip through zero."""
    c = pos_mod.PositionCache()
    c.add_instrument(LINKETH)
    new_buy, trade_buy, new_sell, trade_sell = load_samples("userdata_samples_2020.jsonl")

    assert c.apply_execution_report(new_buy) is None
    (o,) = c.open_orders("LINKETH")
    assert (o.client_order_id, o.order_id, o.side, o.status) == (
        new_buy.client_order_id,
        new_buy.order_id,
        Side.BUY,
        OrderStatus.NEW,
    )
    assert (o.orig_qty, o.cum_qty, o.update_time_ms) == (new_buy.orig_qty, 0, new_buy.event_time_ms)

    got = c.apply_execution_report(trade_buy)
    assert got == trade_buy.fill()
    assert c.open_order_count() == 0  # FILLED: removed
    held = trade_buy.last_qty - trade_buy.commission  # base fee leaves the account
    cost = held * trade_buy.last_price
    fee1 = trade_buy.commission * trade_buy.last_price
    assert c.position("LINKETH") == held
    assert c.cost_basis("LINKETH") == cost
    assert c.fees("LINKETH") == fee1

    assert c.apply_execution_report(new_sell) is None
    assert c.open_order(new_sell.client_order_id) is not None
    assert c.apply_execution_report(trade_sell) == trade_sell.fill()
    assert c.open_order_count() == 0
    # the sell closes the 0.999 long and opens a 0.001 short at the sell price
    realized = held * trade_sell.last_price - cost
    rest = trade_sell.last_qty - held
    assert c.realized_pnl("LINKETH") == realized
    assert c.position("LINKETH") == -rest
    assert c.cost_basis("LINKETH") == -rest * trade_sell.last_price
    assert c.avg_entry_price("LINKETH") == trade_sell.last_price
    assert c.fees("LINKETH") == fee1 + trade_sell.commission
    assert c.fees_by_asset("LINKETH") == {"LINK": trade_buy.commission, "ETH": trade_sell.commission}
    assert c.last_trade_id("LINKETH") == max(trade_buy.trade_id, trade_sell.trade_id)

    # replaying the whole file changes nothing: trade ids dedupe, closed orders stay closed
    before = everything(c)
    for event in (new_buy, trade_buy, new_sell, trade_sell):
        assert c.apply_execution_report(event) is None
    assert everything(c) == before


def test_samples_2021_new_trade_and_account(pos_mod: ModuleType) -> None:
    info = json.loads(EXCHANGE_INFO_2021.read_text())
    btcusdt = Instrument.from_exchange_info(next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT"))
    c = pos_mod.PositionCache()
    c.add_instrument(btcusdt)
    new, trade, account = load_samples("userdata_samples_2021.jsonl")

    assert c.apply_execution_report(new) is None
    assert c.open_order(new.client_order_id) == OpenOrder(
        symbol="BTCUSDT",
        client_order_id=new.client_order_id,
        order_id=new.order_id,
        side=Side.BUY,
        order_type="LIMIT",
        status=OrderStatus.NEW,
        price=new.price,
        orig_qty=new.orig_qty,
        cum_qty=D(0),
        cum_quote=D(0),
        time_ms=new.transaction_time_ms,
        update_time_ms=new.event_time_ms,
    )
    # a fill of an order whose NEW we never saw still counts, and a FILLED order is not inserted
    assert c.apply_execution_report(trade) == trade.fill()
    assert c.open_order(trade.client_order_id) is None
    assert c.open_order_count("BTCUSDT") == 1
    assert c.position("BTCUSDT") == trade.last_qty - trade.commission
    assert c.avg_entry_price("BTCUSDT") == trade.last_price
    assert c.fees("BTCUSDT") == trade.commission * trade.last_price

    assert c.apply_account_update(account) == len(account.balances)
    for b in account.balances:
        assert (c.free(b.asset), c.locked(b.asset), c.total(b.asset)) == (b.free, b.locked, b.free + b.locked)
        assert c.balance_update_ms(b.asset) == account.update_time_ms
    assert c.apply_account_update(account) == 0  # same values again: nothing changed


# ------------------------------------------------------------------------------------------------
# order lifecycle
# ------------------------------------------------------------------------------------------------


def test_partial_fills_then_filled(cache: Any) -> None:
    assert cache.apply_execution_report(rep("NEW", qty="1", price="100", t=1)) is None
    steps = [("0.4", "100", 11), ("0.3", "99.5", 12), ("0.3", "99", 13)]
    cum = D(0)
    quote = D(0)
    for i, (lq, lp, tid) in enumerate(steps):
        cum += D(lq)
        quote += D(lq) * D(lp)
        status = "FILLED" if i == len(steps) - 1 else "PARTIALLY_FILLED"
        r = rep(
            status,
            qty="1",
            cum=str(cum),
            cum_quote=str(quote),
            last_qty=lq,
            last_price=lp,
            trade_id=tid,
            t=2 + i,
        )
        assert cache.apply_execution_report(r) == r.fill()
        if status == "PARTIALLY_FILLED":
            o = cache.open_order("o1")
            assert (o.status, o.cum_qty, o.cum_quote, o.update_time_ms) == (
                OrderStatus.PARTIALLY_FILLED,
                cum,
                quote,
                2 + i,
            )
    assert cache.open_order("o1") is None
    assert cache.position("BTCUSDT") == D(1)
    assert cache.cost_basis("BTCUSDT") == quote
    assert cache.avg_entry_price("BTCUSDT") == quote / D(1)
    assert cache.last_trade_id("BTCUSDT") == 13


def test_cancel_removes_order_and_late_events_do_not_resurrect_it(cache: Any) -> None:
    cache.apply_execution_report(rep("NEW", t=1))
    assert cache.apply_execution_report(rep("CANCELED", t=3)) is None
    assert cache.open_order_count() == 0
    before = everything(cache)
    assert cache.apply_execution_report(rep("NEW", t=2)) is None  # delivered late
    assert everything(cache) == before
    # the venue may reuse the client id for a new order once the old one closed
    cache.apply_execution_report(rep("NEW", oid=2, t=4))
    assert cache.open_order("o1").order_id == 2


def test_rejected_and_expired_are_never_open(cache: Any) -> None:
    assert cache.apply_execution_report(rep("REJECTED", x="REJECTED")) is None
    assert cache.apply_execution_report(rep("EXPIRED", cid="o2", oid=2)) is None
    assert cache.open_order_count() == 0


def test_reused_client_id_replaces_an_order_whose_close_we_missed(cache: Any) -> None:
    cache.apply_execution_report(rep("NEW", oid=1, t=1))
    cache.apply_execution_report(rep("NEW", oid=5, price="101", t=2))
    assert (cache.open_order("o1").order_id, cache.open_order("o1").price) == (5, D(101))
    before = everything(cache)
    assert cache.apply_execution_report(rep("CANCELED", oid=1, t=3)) is None  # the older order
    assert everything(cache) == before


def test_duplicate_trade_id_applies_once(cache: Any) -> None:
    cache.apply_execution_report(rep("NEW", t=1))
    r = rep("PARTIALLY_FILLED", cum="1", last_qty="1", last_price="100", trade_id=7, t=2)
    assert cache.apply_execution_report(r) == r.fill()
    before = everything(cache)
    assert cache.apply_execution_report(r) is None
    assert everything(cache) == before
    assert cache.position("BTCUSDT") == D(1)


def test_stale_event_changes_nothing(cache: Any) -> None:
    cache.apply_execution_report(rep("NEW", t=1))
    cache.apply_execution_report(
        rep("PARTIALLY_FILLED", cum="1", last_qty="1", last_price="100", trade_id=7, t=2)
    )
    cache.apply_execution_report(
        rep("PARTIALLY_FILLED", cum="1.5", last_qty="0.5", last_price="100", trade_id=8, t=3)
    )
    before = everything(cache)
    # older cum qty: a replayed NEW and a replayed first fill
    assert cache.apply_execution_report(rep("NEW", t=1)) is None
    assert (
        cache.apply_execution_report(
            rep("PARTIALLY_FILLED", cum="1", last_qty="1", last_price="100", trade_id=7)
        )
        is None
    )
    assert everything(cache) == before
    assert cache.open_order("o1").cum_qty == D("1.5")


def test_same_trade_from_rest_then_stream_counts_once_but_updates_the_order(cache: Any) -> None:
    cache.apply_execution_report(rep("NEW", t=1))
    assert cache.apply_fill(fill("BUY", "1", "100", 9)) is True
    assert cache.apply_fill(fill("BUY", "1", "100", 9)) is False
    r = rep("PARTIALLY_FILLED", cum="1", last_qty="1", last_price="100", trade_id=9, t=2)
    assert cache.apply_execution_report(r) is None  # fill already counted...
    assert cache.open_order("o1").cum_qty == D(1)  # ...but the order still moves forward
    assert cache.position("BTCUSDT") == D(1)


def test_late_stream_fill_after_snapshot_adopted_cum_still_counts(cache: Any) -> None:
    """Deliberate: the order record never regresses, but a new trade id always reaches the position."""
    cache.apply_execution_report(rep("NEW", t=1))
    snap = snapshot(orders=(open_order("o1", status="PARTIALLY_FILLED", cum="1.5", t=3),), fetched_at_ms=4)
    (d,) = cache.apply_snapshot(snap, now_ms=4)
    assert (d.field, d.cause, d.corrected) == ("order.cum_qty", "missed fill", True)
    assert cache.position("BTCUSDT") == 0  # a snapshot never invents fills
    late = rep("PARTIALLY_FILLED", cum="1", last_qty="1", last_price="100", trade_id=21, t=2)
    assert cache.apply_execution_report(late) == late.fill()
    assert cache.position("BTCUSDT") == D(1)
    assert cache.open_order("o1").cum_qty == D("1.5")


def test_open_orders_filter_and_count(cache: Any) -> None:
    cache.apply_execution_report(rep("NEW", cid="a", oid=1))
    cache.apply_execution_report(rep("NEW", cid="b", oid=2, symbol="ETHBTC", price="0.05"))
    cache.apply_execution_report(rep("NEW", cid="c", oid=3, side="SELL", price="101"))
    assert [o.client_order_id for o in cache.open_orders()] == ["a", "b", "c"]
    assert [o.client_order_id for o in cache.open_orders("BTCUSDT")] == ["a", "c"]
    assert (
        cache.open_order_count(),
        cache.open_order_count("BTCUSDT"),
        cache.open_order_count("ETHBTC"),
    ) == (3, 2, 1)
    assert cache.open_orders("XRPUSDT") == [] and cache.open_order_count("XRPUSDT") == 0
    assert cache.open_order("nope") is None


# ------------------------------------------------------------------------------------------------
# PnL arithmetic
# ------------------------------------------------------------------------------------------------


def test_buy_2_at_100_sell_1_at_110(cache: Any) -> None:
    cache.apply_fill(fill("BUY", "2", "100", 1))
    cache.apply_fill(fill("SELL", "1", "110", 2))
    assert cache.realized_pnl("BTCUSDT") == D(10)
    assert cache.position("BTCUSDT") == D(1)
    assert cache.avg_entry_price("BTCUSDT") == D(100)
    assert cache.cost_basis("BTCUSDT") == D(100)
    assert cache.unrealized_pnl("BTCUSDT", D("120.5")) == D("20.5")
    assert cache.unrealized_pnl("BTCUSDT", 90) == D(-10)


def test_flip_long_to_short_and_back(cache: Any) -> None:
    cache.apply_fill(fill("BUY", "1", "100", 1))
    cache.apply_fill(fill("SELL", "3", "110", 2))  # closes 1 (+10), opens 2 short at 110
    assert (cache.realized_pnl("BTCUSDT"), cache.position("BTCUSDT")) == (D(10), D(-2))
    assert cache.avg_entry_price("BTCUSDT") == D(110)
    assert cache.cost_basis("BTCUSDT") == D(-220)
    assert cache.unrealized_pnl("BTCUSDT", D(100)) == D(20)
    cache.apply_fill(fill("BUY", "3", "100", 3))  # covers 2 (+20), opens 1 long at 100
    assert (cache.realized_pnl("BTCUSDT"), cache.position("BTCUSDT")) == (D(30), D(1))
    assert cache.avg_entry_price("BTCUSDT") == D(100)
    cache.apply_fill(fill("SELL", "1", "95", 4))
    assert (cache.realized_pnl("BTCUSDT"), cache.position("BTCUSDT")) == (D(25), D(0))
    assert cache.avg_entry_price("BTCUSDT") is None
    assert cache.cost_basis("BTCUSDT") == 0
    assert cache.unrealized_pnl("BTCUSDT", D(1000)) == 0


def test_short_first(cache: Any) -> None:
    cache.apply_fill(fill("SELL", "2", "100", 1))
    cache.apply_fill(fill("BUY", "0.5", "90", 2))
    assert cache.realized_pnl("BTCUSDT") == D(5)
    assert cache.position("BTCUSDT") == D("-1.5")
    assert cache.avg_entry_price("BTCUSDT") == D(100)


def test_average_cost_with_non_terminating_average(cache: Any) -> None:
    cache.apply_fill(fill("BUY", "1", "100", 1))
    cache.apply_fill(fill("BUY", "2", "101", 2))
    total = D(100) + 2 * D(101)
    assert cache.avg_entry_price("BTCUSDT") == Context(prec=28).divide(total, D(3))
    cache.apply_fill(fill("SELL", "1", "102", 3))
    removed = q16(total / 3)
    assert cache.realized_pnl("BTCUSDT") == D(102) - removed
    assert cache.cost_basis("BTCUSDT") == total - removed  # realized + remaining cost is exact
    cache.apply_fill(fill("SELL", "2", "102", 4))
    assert cache.realized_pnl("BTCUSDT") == 3 * D(102) - total
    assert cache.cost_basis("BTCUSDT") == 0


def test_notionals_are_exact_below_1e8(cache: Any) -> None:
    cache.apply_fill(fill("BUY", "0.00000001", "0.5", 1))
    cache.apply_fill(fill("BUY", "0.00000003", "0.00000001", 2))
    assert cache.cost_basis("BTCUSDT") == D("0.000000005") + D("0.0000000000000003")
    cache.apply_fill(fill("SELL", "0.00000004", "0.5", 3))
    assert cache.realized_pnl("BTCUSDT") == D("0.00000004") * D("0.5") - D("0.0000000050000003")
    assert cache.cost_basis("BTCUSDT") == 0


def test_partial_close_share_of_cost_rounds_half_even_at_1e16(cache: Any) -> None:
    cache.apply_fill(fill("BUY", "0.00000002", "0.00000001", 1))  # cost 2e-16
    cache.apply_fill(fill("BUY", "0.00000002", "0.00000002", 2))  # cost 6e-16 for 4e-8
    cache.apply_fill(fill("SELL", "0.00000001", "0.00000001", 3))  # share 1.5e-16 -> 2e-16 (even)
    assert cache.cost_basis("BTCUSDT") == D("4e-16")
    assert cache.realized_pnl("BTCUSDT") == D("1e-16") - D("2e-16")


# ------------------------------------------------------------------------------------------------
# fees
# ------------------------------------------------------------------------------------------------


def test_fee_in_base_reduces_position_and_counts_at_fill_price(cache: Any) -> None:
    cache.apply_fill(fill("BUY", "2", "100", 1, commission="0.002", commission_asset="BTC"))
    assert cache.position("BTCUSDT") == D("1.998")
    assert cache.avg_entry_price("BTCUSDT") == D(100)  # fees do not distort the entry
    assert cache.fees("BTCUSDT") == D("0.2")
    assert cache.fees_by_asset("BTCUSDT") == {"BTC": D("0.002")}


def test_fee_in_quote_and_in_a_third_asset(cache: Any) -> None:
    cache.apply_fill(fill("SELL", "1", "100", 1, commission="0.1", commission_asset="USDT"))
    cache.apply_fill(fill("SELL", "1", "100", 2, commission="0.0003", commission_asset="BNB"))
    assert cache.position("BTCUSDT") == D(-2)
    assert cache.fees("BTCUSDT") == D("0.1")  # BNB has no price here: per asset only
    assert cache.fees_by_asset("BTCUSDT") == {"USDT": D("0.1"), "BNB": D("0.0003")}


def test_pnl_identity_with_fees(cache: Any) -> None:
    """realized + unrealized - fees == quote flows + base flows * mark (fees in base/quote)."""
    fills = [
        fill("BUY", "2", "100", 1, commission="0.002", commission_asset="BTC"),
        fill("SELL", "3", "110", 2, commission="0.33", commission_asset="USDT"),
        fill("BUY", "0.5", "105", 3, commission="0.0005", commission_asset="BTC"),
    ]
    quote = D(0)
    base = D(0)
    for f in fills:
        cache.apply_fill(f)
        quote += -f.side.sign * f.qty * f.price - (f.commission if f.commission_asset == "USDT" else 0)
        base += f.side.sign * f.qty - (f.commission if f.commission_asset == "BTC" else 0)
    mark = D("107.25")
    pnl = cache.realized_pnl("BTCUSDT") + cache.unrealized_pnl("BTCUSDT", mark) - cache.fees("BTCUSDT")
    assert pnl == quote + base * mark
    assert cache.position("BTCUSDT") == base


def test_commission_without_asset_is_rejected(cache: Any) -> None:
    before = everything(cache)
    with pytest.raises(ValueError, match="commission"):
        cache.apply_fill(fill("BUY", "1", "100", 1, commission="0.001", commission_asset=""))
    assert everything(cache) == before


# ------------------------------------------------------------------------------------------------
# bad input and limits
# ------------------------------------------------------------------------------------------------


def test_unknown_symbol_raises_and_changes_nothing(cache: Any) -> None:
    before = everything(cache)
    with pytest.raises(ValueError, match="XRPUSDT.*add_instrument"):
        cache.apply_execution_report(rep("NEW", symbol="XRPUSDT"))
    with pytest.raises(ValueError, match="XRPUSDT"):
        cache.apply_fill(fill("BUY", "1", "1", 1, symbol="XRPUSDT"))
    with pytest.raises(ValueError, match="XRPUSDT"):
        cache.position("XRPUSDT")
    assert everything(cache) == before


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("last_price", D("100.000000001"), ValueError),  # 9 decimals: not a whole 1e-8 unit
        ("last_qty", D("NaN"), ValueError),
        ("last_qty", D("Infinity"), ValueError),
        ("last_price", 100.5, TypeError),  # binary floats never carry money
        ("cum_qty", D("1e30"), OverflowError),
    ],
)
def test_bad_amounts_are_rejected_before_any_change(cache: Any, field: str, value: Any, error: type) -> None:
    cache.apply_execution_report(rep("NEW", t=1))
    before = everything(cache)
    kwargs = {"cum_qty": D(1), "last_qty": D(1), "last_price": D(100), field: value}
    r = ExecutionReport(
        "BTCUSDT", "o1", 1, Side.BUY, "LIMIT", OrderStatus.PARTIALLY_FILLED, "TRADE", D(100), D(2),
        kwargs["cum_qty"], D(100), kwargs["last_qty"], kwargs["last_price"], D(0), None, 5, False, "NONE", 2, 2,
    )  # fmt: skip
    with pytest.raises(error):
        cache.apply_execution_report(r)
    assert everything(cache) == before


def test_trade_without_trade_id_is_rejected(cache: Any) -> None:
    before = everything(cache)
    with pytest.raises(ValueError, match="trade id"):
        cache.apply_execution_report(rep("FILLED", cum="2", last_qty="2", last_price="100", trade_id=-1))
    with pytest.raises(ValueError, match="positive"):
        cache.apply_fill(fill("BUY", "0", "100", 1))
    assert everything(cache) == before


def test_position_overflow_raises_and_changes_nothing(cache: Any) -> None:
    big = "90000000000"  # 9e18 units: fits int64 once, not twice
    cache.apply_fill(fill("BUY", big, "0.0001", 1))
    before = everything(cache)
    with pytest.raises(OverflowError):
        cache.apply_fill(fill("BUY", big, "0.0001", 2))
    with pytest.raises(OverflowError):  # a base fee pushing the net qty past int64
        cache.apply_fill(fill("BUY", "1", "1", 3, commission="-92233720368", commission_asset="BTC"))
    assert everything(cache) == before
    assert cache.last_trade_id("BTCUSDT") == 1


def test_money_beyond_int64_stays_exact(cache: Any) -> None:
    """Notionals far past int64 in 1e-16 units (or even 1e-8) are exact integers."""
    cache.apply_fill(fill("BUY", "90000000000", "99999999.99999999", 1))
    cache.apply_fill(fill("SELL", "30000000000", "100000000.00000001", 2))
    assert cache.realized_pnl("BTCUSDT") == 30000000000 * (D("100000000.00000001") - D("99999999.99999999"))
    assert cache.cost_basis("BTCUSDT") == 60000000000 * D("99999999.99999999")
    assert cache.avg_entry_price("BTCUSDT") == D("99999999.99999999")


def test_trade_id_window_forgets_old_ids_as_seen(pos_mod: ModuleType) -> None:
    c = pos_mod.PositionCache(trade_id_window=2)
    assert c.trade_id_window == 2
    c.add_instrument(BTCUSDT)
    for tid in (10, 11, 12):
        assert c.apply_fill(fill("BUY", "1", "100", tid)) is True
    assert c.apply_fill(fill("BUY", "1", "100", 10)) is False  # evicted, still a duplicate
    assert c.apply_fill(fill("BUY", "1", "100", 5)) is False  # at or below the forgotten floor
    assert c.apply_fill(fill("BUY", "1", "100", 11)) is False  # still remembered
    assert c.apply_fill(fill("BUY", "1", "100", 13)) is True
    assert c.position("BTCUSDT") == D(4)
    with pytest.raises(ValueError):
        pos_mod.PositionCache(trade_id_window=0)


def test_add_instrument_again_keeps_the_position(cache: Any) -> None:
    cache.apply_fill(fill("BUY", "1", "100", 1))
    cache.add_instrument(BTCUSDT)
    assert cache.position("BTCUSDT") == D(1)
    assert cache.symbols() == ["BTCUSDT", "ETHBTC"]


# ------------------------------------------------------------------------------------------------
# balances from the stream
# ------------------------------------------------------------------------------------------------


def account(t: int, **bal: tuple[str, str]) -> AccountUpdate:
    return AccountUpdate(tuple(Balance(a, D(f), D(lk)) for a, (f, lk) in bal.items()), update_time_ms=t)


def test_account_update_is_fenced_per_asset(cache: Any) -> None:
    assert cache.apply_account_update(account(100, BTC=("1", "0.5"), USDT=("1000", "0"))) == 2
    assert cache.apply_account_update(account(50, BTC=("9", "9"))) == 0  # older: ignored
    assert (cache.free("BTC"), cache.locked("BTC"), cache.total("BTC")) == (D(1), D("0.5"), D("1.5"))
    assert (
        cache.apply_account_update(account(100, BTC=("2", "0"), USDT=("1000", "0"))) == 1
    )  # equal time applies
    assert cache.apply_account_update(account(150, USDT=("900", "100"), ETH=("3", "0"))) == 2
    assert cache.balances() == {
        "BTC": Balance("BTC", D(2), D(0)),
        "USDT": Balance("USDT", D(900), D(100)),
        "ETH": Balance("ETH", D(3), D(0)),
    }
    assert [cache.balance_update_ms(a) for a in ("BTC", "USDT", "ETH", "XRP")] == [100, 150, 150, -1]
    assert (cache.free("XRP"), cache.locked("XRP"), cache.total("XRP")) == (0, 0, 0)


def test_account_update_with_bad_amount_changes_nothing(cache: Any) -> None:
    cache.apply_account_update(account(100, BTC=("1", "0")))
    before = everything(cache)
    with pytest.raises(ValueError):
        cache.apply_account_update(account(200, BTC=("2", "0"), USDT=("0.000000001", "0")))
    assert everything(cache) == before


def test_balance_delta_is_fenced_by_time(cache: Any) -> None:
    assert cache.apply_balance_delta(BalanceDelta("USDT", D("50"), 100)) is True  # new asset
    cache.apply_account_update(account(200, USDT=("150", "0")))  # already includes a deposit at 200
    assert cache.apply_balance_delta(BalanceDelta("USDT", D("100"), 200)) is False
    assert cache.apply_balance_delta(BalanceDelta("USDT", D("-25.5"), 201)) is True
    assert cache.free("USDT") == D("124.5")
    assert cache.balance_update_ms("USDT") == 201
    assert cache.apply_account_update(account(200, USDT=("150", "0"))) == 0  # now older


# ------------------------------------------------------------------------------------------------
# REST snapshot: fencing and drift records
# ------------------------------------------------------------------------------------------------


def test_snapshot_balance_drift_fields_and_correction(cache: Any) -> None:
    cache.apply_account_update(account(1_000, BTC=("1", "0"), XRP=("10", "0")))
    snap = snapshot({"BTC": ("0.9", "0.1"), "XRP": ("12", "0")}, update_time_ms=2_000)
    drifts = cache.apply_snapshot(snap, now_ms=2_500)
    assert drifts == [
        Drift("balance.free", "BTC", "1", "0.9", 1_500, "missed fill", True),
        Drift("balance.locked", "BTC", "0", "0.1", 1_500, "missed fill", True),
        Drift("balance.free", "XRP", "10", "12", 1_500, "unknown", True),  # not an asset we trade
    ]
    assert (cache.free("BTC"), cache.locked("BTC"), cache.free("XRP")) == (D("0.9"), D("0.1"), D(12))
    assert cache.balance_update_ms("BTC") == 2_000
    assert cache.apply_snapshot(snap, now_ms=2_600) == []  # corrected: nothing left


def test_snapshot_without_correct_only_reports(cache: Any) -> None:
    cache.apply_account_update(account(1_000, BTC=("1", "0")))
    cache.apply_execution_report(rep("NEW", cid="gone", t=1_000))
    before = everything(cache)
    snap = snapshot(
        {"BTC": ("2", "0")}, orders=(open_order("ext", oid=9),), update_time_ms=2_000, fetched_at_ms=2_000
    )
    drifts = cache.apply_snapshot(snap, now_ms=3_000, correct=False)
    assert [(d.field, d.key, d.corrected) for d in drifts] == [
        ("balance.free", "BTC", False),
        ("order.missing_local", "ext", False),
        ("order.missing_venue", "gone", False),
    ]
    assert everything(cache) == before


@pytest.mark.parametrize(
    ("local", "venue", "cause"),
    [
        ("1", "1.0000001", "fee rounding"),  # 10 units
        ("1", "0.9999999", "fee rounding"),
        ("1", "1.00000011", "missed fill"),  # 11 units
    ],
)
def test_snapshot_fee_rounding_threshold(cache: Any, local: str, venue: str, cause: str) -> None:
    cache.apply_account_update(account(1_000, USDT=(local, "0")))
    (d,) = cache.apply_snapshot(snapshot({"USDT": (venue, "0")}, update_time_ms=1_000), now_ms=1_000)
    assert (d.local, d.venue, d.cause, d.age_ms) == (local, venue, cause, 0)


def test_snapshot_asset_missing_from_venue_counts_as_zero(cache: Any) -> None:
    cache.apply_account_update(account(1_000, ETH=("3", "0")))
    (d,) = cache.apply_snapshot(snapshot({}, update_time_ms=2_000), now_ms=2_000)
    assert (d.field, d.key, d.local, d.venue, d.cause) == ("balance.free", "ETH", "3", "0", "missed fill")
    assert cache.total("ETH") == 0


def test_snapshot_race_balance_updated_by_stream_after_fetch(cache: Any) -> None:
    """The websocket moved BTC after the REST call read it: the snapshot must not roll it back."""
    cache.apply_account_update(account(1_000, BTC=("1", "0"), USDT=("100", "0")))
    cache.apply_account_update(account(2_500, BTC=("0.5", "0")))  # newer than the snapshot
    snap = snapshot({"BTC": ("1", "0"), "USDT": ("100", "0")}, update_time_ms=2_000)
    assert cache.apply_snapshot(snap, now_ms=3_000) == []
    assert cache.free("BTC") == D("0.5")
    assert cache.balance_update_ms("BTC") == 2_500
    assert cache.balance_update_ms("USDT") == 2_000  # confirmed as of the snapshot


def test_snapshot_adopts_orders_placed_outside_the_bot(cache: Any) -> None:
    ext = open_order(
        "manual-1", oid=77, side="SELL", price="120", cum="0.5", status="PARTIALLY_FILLED", t=900
    )
    alien = open_order("manual-2", oid=78, symbol="XRPUSDT")
    drifts = cache.apply_snapshot(snapshot(orders=(ext, alien), fetched_at_ms=1_000), now_ms=1_100)
    assert drifts == [
        Drift(
            "order.missing_local", "manual-1", "", "PARTIALLY_FILLED", 0, "order placed outside the bot", True
        ),
        Drift("order.missing_local", "manual-2", "", "NEW", 0, "order placed outside the bot", False),
    ]
    assert cache.open_order("manual-1") == ext
    assert cache.open_order("manual-2") is None  # an unregistered symbol cannot be tracked
    # the stream then carries on from the adopted state
    r = rep(
        "FILLED",
        cid="manual-1",
        oid=77,
        side="SELL",
        price="120",
        cum="2",
        last_qty="1.5",
        last_price="120",
        trade_id=3,
        t=1_200,
    )
    assert cache.apply_execution_report(r) == r.fill()
    assert cache.open_order_count() == 0


def test_snapshot_removes_orders_the_venue_lost(cache: Any) -> None:
    cache.apply_execution_report(rep("NEW", cid="a", oid=1, t=1_000))
    cache.apply_execution_report(rep("NEW", cid="b", oid=2, symbol="ETHBTC", price="0.05", t=1_100))
    drifts = cache.apply_snapshot(snapshot(fetched_at_ms=2_000), now_ms=2_100)
    assert drifts == [
        Drift("order.missing_venue", "a", "NEW", "", 1_100, "lost cancel", True),
        Drift("order.missing_venue", "b", "NEW", "", 1_000, "lost cancel", True),
    ]
    assert cache.open_order_count() == 0
    assert cache.apply_execution_report(rep("NEW", cid="a", oid=1, t=1_000)) is None  # stays closed
    assert cache.open_order_count() == 0


def test_snapshot_missing_venue_with_balance_drift_is_a_missed_fill(cache: Any) -> None:
    cache.apply_account_update(account(1_000, BTC=("0", "0"), USDT=("200", "0")))
    cache.apply_execution_report(rep("NEW", cid="a", oid=1, t=1_000))
    snap = snapshot({"BTC": ("2", "0"), "USDT": ("0", "0")}, update_time_ms=1_500, fetched_at_ms=1_500)
    drifts = cache.apply_snapshot(snap, now_ms=1_600)
    assert [(d.field, d.key, d.cause) for d in drifts] == [
        ("balance.free", "BTC", "missed fill"),
        ("balance.free", "USDT", "missed fill"),
        ("order.missing_venue", "a", "missed fill"),
    ]


def test_snapshot_race_order_placed_after_the_snapshot_was_taken(cache: Any) -> None:
    cache.apply_execution_report(rep("NEW", cid="fresh", t=2_000))
    before = everything(cache)
    assert cache.apply_snapshot(snapshot(fetched_at_ms=2_000), now_ms=2_050) == []
    assert everything(cache) == before


def test_snapshot_race_order_cancelled_locally_but_in_older_snapshot(cache: Any) -> None:
    cache.apply_execution_report(rep("NEW", cid="a", oid=1, t=1_000))
    cache.apply_execution_report(rep("CANCELED", cid="a", oid=1, t=2_100))
    snap = snapshot(orders=(open_order("a", oid=1, t=1_000),), fetched_at_ms=2_000)
    assert cache.apply_snapshot(snap, now_ms=2_200) == []
    assert cache.open_order("a") is None


def test_snapshot_cum_qty_drift(cache: Any) -> None:
    cache.apply_execution_report(rep("NEW", cid="ahead", oid=1, t=1_000))
    cache.apply_execution_report(rep("NEW", cid="behind-old", oid=2, t=1_000))
    cache.apply_execution_report(
        rep(
            "PARTIALLY_FILLED",
            cid="behind-old",
            oid=2,
            cum="1",
            last_qty="1",
            last_price="100",
            trade_id=1,
            t=1_100,
        )
    )
    cache.apply_execution_report(rep("NEW", cid="behind-new", oid=3, t=1_000))
    cache.apply_execution_report(
        rep(
            "PARTIALLY_FILLED",
            cid="behind-new",
            oid=3,
            cum="1",
            last_qty="1",
            last_price="100",
            trade_id=2,
            t=2_500,
        )
    )
    venue = (
        open_order("ahead", oid=1, status="PARTIALLY_FILLED", cum="0.5", t=1_900),
        open_order("behind-old", oid=2, t=1_000),
        open_order("behind-new", oid=3, t=1_000),  # our fill came after the snapshot was taken
    )
    drifts = cache.apply_snapshot(snapshot(orders=venue, fetched_at_ms=2_000), now_ms=3_000)
    assert drifts == [
        Drift("order.cum_qty", "ahead", "0", "0.5", 2_000, "missed fill", True),
        Drift("order.cum_qty", "behind-old", "1", "0", 1_900, "unknown", False),
    ]
    ahead = cache.open_order("ahead")
    assert (ahead.cum_qty, ahead.status, ahead.update_time_ms) == (
        D("0.5"),
        OrderStatus.PARTIALLY_FILLED,
        1_900,
    )
    assert cache.open_order("behind-old").cum_qty == D(1)  # never regressed
    assert cache.open_order("behind-new").cum_qty == D(1)


def test_snapshot_with_bad_amount_changes_nothing(cache: Any) -> None:
    cache.apply_account_update(account(1_000, BTC=("1", "0")))
    before = everything(cache)
    with pytest.raises(ValueError):
        cache.apply_snapshot(
            snapshot({"BTC": ("2", "0"), "ETH": ("0.123456789", "0")}, update_time_ms=2_000), now_ms=1
        )
    assert everything(cache) == before


# ------------------------------------------------------------------------------------------------
# the read-only view
# ------------------------------------------------------------------------------------------------

READ_API = {
    "avg_entry_price",
    "balance_update_ms",
    "balances",
    "cost_basis",
    "fees",
    "fees_by_asset",
    "free",
    "last_trade_id",
    "locked",
    "open_order",
    "open_order_count",
    "open_orders",
    "position",
    "realized_pnl",
    "symbols",
    "total",
    "unrealized_pnl",
}


def test_view_exposes_only_reads_of_live_state(pos_mod: ModuleType, cache: Any) -> None:
    view = cache.view()
    assert {a for a in dir(view) if not a.startswith("_")} == READ_API
    assert not isinstance(view, pos_mod.PositionCache)
    cache.apply_fill(fill("BUY", "1", "100", 1))
    cache.apply_account_update(account(1, USDT=("5", "0")))
    cache.apply_execution_report(rep("NEW", t=1))
    assert view.position("BTCUSDT") == D(1)
    assert view.free("USDT") == D(5)
    assert view.open_orders() == cache.open_orders()
    for name in READ_API:
        assert getattr(view, name).__self__ is view  # no bound method leads back to the cache


def test_view_cannot_mutate_or_reach_the_cache(pos_mod: ModuleType, cache: Any) -> None:
    view = cache.view()
    for name in (
        "apply_execution_report",
        "apply_fill",
        "apply_account_update",
        "apply_snapshot",
        "add_instrument",
    ):
        assert not hasattr(view, name)
    with pytest.raises(AttributeError):
        view.position = lambda symbol: D(0)  # type: ignore[method-assign]
    with pytest.raises(AttributeError):
        view.cache = cache  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        pos_mod.PositionView()
    with pytest.raises(TypeError):
        pickle.dumps(view)
    with pytest.raises(TypeError):
        copy.copy(view)
    # nothing public on the view is (or holds) the writer
    for name in dir(view):
        if name.startswith("_"):
            continue
        assert getattr(view, name) is not cache
    assert cache.view() is not view and cache.view().position("BTCUSDT") == view.position("BTCUSDT")
