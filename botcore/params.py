"""Building blocks for plugin parameter models (strategy ``params:``, risk-check ``params:``).

Plugins validate their own YAML blocks with pydantic; these annotated types keep the rules the
same everywhere: money is ``Decimal`` (YAML floats are read through ``str``, so ``0.1`` stays the
decimal 0.1), and durations are seconds or ``"200ms"``/``"5s"``/``"2m"``/``"1h"``, held as integer
nanoseconds (the engine clock's unit).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000

_DURATION_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_NS = {"ms": NS_PER_MS, "s": NS_PER_S, "m": 60 * NS_PER_S, "h": 3600 * NS_PER_S, None: NS_PER_S}


def parse_duration_ns(value: Any) -> int:
    """Seconds (int/float/Decimal) or ``"<number><ms|s|m|h>"`` -> integer nanoseconds (>= 0)."""
    if isinstance(value, bool):
        raise ValueError("expected a duration (seconds, or a string like '200ms', '5s', '2m')")
    if isinstance(value, int | float | Decimal):
        try:
            seconds = Decimal(str(value))
        except InvalidOperation as exc:
            raise ValueError(f"expected a duration, got {value!r}") from exc
        if not seconds.is_finite() or seconds < 0:
            raise ValueError(f"duration must be a finite number of seconds >= 0, got {value!r}")
        return int(seconds * NS_PER_S)
    if isinstance(value, str):
        m = _DURATION_RE.match(value)
        if m is None:
            raise ValueError(f"expected a duration like '200ms', '5s', '2m', '1h' or seconds, got {value!r}")
        return int(Decimal(m.group(1)) * _UNIT_NS[m.group(2)])
    raise ValueError(f"expected a duration (seconds, or a string like '5s'), got {value!r}")


def ns_to_seconds(ns: int) -> Decimal:
    return Decimal(ns).scaleb(-9).normalize()


def float_as_decimal_text(value: Any) -> Any:
    """Read floats through ``str`` (YAML ``0.1`` means the decimal 0.1, not the nearest binary)."""
    return str(value) if isinstance(value, float) else value


DurationNs = Annotated[int, BeforeValidator(parse_duration_ns), PlainSerializer(ns_to_seconds)]
"""A duration held as integer nanoseconds."""
