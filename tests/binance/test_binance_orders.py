"""Order parameters: quantization, local filter checks, plain-decimal formatting."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from botcore_exchange_binance.orders import LocalReject, cancel_replace_params, order_params, quantize
from hypothesis import given
from hypothesis import strategies as st

from botcore.model import Instrument, OrderRequest, OrderType, Side, TimeInForce

BINANCE_DECIMAL = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")

BTC = Instrument(
    symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", tick_size=Decimal("0.01"),
    step_size=Decimal("0.00001"), min_qty=Decimal("0.00001"), max_qty=Decimal("9000"),
    min_price=Decimal("0.01"), max_price=Decimal("1000000"), min_notional=Decimal("5"),
    max_notional=Decimal("9000000"),
)
# A cheap coin where tiny quantities are legal: exercises 6e-05 style numbers.
TINY = Instrument(
    symbol="XUSDT", base_asset="X", quote_asset="USDT", tick_size=Decimal("0.00000001"),
    step_size=Decimal("0.00001"), min_qty=Decimal("0.00001"), min_notional=Decimal("0"),
)


def order(**kw: object) -> OrderRequest:
    base: dict[str, object] = dict(symbol="BTCUSDT", side=Side.BUY, qty=Decimal("0.001"), price=Decimal("60000"),
                                   client_order_id="mm-1")
    base.update(kw)
    return OrderRequest(**base)  # type: ignore[arg-type]


def test_bids_round_down_asks_round_up_qty_floors() -> None:
    p, q = quantize(BTC, Side.BUY, Decimal("60000.019"), Decimal("0.0012349"))
    assert (p, q) == (Decimal("60000.01"), Decimal("0.00123"))
    p, q = quantize(BTC, Side.SELL, Decimal("60000.011"), Decimal("0.0012349"))
    assert p == Decimal("60000.02")


def test_params_are_plain_strings_for_limit_maker() -> None:
    params = order_params(BTC, order(price=Decimal("60000.019"), qty=Decimal("0.0012349")))
    assert params == {
        "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT_MAKER", "quantity": "0.00123", "price": "60000.01",
        "newClientOrderId": "mm-1", "newOrderRespType": "FULL",
    }
    assert "timeInForce" not in params


def test_tiny_quantity_is_never_scientific() -> None:
    params = order_params(TINY, order(symbol="XUSDT", qty=Decimal("0.00006"), price=Decimal("0.00000100")))
    assert params["quantity"] == "0.00006" and params["price"] == "0.000001"
    assert str(Decimal("0.00006")) == "0.00006" and str(float("0.00006")) == "6e-05"  # the trap avoided


def test_limit_gets_time_in_force_and_market_has_no_price() -> None:
    assert order_params(BTC, order(order_type=OrderType.LIMIT))["timeInForce"] == "GTC"
    assert order_params(BTC, order(order_type=OrderType.LIMIT, time_in_force=TimeInForce.IOC))["timeInForce"] == "IOC"
    market = order_params(BTC, order(order_type=OrderType.MARKET, price=None))
    assert "price" not in market and "timeInForce" not in market


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"qty": Decimal("0.00001"), "price": Decimal("60000")}, "NOTIONAL"),  # 0.6 USDT < 5
        ({"qty": Decimal("0.000001")}, "LOT_SIZE"),  # floors to zero
        ({"qty": Decimal("10000")}, "LOT_SIZE"),  # > maxQty
        ({"price": Decimal("2000000")}, "PRICE_FILTER"),
        ({"price": None}, "PRICE_FILTER"),
        ({"client_order_id": ""}, "client order id"),
        ({"client_order_id": "has:colon"}, "client order id"),
        ({"client_order_id": "x" * 37}, "client order id"),
    ],
)
def test_local_rejections(kw: dict, needle: str) -> None:
    with pytest.raises(LocalReject) as info:
        order_params(BTC, order(**kw))
    assert needle in info.value.msg


def test_unknown_symbol_and_halted_market_rejected() -> None:
    with pytest.raises(LocalReject) as info:
        order_params(None, order())
    assert info.value.code == -1121
    halted = Instrument(**{**{f: getattr(BTC, f) for f in BTC.__struct_fields__}, "status": "HALT"})
    with pytest.raises(LocalReject, match="Market is closed"):
        order_params(halted, order())


def test_cancel_replace_params_stop_on_failure() -> None:
    p = cancel_replace_params(order_params(BTC, order()), "old-1")
    assert p["cancelReplaceMode"] == "STOP_ON_FAILURE" and p["cancelOrigClientOrderId"] == "old-1"
    assert p["newClientOrderId"] == "mm-1"


@given(
    price=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999999"), places=6, allow_nan=False),
    qty=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("100"), places=9, allow_nan=False),
    side=st.sampled_from([Side.BUY, Side.SELL]),
)
def test_formatting_property(price: Decimal, qty: Decimal, side: Side) -> None:
    try:
        params = order_params(BTC, order(price=price, qty=qty, side=side))
    except LocalReject as r:
        assert r.code == -1013
        return
    for key in ("price", "quantity"):
        assert BINANCE_DECIMAL.match(params[key]), params[key]
    p, q = Decimal(params["price"]), Decimal(params["quantity"])
    assert p % BTC.tick_size == 0 and q % BTC.step_size == 0
    assert q <= qty and (p <= price if side is Side.BUY else p >= price)
    assert price - p < BTC.tick_size if side is Side.BUY else p - price < BTC.tick_size
    assert p * q >= BTC.min_notional
