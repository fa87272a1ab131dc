"""Risk-check parameters are validated with clear errors; the checks register like any plugin."""

from __future__ import annotations

import importlib.metadata as metadata
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import botcore_risk_basic.plugin as risk_plugin
import pluggy
import pytest
from botcore_risk_basic.checks import CHECKS
from botcore_risk_basic.params import NS_PER_S, ParamsError

from botcore.contracts import RiskCheck
from botcore.plugins import collect_registry

NAMES = [
    "max_position",
    "max_inventory_value",
    "max_order_notional",
    "max_open_orders",
    "order_rate",
    "price_band",
    "stale_data",
    "drawdown",
    "daily_loss",
]


@pytest.fixture
def factories(make_plugin_manager: Callable[..., pluggy.PluginManager]) -> dict[str, Callable[..., Any]]:
    return collect_registry(make_plugin_manager(risk_plugin)).risk_checks


def test_every_check_is_registered_as_a_default(
    make_plugin_manager: Callable[..., pluggy.PluginManager], factories: dict[str, Callable[..., Any]]
) -> None:
    assert sorted(factories) == sorted(NAMES)
    registry = collect_registry(make_plugin_manager(risk_plugin))
    assert registry.defaults["risk_checks"] == set(NAMES)
    assert [c.kind for c in CHECKS] == NAMES


def test_entry_point_is_declared_by_the_distribution() -> None:
    dist = metadata.distribution("botcore-risk-basic")
    eps = {ep.name: ep.value for ep in dist.entry_points if ep.group == "botcore"}
    assert eps == {"risk_basic": "botcore_risk_basic.plugin"}


GOOD: dict[str, dict[str, Any]] = {
    "max_position": {"max_position": "0.03"},
    "max_inventory_value": {"max_value": 1000},
    "max_order_notional": {"max_notional": "500"},
    "max_open_orders": {"per_symbol": 10, "total": 50},
    "order_rate": {"per_second": 8, "per_10s": 60},
    "price_band": {"max_bps": 50},
    "stale_data": {"max_book_age": "5s", "max_user_silence": "120s", "max_clock_skew_ms": 1000},
    "drawdown": {"max_drawdown": "100", "resume_after": "10m", "resume_equity_above": "-50"},
    "daily_loss": {"max_daily_loss": "200", "resume": "manual"},
}


@pytest.mark.parametrize("name", NAMES)
def test_factories_build_checks_from_yaml_params(name: str, factories: dict[str, Callable[..., Any]]) -> None:
    check = factories[name](GOOD[name])
    assert isinstance(check, RiskCheck)
    assert check.name == name and check.shadow is False


@pytest.mark.parametrize("name", NAMES)
def test_limits_hold_every_param_as_built(name: str, factories: dict[str, Callable[..., Any]]) -> None:
    """What ``evaluate`` reads per order (``limits``) is the validated params, field for field."""
    check = factories[name](GOOD[name])
    fields = type(check.params).model_fields
    assert check.limits._fields == tuple(fields)
    assert all(getattr(check.limits, f) is getattr(check.params, f) for f in fields)
    with pytest.raises(AttributeError):
        check.limits.symbols = ("ETHUSDT",)  # read-only: a change goes through new params


def test_paper_yaml_values_are_read_exactly(factories: dict[str, Callable[..., Any]]) -> None:
    stale = factories["stale_data"](GOOD["stale_data"])
    assert (stale.params.max_book_age, stale.params.max_user_silence) == (5 * NS_PER_S, 120 * NS_PER_S)
    assert factories["max_position"]({"max_position": 0.03}).params.max_position == Decimal("0.03")
    assert factories["drawdown"](GOOD["drawdown"]).params.resume_after == 600 * NS_PER_S


@pytest.mark.parametrize(
    ("name", "params", "needles"),
    [
        ("max_position", {}, ["max_position: required parameter is missing"]),
        (
            "max_position",
            {"max_positon": 1},
            [
                "max_positon: unknown parameter",
                "did you mean 'max_position'",
                "allowed: include_open_orders, max_position, symbols",
            ],
        ),
        ("max_position", {"max_position": "-1"}, ["max_position:", "greater than 0"]),
        ("max_position", {"max_position": "lots"}, ["max_position:", "decimal", "'lots'"]),
        ("max_inventory_value", {"max_value": "inf"}, ["max_value:", "finite"]),
        ("max_open_orders", {"per_symbol": 0}, ["per_symbol:", "greater than or equal to 1"]),
        ("order_rate", {}, ["give per_second and/or per_10s"]),
        ("order_rate", {"per_10s": 150}, ["per_10s=150 exceeds the exchange ORDERS limit", "-1015"]),
        ("price_band", {"max_bps": 0}, ["max_bps:", "greater than 0"]),
        ("stale_data", {"max_book_age": "soon"}, ["max_book_age:", "'200ms', '5s'"]),
        ("stale_data", {"max_clock_skew_ms": -1}, ["max_clock_skew_ms:", "greater than or equal to 0"]),
        ("drawdown", {"max_drawdown": 1, "resume": "auto"}, ["resume:", "'manual'", "'auto'"]),
        ("drawdown", {"max_drawdown": 1, "resume": "manual", "resume_after": 5}, ["not both"]),
        ("drawdown", {"max_drawdown": 1, "resume_equity_above": 5}, ["only applies with resume_after"]),
        ("daily_loss", {"max_daily_loss": 1, "resume": "tomorrow"}, ["resume:", "'next_day' or 'manual'"]),
        (
            "price_band",
            {"max_bps": 5, "shadow": True},
            ["shadow: not a check parameter", "risk.checks entry"],
        ),
        ("price_band", {"max_bps": 5, "name": "pb"}, ["name: not a check parameter", "next to 'type'"]),
        ("price_band", {"max_bps": 5, "symbols": "BTCUSDT"}, ["symbols:", "tuple"]),
    ],
)
def test_bad_params_are_named(
    name: str, params: dict[str, Any], needles: list[str], factories: dict[str, Callable[..., Any]]
) -> None:
    with pytest.raises(ParamsError) as exc:
        factories[name](params)
    msg = str(exc.value)
    assert msg.startswith(f"risk check '{name}': invalid params")
    for needle in needles:
        assert needle in msg, (needle, msg)
    assert isinstance(exc.value, ValueError)


def test_checks_share_no_state(factories: dict[str, Callable[..., Any]]) -> None:
    a, b = factories["order_rate"]({"per_second": 1}), factories["order_rate"]({"per_second": 1})
    assert a._sent is not b._sent
    d1, d2 = factories["drawdown"]({"max_drawdown": 1}), factories["drawdown"]({"max_drawdown": 1})
    assert d1.equity is not d2.equity


def test_a_third_party_subclass_of_basic_check_works_without_a_kind() -> None:
    """BasicCheck is the plugin's public base (compiled as an extension type): a subclass that
    sets neither ``kind`` nor ``params_model`` is named after its class, takes the common params,
    may carry attributes of its own, and its ``evaluate`` answers."""
    from botcore_risk_basic import BasicCheck

    class NoFridays(BasicCheck):
        def evaluate(self, order: Any, ctx: Any) -> str | None:
            self.asked = getattr(self, "asked", 0) + 1
            return "not on a Friday"

    check = NoFridays.from_params({"symbols": ["BTCUSDT"]})
    assert check.name == "NoFridays" and check.applies_to("BTCUSDT") and not check.applies_to("ETHUSDT")

    class Order:
        symbol = "BTCUSDT"

    assert check.check(Order(), None) == "not on a Friday" and check.asked == 1
    with pytest.raises(ParamsError):
        NoFridays.from_params({"symbols": "BTCUSDT", "colour": "red"})
