"""Transport options of the paper server (the ``options:`` block of the ``paper:`` config).

Defaults are Binance's production values; tests shorten the timers and scale the rate limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

LEGACY_MODES = ("enabled", "retired")


@dataclass(frozen=True, slots=True)
class ServerOptions:
    ping_interval_s: float = 20.0
    """Server ping frame period on every websocket (Binance: 20 s since 2025-02)."""
    pong_timeout_s: float = 60.0
    """Close a websocket that has not answered a ping for this long (Binance: 1 minute)."""
    max_lifetime_s: float = 86_400.0
    """Forced disconnect after this long (Binance: 24 h)."""
    shutdown_notice_s: float = 10.0
    """``serverShutdown`` is sent this long before the forced disconnect."""
    ws_max_incoming_per_s: int = 0
    """Inbound message limit per connection (Binance: 5); 0 disables the check."""
    ws_max_streams: int = 1024
    outbox_limit: int = 50_000
    """Frames queued for a slow websocket client before it is disconnected."""
    rate_limit_scale: float = 1.0
    """Multiplies every ``exchangeInfo.rateLimits`` limit (tests use tiny limits)."""
    ban_after: int = 3
    """Requests a client may still send after its first 429 before a 418 ban."""
    ban_seconds: float = 120.0
    """First ban length; doubles per ban up to 3 days."""
    legacy_user_stream: str = "enabled"
    """``enabled``: ``/api/v3/userDataStream`` listenKeys work (for old clients); ``retired``: 410 like Binance since 2026-02-20."""
    listen_key_ttl_s: float = 3_600.0
    control_loopback_only: bool = True
    """``/paper/*`` answers only loopback clients."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> ServerOptions:
        if not d:
            return cls()
        names = {f.name: f for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in d.items():
            if key not in names:
                raise ValueError(f"paper.options: unknown key {key!r}; allowed {sorted(names)}")
            kwargs[key] = value
        opts = replace(cls(), **kwargs)
        if opts.legacy_user_stream not in LEGACY_MODES:
            raise ValueError(f"paper.options.legacy_user_stream must be one of {LEGACY_MODES}")
        return opts
