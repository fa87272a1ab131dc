"""The plugin registers "binance" through the botcore entry-point group, and the factory works."""

from __future__ import annotations

import importlib.metadata as metadata
from types import SimpleNamespace

import pytest
from botcore_exchange_binance import plugin
from botcore_exchange_binance.adapter import BinanceAdapter
from botcore_exchange_binance.endpoints import EndpointError

from botcore.contracts import ExchangeAdapter, VenueEndpoints
from botcore.plugins import collect_registry, get_plugin_manager


def test_entry_point_declared() -> None:
    eps = [ep for ep in metadata.entry_points(group="botcore") if ep.name == "binance"]
    assert eps, "pip install -e plugins/botcore-exchange-binance --no-deps"
    assert eps[0].value == "botcore_exchange_binance.plugin"


def test_registers_factory_that_builds_an_adapter() -> None:
    pm = get_plugin_manager(load_entrypoints=False, extra=[plugin])
    registry = collect_registry(pm)
    factory = registry.exchanges["binance"]
    venue = VenueEndpoints(rest_url="http://127.0.0.1:9/api", stream_url="ws://127.0.0.1:9/",
                           ws_api_url="ws://127.0.0.1:9/ws-api/v3", api_key="paperkey01", api_secret="papersecret01")
    config = SimpleNamespace(exchange=SimpleNamespace(mode="paper", symbols=["BTCUSDT"], api_key=None,
                                                      api_secret=None, options={}))
    adapter = factory(config, venue)
    try:
        assert isinstance(adapter, BinanceAdapter) and isinstance(adapter, ExchangeAdapter)
        assert adapter.name == "binance" and "papersecret01" not in repr(adapter)
    finally:
        adapter.stop()
    config.exchange.mode = "production"
    config.exchange.api_key, config.exchange.api_secret = "k" * 10, "s" * 10
    with pytest.raises(EndpointError):
        factory(config, None)
