"""Where the adapter connects: the embedded paper venue, the spot testnet, or (opt-in) production.

Production is refused unless the config says ``allow_production: true`` (the CLI adds its own
flag on top). URL overrides from the config win over the defaults of the chosen mode. Base URLs
are normalised so any of ``https://host``, ``https://host/api`` or ``https://host/api/v3`` works
for REST and ``wss://host``, ``wss://host/ws`` or ``wss://host/stream`` for streams.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

TESTNET = {
    "rest_url": "https://testnet.binance.vision",
    "stream_url": "wss://stream.testnet.binance.vision:9443",
    "ws_api_url": "wss://ws-api.testnet.binance.vision/ws-api/v3",
}
PRODUCTION = {
    "rest_url": "https://api.binance.com",
    "stream_url": "wss://stream.binance.com:9443",
    "ws_api_url": "wss://ws-api.binance.com:443/ws-api/v3",
}
MODES = ("paper", "testnet", "production")


class EndpointError(ValueError):
    """The mode/URL combination is not allowed or incomplete."""


@dataclass(frozen=True)
class Endpoints:
    rest_url: str  # host root, no /api suffix
    stream_url: str  # host root, no /ws or /stream suffix
    ws_api_url: str  # full WebSocket API URL (…/ws-api/v3)
    production: bool = False

    def combined_stream_url(self, streams: list[str]) -> str:
        return f"{self.stream_url}/stream?streams={'/'.join(streams)}"


def is_production_host(url: str) -> bool:
    """True for real-money Binance hosts (``*.binance.com`` except the demo hosts)."""
    host = urlsplit(url).hostname or ""
    return (host == "binance.com" or host.endswith(".binance.com")) and not host.startswith("demo")


def rest_root(url: str) -> str:
    url = url.rstrip("/")
    for suffix in ("/api/v3", "/api"):
        if url.endswith(suffix):
            return url[: -len(suffix)]
    return url


def stream_root(url: str) -> str:
    url = url.rstrip("/")
    for suffix in ("/stream", "/ws"):
        if url.endswith(suffix):
            return url[: -len(suffix)]
    return url


def ws_api(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/ws-api/v3") else url + "/ws-api/v3"


def resolve(
    mode: str,
    *,
    venue: Any = None,
    rest_url: str | None = None,
    stream_url: str | None = None,
    ws_api_url: str | None = None,
    allow_production: bool = False,
) -> Endpoints:
    """Pick the URLs for ``mode``.

    :param venue: ``botcore.contracts.VenueEndpoints`` of an embedded venue (paper mode).
    :raises EndpointError: production without ``allow_production``, paper without a venue or URLs.
    """
    if mode not in MODES:
        raise EndpointError(f"exchange.mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "production":
        if not allow_production:
            raise EndpointError(
                "exchange.mode is production but exchange.allow_production is not true: refusing to trade real money"
            )
        base = dict(PRODUCTION)
    elif mode == "testnet":
        base = dict(TESTNET)
    else:
        if venue is not None:
            base = {"rest_url": venue.rest_url, "stream_url": venue.stream_url, "ws_api_url": venue.ws_api_url}
        elif rest_url and stream_url and ws_api_url:
            base = {}
        else:
            raise EndpointError("exchange.mode paper needs the embedded venue (or rest_url, stream_url and ws_api_url)")
    for key, value in (("rest_url", rest_url), ("stream_url", stream_url), ("ws_api_url", ws_api_url)):
        if value:
            base[key] = value
    if mode != "production" and not allow_production:
        for key in ("rest_url", "stream_url", "ws_api_url"):
            if is_production_host(base[key]):
                raise EndpointError(
                    f"exchange.{key} {base[key]!r} is a production Binance host but exchange.mode is {mode}"
                )
    return Endpoints(
        rest_url=rest_root(base["rest_url"]),
        stream_url=stream_root(base["stream_url"]),
        ws_api_url=ws_api(base["ws_api_url"]),
        production=mode == "production",
    )
