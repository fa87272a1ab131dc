"""Loopback fakes for the Binance adapter's unit tests: an event sink, a scripted WebSocket
server and a scripted REST server (aiohttp on its own loop thread, free ports, 127.0.0.1 only)."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

from botcore.events import MarketFrame, StreamStatus, UserEvent


class Sink:
    """Thread-safe EventSink recording everything; ``wait_for`` polls a predicate."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self._cond = threading.Condition()

    def put(self, event: Any) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait_for(self, pred: Callable[[list[Any]], Any], timeout: float = 5.0) -> Any:
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                result = pred(self.events)
                if result:
                    return result
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"condition not met in {timeout}s; events: {self.events[-10:]!r}")
                self._cond.wait(left)

    def of(self, cls: type) -> list[Any]:
        with self._cond:
            return [e for e in self.events if isinstance(e, cls)]

    def statuses(self, stream: str | None = None) -> list[StreamStatus]:
        return [s for s in self.of(StreamStatus) if stream is None or s.stream == stream]

    def frames(self) -> list[MarketFrame]:
        return self.of(MarketFrame)

    def user(self) -> list[UserEvent]:
        return self.of(UserEvent)


class LoopThread:
    """An asyncio loop in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[Any], timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def call(self, fn: Callable[[], Any]) -> None:
        self.loop.call_soon_threadsafe(fn)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


Responder = Callable[[dict[str, Any], "WsServer", int], list[dict[str, Any]] | None]


class WsServer:
    """Accepts WebSocket connections on any path; records connections and client messages.

    ``responder(msg, server, conn_no)`` may return frames to send back for each JSON message.
    ``push`` sends to the newest live connection; ``drop`` kills all connections abruptly;
    ``mute`` keeps connections open but swallows pushes (a silent stall).
    """

    def __init__(self, responder: Responder | None = None, *, autoping: bool = True) -> None:
        self.responder = responder
        self.autoping = autoping
        self.lt = LoopThread()
        self.paths: list[str] = []
        self.received: queue.Queue[tuple[int, Any]] = queue.Queue()
        self.pongs: queue.Queue[bytes] = queue.Queue()
        self.conns: list[web.WebSocketResponse] = []
        self.muted = False
        self._runner: web.AppRunner | None = None
        self.port = self.lt.run(self._start())

    async def _start(self) -> int:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handler)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def _handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=self.autoping)
        self.paths.append(request.path_qs)
        await ws.prepare(request)
        conn_no = len(self.conns)
        self.conns.append(ws)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                data = json.loads(msg.data)
                self.received.put((conn_no, data))
                if self.responder is not None:
                    for reply in self.responder(data, self, conn_no) or ():
                        if not self.muted:
                            await ws.send_str(json.dumps(reply))
            elif msg.type == WSMsgType.PONG:
                self.pongs.put(msg.data)
        return ws

    def push(self, payload: Any, conn: int | None = None) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload)

        async def send() -> None:
            live = [c for c in self.conns if not c.closed]
            if not live or self.muted:
                return
            target = self.conns[conn] if conn is not None else live[-1]
            await target.send_str(text)

        self.lt.run(send())

    def ping(self, payload: bytes) -> None:
        async def send() -> None:
            await [c for c in self.conns if not c.closed][-1].ping(payload)

        self.lt.run(send())

    def drop(self) -> None:
        """Abrupt close of every connection (like a network cut)."""

        async def kill() -> None:
            for c in self.conns:
                if not c.closed:
                    transport = c._req.transport if c._req is not None else None  # type: ignore[union-attr]
                    if transport is not None:
                        transport.abort()

        self.lt.run(kill())

    def live(self) -> int:
        return sum(1 for c in self.conns if not c.closed)

    def next_message(self, timeout: float = 5.0) -> tuple[int, Any]:
        return self.received.get(timeout=timeout)

    def close(self) -> None:
        if self._runner is not None:
            try:
                self.lt.run(self._runner.cleanup())
            except Exception:
                pass
        self.lt.close()


Handler = Callable[[web.Request, dict[str, str]], Awaitable[web.Response]]


class RestServer:
    """Scripted REST venue: ``handlers[(METHOD, "/api/v3/xxx")] = async fn(request, params)``.

    ``params`` merges the query string and a form body (as Binance does); ``requests`` records
    (method, path, params) of every call.
    """

    def __init__(self) -> None:
        self.lt = LoopThread()
        self.handlers: dict[tuple[str, str], Handler] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.raw: list[str] = []
        self._runner: web.AppRunner | None = None
        self.port = self.lt.run(self._start())

    async def _start(self) -> int:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _dispatch(self, request: web.Request) -> web.Response:
        params = dict(request.query)
        body = await request.text()
        if body:
            from urllib.parse import parse_qsl

            for k, v in parse_qsl(body):
                params.setdefault(k, v)
        self.raw.append(f"{request.method} {request.path_qs} {body}")
        self.requests.append((request.method, request.path, params))
        handler = self.handlers.get((request.method, request.path))
        if handler is None:
            return json_response({"code": -1000, "msg": f"no handler for {request.method} {request.path}"}, 400)
        return await handler(request, params)

    def on(self, method: str, path: str, handler: Handler) -> None:
        self.handlers[(method, path)] = handler

    def calls(self, method: str, path: str) -> list[dict[str, str]]:
        return [p for m, pa, p in self.requests if m == method and pa == path]

    def close(self) -> None:
        if self._runner is not None:
            try:
                self.lt.run(self._runner.cleanup())
            except Exception:
                pass
        self.lt.close()


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        text=json.dumps(body), status=status, content_type="application/json", headers=headers or {}
    )


def reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Handler:
    async def handler(request: web.Request, params: dict[str, str]) -> web.Response:
        return json_response(body, status, headers)

    return handler


EXCHANGE_INFO: dict[str, Any] = {
    "timezone": "UTC",
    "serverTime": 0,
    "rateLimits": [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
        {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
    ],
    "exchangeFilters": [],
    "symbols": [
        {
            "symbol": "BTCUSDT",
            "status": "TRADING",
            "baseAsset": "BTC",
            "baseAssetPrecision": 8,
            "quoteAsset": "USDT",
            "quoteAssetPrecision": 8,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000", "tickSize": "0.01000000"},
                {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
                {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
                 "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
                {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            ],
        }
    ],
}


def order_answer(params: dict[str, str], status: str = "NEW", order_id: int = 1) -> dict[str, Any]:
    """A RESULT/FULL order answer built from the request parameters."""
    return {
        "symbol": params.get("symbol", "BTCUSDT"),
        "orderId": order_id,
        "orderListId": -1,
        "clientOrderId": params.get("newClientOrderId", ""),
        "transactTime": 1,
        "price": params.get("price", "0"),
        "origQty": params.get("quantity", "0"),
        "executedQty": "0.00000000",
        "cummulativeQuoteQty": "0.00000000",
        "status": status,
        "timeInForce": params.get("timeInForce", "GTC"),
        "type": params.get("type", "LIMIT"),
        "side": params.get("side", "BUY"),
        "fills": [],
    }
