"""Turn an ``OrderRequest`` into Binance order parameters, or a local rejection.

Everything the venue would reject for a reason we can know in advance is rejected here, before
anything is sent (no weight spent, no order-count used): prices are quantized to ``tickSize``
away from the touch (bids down, asks up), quantities floored to ``stepSize``, both with
``Decimal``; PRICE_FILTER / LOT_SIZE / NOTIONAL are checked; numbers are written as plain
decimals (``0.00006``, never ``6e-05``, which Binance rejects with -1100).
"""

from __future__ import annotations

import re
from decimal import Decimal

from botcore.model import Instrument, OrderRequest, OrderType, Side, TimeInForce, plain

CLIENT_ORDER_ID = re.compile(r"^[A-Za-z0-9._-]{1,36}$")
"""Binance allows ``[.A-Z:/a-z0-9_-]{1,36}``; we also exclude ``:`` and ``/`` so the id is the same
before and after URL encoding and every transport signs exactly what goes on the wire."""

RESP_TYPE = "FULL"
"""FULL answers carry the taker fills inline: useful when the user stream is down (fills are
deduplicated by trade id downstream, so getting them twice is harmless)."""


class LocalReject(Exception):
    """An order the venue would certainly reject; ``code`` mirrors the venue's error code."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


def quantize(instrument: Instrument, side: Side, price: Decimal | None, qty: Decimal) -> tuple[Decimal | None, Decimal]:
    """Price to tick (bids down, asks up: never more aggressive than asked), qty floored to step."""
    q = instrument.round_qty(Decimal(qty))
    p = instrument.round_price(Decimal(price), side) if price is not None else None
    return p, q


def order_params(instrument: Instrument | None, order: OrderRequest) -> dict[str, str]:
    """Wire parameters for ``POST /api/v3/order`` / ``order.place`` (all values plain strings).

    Raises ``LocalReject`` for anything that must not be sent.
    """
    if instrument is None:
        raise LocalReject(-1121, f"Invalid symbol: {order.symbol} (no exchange info)")
    if not CLIENT_ORDER_ID.match(order.client_order_id or ""):
        raise LocalReject(-1100, f"client order id {order.client_order_id!r} is missing or not URL-safe")
    if instrument.status != "TRADING":
        raise LocalReject(-1013, f"Market is closed. ({order.symbol} status {instrument.status})")
    price, qty = quantize(instrument, order.side, order.price, order.qty)
    if qty <= 0:
        raise LocalReject(-1013, "Filter failure: LOT_SIZE (quantity rounds to zero)")
    if order.order_type in (OrderType.LIMIT, OrderType.LIMIT_MAKER) and (price is None or price <= 0):
        raise LocalReject(-1013, "Filter failure: PRICE_FILTER (limit order without a positive price)")
    failure = instrument.filter_failure(price, qty)
    if failure is not None:
        raise LocalReject(-1013, f"Filter failure: {failure}")
    params: dict[str, str] = {
        "symbol": instrument.symbol,
        "side": order.side.value,
        "type": order.order_type.value,
        "quantity": plain(qty),
        "newClientOrderId": order.client_order_id,
        "newOrderRespType": RESP_TYPE,
    }
    if price is not None and order.order_type is not OrderType.MARKET:
        params["price"] = plain(price)
    if order.order_type is OrderType.LIMIT:
        params["timeInForce"] = (order.time_in_force or TimeInForce.GTC).value
    elif order.order_type is OrderType.MARKET and order.time_in_force is not None:
        raise LocalReject(-1106, "Parameter 'timeInForce' sent when not required.")
    return params


def cancel_params(symbol: str, client_order_id: str) -> dict[str, str]:
    """``DELETE /api/v3/order`` / ``order.cancel`` by our client order id."""
    return {"symbol": symbol, "origClientOrderId": client_order_id}


def cancel_replace_params(new: dict[str, str], cancel_client_order_id: str) -> dict[str, str]:
    """``POST /api/v3/order/cancelReplace``: cancel first, place only if the cancel worked."""
    return {**new, "cancelReplaceMode": "STOP_ON_FAILURE", "cancelOrigClientOrderId": cancel_client_order_id}
