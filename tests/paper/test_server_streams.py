"""Market-data websockets: raw and combined streams, live SUBSCRIBE control, depth consistency, timers."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
import websocket
from botcore_exchange_paper.embedded import EmbeddedPaper
from paper_support import SYMBOL, Rest, Ws, start_paper, wait_for

STREAM = "btcusdt"


def synced(ws: Ws, req_id: int = 999) -> None:
    """Round-trip a LIST_SUBSCRIPTIONS so the server has certainly registered the connection."""
    ws.send({"method": "LIST_SUBSCRIPTIONS", "id": req_id})
    ws.until(lambda m: m.get("id") == req_id and "result" in m)


def test_raw_stream_in_path(paper: EmbeddedPaper) -> None:
    ws = Ws(paper.stream_url + f"ws/{STREAM}@bookTicker")
    try:
        synced(ws)
        paper.step(200)
        msg, _ = ws.until(lambda m: "u" in m)
        assert set(msg) == {"u", "s", "b", "B", "a", "A"} and msg["s"] == SYMBOL
        assert Decimal(msg["b"]) < Decimal(msg["a"])
    finally:
        ws.close()


def test_subscribe_on_ws_0_like_ccxt_pro(paper: EmbeddedPaper) -> None:
    ws = Ws(paper.stream_url + "ws/0")
    try:
        ws.send({"method": "SUBSCRIBE", "params": [f"{STREAM}@depth@100ms"], "id": 1})
        assert ws.recv() == {"result": None, "id": 1}
        paper.step(200)
        msg, _ = ws.until(lambda m: m.get("e") == "depthUpdate")
        assert msg["s"] == SYMBOL and msg["U"] <= msg["u"]
        uuid = "6b7e590b-0011-47b6-9c76-c56e2e1eaa82"
        ws.send({"method": "LIST_SUBSCRIPTIONS", "id": uuid})
        reply, _ = ws.until(lambda m: m.get("id") == uuid)
        assert reply == {"result": [f"{STREAM}@depth@100ms"], "id": uuid}
        ws.send({"method": "UNSUBSCRIBE", "params": [f"{STREAM}@depth@100ms"], "id": None})
        ws.until(lambda m: "result" in m and m["id"] is None)
        ws.drain()
        paper.step(200)
        assert [m for m in ws.drain() if m.get("e") == "depthUpdate"] == []
    finally:
        ws.close()


@pytest.mark.parametrize(
    ("request_text", "expected"),
    [
        ('{"method": "SUBSCRIBE", "params": ["not a stream"], "id": 7}',
         {"code": 2, "msg": "Invalid request: invalid stream", "id": 7}),
        ('{"method": "FOO", "params": [], "id": 8}',
         {"code": 2, "msg": "Invalid request: unknown variant `FOO`, expected one of `SUBSCRIBE`, `UNSUBSCRIBE`, "
                            "`LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY` at line 1 column 28", "id": 8}),
        ('{"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 9}',
         {"code": 1, "msg": "Invalid value type: expected Boolean", "id": 9}),
        ('{"method": "GET_PROPERTY", "params": ["nope"], "id": 10}', {"code": 0, "msg": "Unknown property", "id": 10}),
        ('{"method": "GET_PROPERTY", "params": [5], "id": 11}',
         {"code": 2, "msg": "Invalid request: property name must be a string", "id": 11}),
        ('{"method": "SET_PROPERTY", "params": ["combined", true, 1], "id": 12}',
         {"code": 2, "msg": "Invalid request: too many parameters", "id": 12}),
        ('{"method": "SUBSCRIBE", "params": [], "id": {"x": 1}}',
         {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"}),
        ('{"params": [], "id": 13}', {"code": 2, "msg": "Invalid request: missing field `method` at line 1 column 24",
                                      "id": 13}),
    ],
)  # fmt: skip
def test_control_message_errors(paper: EmbeddedPaper, request_text: str, expected: dict[str, Any]) -> None:
    ws = Ws(paper.stream_url + "ws")
    try:
        ws.send(request_text)
        assert ws.recv() == expected
        ws.send({"method": "GET_PROPERTY", "params": ["combined"], "id": 99})
        assert ws.recv() == {"result": False, "id": 99}  # the connection keeps serving
    finally:
        ws.close()


def test_invalid_json_gets_code_3(paper: EmbeddedPaper) -> None:
    ws = Ws(paper.stream_url + "ws")
    try:
        ws.send("{oops")
        reply = ws.recv()
        assert (
            reply["code"] == 3
            and reply["msg"].startswith("Invalid JSON: ")
            and "line 1 column 2" in reply["msg"]
        )
    finally:
        ws.close()


def test_set_property_combined_switches_envelope(paper: EmbeddedPaper) -> None:
    ws = Ws(paper.stream_url + f"ws/{STREAM}@bookTicker")
    try:
        ws.send({"method": "SET_PROPERTY", "params": ["combined", True], "id": 1})
        ws.until(lambda m: m.get("id") == 1 and "result" in m)
        ws.send({"method": "GET_PROPERTY", "params": ["combined"], "id": 2})
        assert ws.until(lambda m: m.get("id") == 2)[0] == {"result": True, "id": 2}
        paper.step(200)
        msg, _ = ws.until(lambda m: "stream" in m)
        assert msg["stream"] == f"{STREAM}@bookTicker" and msg["data"]["s"] == SYMBOL
    finally:
        ws.close()


def test_combined_streams_url(paper: EmbeddedPaper) -> None:
    ws = Ws(paper.stream_url + f"stream?streams={STREAM}@bookTicker/{STREAM}@depth@100ms")
    try:
        synced(ws)
        paper.step(300)
        seen: set[str] = set()
        end = time.monotonic() + 5
        while seen != {f"{STREAM}@bookTicker", f"{STREAM}@depth@100ms"} and time.monotonic() < end:
            m = ws.recv()
            if "stream" in m:
                assert set(m) == {"stream", "data"}
                seen.add(m["stream"])
        assert seen == {f"{STREAM}@bookTicker", f"{STREAM}@depth@100ms"}
    finally:
        ws.close()


def _apply(side: dict[Decimal, Decimal], levels: list[list[str]]) -> None:
    for p, q in levels:
        if Decimal(q) == 0:
            side.pop(Decimal(p), None)
        else:
            side[Decimal(p)] = Decimal(q)


def test_depth_diffs_are_contiguous_and_rebuild_the_rest_book(paper: EmbeddedPaper, rest: Rest) -> None:
    """Binance's local-book algorithm over the socket ends exactly at REST depth's lastUpdateId."""
    ws = Ws(paper.stream_url + f"ws/{STREAM}@depth@100ms")
    placed: dict[str, Any] = {}
    try:
        synced(ws)
        paper.step(50)
        snap = rest.public("depth", symbol=SYMBOL, limit=5000).json()
        paper.step(400)
        # own resting orders are part of the served book too
        bid = Decimal(snap["bids"][0][0]) * Decimal("0.995")
        placed = rest.limit("BUY", f"{bid.quantize(Decimal('0.01'))}").json()
        paper.step(100)
        final = rest.public("depth", symbol=SYMBOL, limit=5000).json()
        last = final["lastUpdateId"]
        assert last > snap["lastUpdateId"]
        last_diff, diffs = ws.until(lambda m: m.get("u") == last, timeout=10)
        diffs = [d for d in [*diffs, last_diff] if d.get("e") == "depthUpdate"]
        bids = {Decimal(p): Decimal(q) for p, q in snap["bids"]}
        asks = {Decimal(p): Decimal(q) for p, q in snap["asks"]}
        local = snap["lastUpdateId"]
        applied = 0
        for d in diffs:
            if d["u"] <= local:
                continue
            if applied == 0:
                assert d["U"] <= local + 1 <= d["u"]
            else:
                assert d["U"] == local + 1, "diffs must be contiguous"
            _apply(bids, d["b"])
            _apply(asks, d["a"])
            local = d["u"]
            applied += 1
        assert applied > 0 and local == last
        assert sorted(bids.items(), reverse=True) == [(Decimal(p), Decimal(q)) for p, q in final["bids"]]
        assert sorted(asks.items()) == [(Decimal(p), Decimal(q)) for p, q in final["asks"]]
    finally:
        ws.close()
        if placed:
            rest.signed("DELETE", "order", {"symbol": SYMBOL, "orderId": placed["orderId"]})


def test_partial_depth_stream_matches_rest(paper: EmbeddedPaper, rest: Rest) -> None:
    ws = Ws(paper.stream_url + f"ws/{STREAM}@depth5@100ms")
    try:
        synced(ws)
        paper.step(100)
        msg, _ = ws.until(lambda m: "lastUpdateId" in m)
        assert set(msg) == {"lastUpdateId", "bids", "asks"}
        assert len(msg["bids"]) == 5 and len(msg["asks"]) == 5
        # the book does not move without steps: the next REST snapshot is the same state
        ws.drain(0.3)
        rest_book = rest.public("depth", symbol=SYMBOL, limit=5).json()
        paper.step(50)
        latest, _ = ws.until(lambda m: "lastUpdateId" in m and m["lastUpdateId"] > rest_book["lastUpdateId"])
        assert latest["lastUpdateId"] == rest.public("depth", symbol=SYMBOL, limit=5).json()["lastUpdateId"]
        assert latest == rest.public("depth", symbol=SYMBOL, limit=5).json()
    finally:
        ws.close()


def test_trade_streams_carry_recorded_and_own_trades(paper: EmbeddedPaper, rest: Rest) -> None:
    ws = Ws(paper.stream_url + f"stream?streams={STREAM}@trade/{STREAM}@aggTrade")
    try:
        synced(ws)
        paper.step(3000)
        msg, _ = ws.until(lambda m: m.get("stream") == f"{STREAM}@trade", timeout=10)
        t = msg["data"]
        assert t["e"] == "trade" and t["s"] == SYMBOL and {"t", "p", "q", "T", "m"} <= set(t)
        ws.drain(0.3)
        r = rest.order(side="BUY", type="MARKET", quantity="0.001")
        assert r.status_code == 200, r.text
        price = r.json()["fills"][0]["price"]
        own, _ = ws.until(lambda m: m.get("stream") == f"{STREAM}@trade" and m["data"]["p"] == price)
        assert own["data"]["m"] is False  # a buy taker: the buyer is not the maker
    finally:
        ws.close()


# -- timers: pings, pong timeout, max lifetime, limits -------------------------------------------


@pytest.fixture(scope="module")
def fast_paper() -> Any:
    p = start_paper(
        options={
            "ping_interval_s": 0.15,
            "pong_timeout_s": 0.5,
            "max_lifetime_s": 1.2,
            "shutdown_notice_s": 0.3,
            "outbox_limit": 20,
            "ws_max_incoming_per_s": 5,
        },  # fmt: skip
        warmup=50,
    )
    yield p
    p.close()


def test_server_pings_and_closes_without_pong(fast_paper: EmbeddedPaper) -> None:
    async def run() -> tuple[int, float, aiohttp.WSMsgType]:
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(fast_paper.stream_url + "ws", autoping=False)
            pings = 0
            start = time.monotonic()
            while True:
                msg = await ws.receive(timeout=5)
                if msg.type == aiohttp.WSMsgType.PING:
                    pings += 1  # deliberately never answered
                    continue
                return pings, time.monotonic() - start, msg.type

    pings, elapsed, kind = asyncio.run(run())
    assert kind in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert pings >= 2 and 0.5 <= elapsed < 1.2


def test_answering_pings_keeps_the_connection_until_max_lifetime(fast_paper: EmbeddedPaper) -> None:
    cases = {
        "ws": lambda m: m["e"] == "serverShutdown",
        "stream?streams=btcusdt@trade": lambda m: (
            m["stream"] == "!serverShutdown" and m["data"]["e"] == "serverShutdown"
        ),
        "ws-api/v3": lambda m: m["event"]["e"] == "serverShutdown",
    }

    def watch(path: str) -> tuple[Any, float, float]:
        ws = Ws(fast_paper.stream_url + path)  # websocket-client answers pings while it reads
        start = time.monotonic()
        try:
            msg = ws.recv(3)
            notice = time.monotonic() - start
            with pytest.raises(websocket.WebSocketConnectionClosedException):
                ws.recv(3)
            return msg, notice, time.monotonic() - start
        finally:
            ws.close()

    with ThreadPoolExecutor(len(cases)) as pool:
        results = dict(zip(cases, pool.map(watch, cases), strict=True))
    for path, (msg, notice, closed_after) in results.items():
        assert cases[path](msg), msg
        assert 0.8 <= notice < 1.2 and closed_after >= 0.95, (
            path,
            notice,
            closed_after,
        )  # notice 0.3 s before 1.2 s


def test_slow_consumer_is_disconnected(fast_paper: EmbeddedPaper) -> None:
    ws = Ws(fast_paper.stream_url + f"ws/{STREAM}@depth@100ms/{STREAM}@bookTicker")
    synced(ws)
    fast_paper.step(500)  # one loop turn: more than outbox_limit frames queue up at once
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
        for _ in range(1000):
            ws.recv(3)
    wait_for(lambda: fast_paper.status()["market_connections"] == 0)


def test_too_many_incoming_messages_disconnect(fast_paper: EmbeddedPaper) -> None:
    ws = Ws(fast_paper.stream_url + "ws")
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
        for i in range(20):
            ws.send({"method": "LIST_SUBSCRIPTIONS", "id": i})
        for _ in range(20):
            ws.recv(3)
