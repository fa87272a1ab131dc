"""Fills, money and user-data events: takers walking the book, resting orders filled by the replay,
IOC/FOK/quote-sized market orders, STP, commissions and their rounding, locked funds."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from botcore_exchange_paper.accounts import UNIT_DP
from botcore_exchange_paper.config import AccountSpec
from botcore_exchange_paper.errors import BinanceError
from botcore_exchange_paper.testing import KEY, KEY2, Recorder, diff, make_venue, ticker, trade
from botcore_exchange_paper.venue import Venue

BIDS = [(100, 1), (99, 2)]
ASKS = [(101, 1), (102, 2)]
UNIT = 10**UNIT_DP


def acct(venue: Venue, key: str = KEY) -> Any:
    a = venue.account_for_key(key)
    assert a is not None
    return a


def units(account: Any, asset: str) -> tuple[int, int]:
    return account.free.get(asset, 0), account.locked.get(asset, 0)


def total_units(venue: Venue, asset: str) -> int:
    return sum(a.free.get(asset, 0) + a.locked.get(asset, 0) for a in venue.ledger.all_accounts())


def order(side: str, type_: str = "LIMIT", **kw: str) -> dict[str, str]:
    out = {"symbol": "BTCUSDT", "side": side, "type": type_}
    if type_ == "LIMIT":
        out["timeInForce"] = kw.pop("timeInForce", "GTC")
    out.update(kw)
    return out


@pytest.fixture
def venue(tmp_path: Path) -> Venue:
    return make_venue(tmp_path, BIDS, ASKS, [])


@pytest.fixture
def rec(venue: Venue) -> Recorder:
    r = Recorder()
    venue.add_listener(r)
    return r


# ----------------------------------------------------------------------------------------------
# takers
# ----------------------------------------------------------------------------------------------


def test_market_buy_walks_levels_with_taker_fees_in_base(venue: Venue, rec: Recorder) -> None:
    a = acct(venue)
    resp = venue.place_order(a, order("BUY", "MARKET", quantity="1.5"))
    assert resp["status"] == "FILLED" and resp["executedQty"] == "1.50000000"
    assert [(f["price"], f["qty"], f["commission"], f["commissionAsset"]) for f in resp["fills"]] == [
        ("101.00000000", "1.00000000", "0.00100000", "BTC"),
        ("102.00000000", "0.50000000", "0.00050000", "BTC"),
    ]
    assert resp["cummulativeQuoteQty"] == "152.00000000"
    assert units(a, "BTC") == (int(Decimal("11.4985") * UNIT), 0)
    assert units(a, "USDT") == ((100_000 - 152) * UNIT, 0)
    assert venue.ledger.fees.free["BTC"] == int(Decimal("0.0015") * UNIT)
    reps = rec.reports()
    assert [(r["x"], r["X"], r["l"], r["z"], r["m"]) for r in reps] == [
        ("NEW", "NEW", "0.00000000", "0.00000000", False),
        ("TRADE", "PARTIALLY_FILLED", "1.00000000", "1.00000000", False),
        ("TRADE", "FILLED", "0.50000000", "1.50000000", False),
    ]
    assert reps[2]["Z"] == "152.00000000" and reps[2]["Y"] == "51.00000000" and reps[2]["L"] == "102.00000000"
    assert reps[1]["t"] != -1 and reps[1]["t"] != reps[2]["t"] and reps[1]["n"] == "0.00100000"
    assert [e["e"] for _, e in rec.user][-1] == "outboundAccountPosition"
    # the taker consumed the displayed asks: the served book no longer shows them
    assert venue.depth("BTCUSDT", 1)["asks"] == [["102.00000000", "1.50000000"]]
    prints = rec.streams("@trade")
    assert [(p["p"], p["q"], p["m"]) for p in prints] == [("101.00000000", "1.00000000", False),
                                                           ("102.00000000", "0.50000000", False)]
    assert all(p["t"] >= 10**12 for p in prints)


def test_market_by_quote_quantity(venue: Venue) -> None:
    a = acct(venue)
    resp = venue.place_order(a, order("BUY", "MARKET", quoteOrderQty="150"))
    # 1 @ 101 (101 USDT), then floor((49 / 102) to 0.00001) = 0.48039 @ 102 (48.99978 USDT)
    assert resp["origQty"] == "1.48039000" and resp["executedQty"] == "1.48039000"
    assert resp["origQuoteOrderQty"] == "150.00000000" and resp["cummulativeQuoteQty"] == "149.99978000"
    assert resp["status"] == "FILLED"
    assert units(a, "USDT") == (int(Decimal("99850.00022") * UNIT), 0)


def test_market_sell_beyond_the_book_expires_the_rest(venue: Venue, rec: Recorder) -> None:
    resp = venue.place_order(acct(venue), order("SELL", "MARKET", quantity="5"))
    assert resp["status"] == "EXPIRED" and resp["executedQty"] == "3.00000000"
    assert resp["expiryReason"] == "INSUFFICIENT_LIQUIDITY"
    last = rec.reports()[-1]
    assert (last["x"], last["X"], last["eR"]) == ("EXPIRED", "EXPIRED", "INSUFFICIENT_LIQUIDITY")
    assert units(acct(venue), "BTC") == (7 * UNIT, 0)  # the unfilled 2 BTC were released


@pytest.mark.parametrize(
    ("tif", "qty", "status", "executed"),
    [("IOC", "2", "EXPIRED", "1.00000000"), ("FOK", "2", "EXPIRED", "0.00000000"), ("FOK", "1", "FILLED", "1.00000000"),
     ("IOC", "0.5", "FILLED", "0.50000000")],
)
def test_ioc_fok(venue: Venue, tif: str, qty: str, status: str, executed: str) -> None:
    a = acct(venue)
    resp = venue.place_order(a, order("BUY", quantity=qty, price="101", timeInForce=tif))
    assert (resp["status"], resp["executedQty"]) == (status, executed)
    assert venue.open_orders(a) == []
    assert a.locked.get("USDT", 0) == 0


def test_marketable_limit_rests_its_remainder_with_the_right_lock(venue: Venue) -> None:
    a = acct(venue)
    resp = venue.place_order(a, order("BUY", quantity="1.5", price="101"))
    assert resp["status"] == "PARTIALLY_FILLED" and resp["executedQty"] == "1.00000000"
    assert units(a, "USDT")[1] == int(Decimal("50.5") * UNIT)  # exactly price * remaining
    top = venue.book_ticker("BTCUSDT")
    assert isinstance(top, dict)
    assert (top["bidPrice"], top["bidQty"], top["askPrice"]) == ("101.00000000", "0.50000000", "102.00000000")


def test_a3_after_consumption_refresh(tmp_path: Path) -> None:
    """The recording refreshes the consumed ask at 101: A3 fills the resting remainder there, as maker."""
    v = make_venue(tmp_path, BIDS, ASKS, [diff(101, 101, asks=[(101, "0.3")])])
    a = acct(v)
    v.place_order(a, order("BUY", quantity="1.5", price="101"))
    v.step(1)
    o = v.order("BTCUSDT", 1)
    assert o is not None and o.status == "FILLED"
    fills = v.my_trades(a, {"symbol": "BTCUSDT"})
    assert [(t["qty"], t["isMaker"]) for t in fills] == [("1.00000000", False), ("0.50000000", True)]


def test_a7_partial_fills_from_the_replay_and_5318_funds_locked_at_acceptance(tmp_path: Path) -> None:
    events = [trade(1, 100, "1.02", True), trade(2, 100, "0.03", True), trade(3, "99.99", "0.01", True)]
    v = make_venue(tmp_path, BIDS, ASKS, events,
                   accounts=[AccountSpec(KEY, "s", {"USDT": Decimal(5)})])
    rec = Recorder()
    v.add_listener(rec)
    a = acct(v)
    v.place_order(a, order("BUY", quantity="0.05", price="100"))  # exactly all the USDT
    assert units(a, "USDT") == (0, 5 * UNIT)
    with pytest.raises(BinanceError) as err:  # locked funds cannot be spent twice
        v.place_order(a, order("BUY", quantity="0.06", price="99"))
    assert err.value.msg == "Account has insufficient balance for requested action."
    rec.clear()
    v.step(3)
    reps = rec.reports()
    assert [(r["x"], r["X"], r["l"], r["m"], r["w"]) for r in reps] == [
        ("TRADE", "PARTIALLY_FILLED", "0.02000000", True, True),  # 1.02 traded, 1 was ahead of us
        ("TRADE", "FILLED", "0.03000000", True, False),
    ]
    # maker fees in base; nothing was lost or created
    assert units(a, "USDT") == (0, 0)
    assert units(a, "BTC") == (int(Decimal("0.04995") * UNIT), 0)
    assert total_units(v, "USDT") == 0 and total_units(v, "BTC") == 0


def test_commission_rounds_half_up_and_the_fee_account_gets_exactly_it(tmp_path: Path) -> None:
    v = make_venue(tmp_path, [("101.11", 1)], [(102, 1)], [])
    a = acct(v)
    resp = v.place_order(a, order("SELL", "MARKET", quantity="0.04951"))
    # 101.11 * 0.04951 = 5.0059561 USDT; * 0.001 = 0.0050059561 -> 0.00500596 (half-up)
    assert resp["fills"][0]["commission"] == "0.00500596"
    assert v.ledger.fees.free["USDT"] == 500596
    assert units(a, "USDT")[0] == 100_000 * UNIT + 500595610 - 500596


# ----------------------------------------------------------------------------------------------
# self-trade prevention (taker's mode decides; symbol default EXPIRE_MAKER)
# ----------------------------------------------------------------------------------------------


def _own_ask(v: Venue, qty: str = "1") -> dict[str, Any]:
    return v.place_order(acct(v), order("SELL", quantity=qty, price="100.50", newClientOrderId="maker"))


def test_stp_default_expire_maker(venue: Venue, rec: Recorder) -> None:
    _own_ask(venue)
    rec.clear()
    resp = venue.place_order(acct(venue), order("BUY", quantity="1", price="102"))
    assert resp["status"] == "FILLED" and resp["fills"][0]["price"] == "101.00000000"
    assert resp["preventedMatches"] == [{"preventedMatchId": 0, "makerOrderId": 1, "price": "100.50000000",
                                         "makerPreventedQuantity": "1.00000000"}]
    maker = venue.query_order(acct(venue), {"symbol": "BTCUSDT", "orderId": "1"})
    assert maker["status"] == "EXPIRED_IN_MATCH" and maker["preventedQuantity"] == "1.00000000"
    prevention = [r for r in rec.reports() if r["x"] == "TRADE_PREVENTION"]
    assert [(r["i"], r["X"], r["v"], r["A"], r["B"], r["U"]) for r in prevention] == [
        (1, "EXPIRED_IN_MATCH", 0, "1.00000000", "1.00000000", 2)]
    assert units(acct(venue), "BTC")[1] == 0


def test_stp_expire_taker(venue: Venue) -> None:
    _own_ask(venue)
    resp = venue.place_order(acct(venue), order("BUY", quantity="1", price="102",
                                                selfTradePreventionMode="EXPIRE_TAKER"))
    assert resp["status"] == "EXPIRED_IN_MATCH" and resp["fills"] == []
    assert resp["preventedQuantity"] == "1.00000000"
    assert venue.query_order(acct(venue), {"symbol": "BTCUSDT", "orderId": "1"})["status"] == "NEW"
    assert units(acct(venue), "USDT")[1] == 0


def test_stp_expire_both(venue: Venue) -> None:
    _own_ask(venue)
    resp = venue.place_order(acct(venue), order("BUY", quantity="3", price="102",
                                                selfTradePreventionMode="EXPIRE_BOTH"))
    assert resp["status"] == "EXPIRED_IN_MATCH"
    assert resp["preventedMatches"][0]["takerPreventedQuantity"] == "3.00000000"
    assert venue.query_order(acct(venue), {"symbol": "BTCUSDT", "orderId": "1"})["status"] == "EXPIRED_IN_MATCH"
    a = acct(venue)
    assert a.locked.get("USDT", 0) == 0 and a.locked.get("BTC", 0) == 0


def test_stp_none_self_trades_with_fees_on_both_sides(venue: Venue) -> None:
    a = acct(venue)
    _own_ask(venue)
    resp = venue.place_order(a, order("BUY", quantity="1", price="102", selfTradePreventionMode="NONE"))
    assert resp["fills"][0]["price"] == "100.50000000"
    assert venue.query_order(a, {"symbol": "BTCUSDT", "orderId": "1"})["status"] == "FILLED"
    trades = venue.my_trades(a, {"symbol": "BTCUSDT"})
    assert {(t["isBuyer"], t["isMaker"]) for t in trades} == {(True, False), (False, True)}
    assert trades[0]["id"] == trades[1]["id"]
    assert venue.ledger.fees.free["BTC"] == int(Decimal("0.001") * UNIT)
    assert venue.ledger.fees.free["USDT"] == int(Decimal("0.1005") * UNIT)


def test_stp_decrement(venue: Venue) -> None:
    a = acct(venue)
    _own_ask(venue, "1")
    resp = venue.place_order(a, order("BUY", quantity="0.4", price="102", selfTradePreventionMode="DECREMENT"))
    assert resp["status"] == "EXPIRED_IN_MATCH" and resp["executedQty"] == "0.00000000"
    maker = venue.query_order(a, {"symbol": "BTCUSDT", "orderId": "1"})
    assert maker["status"] == "NEW" and maker["preventedQuantity"] == "0.40000000"
    assert units(a, "BTC")[1] == int(Decimal("0.6") * UNIT)  # the lock follows the available quantity
    assert venue.depth("BTCUSDT", 1)["asks"] == [["100.50000000", "0.60000000"]]


def test_other_accounts_trade_normally(venue: Venue, rec: Recorder) -> None:
    _own_ask(venue)
    resp = venue.place_order(acct(venue, KEY2), order("BUY", quantity="0.4", price="100.50"))
    assert resp["status"] == "FILLED" and resp["fills"][0]["price"] == "100.50000000"
    maker_trade = [r for r in rec.reports(KEY) if r["x"] == "TRADE"]
    assert [(r["X"], r["m"], r["l"], r["N"]) for r in maker_trade] == [("PARTIALLY_FILLED", True, "0.40000000", "USDT")]
    assert {k for k, e in rec.user if e["e"] == "outboundAccountPosition"} == {KEY, KEY2}


# ----------------------------------------------------------------------------------------------
# trades history, external orders, lost events, latency
# ----------------------------------------------------------------------------------------------


def test_my_trades_filters(tmp_path: Path) -> None:
    clock = [1000]
    v = make_venue(tmp_path, BIDS, [(101, 10)], [])
    v._clock = lambda: clock[0]
    a = acct(v)
    ids = []
    for i in range(5):
        clock[0] = 1000 + i * 1000
        ids.append(v.place_order(a, order("BUY", "MARKET", quantity="0.1"))["fills"][0]["tradeId"])
    all_ = v.my_trades(a, {"symbol": "BTCUSDT"})
    assert [t["id"] for t in all_] == ids and all_[0]["quoteQty"] == "10.10000000"
    assert [t["id"] for t in v.my_trades(a, {"symbol": "BTCUSDT", "limit": "2"})] == ids[-2:]
    assert [t["id"] for t in v.my_trades(a, {"symbol": "BTCUSDT", "fromId": str(ids[3])})] == ids[3:]
    assert [t["id"] for t in v.my_trades(a, {"symbol": "BTCUSDT", "orderId": "2"})] == [ids[1]]
    assert [t["id"] for t in v.my_trades(a, {"symbol": "BTCUSDT", "startTime": "2000", "endTime": "3000"})] == ids[1:3]
    with pytest.raises(BinanceError) as err:
        v.my_trades(a, {"symbol": "BTCUSDT", "startTime": "0", "endTime": str(86_400_001)})
    assert err.value.code == -1127
    assert v.my_trades(acct(v, KEY2), {"symbol": "BTCUSDT"}) == []


def test_external_order_and_lost_user_event(venue: Venue, rec: Recorder) -> None:
    a = acct(venue)
    resp = venue.external_order(a, order("BUY", quantity="0.1", price="99"))
    assert resp["clientOrderId"].startswith("web_")
    o = venue.order("BTCUSDT", resp["orderId"])
    assert o is not None and o.external
    rec.clear()
    venue.drop_next_user_event(KEY)
    venue.cancel_order(a, {"symbol": "BTCUSDT", "orderId": str(resp["orderId"])})
    assert [e["e"] for _, e in rec.user] == ["outboundAccountPosition"]  # the CANCELED report was lost


def test_entry_latency_executes_against_the_later_market(tmp_path: Path) -> None:
    # events are 10 ms apart in the capture: the ask at 101 disappears 10 ms after the snapshot
    events = [diff(101, 101, asks=[(101, 0)]), diff(102, 102, [(98, 1)])]
    v0 = make_venue(tmp_path, BIDS, ASKS, events, name="a.txt")
    assert v0.place_order(acct(v0), order("BUY", "MARKET", quantity="0.5"))["fills"][0]["price"] == "101.00000000"
    v = make_venue(tmp_path, BIDS, ASKS, events, name="b.txt", fill_kwargs={"entry_latency_ms": 15})
    before = v.events_processed
    resp = v.place_order(acct(v), order("BUY", "MARKET", quantity="0.5"))
    assert v.events_processed == before + 1
    assert resp["fills"][0]["price"] == "102.00000000"


def test_user_events_wait_for_the_response_latency(tmp_path: Path) -> None:
    import asyncio

    v = make_venue(tmp_path, BIDS, ASKS, [], fill_kwargs={"response_latency_ms": 30})
    rec = Recorder()
    v.add_listener(rec)
    assert v.response_delay_s() == pytest.approx(0.03)

    async def main() -> tuple[int, int]:
        v.place_order(acct(v), order("BUY", quantity="0.1", price="99"))
        n0 = len(rec.user)
        await asyncio.sleep(0.1)
        return n0, len(rec.user)

    assert asyncio.run(main()) == (0, 2)


def test_ticker_driven_fill_of_a_resting_sell(tmp_path: Path) -> None:
    v = make_venue(tmp_path, BIDS, ASKS, [ticker(101, "100.50", 2, 101, 1)])
    a = acct(v)
    v.place_order(a, order("SELL", quantity="0.2", price="100.50"))
    v.step(1)  # the best bid reached our ask (A3)
    o = v.order("BTCUSDT", 1)
    assert o is not None and o.status == "FILLED"
    assert units(a, "USDT")[0] == 100_000 * UNIT + int(Decimal("20.1") * UNIT) - int(Decimal("0.0201") * UNIT)


def test_deposit_and_withdrawal_emit_balance_updates(venue: Venue, rec: Recorder) -> None:
    a = acct(venue)
    assert venue.deposit(a, "bnb", Decimal("1.5")) == {"asset": "BNB", "free": "1.50000000", "locked": "0.00000000"}
    assert [e["e"] for _, e in rec.user] == ["balanceUpdate", "outboundAccountPosition"]
    assert rec.user[0][1]["d"] == "1.50000000" and rec.user[0][1]["a"] == "BNB"
    venue.deposit(a, "USDT", Decimal("-100"))
    assert rec.user[2][1]["d"] == "-100.00000000"
    with pytest.raises(BinanceError) as err:
        venue.deposit(a, "BNB", Decimal("-2"))
    assert err.value.code == -2010
    assert total_units(venue, "BNB") == 0 and total_units(venue, "USDT") == 0


def test_a9_cancel_replace_goes_to_the_back_of_the_queue(tmp_path: Path) -> None:
    v = make_venue(tmp_path, BIDS, ASKS, [trade(1, 100, "0.6", True)])
    a = acct(v)
    v.place_order(a, order("BUY", quantity="0.1", price="100"))
    v.step(1)  # 0.6 of the 1 BTC ahead of us traded
    old = v.order("BTCUSDT", 1)
    assert old is not None and old.a == pytest.approx(0.4 * UNIT)
    resp = v.cancel_replace(a, order("BUY", quantity="0.1", price="100", cancelOrderId="1",
                                     cancelReplaceMode="STOP_ON_FAILURE"))
    new = v.order("BTCUSDT", resp["newOrderResponse"]["orderId"])
    assert new is not None and new.a == 1 * UNIT  # a fresh entry: the whole recorded level is ahead again
