"""REST through python-binance's sync ``Client``, redirected per instance and pooled.

* ``VenueClient`` subclasses ``binance.Client`` and overrides ``_create_api_uri`` with an
  instance-level base URL: no class attribute is mutated, so adapters for different venues
  coexist in one process. It skips the constructor's ``ping``.
* A small pool of clients, each with its own keep-alive ``requests.Session``, lets the gateway's
  worker threads send concurrently (a ``Client`` keeps the last response on ``self.response``, so
  one client must not be shared by two threads at once).
* Each connection stamps ``now_ns()`` when the request is fully written to the socket: that is
  ``OrderOutcome.sent_ns`` ("request on the wire").
* Every failure is translated into ``errors`` (venue rejection / unknown status / not sent) with
  scrubbed messages; python-binance's exceptions (which carry signed URLs and bodies) never
  escape. Weight and order-count headers feed the ``RateLimiter``.

Methods are blocking: call them from worker threads only, never from the engine thread.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import requests
import urllib3

with warnings.catch_warnings():  # python-binance imports the deprecated websockets.legacy API
    warnings.simplefilter("ignore", DeprecationWarning)
    from binance.client import Client
    from binance.exceptions import BinanceAPIException, BinanceRequestException
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from botcore_exchange_binance.clock import ServerClock, now_ns
from botcore_exchange_binance.errors import (
    UNKNOWN_CODES,
    Banned,
    BinanceAdapterError,
    NotSent,
    RateLimited,
    UnknownStatus,
    VenueError,
)
from botcore_exchange_binance.limiter import Kind, RateLimiter, retry_after_seconds
from botcore_exchange_binance.scrub import Secret, scrub

log = logging.getLogger(__name__)
T = TypeVar("T")

# ------------------------------------------------------------------------------------------------
# "On the wire" stamps: the connection records when it finished writing a request.
# ------------------------------------------------------------------------------------------------

_wire = threading.local()


def last_wire_ns() -> int:
    """``now_ns()`` when this thread's last HTTP request was completely written (0 if none)."""
    return getattr(_wire, "ns", 0)


class _StampedHTTPConnection(HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        super().request(*args, **kwargs)
        _wire.ns = now_ns()


class _StampedHTTPSConnection(HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        super().request(*args, **kwargs)
        _wire.ns = now_ns()


class _StampedPool(HTTPConnectionPool):
    ConnectionCls = _StampedHTTPConnection


class _StampedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _StampedHTTPSConnection


class _StampedAdapter(HTTPAdapter):
    """A requests adapter whose pools use the stamping connections (instance-level, no globals)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _StampedPool, "https": _StampedHTTPSPool}
        self.poolmanager.key_fn_by_scheme = dict(self.poolmanager.key_fn_by_scheme)


# ------------------------------------------------------------------------------------------------
# python-binance client bound to one venue
# ------------------------------------------------------------------------------------------------


class VenueClient(Client):
    """``binance.Client`` talking to ``rest_root`` (e.g. ``http://127.0.0.1:8080``) only.

    The URL lives on the instance (``_create_api_uri`` override), so two venues can be used
    side by side; the constructor does not ping.
    """

    def __init__(
        self,
        rest_root: str,
        api_key: Secret,
        api_secret: Secret,
        *,
        timeout_s: float = 10.0,
        recv_window_ms: int = 5000,
        trust_env: bool = False,
    ) -> None:
        super().__init__(api_key.reveal() or None, api_secret.reveal() or None, ping=False)
        self._api_root = rest_root.rstrip("/") + "/api"
        self.REQUEST_TIMEOUT = timeout_s
        self.REQUEST_RECVWINDOW = recv_window_ms
        # Keep-alive session with stamping connections; no proxy/.netrc lookups per request
        # unless asked for (they cost ~100 us each on the order path).
        self.session.trust_env = trust_env
        adapter = _StampedAdapter(pool_connections=1, pool_maxsize=2, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def _create_api_uri(self, path: str, signed: bool = True, version: str = Client.PUBLIC_API_VERSION) -> str:
        v = self.PRIVATE_API_VERSION if signed else version
        return f"{self._api_root}/{v}/{path}"

    def api_url(self, path: str) -> str:
        return f"{self._api_root}/v3/{path}"

    def __repr__(self) -> str:
        return f"VenueClient({self._api_root!r})"


# ------------------------------------------------------------------------------------------------
# Error translation
# ------------------------------------------------------------------------------------------------


def _never_sent(exc: BaseException) -> bool:
    """True when requests failed before any byte of the request could reach the venue."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason: Any = exc.args[0] if exc.args else None
        if isinstance(reason, urllib3.exceptions.MaxRetryError):
            reason = reason.reason
        return isinstance(reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError)
    return False


def _body(response: requests.Response | None) -> dict[str, Any]:
    if response is None:
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def translate_api_error(exc: BinanceAPIException, limiter: RateLimiter | None) -> BinanceAdapterError:
    """python-binance's API exception -> our classification (penalising the limiter on 429/418)."""
    status = int(exc.status_code or 0)
    response = getattr(exc, "response", None)
    body = _body(response)
    code = int(exc.code or body.get("code") or 0)
    msg = str(exc.message or body.get("msg") or "")
    headers = response.headers if response is not None else None
    data = body.get("data") if isinstance(body.get("data"), dict) else None
    if status in (418, 429):
        retry = retry_after_seconds(headers)
        if limiter is not None:
            retry = limiter.penalize(status, retry, reason=f"{code} {msg}")
        cls = Banned if status == 418 else RateLimited
        return cls(code, msg, status, data, retry)
    if status >= 500 or code in UNKNOWN_CODES:
        return UnknownStatus(f"HTTP {status} code {code}: {msg} (execution status unknown)", code, status)
    return VenueError(code, msg, status, data)


# ------------------------------------------------------------------------------------------------
# The pooled REST transport
# ------------------------------------------------------------------------------------------------


class RestTransport:
    """Blocking REST calls over a pool of keep-alive python-binance clients.

    :param rest_root: venue host root (``endpoints.Endpoints.rest_url``).
    :param pool_size: clients (sessions) in the pool = concurrent requests in flight.
    """

    def __init__(
        self,
        rest_root: str,
        api_key: Secret,
        api_secret: Secret,
        *,
        limiter: RateLimiter,
        clock: ServerClock,
        pool_size: int = 4,
        timeout_s: float = 10.0,
        recv_window_ms: int = 5000,
        trust_env: bool = False,
        checkout_timeout_s: float = 5.0,
    ) -> None:
        self.rest_root = rest_root
        self.limiter = limiter
        self.clock = clock
        self.timeout_s = timeout_s
        self._checkout_timeout_s = checkout_timeout_s
        self._pool: queue.LifoQueue[VenueClient] = queue.LifoQueue()
        self._clients: list[VenueClient] = []
        for _ in range(max(1, pool_size)):
            c = VenueClient(
                rest_root, api_key, api_secret, timeout_s=timeout_s, recv_window_ms=recv_window_ms, trust_env=trust_env
            )
            self._clients.append(c)
            self._pool.put(c)
        self._closed = False

    def __repr__(self) -> str:
        return f"RestTransport({self.rest_root!r}, pool={len(self._clients)})"

    def close(self) -> None:
        self._closed = True
        for c in self._clients:
            try:
                c.session.close()
            except Exception:  # closing is best effort
                pass

    # --- core call wrapper ---------------------------------------------------------------------------
    def call(self, kind: Kind, weight: int, fn: Callable[[VenueClient], T]) -> tuple[T, int]:
        """Run ``fn(client)`` on a pooled client; returns (result, wire_ns).

        Raises ``VenueError`` / ``RateLimited`` / ``Banned`` / ``UnknownStatus`` / ``NotSent``.
        """
        if self._closed:
            raise NotSent("adapter stopped")
        self.limiter.acquire(kind, weight)
        try:
            client = self._pool.get(timeout=self._checkout_timeout_s)
        except queue.Empty:
            self.limiter.release(kind, weight, None, counted=False)
            raise NotSent("no free REST connection") from None
        headers: Mapping[str, str] | None = None
        counted = True
        _wire.ns = 0
        try:
            client.timestamp_offset = self.clock.offset_ms
            try:
                result = fn(client)
                headers = client.response.headers if client.response is not None else None
                return result, last_wire_ns()
            except BinanceAPIException as exc:
                headers = exc.response.headers if getattr(exc, "response", None) is not None else None
                err = translate_api_error(exc, self.limiter)
                counted = not isinstance(err, VenueError)
                raise err from None
            except BinanceRequestException as exc:
                raise UnknownStatus(f"invalid response: {scrub(exc.message)[:200]}") from None
            except requests.RequestException as exc:
                if _never_sent(exc):
                    counted = False
                    raise NotSent(f"connection failed: {type(exc).__name__}") from None
                raise UnknownStatus(f"transport error after sending: {type(exc).__name__}: {scrub(exc)}") from None
        finally:
            self.limiter.release(kind, weight, headers, counted=counted)
            self._pool.put(client)

    def _raw_get(self, client: VenueClient, path: str, params: Mapping[str, Any]) -> bytes:
        response = client.session.get(client.api_url(path), params=dict(params), timeout=self.timeout_s)
        client.response = response
        if not 200 <= response.status_code < 300:
            raise BinanceAPIException(response, response.status_code, response.text)
        return response.content

    # --- endpoints ----------------------------------------------------------------------------------
    def server_time_ms(self) -> int:
        result, _ = self.call(Kind.OTHER, 1, lambda c: c.get_server_time())
        return int(result["serverTime"])

    def exchange_info(self, symbols: Sequence[str] | None = None) -> dict[str, Any]:
        if symbols:
            arg = json.dumps([s.upper() for s in symbols], separators=(",", ":"))
            result, _ = self.call(Kind.OTHER, 20, lambda c: c._get("exchangeInfo", data={"symbols": arg}))
        else:
            result, _ = self.call(Kind.OTHER, 20, lambda c: c.get_exchange_info())
        return result

    def depth_raw(self, symbol: str, limit: int = 1000) -> bytes:
        weight = 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250
        result, _ = self.call(
            Kind.OTHER, weight, lambda c: self._raw_get(c, "depth", {"symbol": symbol.upper(), "limit": limit})
        )
        return result

    def account(self) -> dict[str, Any]:
        result, _ = self.call(Kind.OTHER, 20, lambda c: c.get_account())
        return result

    def open_orders(self, symbol: str | None = None) -> list[dict[str, Any]]:
        if symbol:
            result, _ = self.call(Kind.OTHER, 6, lambda c: c.get_open_orders(symbol=symbol.upper()))
        else:
            result, _ = self.call(Kind.OTHER, 80, lambda c: c.get_open_orders())
        return list(result)

    def my_trades(self, symbol: str, from_id: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"symbol": symbol.upper(), "limit": limit}
        if from_id:
            params["fromId"] = from_id
        result, _ = self.call(Kind.OTHER, 20, lambda c: c.get_my_trades(**params))
        return list(result)

    def order_by_id(self, symbol: str, order_id: int) -> dict[str, Any]:
        result, _ = self.call(Kind.OTHER, 4, lambda c: c.get_order(symbol=symbol.upper(), orderId=order_id))
        return result

    # --- the order transport interface (shared with the WebSocket API transport) ----------------------
    def place(self, params: Mapping[str, str]) -> tuple[dict[str, Any], int]:
        return self.call(Kind.ORDER, 1, lambda c: c.create_order(**params))

    def cancel(self, params: Mapping[str, str]) -> tuple[dict[str, Any], int]:
        return self.call(Kind.CANCEL, 1, lambda c: c.cancel_order(**params))

    def cancel_replace(self, params: Mapping[str, str]) -> tuple[dict[str, Any], int]:
        return self.call(Kind.ORDER, 1, lambda c: c.cancel_replace_order(**params))

    def query(self, symbol: str, client_order_id: str) -> tuple[dict[str, Any], int]:
        return self.call(
            Kind.OTHER, 4, lambda c: c.get_order(symbol=symbol.upper(), origClientOrderId=client_order_id)
        )
