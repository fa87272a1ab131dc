"""Diff the quotes a strategy wants against the orders it has live.

Strategies state the full set of quotes they want; re-sending all of them on every tick would
burn the venue's order-rate budget (``-1015 Too many new orders``) and lose queue position. The
diff keeps every live order that already satisfies a desired quote and only cancels and places
the difference; ``pair_replacements`` then pairs a cancel and a placement on the same side into
one cancel-replace request. Pure functions: no state, no I/O, so they are table-tested.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Protocol, TypeVar

from botcore.model import Quote, Side


class LiveOrderLike(Protocol):
    """What the diff reads from a live order (``orders.TrackedOrder`` satisfies it)."""

    @property
    def side(self) -> Side: ...

    @property
    def price(self) -> Decimal: ...

    @property
    def qty(self) -> Decimal: ...


OrderT = TypeVar("OrderT", bound=LiveOrderLike)

_ZERO = Decimal(0)


def diff(
    desired: Sequence[Quote],
    live: Sequence[OrderT],
    tolerance_ticks: int = 0,
    tick_size: Decimal = _ZERO,
) -> tuple[list[OrderT], list[Quote]]:
    """Return ``(to_cancel, to_place)``.

    A live order satisfies a desired quote when it is on the same side, for the same original
    quantity, and its price is within ``tolerance_ticks * tick_size`` of the quote's price; each
    live order satisfies at most one quote (closest price wins, desired quotes are served in the
    order given, so level 0 first). Live orders satisfying no quote are cancelled; quotes no live
    order satisfies are placed, in the order given.

    ``live`` should hold only orders that may be kept (not already being cancelled, not UNKNOWN).
    """
    if not live:
        return [], list(desired)
    if not desired:
        return list(live), []
    if tolerance_ticks < 0:
        raise ValueError("tolerance_ticks must be >= 0")
    remaining = list(live)
    to_place: list[Quote] = []
    if not tolerance_ticks:
        # Exact matching (the common case, and the hot path): no Decimal arithmetic.
        for q in desired:
            side, qty, price = q.side, q.qty, q.price
            for i, o in enumerate(remaining):
                if o.price == price and o.qty == qty and o.side == side:
                    del remaining[i]
                    break
            else:
                to_place.append(q)
        return remaining, to_place
    tol = tick_size * tolerance_ticks
    for q in desired:
        side, qty, price = q.side, q.qty, q.price
        best = -1
        best_dist = _ZERO
        for i, o in enumerate(remaining):
            if o.side != side or o.qty != qty:
                continue
            dist = abs(o.price - price)
            if dist <= tol and (best < 0 or dist < best_dist):
                best, best_dist = i, dist
                if not dist:
                    break
        if best < 0:
            to_place.append(q)
        else:
            del remaining[best]
    return remaining, to_place


def pair_replacements(
    to_cancel: Sequence[OrderT],
    to_place: Sequence[Quote],
    can_replace: Callable[[OrderT], bool] | None = None,
) -> tuple[list[tuple[OrderT, Quote]], list[OrderT], list[Quote]]:
    """Pair cancels with placements on the same side: ``(pairs, cancels, places)``.

    A pair goes out as one cancel-replace request (cancel first, place only if the cancel
    worked), so it leaves on the tick instead of waiting for the cancel's answer, and it holds
    one live-order slot, not two. Placements are served in the order given (level 0 first), each
    taking the first unpaired cancel on its side that ``can_replace`` accepts (default: any);
    what is left unpaired is returned as plain cancels and placements, in their original order.
    """
    if not to_cancel or not to_place:
        return [], list(to_cancel), list(to_place)
    taken = [False] * len(to_cancel)
    pairs: list[tuple[OrderT, Quote]] = []
    places: list[Quote] = []
    for q in to_place:
        side = q.side
        for i, o in enumerate(to_cancel):
            if not taken[i] and o.side == side and (can_replace is None or can_replace(o)):
                taken[i] = True
                pairs.append((o, q))
                break
        else:
            places.append(q)
    if not pairs:
        return pairs, list(to_cancel), places
    return pairs, [o for i, o in enumerate(to_cancel) if not taken[i]], places
