"""Order entry exactly as Binance: validation order and messages, responses, cancels, queries, cancelReplace.

Every test builds a venue over a tiny hand-made recording (botcore_exchange_paper.testing):
bids 100 x 1, 99 x 2; asks 101 x 1, 102 x 2 (BTCUSDT rules: tick 0.01, step 0.00001, min notional 5).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from botcore_exchange_paper.errors import BinanceError
from botcore_exchange_paper.testing import KEY, KEY2, Recorder, diff, make_venue
from botcore_exchange_paper.venue import Venue

BIDS = [(100, 1), (99, 2)]
ASKS = [(101, 1), (102, 2)]
NOW = 1_700_000_000_000
LIMIT_BUY = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.1",
             "price": "100"}


@pytest.fixture
def venue(tmp_path: Path) -> Venue:
    return make_venue(tmp_path, BIDS, ASKS, [diff(101, 101, [(98, 1)])])


@pytest.fixture
def rec(venue: Venue) -> Recorder:
    r = Recorder()
    venue.add_listener(r)
    return r


def acct(venue: Venue, key: str = KEY) -> Any:
    a = venue.account_for_key(key)
    assert a is not None
    return a


def with_(base: dict[str, str], **kw: str | None) -> dict[str, str]:
    out = dict(base)
    for k, v in kw.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def balances(venue: Venue, key: str = KEY) -> dict[str, tuple[str, str]]:
    return {b["asset"]: (b["free"], b["locked"]) for b in venue.account_info(acct(venue, key))["balances"]}


# ----------------------------------------------------------------------------------------------
# validation: order of checks and exact messages
# ----------------------------------------------------------------------------------------------
MANDATORY = "Mandatory parameter '{}' was not sent, was empty/null, or malformed."
DECIMAL = "Illegal characters found in parameter '{}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'."

VALIDATION = [
    ("missing symbol", with_(LIMIT_BUY, symbol=None), -1102, MANDATORY.format("symbol")),
    ("missing price", with_(LIMIT_BUY, price=None), -1102, MANDATORY.format("price")),
    ("empty quantity", with_(LIMIT_BUY, quantity=""), -1102, MANDATORY.format("quantity")),
    ("missing timeInForce", with_(LIMIT_BUY, timeInForce=None), -1102, MANDATORY.format("timeInForce")),
    ("market without size", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET"}, -1102,
     "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!"),
    ("scientific notation", with_(LIMIT_BUY, price="1e2"), -1100, DECIMAL.format("price")),
    ("negative quantity", with_(LIMIT_BUY, quantity="-1"), -1100, DECIMAL.format("quantity")),
    ("malformed before symbol", with_(LIMIT_BUY, symbol="NOPE", price="1,5"), -1100, DECIMAL.format("price")),
    ("unknown symbol", with_(LIMIT_BUY, symbol="NOPEUSDT"), -1121, "Invalid symbol."),
    ("bad type", with_(LIMIT_BUY, type="FOO"), -1116, "Invalid orderType."),
    ("bad side", with_(LIMIT_BUY, side="HOLD"), -1117, "Invalid side."),
    ("bad tif", with_(LIMIT_BUY, timeInForce="GTD"), -1115, "Invalid timeInForce."),
    ("tif on LIMIT_MAKER", with_(LIMIT_BUY, type="LIMIT_MAKER"), -1106,
     "Parameter 'timeInForce' sent when not required."),
    ("tif on MARKET", with_(LIMIT_BUY, type="MARKET", price=None), -1106,
     "Parameter 'timeInForce' sent when not required."),
    ("too much precision", with_(LIMIT_BUY, quantity="0.123456789"), -1111,
     "Parameter 'quantity' has too much precision."),
    ("off tick", with_(LIMIT_BUY, price="100.001"), -1013, "Filter failure: PRICE_FILTER"),
    ("price filter before lot size", with_(LIMIT_BUY, price="100.001", quantity="0.000001"), -1013,
     "Filter failure: PRICE_FILTER"),
    ("below min qty", with_(LIMIT_BUY, quantity="0.000001"), -1013, "Filter failure: LOT_SIZE"),
    ("off step", with_(LIMIT_BUY, quantity="0.100005"), -1013, "Filter failure: LOT_SIZE"),
    ("percent price", with_(LIMIT_BUY, price="600"), -1013, "Filter failure: PERCENT_PRICE_BY_SIDE"),
    ("min notional", with_(LIMIT_BUY, quantity="0.01"), -1013, "Filter failure: NOTIONAL"),
    ("market lot size", {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "98"}, -1013,
     "Filter failure: MARKET_LOT_SIZE"),
    ("stp mode not allowed", with_(LIMIT_BUY, selfTradePreventionMode="TRANSFER"), -1013,
     "This symbol does not allow the specified self-trade prevention mode."),
    ("insufficient balance", with_(LIMIT_BUY, quantity="1001"), -2010,
     "Account has insufficient balance for requested action."),
    ("balance before post-only crossing", with_(LIMIT_BUY, type="LIMIT_MAKER", timeInForce=None, price="101",
                                                 quantity="1000"), -2010,
     "Account has insufficient balance for requested action."),
    ("post-only crossing", with_(LIMIT_BUY, type="LIMIT_MAKER", timeInForce=None, price="101"), -2010,
     "Order would immediately match and take."),
    ("bad client id", with_(LIMIT_BUY, newClientOrderId="bad id!"), -1100,
     "Illegal characters found in parameter 'newClientOrderId'; legal range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'."),
]


@pytest.mark.parametrize(("name", "params", "code", "msg"), VALIDATION, ids=[c[0] for c in VALIDATION])
def test_validation_order_and_messages(venue: Venue, rec: Recorder, name: str, params: dict[str, str],
                                       code: int, msg: str) -> None:
    before = balances(venue)
    with pytest.raises(BinanceError) as err:
        venue.place_order(acct(venue), params)
    assert (err.value.code, err.value.msg, err.value.http_status) == (code, msg, 400)
    assert err.value.body() == {"code": code, "msg": msg}
    # a rejected order creates nothing: no order, no event, no balance change
    assert venue.open_orders(acct(venue)) == []
    assert rec.user == []
    assert balances(venue) == before
    assert venue.order("BTCUSDT", 1) is None


def test_duplicate_client_id_among_open_orders_only(venue: Venue) -> None:
    a = acct(venue)
    venue.place_order(a, with_(LIMIT_BUY, newClientOrderId="mm-1"))
    with pytest.raises(BinanceError) as err:
        venue.place_order(a, with_(LIMIT_BUY, newClientOrderId="mm-1"))
    assert (err.value.code, err.value.msg) == (-2010, "Duplicate order sent.")
    venue.cancel_order(a, {"symbol": "BTCUSDT", "origClientOrderId": "mm-1"})
    assert venue.place_order(a, with_(LIMIT_BUY, newClientOrderId="mm-1"))["clientOrderId"] == "mm-1"
    # another account may use the same id
    assert venue.place_order(acct(venue, KEY2), with_(LIMIT_BUY, newClientOrderId="mm-1"))["status"] == "NEW"


def test_max_num_orders(tmp_path: Path) -> None:
    v = make_venue(tmp_path, BIDS, ASKS, [])
    a = acct(v)
    for i in range(200):
        v.place_order(a, with_(LIMIT_BUY, price=f"{50 + i * 0.01:.2f}"))
    with pytest.raises(BinanceError) as err:
        v.place_order(a, LIMIT_BUY)
    assert err.value.msg == "Filter failure: MAX_NUM_ORDERS"


def test_order_test_endpoint_validates_without_creating(venue: Venue) -> None:
    a = acct(venue)
    assert venue.place_order(a, LIMIT_BUY, test=True) == {}
    rates = venue.place_order(a, with_(LIMIT_BUY, computeCommissionRates="true"), test=True)
    assert rates["standardCommissionForOrder"] == {"maker": "0.00100000", "taker": "0.00100000"}
    with pytest.raises(BinanceError):
        venue.place_order(a, with_(LIMIT_BUY, price="1e2"), test=True)
    assert venue.open_orders(a) == []


# ----------------------------------------------------------------------------------------------
# responses and events
# ----------------------------------------------------------------------------------------------


def test_response_types_and_defaults(venue: Venue) -> None:
    a = acct(venue)
    full = venue.place_order(a, LIMIT_BUY)
    assert full == {
        "symbol": "BTCUSDT", "orderId": 1, "orderListId": -1, "clientOrderId": full["clientOrderId"],
        "transactTime": NOW, "price": "100.00000000", "origQty": "0.10000000", "executedQty": "0.00000000",
        "origQuoteOrderQty": "0.00000000", "cummulativeQuoteQty": "0.00000000", "status": "NEW",
        "timeInForce": "GTC", "type": "LIMIT", "side": "BUY", "workingTime": NOW, "fills": [],
        "selfTradePreventionMode": "EXPIRE_MAKER",
    }
    assert len(full["clientOrderId"]) == 22
    ack = venue.place_order(a, with_(LIMIT_BUY, type="LIMIT_MAKER", timeInForce=None, price="99"))
    assert set(ack) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
    assert ack["orderId"] == 2
    result = venue.place_order(a, with_(LIMIT_BUY, price="98", newOrderRespType="RESULT"))
    assert "fills" not in result and result["status"] == "NEW"
    market = venue.place_order(a, {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.1"})
    assert market["fills"] and market["status"] == "FILLED"


def test_resting_order_events_and_locking(venue: Venue, rec: Recorder) -> None:
    a = acct(venue)
    venue.place_order(a, with_(LIMIT_BUY, newClientOrderId="b1"))
    assert [e["e"] for _, e in rec.user] == ["executionReport", "outboundAccountPosition"]
    new = rec.reports()[0]
    assert (new["x"], new["X"], new["w"], new["c"], new["C"], new["i"]) == ("NEW", "NEW", True, "b1", "", 1)
    assert (new["n"], new["N"], new["t"], new["z"], new["Z"]) == ("0", None, -1, "0.00000000", "0.00000000")
    pos = rec.user_events(kind="outboundAccountPosition")[0]
    assert pos["B"] == [{"a": "USDT", "f": "99990.00000000", "l": "10.00000000"}]
    assert pos["u"] == NOW
    assert balances(venue)["USDT"] == ("99990.00000000", "10.00000000")


def test_cancel_by_order_id_and_client_id(venue: Venue, rec: Recorder) -> None:
    a = acct(venue)
    o1 = venue.place_order(a, with_(LIMIT_BUY, newClientOrderId="b1"))
    venue.place_order(a, with_(LIMIT_BUY, newClientOrderId="b2", price="99"))
    rec.clear()
    resp = venue.cancel_order(a, {"symbol": "BTCUSDT", "orderId": str(o1["orderId"]), "newClientOrderId": "cx1"})
    assert resp == {
        "symbol": "BTCUSDT", "origClientOrderId": "b1", "orderId": 1, "orderListId": -1, "clientOrderId": "cx1",
        "transactTime": NOW, "price": "100.00000000", "origQty": "0.10000000", "executedQty": "0.00000000",
        "origQuoteOrderQty": "0.00000000", "cummulativeQuoteQty": "0.00000000", "status": "CANCELED",
        "timeInForce": "GTC", "type": "LIMIT", "side": "BUY", "selfTradePreventionMode": "EXPIRE_MAKER",
    }
    rep = rec.reports()[0]
    assert (rep["x"], rep["X"], rep["c"], rep["C"], rep["w"]) == ("CANCELED", "CANCELED", "cx1", "b1", False)
    assert rec.user[-1][1]["e"] == "outboundAccountPosition"
    resp2 = venue.cancel_order(a, {"symbol": "BTCUSDT", "origClientOrderId": "b2"})
    assert resp2["orderId"] == 2 and resp2["origClientOrderId"] == "b2" and resp2["clientOrderId"] != "b2"
    assert balances(venue)["USDT"] == ("100000.00000000", "0.00000000")
    for params in ({"symbol": "BTCUSDT", "orderId": "1"}, {"symbol": "BTCUSDT", "orderId": "77"},
                   {"symbol": "BTCUSDT", "origClientOrderId": "zz"}):
        with pytest.raises(BinanceError) as err:
            venue.cancel_order(a, params)
        assert (err.value.code, err.value.msg) == (-2011, "Unknown order sent.")
    with pytest.raises(BinanceError) as err:
        venue.cancel_order(a, {"symbol": "BTCUSDT"})
    assert err.value.msg == "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"


def test_cancel_of_another_accounts_order_is_unknown(venue: Venue) -> None:
    o = venue.place_order(acct(venue), LIMIT_BUY)
    with pytest.raises(BinanceError) as err:
        venue.cancel_order(acct(venue, KEY2), {"symbol": "BTCUSDT", "orderId": str(o["orderId"])})
    assert err.value.code == -2011


def test_cancel_restrictions(venue: Venue) -> None:
    a = acct(venue)
    venue.place_order(a, LIMIT_BUY)
    with pytest.raises(BinanceError) as err:
        venue.cancel_order(a, {"symbol": "BTCUSDT", "orderId": "1", "cancelRestrictions": "ONLY_PARTIALLY_FILLED"})
    assert (err.value.code, err.value.msg) == (-2011, "Order was not canceled due to cancel restrictions.")
    with pytest.raises(BinanceError) as err:
        venue.cancel_order(a, {"symbol": "BTCUSDT", "orderId": "1", "cancelRestrictions": "SOMETIMES"})
    assert err.value.code == -1145
    assert venue.cancel_order(a, {"symbol": "BTCUSDT", "orderId": "1", "cancelRestrictions": "ONLY_NEW"})["status"] == "CANCELED"


def test_query_open_orders_and_cancel_all(venue: Venue) -> None:
    a = acct(venue)
    with pytest.raises(BinanceError) as err:
        venue.query_order(a, {"symbol": "BTCUSDT", "orderId": "1"})
    assert (err.value.code, err.value.msg) == (-2013, "Order does not exist.")
    with pytest.raises(BinanceError) as err:
        venue.cancel_open_orders(a, {"symbol": "BTCUSDT"})
    assert (err.value.code, err.value.msg) == (-2011, "Unknown order sent.")
    venue.place_order(a, with_(LIMIT_BUY, newClientOrderId="q1"))
    venue.place_order(a, with_(LIMIT_BUY, price="99"))
    q = venue.query_order(a, {"symbol": "BTCUSDT", "origClientOrderId": "q1"})
    assert q["status"] == "NEW" and q["isWorking"] is True and q["stopPrice"] == "0.00000000"
    assert q["time"] == q["updateTime"] == NOW
    assert [o["orderId"] for o in venue.open_orders(a, "BTCUSDT")] == [1, 2]
    assert venue.open_orders(acct(venue, KEY2)) == []
    with pytest.raises(BinanceError):
        venue.open_orders(a, "NOPE")
    canceled = venue.cancel_open_orders(a, {"symbol": "BTCUSDT"})
    assert [c["status"] for c in canceled] == ["CANCELED", "CANCELED"]
    assert venue.open_orders(a) == []
    assert venue.query_order(a, {"symbol": "BTCUSDT", "orderId": "1"})["status"] == "CANCELED"


# ----------------------------------------------------------------------------------------------
# cancelReplace
# ----------------------------------------------------------------------------------------------
REPLACE = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.1",
           "price": "99", "cancelReplaceMode": "STOP_ON_FAILURE"}


def test_cancel_replace_success_starts_a_new_queue_entry(venue: Venue, rec: Recorder) -> None:
    a = acct(venue)
    venue.place_order(a, with_(LIMIT_BUY, newClientOrderId="old"))
    old = venue.order("BTCUSDT", 1)
    assert old is not None and old.a == 1 * 10**8
    rec.clear()
    resp = venue.cancel_replace(a, with_(REPLACE, cancelOrigClientOrderId="old", price="100",
                                         newClientOrderId="new", cancelNewClientOrderId="cx"))
    assert (resp["cancelResult"], resp["newOrderResult"]) == ("SUCCESS", "SUCCESS")
    assert resp["cancelResponse"]["clientOrderId"] == "cx" and resp["cancelResponse"]["origClientOrderId"] == "old"
    assert resp["newOrderResponse"]["clientOrderId"] == "new" and resp["newOrderResponse"]["fills"] == []
    new = venue.order("BTCUSDT", resp["newOrderResponse"]["orderId"])
    assert new is not None and new.a == 1 * 10**8  # back of the queue again (A9)
    assert [e["x"] for e in rec.reports()] == ["CANCELED", "NEW"]
    assert rec.user[-1][1]["e"] == "outboundAccountPosition"


def test_cancel_replace_stop_on_failure(venue: Venue) -> None:
    with pytest.raises(BinanceError) as err:
        venue.cancel_replace(acct(venue), with_(REPLACE, cancelOrderId="42"))
    e = err.value
    assert (e.code, e.msg, e.http_status) == (-2022, "Order cancel-replace failed.", 400)
    assert e.body()["data"] == {"cancelResult": "FAILURE", "newOrderResult": "NOT_ATTEMPTED",
                                "cancelResponse": {"code": -2011, "msg": "Unknown order sent."},
                                "newOrderResponse": None}
    assert venue.open_orders(acct(venue)) == []


def test_cancel_replace_allow_failure_places_the_new_order(venue: Venue) -> None:
    with pytest.raises(BinanceError) as err:
        venue.cancel_replace(acct(venue), with_(REPLACE, cancelOrderId="42", cancelReplaceMode="ALLOW_FAILURE"))
    e = err.value
    assert (e.code, e.msg, e.http_status) == (-2021, "Order cancel-replace partially failed.", 409)
    assert e.data is not None
    assert (e.data["cancelResult"], e.data["newOrderResult"]) == ("FAILURE", "SUCCESS")
    assert e.data["newOrderResponse"]["status"] == "NEW"
    assert len(venue.open_orders(acct(venue))) == 1


def test_cancel_replace_new_leg_rejected_after_cancel(venue: Venue, rec: Recorder) -> None:
    a = acct(venue)
    venue.place_order(a, LIMIT_BUY)
    rec.clear()
    with pytest.raises(BinanceError) as err:
        venue.cancel_replace(a, with_(REPLACE, cancelOrderId="1", type="LIMIT_MAKER", timeInForce=None,
                                      price="101", newClientOrderId="pm"))
    e = err.value
    assert (e.code, e.http_status) == (-2021, 409)
    assert e.data is not None and e.data["cancelResult"] == "SUCCESS" and e.data["newOrderResult"] == "FAILURE"
    assert e.data["newOrderResponse"] == {"code": -2010, "msg": "Order would immediately match and take."}
    assert e.data["cancelResponse"]["status"] == "CANCELED"
    assert venue.open_orders(a) == []
    xs = [(r["x"], r["c"]) for r in rec.reports()]
    assert xs[0][0] == "CANCELED" and xs[1] == ("REJECTED", "pm")
    assert rec.reports()[1]["r"] == "WOULD_MATCH_IMMEDIATELY"


def test_cancel_replace_both_fail_and_filters_fail_first(venue: Venue) -> None:
    a = acct(venue)
    with pytest.raises(BinanceError) as err:
        venue.cancel_replace(a, with_(REPLACE, cancelOrderId="9", cancelReplaceMode="ALLOW_FAILURE",
                                      type="LIMIT_MAKER", timeInForce=None, price="101"))
    assert (err.value.code, err.value.http_status) == (-2022, 400)
    assert err.value.data is not None
    assert (err.value.data["cancelResult"], err.value.data["newOrderResult"]) == ("FAILURE", "FAILURE")
    venue.place_order(a, LIMIT_BUY)
    with pytest.raises(BinanceError) as err:
        venue.cancel_replace(a, with_(REPLACE, cancelOrderId="1", price="99.001"))
    assert (err.value.code, err.value.msg, err.value.data) == (-1013, "Filter failure: PRICE_FILTER", None)
    assert venue.open_orders(a)[0]["status"] == "NEW"  # nothing was cancelled


# ----------------------------------------------------------------------------------------------
# account, trades, market data
# ----------------------------------------------------------------------------------------------


def test_account_info_shape(venue: Venue) -> None:
    info = venue.account_info(acct(venue))
    assert info["makerCommission"] == 10 and info["takerCommission"] == 10
    assert info["commissionRates"] == {"maker": "0.00100000", "taker": "0.00100000", "buyer": "0.00000000",
                                       "seller": "0.00000000"}
    assert info["balances"] == [{"asset": "USDT", "free": "100000.00000000", "locked": "0.00000000"},
                                {"asset": "BTC", "free": "10.00000000", "locked": "0.00000000"}]
    assert info["accountType"] == "SPOT" and info["canTrade"] is True and isinstance(info["uid"], int)
    assert repr(acct(venue)).find("secret") < 0


def test_omit_zero_balances(tmp_path: Path) -> None:
    from botcore_exchange_paper.config import AccountSpec

    v = make_venue(tmp_path, BIDS, ASKS, [], accounts=[AccountSpec(KEY, "s", {"USDT": Decimal(10), "ETH": Decimal(0)})])
    assert [b["asset"] for b in v.account_info(acct(v), omit_zero=True)["balances"]] == ["USDT"]


def test_market_data_endpoints(venue: Venue) -> None:
    d = venue.depth("BTCUSDT", 1)
    assert d["bids"] == [["100.00000000", "1.00000000"]] and d["asks"] == [["101.00000000", "1.00000000"]]
    assert venue.book_ticker("BTCUSDT") == {"symbol": "BTCUSDT", "bidPrice": "100.00000000", "bidQty": "1.00000000",
                                            "askPrice": "101.00000000", "askQty": "1.00000000"}
    assert isinstance(venue.book_ticker(), list)
    assert venue.avg_price("BTCUSDT") == {"mins": 5, "price": "100.50000000", "closeTime": NOW}
    info = venue.exchange_info("BTCUSDT")
    assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT"] and info["serverTime"] == NOW
    for call in (lambda: venue.depth("NOPE"), lambda: venue.exchange_info("NOPE"), lambda: venue.avg_price("X")):
        with pytest.raises(BinanceError) as err:
            call()
        assert err.value.code == -1121
    t = venue.ticker_24hr("BTCUSDT")
    assert isinstance(t, dict) and t["count"] == 0 and t["bidPrice"] == "100.00000000"


# ----------------------------------------------------------------------------------------------
# configuration
# ----------------------------------------------------------------------------------------------


def test_config_from_dict_validates_and_names_bad_keys() -> None:
    from botcore_exchange_paper.config import PaperConfig

    cfg = PaperConfig.from_dict({
        "symbols": ["btcusdt"], "speed": 10, "seed": 3, "maker_commission": "0.00075",
        "fill": {"queue_model": "power2:2", "partial": False, "entry_latency_ms": 5},
        "accounts": [{"api_key": "k", "api_secret": "hush-hush", "balances": {"usdt": 100.5}}],
        "options": {"ping_interval_s": 1}, "faults": {"anything": True},
    })
    assert cfg.symbols == ["BTCUSDT"] and cfg.fill.queue_family() == ("power2", 2.0)
    assert cfg.accounts[0].balances == {"USDT": Decimal("100.5")} and "hush" not in repr(cfg)
    assert cfg.maker_commission == Decimal("0.00075") and cfg.options == {"ping_interval_s": 1}
    for bad, key in (({"sped": 1}, "paper.sped"), ({"fill": {"queue": "x"}}, "paper.fill.queue"),
                     ({"fill": {"queue_model": "fifo"}}, "paper.fill.queue_model"),
                     ({"accounts": [{"api_key": "k"}]}, "paper.accounts[0].api_secret"),
                     ({"speed": -1}, "paper.speed"), ({"taker_commission": "1.5"}, "paper.taker_commission")):
        with pytest.raises(ValueError, match=key.replace("[", r"\[").replace("]", r"\]")):
            PaperConfig.from_dict(bad)


def test_orders_on_a_symbol_that_is_not_trading(tmp_path: Path) -> None:
    from botcore_exchange_paper.config import PaperConfig

    v = Venue(PaperConfig(synthetic=True, symbols=["BCCBTC"], speed=0))
    with pytest.raises(BinanceError) as err:
        v.place_order(v.accounts[0], {"symbol": "BCCBTC", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                                      "quantity": "1", "price": "0.01"})
    assert (err.value.code, err.value.msg) == (-1013, "Market is closed.")


def test_unknown_exchange_info_symbol_in_config(tmp_path: Path) -> None:
    from botcore_exchange_paper.config import PaperConfig

    with pytest.raises(ValueError, match="NOPEUSDT"):
        Venue(PaperConfig(synthetic=True, symbols=["NOPEUSDT"]))
