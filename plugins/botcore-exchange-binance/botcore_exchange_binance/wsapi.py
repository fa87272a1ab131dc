"""Order entry over Binance's WebSocket API (``/ws-api/v3``) on one persistent connection.

Requests carry an id; a future per id is completed by the reader thread. ``request`` blocks the
calling gateway thread until the answer arrives or ``timeout_s`` passes. The interface
(``place``/``cancel``/``cancel_replace``/``query`` returning ``(result, wire_ns)``) and the error
classes are the same as ``rest.RestTransport``, so the adapter logic does not care which one it
uses:

* no answer in time, or the connection dropped after the frame went out -> ``UnknownStatus``;
* not connected, or the send failed -> ``NotSent``;
* ``status`` 429/418 -> ``RateLimited``/``Banned`` (limiter penalised); 5xx, -1006, -1007 ->
  ``UnknownStatus``; other errors -> ``VenueError``.

Signing (HMAC-SHA256): every param except ``signature``, sorted by name, joined ``k=v&...``.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
import websocket

from botcore_exchange_binance.clock import ServerClock
from botcore_exchange_binance.errors import (
    UNKNOWN_CODES,
    Banned,
    NotSent,
    RateLimited,
    UnknownStatus,
    VenueError,
)
from botcore_exchange_binance.limiter import Kind, RateLimiter, retry_after_seconds
from botcore_exchange_binance.scrub import Secret
from botcore_exchange_binance.streams import DAY_S, ManagedSocket

log = logging.getLogger(__name__)

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


def sign_params(params: Mapping[str, Any], api_key: Secret, api_secret: Secret, timestamp_ms: int,
                recv_window_ms: int | None = None) -> dict[str, Any]:
    """WebSocket API signed params: adds ``apiKey``, ``timestamp`` (+``recvWindow``), ``signature``."""
    signed: dict[str, Any] = {**params, "apiKey": api_key.reveal(), "timestamp": timestamp_ms}
    if recv_window_ms:
        signed["recvWindow"] = recv_window_ms
    payload = "&".join(f"{k}={signed[k]}" for k in sorted(signed))
    signed["signature"] = hmac.new(api_secret.reveal().encode(), payload.encode(), hashlib.sha256).hexdigest()
    return signed


class _Pending:
    """A request waiting for its answer (lighter than concurrent.futures.Future)."""

    __slots__ = ("event", "response", "error")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.response: dict[str, Any] | None = None
        self.error: Exception | None = None


def translate_ws_error(response: Mapping[str, Any], limiter: RateLimiter | None) -> Exception:
    """A WebSocket API error answer -> the same classification as REST."""
    status = int(response.get("status", 0) or 0)
    err = response.get("error") or {}
    code = int(err.get("code", 0) or 0)
    msg = str(err.get("msg", ""))
    data = err.get("data") if isinstance(err.get("data"), dict) else None
    if status in (418, 429):
        retry = retry_after_seconds(None, err)
        if limiter is not None:
            retry = limiter.penalize(status, retry, reason=f"{code} {msg}")
        cls = Banned if status == 418 else RateLimited
        return cls(code, msg, status, data, retry)
    if status >= 500 or code in UNKNOWN_CODES:
        return UnknownStatus(f"WS API status {status} code {code}: {msg} (execution status unknown)", code, status)
    return VenueError(code, msg, status, data)


class WsApiTransport:
    """Persistent WebSocket API connection for orders, shared by all gateway threads."""

    def __init__(
        self,
        ws_api_url: str,
        api_key: Secret,
        api_secret: Secret,
        *,
        limiter: RateLimiter,
        clock: ServerClock,
        recv_window_ms: int = 5000,
        timeout_s: float = 10.0,
        connect_wait_s: float = 5.0,
        max_session_s: float = DAY_S - 1800.0,
        backoff_initial_s: float = 0.25,
        backoff_max_s: float = 30.0,
        ping_interval_s: float = 20.0,
        ping_timeout_s: float = 10.0,
        app_factory: Callable[..., Any] = websocket.WebSocketApp,
    ) -> None:
        self.url = ws_api_url
        self._key = api_key
        self._secret = api_secret
        self.limiter = limiter
        self.clock = clock
        self.recv_window_ms = recv_window_ms
        self.timeout_s = timeout_s
        self.connect_wait_s = connect_wait_s
        self._ids = itertools.count(1)
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        self.socket = ManagedSocket(
            "ws-api",
            ws_api_url,
            on_open=self._on_open,
            on_frame=self._on_frame,
            on_down=self._on_down,
            stall_timeout_s=None,  # quiet is normal here; pings detect a dead peer
            max_session_s=max_session_s,
            backoff_initial_s=backoff_initial_s,
            backoff_max_s=backoff_max_s,
            ping_interval_s=ping_interval_s,
            ping_timeout_s=ping_timeout_s,
            app_factory=app_factory,
        )

    def __repr__(self) -> str:
        return f"WsApiTransport({self.url!r})"

    def start(self) -> None:
        self.socket.start()

    def close(self) -> None:
        self.socket.stop()
        self._fail_all("adapter stopped")

    # --- socket callbacks ----------------------------------------------------------------------
    def _on_open(self, first: bool) -> None:
        log.info("WS API connected (%s)", "first" if first else "reconnected")

    def _on_frame(self, raw: bytes, recv_ns: int) -> None:
        try:
            msg = _decode(raw)
        except msgspec.DecodeError:
            log.warning("WS API: undecodable frame dropped")
            return
        if not isinstance(msg, dict):
            return
        rid = msg.get("id")
        if rid is None:
            event = msg.get("event") or {}
            if isinstance(event, dict) and event.get("e") == "serverShutdown":
                self.socket.force_close("serverShutdown")
            return
        with self._lock:
            pending = self._pending.pop(str(rid), None)
        if pending is not None:
            pending.response = msg
            pending.event.set()

    def _on_down(self, reason: str) -> None:
        self._fail_all(f"connection lost before the answer ({reason})")

    def _fail_all(self, reason: str) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for p in pending.values():
            p.error = UnknownStatus(reason)
            p.event.set()

    # --- requests --------------------------------------------------------------------------------
    def request(self, method: str, params: Mapping[str, Any], *, kind: Kind, weight: int,
                signed: bool = True) -> tuple[dict[str, Any], int]:
        """Send one request and wait for its answer; returns (result, wire_ns)."""
        if not self.socket.is_open and not self.socket.wait_open(self.connect_wait_s):
            raise NotSent("WS API not connected")
        self.limiter.acquire(kind, weight)
        rid = str(next(self._ids))
        body = dict(params)
        if signed:
            body = sign_params(body, self._key, self._secret, self.clock.now_ms(), self.recv_window_ms)
        frame = _encode({"id": rid, "method": method, "params": body})
        pending = _Pending()
        with self._lock:
            self._pending[rid] = pending
        counted = True  # whether the venue's counters include this request (when it did not say)
        response: dict[str, Any] | None = None
        try:
            try:
                wire_ns = self.socket.send(frame)
            except NotSent:
                counted = False
                raise
            if not pending.event.wait(self.timeout_s):
                raise UnknownStatus(f"no answer to {method} within {self.timeout_s:g}s")
            if pending.error is not None:
                raise pending.error
            response = pending.response or {}
            if response.get("rateLimits"):
                self.limiter.observe_ws(response["rateLimits"])
                counted = False  # the echoed counters already include it
            status = int(response.get("status", 0) or 0)
            if status != 200:
                err = translate_ws_error(response, self.limiter)
                if isinstance(err, VenueError):
                    counted = False
                raise err
            return dict(response.get("result") or {}), wire_ns
        finally:
            with self._lock:
                self._pending.pop(rid, None)
            self.limiter.release(kind, weight, None, counted=counted)

    # --- the order transport interface -----------------------------------------------------------
    def place(self, params: Mapping[str, str]) -> tuple[dict[str, Any], int]:
        return self.request("order.place", params, kind=Kind.ORDER, weight=1)

    def cancel(self, params: Mapping[str, str]) -> tuple[dict[str, Any], int]:
        return self.request("order.cancel", params, kind=Kind.CANCEL, weight=1)

    def cancel_replace(self, params: Mapping[str, str]) -> tuple[dict[str, Any], int]:
        return self.request("order.cancelReplace", params, kind=Kind.ORDER, weight=1)

    def query(self, symbol: str, client_order_id: str) -> tuple[dict[str, Any], int]:
        return self.request(
            "order.status", {"symbol": symbol.upper(), "origClientOrderId": client_order_id}, kind=Kind.OTHER, weight=4
        )
