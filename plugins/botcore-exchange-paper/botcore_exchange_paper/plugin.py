"""pluggy hooks: start the embedded paper exchange for ``exchange.mode: paper``; ``botcore paper``.

The YAML ``paper:`` block (``botcore.config.PaperConfig``) speaks the user's words (``data``,
``balances``, ``port``); :func:`paper_config_from_block` translates them into the venue's
``PaperConfig`` (``recordings``, one default account) and keeps the transport's own ``options``
and ``faults`` blocks as they are.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Mapping
from typing import Any

from botcore import hookimpl
from botcore.contracts import VenueEndpoints

_ALNUM = string.ascii_letters + string.digits


def new_key() -> str:
    """A throwaway 64-character alphanumeric key (the shape of a real Binance API key)."""
    return "".join(secrets.choice(_ALNUM) for _ in range(64))


def _as_dict(block: Any) -> dict[str, Any]:
    if block is None:
        return {}
    if hasattr(block, "model_dump"):
        return dict(block.model_dump())
    if isinstance(block, Mapping):
        return dict(block)
    raise TypeError(f"paper: expected a mapping, got {type(block).__name__}")


def paper_config_from_block(block: Any, symbols: list[str] | None = None) -> tuple[Any, int]:
    """(venue ``PaperConfig``, port) from the YAML ``paper:`` block (a dict or the pydantic model)."""
    from botcore_exchange_paper.config import PaperConfig

    d = _as_dict(block)
    port = int(d.pop("port", 0) or 0)
    data = d.pop("data", None)
    if data:
        d["recordings"] = [str(p) for p in ([data] if isinstance(data, str) else data)]
    balances = d.pop("balances", None)
    if balances is not None and not d.get("accounts"):
        d["accounts"] = [{"api_key": new_key(), "api_secret": new_key(), "balances": dict(balances)}]
    if d.get("synthetic") and symbols and not d.get("symbols"):
        d["symbols"] = list(symbols)
    for key in ("fill", "faults", "options"):
        if d.get(key) is None:
            d.pop(key, None)
    return PaperConfig.from_dict(d), port


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


@hookimpl
def botcore_start_venue(config: Any) -> VenueEndpoints | None:
    """Start the paper exchange when ``exchange.mode`` is ``paper``; None otherwise.

    By default in a child process (``child.py``: no GIL shared with the engine, dies with the
    parent); ``paper: {options: {in_process: true}}`` runs it on a thread of this process instead
    (tests that reach into the venue). The block is validated here either way, so a mistake is
    reported by the parent, with the key.
    """
    exchange = _get(config, "exchange")
    if _get(exchange, "mode") != "paper":
        return None
    symbols = list(_get(exchange, "symbols") or [])
    block = _as_dict(_get(config, "paper"))
    options = dict(block.get("options") or {})
    in_process = options.pop("in_process", False)
    if not isinstance(in_process, bool):
        raise ValueError(f"paper.options.in_process: expected true or false, got {in_process!r}")
    block["options"] = options
    paper_cfg, port = paper_config_from_block(dict(block), symbols)
    from botcore_exchange_paper.faults import parse_specs
    from botcore_exchange_paper.options import ServerOptions

    ServerOptions.from_dict(paper_cfg.options)  # bad server options or faults fail here, not in the child
    parse_specs(paper_cfg.faults or None)
    if in_process:
        from botcore_exchange_paper.embedded import start_embedded

        return start_embedded(paper_cfg, port=port).endpoints()
    from botcore_exchange_paper.child import start_child

    if block.get("synthetic") and symbols and not block.get("symbols"):
        block["symbols"] = symbols
    return start_child(block, port).endpoints()


@hookimpl
def botcore_register_commands(register: Any) -> None:
    from botcore_exchange_paper.cli import setup

    register("paper", setup)
