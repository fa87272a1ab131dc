"""Helpers for hermetic tests of the paper venue (no replay of the big captures needed).

- ``write_recording(path, snapshot, events)`` writes a tiny capture in the hftbacktest format;
- ``snapshot`` / ``diff`` / ``ticker`` / ``trade`` build the recorded payloads;
- ``make_venue(tmp_path, bids, asks, events, ...)`` returns a primed ``Venue`` whose book is the
  given snapshot, with the remaining events ready for ``venue.step()``;
- ``Recorder`` is a ``VenueListener`` that keeps everything published.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from botcore_exchange_paper.config import AccountSpec, FillConfig, PaperConfig

SYMBOL = "BTCUSDT"
KEY, SECRET = "test-key", "test-secret"
KEY2, SECRET2 = "test-key-2", "test-secret-2"


def _p(x: str | float | Decimal) -> str:
    return f"{Decimal(str(x)):.8f}"


def snapshot(bids: Sequence[tuple[Any, Any]], asks: Sequence[tuple[Any, Any]], last_update_id: int = 100) -> dict[str, Any]:
    return {
        "lastUpdateId": last_update_id,
        "bids": [[_p(p), _p(q)] for p, q in bids],
        "asks": [[_p(p), _p(q)] for p, q in asks],
    }


def diff(U: int, u: int, bids: Sequence[tuple[Any, Any]] = (), asks: Sequence[tuple[Any, Any]] = (),
         E: int = 0, symbol: str = SYMBOL) -> dict[str, Any]:
    return {
        "stream": f"{symbol.lower()}@depth@100ms",
        "data": {"e": "depthUpdate", "E": E, "s": symbol, "U": U, "u": u,
                 "b": [[_p(p), _p(q)] for p, q in bids], "a": [[_p(p), _p(q)] for p, q in asks]},
    }


def ticker(u: int, bid: Any, bid_qty: Any, ask: Any, ask_qty: Any, symbol: str = SYMBOL) -> dict[str, Any]:
    return {
        "stream": f"{symbol.lower()}@bookTicker",
        "data": {"u": u, "s": symbol, "b": _p(bid), "B": _p(bid_qty), "a": _p(ask), "A": _p(ask_qty)},
    }


def trade(t: int, price: Any, qty: Any, buyer_is_maker: bool, T: int = 0, symbol: str = SYMBOL) -> dict[str, Any]:
    """``buyer_is_maker=True``: a seller aggressed (fills resting BUYs only)."""
    return {
        "stream": f"{symbol.lower()}@trade",
        "data": {"e": "trade", "E": T, "s": symbol, "t": t, "p": _p(price), "q": _p(qty), "T": T,
                 "m": buyer_is_maker, "M": True},
    }


def write_recording(path: Path, records: Iterable[dict[str, Any]], start_ns: int = 1_000_000_000,
                    step_ns: int = 10_000_000) -> Path:
    """Write ``<local_ns> <json>`` lines (gzip if ``path`` ends in .gz); ``records`` in order."""
    lines = []
    ns = start_ns
    for rec in records:
        lines.append(f"{ns} {json.dumps(rec, separators=(',', ':'))}\n")
        ns += step_ns
    data = "".join(lines).encode()
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def make_config(recordings: list[Path], **overrides: Any) -> PaperConfig:
    fill = overrides.pop("fill", None) or FillConfig(**overrides.pop("fill_kwargs", {}))
    accounts = overrides.pop("accounts", None) or [
        AccountSpec(KEY, SECRET, {"USDT": Decimal(100_000), "BTC": Decimal(10)}),
        AccountSpec(KEY2, SECRET2, {"USDT": Decimal(100_000), "BTC": Decimal(10)}),
    ]
    overrides.setdefault("symbols", [SYMBOL])
    overrides.setdefault("speed", 0)
    return PaperConfig(recordings=recordings, accounts=accounts, fill=fill, **overrides)


def make_venue(tmp_path: Path, bids: Sequence[tuple[Any, Any]], asks: Sequence[tuple[Any, Any]],
               events: Sequence[dict[str, Any]] = (), last_update_id: int = 100, clock_ms: int = 1_700_000_000_000,
               name: str = "rec.txt", **overrides: Any) -> Any:
    """A primed venue over ``snapshot(bids, asks)`` followed by ``events`` (consumed by ``step``).

    A fixed clock makes event times deterministic.
    """
    from botcore_exchange_paper.venue import Venue

    rec = write_recording(tmp_path / name, [snapshot(bids, asks, last_update_id), *events])
    cfg = make_config([rec], **overrides)
    return Venue(cfg, clock=lambda: clock_ms)


class Recorder:
    """A listener that records everything (decoded JSON for market payloads)."""

    def __init__(self) -> None:
        self.market: list[tuple[str, dict[str, Any]]] = []
        self.user: list[tuple[str, dict[str, Any]]] = []

    def on_market(self, stream: str, payload: bytes) -> None:
        self.market.append((stream, json.loads(payload)))

    def on_user(self, api_key: str, event: dict[str, Any]) -> None:
        self.user.append((api_key, event))

    def user_events(self, api_key: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        return [e for k, e in self.user if (api_key is None or k == api_key) and (kind is None or e["e"] == kind)]

    def reports(self, api_key: str | None = None) -> list[dict[str, Any]]:
        return self.user_events(api_key, "executionReport")

    def streams(self, suffix: str) -> list[dict[str, Any]]:
        return [p for s, p in self.market if s.endswith(suffix)]

    def clear(self) -> None:
        self.market.clear()
        self.user.clear()
