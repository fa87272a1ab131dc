"""REST /api/v3 of the paper exchange: shapes, params, signing, exact Binance errors, weights, listenKeys."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any
from unittest import mock
from urllib.parse import quote

import pytest
import requests
from aiohttp.test_utils import make_mocked_request
from botcore_exchange_paper.embedded import EmbeddedPaper
from paper_support import (
    KEY,
    KEY2,
    SECRET,
    SECRET2,
    SYMBOL,
    Rest,
    Ws,
    balances,
    book,
    now_ms,
    open_order_ids,
    passive_prices,
    sign,
    start_paper,
    wait_for,
)

DECIMAL_RANGE = "^([0-9]{1,20})(\\.[0-9]{1,20})?$"


def weight(r: requests.Response) -> int:
    assert r.headers["X-MBX-USED-WEIGHT-1M"] == r.headers["X-MBX-USED-WEIGHT"]
    return int(r.headers["X-MBX-USED-WEIGHT-1M"])


# -- public endpoints ---------------------------------------------------------------------------


def test_public_endpoints_answer_binance_shapes(rest: Rest) -> None:
    assert rest.public("ping").json() == {}
    server_time = rest.public("time").json()["serverTime"]
    assert abs(server_time - now_ms()) < 5_000

    info = rest.public("exchangeInfo", symbol=SYMBOL).json()
    assert [s["symbol"] for s in info["symbols"]] == [SYMBOL]
    assert {"timezone", "serverTime", "rateLimits", "exchangeFilters", "symbols"} <= set(info)
    # ccxt sends the JSON array percent-encoded
    r = rest.s.get(rest.base + "exchangeInfo?symbols=" + quote('["BTCUSDT"]'))
    assert r.status_code == 200 and [s["symbol"] for s in r.json()["symbols"]] == [SYMBOL]

    d = book(rest, 5)
    assert isinstance(d["lastUpdateId"], int)
    assert len(d["bids"]) == 5 and len(d["asks"]) == 5
    bids = [Decimal(p) for p, _ in d["bids"]]
    asks = [Decimal(p) for p, _ in d["asks"]]
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks) and bids[0] < asks[0]

    bt = rest.public("ticker/bookTicker", symbol=SYMBOL).json()
    assert set(bt) == {"symbol", "bidPrice", "bidQty", "askPrice", "askQty"}
    many = rest.s.get(rest.base + "ticker/bookTicker?symbols=" + quote('["BTCUSDT"]')).json()
    assert isinstance(many, list) and many[0]["symbol"] == SYMBOL

    t = rest.public("ticker/24hr", symbol=SYMBOL).json()
    assert {"symbol", "lastPrice", "bidPrice", "askPrice", "volume", "count"} <= set(t)
    avg = rest.public("avgPrice", symbol=SYMBOL).json()
    assert {"mins", "price", "closeTime"} <= set(avg)


def test_every_answer_is_json_with_weight_headers(rest: Rest) -> None:
    answers = [
        rest.public("ping"),
        rest.public("depth", symbol="NOPE"),
        rest.public("nonexistent"),
        rest.signed("GET", "account", key="unknownkey"),
        rest.signed("GET", "account"),
        rest.s.delete(rest.base + "ping"),
        rest.s.get(rest.base.replace("/api/v3/", "/elsewhere")),
        rest.s.post(rest.base + "order", data=b"x" * (2 << 20)),
    ]
    assert [r.status_code for r in answers] == [200, 400, 404, 401, 200, 405, 404, 413]
    for r in answers:
        assert r.headers["Content-Type"].startswith("application/json"), r.url
        assert weight(r) >= 1
        r.json()


@pytest.mark.parametrize(
    ("path", "params", "cost"),
    [
        ("ping", {}, 1),
        ("time", {}, 1),
        ("depth", {"symbol": SYMBOL, "limit": 5}, 5),
        ("depth", {"symbol": SYMBOL, "limit": 500}, 25),
        ("depth", {"symbol": SYMBOL, "limit": 1000}, 50),
        ("exchangeInfo", {"symbol": SYMBOL}, 20),
        ("ticker/bookTicker", {"symbol": SYMBOL}, 2),
        ("ticker/bookTicker", {}, 4),
        ("ticker/24hr", {"symbol": SYMBOL}, 2),
        ("avgPrice", {"symbol": SYMBOL}, 2),
    ],
)
def test_endpoint_weights(rest: Rest, path: str, params: dict[str, Any], cost: int) -> None:
    for _ in range(3):  # a minute boundary between the two requests resets the window: retry
        before = weight(rest.public("ping"))
        after = weight(rest.public(path, **params))
        if after > before:
            assert after - before == cost
            return
    pytest.fail("weight window kept rolling over")


def test_signed_weights_and_successful_orders_cost_nothing(rest: Rest) -> None:
    bid, _ = passive_prices(rest)
    for _ in range(3):
        w0 = weight(rest.public("ping"))
        w1 = weight(rest.signed("GET", "account"))
        placed = rest.limit("BUY", bid)
        w2 = weight(placed)
        w3 = weight(rest.signed("GET", "order", {"symbol": SYMBOL, "orderId": placed.json()["orderId"]}))
        w4 = weight(rest.signed("DELETE", "order", {"symbol": SYMBOL, "orderId": placed.json()["orderId"]}))
        w5 = weight(rest.signed("DELETE", "order", {"symbol": SYMBOL, "orderId": placed.json()["orderId"]}))
        if w0 < w1 <= w2 <= w3 <= w4 <= w5:
            assert (w1 - w0, w2 - w1, w3 - w2, w4 - w3, w5 - w4) == (20, 0, 4, 0, 1)
            return
    pytest.fail("weight window kept rolling over")


# -- order lifecycle ----------------------------------------------------------------------------


def test_limit_order_lifecycle(rest: Rest, paper: EmbeddedPaper) -> None:
    bid, _ = passive_prices(rest)
    r = rest.limit("BUY", bid, newClientOrderId="life-1")
    assert r.status_code == 200, r.text
    order = r.json()
    assert order["status"] == "NEW" and order["clientOrderId"] == "life-1"
    assert order["origQty"] == "0.00100000" and order["fills"] == []  # LIMIT defaults to FULL
    assert int(r.headers["X-MBX-ORDER-COUNT-10S"]) >= 1 and int(r.headers["X-MBX-ORDER-COUNT-1D"]) >= 1
    assert order["orderId"] in open_order_ids(paper)

    q = rest.signed("GET", "order", {"symbol": SYMBOL, "origClientOrderId": "life-1"}).json()
    assert (q["orderId"], q["status"]) == (order["orderId"], "NEW")
    opens = rest.signed("GET", "openOrders", {"symbol": SYMBOL}).json()
    assert order["orderId"] in [o["orderId"] for o in opens]

    # python-binance cancels with a form body
    c = rest.signed("DELETE", "order", {"symbol": SYMBOL, "orderId": order["orderId"]}, where="body")
    assert c.status_code == 200, c.text
    assert c.json()["status"] == "CANCELED" and c.json()["origClientOrderId"] == "life-1"
    assert "X-MBX-ORDER-COUNT-10S" not in c.headers
    assert (
        rest.signed("GET", "order", {"symbol": SYMBOL, "orderId": order["orderId"]}).json()["status"]
        == "CANCELED"
    )
    again = rest.signed("DELETE", "order", {"symbol": SYMBOL, "orderId": order["orderId"]})
    assert (again.status_code, again.json()) == (400, {"code": -2011, "msg": "Unknown order sent."})


def test_marketable_order_fills_and_shows_in_my_trades(rest: Rest, paper: EmbeddedPaper) -> None:
    before = balances(paper)
    r = rest.order(side="BUY", type="MARKET", quantity="0.001", newClientOrderId="taker-1")
    assert r.status_code == 200, r.text
    o = r.json()
    assert o["status"] == "FILLED" and o["executedQty"] == "0.00100000" and o["fills"]
    after = balances(paper)
    assert Decimal(after["USDT"][0]) < Decimal(before["USDT"][0])
    assert Decimal(after["BTC"][0]) > Decimal(before["BTC"][0])
    trades = rest.signed("GET", "myTrades", {"symbol": SYMBOL}).json()
    assert o["orderId"] in [t["orderId"] for t in trades]


def test_cancel_replace_and_open_orders_cancel_all(rest: Rest, paper: EmbeddedPaper) -> None:
    bid, ask = passive_prices(rest)
    first = rest.limit("BUY", bid).json()
    lower = f"{Decimal(bid) - Decimal('1'):.2f}"
    r = rest.signed(
        "POST",
        "order/cancelReplace",
        {
            "symbol": SYMBOL,
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.001",
            "price": lower,
            "cancelReplaceMode": "STOP_ON_FAILURE",
            "cancelOrderId": first["orderId"],
        },  # fmt: skip
        where="body",
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["cancelResult"], body["newOrderResult"]) == ("SUCCESS", "SUCCESS")
    assert "X-MBX-ORDER-COUNT-10S" in r.headers
    new_id = body["newOrderResponse"]["orderId"]
    rest.limit("SELL", ask)
    cancelled = rest.signed("DELETE", "openOrders", {"symbol": SYMBOL})
    assert cancelled.status_code == 200, cancelled.text
    assert new_id in [c["orderId"] for c in cancelled.json()]
    assert open_order_ids(paper) == []
    none_left = rest.signed("DELETE", "openOrders", {"symbol": SYMBOL})
    assert none_left.json() == {"code": -2011, "msg": "Unknown order sent."}


def test_order_test_endpoint_creates_nothing(rest: Rest, paper: EmbeddedPaper) -> None:
    bid, _ = passive_prices(rest)
    before = (balances(paper), open_order_ids(paper))
    r = rest.signed("POST", "order/test", {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                                          "quantity": "0.001", "price": bid})  # fmt: skip
    assert (r.status_code, r.json()) == (200, {})
    assert (balances(paper), open_order_ids(paper)) == before


# -- parameters and signatures ------------------------------------------------------------------


@pytest.mark.parametrize("where", ["query", "body", "split"])
def test_params_from_query_body_or_both(rest: Rest, where: str) -> None:
    bid, _ = passive_prices(rest)
    r = rest.signed("POST", "order", {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                                      "quantity": "0.001", "price": bid, "recvWindow": 10000}, where=where)  # fmt: skip
    assert r.status_code == 200, r.text
    rest.signed("DELETE", "order", {"symbol": SYMBOL, "orderId": r.json()["orderId"]})


def test_query_wins_over_body_and_duplicates_in_one_place_are_rejected(rest: Rest) -> None:
    bid, _ = passive_prices(rest)
    q = f"symbol={SYMBOL}&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.001&price={bid}&timestamp={now_ms()}"
    b = "quantity=0.002"
    sig = sign(SECRET, q + b)
    r = rest.s.post(rest.base + "order?" + q, data=b + "&signature=" + sig,
                    headers={"X-MBX-APIKEY": KEY, "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["origQty"] == "0.00100000"
    rest.signed("DELETE", "order", {"symbol": SYMBOL, "orderId": r.json()["orderId"]})

    dup = f"symbol={SYMBOL}&symbol={SYMBOL}&timestamp={now_ms()}"
    r = rest.s.get(
        rest.base + "openOrders?" + dup + "&signature=" + sign(SECRET, dup), headers={"X-MBX-APIKEY": KEY}
    )
    assert (r.status_code, r.json()) == (
        400,
        {"code": -1101, "msg": "Duplicate values for a parameter detected."},
    )


def test_signature_leniency_uppercase_decoded_and_microseconds(rest: Rest) -> None:
    ts = now_ms()
    r = rest.signed("GET", "account", {"timestamp": ts}, signature=sign(SECRET, f"timestamp={ts}").upper())
    assert r.status_code == 200, r.text
    # payload signed percent-decoded while the wire carries it encoded (python-binance style)
    bid, _ = passive_prices(rest)
    raw = f"symbol={SYMBOL}&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.001&price={bid}&newClientOrderId=a:b/c&timestamp={now_ms()}"
    wire = raw.replace("a:b/c", quote("a:b/c", safe=""))
    r = rest.s.post(rest.base + "order", data=wire + "&signature=" + sign(SECRET, raw),
                    headers={"X-MBX-APIKEY": KEY, "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["clientOrderId"] == "a:b/c"
    rest.signed("DELETE", "order", {"symbol": SYMBOL, "orderId": r.json()["orderId"]})
    micro = rest.signed("GET", "account", {"timestamp": now_ms() * 1000})
    assert micro.status_code == 200, micro.text


# -- bad requests: exact answers, nothing corrupted ---------------------------------------------

MANDATORY = "Mandatory parameter '{}' was not sent, was empty/null, or malformed."


def _bad_cases(bid: str) -> list[tuple[str, Any, int, dict[str, Any]]]:
    order = {
        "symbol": SYMBOL,
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.001",
        "price": bid,
    }
    return [
        ("missing api key", lambda r: r.signed("POST", "order", order, key=""), 401,
         {"code": -2014, "msg": "API-key format invalid."}),
        ("malformed api key", lambda r: r.signed("POST", "order", order, key="bad key\twith spaces"), 401,
         {"code": -2014, "msg": "API-key format invalid."}),
        ("unknown api key", lambda r: r.signed("POST", "order", order, key="x" * 64), 401,
         {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}),
        ("missing signature", lambda r: r.s.post(r.base + "order", params={**order, "timestamp": now_ms()},
                                                 headers={"X-MBX-APIKEY": KEY}), 400,
         {"code": -1102, "msg": MANDATORY.format("signature")}),
        ("invalid signature", lambda r: r.signed("POST", "order", order, signature="ab" * 32), 400,
         {"code": -1022, "msg": "Signature for this request is not valid."}),
        ("other account's secret", lambda r: r.signed("POST", "order", order, secret=SECRET2), 400,
         {"code": -1022, "msg": "Signature for this request is not valid."}),
        ("stale timestamp", lambda r: r.signed("POST", "order", order, timestamp=now_ms() - 6_000), 400,
         {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}),
        ("future timestamp", lambda r: r.signed("POST", "order", order, timestamp=now_ms() + 5_000), 400,
         {"code": -1021, "msg": "Timestamp for this request was 1000ms ahead of the server's time."}),
        ("recvWindow too large", lambda r: r.signed("POST", "order", {**order, "recvWindow": 60001}), 400,
         {"code": -1102, "msg": "'recvWindow' contains unexpected value. Cannot be greater than 60000."}),
        ("missing timestamp", lambda r: r.s.post(r.base + "order", params={**order, "signature": sign(SECRET, "x")},
                                                 headers={"X-MBX-APIKEY": KEY}), 400,
         {"code": -1102, "msg": MANDATORY.format("timestamp")}),
        ("unknown symbol", lambda r: r.signed("POST", "order", {**order, "symbol": "NOPENOPE"}), 400,
         {"code": -1121, "msg": "Invalid symbol."}),
        ("lot size", lambda r: r.signed("POST", "order", {**order, "quantity": "0.0000001"}), 400,
         {"code": -1013, "msg": "Filter failure: LOT_SIZE"}),
        ("tick size", lambda r: r.signed("POST", "order", {**order, "price": bid + "1"}), 400,
         {"code": -1013, "msg": "Filter failure: PRICE_FILTER"}),
        ("min notional", lambda r: r.signed("POST", "order", {**order, "quantity": "0.00001"}), 400,
         {"code": -1013, "msg": "Filter failure: NOTIONAL"}),
        ("scientific notation", lambda r: r.signed("POST", "order", {**order, "quantity": "1e-3"}), 400,
         {"code": -1100, "msg": f"Illegal characters found in parameter 'quantity'; legal range is '{DECIMAL_RANGE}'."}),
        ("insufficient balance", lambda r: r.signed("POST", "order", {**order, "quantity": "100"}), 400,
         {"code": -2010, "msg": "Account has insufficient balance for requested action."}),
        ("unknown order query", lambda r: r.signed("GET", "order", {"symbol": SYMBOL, "orderId": 987654321}), 400,
         {"code": -2013, "msg": "Order does not exist."}),
        ("unknown order cancel", lambda r: r.signed("DELETE", "order", {"symbol": SYMBOL, "orderId": 987654321}), 400,
         {"code": -2011, "msg": "Unknown order sent."}),
        ("depth without symbol", lambda r: r.public("depth"), 400, {"code": -1102, "msg": MANDATORY.format("symbol")}),
        ("depth bad limit", lambda r: r.public("depth", symbol=SYMBOL, limit="abc"), 400,
         {"code": -1100, "msg": "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'."}),
        ("exchangeInfo unknown symbol", lambda r: r.public("exchangeInfo", symbol="NOPENOPE"), 400,
         {"code": -1121, "msg": "Invalid symbol."}),
    ]  # fmt: skip


def test_bad_requests_get_exact_answers_and_corrupt_nothing(rest: Rest, paper: EmbeddedPaper) -> None:
    bid, _ = passive_prices(rest)
    resting = rest.limit("BUY", bid, newClientOrderId="survivor").json()
    before = paper.snapshot()["accounts"]
    failures = []
    for name, send, status, body in _bad_cases(bid):
        r = send(rest)
        got = (r.status_code, r.json())
        if got != (status, body):
            failures.append(f"{name}: expected {(status, body)}, got {got}")
        assert r.headers["Content-Type"].startswith("application/json")
    assert not failures, "\n".join(failures)
    assert paper.snapshot()["accounts"] == before
    assert rest.public("ping").status_code == 200
    q = rest.signed("GET", "order", {"symbol": SYMBOL, "orderId": resting["orderId"]}).json()
    assert q["status"] == "NEW"
    rest.signed("DELETE", "order", {"symbol": SYMBOL, "orderId": resting["orderId"]})


def test_signed_request_works_from_a_second_account(paper: EmbeddedPaper) -> None:
    other = Rest(paper, KEY2, SECRET2)
    info = other.signed("GET", "account").json()
    assert {b["asset"]: b["free"] for b in info["balances"] if b["asset"] in ("BTC",)}["BTC"] == "1.00000000"


# -- legacy listenKey ---------------------------------------------------------------------------


def test_legacy_listen_key_flow(rest: Rest, paper: EmbeddedPaper) -> None:
    r = rest.s.post(rest.base + "userDataStream", headers={"X-MBX-APIKEY": KEY})
    assert r.status_code == 200, r.text
    key = r.json()["listenKey"]
    assert len(key) == 64
    assert rest.s.post(rest.base + "userDataStream", headers={"X-MBX-APIKEY": KEY}).json()["listenKey"] == key
    assert (
        rest.s.put(
            rest.base + "userDataStream", params={"listenKey": key}, headers={"X-MBX-APIKEY": KEY}
        ).json()
        == {}
    )
    bogus = rest.s.put(
        rest.base + "userDataStream", params={"listenKey": "nope"}, headers={"X-MBX-APIKEY": KEY}
    )
    assert (bogus.status_code, bogus.json()) == (
        400,
        {"code": -1125, "msg": "This listenKey does not exist."},
    )
    no_key = rest.s.post(rest.base + "userDataStream")
    assert (no_key.status_code, no_key.json()["code"]) == (401, -2014)

    ws = Ws(paper.stream_url + "ws/" + key)
    try:
        bid, _ = passive_prices(rest)
        oid = rest.limit("BUY", bid).json()["orderId"]
        msg, _ = ws.until(lambda m: m.get("e") == "executionReport" and m.get("i") == oid)
        assert msg["x"] == "NEW" and "subscriptionId" not in msg
        rest.signed("DELETE", "order", {"symbol": SYMBOL, "orderId": oid})
        msg, _ = ws.until(lambda m: m.get("e") == "executionReport" and m.get("x") == "CANCELED")
    finally:
        ws.close()
    assert (
        rest.s.delete(
            rest.base + "userDataStream", params={"listenKey": key}, headers={"X-MBX-APIKEY": KEY}
        ).json()
        == {}
    )


def test_listen_key_expires_with_event_and_retired_mode_answers_410() -> None:
    paper = start_paper(options={"listen_key_ttl_s": 0.3}, warmup=0)
    try:
        rest = Rest(paper)
        key = rest.s.post(rest.base + "userDataStream", headers={"X-MBX-APIKEY": KEY}).json()["listenKey"]
        ws = Ws(paper.stream_url + "ws/" + key)
        msg = ws.recv(3)
        assert msg["e"] == "listenKeyExpired" and msg["listenKey"] == key
        ws.close()
        gone = rest.s.put(
            rest.base + "userDataStream", params={"listenKey": key}, headers={"X-MBX-APIKEY": KEY}
        )
        assert gone.json()["code"] == -1125
    finally:
        paper.close()
    retired = start_paper(options={"legacy_user_stream": "retired"}, warmup=0)
    try:
        r = requests.post(retired.rest_url + "/v3/userDataStream", headers={"X-MBX-APIKEY": KEY}, timeout=5)
        assert r.status_code == 410 and r.headers["Content-Type"].startswith("application/json")
        assert r.json()["code"] == -1000
    finally:
        retired.close()


def test_control_endpoints(paper: EmbeddedPaper, rest: Rest) -> None:
    base = paper.base_url + "/paper/"
    status = requests.get(base + "status", timeout=5).json()
    assert status["events_processed"] >= 1 and status["done"] is False
    stepped = requests.post(base + "step", json={"n": 5}, timeout=5).json()
    assert stepped["processed"] == 5
    bid, _ = passive_prices(rest)
    ext = requests.post(base + "external_order", json={"api_key": KEY2, "symbol": SYMBOL, "side": "BUY",
                                                       "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.001",
                                                       "price": bid}, timeout=5)  # fmt: skip
    assert ext.status_code == 200, ext.text
    snap = requests.get(base + "snapshot", timeout=5).json()
    other = next(a for a in snap["accounts"] if a["api_key"] == KEY2)
    assert ext.json()["orderId"] in [o["orderId"] for o in other["open_orders"]]
    assert "api_secret" not in str(snap) and SECRET2 not in str(snap)
    bad = requests.post(base + "external_order", json={"api_key": KEY2, "symbol": "NOPENOPE", "side": "BUY",
                                                       "type": "MARKET", "quantity": "1"}, timeout=5)  # fmt: skip
    assert (bad.status_code, bad.json()["code"]) == (400, -1121)
    Rest(paper, KEY2, SECRET2).signed("DELETE", "openOrders", {"symbol": SYMBOL})
    wait_for(lambda: open_order_ids(paper, KEY2) == [])


def test_control_endpoints_answer_loopback_only(paper: EmbeddedPaper) -> None:
    """/paper/* refuses a non-loopback peer (the request is forged: tests only bind 127.0.0.1)."""
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        ("10.1.2.3", 4567) if name == "peername" else default
    )

    async def ask() -> tuple[int, Any]:
        assert paper.server is not None
        request = make_mocked_request(
            "GET", "/paper/snapshot", match_info={"tail": "snapshot"}, transport=transport
        )
        response = await paper.server.handle_control(request)
        return response.status, json.loads(response.body)

    assert paper.loop is not None
    status, body = asyncio.run_coroutine_threadsafe(ask(), paper.loop).result(5)
    assert (status, body) == (403, {"error": "loopback only"})


def test_a_venue_bug_answers_500_json_and_the_server_keeps_serving(paper: EmbeddedPaper, rest: Rest) -> None:
    def boom(*_args: Any, **_kw: Any) -> Any:
        raise RuntimeError("venue bug")

    bid, _ = passive_prices(rest)
    before = rest.limit("BUY", bid)
    original = paper.venue.place_order
    paper.call(setattr, paper.venue, "place_order", boom)
    try:
        r = rest.limit("BUY", bid)
        assert (r.status_code, r.json()) == (
            500,
            {"code": -1000, "msg": "An unknown error occurred while processing the request."},
        )
        assert r.headers["Content-Type"].startswith("application/json")
    finally:
        paper.call(setattr, paper.venue, "place_order", original)
    after = rest.limit("BUY", bid)
    assert after.status_code == 200
    # the failed request did not count as an order (the daily window does not roll during a test)
    assert int(after.headers["X-MBX-ORDER-COUNT-1D"]) == int(before.headers["X-MBX-ORDER-COUNT-1D"]) + 1
    rest.signed("DELETE", "openOrders", {"symbol": SYMBOL})
