"""The paper exchange's one aiohttp port: REST ``/api/v3``, market streams, WebSocket API, ``/paper/*``.

Transport only: every trading decision is the venue's (``venue.Venue``). The server authenticates
(``auth``), meters (``ratelimit``), injects faults (``faults``) and formats answers exactly as Binance
does: JSON bodies with ``Content-Type: application/json`` on every answer (binance-sdk-spot ignores
error bodies otherwise), ``X-MBX-USED-WEIGHT-1M`` on every response, order counts on accepted orders.

REST and WebSocket API requests share one operation table (``OPS``) so both transports weigh,
limit and fail identically; only parameter decoding and signing differ.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec
from aiohttp import web

from botcore_exchange_paper import auth
from botcore_exchange_paper.errors import BinanceError
from botcore_exchange_paper.faults import UNKNOWN_STATUS_MSG, FaultController, OrderFault
from botcore_exchange_paper.options import ServerOptions
from botcore_exchange_paper.ratelimit import DEFAULT_RATE_LIMITS, RateLimiter
from botcore_exchange_paper.streams import MarketSession, StreamHub, normalize_stream, now_ms
from botcore_exchange_paper.wsapi import UserHub, WsApiSession

log = logging.getLogger("botcore.paper.server")

JSON_CT = "application/json;charset=UTF-8"
_encode = msgspec.json.encode
_AUTH_PARAMS = ("signature", "timestamp", "recvWindow", "apiKey", "returnRateLimits")
_SYMBOLS_RANGE = '^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$'

NONE, USER_STREAM, SIGNED = "NONE", "USER_STREAM", "SIGNED"


@dataclass(slots=True)
class Answer:
    """A transport-neutral answer: HTTP status (also the WS API ``status``), JSON body, headers."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    fault: OrderFault | None = None

    @classmethod
    def error(cls, exc: BinanceError) -> Answer:
        return cls(exc.http_status, exc.body())


def _int_param(params: dict[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or len(raw) > 20:
        raise BinanceError(
            -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
        )
    return int(raw)


def _symbols_param(params: dict[str, str]) -> list[str] | None:
    raw = params.get("symbols")
    if raw is None:
        return None
    try:
        symbols = json.loads(raw)
    except ValueError:
        symbols = None
    if not isinstance(symbols, list) or not symbols or not all(isinstance(s, str) for s in symbols):
        raise BinanceError(
            -1100, f"Illegal characters found in parameter 'symbols'; legal range is '{_SYMBOLS_RANGE}'."
        )
    return symbols


def _required(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise auth.mandatory(name)
    return value


def _depth_weight(p: dict[str, str]) -> int:
    try:
        limit = int(p.get("limit") or 100)
    except ValueError:
        return 5
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


def _symbols_count(p: dict[str, str]) -> int:
    try:
        return len(json.loads(p["symbols"]))
    except (KeyError, ValueError, TypeError):
        return 0


def _ticker24_weight(p: dict[str, str]) -> int:
    if p.get("symbol"):
        return 2
    if "symbols" in p:
        n = _symbols_count(p)
        return 2 if n <= 20 else 40 if n <= 100 else 80
    return 80


@dataclass(frozen=True, slots=True)
class Op:
    """One operation shared by REST and the WebSocket API."""

    name: str
    security: str
    weight: Callable[[dict[str, str]], int]
    handler: Callable[[PaperServer, Any, dict[str, str]], Any]
    action: str | None = None  # place | replace | cancel: order faults and "0 weight on success"
    counts_order: bool = False  # +1 unfilled order count


def _w(n: int) -> Callable[[dict[str, str]], int]:
    return lambda _p: n


def _h_ping(s: PaperServer, a: Any, p: dict[str, str]) -> Any:
    return {}


def _h_time(s: PaperServer, a: Any, p: dict[str, str]) -> Any:
    return {"serverTime": s.server_now_ms()}


def _h_exchange_info(s: PaperServer, a: Any, p: dict[str, str]) -> Any:
    symbol = p.get("symbol") or None
    symbols = _symbols_param(p)
    if symbol and symbols:
        raise BinanceError(-1128, "Combination of optional parameters invalid.")
    info = dict(s.venue.exchange_info(symbol=symbol, symbols=symbols))
    info["serverTime"] = s.server_now_ms()
    info["rateLimits"] = s.limiter.exchange_info_limits()
    return info


def _h_depth(s: PaperServer, a: Any, p: dict[str, str]) -> Any:
    symbol = _required(p, "symbol")
    limit = _int_param(p, "limit", 100)
    if limit < 1:
        raise BinanceError(
            -1100, "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'."
        )
    return s.venue.depth(symbol, min(limit, 5000))


def _select(s: PaperServer, fn: Callable[[str | None], Any], p: dict[str, str]) -> Any:
    symbol = p.get("symbol") or None
    symbols = _symbols_param(p)
    if symbol and symbols:
        raise BinanceError(-1128, "Combination of optional parameters invalid.")
    if symbol:
        return fn(symbol)
    if symbols:
        return [fn(sym) for sym in symbols]
    return fn(None)


def _h_book_ticker(s: PaperServer, a: Any, p: dict[str, str]) -> Any:
    return _select(s, s.venue.book_ticker, p)


def _h_ticker_24hr(s: PaperServer, a: Any, p: dict[str, str]) -> Any:
    return _select(s, s.venue.ticker_24hr, p)


def _h_avg_price(s: PaperServer, a: Any, p: dict[str, str]) -> Any:
    return s.venue.avg_price(_required(p, "symbol"))


def _h_account(s: PaperServer, a: Any, p: dict[str, str]) -> Any:
    return s.venue.account_info(a, omit_zero=p.get("omitZeroBalances", "false").lower() == "true")


def _h_place(s: PaperServer, a: Any, p: dict[str, str]) -> Any:
    return s.venue.place_order(a, p)


def _h_test(s: PaperServer, a: Any, p: dict[str, str]) -> Any:
    return s.venue.place_order(a, p, test=True)


def _h_cancel(s: PaperServer, a: Any, p: dict[str, str]) -> Any:
    return s.venue.cancel_order(a, p)


def _h_query(s: PaperServer, a: Any, p: dict[str, str]) -> Any:
    return s.venue.query_order(a, p)


def _h_open_orders(s: PaperServer, a: Any, p: dict[str, str]) -> Any:
    return s.venue.open_orders(a, p.get("symbol") or None)


def _h_cancel_all(s: PaperServer, a: Any, p: dict[str, str]) -> Any:
    return s.venue.cancel_open_orders(a, p)


def _h_cancel_replace(s: PaperServer, a: Any, p: dict[str, str]) -> Any:
    return s.venue.cancel_replace(a, p)


def _h_my_trades(s: PaperServer, a: Any, p: dict[str, str]) -> Any:
    return s.venue.my_trades(a, p)


def _h_listen_key_new(s: PaperServer, a: Any, p: dict[str, str]) -> Any:
    return {"listenKey": s.listen_keys.create(a.api_key)}


def _h_listen_key_keepalive(s: PaperServer, a: Any, p: dict[str, str]) -> Any:
    s.listen_keys.keepalive(a.api_key, _required(p, "listenKey"))
    return {}


def _h_listen_key_close(s: PaperServer, a: Any, p: dict[str, str]) -> Any:
    s.listen_keys.close(a.api_key, _required(p, "listenKey"))
    return {}


OPS: dict[str, Op] = {
    op.name: op
    for op in (
        Op("ping", NONE, _w(1), _h_ping),
        Op("time", NONE, _w(1), _h_time),
        Op("exchangeInfo", NONE, _w(20), _h_exchange_info),
        Op("depth", NONE, _depth_weight, _h_depth),
        Op("ticker.book", NONE, lambda p: 2 if p.get("symbol") else 4, _h_book_ticker),
        Op("ticker.24hr", NONE, _ticker24_weight, _h_ticker_24hr),
        Op("avgPrice", NONE, _w(2), _h_avg_price),
        Op("account.status", SIGNED, _w(20), _h_account),
        Op("order.place", SIGNED, _w(1), _h_place, action="place", counts_order=True),
        Op(
            "order.test",
            SIGNED,
            lambda p: 20 if p.get("computeCommissionRates", "").lower() == "true" else 1,
            _h_test,
        ),
        Op("order.cancel", SIGNED, _w(1), _h_cancel, action="cancel"),
        Op("order.status", SIGNED, _w(4), _h_query),
        Op("openOrders.status", SIGNED, lambda p: 6 if p.get("symbol") else 80, _h_open_orders),
        Op("openOrders.cancelAll", SIGNED, _w(1), _h_cancel_all, action="cancel"),
        Op("order.cancelReplace", SIGNED, _w(1), _h_cancel_replace, action="replace", counts_order=True),
        Op("myTrades", SIGNED, lambda p: 5 if p.get("orderId") else 20, _h_my_trades),
        Op("userDataStream.start", USER_STREAM, _w(2), _h_listen_key_new),
        Op("userDataStream.ping", USER_STREAM, _w(2), _h_listen_key_keepalive),
        Op("userDataStream.stop", USER_STREAM, _w(2), _h_listen_key_close),
    )
}

REST_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "ping"): "ping",
    ("GET", "time"): "time",
    ("GET", "exchangeInfo"): "exchangeInfo",
    ("GET", "depth"): "depth",
    ("GET", "ticker/bookTicker"): "ticker.book",
    ("GET", "ticker/24hr"): "ticker.24hr",
    ("GET", "avgPrice"): "avgPrice",
    ("GET", "account"): "account.status",
    ("POST", "order"): "order.place",
    ("POST", "order/test"): "order.test",
    ("DELETE", "order"): "order.cancel",
    ("GET", "order"): "order.status",
    ("GET", "openOrders"): "openOrders.status",
    ("DELETE", "openOrders"): "openOrders.cancelAll",
    ("POST", "order/cancelReplace"): "order.cancelReplace",
    ("GET", "myTrades"): "myTrades",
    ("POST", "userDataStream"): "userDataStream.start",
    ("PUT", "userDataStream"): "userDataStream.ping",
    ("DELETE", "userDataStream"): "userDataStream.stop",
}
_LEGACY_OPS = ("userDataStream.start", "userDataStream.ping", "userDataStream.stop")
_ORDER_SUCCESS_FREE = ("order.place", "order.cancel", "openOrders.cancelAll", "order.cancelReplace")


def success_free(op: Op) -> bool:
    """Successful order endpoints cost 0 weight since 2026-04-02; failed ones pay the documented weight."""
    return op.name in _ORDER_SUCCESS_FREE


class ListenKeys:
    """Legacy listenKeys (``/api/v3/userDataStream``): one key per account, 60 min TTL, PUT extends."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_ms = int(ttl_s * 1000)
        self._by_key: dict[str, tuple[str, int]] = {}  # listenKey -> (api_key, expires_ms)
        self._by_account: dict[str, str] = {}

    def create(self, api_key: str) -> str:
        key = self._by_account.get(api_key)
        if key is None:  # POST while a key exists returns the same key
            key = secrets.token_urlsafe(48).replace("-", "a").replace("_", "b")[:64]
            self._by_account[api_key] = key
        self._by_key[key] = (api_key, now_ms() + self.ttl_ms)
        return key

    def _owned(self, api_key: str, key: str) -> None:
        entry = self._by_key.get(key)
        if entry is None or entry[0] != api_key:
            raise BinanceError(-1125, "This listenKey does not exist.")

    def keepalive(self, api_key: str, key: str) -> None:
        self._owned(api_key, key)
        self._by_key[key] = (api_key, now_ms() + self.ttl_ms)

    def close(self, api_key: str, key: str) -> None:
        self._owned(api_key, key)
        self.remove(key)

    def remove(self, key: str) -> None:
        entry = self._by_key.pop(key, None)
        if entry is not None and self._by_account.get(entry[0]) == key:
            del self._by_account[entry[0]]

    def owner(self, key: str) -> str | None:
        entry = self._by_key.get(key)
        return entry[0] if entry else None

    def keys_of(self, api_key: str) -> list[str]:
        key = self._by_account.get(api_key)
        return [key] if key else []

    def expired(self) -> list[str]:
        now = now_ms()
        return [k for k, (_a, exp) in self._by_key.items() if exp <= now]


class _Listener:
    """The venue's ``VenueListener``: market messages to the stream hub, user events to subscribers."""

    def __init__(self, server: PaperServer) -> None:
        self.server = server

    def on_market(self, stream: str, payload: bytes) -> None:
        self.server.hub.publish(stream, payload)

    def on_user(self, api_key: str, event: dict[str, Any]) -> None:
        self.server.publish_user(api_key, event)


class PaperServer:
    """One paper exchange endpoint around a venue. Everything runs on one event loop thread."""

    def __init__(
        self,
        venue: Any,
        *,
        options: ServerOptions | None = None,
        faults: FaultController | None = None,
    ) -> None:
        self.venue = venue
        self.opts = options or ServerOptions()
        self.faults = faults or FaultController()
        self.faults.targets = self
        try:
            limits = venue.exchange_info().get("rateLimits") or DEFAULT_RATE_LIMITS
        except Exception:  # a venue without exchange info still gets Binance's defaults
            limits = DEFAULT_RATE_LIMITS
        self.limiter = RateLimiter(
            limits,
            scale=self.opts.rate_limit_scale,
            ban_after=self.opts.ban_after,
            ban_seconds=self.opts.ban_seconds,
        )
        self.hub = StreamHub(self.opts, self.faults, venue.depth)
        self.hub.tickers = venue.ticker_24hr
        self.users = UserHub(self)
        self.listen_keys = ListenKeys(self.opts.listen_key_ttl_s)
        self.listener = _Listener(self)
        venue.add_listener(self.listener)
        self.ops = OPS
        self.started_ms = now_ms()
        self.market_start_ns = int(getattr(venue, "market_ns", 0) or 0)  # first snapshot's recorded time
        self.requests = 0
        self._housekeeping: asyncio.Task[None] | None = None
        self.market_task: asyncio.Task[None] | None = None

    success_free = staticmethod(success_free)

    # -- clock ------------------------------------------------------------------------------------
    def server_now_ms(self) -> int:
        """Venue clock plus the injected skew: what ``/time`` shows and ``timestamp`` is checked against."""
        return self.venue.now_ms() + self.faults.clock_skew_ms

    # -- app --------------------------------------------------------------------------------------
    @web.middleware
    async def _json_errors(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """aiohttp's own errors (oversized body, unknown path, bad method) as JSON like every answer."""
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return self._json(Answer(exc.status, {"code": -1000, "msg": exc.reason}), request.remote or "")

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 20, middlewares=[self._json_errors])
        app.router.add_route("*", "/api/{tail:.*}", self.handle_rest)
        app.router.add_get("/ws", self.handle_ws)
        app.router.add_get("/ws/{tail:.*}", self.handle_ws)
        app.router.add_get("/stream", self.handle_stream)
        app.router.add_get("/stream/{tail:.*}", self.handle_stream)
        app.router.add_get("/ws-api/v3", self.handle_ws_api)
        app.router.add_route("*", "/paper/{tail:.*}", self.handle_control)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_startup(self, app: web.Application) -> None:
        self.faults.start()
        self._housekeeping = asyncio.get_running_loop().create_task(self._housekeep())

    async def _on_shutdown(self, app: web.Application) -> None:
        if self.market_task is not None:
            self.market_task.cancel()
        self.faults.stop()
        self.hub.stop()
        if self._housekeeping:
            self._housekeeping.cancel()
        for s in list(self.hub.sessions) + list(self.users.sessions):
            await s.close(code=1001, message=b"server shutdown")
        with contextlib.suppress(Exception):
            self.venue.remove_listener(self.listener)

    async def _housekeep(self) -> None:
        """Expire legacy listenKeys (``listenKeyExpired`` then silence, as Binance did)."""
        while True:
            await asyncio.sleep(0.25)
            for key in self.listen_keys.expired():
                self._expire_listen_key(key)

    def _expire_listen_key(self, key: str) -> None:
        event = _encode({"e": "listenKeyExpired", "E": now_ms(), "listenKey": key})
        self.hub.publish_user([key], event)
        self.listen_keys.remove(key)

    # -- common request pipeline ------------------------------------------------------------------
    def _rate_limited(self, ip: str, weight: int) -> Answer | None:
        v = self.limiter.admit(ip, weight)
        if v.status == 200:
            return None
        return Answer(v.status, {"code": v.code, "msg": v.msg}, {"Retry-After": str(v.retry_after_s)})

    def response_delay_s(self) -> float:
        fn = getattr(self.venue, "response_delay_s", None)
        return float(fn()) if fn is not None else 0.0

    def account_for(self, api_key: str) -> Any:
        account = self.venue.account_for_key(api_key)
        if account is None:
            raise auth.key_rejected()
        return account

    def execute(self, op: Op, account: Any, params: dict[str, str], ip: str) -> Answer:
        """Run an authenticated operation: order limits, venue call, order faults, weight on failure."""
        headers: dict[str, str] = {}
        key = account.api_key if account is not None else ""
        if op.counts_order:
            over = self.limiter.orders_exceeded(key)
            if over is not None:
                if (
                    op.name == "order.cancelReplace"
                    and params.get("orderRateLimitExceededMode") == "CANCEL_ONLY"
                ):
                    return self._cancel_only(account, params, over.msg, ip)
                self.limiter.charge(ip, op.weight(params))
                return Answer(
                    429, {"code": over.code, "msg": over.msg}, {"Retry-After": str(over.retry_after_s)}
                )
            # counted before the venue runs: a fill inside the call decrements it again
            self.limiter.orders_add(key)
        fault = self.faults.take_order_fault(key, op.action) if op.action else None
        venue_params = {k: v for k, v in params.items() if k not in _AUTH_PARAMS}
        try:
            body = op.handler(self, account, venue_params)
            status = 200
        except BinanceError as exc:
            body, status = exc.body(), exc.http_status
            # a rejected order is not counted; a cancelReplace that reached the engine is, even NOT_ATTEMPTED
            if op.counts_order and not (op.name == "order.cancelReplace" and exc.code in (-2021, -2022)):
                self.limiter.orders_add(key, -1)
            if op.name in _ORDER_SUCCESS_FREE:
                self.limiter.charge(ip, op.weight(params))
        except Exception:  # a venue bug: undo the provisional count, the transport answers 500
            if op.counts_order:
                self.limiter.orders_add(key, -1)
            raise
        if op.counts_order and status in (200, 409):
            headers.update(self.limiter.order_count_headers(key))
        return Answer(status, body, headers, fault)

    def _cancel_only(self, account: Any, params: dict[str, str], msg: str, ip: str) -> Answer:
        """cancelReplace with ``orderRateLimitExceededMode=CANCEL_ONLY`` over the order limit."""
        cancel = {"symbol": params.get("symbol", "")}
        for src, dst in (
            ("cancelOrderId", "orderId"),
            ("cancelOrigClientOrderId", "origClientOrderId"),
            ("cancelNewClientOrderId", "newClientOrderId"),
            ("cancelRestrictions", "cancelRestrictions"),
        ):
            if params.get(src):
                cancel[dst] = params[src]
        try:
            cancel_resp: Any = self.venue.cancel_order(account, cancel)
            cancel_result = "SUCCESS"
        except BinanceError as exc:
            cancel_resp, cancel_result = exc.body(), "FAILURE"
        data = {
            "cancelResult": cancel_result,
            "newOrderResult": "FAILURE",
            "cancelResponse": cancel_resp,
            "newOrderResponse": {"code": -1015, "msg": msg},
        }
        if cancel_result == "SUCCESS":
            return Answer(409, {"code": -2021, "msg": "Order cancel-replace partially failed.", "data": data})
        return Answer(400, {"code": -2022, "msg": "Order cancel-replace failed.", "data": data})

    # -- REST -------------------------------------------------------------------------------------
    def _json(self, answer: Answer, ip: str) -> web.Response:
        headers = {"Content-Type": JSON_CT}
        headers.update(self.limiter.weight_headers(ip))
        headers.update(answer.headers)
        return web.Response(status=answer.status, body=_encode(answer.body), headers=headers)

    async def handle_rest(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        ip = request.remote or ""
        tail = request.match_info["tail"]
        if not tail.startswith("v3/"):
            return self._json(Answer(404, {"code": -1000, "msg": f"Unknown endpoint: /api/{tail}"}), ip)
        op_name = REST_ROUTES.get((request.method, tail[3:]))
        if op_name is None:
            known = any(path == tail[3:] for (_m, path) in REST_ROUTES)
            status = 405 if known else 404
            return self._json(
                Answer(status, {"code": -1000, "msg": f"Unknown endpoint: {request.method} /api/{tail}"}), ip
            )
        op = OPS[op_name]
        query_raw = request.raw_path.partition("?")[2]
        body_raw = (await request.read()).decode("utf-8", "replace") if request.body_exists else ""
        try:
            params = auth.merge_params(query_raw, body_raw)
        except BinanceError as exc:
            return self._json(self._rate_limited(ip, 1) or Answer.error(exc), ip)
        free = op.name in _ORDER_SUCCESS_FREE
        limited = self._rate_limited(ip, 0 if free else op.weight(params))
        if limited is not None:
            return self._json(limited, ip)
        if op.name in _LEGACY_OPS and self.opts.legacy_user_stream == "retired":
            return self._json(
                Answer(
                    410,
                    {
                        "code": -1000,
                        "msg": "This endpoint has been retired; use the WebSocket API userDataStream.subscribe.signature.",
                    },
                ),
                ip,
            )
        try:
            account = self._authenticate_rest(op, request, params, query_raw, body_raw)
        except BinanceError as exc:
            if free:
                self.limiter.charge(ip, op.weight(params))
            return self._json(Answer.error(exc), ip)
        try:
            answer = self.execute(op, account, params, ip)
        except Exception:  # a venue bug must not take the server down
            log.exception("paper venue failed on %s", op.name)
            answer = Answer(
                500, {"code": -1000, "msg": "An unknown error occurred while processing the request."}
            )
        delay = self.response_delay_s()
        if delay > 0:  # the venue's configured response latency (fill.response_latency_ms)
            await asyncio.sleep(delay)
        if answer.fault is not None:
            return await self._rest_fault(request, answer, ip)
        return self._json(answer, ip)

    def _authenticate_rest(
        self, op: Op, request: web.Request, params: dict[str, str], query_raw: str, body_raw: str
    ) -> Any:
        if op.security == NONE:
            return None
        api_key = auth.check_api_key_format(request.headers.get("X-MBX-APIKEY"))
        account = self.account_for(api_key)
        if op.security == USER_STREAM:
            return account
        present, valid = auth.rest_signature_ok(account.api_secret, query_raw, body_raw)
        if not present:
            raise auth.mandatory("signature")
        auth.check_timestamp(params, self.server_now_ms())
        if not valid:
            raise BinanceError(-1022, auth.MSG_BAD_SIGNATURE)
        return account

    async def _rest_fault(self, request: web.Request, answer: Answer, ip: str) -> web.StreamResponse:
        fault = answer.fault
        assert fault is not None
        if fault.kind == "order_5xx":
            return self._json(Answer(fault.status, {"code": -1007, "msg": UNKNOWN_STATUS_MSG}), ip)
        if fault.kind == "ack_delay":
            await asyncio.sleep(fault.ms / 1000)
            return self._json(answer, ip)
        # ack_lost: the order exists, the client never hears about it
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=200)  # written to a closed transport: never seen

    # -- websockets -------------------------------------------------------------------------------
    async def _prepare_ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False, compress=False, max_msg_size=1 << 20)
        await ws.prepare(request)
        return ws

    async def handle_ws(self, request: web.Request) -> web.StreamResponse:
        """``/ws`` and ``/ws/<anything>``: the path names a stream (or a listenKey), else SUBSCRIBE later."""
        ws = await self._prepare_ws(request)
        tail = request.match_info.get("tail", "")
        streams, keys = self._path_streams(tail)
        session = MarketSession(self.hub, ws, request, combined=False)
        self.hub.attach(session, streams, keys)
        await session.run()
        return ws

    async def handle_stream(self, request: web.Request) -> web.StreamResponse:
        """``/stream?streams=a/b/c``: combined payloads ``{"stream":..,"data":..}``."""
        ws = await self._prepare_ws(request)
        streams, keys = self._path_streams(request.query.get("streams", ""))
        session = MarketSession(self.hub, ws, request, combined=True)
        self.hub.attach(session, streams, keys)
        await session.run()
        return ws

    def _path_streams(self, text: str) -> tuple[list[str], list[str]]:
        streams: list[str] = []
        keys: list[str] = []
        for part in filter(None, text.split("/")):
            name = normalize_stream(part)
            if name is not None:
                streams.append(name)
            elif self.listen_keys.owner(part) is not None:
                keys.append(part)
        return streams, keys

    async def handle_ws_api(self, request: web.Request) -> web.StreamResponse:
        ws = await self._prepare_ws(request)
        rrl = request.query.get("returnRateLimits", "true").lower() != "false"
        session = WsApiSession(self.users, ws, request, self.opts, return_rate_limits=rrl)
        self.users.attach(session)
        self.limiter.charge(session.ip, 2)  # connecting costs 2 weight
        await session.run()
        return ws

    # -- user data --------------------------------------------------------------------------------
    def publish_user(self, api_key: str, event: dict[str, Any]) -> None:
        """Route one venue user event: order-count decrement, faults, WS API and legacy subscribers."""
        if (
            event.get("e") == "executionReport"
            and event.get("x") == "TRADE"
            and event.get("z") == event.get("l")
        ):
            self.limiter.orders_add(api_key, -1)  # first fill decrements the unfilled order count
        if self.faults.stalled("user"):
            return
        copies = self.faults.user_copies(api_key)
        if not copies:
            return
        raw = _encode(event)
        for _ in range(copies):
            self.users.publish(api_key, raw)
            self.hub.publish_user(self.listen_keys.keys_of(api_key), raw)

    # -- FaultTargets ------------------------------------------------------------------------------
    def drop_connections(self, target: str) -> int:
        n = 0
        if target in ("market", "all"):
            n += self.hub.drop_all()
        elif target == "user":
            n += self.hub.drop_all(listen_keys_only=True)
        if target in ("user", "all"):
            n += self.users.drop_all()
        return n

    def terminate_user_streams(self, api_key: str | None) -> int:
        n = self.users.terminate(api_key)
        for key in list(self.listen_keys._by_key):
            owner = self.listen_keys.owner(key)
            if api_key is None or owner == api_key:
                self._expire_listen_key(key)
                n += 1
        return n

    def rate_limit_storm(self, seconds: float) -> None:
        self.limiter.storm_until = now_ms() + int(seconds * 1000)

    def clear_rate_limits(self) -> None:
        self.limiter.storm_until = 0
        self.limiter.unban()

    def symbols(self) -> list[str]:
        try:
            return [s["symbol"] for s in self.venue.exchange_info()["symbols"]]
        except Exception:
            return []

    # -- /paper control ---------------------------------------------------------------------------
    async def handle_control(self, request: web.Request) -> web.StreamResponse:
        ip = request.remote or ""
        if self.opts.control_loopback_only and ip not in ("127.0.0.1", "::1"):
            return web.json_response({"error": "loopback only"}, status=403)
        tail = request.match_info["tail"]
        try:
            body: Any = await request.json() if request.body_exists else {}
        except ValueError:
            return web.json_response({"error": "invalid JSON body"}, status=400)
        try:
            result = await self._control(request.method, tail, body, request)
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        except BinanceError as exc:
            return web.json_response(exc.body(), status=exc.http_status)
        if isinstance(result, web.StreamResponse):
            return result
        return web.Response(body=_encode(result), content_type="application/json")

    async def _control(self, method: str, tail: str, body: Any, request: web.Request) -> Any:
        if tail == "status" and method == "GET":
            return self.status()
        if tail == "faults":
            if method == "GET":
                return {"active": self.faults.state(), "history": self.faults.history[-50:]}
            if method == "POST":
                applied = self.faults.submit(body)
                return {"applied": applied, "active": self.faults.state()}
            if method == "DELETE":
                self.faults.clear()
                return {"active": self.faults.state()}
        if tail == "external_order" and method == "POST":
            params = dict(body.get("params", body))
            params.pop("api_key", None)
            api_key = body.get("api_key") or self.default_api_key()
            account = self.account_for(api_key)
            return self.venue.external_order(account, {k: str(v) for k, v in params.items()})
        if tail == "snapshot" and method == "GET":
            return self.snapshot()
        if tail == "step" and method == "POST":
            n = int(body.get("n", 1)) if isinstance(body, dict) else 1
            return {"processed": self.venue.step(n), "events_processed": self.venue.events_processed}
        if tail == "start_market" and method == "POST":
            return {"started": self.start_market()}
        if tail == "accounts" and method == "POST":
            account = self.venue.add_account(
                body["api_key"], body["api_secret"], {k: _dec(v) for k, v in body.get("balances", {}).items()}
            )
            return {"api_key": account.api_key}
        raise KeyError(f"unknown control endpoint {method} /paper/{tail}")

    def start_market(self) -> bool:
        """Start pacing the market (``venue.run_market``) unless it already runs; True if started now."""
        if self.market_task is not None and not self.market_task.done():
            return False
        self.market_task = asyncio.get_running_loop().create_task(self.venue.run_market())
        self.market_task.add_done_callback(_market_finished)
        return True

    def default_api_key(self) -> str:
        accounts = self.accounts()
        if not accounts:
            raise ValueError("the venue has no account")
        return accounts[0].api_key

    def accounts(self) -> list[Any]:
        """The venue's accounts (``venue.accounts`` mapping or list, in creation order)."""
        accs = getattr(self.venue, "accounts", None)
        if accs is None:
            return []
        if callable(accs):
            accs = accs()
        return list(accs.values()) if isinstance(accs, dict) else list(accs)

    def snapshot(self) -> dict[str, Any]:
        """Every account's balances and open orders (end-to-end assertions)."""
        out = []
        for account in self.accounts():
            info = self.venue.account_info(account)
            out.append(
                {
                    "api_key": account.api_key,
                    "balances": info["balances"],
                    "open_orders": self.venue.open_orders(account, None),
                }
            )
        return {"serverTime": self.server_now_ms(), "accounts": out}

    def status(self) -> dict[str, Any]:
        done = bool(self.venue.market_done)
        market_ns = int(getattr(self.venue, "market_ns", 0) or 0)
        elapsed_s = max(0, market_ns - self.market_start_ns) / 1e9 if self.market_start_ns else 0.0
        return {
            "events_processed": self.venue.events_processed,
            "market_done": done,
            "done": done,
            "market_time_ms": market_ns // 1_000_000,
            "replay_elapsed_s": elapsed_s,  # recorded market time covered since the first snapshot
            "uptime_ms": now_ms() - self.started_ms,
            "rest_requests": self.requests,
            "market_connections": len(self.hub.sessions),
            "ws_api_connections": len(self.users.sessions),
            "user_subscriptions": self.users.subscription_count(),
            "market_messages": self.hub.messages_in,
            "faults": self.faults.state(),
        }


def _market_finished(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("paper market stopped with an error", exc_info=task.exception())


def _dec(value: Any) -> Decimal:
    return Decimal(str(value))
