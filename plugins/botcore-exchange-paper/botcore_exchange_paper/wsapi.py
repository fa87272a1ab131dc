"""WebSocket API ``/ws-api/v3``: user-data subscriptions and low-latency order entry.

Requests are ``{"id", "method", "params"}`` text frames; answers echo ``id`` exactly and carry
``rateLimits`` unless ``returnRateLimits`` is false (binance-sdk-spot fails without them). Signed
methods put ``apiKey``/``timestamp``/``signature`` in ``params`` and sign every other param sorted
by name. User events are pushed as ``{"subscriptionId": N, "event": {...}}``; a connection holds
at most one subscription per account (-2035), and unsubscribing ends with ``eventStreamTerminated``.
Order-like methods go through the server's shared operation table, so weights, order counts and
fault injection match REST exactly.
"""

from __future__ import annotations

import asyncio
import json
import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from botcore_exchange_paper import auth
from botcore_exchange_paper.errors import BinanceError
from botcore_exchange_paper.faults import UNKNOWN_STATUS_MSG
from botcore_exchange_paper.options import ServerOptions
from botcore_exchange_paper.streams import WsSession, now_ms

if TYPE_CHECKING:
    from botcore_exchange_paper.server import Answer, PaperServer

log = logging.getLogger("botcore.paper.wsapi")
_encode = msgspec.json.encode

# WS API method -> shared operation name (server.OPS)
WS_OPS = {
    "ping": "ping",
    "time": "time",
    "exchangeInfo": "exchangeInfo",
    "depth": "depth",
    "ticker.book": "ticker.book",
    "ticker.24hr": "ticker.24hr",
    "avgPrice": "avgPrice",
    "account.status": "account.status",
    "order.place": "order.place",
    "order.test": "order.test",
    "order.cancel": "order.cancel",
    "order.status": "order.status",
    "openOrders.status": "openOrders.status",
    "openOrders.cancelAll": "openOrders.cancelAll",
    "order.cancelReplace": "order.cancelReplace",
    "myTrades": "myTrades",
    "userDataStream.start": "userDataStream.start",
    "userDataStream.ping": "userDataStream.ping",
    "userDataStream.stop": "userDataStream.stop",
}
_SESSION_WEIGHT = {
    "session.status": 2,
    "session.subscriptions": 2,
    "session.logon": 2,
    "session.logout": 2,
    "userDataStream.subscribe.signature": 2,
    "userDataStream.subscribe": 2,
    "userDataStream.unsubscribe": 2,
}


def _param_text(value: Any) -> str:
    """A JSON param as the string the venue and the signature see (numbers keep their literal)."""
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    return auth.ws_value(value)


class WsApiSession(WsSession):
    kind = "user"

    def __init__(
        self,
        hub: UserHub,
        ws: web.WebSocketResponse,
        request: web.Request,
        opts: ServerOptions,
        return_rate_limits: bool,
    ) -> None:
        super().__init__(ws, request, opts)
        self.hub = hub
        self.return_rate_limits = return_rate_limits
        self.subs: dict[int, str] = {}  # subscriptionId -> api_key
        self._next_sub = 0

    def shutdown_frame(self) -> bytes:
        return b'{"event":{"e":"serverShutdown","E":%d}}' % now_ms()

    def on_closed(self) -> None:
        self.hub.detach(self)

    # -- answers ----------------------------------------------------------------------------------
    def _rate_limits(self, order_key: str | None) -> list[dict[str, Any]]:
        lim = self.hub.server.limiter
        out = lim.orders_json(order_key) if order_key is not None else []
        out.extend(lim.weight_json(self.ip))
        return out

    def respond(
        self,
        req_id: Any,
        status: int,
        body: Any,
        *,
        rrl: bool,
        order_key: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        obj: dict[str, Any] = {"id": req_id, "status": status}
        if status == 200:
            obj["result"] = body
        else:
            err = dict(body) if isinstance(body, dict) else {"code": -1000, "msg": str(body)}
            if retry_after is not None:
                err["data"] = {
                    "serverTime": self.hub.server.server_now_ms(),
                    "retryAfter": now_ms() + retry_after * 1000,
                }
            obj["error"] = err
        if rrl:
            obj["rateLimits"] = self._rate_limits(order_key)
        self.send(_encode(obj))

    # -- requests ---------------------------------------------------------------------------------
    def on_text(self, text: str) -> None:
        try:
            msg = json.loads(text, parse_float=Decimal)
        except ValueError:
            self.respond(
                None, 400, {"code": -1135, "msg": "Invalid JSON Request"}, rrl=self.return_rate_limits
            )
            return
        if not isinstance(msg, dict):
            self.respond(
                None, 400, {"code": -1135, "msg": "Invalid JSON Request"}, rrl=self.return_rate_limits
            )
            return
        req_id = msg.get("id")
        raw_params = msg.get("params", {})
        if raw_params is None:
            raw_params = {}
        if not isinstance(raw_params, dict):
            self.respond(
                req_id,
                400,
                {"code": -1135, "msg": "Invalid 'params' in JSON request; expected an object."},
                rrl=True,
            )
            return
        rrl = self.return_rate_limits
        if "returnRateLimits" in raw_params:
            rrl = (
                raw_params.get("returnRateLimits") is not False
                and str(raw_params["returnRateLimits"]).lower() != "false"
            )
        method = msg.get("method")
        if not isinstance(method, str) or not method:
            self.respond(req_id, 400, auth.mandatory("method").body(), rrl=rrl)
            return
        try:
            self._dispatch(req_id, method, raw_params, rrl)
        except BinanceError as exc:
            self.respond(req_id, exc.http_status, exc.body(), rrl=rrl)
        except Exception:
            log.exception("paper WS API failed on %s", method)
            self.respond(
                req_id,
                500,
                {"code": -1000, "msg": "An unknown error occurred while processing the request."},
                rrl=rrl,
            )

    def _dispatch(self, req_id: Any, method: str, raw: dict[str, Any], rrl: bool) -> None:
        server = self.hub.server
        op_name = WS_OPS.get(method)
        if op_name is None and method not in _SESSION_WEIGHT:
            self.respond(req_id, 400, {"code": -1020, "msg": "This operation is not supported."}, rrl=rrl)
            return
        params = {k: _param_text(v) for k, v in raw.items()}
        if op_name is not None:
            op = server.ops[op_name]
            free = server.success_free(op)
            limited = server._rate_limited(self.ip, 0 if free else op.weight(params))
            if limited is not None:
                self._answer(req_id, limited, rrl, None)
                return
            if op.security == "USER_STREAM" and server.opts.legacy_user_stream == "retired":
                self.respond(req_id, 400, {"code": -1020, "msg": "This operation is not supported."}, rrl=rrl)
                return
            account = None
            if op.security != "NONE":
                try:
                    account = self._authenticate(params, signed=op.security != "USER_STREAM")
                except BinanceError:
                    if free:
                        server.limiter.charge(self.ip, op.weight(params))
                    raise
            answer = server.execute(op, account, params, self.ip)
            order_key = account.api_key if op.counts_order and account is not None else None
            if answer.fault is not None:
                self._fault(req_id, answer, rrl, order_key)
                return
            delay = server.response_delay_s()
            if delay > 0:  # the venue's configured response latency
                asyncio.get_running_loop().call_later(delay, self._answer, req_id, answer, rrl, order_key)
                return
            self._answer(req_id, answer, rrl, order_key)
            return
        limited = server._rate_limited(self.ip, _SESSION_WEIGHT[method])
        if limited is not None:
            self._answer(req_id, limited, rrl, None)
            return
        self.respond(req_id, 200, self._session_method(method, params), rrl=rrl)

    def _answer(self, req_id: Any, answer: Answer, rrl: bool, order_key: str | None) -> None:
        retry = answer.headers.get("Retry-After")
        self.respond(
            req_id,
            answer.status,
            answer.body,
            rrl=rrl,
            order_key=order_key,
            retry_after=int(retry) if retry else None,
        )

    def _fault(self, req_id: Any, answer: Answer, rrl: bool, order_key: str | None) -> None:
        fault = answer.fault
        assert fault is not None
        if fault.kind == "order_5xx":
            self.respond(req_id, fault.status, {"code": -1007, "msg": UNKNOWN_STATUS_MSG}, rrl=rrl)
        elif fault.kind == "ack_delay":
            asyncio.get_running_loop().call_later(
                fault.ms / 1000, lambda: self._answer(req_id, answer, rrl, order_key)
            )
        else:  # ack_lost
            self.abort()

    def _authenticate(self, params: dict[str, str], *, signed: bool) -> Any:
        server = self.hub.server
        api_key = params.get("apiKey")
        if not api_key:
            raise auth.mandatory("apiKey")
        auth.check_api_key_format(api_key)
        account = server.account_for(api_key)
        if not signed:
            return account
        if not params.get("signature"):
            raise auth.mandatory("signature")
        auth.check_timestamp(params, server.server_now_ms())
        if not auth.ws_signature_ok(account.api_secret, params):
            raise BinanceError(-1022, auth.MSG_BAD_SIGNATURE)
        return account

    def _session_method(self, method: str, params: dict[str, str]) -> Any:
        server = self.hub.server
        if method == "session.status":
            return {
                "apiKey": None,
                "authorizedSince": None,
                "connectedSince": self.connected_ms,
                "returnRateLimits": self.return_rate_limits,
                "serverTime": server.server_now_ms(),
                "userDataStream": bool(self.subs),
            }
        if method == "session.subscriptions":
            return [{"subscriptionId": sid} for sid in self.subs]
        if method in ("session.logon", "userDataStream.subscribe"):
            # session.logon is Ed25519-only on Binance; the paper venue issues HMAC keys.
            raise BinanceError(-4056, "HMAC_SHA256 API key is not supported.")
        if method == "session.logout":
            return {
                "apiKey": None,
                "authorizedSince": None,
                "connectedSince": self.connected_ms,
                "returnRateLimits": self.return_rate_limits,
                "serverTime": server.server_now_ms(),
                "userDataStream": bool(self.subs),
            }
        if method == "userDataStream.subscribe.signature":
            account = self._authenticate(params, signed=True)
            return {"subscriptionId": self.hub.subscribe(self, account.api_key)}
        if method == "userDataStream.unsubscribe":
            raw = params.get("subscriptionId")
            sub_id = None
            if raw not in (None, ""):
                if not raw.lstrip("-").isdigit():
                    raise BinanceError(
                        -1100,
                        "Illegal characters found in parameter 'subscriptionId'; legal range is '^[0-9]{1,20}$'.",
                    )
                sub_id = int(raw)
            self.hub.unsubscribe(self, sub_id)
            return {}
        raise AssertionError(method)  # pragma: no cover - filtered by _SESSION_WEIGHT


class UserHub:
    """WS API sessions and their user-data subscriptions, indexed by account."""

    def __init__(self, server: PaperServer) -> None:
        self.server = server
        self.sessions: set[WsApiSession] = set()
        self._by_key: dict[str, dict[tuple[WsApiSession, int], None]] = {}

    def attach(self, session: WsApiSession) -> None:
        self.sessions.add(session)

    def detach(self, session: WsApiSession) -> None:
        self.sessions.discard(session)
        for sub_id, key in list(session.subs.items()):
            self._remove(session, sub_id, key)

    def subscribe(self, session: WsApiSession, api_key: str) -> int:
        if api_key in session.subs.values():
            raise BinanceError(-2035, "User Data Stream subscription already active.")
        sub_id = session._next_sub
        session._next_sub += 1
        session.subs[sub_id] = api_key
        self._by_key.setdefault(api_key, {})[(session, sub_id)] = None
        return sub_id

    def _remove(self, session: WsApiSession, sub_id: int, api_key: str) -> None:
        session.subs.pop(sub_id, None)
        subs = self._by_key.get(api_key)
        if subs is not None:
            subs.pop((session, sub_id), None)
            if not subs:
                del self._by_key[api_key]

    def _terminated(self, session: WsApiSession, sub_id: int) -> None:
        session.send(
            b'{"subscriptionId":%d,"event":{"e":"eventStreamTerminated","E":%d}}' % (sub_id, now_ms())
        )

    def unsubscribe(self, session: WsApiSession, sub_id: int | None) -> list[int]:
        if sub_id is None:
            ids = list(session.subs)
            if not ids:
                raise BinanceError(-2036, "User Data Stream subscription not active.")
        elif sub_id not in session.subs:
            raise BinanceError(-2036, "User Data Stream subscription not active.")
        else:
            ids = [sub_id]
        for sid in ids:
            self._remove(session, sid, session.subs[sid])
            self._terminated(session, sid)
        return ids

    def subscription_count(self, api_key: str | None = None) -> int:
        if api_key is not None:
            return len(self._by_key.get(api_key, ()))
        return sum(len(v) for v in self._by_key.values())

    def publish(self, api_key: str, raw_event: bytes) -> int:
        subs = self._by_key.get(api_key)
        if not subs:
            return 0
        for session, sub_id in list(subs):
            session.send(b'{"subscriptionId":%d,"event":' % sub_id + raw_event + b"}")
        return len(subs)

    def terminate(self, api_key: str | None) -> int:
        """Fault: end subscriptions (of one account or all) with ``eventStreamTerminated``."""
        n = 0
        for session in list(self.sessions):
            for sid, key in list(session.subs.items()):
                if api_key is None or key == api_key:
                    self._remove(session, sid, key)
                    self._terminated(session, sid)
                    n += 1
        return n

    def drop_all(self) -> int:
        n = 0
        for session in list(self.sessions):
            session.abort()
            n += 1
        return n
