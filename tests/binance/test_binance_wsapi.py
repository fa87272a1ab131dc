"""WebSocket API order transport: signing, ids/futures, error classes, timeouts, lost connections."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from binance_fakes import WsServer
from botcore_exchange_binance.clock import ServerClock
from botcore_exchange_binance.errors import Banned, NotSent, RateLimited, UnknownStatus, VenueError
from botcore_exchange_binance.limiter import RateLimiter
from botcore_exchange_binance.scrub import Secret
from botcore_exchange_binance.wsapi import WsApiTransport, sign_params

KEY, SECRET = "wsapikey-0001", "wsapisecret-0001-xyz"
RATE = [{"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100, "count": 3}]


def check_signature(params: dict[str, Any]) -> bool:
    sig = params.get("signature", "")
    payload = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "signature")
    return hmac.compare_digest(sig, hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest())


class Venue:
    """Responder: order.* answers per a per-test script keyed by newClientOrderId / method."""

    def __init__(self) -> None:
        self.script: dict[str, dict[str, Any] | None] = {}  # coid -> reply override (None = never answer)
        self.requests: list[dict[str, Any]] = []

    def __call__(self, msg: dict[str, Any], server: WsServer, conn: int) -> list[dict[str, Any]] | None:
        self.requests.append(msg)
        params = msg["params"]
        if not check_signature(params):
            return [{"id": msg["id"], "status": 400, "error": {"code": -1022, "msg": "bad signature"}}]
        coid = params.get("newClientOrderId") or params.get("origClientOrderId", "")
        if coid in self.script:
            override = self.script[coid]
            if override is None:
                return None
            if override.get("drop"):
                threading.Thread(target=server.drop, daemon=True).start()
                return None
            return [{"id": msg["id"], "rateLimits": RATE, **override}]
        result = {"symbol": params["symbol"], "orderId": 7, "clientOrderId": coid, "status": "NEW",
                  "executedQty": "0", "fills": []}
        return [{"id": msg["id"], "status": 200, "result": result, "rateLimits": RATE}]


@pytest.fixture
def venue() -> Venue:
    return Venue()


@pytest.fixture
def server(venue: Venue) -> Iterator[WsServer]:
    s = WsServer(responder=venue)
    yield s
    s.close()


@pytest.fixture
def transport(server: WsServer) -> Iterator[WsApiTransport]:
    clock = ServerClock()
    t = WsApiTransport(server.url + "/ws-api/v3", Secret(KEY), Secret(SECRET), limiter=RateLimiter(clock.now_ms),
                       clock=clock, timeout_s=0.5, backoff_initial_s=0.02, backoff_max_s=0.1)
    t.start()
    assert t.socket.wait_open(5)
    yield t
    t.close()


def order(coid: str) -> dict[str, str]:
    return {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT_MAKER", "quantity": "0.001", "price": "60000",
            "newClientOrderId": coid, "newOrderRespType": "FULL"}


def test_signature_matches_the_documented_vector() -> None:
    key = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
    secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
    params = {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01000000",
              "price": "52000.00"}
    signed = sign_params(params, Secret(key), Secret(secret), 1645423376532, 100)
    assert signed["signature"] == "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"


def test_place_round_trip(transport: WsApiTransport, venue: Venue) -> None:
    result, wire_ns = transport.place(order("a-1"))
    assert result["clientOrderId"] == "a-1" and wire_ns > 0
    sent = venue.requests[-1]
    assert sent["method"] == "order.place" and sent["params"]["apiKey"] == KEY
    assert sent["params"]["recvWindow"] == 5000
    assert transport.limiter.used("ORDERS", "10S") == 3  # adopted from rateLimits


def test_concurrent_requests_get_their_own_answers(transport: WsApiTransport) -> None:
    results: dict[str, str] = {}

    def one(i: int) -> None:
        res, _ = transport.place(order(f"c-{i}"))
        results[f"c-{i}"] = res["clientOrderId"]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert results == {k: k for k in results} and len(results) == 16


@pytest.mark.parametrize(
    ("reply", "exc", "code"),
    [
        ({"status": 400, "error": {"code": -2010, "msg": "Order would immediately match and take."}}, VenueError, -2010),
        ({"status": 429, "error": {"code": -1015, "msg": "Too many new orders",
                                   "data": {"retryAfter": 3000, "serverTime": 1000}}}, RateLimited, -1015),
        ({"status": 418, "error": {"code": -1003, "msg": "banned"}}, Banned, -1003),
        ({"status": 503, "error": {"code": -1007, "msg": "Timeout waiting for response"}}, UnknownStatus, -1007),
        ({"status": 400, "error": {"code": -1006, "msg": "Unexpected response"}}, UnknownStatus, -1006),
    ],
)
def test_error_classes(transport: WsApiTransport, venue: Venue, reply: dict, exc: type, code: int) -> None:
    venue.script["e-1"] = reply
    with pytest.raises(exc) as info:
        transport.place(order("e-1"))
    assert info.value.code == code
    if exc is RateLimited:
        assert transport.limiter.cancel_only and 1.5 < transport.limiter.seconds_until_clear() <= 2.0
    if exc is Banned:
        assert transport.limiter.banned


def test_no_answer_is_unknown(transport: WsApiTransport, venue: Venue) -> None:
    venue.script["lost-1"] = None
    with pytest.raises(UnknownStatus, match="no answer"):
        transport.place(order("lost-1"))
    assert transport._pending == {}


def test_connection_lost_with_request_in_flight_is_unknown(transport: WsApiTransport, venue: Venue) -> None:
    venue.script["drop-1"] = {"drop": True}
    with pytest.raises(UnknownStatus, match="connection lost"):
        transport.place(order("drop-1"))
    assert transport.socket.wait_open(5)  # reconnects by itself
    result, _ = transport.place(order("after-1"))
    assert result["clientOrderId"] == "after-1"


def test_not_connected_is_not_sent() -> None:
    clock = ServerClock()
    t = WsApiTransport("ws://127.0.0.1:9/ws-api/v3", Secret(KEY), Secret(SECRET), limiter=RateLimiter(clock.now_ms),
                       clock=clock, connect_wait_s=0.2, backoff_initial_s=0.05)
    t.start()
    try:
        with pytest.raises(NotSent):
            t.place(order("n-1"))
    finally:
        t.close()
