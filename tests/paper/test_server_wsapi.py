"""WebSocket API /ws-api/v3: user-data subscriptions, session methods, order entry, errors, rateLimits."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from botcore_exchange_paper.embedded import EmbeddedPaper
from paper_support import KEY, KEY2, SECRET2, SYMBOL, Rest, Ws, now_ms, passive_prices, ws_signed


@pytest.fixture
def api(paper: EmbeddedPaper) -> Any:
    ws = Ws(paper.ws_api_url)
    yield ws
    ws.close()


def reply(ws: Ws, req_id: Any) -> dict[str, Any]:
    msg, _ = ws.until(lambda m: "id" in m and m["id"] == req_id and "status" in m)
    return msg


def test_ping_time_and_id_echo(api: Ws) -> None:
    for req_id in (1, "a-uuid-like-0011-47b6", None, 2**40):
        api.send({"id": req_id, "method": "ping"})
        r = reply(api, req_id)
        assert r["id"] == req_id and r["status"] == 200 and r["result"] == {}
        weights = [x for x in r["rateLimits"] if x["rateLimitType"] == "REQUEST_WEIGHT"]
        assert weights and weights[0]["interval"] == "MINUTE" and weights[0]["count"] >= 1
    api.send({"id": "t", "method": "time"})
    assert abs(reply(api, "t")["result"]["serverTime"] - now_ms()) < 5000
    api.send({"id": "no-rl", "method": "ping", "params": {"returnRateLimits": False}})
    assert "rateLimits" not in reply(api, "no-rl")


def test_return_rate_limits_false_in_url(paper: EmbeddedPaper) -> None:
    ws = Ws(paper.ws_api_url + "?returnRateLimits=false")
    try:
        ws.send({"id": 1, "method": "ping"})
        assert reply(ws, 1) == {"id": 1, "status": 200, "result": {}}
    finally:
        ws.close()


def test_user_data_subscription_lifecycle(api: Ws, paper: EmbeddedPaper) -> None:
    api.send(ws_signed("userDataStream.subscribe.signature", {}, req_id="sub"))
    r = reply(api, "sub")
    assert r["status"] == 200 and r["result"] == {"subscriptionId": 0}
    api.send(ws_signed("userDataStream.subscribe.signature", {}, req_id="again"))
    r = reply(api, "again")
    assert r["status"] == 400 and r["error"] == {
        "code": -2035,
        "msg": "User Data Stream subscription already active.",
    }
    # a second account on the same connection gets its own id
    api.send(ws_signed("userDataStream.subscribe.signature", {}, req_id="b", key=KEY2, secret=SECRET2))
    assert reply(api, "b")["result"] == {"subscriptionId": 1}
    api.send({"id": "subs", "method": "session.subscriptions"})
    assert reply(api, "subs")["result"] == [{"subscriptionId": 0}, {"subscriptionId": 1}]
    api.send({"id": "st", "method": "session.status"})
    st = reply(api, "st")["result"]
    assert st["userDataStream"] is True and st["returnRateLimits"] is True and "connectedSince" in st

    api.send({"id": "un", "method": "userDataStream.unsubscribe", "params": {"subscriptionId": 1}})
    term, _ = api.until(lambda m: m.get("event", {}).get("e") == "eventStreamTerminated")
    assert term["subscriptionId"] == 1
    assert reply(api, "un")["result"] == {}
    api.send({"id": "un2", "method": "userDataStream.unsubscribe", "params": {"subscriptionId": 1}})
    r = reply(api, "un2")
    assert r["error"] == {"code": -2036, "msg": "User Data Stream subscription not active."}


def test_execution_reports_new_trade_canceled(api: Ws, paper: EmbeddedPaper, rest: Rest) -> None:
    api.send(ws_signed("userDataStream.subscribe.signature", {"recvWindow": 10000}, req_id=1))
    sub = reply(api, 1)["result"]["subscriptionId"]
    bid, _ = passive_prices(rest)
    oid = rest.limit("BUY", bid).json()["orderId"]
    new, _ = api.until(lambda m: m.get("event", {}).get("e") == "executionReport" and m["event"]["i"] == oid)
    assert new["subscriptionId"] == sub and new["event"]["x"] == "NEW" and new["event"]["X"] == "NEW"
    pos, _ = api.until(lambda m: m.get("event", {}).get("e") == "outboundAccountPosition")
    assert {b["a"] for b in pos["event"]["B"]} >= {"USDT"}
    rest.signed("DELETE", "order", {"symbol": SYMBOL, "orderId": oid})
    cxl, _ = api.until(lambda m: m.get("event", {}).get("x") == "CANCELED")
    assert cxl["event"]["i"] == oid and cxl["event"]["X"] == "CANCELED"
    taker = rest.order(side="SELL", type="MARKET", quantity="0.001").json()
    trade, _ = api.until(
        lambda m: m.get("event", {}).get("x") == "TRADE" and m["event"]["i"] == taker["orderId"]
    )
    ev = trade["event"]
    assert ev["X"] == "FILLED" and Decimal(ev["l"]) == Decimal("0.001") and ev["m"] is False and ev["t"] > 0


def test_order_entry_over_ws_api(api: Ws, paper: EmbeddedPaper, rest: Rest) -> None:
    bid, _ = passive_prices(rest)
    api.send(ws_signed("order.place", {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                                       "quantity": "0.00100", "price": bid, "newClientOrderId": "ws-1"}, req_id="p"))  # fmt: skip
    r = reply(api, "p")
    assert r["status"] == 200, r
    assert r["result"]["clientOrderId"] == "ws-1" and r["result"]["status"] == "NEW"
    kinds = {(x["rateLimitType"], x["interval"]) for x in r["rateLimits"]}
    assert {("ORDERS", "SECOND"), ("ORDERS", "DAY"), ("REQUEST_WEIGHT", "MINUTE")} <= kinds
    oid = r["result"]["orderId"]

    api.send(ws_signed("order.status", {"symbol": SYMBOL, "orderId": oid}, req_id="s"))
    assert reply(api, "s")["result"]["status"] == "NEW"
    api.send(ws_signed("openOrders.status", {"symbol": SYMBOL}, req_id="o"))
    assert oid in [o["orderId"] for o in reply(api, "o")["result"]]
    lower = f"{Decimal(bid) - 1:.2f}"
    api.send(ws_signed("order.cancelReplace", {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                                               "quantity": "0.001", "price": lower, "cancelOrderId": oid,
                                               "cancelReplaceMode": "STOP_ON_FAILURE"}, req_id="cr"))  # fmt: skip
    cr = reply(api, "cr")
    assert cr["status"] == 200 and cr["result"]["cancelResult"] == "SUCCESS", cr
    new_id = cr["result"]["newOrderResponse"]["orderId"]
    api.send(ws_signed("order.cancel", {"symbol": SYMBOL, "orderId": new_id}, req_id="c"))
    assert reply(api, "c")["result"]["status"] == "CANCELED"
    api.send(ws_signed("order.cancel", {"symbol": SYMBOL, "orderId": new_id}, req_id="c2"))
    c2 = reply(api, "c2")
    assert c2["status"] == 400 and c2["error"] == {"code": -2011, "msg": "Unknown order sent."}
    api.send(ws_signed("account.status", {"omitZeroBalances": "true"}, req_id="a"))
    assert {b["asset"] for b in reply(api, "a")["result"]["balances"]} >= {"BTC", "USDT"}
    # numbers as JSON numbers are accepted too (signature over their literal text)
    api.send(ws_signed("order.place", {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                                       "quantity": 0.001, "price": float(lower)}, req_id="num"))  # fmt: skip
    num = reply(api, "num")
    assert num["status"] == 200, num
    api.send(ws_signed("openOrders.cancelAll", {"symbol": SYMBOL}, req_id="ca"))
    assert reply(api, "ca")["status"] == 200


ORDER_STATUS = {"symbol": SYMBOL, "orderId": 1}


@pytest.mark.parametrize(
    ("build", "status", "error"),
    [
        (lambda: ws_signed("order.status", ORDER_STATUS, key="y" * 64), 401,
         {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}),
        (lambda: ws_signed("order.status", ORDER_STATUS, timestamp=now_ms() - 10_000), 400,
         {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}),
        (lambda: ws_signed("order.status", ORDER_STATUS, timestamp=now_ms() + 5_000), 400,
         {"code": -1021, "msg": "Timestamp for this request was 1000ms ahead of the server's time."}),
        (lambda: ws_signed("order.status", {**ORDER_STATUS, "recvWindow": 70000}), 400,
         {"code": -1102, "msg": "'recvWindow' contains unexpected value. Cannot be greater than 60000."}),
        (lambda: ws_signed("order.status", ORDER_STATUS, secret=SECRET2), 400,
         {"code": -1022, "msg": "Signature for this request is not valid."}),
        (lambda: ws_signed("order.status", {**ORDER_STATUS, "orderId": 987654321}), 400,
         {"code": -2013, "msg": "Order does not exist."}),
        (lambda: {"id": 5, "method": "order.status", "params": {**ORDER_STATUS, "timestamp": now_ms()}}, 400,
         {"code": -1102, "msg": "Mandatory parameter 'apiKey' was not sent, was empty/null, or malformed."}),
        (lambda: {"id": 5, "method": "userDataStream.subscribe.signature",
                  "params": {"apiKey": KEY, "timestamp": now_ms()}}, 400,
         {"code": -1102, "msg": "Mandatory parameter 'signature' was not sent, was empty/null, or malformed."}),
        (lambda: {"id": 5, "method": "nope.nope"}, 400, {"code": -1020, "msg": "This operation is not supported."}),
        (lambda: {"id": 5, "method": "ping", "params": ["x"]}, 400,
         {"code": -1135, "msg": "Invalid 'params' in JSON request; expected an object."}),
    ],
)  # fmt: skip
def test_ws_api_errors(api: Ws, build: Any, status: int, error: dict[str, Any]) -> None:
    request_ = build()
    api.send(request_)
    r = reply(api, request_["id"])
    assert (r["status"], r["error"]) == (status, error)
    assert "rateLimits" in r
    api.send({"id": "alive", "method": "ping"})
    assert reply(api, "alive")["status"] == 200


def test_invalid_json_answer(api: Ws) -> None:
    api.send("{not json")
    r = api.recv()
    assert r["id"] is None and r["status"] == 400 and r["error"]["code"] == -1135
