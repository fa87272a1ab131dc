"""Market-data websockets: ``/ws/<stream>``, ``/ws/<anything>`` + SUBSCRIBE, ``/stream?streams=a/b``.

The venue publishes each market message once (``on_market(stream, json_bytes)``); the hub fans the
bytes out to subscribed sessions without re-encoding (a combined envelope is built once per message).
Every session owns an outbox drained by one sender task, so a slow client never blocks the venue:
it is disconnected when its outbox overflows, as Binance does with slow consumers.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import WSMsgType, web

from botcore_exchange_paper.faults import FaultController
from botcore_exchange_paper.options import ServerOptions

_KLINE = "1s|1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1M"
_STREAM_RE = re.compile(
    r"^(?:[a-z0-9]{2,30}@(?:depth(?:5|10|20)?(?:@(?:100|1000)ms)?|bookTicker|trade|aggTrade|miniTicker|ticker"
    rf"|avgPrice|ticker_(?:1h|4h|1d)|kline_(?:{_KLINE}))"
    r"|!miniTicker@arr|!ticker_(?:1h|4h|1d)@arr)$"
)
_PARTIAL_RE = re.compile(r"^([a-z0-9]+)@depth(5|10|20)(@(100|1000)ms)?$")
_DIFF_KINDS = ("depth", "depth@100ms", "depth@1000ms")
_ID_STR_RE = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
_METHODS = "`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`"


_BATCH_BYTES = 256 * 1024
_HIGH_WATER = 1 << 20


def _text_header(n: int) -> bytes:
    """RFC 6455 header of an unmasked, final text frame carrying ``n`` payload bytes."""
    if n < 126:
        return bytes((0x81, n))
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big")
    return b"\x81\x7f" + n.to_bytes(8, "big")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def normalize_stream(name: str) -> str | None:
    """Canonical stream name (symbol lowercased) or None when it is not a valid stream name."""
    if not isinstance(name, str) or "@" not in name:
        return None
    if not name.startswith("!"):
        sym, _, kind = name.partition("@")
        name = f"{sym.lower()}@{kind}"
    return name if _STREAM_RE.match(name) else None


class _Partial:
    """A ``<symbol>@depth<N>[@100ms]`` subscription: pushed when the book changed, at most once per period."""

    __slots__ = ("symbol", "levels", "period", "last_sent", "dirty")

    def __init__(self, symbol: str, levels: int, period: float) -> None:
        self.symbol = symbol
        self.levels = levels
        self.period = period
        self.last_sent = 0.0
        self.dirty = True


class WsSession:
    """One websocket connection: outbox + sender task, server pings, pong timeout, max lifetime."""

    kind = "market"

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, opts: ServerOptions) -> None:
        self.ws = ws
        self.request = request
        self.opts = opts
        self.ip = request.remote or ""
        self.connected_ms = now_ms()
        self.closed = False
        self._q: collections.deque[bytes] = collections.deque()
        self._wake = asyncio.Event()
        self._last_pong = time.monotonic()
        self._in_window = 0
        self._in_count = 0
        self.frames_sent = 0

    # -- sending --------------------------------------------------------------------------------
    def send(self, frame: bytes) -> None:
        """Queue one text frame (JSON bytes); never blocks. Overflow disconnects the client."""
        if self.closed:
            return
        q = self._q
        if len(q) >= self.opts.outbox_limit:
            self.abort()
            return
        q.append(frame)
        if len(q) == 1:
            self._wake.set()

    def send_json(self, obj: Any) -> None:
        self.send(json.dumps(obj, separators=(",", ":")).encode())

    async def _sender(self) -> None:
        """Drain the outbox in batches: one transport write per batch instead of one per frame.

        Server frames are unmasked and (compression off) trivially framed, so the batch is built
        here; control frames (ping, close) still go through aiohttp's writer on the same transport,
        whose writes stay ordered with ours. Flow control waits on the transport's high-water mark.
        """
        q = self._q
        transport = self.request.transport
        header = _text_header
        while not self.closed:
            await self._wake.wait()
            self._wake.clear()
            while q and not self.closed:
                if transport is None or transport.is_closing():
                    self.closed = True
                    return
                parts: list[bytes] = []
                size = 0
                n = 0
                while q and size < _BATCH_BYTES:
                    frame = q.popleft()
                    parts.append(header(len(frame)))
                    parts.append(frame)
                    size += len(frame)
                    n += 1
                transport.write(b"".join(parts))
                self.frames_sent += n
                if transport.get_write_buffer_size() > _HIGH_WATER:
                    await self.ws.drain()

    async def flush(self, timeout: float = 1.0) -> None:
        """Wait until the outbox is empty (before a deliberate close)."""
        end = time.monotonic() + timeout
        while self._q and not self.closed and time.monotonic() < end:
            await asyncio.sleep(0.005)

    # -- closing --------------------------------------------------------------------------------
    def abort(self) -> None:
        """Drop the connection without a close frame (fault injection, overflow)."""
        if self.closed:
            return
        self.closed = True
        self._wake.set()
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def close(self, code: int = 1000, message: bytes = b"") -> None:
        if self.closed:
            return
        self.closed = True
        self._wake.set()
        with contextlib.suppress(Exception):
            await self.ws.close(code=code, message=message)

    def shutdown_frame(self) -> bytes:
        """The ``serverShutdown`` notice in this connection's format."""
        return b'{"e":"serverShutdown","E":%d}' % now_ms()

    # -- timers ---------------------------------------------------------------------------------
    async def _pinger(self) -> None:
        interval = self.opts.ping_interval_s
        while not self.closed:
            await asyncio.sleep(interval)
            if self.closed:
                return
            if time.monotonic() - self._last_pong > self.opts.pong_timeout_s:
                await self.close(code=1008, message=b"pong timeout")
                return
            with contextlib.suppress(Exception):
                await self.ws.ping(b"")

    async def _lifetime(self) -> None:
        life = self.opts.max_lifetime_s
        notice = min(self.opts.shutdown_notice_s, life)
        await asyncio.sleep(life - notice)
        if self.closed:
            return
        self.send(self.shutdown_frame())
        await asyncio.sleep(notice)
        await self.flush()
        await self.close(code=1001, message=b"max lifetime")

    def _inbound_ok(self) -> bool:
        limit = self.opts.ws_max_incoming_per_s
        if not limit:
            return True
        sec = int(time.monotonic())
        if sec != self._in_window:
            self._in_window, self._in_count = sec, 0
        self._in_count += 1
        return self._in_count <= limit

    # -- main loop --------------------------------------------------------------------------------
    async def run(self) -> None:
        """Serve the connection until it closes; text frames go to ``on_text``."""
        tasks = [
            asyncio.ensure_future(self._sender()),
            asyncio.ensure_future(self._pinger()),
            asyncio.ensure_future(self._lifetime()),
        ]
        try:
            async for msg in self.ws:
                if self.closed:
                    break
                # pongs answering our own pings are exempt (at short test ping periods they alone would
                # exceed the limit); data frames and client pings count, as on Binance
                if msg.type != WSMsgType.PONG and not self._inbound_ok():
                    await self.close(code=1008, message=b"too many messages")
                    break
                if msg.type == WSMsgType.TEXT:
                    res = self.on_text(msg.data)
                    if res is not None:
                        await res
                elif msg.type == WSMsgType.PING:
                    await self.ws.pong(msg.data)
                elif msg.type == WSMsgType.PONG:
                    self._last_pong = time.monotonic()
                elif msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.closed = True
            self._wake.set()
            for t in tasks:
                t.cancel()
            self.on_closed()

    def on_text(self, text: str) -> Any:  # pragma: no cover - overridden
        return None

    def on_closed(self) -> None:  # pragma: no cover - overridden
        return None


class MarketSession(WsSession):
    """A ``/ws`` or ``/stream`` connection with its subscriptions and ``combined`` property."""

    kind = "market"

    def __init__(
        self, hub: StreamHub, ws: web.WebSocketResponse, request: web.Request, combined: bool
    ) -> None:
        super().__init__(ws, request, hub.opts)
        self.hub = hub
        self.combined = combined
        self.streams: list[str] = []  # in subscription order (LIST_SUBSCRIPTIONS)
        self.listen_keys: list[str] = []

    def shutdown_frame(self) -> bytes:
        inner = super().shutdown_frame()
        return b'{"stream":"!serverShutdown","data":' + inner + b"}" if self.combined else inner

    def on_closed(self) -> None:
        self.hub.detach(self)

    def _reply(self, obj: dict[str, Any]) -> None:
        self.send_json(obj)

    def _error(self, code: int, msg: str, req_id: Any = None, with_id: bool = True) -> None:
        err: dict[str, Any] = {"code": code, "msg": msg}
        if with_id:
            err["id"] = req_id
        self._reply(err)

    def on_text(self, text: str) -> None:
        """SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS / SET_PROPERTY / GET_PROPERTY with Binance's answers."""
        try:
            msg = json.loads(text)
        except json.JSONDecodeError as exc:
            self._error(
                3, f"Invalid JSON: expected value at line {exc.lineno} column {exc.colno}", with_id=False
            )
            return
        if not isinstance(msg, dict):
            self._error(3, "Invalid JSON: expected a JSON object at line 1 column 1", with_id=False)
            return
        req_id = msg.get("id")
        if "id" not in msg or not (
            req_id is None
            or (isinstance(req_id, int) and not isinstance(req_id, bool) and -(2**63) <= req_id < 2**63)
            or (isinstance(req_id, str) and _ID_STR_RE.match(req_id))
        ):
            self._error(2, "Invalid request: request ID must be an unsigned integer", with_id=False)
            return
        method = msg.get("method")
        if method is None:
            self._error(2, f"Invalid request: missing field `method` at line 1 column {len(text)}", req_id)
            return
        params = msg.get("params", [])
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                self._error(2, "Invalid request: params must be a list of stream names", req_id)
                return
            names = [normalize_stream(p) for p in params]
            if any(n is None for n in names):
                self._error(2, "Invalid request: invalid stream", req_id)
                return
            if method == "SUBSCRIBE":
                if len(set(self.streams) | set(names)) > self.opts.ws_max_streams:  # type: ignore[arg-type]
                    self._error(
                        2, f"Invalid request: too many streams (max {self.opts.ws_max_streams})", req_id
                    )
                    return
                self.hub.subscribe(self, names)  # type: ignore[arg-type]
            else:
                self.hub.unsubscribe(self, names)  # type: ignore[arg-type]
            self._reply({"result": None, "id": req_id})
        elif method == "LIST_SUBSCRIPTIONS":
            self._reply({"result": list(self.streams), "id": req_id})
        elif method in ("SET_PROPERTY", "GET_PROPERTY"):
            want = 2 if method == "SET_PROPERTY" else 1
            if not isinstance(params, list) or len(params) > want:
                self._error(2, "Invalid request: too many parameters", req_id)
                return
            if len(params) < want or not isinstance(params[0], str):
                self._error(2, "Invalid request: property name must be a string", req_id)
                return
            if params[0] != "combined":
                self._error(0, "Unknown property", req_id)
                return
            if method == "GET_PROPERTY":
                self._reply({"result": self.combined, "id": req_id})
                return
            if not isinstance(params[1], bool):
                self._error(1, "Invalid value type: expected Boolean", req_id)
                return
            self.combined = params[1]
            self._reply({"result": None, "id": req_id})
        else:
            shown = method if isinstance(method, str) else json.dumps(method)
            self._error(
                2,
                f"Invalid request: unknown variant `{shown}`, expected one of {_METHODS} at line 1 column 28",
                req_id,
            )


class StreamHub:
    """Routes venue market messages (and legacy listenKey user events) to market sessions."""

    def __init__(
        self, opts: ServerOptions, faults: FaultController, venue_depth: Callable[[str, int], dict]
    ) -> None:
        self.opts = opts
        self.faults = faults
        self.venue_depth = venue_depth
        self.sessions: set[MarketSession] = set()
        self._by_stream: dict[str, set[MarketSession]] = {}
        self._partials: dict[str, _Partial] = {}
        self._by_listen_key: dict[str, set[MarketSession]] = {}
        self._ticker_task: asyncio.Task[None] | None = None
        self.tickers: Callable[[str], dict[str, Any]] | None = None  # venue.ticker_24hr, set by the server
        self.messages_in = 0

    # -- sessions -------------------------------------------------------------------------------
    def attach(self, session: MarketSession, streams: Iterable[str], listen_keys: Iterable[str] = ()) -> None:
        self.sessions.add(session)
        self.subscribe(session, list(streams))
        for key in listen_keys:
            session.listen_keys.append(key)
            self._by_listen_key.setdefault(key, set()).add(session)

    def detach(self, session: MarketSession) -> None:
        self.sessions.discard(session)
        self.unsubscribe(session, list(session.streams))
        for key in session.listen_keys:
            subs = self._by_listen_key.get(key)
            if subs:
                subs.discard(session)
                if not subs:
                    del self._by_listen_key[key]

    def subscribe(self, session: MarketSession, names: list[str]) -> None:
        for name in names:
            if name in session.streams:
                continue
            session.streams.append(name)
            self._by_stream.setdefault(name, set()).add(session)
            m = _PARTIAL_RE.match(name)
            if m:
                period = 0.1 if m.group(4) == "100" else 1.0
                self._partials[name] = _Partial(m.group(1).upper(), int(m.group(2)), period)
            self._ensure_timer()

    def unsubscribe(self, session: MarketSession, names: list[str]) -> None:
        for name in names:
            if name in session.streams:
                session.streams.remove(name)
            subs = self._by_stream.get(name)
            if subs is not None:
                subs.discard(session)
                if not subs:
                    del self._by_stream[name]
                    self._partials.pop(name, None)

    def subscribers(self, stream: str) -> int:
        return len(self._by_stream.get(stream, ()))

    # -- venue -> clients -------------------------------------------------------------------------
    def publish(self, stream: str, payload: bytes) -> None:
        """Fan one venue market message out (``VenueListener.on_market``)."""
        self.messages_in += 1
        sym, _, kind = stream.partition("@")
        is_diff = kind in _DIFF_KINDS
        if is_diff:
            symbol = sym.upper()
            if self._partials:
                self._mark_dirty(symbol)
            if self.faults.take_depth_gap(symbol):
                return
        elif kind == "bookTicker" and self._partials:
            self._mark_dirty(sym.upper())
        if self.faults.stalled("market"):
            return
        if is_diff:
            for name in (f"{sym}@depth", f"{sym}@depth@100ms", f"{sym}@depth@1000ms"):
                self._fanout(name, payload)
        else:
            self._fanout(stream, payload)

    def _mark_dirty(self, symbol: str) -> None:
        for p in self._partials.values():
            if p.symbol == symbol:
                p.dirty = True

    def _fanout(self, stream: str, payload: bytes) -> None:
        subs = self._by_stream.get(stream)
        if not subs:
            return
        envelope = None
        for s in subs:
            if s.combined:
                if envelope is None:
                    envelope = b'{"stream":"' + stream.encode() + b'","data":' + payload + b"}"
                s.send(envelope)
            else:
                s.send(payload)

    def publish_user(self, api_key_listen_keys: Iterable[str], event: bytes) -> int:
        """Legacy ``/ws/<listenKey>``: bare events (combined: ``{"stream": key, "data": ...}``)."""
        sent = 0
        for key in api_key_listen_keys:
            for s in self._by_listen_key.get(key, ()):
                if s.combined:
                    s.send(b'{"stream":"' + key.encode() + b'","data":' + event + b"}")
                else:
                    s.send(event)
                sent += 1
        return sent

    # -- periodic streams: partial depth, tickers --------------------------------------------------
    def _ensure_timer(self) -> None:
        if self._ticker_task is None or self._ticker_task.done():
            with contextlib.suppress(RuntimeError):
                self._ticker_task = asyncio.get_running_loop().create_task(self._timer())

    async def _timer(self) -> None:
        last_ticker = 0.0
        while self._by_stream:
            await asyncio.sleep(0.1)
            now = time.monotonic()
            if self.faults.stalled("market"):
                continue
            if self._partials:
                self._push_partials(now)
            if now - last_ticker >= 1.0:
                last_ticker = now
                self._push_tickers()

    def _push_partials(self, now: float) -> None:
        cache: dict[tuple[str, int], bytes] = {}
        for name, p in list(self._partials.items()):
            if not p.dirty or now - p.last_sent < p.period - 0.001:
                continue
            key = (p.symbol, p.levels)
            payload = cache.get(key)
            if payload is None:
                try:
                    book = self.venue_depth(p.symbol, p.levels)
                except Exception:  # unknown symbol: Binance silently sends nothing
                    p.dirty = False
                    continue
                payload = cache[key] = json.dumps(
                    {"lastUpdateId": book["lastUpdateId"], "bids": book["bids"], "asks": book["asks"]},
                    separators=(",", ":"),
                ).encode()
            p.last_sent = now
            p.dirty = False
            self._fanout(name, payload)

    def _push_tickers(self) -> None:
        if self.tickers is None:
            return
        for name in list(self._by_stream):
            sym, _, kind = name.partition("@")
            if kind not in ("miniTicker", "ticker"):
                continue
            try:
                t = self.tickers(sym.upper())
            except Exception:
                continue
            E = now_ms()
            if kind == "miniTicker":
                data = {
                    "e": "24hrMiniTicker", "E": E, "s": t["symbol"], "c": t["lastPrice"], "o": t["openPrice"],
                    "h": t["highPrice"], "l": t["lowPrice"], "v": t["volume"], "q": t["quoteVolume"],
                }  # fmt: skip
            else:
                data = {
                    "e": "24hrTicker", "E": E, "s": t["symbol"], "p": t["priceChange"],
                    "P": t["priceChangePercent"], "w": t["weightedAvgPrice"], "x": t["prevClosePrice"],
                    "c": t["lastPrice"], "Q": t["lastQty"], "b": t["bidPrice"], "B": t["bidQty"],
                    "a": t["askPrice"], "A": t["askQty"], "o": t["openPrice"], "h": t["highPrice"],
                    "l": t["lowPrice"], "v": t["volume"], "q": t["quoteVolume"], "O": t["openTime"],
                    "C": t["closeTime"], "F": t["firstId"], "L": t["lastId"], "n": t["count"],
                }  # fmt: skip
            self._fanout(name, json.dumps(data, separators=(",", ":")).encode())

    # -- faults -----------------------------------------------------------------------------------
    def drop_all(self, listen_keys_only: bool = False) -> int:
        n = 0
        for s in list(self.sessions):
            if listen_keys_only and not s.listen_keys:
                continue
            s.abort()
            n += 1
        return n

    def stop(self) -> None:
        if self._ticker_task is not None:
            self._ticker_task.cancel()
