"""Parameter validation of the market maker: every bad input names the parameter and what it accepts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from botcore_strategy_marketmaker.params import NS_PER_S, ParamsError, parse_params
from botcore_strategy_marketmaker.strategy import make_strategy
from mm_support import btcusdt

BASE = {"amount": "0.001"}


@pytest.mark.parametrize(
    ("params", "needles"),
    [
        ({}, ["exactly one order size", "amount", "notional", "level_amounts", "got none"]),
        ({"amount": "1", "notional": "10"}, ["exactly one order size", "got amount, notional"]),
        ({"amount": "0"}, ["amount:", "greater than 0"]),
        ({"amount": "-1"}, ["amount:", "greater than 0"]),
        ({"amount": "abc"}, ["amount:", "decimal", "'abc'"]),
        ({"amount": "NaN"}, ["amount:", "finite"]),
        (
            {**BASE, "amout": 1},
            ["amout: unknown parameter", "did you mean 'amount'", "allowed:", "max_position"],
        ),
        (
            {**BASE, "bid_distance": "close"},
            ["bid_distance:", "'join', 'improve', {ticks: N}", "{bps: X}", "'close'"],
        ),
        ({**BASE, "ask_distance": {"ticks": -1}}, ["ask_distance:", "ticks must be >= 0"]),
        ({**BASE, "ask_distance": {"ticks": 1.5}}, ["ask_distance:", "whole number"]),
        ({**BASE, "bid_distance": {"ticks": 1, "bps": 2}}, ["bid_distance:", "{ticks: N}"]),
        ({**BASE, "bid_distance": {"bps": "x"}}, ["bid_distance:", "bps must be a number"]),
        ({**BASE, "bid_distance": 3}, ["bid_distance:", "expected 'join'"]),
        ({**BASE, "level_spacing": "join"}, ["level_spacing:", "{ticks: N} (N >= 1 integer) or {bps: X}"]),
        ({**BASE, "level_spacing": {"bps": 0}}, ["level_spacing:", "collapse"]),
        ({**BASE, "levels": 0}, ["levels:", "greater than or equal to 1"]),
        ({**BASE, "levels": 51}, ["levels:", "less than or equal to 50"]),
        (
            {**BASE, "levels": 2, "level_multipliers": [1]},
            ["level_multipliers has 1 entries but levels is 2"],
        ),
        ({"level_amounts": [1, 2], "levels": 3}, ["level_amounts has 2 entries but levels is 3"]),
        ({"level_amounts": [1], "level_multipliers": [1]}, ["cannot be used with level_amounts"]),
        ({**BASE, "time_in_force": "GTC"}, ["time_in_force is only for post_only: false", "LIMIT_MAKER"]),
        (
            {**BASE, "post_only": False, "time_in_force": "IOC"},
            ["time_in_force:", "allowed value: 'GTC'", "'IOC'"],
        ),
        ({**BASE, "min_requote_interval": "3 days"}, ["min_requote_interval:", "'200ms', '5s'"]),
        ({**BASE, "max_order_age": -1}, ["max_order_age:", ">= 0"]),
        ({**BASE, "fill_delay": True}, ["fill_delay:", "duration"]),
        ({**BASE, "hang_other_side": True}, ["hang_other_side needs fill_delay > 0"]),
        ({**BASE, "requote_tolerance_bps": -1}, ["requote_tolerance_bps:", "greater than or equal to 0"]),
        ({**BASE, "max_position": 0}, ["max_position:", "greater than 0"]),
        ({**BASE, "symbol": "BTCUSDT", "symbols": ["BTCUSDT"]}, ["symbol or symbols, not both"]),
    ],
)
def test_bad_params_are_named(params: dict[str, Any], needles: list[str]) -> None:
    with pytest.raises(ParamsError) as exc:
        parse_params(params, where="strategy 'mm'")
    msg = str(exc.value)
    assert msg.startswith("strategy 'mm': invalid params")
    for needle in needles:
        assert needle in msg, (needle, msg)


def test_params_error_is_a_value_error() -> None:
    """The host shows ValueError messages with the YAML key path (hookspec contract)."""
    assert issubclass(ParamsError, ValueError)


@pytest.mark.parametrize(
    ("value", "ns"),
    [
        (0, 0),
        (1, NS_PER_S),
        (0.2, NS_PER_S // 5),
        ("250ms", 250_000_000),
        ("1.5s", 1_500_000_000),
        ("2m", 120 * NS_PER_S),
        ("1h", 3600 * NS_PER_S),
        ("3", 3 * NS_PER_S),
    ],
)
def test_durations(value: Any, ns: int) -> None:
    assert parse_params({**BASE, "min_requote_interval": value}).min_requote_interval == ns


def test_accepted_forms() -> None:
    p = parse_params(
        {
            "amount": 0.1,  # a YAML float is read as the decimal it shows
            "bid_distance": {"mode": "improve"},
            "ask_distance": {"bps": 2.5},
            "requote_tolerance": "0.5",  # alias of requote_tolerance_bps
            "level_spacing": {"ticks": 2},
        }
    )
    assert p.amount == Decimal("0.1")
    assert (p.bid_distance.kind, p.ask_distance.kind, p.ask_distance.value) == (
        "improve",
        "bps",
        Decimal("2.5"),
    )
    assert p.requote_tolerance_bps == Decimal("0.5")
    assert (p.level_spacing.kind, p.level_spacing.value) == ("ticks", 2)
    # defaults
    d = parse_params(BASE)
    assert (d.bid_distance.kind, d.levels, d.post_only, d.fill_delay) == ("join", 1, True, 0)
    # a validated model round-trips (what `botcore check` may print back)
    assert parse_params(d.model_dump(exclude_none=True)) == d


def test_symbols_must_be_exchange_instruments() -> None:
    with pytest.raises(ParamsError, match=r"ETHBTC not among the exchange instruments \(BTCUSDT\)"):
        make_strategy("mm", {**BASE, "symbol": "ETHBTC"}, {"BTCUSDT": btcusdt()})
    with pytest.raises(ParamsError, match="no symbol to quote"):
        make_strategy("mm", BASE, {})
    with pytest.raises(ParamsError, match=r"^strategy 'x' \(marketmaker\): invalid params"):
        make_strategy("x", {}, {"BTCUSDT": btcusdt()})
