"""Endpoint selection: paper / testnet / production opt-in, URL normalisation, config parsing."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from botcore_exchange_binance.adapter import BinanceOptions, BinanceSettings
from botcore_exchange_binance.endpoints import EndpointError, resolve

from botcore.contracts import VenueEndpoints

VENUE = VenueEndpoints(rest_url="http://127.0.0.1:9/api", stream_url="ws://127.0.0.1:9/",
                       ws_api_url="ws://127.0.0.1:9/ws-api/v3", api_key="pk", api_secret="ps")


def test_paper_uses_the_venue_and_normalises() -> None:
    ep = resolve("paper", venue=VENUE)
    assert ep.rest_url == "http://127.0.0.1:9" and ep.stream_url == "ws://127.0.0.1:9"
    assert ep.ws_api_url == "ws://127.0.0.1:9/ws-api/v3" and not ep.production
    assert ep.combined_stream_url(["a@b", "c@d"]) == "ws://127.0.0.1:9/stream?streams=a@b/c@d"


def test_testnet_defaults_and_overrides() -> None:
    ep = resolve("testnet")
    assert ep.rest_url == "https://testnet.binance.vision"
    assert ep.ws_api_url == "wss://ws-api.testnet.binance.vision/ws-api/v3"
    ep = resolve("testnet", rest_url="https://api1.testnet.binance.vision/api/v3", stream_url="wss://x/ws")
    assert ep.rest_url == "https://api1.testnet.binance.vision" and ep.stream_url == "wss://x"


def test_production_needs_explicit_opt_in() -> None:
    with pytest.raises(EndpointError, match="allow_production"):
        resolve("production")
    assert resolve("production", allow_production=True).production
    with pytest.raises(EndpointError, match="production Binance host"):
        resolve("testnet", rest_url="https://api.binance.com")
    with pytest.raises(EndpointError):
        resolve("paper")  # no venue, no URLs
    with pytest.raises(EndpointError):
        resolve("live")


def _config(**ex: object) -> SimpleNamespace:
    base: dict[str, object] = dict(mode="testnet", symbols=["btcusdt"], api_key="k" * 10, api_secret="s" * 10,
                                   options={})
    base.update(ex)
    return SimpleNamespace(exchange=SimpleNamespace(**base))


def test_settings_from_config() -> None:
    class FakeSecretStr:
        def __init__(self, v: str) -> None:
            self.v = v

        def get_secret_value(self) -> str:
            return self.v

    s = BinanceSettings.from_config(_config(api_secret=FakeSecretStr("z" * 12), recv_window_ms=7000,
                                            options={"order_transport": "rest", "stall_timeout_s": "2.5"}))
    assert s.symbols == ("BTCUSDT",) and s.recv_window_ms == 7000 and s.api_secret.reveal() == "z" * 12
    assert s.options.order_transport == "rest" and s.options.stall_timeout_s == 2.5
    assert "z" * 12 not in repr(s)
    paper = BinanceSettings.from_config(_config(mode="paper", api_key=None, api_secret=None), VENUE)
    assert paper.api_key.reveal() == "pk" and paper.endpoints.rest_url == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("options", "needle"),
    [({"nope": 1}, "exchange.options.nope"), ({"order_transport": "fix"}, "order_transport"),
     ({"trust_env": "maybe"}, "trust_env"), ({"rest_pool_size": "x"}, "rest_pool_size")],
)
def test_bad_options_name_the_key(options: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        BinanceOptions.from_mapping(options)


def test_missing_credentials_and_production_refused() -> None:
    with pytest.raises(ValueError, match="api_key"):
        BinanceSettings.from_config(_config(api_key=None))
    with pytest.raises(EndpointError):
        BinanceSettings.from_config(_config(mode="production"))
