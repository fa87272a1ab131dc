"""The risk chain: run checks in config order, first veto wins, shadow checks only log.

The chain, not the checks, logs and counts, so every check (built-in or third-party) gets the
same treatment: one structured line on logger ``botcore.risk`` per veto (``risk veto check=...
shadow=... symbol=... side=... price=... qty=... reason=...``, the same fields in ``extra``) and a
counter per check name. A shadowed check (its own ``shadow`` attribute, a name in ``shadow``, or
``shadow=True`` for the whole chain) is evaluated and logged but never denies, and a shadowed
halt never pauses trading. The engine may run its own chain with these semantics; this one is
what the built-in checks are tested under.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from botcore.contracts import RiskCheck, StrategyContext
from botcore.model import Fill, OrderRequest, plain

log = logging.getLogger("botcore.risk")


class RiskChain:
    """Ordered checks with per-check and global shadow mode, veto counters and halt polling."""

    def __init__(self, checks: Sequence[RiskCheck], shadow: bool | Iterable[str] = False) -> None:
        self.checks: list[RiskCheck] = list(checks)
        self.global_shadow = shadow is True
        self.shadow_names: frozenset[str] = frozenset() if isinstance(shadow, bool) else frozenset(shadow)
        self.vetoes: Counter[str] = Counter()
        self.shadow_vetoes: Counter[str] = Counter()
        self._halts: dict[str, str] = {}  # check name -> reason currently reported

    def is_shadow(self, check: RiskCheck) -> bool:
        return self.global_shadow or check.name in self.shadow_names or bool(getattr(check, "shadow", False))

    def check(self, order: OrderRequest, ctx: StrategyContext) -> str | None:
        """``"<check>: <reason>"`` of the first non-shadow veto, else None."""
        for c in self.checks:
            reason = c.check(order, ctx)
            if reason is None:
                continue
            shadow = self.is_shadow(c)
            (self.shadow_vetoes if shadow else self.vetoes)[c.name] += 1
            _log_veto(c.name, shadow, order, reason)
            if not shadow:
                return f"{c.name}: {reason}"
        return None

    def order_sent(self, order: OrderRequest, ctx: StrategyContext) -> None:
        """``order`` went out (as the engine reports it after the hand-off): checks that count
        sent orders (``order_rate``) count it."""
        self._tell("order_sent", order, ctx)

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> None:
        self._tell("on_fill", fill, ctx)

    def _tell(self, hook: str, what: Any, ctx: StrategyContext) -> None:
        """Call the optional extra ``hook`` of every check that has it."""
        for c in self.checks:
            extra = getattr(c, hook, None)
            if extra is not None:
                extra(what, ctx)

    def halted(self, ctx: StrategyContext) -> str | None:
        """The first non-shadow halt reason; every halt start/end is logged once."""
        first: str | None = None
        for c in self.checks:
            poll = getattr(c, "halted", None)
            if poll is None:
                continue
            reason = poll(ctx)
            shadow = self.is_shadow(c)
            before = self._halts.get(c.name)
            if reason is not None and before is None:
                self._halts[c.name] = reason
                log.warning(
                    "risk halted check=%s shadow=%s reason=%r",
                    c.name,
                    str(shadow).lower(),
                    reason,
                    extra={"risk_check": c.name, "risk_shadow": shadow, "risk_reason": reason},
                )
            elif reason is None and before is not None:
                del self._halts[c.name]
                log.warning("risk halt lifted check=%s shadow=%s", c.name, str(shadow).lower())
            if reason is not None and not shadow and first is None:
                first = f"{c.name}: {reason}"
        return first

    def stats(self) -> dict[str, Any]:
        return {
            "vetoes": dict(self.vetoes),
            "shadow_vetoes": dict(self.shadow_vetoes),
            "halted": dict(self._halts),
        }


def _log_veto(name: str, shadow: bool, order: OrderRequest, reason: str) -> None:
    price = plain(order.price) if order.price is not None else "MARKET"
    log.log(
        logging.INFO if shadow else logging.WARNING,
        "risk veto check=%s shadow=%s symbol=%s side=%s price=%s qty=%s strategy=%s cid=%s reason=%r",
        name,
        str(shadow).lower(),
        order.symbol,
        order.side,
        price,
        plain(order.qty),
        order.strategy,
        order.client_order_id,
        reason,
        extra={
            "risk_check": name,
            "risk_shadow": shadow,
            "risk_reason": reason,
            "symbol": order.symbol,
            "side": str(order.side),
            "price": price,
            "qty": plain(order.qty),
        },
    )
