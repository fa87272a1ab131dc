"""Configuration of the paper venue (the YAML ``paper:`` block).

Every fill knob is exposed here and validated up front (nautilus_trader#4812: a sandbox that could
not turn on its queue model silently ignored the queue). ``PaperConfig.describe()`` gives the
effective values for the start-up log.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

QUEUE_MODELS = ("risk_averse", "power", "power2", "power3", "log", "log2", "cross_only", "touch")
"""Accepted ``fill.queue_model`` families (``power``/``power2``/``power3`` take ``:n``)."""

STP_MODES = ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT")


def shipped_exchange_info() -> Path:
    """The real spot exchangeInfo of 2025-08-07 shipped with botcore."""
    return Path(str(resources.files("botcore") / "data" / "exchangeinfo" / "exchangeInfo_2025-08-07.json"))


def _decimal(value: Any, key: str) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{key}: expected a decimal number, got {value!r}")
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{key}: expected a decimal number, got {value!r}") from None
    if not d.is_finite():
        raise ValueError(f"{key}: expected a finite number, got {value!r}")
    return d


@dataclass
class AccountSpec:
    """One paper account: credentials and starting balances (whole units, e.g. ``{"USDT": 10000}``)."""

    api_key: str
    api_secret: str = field(repr=False)
    balances: dict[str, Decimal] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], path: str = "paper.accounts[]") -> AccountSpec:
        _check_keys(d, {"api_key", "api_secret", "balances"}, path)
        for key in ("api_key", "api_secret"):
            if not isinstance(d.get(key), str) or not d[key]:
                raise ValueError(f"{path}.{key}: required non-empty string")
        raw = d.get("balances") or {}
        if not isinstance(raw, Mapping):
            raise ValueError(f"{path}.balances: expected a mapping asset -> amount")
        balances = {str(a).upper(): _decimal(v, f"{path}.balances.{a}") for a, v in raw.items()}
        for asset, amount in balances.items():
            if amount < 0:
                raise ValueError(f"{path}.balances.{asset}: must not be negative")
        return cls(api_key=d["api_key"], api_secret=d["api_secret"], balances=balances)


@dataclass
class FillConfig:
    """Fill model knobs (MATCHING.md sections a-c)."""

    queue_model: str = "power:3"
    """``power:n`` (default n=3) | ``risk_averse`` | ``power2:n`` | ``power3:n`` | ``log`` | ``log2`` |
    ``cross_only`` | ``touch``: how a non-trade depth decrease at our price moves us up (rule A5)."""
    partial: bool = True
    """False = hftbacktest NoPartialFillExchange: the whole order fills once the queue is passed by half a lot."""
    entry_latency_ms: float = 0.0
    """Market time between a request's arrival and its execution (the market advances meanwhile)."""
    response_latency_ms: float = 0.0
    """Market time between execution and the client seeing the answer / user-data events."""

    def __post_init__(self) -> None:
        self.queue_family()  # validates
        for name in ("entry_latency_ms", "response_latency_ms"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"paper.fill.{name}: must be >= 0")

    def queue_family(self) -> tuple[str, float]:
        """``("power", 3.0)``; raises ValueError naming the key for an unknown model."""
        raw = str(self.queue_model).strip()
        family, _, arg = raw.partition(":")
        if family not in QUEUE_MODELS:
            raise ValueError(f"paper.fill.queue_model: unknown model {raw!r}; choose one of {QUEUE_MODELS}")
        if family in ("power", "power2", "power3"):
            try:
                n = float(arg) if arg else 3.0
            except ValueError:
                raise ValueError(f"paper.fill.queue_model: bad exponent in {raw!r}") from None
            if not n > 0:
                raise ValueError(f"paper.fill.queue_model: exponent must be > 0 in {raw!r}")
            return family, n
        if arg:
            raise ValueError(f"paper.fill.queue_model: {family!r} takes no argument")
        return family, 0.0


@dataclass
class PaperConfig:
    """Everything the venue needs; the server's own blocks (``options``, ``faults``) ride along untouched."""

    exchange_info_path: Path = field(default_factory=shipped_exchange_info)
    symbols: list[str] | None = None
    """None -> the symbols present in the recordings (replay) or BTCUSDT (synthetic)."""
    recordings: list[Path] | None = None
    """None -> botcore.replay.shipped_recording()."""
    synthetic: bool = False
    seed: int = 1
    speed: float = 1.0
    """1.0 = real time, 10 = 10x, 0 = as fast as possible."""
    loop: bool = False
    accounts: list[AccountSpec] = field(default_factory=list)
    maker_commission: Decimal = Decimal("0.001")
    taker_commission: Decimal = Decimal("0.001")
    fill: FillConfig = field(default_factory=FillConfig)
    show_own_orders: bool = True
    """False = serve the recorded book only (hftbacktest parity); own orders still match."""
    own_trade_prints: bool = True
    """Publish synthetic ``@trade`` prints for own taker fills (ids from 10**12 up, apart from recorded ids)."""
    synthetic_prices: dict[str, Decimal] = field(default_factory=dict)
    """Starting mid per symbol for the synthetic market (defaults: BTCUSDT 60000, ETHUSDT 3000, else 10000 ticks)."""
    options: dict[str, Any] = field(default_factory=dict)
    """Server transport options (owned by the server; not interpreted by the venue)."""
    faults: dict[str, Any] = field(default_factory=dict)
    """Fault injection settings (owned by the server; not interpreted by the venue)."""

    def __post_init__(self) -> None:
        self.exchange_info_path = Path(self.exchange_info_path)
        if self.recordings is not None:
            self.recordings = [Path(p) for p in self.recordings]
        if self.symbols is not None:
            self.symbols = [str(s).upper() for s in self.symbols]
        if float(self.speed) < 0:
            raise ValueError("paper.speed: must be >= 0 (0 = as fast as possible)")
        for name in ("maker_commission", "taker_commission"):
            rate = _decimal(getattr(self, name), f"paper.{name}")
            if not Decimal(0) <= rate < Decimal(1):
                raise ValueError(f"paper.{name}: must be in [0, 1)")
            if rate.as_tuple().exponent < -8:  # type: ignore[operator]
                raise ValueError(f"paper.{name}: at most 8 decimals")
            setattr(self, name, rate)
        self.synthetic_prices = {
            str(k).upper(): _decimal(v, f"paper.synthetic_prices.{k}") for k, v in self.synthetic_prices.items()
        }
        keys = [a.api_key for a in self.accounts]
        if len(set(keys)) != len(keys):
            raise ValueError("paper.accounts: duplicate api_key")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> PaperConfig:
        """Build from the YAML ``paper:`` block; an unknown key raises ValueError naming it."""
        d = dict(d or {})
        names = {f.name for f in dataclasses.fields(cls)}
        _check_keys(d, names, "paper")
        kwargs: dict[str, Any] = {}
        for key, value in d.items():
            if key == "fill":
                fill = dict(value or {})
                _check_keys(fill, {f.name for f in dataclasses.fields(FillConfig)}, "paper.fill")
                kwargs["fill"] = FillConfig(**fill)
            elif key == "accounts":
                if not isinstance(value, list):
                    raise ValueError("paper.accounts: expected a list")
                kwargs["accounts"] = [
                    AccountSpec.from_dict(a, f"paper.accounts[{i}]") for i, a in enumerate(value)
                ]
            elif key in ("recordings", "symbols"):
                if value is not None and not isinstance(value, list):
                    raise ValueError(f"paper.{key}: expected a list")
                kwargs[key] = value
            elif key in ("options", "faults", "synthetic_prices"):
                if value is not None and not isinstance(value, Mapping):
                    raise ValueError(f"paper.{key}: expected a mapping")
                kwargs[key] = dict(value or {})
            else:
                kwargs[key] = value
        return cls(**kwargs)

    def describe(self) -> dict[str, Any]:
        """Effective values worth logging at start-up (no secrets)."""
        return {
            "market": "synthetic" if self.synthetic else "replay",
            "recordings": [str(p) for p in self.recordings] if self.recordings else "shipped",
            "symbols": self.symbols,
            "speed": self.speed,
            "loop": self.loop,
            "seed": self.seed,
            "queue_model": self.fill.queue_model,
            "partial": self.fill.partial,
            "entry_latency_ms": self.fill.entry_latency_ms,
            "response_latency_ms": self.fill.response_latency_ms,
            "maker_commission": str(self.maker_commission),
            "taker_commission": str(self.taker_commission),
            "show_own_orders": self.show_own_orders,
            "accounts": [a.api_key for a in self.accounts],
        }


def _check_keys(d: Mapping[str, Any], allowed: set[str], path: str) -> None:
    if not isinstance(d, Mapping):
        raise ValueError(f"{path}: expected a mapping")
    for key in d:
        if key not in allowed:
            raise ValueError(f"{path}.{key}: unknown key (allowed: {', '.join(sorted(allowed))})")
