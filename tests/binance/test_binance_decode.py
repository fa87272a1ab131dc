"""Decoding Binance JSON into botcore.model values (real recorded user-data samples included)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from botcore_exchange_binance import decode

from botcore.model import AccountUpdate, BalanceDelta, ExecutionReport, OrderStatus, Side

DATA = Path(__file__).resolve().parents[1] / "data"


def _samples() -> list[dict]:
    out = []
    for name in ("userdata_samples_2020.jsonl", "userdata_samples_2021.jsonl"):
        for line in (DATA / "userdata" / name).read_text().splitlines():
            if line.strip():
                d = json.loads(line)
                out.append(d.get("data", d))
    return out


def test_real_samples_decode_to_model_types() -> None:
    samples = _samples()
    decoded = [decode.user_event(e) for e in samples]
    kinds = {type(d) for d in decoded}
    assert ExecutionReport in kinds and AccountUpdate in kinds
    fill_sample = next(e for e in samples if e.get("x") == "TRADE" and e["s"] == "BTCUSDT")
    rep = decode.execution_report(fill_sample)
    assert rep.client_order_id == "YeULctvPAnHj5HXCQo9Mob"
    assert rep.status is OrderStatus.FILLED and rep.side is Side.BUY
    assert rep.last_qty == Decimal("0.00028600") and rep.last_price == Decimal("52436.85000000")
    assert rep.trade_id == 726946523 and rep.commission_asset == "BTC"
    fill = rep.fill()
    assert fill is not None and fill.qty == Decimal("0.000286") and fill.trade_id == 726946523


def test_null_commission_asset_and_no_trade() -> None:
    new = next(e for e in _samples() if e["e"] == "executionReport" and e.get("N") is None)
    rep = decode.execution_report(new)
    assert rep.commission_asset is None and rep.trade_id == -1 and rep.fill() is None


def test_cancel_report_names_the_order_not_the_cancel_request() -> None:
    e = {
        "e": "executionReport", "E": 2, "s": "BTCUSDT", "c": "cancel-req-7", "S": "SELL", "o": "LIMIT_MAKER",
        "q": "0.001", "p": "60000.00", "x": "CANCELED", "X": "CANCELED", "r": "NONE", "i": 42, "l": "0",
        "z": "0", "L": "0", "n": "0", "N": None, "T": 3, "t": -1, "m": False, "C": "mm-btc-000017", "Z": "0",
    }
    rep = decode.execution_report(e)
    assert rep.client_order_id == "mm-btc-000017"
    assert rep.status is OrderStatus.CANCELED and rep.order_id == 42


def test_account_position_and_balance_update() -> None:
    pos = decode.user_event(
        {"e": "outboundAccountPosition", "E": 5, "u": 4, "B": [{"a": "BTC", "f": "1.5", "l": "0.25"}]}
    )
    assert isinstance(pos, AccountUpdate)
    assert pos.balances[0].free == Decimal("1.5") and pos.balances[0].locked == Decimal("0.25")
    assert pos.update_time_ms == 4
    delta = decode.user_event({"e": "balanceUpdate", "E": 1, "a": "USDT", "d": "-10.5", "T": 9})
    assert isinstance(delta, BalanceDelta) and delta.delta == Decimal("-10.5") and delta.time_ms == 9
    assert decode.user_event({"e": "listStatus", "E": 1}) is None


def test_cancel_answer_outcome_uses_orig_client_order_id() -> None:
    answer = {
        "symbol": "LTCBTC", "origClientOrderId": "myOrder1", "orderId": 4, "clientOrderId": "cancelMyOrder1",
        "price": "2.0", "origQty": "1.0", "executedQty": "0.25", "status": "CANCELED", "side": "BUY",
    }
    out = decode.order_outcome("cancel", answer, sent_ns=1, done_ns=2)
    assert out.client_order_id == "myOrder1" and out.status is OrderStatus.CANCELED
    assert out.cum_qty == Decimal("0.25") and (out.sent_ns, out.done_ns) == (1, 2)


def test_full_answer_fills_and_unknown_status() -> None:
    answer = {
        "symbol": "BTCUSDT", "orderId": 28, "clientOrderId": "c1", "transactTime": 77, "executedQty": "0.002",
        "status": "FILLED",
        "fills": [
            {"price": "4000.00", "qty": "0.001", "commission": "4.0", "commissionAsset": "USDT", "tradeId": 56},
            {"price": "4001.00", "qty": "0.001", "commission": "4.0", "commissionAsset": "USDT", "tradeId": 57},
        ],
    }
    fills = decode.order_fills(answer, Side.SELL, "c1")
    assert [f.trade_id for f in fills] == [56, 57]
    assert all(f.side is Side.SELL and not f.is_maker and f.time_ms == 77 for f in fills)
    assert decode.order_outcome("new", {**answer, "status": "SOMETHING_NEW"}).status is OrderStatus.UNKNOWN


def test_open_order_trade_and_instruments() -> None:
    row = {
        "symbol": "BTCUSDT", "orderId": 9, "clientOrderId": "x", "price": "1.5", "origQty": "2", "executedQty": "1",
        "cummulativeQuoteQty": "1.5", "status": "PARTIALLY_FILLED", "type": "LIMIT", "side": "SELL", "time": 3,
        "updateTime": 4,
    }
    oo = decode.open_order(row)
    assert oo.status is OrderStatus.PARTIALLY_FILLED and oo.cum_qty == Decimal(1) and oo.update_time_ms == 4
    trade = {"symbol": "BTCUSDT", "id": 11, "orderId": 9, "price": "1.5", "qty": "1", "commission": "0.1",
             "commissionAsset": "USDT", "time": 5, "isBuyer": False, "isMaker": True}
    f = decode.trade_fill(trade, "x")
    assert f.side is Side.SELL and f.is_maker and f.trade_id == 11 and f.client_order_id == "x"
    info = json.loads((Path(__file__).resolve().parents[2] / "botcore/data/exchangeinfo/exchangeInfo_2025-08-07.json").read_text())
    insts = decode.instruments(info, ["btcusdt"])
    assert list(insts) == ["BTCUSDT"] and insts["BTCUSDT"].tick_size == Decimal("0.01")


@pytest.mark.parametrize("bad", [{"e": "executionReport"}, {"e": "balanceUpdate", "d": "1"}])
def test_malformed_events_raise(bad: dict) -> None:
    with pytest.raises(KeyError):
        decode.user_event(bad)
