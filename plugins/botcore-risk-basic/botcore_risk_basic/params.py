"""Validated parameters of the built-in risk checks (``risk.checks[].params`` in YAML).

One pydantic model per check, all refusing unknown keys: a misspelt limit must stop start-up,
never silently disable a check. Money is ``Decimal`` (YAML floats are read through ``str``);
durations accept seconds or ``"200ms"``/``"5s"``/``"2m"``/``"1h"`` and are held as nanoseconds.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from botcore.params import NS_PER_MS as NS_PER_MS  # re-exported: checks and tests use them
from botcore.params import NS_PER_S as NS_PER_S
from botcore.params import DurationNs as DurationNs
from botcore.params import float_as_decimal_text as _to_decimal
from botcore.params import parse_duration_ns as parse_duration_ns
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)


class ParamsError(ValueError):
    """Bad risk-check parameters; the message names each parameter and what it accepts."""


Dec = Annotated[Decimal, BeforeValidator(_to_decimal), Field(allow_inf_nan=False)]
PositiveDec = Annotated[Decimal, BeforeValidator(_to_decimal), Field(gt=0, allow_inf_nan=False)]
PositiveInt = Annotated[int, Field(ge=1)]


class CheckParams(BaseModel):
    """Keys every check accepts.

    ``symbols``: apply only to orders (and fills) on these symbols (default: all).
    ``name`` and ``shadow`` are not params: they sit on the ``risk.checks`` entry, next to ``type``,
    and the host sets them on the built check (one place, so a check can never be shadowed in
    one layer and enforced in another).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbols: tuple[str, ...] | None = None


class MaxPositionParams(CheckParams):
    max_position: PositiveDec
    include_open_orders: bool = False


class MaxInventoryValueParams(CheckParams):
    max_value: PositiveDec
    include_open_orders: bool = False


class MaxOrderNotionalParams(CheckParams):
    max_notional: PositiveDec


class MaxOpenOrdersParams(CheckParams):
    per_symbol: PositiveInt | None = None
    total: PositiveInt | None = None


class OrderRateParams(CheckParams):
    per_second: PositiveInt | None = None
    per_10s: PositiveInt | None = None
    exchange_orders_per_10s: PositiveInt = 100

    @model_validator(mode="after")
    def _limits(self) -> OrderRateParams:
        if self.per_second is None and self.per_10s is None:
            raise ValueError("give per_second and/or per_10s (orders allowed per sliding window)")
        if self.per_10s is not None and self.per_10s > self.exchange_orders_per_10s:
            raise ValueError(
                f"per_10s={self.per_10s} exceeds the exchange ORDERS limit "
                f"exchange_orders_per_10s={self.exchange_orders_per_10s}: the venue would answer -1015"
            )
        return self


class PriceBandParams(CheckParams):
    max_bps: PositiveDec
    allow_market: bool = False


class StaleDataParams(CheckParams):
    max_book_age: DurationNs | None = 5 * NS_PER_S
    max_user_silence: DurationNs | None = 60 * NS_PER_S
    max_clock_skew_ms: Annotated[int, Field(ge=0)] | None = 1000
    check_gaps: bool = True


class DrawdownParams(CheckParams):
    max_drawdown: PositiveDec
    resume: Literal["manual"] | None = None
    resume_after: DurationNs | None = None
    resume_equity_above: Dec | None = None

    @model_validator(mode="after")
    def _resume(self) -> DrawdownParams:
        if self.resume is not None and self.resume_after is not None:
            raise ValueError("give resume: manual or resume_after: <duration>, not both")
        if self.resume_equity_above is not None and self.resume_after is None:
            raise ValueError("resume_equity_above only applies with resume_after (automatic resume)")
        return self


class DailyLossParams(CheckParams):
    max_daily_loss: PositiveDec
    resume: Literal["next_day", "manual"] = "next_day"


P = TypeVar("P", bound=CheckParams)

_ENTRY_KEYS = ("shadow", "name", "type")


def parse(model: type[P], params: Mapping[str, Any] | None, where: str) -> P:
    """Validate ``params`` against ``model``; raise ``ParamsError`` with one line per problem."""
    try:
        return model.model_validate(dict(params or {}))
    except ValidationError as exc:
        raise ParamsError(format_errors(exc, model, where)) from None


def format_errors(exc: ValidationError, model: type[BaseModel], where: str) -> str:
    allowed = sorted(model.model_fields)
    lines = [f"{where}: invalid params"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(params)"
        msg = str(err["msg"])
        msg = msg.removeprefix("Value error, ")
        if err["type"] == "extra_forbidden" and err["loc"][0] in _ENTRY_KEYS:
            msg = (
                f"not a check parameter: put '{err['loc'][0]}' on the risk.checks entry, next to 'type' "
                f"(- {{type: ..., {err['loc'][0]}: ..., params: {{...}}}})"
            )
        elif err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(err["loc"][0]), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            msg = f"unknown parameter{hint}; allowed: {', '.join(allowed)}"
        elif err["type"] == "missing":
            msg = "required parameter is missing"
        elif err["type"] not in ("value_error", "assertion_error") and "input" in err:
            msg = f"{msg} (got {err['input']!r})"
        lines.append(f"  {loc}: {msg}")
    return "\n".join(lines)
