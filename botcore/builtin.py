"""botcore's own built-in plugin: the in-process "replay" exchange.

Registered through the ``botcore`` entry-point group like any third-party plugin
(``builtin = "botcore.builtin"`` in botcore's pyproject), with ``trylast`` so an installed plugin
may replace the name.

Config: ``exchange: {name: replay, mode: paper, symbols: [BTCUSDT]}``. The replay reads the
``paper:`` block (``data`` recordings, ``speed`` 0 = as fast as possible, ``balances``) and
``exchange.options`` (``max_frames``, ``stop_at_end``, ``user_reports``, ``max_backlog``).
It is its own venue, so ``botcore_start_venue`` answers for it with in-process endpoints.
"""

from __future__ import annotations

from typing import Any

from botcore import hookimpl
from botcore.contracts import VenueEndpoints
from botcore.replay_adapter import ReplayAdapter

REPLAY = "replay"
_OPTIONS = ("max_frames", "stop_at_end", "user_reports", "max_backlog", "drop_depth")


def make_replay_adapter(config: Any, endpoints: VenueEndpoints | None = None) -> ReplayAdapter:
    """Exchange factory: ``factory(config, endpoints)`` per ``botcore_register_exchanges``."""
    paper = getattr(config, "paper", None)
    options = dict(getattr(config.exchange, "options", {}) or {})
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise ValueError(f"unknown replay option(s) {unknown}; known: {list(_OPTIONS)}")
    kwargs: dict[str, Any] = {k: options[k] for k in _OPTIONS if k in options}
    if paper is not None:
        if paper.data:
            kwargs["paths"] = list(paper.data)
        kwargs["speed"] = paper.speed
        kwargs["balances"] = dict(paper.balances)
    return ReplayAdapter(**kwargs)


@hookimpl(trylast=True)
def botcore_register_exchanges(register: Any) -> None:
    register(REPLAY, make_replay_adapter)


@hookimpl
def botcore_start_venue(config: Any) -> VenueEndpoints | None:
    """The replay venue lives inside the adapter: nothing to start, no sockets."""
    if config.exchange.name != REPLAY:
        return None
    return VenueEndpoints(rest_url="replay://local", stream_url="replay://local", ws_api_url="replay://local")
