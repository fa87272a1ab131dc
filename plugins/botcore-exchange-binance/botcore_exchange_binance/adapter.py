"""``BinanceAdapter``: the one place in botcore that knows Binance (``ExchangeAdapter`` protocol).

It composes the pieces of this package: REST over python-binance (``rest``), the combined market
stream (``streams``), the user-data stream (``userstream``), WebSocket API order entry (``wsapi``),
the rate limiter (``limiter``) and the server clock (``clock``). The policy for failures lives
here, identical for both order transports:

* venue rejection -> ``REJECTED`` outcome with the venue's code and message;
* 429 -> the limiter goes cancel-only until Retry-After passes (new orders are refused locally
  with a clear reason, cancels still go out); 418 -> nothing is sent until the ban ends;
* -1021 -> resynchronise the server-time offset, retry that request once;
* -2011 on a cancel -> query the order; the outcome is what the query says;
* timeout, 5xx, -1006/-1007, connection lost after sending -> ``UNKNOWN``; never resent blindly.
  ``query_order`` resolves it (``REJECTED`` with -2013 = it never existed).

Blocking methods are for worker threads (gateway pool, scheduler), never the engine thread.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

import websocket

from botcore.events import EventSink, StreamStatus
from botcore.model import (
    AccountSnapshot,
    CancelRequest,
    ExecutionReport,
    Fill,
    Instrument,
    OpenOrder,
    OrderOutcome,
    OrderRequest,
    OrderStatus,
)
from botcore_exchange_binance import decode
from botcore_exchange_binance.clock import ServerClock, now_ns
from botcore_exchange_binance.endpoints import Endpoints, resolve
from botcore_exchange_binance.errors import BinanceAdapterError, NotSent, UnknownStatus, VenueError
from botcore_exchange_binance.limiter import RateLimiter
from botcore_exchange_binance.orders import LocalReject, cancel_params, cancel_replace_params, order_params
from botcore_exchange_binance.rest import RestTransport
from botcore_exchange_binance.scrub import Secret, install_log_filters, scrub
from botcore_exchange_binance.streams import DAY_S, MarketStream
from botcore_exchange_binance.userstream import UserStream
from botcore_exchange_binance.wsapi import WsApiTransport

log = logging.getLogger(__name__)
T = TypeVar("T")

ORDER_TRANSPORTS = ("rest", "ws_api")
DEFAULT_ORDER_TRANSPORT = "ws_api"
"""Chosen by bench/bench_gateway.py: see the plugin README for the figures."""


@dataclass
class BinanceOptions:
    """Tunables, set from ``exchange.options`` in the YAML (every key optional)."""

    order_transport: str = DEFAULT_ORDER_TRANSPORT  # rest | ws_api
    rest_pool_size: int = 4  # keep-alive sessions = concurrent REST requests
    request_timeout_s: float = 10.0  # an order without answer after this is UNKNOWN
    stall_timeout_s: float = 5.0  # market stream silent this long -> reconnect
    max_session_s: float = DAY_S - 1800.0  # planned reconnect before Binance's 24 h cut
    backoff_initial_s: float = 0.25
    backoff_max_s: float = 30.0
    ping_interval_s: float = 20.0
    ping_timeout_s: float = 10.0
    time_sync_interval_s: float = 60.0  # periodic server-time offset refresh
    depth_interval: str = "100ms"  # <sym>@depth@100ms ("" for the 1 s stream)
    order_reserve: float = 0.05  # fraction of each ORDERS window never used
    weight_reserve: float = 0.1  # fraction of request weight kept for cancels
    trust_env: bool = False  # let requests read proxies/.netrc from the environment

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any] | None) -> BinanceOptions:
        known = {f.name: f for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in (options or {}).items():
            if key not in known:
                raise ValueError(
                    f"exchange.options.{key}: unknown option for the binance adapter "
                    f"(known: {', '.join(sorted(known))})"
                )
            default = getattr(cls, key)
            try:
                kwargs[key] = _coerce(value, type(default))
            except (TypeError, ValueError):
                raise ValueError(f"exchange.options.{key}: {value!r} is not a valid {type(default).__name__}") from None
        opts = cls(**kwargs)
        if opts.order_transport not in ORDER_TRANSPORTS:
            raise ValueError(f"exchange.options.order_transport must be one of {ORDER_TRANSPORTS}")
        return opts


def _coerce(value: Any, typ: type) -> Any:
    if typ is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "1", "yes", "on"):
            return True
        if str(value).lower() in ("false", "0", "no", "off"):
            return False
        raise ValueError(value)
    return typ(value)


@dataclass
class BinanceSettings:
    """Everything the adapter needs, resolved from the bot config (see ``from_config``)."""

    endpoints: Endpoints
    api_key: Secret
    api_secret: Secret
    symbols: tuple[str, ...] = ()
    recv_window_ms: int = 5000
    mode: str = "paper"
    options: BinanceOptions = field(default_factory=BinanceOptions)

    def __repr__(self) -> str:
        return f"BinanceSettings(mode={self.mode!r}, endpoints={self.endpoints!r}, symbols={self.symbols!r})"

    @classmethod
    def from_config(cls, config: Any, venue: Any = None) -> BinanceSettings:
        """From ``BotConfig`` (reads ``config.exchange``) and the embedded venue's endpoints."""
        ex = getattr(config, "exchange", config)
        mode = str(getattr(ex, "mode", "paper"))
        endpoints = resolve(
            mode,
            venue=venue,
            rest_url=getattr(ex, "rest_url", None),
            stream_url=getattr(ex, "stream_url", None),
            ws_api_url=getattr(ex, "ws_api_url", None),
            allow_production=bool(getattr(ex, "allow_production", False)),
        )
        key = _reveal(getattr(ex, "api_key", None))
        secret = _reveal(getattr(ex, "api_secret", None))
        if mode == "paper" and venue is not None and getattr(venue, "api_key", ""):
            key, secret = venue.api_key, venue.api_secret
        if not key or not secret:
            raise ValueError(f"exchange.api_key / exchange.api_secret are required in {mode} mode")
        recv_window = int(getattr(ex, "recv_window_ms", None) or 5000)
        if not 0 < recv_window <= 60000:
            raise ValueError("exchange.recv_window_ms must be in 1..60000")
        return cls(
            endpoints=endpoints,
            api_key=Secret(key),
            api_secret=Secret(secret),
            symbols=tuple(s.upper() for s in (getattr(ex, "symbols", None) or ())),
            recv_window_ms=recv_window,
            mode=mode,
            options=BinanceOptions.from_mapping(getattr(ex, "options", None)),
        )


def _reveal(value: Any) -> str:
    """Plain string from a str, pydantic ``SecretStr`` or our ``Secret`` (None -> "")."""
    if value is None:
        return ""
    for attr in ("get_secret_value", "reveal"):
        fn = getattr(value, attr, None)
        if callable(fn):
            return str(fn())
    return str(value)


class BinanceAdapter:
    """Binance spot adapter (paper venue, testnet, or production when explicitly allowed)."""

    name = "binance"

    def __init__(
        self,
        settings: BinanceSettings,
        *,
        clock: ServerClock | None = None,
        app_factory: Callable[..., Any] = websocket.WebSocketApp,
    ) -> None:
        install_log_filters()
        self.settings = settings
        opts = settings.options
        self.clock = clock or ServerClock()
        self.limiter = RateLimiter(
            self.clock.now_ms, order_reserve=opts.order_reserve, weight_reserve=opts.weight_reserve
        )
        self.rest = RestTransport(
            settings.endpoints.rest_url,
            settings.api_key,
            settings.api_secret,
            limiter=self.limiter,
            clock=self.clock,
            pool_size=opts.rest_pool_size,
            timeout_s=opts.request_timeout_s,
            recv_window_ms=settings.recv_window_ms,
            trust_env=opts.trust_env,
        )
        self._app_factory = app_factory
        self.ws_api: WsApiTransport | None = None
        if opts.order_transport == "ws_api":
            self.ws_api = self._make_ws_api()
        self.orders: RestTransport | WsApiTransport = self.ws_api or self.rest
        self.rest_fallbacks = 0  # order requests sent over REST while the WS API was down
        self.market: MarketStream | None = None
        self.user: UserStream | None = None
        self._instruments: dict[str, Instrument] = {}
        self._coids: OrderedDict[int, str] = OrderedDict()
        self._coid_lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self.sync_generation = 0  # +1 per server-time sync
        self._stop = threading.Event()
        self._maint: threading.Thread | None = None
        self._started = False
        self._stopped = False
        self._sink: EventSink | None = None
        self._entry_lock = threading.Lock()
        self._entry_closed = False  # an "orders" untrusted status was sent and not yet revoked
        self._entry_timer: threading.Timer | None = None
        self.limiter.on_penalty = self._on_penalty

    def __repr__(self) -> str:
        return f"BinanceAdapter(mode={self.settings.mode!r}, rest={self.settings.endpoints.rest_url!r})"

    def _make_ws_api(self) -> WsApiTransport:
        opts = self.settings.options
        return WsApiTransport(
            self.settings.endpoints.ws_api_url,
            self.settings.api_key,
            self.settings.api_secret,
            limiter=self.limiter,
            clock=self.clock,
            recv_window_ms=self.settings.recv_window_ms,
            timeout_s=opts.request_timeout_s,
            max_session_s=opts.max_session_s,
            backoff_initial_s=opts.backoff_initial_s,
            backoff_max_s=opts.backoff_max_s,
            ping_interval_s=opts.ping_interval_s,
            ping_timeout_s=opts.ping_timeout_s,
            app_factory=self._app_factory,
        )

    @classmethod
    def from_config(cls, config: Any, endpoints: Any = None) -> BinanceAdapter:
        return cls(BinanceSettings.from_config(config, endpoints))

    # ------------------------------------------------------------------------------------------
    # Lifecycle
    # ------------------------------------------------------------------------------------------
    def start(self, sink: EventSink, symbols: Sequence[str]) -> None:
        """Open the market stream, the user stream (and the WS API order connection); no blocking."""
        if self._started:
            return
        self._started = True
        self._sink = sink
        opts = self.settings.options
        syms = [s.upper() for s in (symbols or self.settings.symbols)]
        if syms:
            self.market = MarketStream(
                self.settings.endpoints.stream_url,
                syms,
                sink,
                depth_interval=opts.depth_interval,
                stall_timeout_s=opts.stall_timeout_s,
                max_session_s=opts.max_session_s,
                backoff_initial_s=opts.backoff_initial_s,
                backoff_max_s=opts.backoff_max_s,
                ping_interval_s=opts.ping_interval_s,
                ping_timeout_s=opts.ping_timeout_s,
                app_factory=self._app_factory,
            )
        self.user = UserStream(
            self.settings.endpoints.ws_api_url,
            self.settings.api_key,
            self.settings.api_secret,
            self.clock,
            sink,
            resync_clock=self.resync_clock,
            on_report=self._observe,
            recv_window_ms=self.settings.recv_window_ms,
            max_session_s=opts.max_session_s,
            backoff_initial_s=opts.backoff_initial_s,
            backoff_max_s=opts.backoff_max_s,
            ping_interval_s=opts.ping_interval_s,
            ping_timeout_s=opts.ping_timeout_s,
            app_factory=self._app_factory,
        )
        self._maint = threading.Thread(target=self._maintain, name="binance-clock", daemon=True)
        self._maint.start()
        if self.market is not None:
            self.market.start()
        self.user.start()
        if self.ws_api is not None:
            self.ws_api.start()

    def stop(self) -> None:
        """Close streams, connections and sessions; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        with self._entry_lock:
            if self._entry_timer is not None:
                self._entry_timer.cancel()
        for part in (self.market, self.user):
            if part is not None:
                part.stop()
        if self.ws_api is not None:
            self.ws_api.close()
        self.rest.close()
        if self._maint is not None:
            self._maint.join(2.0)

    def _maintain(self) -> None:
        """Keep the server-time offset fresh (signed timestamps depend on it)."""
        interval = self.settings.options.time_sync_interval_s
        wait = 0.0
        while not self._stop.wait(wait):
            try:
                self.resync_clock(min_age_s=0.0)
                wait = interval
            except BinanceAdapterError as exc:
                log.warning("server time sync failed: %s", exc)
                wait = min(interval, 5.0)

    # ------------------------------------------------------------------------------------------
    # Order entry open/closed (429 cancel-only, 418 ban)
    # ------------------------------------------------------------------------------------------
    def _on_penalty(self, http_status: int, seconds: float, reason: str) -> None:
        """Tell the engine order entry is closed, so it pauses quoting instead of deciding orders
        that the limiter would refuse at every tick; reopen it when the penalty is over."""
        kind = "banned (HTTP 418)" if http_status == 418 else "cancel-only (HTTP 429)"
        with self._entry_lock:
            announce = not self._entry_closed and self._sink is not None and not self._stopped
            if announce:
                self._entry_closed = True
            self._schedule_entry_check_locked()
        if announce:
            assert self._sink is not None
            self._sink.put(StreamStatus("orders", False, f"{kind} for {seconds:.1f}s: {reason}", now_ns()))

    def _schedule_entry_check_locked(self) -> None:
        if self._entry_timer is not None:
            self._entry_timer.cancel()
        if self._stopped:
            return
        delay = self.limiter.seconds_until_clear() + 0.01
        self._entry_timer = threading.Timer(delay, self._check_entry)
        self._entry_timer.daemon = True
        self._entry_timer.start()

    def _check_entry(self) -> None:
        with self._entry_lock:
            if self._stopped or not self._entry_closed:
                return
            if self.limiter.banned or self.limiter.cancel_only:  # extended meanwhile
                self._schedule_entry_check_locked()
                return
            self._entry_closed = False
            self._entry_timer = None
            sink = self._sink
        if sink is not None:
            sink.put(StreamStatus("orders", True, "rate-limit penalty over: new orders allowed", now_ns()))

    def resync_clock(self, min_age_s: float = 1.0, *, unless_since: int | None = None) -> None:
        """Measure the server-time offset now.

        Skipped if the last sync is younger than ``min_age_s``, or if ``unless_since`` (a
        ``sync_generation`` read before a request was signed) is stale: another thread already
        resynchronised after that request, so a burst of -1021s costs one ``/time`` call.
        """
        with self._sync_lock:
            if self.clock.age_s() < min_age_s:
                return
            if unless_since is not None and unless_since != self.sync_generation:
                return
            self.clock.sync(self.rest.server_time_ms)
            self.sync_generation += 1
            log.info("server time offset %+d ms (rtt %.1f ms)", self.clock.offset_ms, self.clock.rtt_ms)

    def _ensure_clock(self) -> None:
        """Sync once before the first signed request (later syncs are periodic or after -1021)."""
        if self.clock.synced:
            return
        try:
            with self._sync_lock:
                if self.clock.synced:
                    return
                self.clock.sync(self.rest.server_time_ms)
                self.sync_generation += 1
        except BinanceAdapterError as exc:
            log.warning("server time sync failed: %s", exc)

    def _order_transport(self) -> RestTransport | WsApiTransport:
        """The WebSocket API when its connection is up, else REST (same venue, same semantics):
        orders keep flowing while the WS connection reconnects instead of waiting for it."""
        ws = self.ws_api
        if ws is None:
            return self.rest
        ws.start()  # idempotent: lets orders work before start() (tools, tests)
        if ws.socket.is_open:
            return ws
        self.rest_fallbacks += 1
        return self.rest

    # ------------------------------------------------------------------------------------------
    # Reference data and account state
    # ------------------------------------------------------------------------------------------
    def exchange_info(self, symbols: Sequence[str]) -> dict[str, Instrument]:
        info = self.rest.exchange_info(list(symbols) if symbols else None)
        self.limiter.configure(decode.rest_rate_limits(info))
        found = decode.instruments(info, symbols or None)
        self._instruments.update(found)
        return found

    def _instrument(self, symbol: str) -> Instrument | None:
        inst = self._instruments.get(symbol)
        if inst is None:
            try:
                inst = self.exchange_info([symbol]).get(symbol)
            except BinanceAdapterError as exc:
                log.warning("exchange info for %s failed: %s", symbol, exc)
                return None
        return inst

    def account_snapshot(self) -> AccountSnapshot:
        self._ensure_clock()
        symbols = self.settings.symbols or tuple(self._instruments)
        # The order list's fence (``AccountSnapshot.fetched_at_ms``): taken before it is asked for,
        # so an order placed or changed while the requests run counts as newer than the list.
        listed_from_ms = self.clock.now_ms()
        if symbols and len(symbols) <= 10:
            orders = [o for s in symbols for o in self.open_orders(s)]
        else:
            orders = self.open_orders(None)
        account = self.rest.account()
        return AccountSnapshot(
            balances=decode.balances(account),
            open_orders=tuple(orders),
            update_time_ms=int(account.get("updateTime", 0) or 0),
            fetched_at_ms=listed_from_ms,
        )

    def open_orders(self, symbol: str | None = None) -> list[OpenOrder]:
        self._ensure_clock()
        rows = self.rest.open_orders(symbol)
        out = [decode.open_order(r) for r in rows]
        for o in out:
            self._remember(o.order_id, o.client_order_id)
        return out

    def depth_snapshot(self, symbol: str, limit: int = 1000) -> bytes:
        return self.rest.depth_raw(symbol, limit)

    def server_time_ms(self) -> int:
        return self.rest.server_time_ms()

    def my_trades(self, symbol: str, from_id: int = 0) -> list[Fill]:
        self._ensure_clock()
        rows = self.rest.my_trades(symbol, from_id)
        return [decode.trade_fill(r, self._client_id_of(symbol, int(r.get("orderId", 0)))) for r in rows]

    # ------------------------------------------------------------------------------------------
    # Orders
    # ------------------------------------------------------------------------------------------
    def submit(self, order: OrderRequest) -> tuple[OrderOutcome, tuple[Fill, ...]]:
        """Place one order (blocking). Venue errors become outcomes; nothing is resent blindly."""
        coid = order.client_order_id
        try:
            params = order_params(self._instrument(order.symbol), order)
        except LocalReject as r:
            return _outcome("new", order.symbol, coid, OrderStatus.REJECTED, r.code, f"{r.msg} (checked locally, not sent)"), ()
        self._ensure_clock()
        transport = self._order_transport()
        try:
            result, wire_ns = self._with_time_retry(lambda: transport.place(params))
        except BinanceAdapterError as exc:
            return _failed("new", order.symbol, coid, exc), ()
        outcome = decode.order_outcome("new", result, sent_ns=wire_ns, done_ns=now_ns())
        self._remember(outcome.order_id, coid)
        return outcome, decode.order_fills(result, order.side, coid)

    def cancel(self, request: CancelRequest) -> OrderOutcome:
        """Cancel by client order id. -2011 is resolved by a query, not assumed."""
        self._ensure_clock()
        transport = self._order_transport()
        params = cancel_params(request.symbol, request.client_order_id)
        try:
            result, wire_ns = self._with_time_retry(lambda: transport.cancel(params))
        except VenueError as exc:
            if exc.code == -2011:
                return self._resolve_failed_cancel(request.symbol, request.client_order_id, exc)
            return _failed("cancel", request.symbol, request.client_order_id, exc)
        except BinanceAdapterError as exc:
            return _failed("cancel", request.symbol, request.client_order_id, exc)
        return decode.order_outcome("cancel", result, sent_ns=wire_ns, done_ns=now_ns())

    def cancel_replace(
        self, cancel: CancelRequest, new: OrderRequest
    ) -> tuple[OrderOutcome, OrderOutcome, tuple[Fill, ...]]:
        """Cancel ``cancel`` and place ``new`` in one request (STOP_ON_FAILURE: no new order if the
        cancel fails). Returns (cancel leg outcome, new leg outcome, fills of the new order)."""
        try:
            params = order_params(self._instrument(new.symbol), new)
        except LocalReject as r:
            # The replacement may not be sent; the cancel still goes out on its own.
            new_out = _outcome("new", new.symbol, new.client_order_id, OrderStatus.REJECTED, r.code,
                               f"{r.msg} (checked locally, not sent)")
            return self.cancel(cancel), new_out, ()
        if self.limiter.cancel_only or self.limiter.banned:
            new_out = _outcome("new", new.symbol, new.client_order_id, OrderStatus.REJECTED, -1003,
                               "new orders paused by rate limiting (not sent)")
            return self.cancel(cancel), new_out, ()
        self._ensure_clock()
        transport = self._order_transport()
        cr_params = cancel_replace_params(params, cancel.client_order_id)
        try:
            result, wire_ns = self._with_time_retry(lambda: transport.cancel_replace(cr_params))
        except VenueError as exc:
            return self._cancel_replace_failure(cancel, new, exc)
        except BinanceAdapterError as exc:
            return (_failed("cancel", cancel.symbol, cancel.client_order_id, exc),
                    _failed("new", new.symbol, new.client_order_id, exc), ())
        done = now_ns()
        cancel_out = decode.order_outcome("cancel", result["cancelResponse"], sent_ns=wire_ns, done_ns=done)
        new_resp = result["newOrderResponse"]
        new_out = decode.order_outcome("new", new_resp, sent_ns=wire_ns, done_ns=done)
        self._remember(new_out.order_id, new.client_order_id)
        return cancel_out, new_out, decode.order_fills(new_resp, new.side, new.client_order_id)

    def _cancel_replace_failure(
        self, cancel: CancelRequest, new: OrderRequest, exc: VenueError
    ) -> tuple[OrderOutcome, OrderOutcome, tuple[Fill, ...]]:
        data = exc.data or {}
        if not data:  # rejected as a whole (filter, 429, 418, bad params): neither leg executed
            return (_failed("cancel", cancel.symbol, cancel.client_order_id, exc),
                    _failed("new", new.symbol, new.client_order_id, exc), ())
        done = now_ns()
        cancel_resp = data.get("cancelResponse") or {}
        if data.get("cancelResult") == "SUCCESS":
            cancel_out = decode.order_outcome("cancel", cancel_resp, done_ns=done)
        else:
            code, msg = int(cancel_resp.get("code", exc.code) or 0), str(cancel_resp.get("msg", exc.msg))
            leg = VenueError(code, msg, exc.http_status)
            if code == -2011:
                cancel_out = self._resolve_failed_cancel(cancel.symbol, cancel.client_order_id, leg)
            else:
                cancel_out = _failed("cancel", cancel.symbol, cancel.client_order_id, leg)
        new_resp = data.get("newOrderResponse") or {}
        fills: tuple[Fill, ...] = ()
        if data.get("newOrderResult") == "SUCCESS":
            new_out = decode.order_outcome("new", new_resp, done_ns=done)
            self._remember(new_out.order_id, new.client_order_id)
            fills = decode.order_fills(new_resp, new.side, new.client_order_id)
        elif data.get("newOrderResult") == "NOT_ATTEMPTED":
            new_out = _outcome("new", new.symbol, new.client_order_id, OrderStatus.REJECTED, exc.code,
                               "not attempted: the cancel leg failed")
        else:
            new_out = _outcome("new", new.symbol, new.client_order_id, OrderStatus.REJECTED,
                               int(new_resp.get("code", exc.code) or 0), str(new_resp.get("msg", exc.msg)))
        return cancel_out, new_out, fills

    def query_order(self, symbol: str, client_order_id: str) -> OrderOutcome:
        """The venue's view of one order; REJECTED with -2013 means it never existed."""
        self._ensure_clock()
        transport = self._order_transport()
        try:
            result, wire_ns = self._with_time_retry(lambda: transport.query(symbol, client_order_id))
        except VenueError as exc:
            if exc.code == -2013:
                return _outcome("query", symbol, client_order_id, OrderStatus.REJECTED, -2013,
                                f"{exc.msg} (the order never existed)")
            return _outcome("query", symbol, client_order_id, OrderStatus.UNKNOWN, exc.code, exc.msg)
        except BinanceAdapterError as exc:
            return _outcome("query", symbol, client_order_id, OrderStatus.UNKNOWN, getattr(exc, "code", 0), exc.message)
        outcome = decode.order_outcome("query", result, sent_ns=wire_ns, done_ns=now_ns())
        self._remember(outcome.order_id, client_order_id)
        return outcome

    def _resolve_failed_cancel(self, symbol: str, client_order_id: str, exc: VenueError) -> OrderOutcome:
        """-2011 "Unknown order sent.": filled, already cancelled, or never existed? Ask."""
        q = self.query_order(symbol, client_order_id)
        return OrderOutcome(
            action="cancel",
            symbol=symbol,
            client_order_id=client_order_id,
            status=q.status,
            order_id=q.order_id,
            error_code=exc.code,
            error_msg=f"{exc.msg} -> resolved by query: {q.status.value}"
            + (f" ({q.error_msg})" if q.error_msg else ""),
            cum_qty=q.cum_qty,
            sent_ns=q.sent_ns,
            done_ns=q.done_ns or now_ns(),
        )

    def _with_time_retry(self, fn: Callable[[], T]) -> T:
        """Run ``fn``; after a -1021 (timestamp outside recvWindow) resync the clock and retry once."""
        generation = self.sync_generation
        try:
            return fn()
        except VenueError as exc:
            if exc.code != -1021:
                raise
            log.warning("-1021 from the venue: resynchronising server time and retrying once")
            try:
                self.resync_clock(min_age_s=0.0, unless_since=generation)
            except BinanceAdapterError as sync_exc:
                log.warning("server time sync failed: %s", sync_exc)
                raise exc from None
            return fn()

    # ------------------------------------------------------------------------------------------
    # order id -> client order id (myTrades rows carry only the order id)
    # ------------------------------------------------------------------------------------------
    def _remember(self, order_id: int, client_order_id: str) -> None:
        if not order_id or not client_order_id:
            return
        with self._coid_lock:
            self._coids[order_id] = client_order_id
            self._coids.move_to_end(order_id)
            while len(self._coids) > 100_000:
                self._coids.popitem(last=False)

    def _observe(self, event: Any) -> None:
        if isinstance(event, ExecutionReport):
            self._remember(event.order_id, event.client_order_id)

    def _client_id_of(self, symbol: str, order_id: int) -> str:
        with self._coid_lock:
            coid = self._coids.get(order_id)
        if coid is None:
            try:
                coid = str(self.rest.order_by_id(symbol, order_id).get("clientOrderId", ""))
            except BinanceAdapterError as exc:
                log.warning("client order id of order %s unknown: %s", order_id, exc)
                coid = ""
            self._remember(order_id, coid)
        return coid


def _outcome(action: str, symbol: str, coid: str, status: OrderStatus, code: int = 0, msg: str = "") -> OrderOutcome:
    return OrderOutcome(
        action=action, symbol=symbol, client_order_id=coid, status=status, error_code=code,
        error_msg=scrub(msg), done_ns=now_ns(),
    )


def _failed(action: str, symbol: str, coid: str, exc: BinanceAdapterError) -> OrderOutcome:
    """A request that raised: UNKNOWN if it may have executed, REJECTED if it certainly did not."""
    if isinstance(exc, UnknownStatus):
        return _outcome(action, symbol, coid, OrderStatus.UNKNOWN, exc.code, exc.message)
    if isinstance(exc, VenueError):
        return _outcome(action, symbol, coid, OrderStatus.REJECTED, exc.code, exc.msg)
    if isinstance(exc, NotSent):
        return _outcome(action, symbol, coid, OrderStatus.REJECTED, exc.code, f"not sent: {exc.message}")
    return _outcome(action, symbol, coid, OrderStatus.UNKNOWN, 0, exc.message)
