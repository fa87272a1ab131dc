"""The adapter's failure policy over REST, against a scripted loopback venue.

429 -> cancel-only; 418 -> nothing sent; -1021 -> resync + one retry; -2011 -> query;
5xx / timeout / -1006 / -1007 -> UNKNOWN without resend; local filter failures never sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web
from binance_fakes import EXCHANGE_INFO, RestServer, json_response, order_answer, reply
from botcore_exchange_binance.adapter import BinanceAdapter, BinanceOptions, BinanceSettings
from botcore_exchange_binance.endpoints import Endpoints
from botcore_exchange_binance.scrub import Secret

from botcore.model import CancelRequest, OrderRequest, OrderStatus, Side

KEY, SECRET = "restkey-000001", "restsecret-000001-abc"


def _verify(request: web.Request, body: str) -> bool:
    raw = request.query_string + body
    parts = [p for p in raw.split("&") if p and not p.startswith("signature=")]
    sig = next(p for p in raw.split("&") if p.startswith("signature="))[len("signature="):]
    expected = hmac.new(SECRET.encode(), "&".join(parts).encode(), hashlib.sha256).hexdigest()
    return request.headers.get("X-MBX-APIKEY") == KEY and sig == expected


class Venue:
    """A small scripted venue: orders succeed unless a test overrides a handler."""

    def __init__(self, server: RestServer) -> None:
        self.server = server
        self.offset_ms = 0
        self.orders: dict[str, dict[str, Any]] = {}
        server.on("GET", "/api/v3/time", self._time)
        server.on("GET", "/api/v3/exchangeInfo", reply(EXCHANGE_INFO))
        server.on("POST", "/api/v3/order", self._place)
        server.on("DELETE", "/api/v3/order", self._cancel)
        server.on("GET", "/api/v3/order", self._query)

    async def _time(self, request: web.Request, params: dict[str, str]) -> web.Response:
        return json_response({"serverTime": int(time.time() * 1000) + self.offset_ms})

    async def _place(self, request: web.Request, params: dict[str, str]) -> web.Response:
        assert _verify(request, await request.text())
        ts = int(params["timestamp"])
        now = int(time.time() * 1000) + self.offset_ms
        if now - ts > int(params.get("recvWindow", 5000)) or ts - now > 1000:
            return json_response({"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}, 400)
        answer = order_answer(params, order_id=len(self.orders) + 1)
        self.orders[params["newClientOrderId"]] = answer
        return json_response(answer, headers={"X-MBX-USED-WEIGHT-1M": "1", "X-MBX-ORDER-COUNT-10S": str(len(self.orders)),
                                              "X-MBX-ORDER-COUNT-1D": str(len(self.orders))})

    async def _cancel(self, request: web.Request, params: dict[str, str]) -> web.Response:
        assert _verify(request, await request.text())
        o = self.orders.get(params["origClientOrderId"])
        if o is None or o["status"] != "NEW":
            return json_response({"code": -2011, "msg": "Unknown order sent."}, 400)
        o["status"] = "CANCELED"
        return json_response({**o, "origClientOrderId": o["clientOrderId"], "clientOrderId": "cxl-x"})

    async def _query(self, request: web.Request, params: dict[str, str]) -> web.Response:
        o = self.orders.get(params.get("origClientOrderId", ""))
        if o is None:
            return json_response({"code": -2013, "msg": "Order does not exist."}, 400)
        return json_response(o)


@pytest.fixture
def server() -> Iterator[RestServer]:
    s = RestServer()
    yield s
    s.close()


@pytest.fixture
def venue(server: RestServer) -> Venue:
    return Venue(server)


def make_adapter(url: str, **opts: Any) -> BinanceAdapter:
    options = BinanceOptions.from_mapping({"order_transport": "rest", "request_timeout_s": 0.5, **opts})
    settings = BinanceSettings(
        endpoints=Endpoints(rest_url=url, stream_url="ws://127.0.0.1:9", ws_api_url="ws://127.0.0.1:9/ws-api/v3"),
        api_key=Secret(KEY), api_secret=Secret(SECRET), symbols=("BTCUSDT",), options=options,
    )
    return BinanceAdapter(settings)


@pytest.fixture
def adapter(server: RestServer, venue: Venue) -> Iterator[BinanceAdapter]:
    a = make_adapter(server.url)
    a.exchange_info(["BTCUSDT"])
    yield a
    a.stop()


def new(coid: str, **kw: Any) -> OrderRequest:
    base: dict[str, Any] = dict(symbol="BTCUSDT", side=Side.BUY, qty=Decimal("0.00100"), price=Decimal("60000.00"),
                                client_order_id=coid)
    base.update(kw)
    return OrderRequest(**base)


def posts(server: RestServer) -> list[dict[str, str]]:
    return server.calls("POST", "/api/v3/order")


def test_submit_sends_plain_signed_params(adapter: BinanceAdapter, server: RestServer) -> None:
    out, fills = adapter.submit(new("mm-1", qty=Decimal("0.0012349"), price=Decimal("60000.019")))
    assert out.status is OrderStatus.NEW and out.client_order_id == "mm-1" and out.order_id == 1
    assert out.sent_ns and out.done_ns >= out.sent_ns and fills == ()
    p = posts(server)[0]
    assert p["quantity"] == "0.00123" and p["price"] == "60000.01" and p["type"] == "LIMIT_MAKER"
    assert p["newClientOrderId"] == "mm-1" and p["newOrderRespType"] == "FULL" and p["recvWindow"] == "5000"
    assert adapter.limiter.used("ORDERS", "10S") == 1


def test_filter_failure_is_rejected_locally(adapter: BinanceAdapter, server: RestServer) -> None:
    out, _ = adapter.submit(new("small", qty=Decimal("0.00001")))  # 0.6 USDT < minNotional 5
    assert out.status is OrderStatus.REJECTED and out.error_code == -1013 and "NOTIONAL" in out.error_msg
    assert "not sent" in out.error_msg and posts(server) == []


def test_429_goes_cancel_only_until_retry_after(adapter: BinanceAdapter, server: RestServer, venue: Venue) -> None:
    adapter.submit(new("live-1"))
    server.on("POST", "/api/v3/order", reply({"code": -1003, "msg": "Too much request weight used"}, 429,
                                             {"Retry-After": "1"}))
    out, _ = adapter.submit(new("x-1"))
    assert out.status is OrderStatus.REJECTED and out.error_code == -1003
    out, _ = adapter.submit(new("x-2"))
    assert out.status is OrderStatus.REJECTED and "cancel-only" in out.error_msg
    assert len(posts(server)) == 2  # the second one never left
    c = adapter.cancel(CancelRequest("BTCUSDT", "live-1"))
    assert c.status is OrderStatus.CANCELED  # cancels still go out
    server.on("POST", "/api/v3/order", venue._place)
    time.sleep(1.05)
    out, _ = adapter.submit(new("x-3"))
    assert out.status is OrderStatus.NEW


def test_418_stops_everything(adapter: BinanceAdapter, server: RestServer) -> None:
    adapter.submit(new("live-1"))
    server.on("POST", "/api/v3/order", reply({"code": -1003, "msg": "Way too much request weight used; IP banned"},
                                             418, {"Retry-After": "30"}))
    out, _ = adapter.submit(new("b-1"))
    assert out.status is OrderStatus.REJECTED and adapter.limiter.banned
    n = len(server.requests)
    c = adapter.cancel(CancelRequest("BTCUSDT", "live-1"))
    assert c.status is OrderStatus.REJECTED and "banned" in c.error_msg
    q = adapter.query_order("BTCUSDT", "live-1")
    assert q.status is OrderStatus.UNKNOWN
    with pytest.raises(Exception, match="banned"):
        adapter.depth_snapshot("BTCUSDT")
    assert len(server.requests) == n  # nothing at all was sent during the ban


def test_1021_resyncs_clock_and_retries_once(adapter: BinanceAdapter, server: RestServer, venue: Venue) -> None:
    adapter.resync_clock(min_age_s=0)
    syncs = len(server.calls("GET", "/api/v3/time"))
    venue.offset_ms = 30_000  # the venue's clock jumps ahead: our timestamps fall outside recvWindow
    out, _ = adapter.submit(new("skew-1"))
    assert out.status is OrderStatus.NEW
    assert len(posts(server)) == 2 and len(server.calls("GET", "/api/v3/time")) == syncs + 1
    assert abs(adapter.clock.offset_ms - 30_000) < 1000


def test_1021_twice_is_rejected_not_looped(adapter: BinanceAdapter, server: RestServer) -> None:
    server.on("POST", "/api/v3/order", reply({"code": -1021, "msg": "Timestamp outside recvWindow"}, 400))
    out, _ = adapter.submit(new("skew-2"))
    assert out.status is OrderStatus.REJECTED and out.error_code == -1021
    assert len(posts(server)) == 2


@pytest.mark.parametrize(
    ("status", "body"),
    [(503, {"code": -1007, "msg": "Timeout waiting for response from backend server."}),
     (500, {"code": -1000, "msg": "internal"}),
     (400, {"code": -1006, "msg": "An unexpected response was received from the message bus."}),
     (502, "<html>bad gateway</html>")],
)
def test_5xx_and_unknown_codes_are_unknown_and_never_resent(
    adapter: BinanceAdapter, server: RestServer, venue: Venue, status: int, body: Any
) -> None:
    async def executed_then_fails(request: web.Request, params: dict[str, str]) -> web.Response:
        await venue._place(request, params)  # the venue DID place it
        if isinstance(body, str):
            return web.Response(text=body, status=status, content_type="text/html")
        return json_response(body, status)

    server.on("POST", "/api/v3/order", executed_then_fails)
    out, _ = adapter.submit(new("u-1"))
    assert out.status is OrderStatus.UNKNOWN
    assert len(posts(server)) == 1  # no blind resend
    q = adapter.query_order("BTCUSDT", "u-1")
    assert q.status is OrderStatus.NEW and q.action == "query" and q.order_id == 1


def test_timeout_is_unknown_and_query_resolves(adapter: BinanceAdapter, server: RestServer, venue: Venue) -> None:
    async def slow(request: web.Request, params: dict[str, str]) -> web.Response:
        await venue._place(request, params)
        await asyncio.sleep(1.0)  # longer than request_timeout_s
        return json_response({})

    server.on("POST", "/api/v3/order", slow)
    out, _ = adapter.submit(new("slow-1"))
    assert out.status is OrderStatus.UNKNOWN and "Timeout" in out.error_msg
    assert adapter.query_order("BTCUSDT", "slow-1").status is OrderStatus.NEW
    never = adapter.query_order("BTCUSDT", "never-sent")
    assert never.status is OrderStatus.REJECTED and never.error_code == -2013


def test_connection_refused_is_certainly_not_sent(venue: Venue) -> None:
    a = make_adapter("http://127.0.0.1:9")
    try:
        a._instruments.update({"BTCUSDT": _instrument()})
        a.clock.set_offset(0)
        out, _ = a.submit(new("r-1"))
        assert out.status is OrderStatus.REJECTED and "not sent" in out.error_msg
    finally:
        a.stop()


def _instrument() -> Any:
    from botcore_exchange_binance import decode

    return decode.instruments(EXCHANGE_INFO)["BTCUSDT"]


def test_cancel_2011_is_resolved_by_query(adapter: BinanceAdapter, venue: Venue, server: RestServer) -> None:
    adapter.submit(new("f-1"))
    venue.orders["f-1"].update(status="FILLED", executedQty="0.00100000")
    out = adapter.cancel(CancelRequest("BTCUSDT", "f-1"))
    assert out.action == "cancel" and out.status is OrderStatus.FILLED and out.error_code == -2011
    assert out.cum_qty == Decimal("0.001") and "resolved by query" in out.error_msg
    gone = adapter.cancel(CancelRequest("BTCUSDT", "ghost"))
    assert gone.status is OrderStatus.REJECTED and gone.error_code == -2011 and "-2013" not in gone.error_msg


def test_cancel_replace_success_and_failures(adapter: BinanceAdapter, server: RestServer, venue: Venue) -> None:
    adapter.submit(new("old-1"))

    async def ok(request: web.Request, params: dict[str, str]) -> web.Response:
        assert params["cancelReplaceMode"] == "STOP_ON_FAILURE" and params["cancelOrigClientOrderId"] == "old-1"
        cancel = {**venue.orders["old-1"], "status": "CANCELED", "origClientOrderId": "old-1", "clientOrderId": "z"}
        newo = {**order_answer(params, order_id=99), "status": "FILLED", "executedQty": "0.001",
                "fills": [{"price": "60000.00", "qty": "0.001", "commission": "0", "commissionAsset": "BTC",
                           "tradeId": 5}]}
        return json_response({"cancelResult": "SUCCESS", "newOrderResult": "SUCCESS", "cancelResponse": cancel,
                              "newOrderResponse": newo})

    server.on("POST", "/api/v3/order/cancelReplace", ok)
    c, n, fills = adapter.cancel_replace(CancelRequest("BTCUSDT", "old-1"), new("new-1", price=Decimal("60001")))
    assert (c.client_order_id, c.status) == ("old-1", OrderStatus.CANCELED)
    assert (n.client_order_id, n.status, n.order_id) == ("new-1", OrderStatus.FILLED, 99)
    assert [f.trade_id for f in fills] == [5]

    server.on("POST", "/api/v3/order/cancelReplace", reply(
        {"code": -2022, "msg": "Order cancel-replace failed.",
         "data": {"cancelResult": "FAILURE", "newOrderResult": "NOT_ATTEMPTED",
                  "cancelResponse": {"code": -2011, "msg": "Unknown order sent."}, "newOrderResponse": None}}, 400))
    c, n, _ = adapter.cancel_replace(CancelRequest("BTCUSDT", "ghost"), new("new-2"))
    assert c.status is OrderStatus.REJECTED and c.error_code == -2011  # the query said: never existed
    assert n.status is OrderStatus.REJECTED and "not attempted" in n.error_msg

    server.on("POST", "/api/v3/order/cancelReplace", reply(
        {"code": -2021, "msg": "Order cancel-replace partially failed.",
         "data": {"cancelResult": "SUCCESS", "newOrderResult": "FAILURE",
                  "cancelResponse": {**venue.orders["old-1"], "status": "CANCELED", "origClientOrderId": "old-1"},
                  "newOrderResponse": {"code": -2010, "msg": "Order would immediately match and take."}}}, 409))
    c, n, _ = adapter.cancel_replace(CancelRequest("BTCUSDT", "old-1"), new("new-3"))
    assert c.status is OrderStatus.CANCELED and n.status is OrderStatus.REJECTED and n.error_code == -2010


def test_cancel_replace_with_an_invalid_new_order_only_cancels(adapter: BinanceAdapter, server: RestServer) -> None:
    adapter.submit(new("old-2"))
    c, n, _ = adapter.cancel_replace(CancelRequest("BTCUSDT", "old-2"), new("tiny", qty=Decimal("0.00001")))
    assert c.status is OrderStatus.CANCELED and n.status is OrderStatus.REJECTED and "NOTIONAL" in n.error_msg
    assert server.calls("POST", "/api/v3/order/cancelReplace") == []


def test_order_budget_refuses_locally(server: RestServer, venue: Venue) -> None:
    info = json.loads(json.dumps(EXCHANGE_INFO))
    info["rateLimits"][1]["limit"] = 4  # ORDERS 4 / 10 s; reserve 2 -> 2 usable
    server.on("GET", "/api/v3/exchangeInfo", reply(info))
    a = make_adapter(server.url)
    try:
        a.exchange_info(["BTCUSDT"])
        results = [a.submit(new(f"b-{i}"))[0] for i in range(3)]
        assert [r.status for r in results[:2]] == [OrderStatus.NEW, OrderStatus.NEW]
        assert results[2].status is OrderStatus.REJECTED and "order budget" in results[2].error_msg
        assert len(posts(server)) == 2
    finally:
        a.stop()


def test_reads_depth_account_trades(adapter: BinanceAdapter, server: RestServer, venue: Venue) -> None:
    raw = b'{"lastUpdateId":1027024,"bids":[["4.00000000","431.00000000"]],"asks":[["4.00000200","12.00000000"]]}'

    async def depth(request: web.Request, params: dict[str, str]) -> web.Response:
        assert params == {"symbol": "BTCUSDT", "limit": "1000"}
        return web.Response(body=raw, content_type="application/json", headers={"X-MBX-USED-WEIGHT-1M": "77"})

    server.on("GET", "/api/v3/depth", depth)
    assert adapter.depth_snapshot("BTCUSDT") == raw  # raw bytes, byte for byte
    assert adapter.limiter.used("REQUEST_WEIGHT", "1M") == 77
    server.on("GET", "/api/v3/account", reply({"updateTime": 5, "balances": [
        {"asset": "BTC", "free": "1.0", "locked": "0.5"}]}))
    server.on("GET", "/api/v3/openOrders", reply([{**order_answer({"newClientOrderId": "o-1"}, order_id=3),
                                                   "time": 1, "updateTime": 2}]))
    snap = adapter.account_snapshot()
    assert snap.balances[0].locked == Decimal("0.5") and snap.open_orders[0].client_order_id == "o-1"
    assert snap.update_time_ms == 5
    server.on("GET", "/api/v3/myTrades", reply([
        {"symbol": "BTCUSDT", "id": 1, "orderId": 3, "price": "1", "qty": "1", "commission": "0",
         "commissionAsset": "BTC", "time": 1, "isBuyer": True, "isMaker": True},
        {"symbol": "BTCUSDT", "id": 2, "orderId": 404, "price": "1", "qty": "1", "commission": "0",
         "commissionAsset": "BTC", "time": 1, "isBuyer": True, "isMaker": True}]))
    server.on("GET", "/api/v3/order", reply({**order_answer({"newClientOrderId": "outside-1"}), "orderId": 404}))
    trades = adapter.my_trades("BTCUSDT")
    assert [t.client_order_id for t in trades] == ["o-1", "outside-1"]  # learned from openOrders, then asked


def test_snapshot_fence_is_taken_before_the_open_orders_are_listed(
    adapter: BinanceAdapter, server: RestServer, venue: Venue
) -> None:
    """``fetched_at_ms`` fences the order list: an order whose last event is at or after it may
    postdate the list. Stamped after the (slow) account call, an order placed and acknowledged
    while that call ran looked older than the list and was wrongly reported missing on the venue."""
    listed_at: list[int] = []

    async def open_orders(request: web.Request, params: dict[str, str]) -> web.Response:
        listed_at.append(int(time.time() * 1000) + venue.offset_ms)
        return json_response([])

    async def account(request: web.Request, params: dict[str, str]) -> web.Response:
        await asyncio.sleep(0.08)  # meanwhile an order is placed and acknowledged
        return json_response({"updateTime": 5, "balances": []})

    server.on("GET", "/api/v3/openOrders", open_orders)
    server.on("GET", "/api/v3/account", account)
    snap = adapter.account_snapshot()
    assert len(listed_at) == 1
    assert snap.fetched_at_ms <= listed_at[0] + 5  # at the listing (clock estimate aside), not 80 ms later


def test_two_adapters_coexist_without_global_state() -> None:
    from binance.base_client import BaseClient
    from binance.client import Client

    before = (Client.API_URL, BaseClient.API_URL, BaseClient.API_TESTNET_URL, BaseClient.WS_API_URL)
    s1, s2 = RestServer(), RestServer()
    try:
        for s in (s1, s2):
            Venue(s)
        a1, a2 = make_adapter(s1.url), make_adapter(s2.url)
        try:
            a1.server_time_ms()
            a2.server_time_ms()
            a2.server_time_ms()
            assert len(s1.calls("GET", "/api/v3/time")) == 1 and len(s2.calls("GET", "/api/v3/time")) == 2
        finally:
            a1.stop()
            a2.stop()
    finally:
        s1.close()
        s2.close()
    assert before == (Client.API_URL, BaseClient.API_URL, BaseClient.API_TESTNET_URL, BaseClient.WS_API_URL)


def test_clock_is_resynced_periodically(server: RestServer, venue: Venue) -> None:
    from binance_fakes import Sink

    a = make_adapter(server.url, time_sync_interval_s=0.1)
    try:
        a.start(Sink(), [])  # no symbols: no market stream; the user stream retries a dead port
        deadline = time.monotonic() + 5
        while len(server.calls("GET", "/api/v3/time")) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(server.calls("GET", "/api/v3/time")) >= 3
    finally:
        a.stop()


def test_a_burst_of_1021_costs_one_time_sync(adapter: BinanceAdapter, server: RestServer, venue: Venue) -> None:
    import threading

    adapter.resync_clock(min_age_s=0)
    syncs = len(server.calls("GET", "/api/v3/time"))
    venue.offset_ms = 30_000
    gate = threading.Barrier(4)
    outs: list[Any] = []

    def one(i: int) -> None:
        gate.wait()
        outs.append(adapter.submit(new(f"burst-{i}"))[0])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert [o.status for o in outs] == [OrderStatus.NEW] * 4
    assert len(server.calls("GET", "/api/v3/time")) - syncs == 1  # not one per failed request


def test_ws_api_transport_falls_back_to_rest_while_disconnected(server: RestServer, venue: Venue) -> None:
    a = make_adapter(server.url, order_transport="ws_api")  # its WS API URL points at a dead port
    try:
        a.exchange_info(["BTCUSDT"])
        out, _ = a.submit(new("fb-1"))
        assert out.status is OrderStatus.NEW and a.rest_fallbacks == 1
        assert [p["newClientOrderId"] for p in posts(server)] == ["fb-1"]
        assert a.cancel(CancelRequest("BTCUSDT", "fb-1")).status is OrderStatus.CANCELED
    finally:
        a.stop()
