"""The bot the replay benchmarks run, and an in-process paper venue behind the real Binance adapter.

The strategy and risk chain are ``bench_engine``'s ``mm3`` setup (the tick-to-order rows use the
same): the first-party market maker, 3 levels a side, requoting on every mid move, behind the risk
chain of ``config/paper.yaml`` built through the plugin registry (order-rate limits raised so a
replay at full speed is not vetoed). One change here: the ``drawdown`` check runs in shadow mode
(evaluated on every order, fill and poll, never enforced), because quoting at the touch through a
real capture loses its 50 USDT limit within minutes and a halted bot would replay the rest without
quoting: the rows would then measure an idle bot. The engine also gets the plugin hooks (``Hooks`` over the
installed plugins) as in ``botcore run``, but no ``botcore_startup``: the journal stays closed (its
cost is the journal row of the table).

``VenueTransport`` is the Binance adapter's order/REST transport answered by a paper ``Venue`` in
this thread (no sockets, no HTTP); ``SyncGateway`` runs the gateway contract inline so one thread
drives venue and engine deterministically (the "venue step mode" replay).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

from botcore.engine import Engine, EngineConfig, RiskLink
from botcore.events import DepthSnapshot, GatewayResult
from botcore.metrics import now_ns
from botcore.model import CancelRequest, Instrument, OrderRequest
from botcore.plugins import Hooks, get_plugin_manager

SYMBOL = "BTCUSDT"
SETUP = "mm3"


class Bot:
    """Builds engines with ``bench_engine``'s strategy/risk setup and the installed plugins' hooks."""

    def __init__(self, setup: str = SETUP) -> None:
        import bench_engine

        logging.getLogger("botcore").setLevel(logging.ERROR)  # rejected quotes are expected traffic
        self.setup = setup
        self._build = bench_engine.build
        self.hooks = Hooks(get_plugin_manager())

    def engine(self, instruments: Mapping[str, Instrument], **kwargs: Any) -> Engine:
        strategies, risk = self._build(self.setup, dict(instruments))
        risk = [RiskLink(r.name, r.check, True) if r.name == "drawdown" else r for r in risk]
        kwargs.setdefault("config", EngineConfig(snapshot_min_interval=0.0))
        return Engine(instruments, strategies, risk, hooks=self.hooks, **kwargs)


# ------------------------------------------------------------------------------------------------
# In-process paper venue behind the real Binance adapter
# ------------------------------------------------------------------------------------------------


class VenueTransport:
    """``RestTransport``'s method set, answered by a ``Venue`` in this thread.

    The adapter above it does everything it does against a real venue (parameters, decoding,
    error classification, cancel-replace handling); only HTTP and signing are skipped.
    """

    def __init__(self, venue: Any, account: Any) -> None:
        from botcore_exchange_binance.errors import VenueError
        from botcore_exchange_paper.errors import BinanceError

        self.venue = venue
        self._account = account
        self._venue_error = VenueError
        self._binance_error = BinanceError
        self.calls = 0

    def _call(self, fn: Callable[[], Any]) -> Any:
        self.calls += 1
        try:
            return fn()
        except self._binance_error as exc:
            raise self._venue_error(exc.code, exc.msg, exc.http_status, exc.data) from None

    def close(self) -> None:
        pass

    def server_time_ms(self) -> int:
        return int(self.venue.now_ms())

    def exchange_info(self, symbols: Sequence[str] | None = None) -> dict[str, Any]:
        return self._call(lambda: self.venue.exchange_info(symbols=list(symbols) if symbols else None))

    def depth_raw(self, symbol: str, limit: int = 1000) -> bytes:
        import json

        return json.dumps(self._call(lambda: self.venue.depth(symbol, limit)), separators=(",", ":")).encode()

    def account(self) -> dict[str, Any]:
        return self._call(lambda: self.venue.account_info(self._account))

    def open_orders(self, symbol: str | None = None) -> list[dict[str, Any]]:
        return self._call(lambda: self.venue.open_orders(self._account, symbol))

    def my_trades(self, symbol: str, from_id: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        params = {"symbol": symbol, "limit": str(limit)}
        if from_id:
            params["fromId"] = str(from_id)
        return self._call(lambda: self.venue.my_trades(self._account, params))

    def order_by_id(self, symbol: str, order_id: int) -> dict[str, Any]:
        return self._call(
            lambda: self.venue.query_order(self._account, {"symbol": symbol, "orderId": str(order_id)})
        )

    def place(self, params: Mapping[str, str]) -> tuple[dict[str, Any], int]:
        return self._call(lambda: self.venue.place_order(self._account, dict(params))), now_ns()

    def cancel(self, params: Mapping[str, str]) -> tuple[dict[str, Any], int]:
        return self._call(lambda: self.venue.cancel_order(self._account, dict(params))), now_ns()

    def cancel_replace(self, params: Mapping[str, str]) -> tuple[dict[str, Any], int]:
        return self._call(lambda: self.venue.cancel_replace(self._account, dict(params))), now_ns()

    def query(self, symbol: str, client_order_id: str) -> tuple[dict[str, Any], int]:
        params = {"symbol": symbol, "origClientOrderId": client_order_id}
        return self._call(lambda: self.venue.query_order(self._account, params)), now_ns()


def in_process_adapter(venue: Any, account: Any) -> Any:
    """A real ``BinanceAdapter`` whose REST/order transport is ``VenueTransport`` (never connects)."""
    from botcore_exchange_binance.adapter import BinanceAdapter

    from botcore.contracts import VenueEndpoints

    cfg = SimpleNamespace(
        exchange=SimpleNamespace(mode="paper", symbols=[SYMBOL], options={"order_transport": "rest"})
    )
    endpoints = VenueEndpoints(
        rest_url="http://127.0.0.1:9/api",
        stream_url="ws://127.0.0.1:9/",
        ws_api_url="ws://127.0.0.1:9/ws-api/v3",
        api_key=account.api_key,
        api_secret=account.api_secret,
    )
    adapter = BinanceAdapter.from_config(cfg, endpoints)
    adapter.rest.close()
    transport = VenueTransport(venue, account)
    adapter.rest = adapter.orders = transport  # type: ignore[assignment]
    adapter.clock.sync(transport.server_time_ms)
    return adapter


class SyncGateway:
    """The ``Gateway`` contract run inline: each request is answered at once and its result queued
    in ``results`` for the driver to hand to ``Engine.process`` after the current event (as the
    real gateway's workers would put it on the engine's queue)."""

    def __init__(self, adapter: Any) -> None:
        self.adapter = adapter
        self.results: deque[Any] = deque()
        self.sent = 0

    def submit(self, order: OrderRequest) -> None:
        self.sent += 1
        outcome, fills = self.adapter.submit(order)
        self.results.append(GatewayResult(outcome, tuple(fills)))

    def cancel(self, request: CancelRequest) -> None:
        self.sent += 1
        self.results.append(GatewayResult(self.adapter.cancel(request)))

    def cancel_replace(self, cancel: CancelRequest, new: OrderRequest) -> None:
        self.sent += 1
        c_out, n_out, fills = self.adapter.cancel_replace(cancel, new)
        self.results.append(GatewayResult(c_out))
        self.results.append(GatewayResult(n_out, tuple(fills)))

    def query(self, symbol: str, client_order_id: str) -> None:
        self.sent += 1
        self.results.append(GatewayResult(self.adapter.query_order(symbol, client_order_id)))

    def fetch_depth(self, symbol: str, limit: int = 1000) -> None:
        self.sent += 1
        self.results.append(DepthSnapshot(symbol, self.adapter.depth_snapshot(symbol, limit), now_ns()))

    def close(self, timeout: float = 5.0) -> bool:
        return True
