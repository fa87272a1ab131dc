"""Client order ids and the order tracker (the engine's record of every order it sent).

Every order is tracked *before* it is handed to the gateway, under a deterministic client order
id, so any answer (REST ack, user-stream report, query) can be matched to it and a restarted bot
can recognise its own orders on the venue. The tracker is a state machine over
``model.OrderStatus`` with an explicit transition table: reports can arrive in any order (the
user stream often beats the REST ack; an ack can arrive after the fill), so an update that would
move an order *backwards* is recognised as stale and ignored, cumulative filled quantity only
grows, and a transition the table does not allow is counted and logged, never applied.

Single writer: only the engine thread calls the mutating methods (``owner_check`` lets tests
prove it).
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Final

from botcore.model import (
    TERMINAL_ORDER_STATUSES,
    ExecutionReport,
    OrderOutcome,
    OrderRequest,
    OrderStatus,
    Side,
)

log = logging.getLogger(__name__)

S = OrderStatus

# ------------------------------------------------------------------------------------------------
# Client order ids
# ------------------------------------------------------------------------------------------------

CLIENT_ID_RE: Final = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
"""What Binance accepts for ``newClientOrderId``."""

_RUN_RE: Final = re.compile(r"^[A-Za-z0-9]{1,20}$")


class ClientOrderIds:
    """Deterministic ids ``<prefix><run_id>-<seq>``, e.g. ``bc7f3k2a-17``.

    The id is a pure function of ``(run_id, seq)``: a restart with the same run id can rebuild
    and recognise every id it may have used, and ``parse`` tells our orders from anyone else's.
    ``seq`` is written in base 10 so ids sort naturally in logs.
    """

    __slots__ = ("prefix", "run_id", "seq", "_head")

    def __init__(self, run_id: str, prefix: str = "bc", start: int = 0) -> None:
        if not _RUN_RE.match(run_id):
            raise ValueError(f"run id {run_id!r} must be 1-20 letters/digits")
        # ':' and '/' are legal in Binance ids but are percent-encoded on the wire, so the signed
        # bytes would differ from the sent ones in some clients: keep ids to URL-safe characters.
        if not re.match(r"^[A-Za-z0-9._]{0,8}$", prefix):
            raise ValueError(f"client id prefix {prefix!r} must be <= 8 chars of [A-Za-z0-9._]")
        self.prefix = prefix
        self.run_id = run_id
        self.seq = start
        self._head = f"{prefix}{run_id}-"

    def make(self, seq: int) -> str:
        """The id for ``seq`` (no state change)."""
        cid = f"{self._head}{seq}"
        if len(cid) > 36:
            raise ValueError(f"client order id {cid!r} longer than 36 chars")
        return cid

    def next(self) -> str:
        """Allocate the next id of this run."""
        self.seq += 1
        return f"{self._head}{self.seq}"

    def parse(self, cid: str) -> int | None:
        """The sequence number if ``cid`` was made by this run, else None."""
        if not cid.startswith(self._head):
            return None
        tail = cid[len(self._head) :]
        return int(tail) if tail.isdigit() and (tail == "0" or tail[0] != "0") else None

    def is_ours(self, cid: str) -> bool:
        return self.parse(cid) is not None


# ------------------------------------------------------------------------------------------------
# Tracked orders and the transition table
# ------------------------------------------------------------------------------------------------

_FILL_OR_END = frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED, S.EXPIRED_IN_MATCH})

ALLOWED: Final[dict[OrderStatus, frozenset[OrderStatus]]] = {
    S.PENDING_NEW: frozenset({S.NEW, S.REJECTED, S.UNKNOWN}) | _FILL_OR_END,
    S.NEW: frozenset({S.PENDING_CANCEL, S.UNKNOWN}) | _FILL_OR_END,
    S.PARTIALLY_FILLED: frozenset({S.PENDING_CANCEL, S.UNKNOWN}) | _FILL_OR_END,
    # NEW / PARTIALLY_FILLED from PENDING_CANCEL only through ``on_cancel_rejected``.
    S.PENDING_CANCEL: frozenset({S.NEW, S.UNKNOWN}) | _FILL_OR_END,
    # A query (or a report) may reveal anything.
    S.UNKNOWN: frozenset({S.NEW, S.REJECTED}) | _FILL_OR_END,
    S.FILLED: frozenset(),
    S.CANCELED: frozenset(),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
    S.EXPIRED_IN_MATCH: frozenset(),
}
"""Legal status changes (self-transitions are updates, not changes)."""

# How far along its life a venue status says an order is: an update ranked below the order's
# current rank is stale (it was overtaken by a newer report). Local overlay states
# (PENDING_CANCEL, UNKNOWN) are handled explicitly.
_RANK: Final = {
    S.PENDING_NEW: 0,
    S.NEW: 1,
    S.PARTIALLY_FILLED: 2,
    S.FILLED: 3,
    S.CANCELED: 3,
    S.REJECTED: 3,
    S.EXPIRED: 3,
    S.EXPIRED_IN_MATCH: 3,
}

LIVE_STATUSES: Final = frozenset({S.PENDING_NEW, S.NEW, S.PARTIALLY_FILLED, S.PENDING_CANCEL, S.UNKNOWN})
"""Count against live-order limits: the venue may have (or soon have) the order."""

QUOTING_STATUSES: Final = frozenset({S.PENDING_NEW, S.NEW, S.PARTIALLY_FILLED})
"""Orders a quote diff may keep (not being cancelled, not in doubt)."""

# Enum member access (``S.NEW``) is a descriptor call on Python 3.11 (~10x a global read); the
# methods below run for every order, so they read these module constants instead.
_PENDING_NEW, _NEW, _PARTIALLY_FILLED = S.PENDING_NEW, S.NEW, S.PARTIALLY_FILLED
_PENDING_CANCEL, _UNKNOWN = S.PENDING_CANCEL, S.UNKNOWN
_ZERO = Decimal(0)

# Result codes of the mutating methods.
APPLIED: Final = 0
"""The order changed (status and/or cumulative quantity)."""
DUPLICATE: Final = 1
"""Nothing new (same status, same quantity)."""
STALE: Final = 2
"""Older than what we know (out-of-order arrival); ignored."""
ILLEGAL: Final = 3
"""Not allowed by the transition table; counted and logged, not applied."""
FOREIGN: Final = 4
"""Not an order this tracker knows."""


class TrackedOrder:
    """The engine's mutable record of one order (engine thread only)."""

    __slots__ = (
        "client_order_id",
        "symbol",
        "side",
        "price",
        "qty",
        "strategy",
        "level",
        "tag",
        "status",
        "order_id",
        "cum_qty",
        "created_ns",
        "updated_ns",
        "venue_time_ms",
        "cancel_wanted",
        "query_pending",
        "query_attempts",
        "unknown_since_ns",
        "error",
    )

    def __init__(self, request: OrderRequest, level: int, now_ns: int) -> None:
        self.client_order_id = request.client_order_id
        self.symbol = request.symbol
        self.side: Side = request.side
        self.price: Decimal = request.price if request.price is not None else Decimal(0)
        self.qty: Decimal = request.qty
        self.strategy = request.strategy
        self.level = level
        self.tag = request.tag
        self.status: OrderStatus = _PENDING_NEW
        self.order_id = 0
        self.cum_qty = _ZERO
        self.created_ns = now_ns
        self.updated_ns = now_ns
        self.venue_time_ms = 0
        self.cancel_wanted = False  # cancel once the venue has acknowledged it
        self.query_pending = False
        self.query_attempts = 0
        self.unknown_since_ns = 0
        self.error = ""

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.cum_qty

    def __repr__(self) -> str:
        return (
            f"TrackedOrder({self.client_order_id} {self.symbol} {self.side} {self.qty}@{self.price} "
            f"{self.status} cum={self.cum_qty})"
        )


class OrderTracker:
    """All orders of a run, indexed for the engine's questions.

    ``history`` bounds how many finished orders are remembered (so late reports for them are
    recognised as stale rather than foreign).

    ``version`` grows whenever a live order comes, goes, or changes status or filled quantity:
    readers that derive something from the live orders (the engine's read-only order views for
    strategies) compare one integer instead of walking them on every tick.
    """

    def __init__(
        self,
        history: int = 10_000,
        clock: Callable[[], int] | None = None,
        owner_check: Callable[[], None] | None = None,
    ) -> None:
        import time

        self._clock = clock or time.monotonic_ns
        self._owner_check = owner_check
        self._orders: dict[str, TrackedOrder] = {}  # live orders by client id
        self._by_key: dict[tuple[str, str], dict[str, TrackedOrder]] = {}  # (symbol, strategy) -> live
        self._done: OrderedDict[str, TrackedOrder] = OrderedDict()
        self._history = history
        self.illegal = 0
        self.stale = 0
        self.foreign = 0
        self.version = 0

    # --- queries -------------------------------------------------------------------------------
    def get(self, cid: str) -> TrackedOrder | None:
        o = self._orders.get(cid)
        return o if o is not None else self._done.get(cid)

    def live(self, symbol: str | None = None, strategy: str | None = None) -> list[TrackedOrder]:
        """Live orders, optionally filtered (a copy: safe to mutate the tracker while iterating)."""
        if symbol is not None and strategy is not None:
            return list(self._by_key.get((symbol, strategy), {}).values())
        return [
            o
            for o in self._orders.values()
            if (symbol is None or o.symbol == symbol) and (strategy is None or o.strategy == strategy)
        ]

    def live_map(self, symbol: str, strategy: str) -> dict[str, TrackedOrder]:
        """The live-order dict of one (symbol, strategy): hot path, do not mutate."""
        return self._by_key.get((symbol, strategy), _EMPTY)

    def live_count(self, symbol: str | None = None) -> int:
        if symbol is None:
            return len(self._orders)
        return sum(1 for o in self._orders.values() if o.symbol == symbol)

    def unknown(self) -> list[TrackedOrder]:
        return [o for o in self._orders.values() if o.status is S.UNKNOWN]

    def __iter__(self) -> Iterator[TrackedOrder]:
        yield from self._orders.values()
        yield from self._done.values()

    def __len__(self) -> int:
        return len(self._orders) + len(self._done)

    # --- mutations -----------------------------------------------------------------------------
    def track(self, request: OrderRequest, level: int = 0) -> TrackedOrder:
        """Record a new order as PENDING_NEW; must happen before the gateway sees it."""
        if self._owner_check is not None:
            self._owner_check()
        cid = request.client_order_id
        if not cid:
            raise ValueError("order has no client order id")
        if cid in self._orders or cid in self._done:
            raise ValueError(f"client order id {cid} already used")
        o = TrackedOrder(request, level, self._clock())
        self._orders[cid] = o
        key = (o.symbol, o.strategy)
        bucket = self._by_key.get(key)
        if bucket is None:
            bucket = self._by_key[key] = {}
        bucket[cid] = o
        self.version += 1
        return o

    def request_cancel(self, cid: str) -> bool:
        """NEW/PARTIALLY_FILLED -> PENDING_CANCEL; returns True if a cancel should be sent now.

        An order the venue has not acknowledged yet (PENDING_NEW) or whose state is in doubt
        (UNKNOWN) is only *marked*: a cancel racing ahead of its order would be rejected as
        unknown and the order would then rest unmanaged. The engine sends the cancel once the
        order's state is known (``cancel_wanted``).
        """
        o = self._orders.get(cid)
        if o is None:
            return False
        status = o.status
        if status is _NEW or status is _PARTIALLY_FILLED:
            return self._set(o, _PENDING_CANCEL, "cancel requested") == APPLIED
        if status is _PENDING_NEW or status is _UNKNOWN:
            o.cancel_wanted = True
        return False

    def mark_unknown(self, cid: str, reason: str) -> int:
        o = self._orders.get(cid)
        if o is None:
            return FOREIGN if cid not in self._done else STALE
        if o.status is S.UNKNOWN:
            return DUPLICATE
        code = self._set(o, S.UNKNOWN, reason)
        if code == APPLIED:
            o.unknown_since_ns = o.updated_ns
        return code

    def on_cancel_rejected(self, cid: str, reason: str) -> int:
        """The venue refused a cancel: PENDING_CANCEL -> NEW or PARTIALLY_FILLED."""
        o = self._orders.get(cid)
        if o is None:
            return STALE if cid in self._done else FOREIGN
        if o.status is not S.PENDING_CANCEL:
            return STALE
        return self._set(o, S.PARTIALLY_FILLED if o.cum_qty > 0 else S.NEW, reason)

    def on_report(self, report: ExecutionReport) -> int:
        """Apply a user-stream execution report."""
        return self._update(
            report.client_order_id, report.status, report.cum_qty, report.order_id, report.transaction_time_ms
        )

    def on_outcome(self, outcome: OrderOutcome) -> int:
        """Apply a gateway outcome (new ack/reject, cancel result, query answer).

        The caller handles the cases that need a decision, not just a state change: a rejected
        cancel (``on_cancel_rejected`` or a query), an "order does not exist" query answer.
        """
        return self._update(
            outcome.client_order_id, outcome.status, outcome.cum_qty, outcome.order_id, 0, outcome.error_msg
        )

    def force(self, cid: str, status: OrderStatus, reason: str) -> int:
        """Set a status the table allows regardless of rank (e.g. REJECTED after "no such order")."""
        o = self._orders.get(cid)
        if o is None:
            return STALE if cid in self._done else FOREIGN
        return self._set(o, status, reason)

    # --- internals -----------------------------------------------------------------------------
    def _update(
        self,
        cid: str,
        status: OrderStatus,
        cum_qty: Decimal,
        order_id: int,
        venue_time_ms: int,
        error: str = "",
    ) -> int:
        if self._owner_check is not None:
            self._owner_check()
        if type(status) is not OrderStatus:
            status = OrderStatus(status)
        o = self._orders.get(cid)
        if o is None:
            done = self._done.get(cid)
            if done is None:
                self.foreign += 1
                return FOREIGN
            # Finished already: keep cum monotonic (a late fill report), never reopen.
            if cum_qty > done.cum_qty:
                done.cum_qty = cum_qty
            if status is not done.status:
                self.stale += 1
                return STALE
            return DUPLICATE
        if order_id and not o.order_id:
            o.order_id = order_id
        if venue_time_ms > o.venue_time_ms:
            o.venue_time_ms = venue_time_ms
        grew = cum_qty > o.cum_qty
        if grew:
            o.cum_qty = cum_qty
            self.version += 1
        cur = o.status
        if status is cur or status is _PENDING_NEW or status is _PENDING_CANCEL:
            if grew:
                o.updated_ns = self._clock()
                return APPLIED
            return DUPLICATE
        if status is _UNKNOWN:
            code = self._set(o, _UNKNOWN, error or "outcome unknown")
            if code == APPLIED:
                o.unknown_since_ns = o.updated_ns
            return code
        if cur is _PENDING_CANCEL:
            # A fill while our cancel is in flight keeps PENDING_CANCEL (so the cancel is not sent
            # twice); only a terminal status ends it. A plain NEW here is a late ack, not a
            # rejected cancel (that arrives through ``on_cancel_rejected``).
            if status is _NEW or status is _PARTIALLY_FILLED:
                if grew:
                    o.updated_ns = self._clock()
                    return APPLIED
                self.stale += 1
                return STALE
            return self._set(o, status, error)
        if cur is not _UNKNOWN and _RANK[status] < _RANK[cur]:
            self.stale += 1  # e.g. the REST ack (NEW) after the stream's PARTIALLY_FILLED
            return STALE
        if error:
            o.error = error
        return self._set(o, status, error)

    def _set(self, o: TrackedOrder, status: OrderStatus, reason: str) -> int:
        if self._owner_check is not None:
            self._owner_check()
        cur = o.status
        if status is cur:
            return DUPLICATE
        if status not in ALLOWED[cur]:
            self.illegal += 1
            log.warning(
                "illegal order transition %s: %s -> %s (%s); ignored", o.client_order_id, cur, status, reason
            )
            return ILLEGAL
        o.status = status
        o.updated_ns = self._clock()
        self.version += 1
        if status in TERMINAL_ORDER_STATUSES:
            self._retire(o)
        return APPLIED

    def _retire(self, o: TrackedOrder) -> None:
        cid = o.client_order_id
        self._orders.pop(cid, None)
        bucket = self._by_key.get((o.symbol, o.strategy))
        if bucket is not None:
            bucket.pop(cid, None)
        o.cancel_wanted = False
        self._done[cid] = o
        if len(self._done) > self._history:
            self._done.popitem(last=False)


_EMPTY: dict[str, TrackedOrder] = {}
