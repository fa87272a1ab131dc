"""The objects plugins provide: exchange adapters, strategies, risk checks.

Registration hooks (see ``botcore.hookspecs``) hand the host *factories*; the host calls a factory
with the plugin's config block and gets back an object satisfying one of these protocols.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

import msgspec

from botcore.events import EventSink
from botcore.model import (
    AccountSnapshot,
    BookTop,
    CancelRequest,
    ExecutionReport,
    Fill,
    Instrument,
    OpenOrder,
    OrderOutcome,
    OrderRequest,
    Quote,
)


class VenueEndpoints(msgspec.Struct, frozen=True):
    """Where an adapter reaches a venue; returned by ``botcore_start_venue`` for embedded venues.

    ``api_secret`` never appears in reprs (see ``__repr__``); ``close`` stops an embedded venue.
    A venue with an end (a replay) sets ``done``, which turns True once it has nothing more to
    offer (replay finished, or the venue process exited), so ``botcore run`` can stop by itself;
    ``progress`` gives a few plain values for the status line (the paper exchange: ``elapsed_s``
    of market time replayed, ``events``, ``done``, and ``exited`` once its process is gone).
    Both may block briefly (a loopback HTTP request); call them from the main thread, never from
    the engine thread.
    """

    rest_url: str
    stream_url: str
    ws_api_url: str
    api_key: str = ""
    api_secret: str = ""
    close: Callable[[], None] | None = None
    done: Callable[[], bool] | None = None
    progress: Callable[[], dict[str, Any]] | None = None

    def __repr__(self) -> str:
        return f"VenueEndpoints(rest_url={self.rest_url!r}, stream_url={self.stream_url!r}, ws_api_url={self.ws_api_url!r})"


@runtime_checkable
class ExchangeAdapter(Protocol):
    """The one place that knows an exchange ("the middle layer").

    Blocking REST-style methods are only ever called from worker threads (the gateway pool, the
    scheduler), never from the engine thread. Streams deliver into the ``EventSink`` given to
    ``start``: raw market frames as ``MarketFrame``, user data as ``UserEvent``, and
    trust changes as ``StreamStatus``.
    """

    name: str

    def start(self, sink: EventSink, symbols: Sequence[str]) -> None:
        """Open market and user streams for ``symbols``; return without blocking."""

    def stop(self) -> None:
        """Close streams and sessions; idempotent."""

    def exchange_info(self, symbols: Sequence[str]) -> dict[str, Instrument]: ...

    def account_snapshot(self) -> AccountSnapshot:
        """Balances and open orders from REST."""

    def open_orders(self, symbol: str | None = None) -> list[OpenOrder]: ...

    def depth_snapshot(self, symbol: str, limit: int = 1000) -> bytes:
        """Raw JSON of ``GET /api/v3/depth`` for book sync."""

    def submit(self, order: OrderRequest) -> tuple[OrderOutcome, tuple[Fill, ...]]:
        """Place one order (blocking). Never raises for venue errors: they become outcomes."""

    def cancel(self, request: CancelRequest) -> OrderOutcome: ...

    def cancel_replace(
        self, cancel: CancelRequest, new: OrderRequest
    ) -> tuple[OrderOutcome, OrderOutcome, tuple[Fill, ...]]: ...

    def query_order(self, symbol: str, client_order_id: str) -> OrderOutcome:
        """Resolve an UNKNOWN order; status REJECTED with code -2013 means it never existed."""

    def my_trades(self, symbol: str, from_id: int = 0) -> list[Fill]: ...

    def server_time_ms(self) -> int: ...


class BookView(Protocol):
    """Read-only view of one symbol's order book."""

    symbol: str

    def top(self) -> BookTop | None: ...

    def depth(self, n: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]: ...


class PositionView(Protocol):
    """Read-only view of the position cache (strategies never write it)."""

    def free(self, asset: str) -> Decimal: ...

    def locked(self, asset: str) -> Decimal: ...

    def position(self, symbol: str) -> Decimal: ...


class StrategyContext(Protocol):
    """What the engine lends a strategy: read-only state and the clock."""

    instruments: Mapping[str, Instrument]

    def book(self, symbol: str) -> BookView: ...

    @property
    def positions(self) -> PositionView: ...

    def live_orders(self, symbol: str, strategy: str) -> Sequence[Any]: ...

    def now_ns(self) -> int:
        """The engine clock (monotonic ns). While the engine decides on one top of book (the
        strategy's ``on_top`` and the risk checks of the orders it leads to), every reading is the
        decision's own: one instant for the whole decision, and one clock read instead of dozens."""

    def is_trusted(self, symbol: str) -> bool: ...

    # Freshness facts for risk checks (engine-maintained, read-only):
    def market_age_ns(self, symbol: str) -> int:
        """Nanoseconds since the last market frame for ``symbol`` (large if never), at ``now_ns()``."""

    def user_stream_age_ns(self) -> int:
        """Nanoseconds since the last private-stream event or successful (re)subscription, at ``now_ns()``."""

    def clock_skew_ms(self) -> int:
        """Estimated local-minus-venue clock offset in milliseconds."""

    def has_gap(self, symbol: str) -> bool:
        """True while a sequence gap on ``symbol`` is unresolved (book resyncing)."""


@runtime_checkable
class Strategy(Protocol):
    """A quoting strategy. All methods run on the engine thread and must not block.

    ``on_top`` returns the full set of quotes the strategy wants live for ``symbol``; the engine
    diffs it against live orders and only cancels/places what changed.
    """

    name: str
    symbols: Sequence[str]
    max_live_orders: int
    """Hard cap on this strategy's live orders per symbol, counting orders still pending a
    new/cancel acknowledgement or in UNKNOWN state; the engine enforces it."""

    def on_top(self, ctx: StrategyContext, top: BookTop) -> Sequence[Quote] | None:
        """None means "no opinion, leave orders as they are"; an empty list cancels all."""

    def on_fill(self, ctx: StrategyContext, fill: Fill) -> None: ...

    def on_order_update(self, ctx: StrategyContext, report: ExecutionReport) -> None: ...


class RehearsingStrategy(Strategy, Protocol):
    """Optional: a strategy with ``rehearse`` lets the engine keep the order path warm.

    A requote runs the strategy's, the risk chain's and the engine's order code once every few
    hundred frames, so it starts from cold CPU caches: most of its time is cache misses, not
    work (``python bench/bench_requote_phases.py``). When the engine has nothing to do
    (``Engine.idle``, at most every ``EngineConfig.rehearse_interval``) it asks ``rehearse`` for
    the quotes the strategy would want right now and walks them through the same vetting code a
    real order takes, with the ``rehearsable`` risk checks only, then drops them: nothing is
    tracked, counted, logged or sent. ``rehearse`` must not change the strategy's state.
    """

    def rehearse(self, ctx: StrategyContext, top: BookTop) -> Sequence[Quote] | None:
        """The quotes ``on_top`` would want if it requoted on ``top`` now (None: nothing to rehearse)."""


@runtime_checkable
class RiskCheck(Protocol):
    """One link of the risk chain: return a reason string to veto, None to allow.

    A check may set ``rehearsable = True`` when calling ``check`` changes nothing a later answer
    depends on (it then also runs in the engine's rehearsals, see ``RehearsingStrategy``). A check
    that counts orders (an order-rate window) counts in ``order_sent`` (``StatefulRiskCheck``), not
    in ``check``: then ``check`` stays rehearsable and the count holds only what really went out.

    A check may set ``per_decision = True`` when its answer depends only on the symbol and on
    state that cannot change while one decision's orders go out (data age at the decision's
    instant ``ctx.now_ns()``, a halt, a trust flag), never on the order itself: the engine then
    asks it for a decision's first order only, and that answer (a veto too) stands for the
    decision's other orders. Checks that look at the order or at the live orders must not.
    """

    name: str

    def check(self, order: OrderRequest, ctx: StrategyContext) -> str | None: ...


class StatefulRiskCheck(RiskCheck, Protocol):
    """Optional extras a risk check may implement; the engine calls them when present.

    ``on_fill`` lets a check follow PnL/inventory; ``halted`` is polled at event boundaries: a
    non-None reason makes the engine cancel all orders and pause quoting until it returns None.
    ``order_sent`` is called for every order handed to the gateway (whatever a shadow link said),
    before the next order of the same decision is checked; ``ctx.now_ns()`` is the decision's instant.
    """

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> None: ...

    def order_sent(self, order: OrderRequest, ctx: StrategyContext) -> None: ...

    def halted(self, ctx: StrategyContext) -> str | None: ...
