"""Binance JSON (REST answers, WebSocket API results, user-data events) -> ``botcore.model`` values.

Pure functions, no I/O. Money stays ``Decimal`` from the venue's strings. Market frames are NOT
decoded here: the engine decodes them straight into the order book.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from botcore.model import (
    AccountUpdate,
    Balance,
    BalanceDelta,
    ExecutionReport,
    Fill,
    Instrument,
    OpenOrder,
    OrderOutcome,
    OrderStatus,
    Side,
)

_ZERO = Decimal(0)


def _dec(value: Any) -> Decimal:
    if value is None or value == "":
        return _ZERO
    return Decimal(str(value))


def _status(value: Any) -> OrderStatus:
    try:
        return OrderStatus(str(value))
    except ValueError:
        # A status this version does not know (e.g. a future one): the order state is not
        # something we can act on, so it must be resolved by a later query.
        return OrderStatus.UNKNOWN


# ------------------------------------------------------------------------------------------------
# exchangeInfo
# ------------------------------------------------------------------------------------------------


def instruments(info: Mapping[str, Any], symbols: Iterable[str] | None = None) -> dict[str, Instrument]:
    """``exchangeInfo`` -> {symbol: Instrument}, restricted to ``symbols`` when given."""
    wanted = {s.upper() for s in symbols} if symbols else None
    out: dict[str, Instrument] = {}
    for sym in info.get("symbols", ()):
        if wanted is None or sym["symbol"] in wanted:
            out[sym["symbol"]] = Instrument.from_exchange_info(sym)
    return out


# ------------------------------------------------------------------------------------------------
# REST / WebSocket API order answers
# ------------------------------------------------------------------------------------------------


def order_outcome(action: str, d: Mapping[str, Any], *, sent_ns: int = 0, done_ns: int = 0) -> OrderOutcome:
    """One order answer (place, cancel, query) -> OrderOutcome.

    Cancel answers carry the cancel request's id in ``clientOrderId`` and the order's own id in
    ``origClientOrderId``; the outcome always names the order.
    """
    coid = d.get("origClientOrderId") or d.get("clientOrderId") or ""
    status = _status(d["status"]) if "status" in d else OrderStatus.NEW  # ACK answers have no status
    return OrderOutcome(
        action=action,
        symbol=str(d.get("symbol", "")),
        client_order_id=str(coid),
        status=status,
        order_id=int(d.get("orderId", 0) or 0),
        cum_qty=_dec(d.get("executedQty")),
        sent_ns=sent_ns,
        done_ns=done_ns,
    )


def order_fills(d: Mapping[str, Any], side: Side, client_order_id: str) -> tuple[Fill, ...]:
    """Inline ``fills`` of a FULL order answer; these are taker executions of the new order."""
    raw = d.get("fills") or ()
    if not raw:
        return ()
    symbol = str(d.get("symbol", ""))
    order_id = int(d.get("orderId", 0) or 0)
    t = int(d.get("transactTime", 0) or 0)
    return tuple(
        Fill(
            symbol=symbol,
            client_order_id=client_order_id,
            order_id=order_id,
            trade_id=int(f.get("tradeId", -1)),
            side=side,
            price=_dec(f.get("price")),
            qty=_dec(f.get("qty")),
            commission=_dec(f.get("commission")),
            commission_asset=str(f.get("commissionAsset") or ""),
            is_maker=False,
            time_ms=t,
        )
        for f in raw
    )


def open_order(d: Mapping[str, Any]) -> OpenOrder:
    """An order object of ``GET /api/v3/order`` / ``openOrders``."""
    return OpenOrder(
        symbol=str(d["symbol"]),
        client_order_id=str(d.get("clientOrderId", "")),
        order_id=int(d.get("orderId", 0)),
        side=Side(d["side"]),
        order_type=str(d.get("type", "")),
        status=_status(d.get("status")),
        price=_dec(d.get("price")),
        orig_qty=_dec(d.get("origQty")),
        cum_qty=_dec(d.get("executedQty")),
        cum_quote=_dec(d.get("cummulativeQuoteQty")),
        time_ms=int(d.get("time", 0) or 0),
        update_time_ms=int(d.get("updateTime", 0) or 0),
    )


def balances(account: Mapping[str, Any]) -> tuple[Balance, ...]:
    """``GET /api/v3/account`` balances."""
    return tuple(
        Balance(asset=str(b["asset"]), free=_dec(b.get("free")), locked=_dec(b.get("locked")))
        for b in account.get("balances", ())
    )


def trade_fill(d: Mapping[str, Any], client_order_id: str) -> Fill:
    """One ``GET /api/v3/myTrades`` row (which has no client order id: the caller supplies it)."""
    return Fill(
        symbol=str(d["symbol"]),
        client_order_id=client_order_id,
        order_id=int(d.get("orderId", 0)),
        trade_id=int(d["id"]),
        side=Side.BUY if d.get("isBuyer") else Side.SELL,
        price=_dec(d.get("price")),
        qty=_dec(d.get("qty")),
        commission=_dec(d.get("commission")),
        commission_asset=str(d.get("commissionAsset") or ""),
        is_maker=bool(d.get("isMaker", False)),
        time_ms=int(d.get("time", 0) or 0),
    )


# ------------------------------------------------------------------------------------------------
# User-data events
# ------------------------------------------------------------------------------------------------


def execution_report(e: Mapping[str, Any]) -> ExecutionReport:
    """``executionReport`` -> ExecutionReport with ``client_order_id`` = the ORDER's id.

    For cancels (and cancel-replace cancels) Binance puts the cancel request's id in ``c`` and
    the order's original id in ``C``; ``C`` is "" (or absent/null) otherwise.
    """
    orig = e.get("C")
    coid = orig if orig else e.get("c", "")
    commission_asset = e.get("N")
    return ExecutionReport(
        symbol=str(e["s"]),
        client_order_id=str(coid),
        order_id=int(e.get("i", 0)),
        side=Side(e["S"]),
        order_type=str(e.get("o", "")),
        status=_status(e.get("X")),
        execution_type=str(e.get("x", "")),
        price=_dec(e.get("p")),
        orig_qty=_dec(e.get("q")),
        cum_qty=_dec(e.get("z")),
        cum_quote=_dec(e.get("Z")),
        last_qty=_dec(e.get("l")),
        last_price=_dec(e.get("L")),
        commission=_dec(e.get("n")),
        commission_asset=str(commission_asset) if commission_asset else None,
        trade_id=int(e.get("t", -1) if e.get("t") is not None else -1),
        is_maker=bool(e.get("m", False)),
        reject_reason=str(e.get("r", "NONE")),
        event_time_ms=int(e.get("E", 0) or 0),
        transaction_time_ms=int(e.get("T", 0) or 0),
    )


def account_update(e: Mapping[str, Any]) -> AccountUpdate:
    """``outboundAccountPosition``: absolute balances of the assets that changed."""
    return AccountUpdate(
        balances=tuple(
            Balance(asset=str(b["a"]), free=_dec(b.get("f")), locked=_dec(b.get("l"))) for b in e.get("B", ())
        ),
        update_time_ms=int(e.get("u", 0) or 0),
        event_time_ms=int(e.get("E", 0) or 0),
    )


def balance_delta(e: Mapping[str, Any]) -> BalanceDelta:
    """``balanceUpdate``: deposit, withdrawal or transfer."""
    return BalanceDelta(asset=str(e["a"]), delta=_dec(e.get("d")), time_ms=int(e.get("T", 0) or 0))


UserPayload = ExecutionReport | AccountUpdate | BalanceDelta

_USER_DECODERS = {
    "executionReport": execution_report,
    "outboundAccountPosition": account_update,
    "balanceUpdate": balance_delta,
}


def user_event(e: Mapping[str, Any]) -> UserPayload | None:
    """Decode one bare user-data event; None for types the engine does not use (listStatus, ...)."""
    decoder = _USER_DECODERS.get(str(e.get("e", "")))
    return decoder(e) if decoder is not None else None


def rest_rate_limits(info: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    return list(info.get("rateLimits", ()))
