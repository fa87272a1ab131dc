"""The market maker registers like any third-party plugin: entry point, hook, replaceable default."""

from __future__ import annotations

import importlib.metadata as metadata
from collections.abc import Callable
from typing import Any

import botcore_strategy_marketmaker.plugin as mm_plugin
import pluggy
from botcore_strategy_marketmaker.strategy import MarketMaker, make_strategy
from mm_support import btcusdt

from botcore import hookimpl
from botcore.contracts import Strategy
from botcore.plugins import collect_registry


def test_entry_point_is_declared_by_the_distribution() -> None:
    dist = metadata.distribution("botcore-strategy-marketmaker")
    eps = {ep.name: ep.value for ep in dist.entry_points if ep.group == "botcore"}
    assert eps == {"marketmaker": "botcore_strategy_marketmaker.plugin"}
    assert any(
        ep.name == "marketmaker" and ep.load() is mm_plugin for ep in metadata.entry_points(group="botcore")
    )


def test_registers_marketmaker_as_a_replaceable_default(
    make_plugin_manager: Callable[..., pluggy.PluginManager],
) -> None:
    registry = collect_registry(make_plugin_manager(mm_plugin))
    factory = registry.strategies["marketmaker"]
    assert factory is make_strategy
    assert "marketmaker" in registry.defaults["strategies"]
    strat = factory("mm-btc", {"amount": "0.001"}, {"BTCUSDT": btcusdt()})
    assert isinstance(strat, Strategy) and isinstance(strat, MarketMaker)
    assert (strat.name, tuple(strat.symbols)) == ("mm-btc", ("BTCUSDT",))


class _Override:
    """A user's patched market maker registered under the same name."""

    @staticmethod
    def factory(name: str, params: Any, instruments: Any) -> str:
        return "patched"

    @hookimpl
    def botcore_register_strategies(self, register: Callable[[str, Callable[..., Any]], None]) -> None:
        register("marketmaker", self.factory)


def test_an_installed_plugin_can_replace_it(make_plugin_manager: Callable[..., pluggy.PluginManager]) -> None:
    registry = collect_registry(make_plugin_manager(mm_plugin, _Override()))
    assert registry.strategies["marketmaker"]("x", {}, {}) == "patched"
