"""Validated parameters of the ``marketmaker`` strategy (the ``params:`` block of a strategy in YAML).

Every parameter is checked once, at construction, so the quoting code never meets a bad value:
unknown keys are refused (a misspelt ``max_positon`` must not silently disable a limit), money is
``Decimal`` (floats from YAML are read through ``str`` so ``0.1`` stays ``0.1``), durations accept
seconds or ``"200ms"``/``"5s"``/``"2m"``/``"1h"``. ``parse_params`` turns pydantic's errors into one
``ParamsError`` naming each bad parameter and what it accepts.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from botcore.params import NS_PER_MS as NS_PER_MS  # re-exported: checks and tests use them
from botcore.params import NS_PER_S as NS_PER_S
from botcore.params import DurationNs as DurationNs
from botcore.params import float_as_decimal_text as _to_decimal
from botcore.params import parse_duration_ns as parse_duration_ns
from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)


class ParamsError(ValueError):
    """Bad strategy parameters; the message names each parameter and what it accepts."""


Dec = Annotated[Decimal, BeforeValidator(_to_decimal)]
PositiveDec = Annotated[Decimal, BeforeValidator(_to_decimal), Field(gt=0, allow_inf_nan=False)]
NonNegDec = Annotated[Decimal, BeforeValidator(_to_decimal), Field(ge=0, allow_inf_nan=False)]

OFFSET_HELP = "expected 'join', 'improve', {ticks: N} (N >= 0 integer) or {bps: X} (X >= 0)"
SPACING_HELP = "expected {ticks: N} (N >= 1 integer) or {bps: X} (X > 0)"


class Offset(BaseModel):
    """A distance from the touch: whole ticks, basis points of the touch price, or a mode.

    ``join`` quotes at the touch (same as ``{ticks: 0}``); ``improve`` one tick inside the spread
    when the spread is wide enough (else it joins).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["ticks", "bps", "join", "improve"]
    value: Decimal = Decimal(0)

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any) -> Any:
        return _parse_offset(data, allow_modes=True)


class Spacing(BaseModel):
    """Distance between consecutive levels: whole ticks or basis points of the level-0 price."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["ticks", "bps"]
    value: Decimal

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any) -> Any:
        return _parse_offset(data, allow_modes=False)


def _parse_offset(data: Any, *, allow_modes: bool) -> dict[str, Any]:
    help_ = OFFSET_HELP if allow_modes else SPACING_HELP
    if isinstance(data, Offset | Spacing):
        return {"kind": data.kind, "value": data.value}
    if isinstance(data, str):
        if allow_modes and data in ("join", "improve"):
            return {"kind": data, "value": Decimal(0)}
        raise ValueError(f"{help_}; got {data!r}")
    if not isinstance(data, Mapping):
        raise ValueError(f"{help_}; got {data!r}")
    if "kind" in data and set(data) <= {"kind", "value"}:  # normalized form (defaults, model_dump)
        return dict(data)
    if allow_modes and set(data) == {"mode"} and data["mode"] in ("join", "improve"):
        return {"kind": data["mode"], "value": Decimal(0)}
    if len(data) != 1 or next(iter(data)) not in ("ticks", "bps"):
        raise ValueError(f"{help_}; got {dict(data)!r}")
    kind, raw = next(iter(data.items()))
    try:
        if isinstance(raw, bool):
            raise InvalidOperation
        value = Decimal(str(raw))
    except (InvalidOperation, ValueError):
        raise ValueError(f"{help_}; {kind} must be a number, got {raw!r}") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"{help_}; {kind} must be >= 0, got {raw!r}")
    if kind == "ticks" and value != value.to_integral_value():
        raise ValueError(f"{help_}; ticks must be a whole number, got {raw!r}")
    if not allow_modes and value == 0:
        raise ValueError(f"{help_}; got {kind}: 0 (levels would collapse onto one price)")
    return {"kind": kind, "value": value}


class MarketMakerParams(BaseModel):
    """Parameters of one ``marketmaker`` instance (see the plugin README for each one's meaning)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    # --- what and how much -----------------------------------------------------------------------
    symbol: str | None = None
    symbols: tuple[str, ...] | None = None
    amount: PositiveDec | None = None
    notional: PositiveDec | None = None
    level_amounts: tuple[PositiveDec, ...] | None = None
    level_multipliers: tuple[PositiveDec, ...] | None = None

    # --- where -----------------------------------------------------------------------------------
    bid_distance: Offset = Offset(kind="join")
    ask_distance: Offset = Offset(kind="join")
    levels: int = Field(default=1, ge=1, le=50)
    level_spacing: Spacing = Spacing(kind="ticks", value=Decimal(1))
    price_band_bps: PositiveDec | None = None

    # --- order type ------------------------------------------------------------------------------
    post_only: bool = True
    time_in_force: str | None = None

    # --- when to replace -------------------------------------------------------------------------
    requote_tolerance_bps: NonNegDec = Field(
        default=Decimal(0), validation_alias=AliasChoices("requote_tolerance_bps", "requote_tolerance")
    )
    min_requote_interval: DurationNs = NS_PER_S // 2
    max_order_age: DurationNs | None = None

    # --- inventory -------------------------------------------------------------------------------
    inventory_target: Dec = Decimal(0)
    skew_bps_per_unit: NonNegDec = Decimal(0)
    max_skew_bps: NonNegDec | None = None
    skew_size_per_unit: NonNegDec = Decimal(0)
    max_position: PositiveDec | None = None

    # --- after a fill ----------------------------------------------------------------------------
    fill_delay: DurationNs = 0
    hang_other_side: bool = False

    @field_validator("time_in_force")
    @classmethod
    def _tif(cls, v: str | None) -> str | None:
        if v is not None and v != "GTC":
            raise ValueError(
                f"allowed value: 'GTC' (a quote must rest on the book; IOC/FOK orders never rest), got {v!r}"
            )
        return v

    @field_validator("inventory_target")
    @classmethod
    def _finite(cls, v: Decimal) -> Decimal:
        if not v.is_finite():
            raise ValueError("must be a finite number")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> MarketMakerParams:
        sizes = [n for n in ("amount", "notional", "level_amounts") if getattr(self, n) is not None]
        if len(sizes) != 1:
            got = ", ".join(sizes) if sizes else "none"
            raise ValueError(
                "give exactly one order size: amount (base units per order), notional (quote value "
                f"per order) or level_amounts (base units per level); got {got}"
            )
        if self.level_amounts is not None and len(self.level_amounts) != self.levels:
            raise ValueError(
                f"level_amounts has {len(self.level_amounts)} entries but levels is {self.levels}"
            )
        if self.level_multipliers is not None:
            if self.level_amounts is not None:
                raise ValueError(
                    "level_multipliers scales amount/notional; it cannot be used with level_amounts"
                )
            if len(self.level_multipliers) != self.levels:
                raise ValueError(
                    f"level_multipliers has {len(self.level_multipliers)} entries but levels is {self.levels}"
                )
        if self.symbol is not None and self.symbols is not None:
            raise ValueError("give symbol or symbols, not both")
        if self.post_only and self.time_in_force is not None:
            raise ValueError(
                "time_in_force is only for post_only: false (LIMIT orders); post-only quotes are "
                "LIMIT_MAKER, which takes no timeInForce"
            )
        if self.hang_other_side and self.fill_delay == 0:
            raise ValueError(
                "hang_other_side needs fill_delay > 0 (it only acts during the after-fill pause)"
            )
        return self

    # --- derived ---------------------------------------------------------------------------------
    def selected_symbols(self, available: Mapping[str, Any]) -> tuple[str, ...]:
        """The symbols to quote: ``symbol``/``symbols`` if given (must be available), else all."""
        wanted = (self.symbol,) if self.symbol else (self.symbols or tuple(available))
        missing = [s for s in wanted if s not in available]
        if missing:
            raise ParamsError(
                f"symbol(s) {', '.join(missing)} not among the exchange instruments "
                f"({', '.join(sorted(available)) or 'none'})"
            )
        if not wanted:
            raise ParamsError("no symbol to quote: the exchange gave no instruments")
        return tuple(wanted)

    def level_size(self, level: int) -> tuple[str, Decimal]:
        """``("base", qty)`` or ``("quote", notional)`` for ``level`` before skew and rounding."""
        if self.level_amounts is not None:
            return "base", self.level_amounts[level]
        mult = self.level_multipliers[level] if self.level_multipliers is not None else Decimal(1)
        if self.amount is not None:
            return "base", self.amount * mult
        assert self.notional is not None
        return "quote", self.notional * mult


def parse_params(params: Mapping[str, Any] | None, where: str = "marketmaker") -> MarketMakerParams:
    """Validate a YAML ``params`` mapping; raise ``ParamsError`` with one line per problem."""
    try:
        return MarketMakerParams.model_validate(dict(params or {}))
    except ValidationError as exc:
        raise ParamsError(format_errors(exc, MarketMakerParams, where)) from None


def format_errors(exc: ValidationError, model: type[BaseModel], where: str) -> str:
    """One line per error: ``<param>: <problem>``; unknown keys list the allowed names."""
    allowed = sorted(_accepted_names(model))
    lines = [f"{where}: invalid params"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(params)"
        msg = str(err["msg"])
        msg = msg.removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(err["loc"][0]), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            msg = f"unknown parameter{hint}; allowed: {', '.join(allowed)}"
        elif err["type"] not in ("value_error", "assertion_error") and "input" in err:
            msg = f"{msg} (got {err['input']!r})"
        lines.append(f"  {loc}: {msg}")
    return "\n".join(lines)


def _accepted_names(model: type[BaseModel]) -> set[str]:
    names: set[str] = set()
    for name, field in model.model_fields.items():
        names.add(name)
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(c for c in alias.choices if isinstance(c, str))
    return names
