"""The engine: one thread that owns all trading state and turns events into orders.

Everything mutable (order books, the position cache, the order tracker, trust flags) belongs to
the engine thread. Other threads (websocket readers, gateway workers, scheduled jobs) only call
``Engine.put(event)``; the engine thread takes events off a ``queue.SimpleQueue`` one at a time
and is the only writer, so the hot path needs no locks. The engine never does network I/O: REST
work goes to the ``Gateway`` pool and comes back as events.

Per market frame (the hot path)::

    route by stream name (bytes slice of the envelope) -> BookSync -> core OrderBook
    fused top changed and quoting allowed -> strategy.on_top -> quotes_decided hook
    -> quoting.diff against live orders -> pair same-side cancel + placement (cancel-replace)
    -> cancels, replaces, new orders
    new order: client id -> risk chain -> order_check hook -> track (PENDING_NEW)
    -> order_submit hook around gateway.submit / gateway.cancel_replace (non-blocking)
    -> tick-to-order histogram

A requote that moves an order goes out as ONE cancel-replace request (Binance ``cancelReplace``,
``STOP_ON_FAILURE``: the venue cancels first and places only if the cancel worked), so the new
order leaves on the tick instead of a round trip later. Until one of them is finished, the old
order (PENDING_CANCEL) and its replacement (PENDING_NEW) are linked and hold ONE live-order
slot: the venue can never have both resting, even if the request's fate is UNKNOWN. That keeps
the rule "never more than ``max_live_orders`` live, counting orders pending or in doubt" exact.

Quoting for a symbol stops, and its live orders are cancelled, as soon as its market data or the
user stream is not trustworthy (sequence gap, reconnect, stall), or while the adapter cannot send
new orders (``"orders"`` stream: cancel-only after a 429, banned after a 418); it resumes once the
book is LIVE and order entry is open again. An order whose fate is unknown (timeout, 5xx) is
resolved by querying the venue, never by resending it.
"""

from __future__ import annotations

import gc
import heapq
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from queue import Empty, SimpleQueue
from types import MappingProxyType
from typing import Any, NamedTuple

import msgspec

from botcore.booksync import BookSync
from botcore.contracts import ExchangeAdapter, RiskCheck, Strategy
from botcore.core import OrderBook, PositionCache
from botcore.events import (
    DepthSnapshot,
    Event,
    GatewayResult,
    JobRequest,
    MarketFrame,
    ReconcileSnapshot,
    Stop,
    StreamStatus,
    UserEvent,
)
from botcore.gateway import Gateway
from botcore.metrics import Counters, LatencyHistogram, now_ns
from botcore.model import (
    AccountSnapshot,
    AccountUpdate,
    BalanceDelta,
    BookTop,
    CancelRequest,
    ExecutionReport,
    Fill,
    Instrument,
    OrderOutcome,
    OrderRequest,
    OrderStatus,
    OrderType,
    Quote,
    Side,
    TimeInForce,
    plain,
)
from botcore.orders import APPLIED, FOREIGN, QUOTING_STATUSES, ClientOrderIds, OrderTracker, TrackedOrder
from botcore.quoting import diff, pair_replacements
from botcore.reconcile import Reconciler

log = logging.getLogger(__name__)

S = OrderStatus

_ENVELOPE = b'{"stream":"'
_KIND_DEPTH, _KIND_TICKER, _KIND_TRADE, _KIND_OTHER = 0, 1, 2, 3
# Enum member access (``S.NEW``) costs ~0.2 us on Python 3.11 (a descriptor call); the hot path
# reads these module constants instead (~0.02 us).
_PENDING_NEW, _NEW, _PARTIALLY_FILLED = S.PENDING_NEW, S.NEW, S.PARTIALLY_FILLED
_PENDING_CANCEL, _UNKNOWN, _REJECTED, _CANCELED = S.PENDING_CANCEL, S.UNKNOWN, S.REJECTED, S.CANCELED
_CANCELLED_STATES = frozenset({_CANCELED, S.EXPIRED, S.EXPIRED_IN_MATCH})
# Orders a quote diff may keep. UNKNOWN is in: an order that may be resting must not be doubled by
# a fresh one at the same price; if it is no longer wanted it gets cancelled once resolved.
_DIFFABLE = QUOTING_STATUSES | {_UNKNOWN}
_ERR_UNKNOWN_ORDER = -2011  # cancel: "Unknown order sent." (already gone, or never arrived)
_ERR_NO_SUCH_ORDER = -2013  # query: "Order does not exist."
_ERR_REPLACE_FAILED = -2022  # cancelReplace: "Order cancel-replace failed." (new leg NOT_ATTEMPTED)
NEVER_NS = 1 << 62
"""Age reported for something that never happened."""
_TAGS = tuple(f"L{i}" for i in range(32))
_REHEARSAL_CID = "rehearsal"  # the client id of rehearsal orders, which are never sent


@dataclass
class EngineConfig:
    """Knobs of the engine (seconds unless stated)."""

    tolerance_ticks: int = 0
    """A live order within this many ticks of a desired quote is kept (see ``quoting.diff``)."""
    default_max_live_orders: int = 4
    """Per strategy and symbol, unless the strategy has a ``max_live_orders`` attribute."""
    snapshot_limit: int = 1000
    snapshot_min_interval: float = 1.0
    """At most one REST depth snapshot per symbol per this many seconds (weight budget)."""
    stop_timeout: float = 5.0
    """How long shutdown waits for cancel outcomes before giving up."""
    status_interval: float = 0.25
    query_retry: float = 0.5
    """First delay before re-querying an order whose query failed (doubles up to 8x)."""
    unknown_grace: float = 10.0
    """"Order does not exist" is only believed once the order's request is this old (recvWindow)."""
    halt_poll_interval: float = 0.05
    """How often stateful risk checks' ``halted()`` is polled between fills (always after one)."""
    reconcile_grace: float = 5.0
    """A reconcile only questions orders whose last change is older than this."""
    pending_timeout: float = 30.0
    """An order still waiting for its new/cancel answer after this long is queried."""
    cancel_replace: bool = True
    """Pair a cancel and a placement on the same side into one cancel-replace request (strategies
    may opt out with ``use_cancel_replace = False``; gateways without ``cancel_replace`` never pair)."""
    replace_fallback_after: int = 3
    """Consecutive cancel-replace requests refused as a whole (cancel leg rejected, not -2011)
    after which a strategy falls back to plain cancel + new for ``replace_retry_after`` seconds."""
    replace_retry_after: float = 60.0
    max_errors: int = 100
    """Handler exceptions tolerated before the engine stops itself."""
    debug_thread_check: bool = False
    """Assert that every mutation of books, positions and orders happens on the engine thread."""
    gc_freeze: bool = True
    """While ``run`` runs: everything allocated before it (config, plugins, books, instruments) is
    moved out of the cyclic collector's reach (``gc.freeze()``), and the generation-0 threshold is
    raised to ``gc_gen0_threshold``, so collections are rarer and only scan what the run allocates:
    fewer pauses inside tick-to-order (see bench/bench_engine.py ``direct+freeze``). Undone when
    ``run`` returns. Process-wide: with several engines, the first start and last stop decide."""
    gc_gen0_threshold: int = 50_000
    rehearse_interval: float | None = 0.001
    """While idle, walk the strategies' current quotes through the order path at most this often
    (engine clock, seconds) so a requote finds its code and data in the CPU caches; None: never.
    See ``contracts.RehearsingStrategy`` and ``Engine.idle``."""
    cpu: int | None = None
    """While ``run`` runs, the engine thread runs on this CPU only (Linux ``sched_setaffinity``;
    the YAML's ``engine.cpu``). A thread the scheduler moves to another core starts its next
    decision with that core's cold caches; a pinned one keeps its own. None: wherever the OS
    puts it. See ``cpu_policy``. On Linux a thread inherits the affinity of the thread that
    starts it: a worker the engine thread starts while pinned shares the engine's CPU, so
    plugins start their workers before the run (the built-in services do, in ``botcore_startup``)."""


class RiskLink(NamedTuple):
    """One link of the risk chain; a shadow link logs its veto but lets the order through."""

    name: str
    check: RiskCheck
    shadow: bool = False


class _ChainStep:
    """A link of the risk chain as ``Engine._vetted_order`` runs it. A ``per_decision`` check
    (``contracts.RiskCheck``) is asked once per decision: its answer for the decision's first order
    stands for the decision's other orders (``decision`` tells which decision ``answer`` is from)."""

    __slots__ = ("link", "once", "decision", "answer")

    def __init__(self, link: RiskLink) -> None:
        self.link = link
        self.once = getattr(link.check, "per_decision", False) is True
        self.decision = 0
        self.answer: str | None = None


class OrderView(msgspec.Struct, frozen=True):
    """Read-only copy of a live order, for strategies."""

    client_order_id: str
    symbol: str
    strategy: str
    side: Side
    price: Decimal
    qty: Decimal
    cum_qty: Decimal
    status: OrderStatus
    level: int
    created_ns: int

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.cum_qty


class _BookView:
    """Read-only window on one book (``contracts.BookView``)."""

    __slots__ = ("symbol", "_sync", "_top")

    def __init__(self, symbol: str, sync: BookSync) -> None:
        self.symbol = symbol
        self._sync = sync
        self._top: BookTop | None = None  # the engine's own top while it quotes this book

    def top(self) -> BookTop | None:
        """The fused top of a trusted book; None while it is syncing."""
        top = self._top
        if top is not None:  # set only inside ``Engine._quote``: the book cannot change meanwhile
            return top
        if not self._sync.trusted:
            return None
        bp, bq, ap, aq = self._sync.top()
        return BookTop(self.symbol, bp, bq, ap, aq, self._sync.book.last_update_id)

    def depth(self, n: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        bids, asks = self._sync.book.depth(n)
        return list(bids), list(asks)


class _Context:
    """The ``contracts.StrategyContext`` the engine lends strategies (read-only)."""

    __slots__ = ("instruments", "_engine", "_views", "_positions", "_order_views")

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.instruments: Mapping[str, Instrument] = MappingProxyType(dict(engine.instruments))
        self._views = {s: _BookView(s, sync) for s, sync in engine._syncs.items()}
        self._positions = engine._positions.view()
        # (symbol, strategy) -> [views, [(order, status, cum_qty) they were made from], tracker version]
        self._order_views: dict[tuple[str, str], list[Any]] = {}

    def book(self, symbol: str) -> _BookView:
        return self._views[symbol]

    @property
    def positions(self) -> Any:
        return self._positions

    def live_orders(self, symbol: str, strategy: str) -> tuple[OrderView, ...]:
        """Read-only copies, rebuilt only when an order came, went, or changed status or filled
        quantity (most ticks change nothing: the strategy asks on every one). The tracker's
        ``version`` says in O(1) that no order changed at all; else the copies' sources are compared."""
        tracker = self._engine._tracker
        version = tracker.version
        key = (symbol, strategy)
        cached = self._order_views.get(key)
        if cached is not None and cached[2] == version:
            return cached[0]  # type: ignore[no-any-return]
        live = tracker.live_map(symbol, strategy)
        if cached is not None and len(cached[1]) == len(live):
            for (o, status, cum), now in zip(cached[1], live.values(), strict=True):
                if o is not now or o.status is not status or o.cum_qty is not cum:
                    break
            else:
                cached[2] = version
                return cached[0]  # type: ignore[no-any-return]
        views = tuple(
            OrderView(
                o.client_order_id,
                o.symbol,
                o.strategy,
                o.side,
                o.price,
                o.qty,
                o.cum_qty,
                o.status,
                o.level,
                o.created_ns,
            )
            for o in live.values()
        )
        self._order_views[key] = [views, [(o, o.status, o.cum_qty) for o in live.values()], version]
        return views

    def live_order_count(self, symbol: str | None = None) -> int:
        """This run's live orders (all strategies) as they count against venue limits such as
        MAX_NUM_ORDERS: a cancel-replace pair is one, and while a replacement is being checked the
        order it replaces is not counted (the venue cancels it before placing the new one)."""
        eng = self._engine
        tracker = eng._tracker
        n = tracker.live_count(symbol)
        for new, old in eng._replaces.items():
            a, b = tracker.get(new), tracker.get(old)
            if a is not None and b is not None and a.is_live and b.is_live and symbol in (None, a.symbol):
                n -= 1
        vetting = eng._vetting_replace
        if vetting is not None and symbol in (None, vetting.symbol):
            n -= 1
        return n

    def now_ns(self) -> int:
        eng = self._engine
        return eng._decision_ns or eng._clock()

    def is_trusted(self, symbol: str) -> bool:
        return self._engine._quoting.get(symbol, False)

    # freshness facts for risk checks
    def market_age_ns(self, symbol: str) -> int:
        eng = self._engine
        sync = eng._syncs.get(symbol)
        if sync is None or not sync.last_recv_ns:
            return NEVER_NS
        return (eng._decision_ns or eng._clock()) - sync.last_recv_ns

    def user_stream_age_ns(self) -> int:
        eng = self._engine
        last = eng._user_last_ns
        return (eng._decision_ns or eng._clock()) - last if last else NEVER_NS

    def clock_skew_ms(self) -> int:
        return self._engine._clock_skew_ms

    def has_gap(self, symbol: str) -> bool:
        """True while the book is not LIVE (resyncing after a gap, a reconnect, or not yet synced)."""
        sync = self._engine._syncs.get(symbol)
        return sync is None or not sync.trusted


class ThreadGuard:
    """Debug proxy: every method call on the wrapped object must come from the owner thread."""

    __slots__ = ("_obj", "_check")

    def __init__(self, obj: Any, check: Callable[[], None]) -> None:
        object.__setattr__(self, "_obj", obj)
        object.__setattr__(self, "_check", check)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._obj, name)
        if not callable(attr):
            return attr
        check = self._check

        def guarded(*args: Any, **kwargs: Any) -> Any:
            check()
            return attr(*args, **kwargs)

        return guarded

    def __setattr__(self, name: str, value: Any) -> None:
        self._check()
        setattr(self._obj, name, value)


class Engine:
    """The single-writer event loop. ``put`` is the only method other threads may call.

    :param instruments: every symbol the engine books (usually the exchange's symbols).
    :param strategies: strategy objects (``contracts.Strategy``); each quotes its ``symbols``.
    :param risk_checks: the risk chain, in order (``RiskCheck`` or ``RiskLink`` for shadow mode).
    :param adapter: the exchange adapter; a ``Gateway`` is built over it unless ``gateway`` given.
    :param gateway: anything with the ``Gateway`` methods (tests pass fakes).
    :param hooks: a ``botcore.plugins.Hooks`` facade, or None for no plugins.
    :param positions: the position cache (default: a new ``core.PositionCache``).
    :param run_id: goes into every client order id (see ``orders.ClientOrderIds``).
    :param reconciler: applies ``ReconcileSnapshot``s under its drift policy (default: the
        ``reconcile.Reconciler`` found in the risk chain, if any; else every drift is corrected).
        Put it in the risk chain too, so that a "halt" drift pauses quoting.
    """

    def __init__(
        self,
        instruments: Mapping[str, Instrument],
        strategies: Sequence[Strategy] = (),
        risk_checks: Sequence[RiskCheck | RiskLink] = (),
        *,
        adapter: ExchangeAdapter | None = None,
        gateway: Any = None,
        hooks: Any = None,
        positions: Any = None,
        run_id: str = "r0",
        config: EngineConfig | None = None,
        clock: Callable[[], int] = now_ns,
        gateway_workers: int = 4,
        reconciler: Reconciler | None = None,
    ) -> None:
        self.config = cfg = config or EngineConfig()
        self._clock = clock
        self._queue: SimpleQueue[Event] = SimpleQueue()
        self._owner: int | None = None
        self._thread: threading.Thread | None = None
        self._started_ns = 0
        check = self._check_owner if cfg.debug_thread_check else None

        self.instruments: dict[str, Instrument] = dict(instruments)
        self.strategies: list[Strategy] = list(strategies)
        names = [s.name for s in self.strategies]
        if len(set(names)) != len(names):
            raise ValueError(f"strategy names must be unique: {names}")
        for strat in self.strategies:
            for sym in strat.symbols:
                if sym not in self.instruments:
                    raise ValueError(f"strategy {strat.name!r} quotes {sym}, which has no instrument")
        self._strategy_by_name = {s.name: s for s in self.strategies}
        self._by_symbol: dict[str, list[Strategy]] = {s: [] for s in self.instruments}
        for strat in self.strategies:
            for sym in strat.symbols:
                self._by_symbol[sym].append(strat)
        self._max_live = {
            s.name: int(getattr(s, "max_live_orders", None) or cfg.default_max_live_orders)
            for s in self.strategies
        }
        self._order_type: dict[str, tuple[OrderType, TimeInForce | None]] = {}
        for s in self.strategies:
            otype = OrderType(getattr(s, "order_type", None) or OrderType.LIMIT_MAKER)
            tif = getattr(s, "time_in_force", None)
            if tif is None and otype is OrderType.LIMIT:
                tif = TimeInForce.GTC  # Binance requires it for LIMIT
            self._order_type[s.name] = (otype, TimeInForce(tif) if tif is not None else None)
        self._risk: list[RiskLink] = [
            r if isinstance(r, RiskLink) else RiskLink(getattr(r, "name", type(r).__name__), r)
            for r in risk_checks
        ]
        self._fill_watchers = [r for r in self._risk if callable(getattr(r.check, "on_fill", None))]
        self._send_watchers = [r for r in self._risk if callable(getattr(r.check, "order_sent", None))]
        self._halt_checks = [r for r in self._risk if callable(getattr(r.check, "halted", None))]
        # (step, check, once) per link, unpacked by ``_vetted_order`` instead of read by name: a
        # tuple's items cost the compiled loop next to nothing, an object's attributes do not.
        self._steps = [(s, s.link.check, s.once) for s in map(_ChainStep, self._risk)]
        self._rehearsal_steps = [t for t in self._steps if getattr(t[1], "rehearsable", False) is True]
        self._rehearsers = [s for s in self.strategies if callable(getattr(s, "rehearse", None))]
        self._next_rehearsal = 0
        if reconciler is None:  # the chain's reconcile_guard is the run's Reconciler
            reconciler = next((r.check for r in self._risk if isinstance(r.check, Reconciler)), None)
        self._reconciler: Reconciler | None = reconciler

        # --- state (engine thread only) ------------------------------------------------------------
        positions = positions if positions is not None else PositionCache()
        for inst in self.instruments.values():
            positions.add_instrument(inst)
        self._positions = ThreadGuard(positions, check) if check else positions
        self._tracker = OrderTracker(clock=clock, owner_check=check)
        self._stand_in = OrderTracker(history=0, clock=clock)  # the rehearsals' tracker, never read
        self._ids = ClientOrderIds(run_id)
        self._syncs: dict[str, BookSync] = {}
        for sym, inst in self.instruments.items():
            book: Any = OrderBook(sym, inst.price_precision, inst.qty_precision)
            if check:
                book = ThreadGuard(book, check)
            self._syncs[sym] = BookSync(sym, book, self._request_snapshot, self._on_book_trust)
        self._routes: dict[bytes, tuple[int, BookSync | None]] = {}
        self._market_ok = dict.fromkeys(self.instruments, True)
        self._user_ok = True
        self._orders_ok = True  # False while the adapter reports new orders refused (429/418)
        self._submitted: list[OrderRequest] = []  # handed over, order_submitted hooks pending
        # (handed over, frame received, decision began) per order of this decision: recorded after it
        self._handoffs: list[tuple[int, int, int]] = []
        self._quoting = dict.fromkeys(self.instruments, False)
        self._last_quotes: dict[tuple[str, str], Sequence[Quote]] = {}
        self._shortfall: set[tuple[str, str]] = set()
        self._snap_last: dict[str, int] = {}
        self._snap_timer: set[str] = set()
        self._timers: list[tuple[int, int, Callable[..., None], tuple[Any, ...]]] = []
        self._timer_seq = 0
        self._job_handlers: dict[str, Callable[[Engine, dict[str, Any]], None]] = {}
        # Cancel-replace pairs whose both legs may still be live: new cid -> old cid, and back.
        self._replaces: dict[str, str] = {}
        self._replaced_by: dict[str, str] = {}
        self._replace_cancel: CancelRequest | None = None  # the cancel leg during an order_submit hook
        self._vetting_replace: TrackedOrder | None = None  # the order being replaced, while risk checks run
        self._halted: str | None = None  # reason while a stateful risk check halts trading
        self._shadow_halts: set[str] = set()
        self._user_last_ns = 0
        self._clock_skew_ms = 0
        self._running = False
        self._stopping = False
        self._stop_reason = ""
        self._stop_deadline = 0
        self._errors = 0
        self._handoff_ns = 0
        self._next_status = 0
        self._next_halt_poll = 0

        # --- metrics (engine thread writes; status() publishes copies) -------------------------
        self.tick_to_order = LatencyHistogram()
        # The part of tick-to-order before the strategy runs: the frame waiting in the queue (reader
        # thread -> engine thread) plus the book update. The rest is the engine's decision path.
        self.tick_wait = LatencyHistogram()
        self._decision_ns = 0  # the clock reading ctx.now_ns() answers while a decision runs, else 0
        self._decisions = 0  # decisions so far (real and rehearsed): the per-decision checks' key
        self._decision = 0  # the decision whose orders are being vetted, else 0
        self.counters = Counters()
        self.vetoes = Counters()
        self.shadow_vetoes = Counters()
        self.n_events = 0
        self.n_frames = 0
        self.n_trades = 0
        self.n_quotes = 0
        self.n_rehearsals = 0
        self.n_orders = 0
        self.n_cancels = 0
        self.n_replaces = 0
        self.n_fills = 0
        self._status: dict[str, Any] = {}

        # --- collaborators -------------------------------------------------------------------------
        if gateway is None:
            if adapter is None:
                raise ValueError("give an adapter or a gateway")
            gateway = Gateway(adapter, self, max_workers=gateway_workers, clock=clock)
        self.gateway = gateway
        self.adapter = adapter
        can_replace = cfg.cancel_replace and callable(getattr(gateway, "cancel_replace", None))
        self._replace_ok: dict[str, bool] = {
            s.name: can_replace and bool(getattr(s, "use_cancel_replace", True)) for s in self.strategies
        }
        self._replace_refused: dict[str, int] = {}  # consecutive whole-request refusals per strategy
        self.hooks = hooks
        self.bot_config: Any = None  # the run's BotConfig, set by the app for plugins (read-only)
        self._h = _HookFlags(hooks)
        self.ctx = _Context(self)
        self._dispatch: dict[type, Callable[[Any], None]] = {
            DepthSnapshot: self._on_depth_snapshot,
            GatewayResult: self._on_gateway_result,
            UserEvent: self._on_user_event,
            StreamStatus: self._on_stream_status,
            ReconcileSnapshot: self._on_reconcile,
            JobRequest: self._on_job_request,
            Stop: self._on_stop,
        }
        self._job_handlers["clock_skew"] = _set_clock_skew
        self._publish_status()

    # =============================================================================================
    # Thread-safe surface
    # =============================================================================================
    def put(self, event: Event) -> None:
        """Enqueue an event; the only method safe to call from any thread."""
        self._queue.put(event)

    def stop(self, reason: str = "stop requested") -> None:
        """Ask the engine to stop cleanly (cancel open orders, then return from ``run``)."""
        self._queue.put(Stop(reason))

    def backlog(self) -> int:
        """Events waiting (approximate): producers may use it for back-pressure."""
        return self._queue.qsize()

    def status(self) -> dict[str, Any]:
        """A snapshot of plain values for progress display; safe from any thread.

        The engine thread rebuilds it every ``status_interval`` and swaps the reference, so
        readers never see a half-updated dict.
        """
        return dict(self._status)

    def start(self) -> threading.Thread:
        """Run the loop on a new thread named ``botcore-engine``."""
        if self._thread is not None:
            raise RuntimeError("engine already started")
        self._thread = threading.Thread(target=self.run, name="botcore-engine", daemon=True)
        self._thread.start()
        return self._thread

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the engine thread; True if it ended."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def stop_reason(self) -> str:
        return self._stop_reason

    @property
    def is_running(self) -> bool:
        return self._running

    # =============================================================================================
    # Set-up (before start; on the thread that builds the engine)
    # =============================================================================================
    def load_snapshot(self, snapshot: AccountSnapshot) -> list[Any]:
        """Initialise the position cache from REST before the loop starts; returns the drifts."""
        if self._running:
            raise RuntimeError("load_snapshot is for start-up; send a ReconcileSnapshot event instead")
        now_ms = time.time_ns() // 1_000_000
        return list(self._positions.apply_snapshot(snapshot, now_ms))

    def carry_fills(self, fills: Iterable[Fill]) -> int:
        """Start-up (restart recovery after a crash): continue the interrupted session's position
        and the stateful risk checks' equity (drawdown, daily loss) from its fills, so a bot that
        keeps crashing cannot escape its inventory or loss limits. Returns the fills new to the
        position cache; checks see each fill once (they de-duplicate by trade id)."""
        if self._running:
            raise RuntimeError("carry_fills is for start-up, before the engine runs")
        carried = 0
        for fill in fills:
            if fill.symbol not in self.instruments:
                continue
            if self._positions.apply_fill(fill):
                carried += 1
            self._tell_risk(self._fill_watchers, "on_fill", fill)
        return carried

    def on_job(self, name: str, handler: Callable[[Engine, dict[str, Any]], None]) -> None:
        """Register a handler for ``JobRequest(name)`` events (runs on the engine thread)."""
        self._job_handlers[name] = handler

    # =============================================================================================
    # The loop
    # =============================================================================================
    def run(self) -> str:
        """Process events on the calling thread until stopped; returns the stop reason."""
        self._bind_owner()
        with gc_policy(self.config), cpu_policy(self.config):
            return self._run()

    def _run(self) -> str:
        self._running = True
        self._started_ns = self._clock()
        self._user_last_ns = self._user_last_ns or self._started_ns  # streams subscribed at start
        self._next_status = self._started_ns
        if self._halt_checks:
            self._poll_halts()  # a halt decided before the start (e.g. at recovery) holds from the first event
        queue = self._queue
        get_nowait, get = queue.get_nowait, queue.get
        dispatch = self._dispatch
        on_market = self._on_market
        try:
            while self._running:
                try:
                    ev = get_nowait()
                except Empty:
                    self._housekeeping()
                    if not self._running:
                        break
                    self.idle()
                    try:
                        ev = get(timeout=self._idle_timeout())
                    except Empty:
                        continue
                try:
                    if type(ev) is MarketFrame:
                        if not self._stopping:
                            on_market(ev)
                    else:
                        dispatch[type(ev)](ev)
                except Exception:
                    self._handler_error(ev)
                self.n_events += 1
                if not self.n_events & 127:
                    self._housekeeping()
        finally:
            self._running = False
            self._publish_status()
        return self._stop_reason

    def process(self, event: Event) -> None:
        """Handle one event on the calling thread (tests and benchmarks drive the engine this way).

        The first caller becomes the owner thread; afterwards only it may call.
        """
        self._bind_owner()
        if not self._running and not self._stopping:
            self._running = True
            self._started_ns = self._clock()
            self._user_last_ns = self._user_last_ns or self._started_ns
            if self._halt_checks:
                self._poll_halts()
        if type(event) is MarketFrame:
            if not self._stopping:
                self._on_market(event)
        else:
            self._dispatch[type(event)](event)
        self.n_events += 1

    def drain(self, max_events: int | None = None) -> int:
        """Process queued events on the calling thread without blocking; returns how many."""
        n = 0
        while max_events is None or n < max_events:
            try:
                ev = self._queue.get_nowait()
            except Empty:
                break
            self.process(ev)
            n += 1
        self._housekeeping()
        return n

    def _bind_owner(self) -> None:
        me = threading.get_ident()
        if self._owner is None:
            self._owner = me
        elif self._owner != me:
            raise RuntimeError("the engine is owned by another thread")

    def _check_owner(self) -> None:
        if self._owner is not None and threading.get_ident() != self._owner:
            raise AssertionError(
                f"engine state mutated from thread {threading.current_thread().name!r}, not the engine thread"
            )

    def _handler_error(self, ev: Any) -> None:
        self._errors += 1
        self.counters.inc("handler_errors")
        log.exception("engine: error handling %s", type(ev).__name__)
        if self._errors >= self.config.max_errors and not self._stopping:
            self._begin_stop(f"too many errors ({self._errors})")

    def _idle_timeout(self) -> float:
        now = self._clock()
        wake = self._next_status
        if self._timers and self._timers[0][0] < wake:
            wake = self._timers[0][0]
        if self._stopping and self._stop_deadline < wake:
            wake = self._stop_deadline
        return max(0.0005, (wake - now) / 1e9)

    def _housekeeping(self) -> None:
        now = self._clock()
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, _, fn, args = heapq.heappop(timers)
            try:
                fn(*args)
            except Exception:
                self._handler_error(fn)
        if self._halt_checks and now >= self._next_halt_poll:
            self._next_halt_poll = now + int(self.config.halt_poll_interval * 1e9)
            self._poll_halts()
        if now >= self._next_status:
            self._watchdog(now)
            self._publish_status()
            self._next_status = now + int(self.config.status_interval * 1e9)
        if self._stopping and (now >= self._stop_deadline or not self._tracker.live_count()):
            if self._tracker.live_count():
                log.warning(
                    "engine: stop timeout with %d live orders: %s",
                    self._tracker.live_count(),
                    ", ".join(o.client_order_id for o in self._tracker.live()),
                )
            self._running = False

    def _call_later(self, delay_s: float, fn: Callable[..., None], *args: Any) -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, (self._clock() + int(delay_s * 1e9), self._timer_seq, fn, args))

    # =============================================================================================
    # Market data (hot path)
    # =============================================================================================
    def _on_market(self, ev: MarketFrame) -> None:
        self.n_frames += 1
        raw = ev.raw
        if not raw.startswith(_ENVELOPE):
            self.counters.inc("unrouted_frames")
            return
        key = raw[11 : raw.find(b'"', 11)]
        route = self._routes.get(key)
        if route is None:
            route = self._learn_route(key)
        kind, sync = route
        if sync is None:
            self.counters.inc("unrouted_frames")
            return
        sync.last_recv_ns = ev.recv_ns
        if kind == _KIND_TICKER:
            changed = sync.on_ticker(raw)
        elif kind == _KIND_DEPTH:
            changed = sync.on_depth(raw)
        elif kind == _KIND_TRADE:
            self.n_trades += 1
            return
        else:
            self.counters.inc("unrouted_frames")
            return
        if changed and self._quoting[sync.symbol]:
            self._quote(sync, ev.recv_ns)

    def _learn_route(self, key: bytes) -> tuple[int, BookSync | None]:
        stream = key.decode("ascii", "replace")
        sym, _, channel = stream.partition("@")
        sync = self._syncs.get(sym.upper())
        if sync is None:
            kind = _KIND_OTHER
        elif channel == "depth" or channel.startswith("depth@"):
            kind = _KIND_DEPTH  # diff depth; partial-depth streams (depth5, depth20@100ms) are not routed
        elif channel == "bookTicker":
            kind = _KIND_TICKER
        elif channel in ("trade", "aggTrade"):
            kind = _KIND_TRADE
        else:
            kind = _KIND_OTHER
        route = (kind, sync)
        if len(self._routes) < 10_000:  # stream names come from the venue: bound the cache
            self._routes[key] = route
        return route

    def _quote(self, sync: BookSync, recv_ns: int) -> None:
        """Ask each strategy of the book about its new top and apply the quotes it wants; the
        whole decision reads one clock value (``ctx.now_ns``)."""
        now = self._clock()
        bp, bq, ap, aq = sync.top()
        if bp <= 0 or ap <= 0 or bp >= ap:
            self.counters.inc("crossed_or_empty_tops")
            return
        symbol = sync.symbol
        top = BookTop(symbol, bp, bq, ap, aq, sync.book.last_update_id)
        ctx = self.ctx
        view = ctx._views[symbol]
        view._top = top  # risk checks asking for this book get this very top (no rebuild)
        self._decision_ns = now
        try:
            for strat in self._by_symbol[symbol]:
                try:
                    quotes = strat.on_top(ctx, top)
                except Exception:
                    self.counters.inc("strategy_errors")
                    log.exception("strategy %s failed in on_top", strat.name)
                    continue
                if quotes is None:
                    continue
                self.n_quotes += 1
                if self._h.quotes_decided:
                    self.hooks.quotes_decided(strat.name, symbol, quotes)
                self._last_quotes[(strat.name, symbol)] = quotes
                self._apply_quotes(strat.name, symbol, quotes, recv_ns)
        finally:
            view._top = None
            self._decision_ns = 0

    def idle(self) -> None:
        """Nothing to process (``run`` calls this when its queue is empty): rehearse the order
        path, at most every ``config.rehearse_interval``, so the next requote runs warm.

        Each ``RehearsingStrategy`` quoting a trusted book gives the quotes it would want now,
        computed without its memos (``MarketMaker.rehearse``); they go through ``diff``,
        ``pair_replacements``, the vetting of a real order with the ``rehearsable`` risk checks,
        and the tracker's steps of a replacement on a stand-in tracker nobody reads; then they are
        dropped. Nothing is tracked by the engine's tracker, counted, logged or sent, and no client
        id is used up."""
        interval = self.config.rehearse_interval
        if interval is None or not self._rehearsers or self._stopping:
            return
        now = self._clock()
        if now < self._next_rehearsal:
            return
        self._next_rehearsal = now + int(interval * 1e9)
        for strat in self._rehearsers:
            for symbol in strat.symbols:
                sync = self._syncs.get(symbol)
                if sync is not None and self._quoting.get(symbol):
                    self._rehearse(strat, sync, now)

    def _rehearse(self, strat: Strategy, sync: BookSync, now: int) -> None:
        bp, bq, ap, aq = sync.top()
        if bp <= 0 or ap <= 0 or bp >= ap:
            return
        symbol = sync.symbol
        top = BookTop(symbol, bp, bq, ap, aq, sync.book.last_update_id)
        view = self.ctx._views[symbol]
        view._top = top
        self._decision_ns = now
        self._decisions += 1
        self._decision = self._decisions
        try:
            quotes = strat.rehearse(self.ctx, top)  # type: ignore[attr-defined]
            if quotes:
                live = self._tracker.live_map(symbol, strat.name)
                keep = [o for o in live.values() if o.status in _DIFFABLE and not o.cancel_wanted]
                to_cancel, to_place = diff(
                    quotes, keep, self.config.tolerance_ticks, self.instruments[symbol].tick_size
                )
                pair_replacements(to_cancel, to_place, self._replaceable)
                stand_in = self._stand_in
                for q in quotes:
                    order = self._vetted_order(strat.name, symbol, q, rehearsal=True)
                    # The tracker's steps of a replacement, on a stand-in tracker nobody reads: the
                    # order is tracked, acknowledged, cancelled and forgotten (history 0).
                    stand_in.track(order, q.level)  # type: ignore[arg-type]
                    stand_in.force(_REHEARSAL_CID, _NEW, "rehearsal")
                    stand_in.request_cancel(_REHEARSAL_CID)
                    stand_in.force(_REHEARSAL_CID, _CANCELED, "rehearsal")
                self.n_rehearsals += 1
        except Exception:
            self._stand_in = OrderTracker(history=0, clock=self._clock)  # never left half-way
            self.counters.inc("rehearsal_errors")
            n = self.counters["rehearsal_errors"]
            if not n & (n - 1):  # 1st, 2nd, 4th...: a rehearsal that always fails must not flood the log
                log.exception("rehearsal of %s on %s failed (%d so far)", strat.name, symbol, n)
        finally:
            view._top = None
            self._decision_ns = 0
            self._decision = 0

    def _apply_quotes(self, strategy: str, symbol: str, quotes: Sequence[Quote], recv_ns: int) -> None:
        """Apply one decision. What follows its orders out waits until every order of it has left:
        the latency samples (recording the first order's must not delay the second) and the
        ``order_submitted`` hooks (the journal's write, ~60 µs, bench/run.py --only journal)."""
        self._decisions += 1
        self._decision = self._decisions
        try:
            self._apply_quotes_now(strategy, symbol, quotes, recv_ns)
        finally:
            self._decision = 0  # outside a decision every order asks every check
            if self._handoffs:
                handoffs, self._handoffs = self._handoffs, []
                for handoff_ns, frame_ns, decide_ns in handoffs:
                    self.tick_to_order.record(handoff_ns - frame_ns)
                    self.tick_wait.record(decide_ns - frame_ns)
            if self._submitted:
                orders, self._submitted = self._submitted, []
                for order in orders:
                    self.hooks.order_submitted(order)

    def _apply_quotes_now(self, strategy: str, symbol: str, quotes: Sequence[Quote], recv_ns: int) -> None:
        live = self._tracker.live_map(symbol, strategy)
        if live:
            keep = []
            linked = 0  # cancel-replace pairs with both legs live: one slot each, not two
            replaces = self._replaces
            for o in live.values():
                if o.status in _DIFFABLE and not o.cancel_wanted:
                    keep.append(o)
                if replaces:
                    old = replaces.get(o.client_order_id)
                    if old is not None and old in live:
                        linked += 1
            # Slots in use, before anything below tracks a new order into ``live`` (a live dict).
            used = len(live) - linked
            to_cancel, to_place = diff(
                quotes, keep, self.config.tolerance_ticks, self.instruments[symbol].tick_size
            )
            if to_cancel and to_place and self._replace_ok[strategy]:
                pairs, to_cancel, to_place = pair_replacements(to_cancel, to_place, self._replaceable)
                for o in to_cancel:
                    self._cancel_order(o)
                for o, q in pairs:
                    # A pair takes over the old order's slot: it needs no room.
                    self._replace(strategy, symbol, o, q, recv_ns)
            else:
                for o in to_cancel:
                    self._cancel_order(o)
        else:
            used = 0
            to_place = list(quotes)
        if not to_place:
            return
        room = self._max_live[strategy] - used
        placed = 0
        for q in to_place:
            if placed >= room:
                # Never exceed the limit, even while cancels are in flight: place the rest once
                # enough orders have left (``_after_order_change``).
                self._shortfall.add((strategy, symbol))
                self.counters.inc("deferred_by_max_live")
                break
            if self._place(strategy, symbol, q, recv_ns):
                placed += 1

    def _replaceable(self, o: TrackedOrder) -> bool:
        """Acknowledged, and not already being replaced by an order that may be live."""
        return (o.status is _NEW or o.status is _PARTIALLY_FILLED) and (
            o.client_order_id not in self._replaced_by
        )

    def _vetted_order(
        self, strategy: str, symbol: str, q: Quote, rehearsal: bool = False
    ) -> OrderRequest | None:
        """The order for ``q`` under a fresh client id, or None if the risk chain or a plugin vetoes it.

        ``rehearsal``: the same steps for an order that will never exist (``idle``): no client id
        used up, only the ``rehearsable`` checks, nothing counted or logged, no plugin hook;
        errors propagate to the rehearsal, and the answer is the order built (it is never sent).
        Within a decision (``_apply_quotes``, a rehearsal) a ``per_decision`` check is asked for
        the first order only (``_ChainStep``)."""
        otype, tif = self._order_type[strategy]
        level = q.level
        order = OrderRequest(
            symbol,
            q.side,
            q.qty,
            q.price,
            otype,
            tif,
            _REHEARSAL_CID if rehearsal else self._ids.next(),
            strategy,
            _TAGS[level] if 0 <= level < 32 else f"L{level}",
        )
        ctx = self.ctx
        decision = self._decision
        for step, check, once in self._rehearsal_steps if rehearsal else self._steps:
            if once and decision and step.decision == decision:
                reason = step.answer  # asked for this decision's first order
            else:
                try:
                    reason = check.check(order, ctx)
                except Exception as exc:  # a broken check fails closed
                    if rehearsal:
                        raise
                    reason = f"risk check raised {type(exc).__name__}: {exc}"
                    log.exception("risk check %s failed", step.link.name)
                if once:
                    step.decision = decision
                    step.answer = reason
            if rehearsal:
                continue
            if reason:
                link = step.link
                counts = self.shadow_vetoes if link.shadow else self.vetoes
                counts.inc(link.name)
                n = counts[link.name]
                if not n & (n - 1):  # 1st, 2nd, 4th, 8th... : a standing veto must not flood the log
                    log.info(
                        "risk %s %s %s %s %s@%s (%d so far): %s",
                        link.name,
                        "(shadow) would veto" if link.shadow else "vetoed",
                        symbol,
                        q.side,
                        q.qty,
                        q.price,
                        n,
                        reason,
                    )
                if link.shadow:
                    continue
                return None
        if rehearsal:
            return order
        if self._h.order_check:
            reason = self.hooks.order_check(order, ctx)
            if reason:
                self.vetoes.inc("plugin")
                n = self.vetoes["plugin"]
                if not n & (n - 1):
                    log.info("plugin vetoed %s (%d so far): %s", order.client_order_id, n, reason)
                return None
        return order

    def _place(self, strategy: str, symbol: str, q: Quote, recv_ns: int) -> bool:
        order = self._vetted_order(strategy, symbol, q)
        if order is None:
            return False
        self._tracker.track(order, q.level)
        self._handoff_ns = 0
        if self._h.order_submit:
            try:
                self.hooks.order_submit(order, self._handoff)
            except Exception:
                log.exception("order_submit hook failed for %s", order.client_order_id)
                if not self._handoff_ns:  # never reached the gateway: it certainly does not exist
                    self._tracker.force(order.client_order_id, _REJECTED, "submit hook failed")
                    return False
        else:
            self.gateway.submit(order)
            self._handoff_ns = self._clock()
        self._sent(order, recv_ns)
        return True

    def _sent(self, order: OrderRequest, recv_ns: int) -> None:
        """``order`` has been handed to the gateway (a placement or a replacement's new leg): the
        checks that count orders learn of it before the decision's next order is vetted; its
        latency sample and ``order_submitted`` hooks wait for the decision's end (``_apply_quotes``)."""
        if self._send_watchers:
            self._tell_risk(self._send_watchers, "order_sent", order)
        if recv_ns:
            self._handoffs.append((self._handoff_ns, recv_ns, self._decision_ns))
        self.n_orders += 1
        if self._h.order_submitted:
            self._submitted.append(order)

    def _handoff(self, order: OrderRequest) -> None:
        self.gateway.submit(order)
        self._handoff_ns = self._clock()

    def _replace(self, strategy: str, symbol: str, old: TrackedOrder, q: Quote, recv_ns: int) -> None:
        """Cancel ``old`` and place ``q`` in one request; both legs are tracked before it leaves."""
        self._vetting_replace = old
        try:
            order = self._vetted_order(strategy, symbol, q)
        finally:
            self._vetting_replace = None
        if order is None:
            self._cancel_order(old)  # unwanted all the same
            return
        tracker = self._tracker
        old_cid, new_cid = old.client_order_id, order.client_order_id
        if not tracker.request_cancel(old_cid):  # cannot happen: ``_replaceable`` checked the status
            self._cancel_order(old)  # the quote waits for the next decision (no room was reserved)
            return
        tracker.track(order, q.level)
        self._replaces[new_cid] = old_cid
        self._replaced_by[old_cid] = new_cid
        cancel = CancelRequest(symbol, old_cid, strategy)
        self._handoff_ns = 0
        if self._h.order_submit:
            self._replace_cancel = cancel
            try:
                self.hooks.order_submit(order, self._handoff_replace)
            except Exception:
                log.exception("order_submit hook failed for %s (replacing %s)", new_cid, old_cid)
                if not self._handoff_ns:
                    # Never reached the gateway: the new order does not exist; the old one must still go.
                    self._unlink(new_cid)
                    tracker.force(new_cid, _REJECTED, "submit hook failed")
                    self.n_cancels += 1
                    self.gateway.cancel(cancel)
                    return
            finally:
                self._replace_cancel = None
        else:
            self.gateway.cancel_replace(cancel, order)
            self._handoff_ns = self._clock()
        self._sent(order, recv_ns)
        self.n_cancels += 1
        self.n_replaces += 1

    def _handoff_replace(self, order: OrderRequest) -> None:
        cancel = self._replace_cancel
        assert cancel is not None
        self.gateway.cancel_replace(cancel, order)
        self._handoff_ns = self._clock()

    def _unlink(self, cid: str) -> None:
        """Forget the cancel-replace pair ``cid`` belongs to (either leg finished)."""
        old = self._replaces.pop(cid, None)
        if old is not None:
            self._replaced_by.pop(old, None)
        new = self._replaced_by.pop(cid, None)
        if new is not None:
            self._replaces.pop(new, None)

    def _cancel_order(self, o: TrackedOrder) -> None:
        if self._tracker.request_cancel(o.client_order_id):
            self.n_cancels += 1
            self.gateway.cancel(CancelRequest(o.symbol, o.client_order_id, o.strategy))
        elif o.status is _UNKNOWN:
            if not o.query_pending:
                self._query(o)
        elif o.status is _PENDING_CANCEL:
            # A cancel (or replace) is in flight; if the venue refuses it, cancel again then.
            o.cancel_wanted = True

    # =============================================================================================
    # Book sync plumbing
    # =============================================================================================
    def _request_snapshot(self, symbol: str) -> None:
        now = self._clock()
        last = self._snap_last.get(symbol)
        wait = 0 if last is None else last + int(self.config.snapshot_min_interval * 1e9) - now
        if wait <= 0:
            self._fetch_depth(symbol)
        elif symbol not in self._snap_timer:
            self._snap_timer.add(symbol)
            self._call_later(wait / 1e9, self._fetch_depth, symbol)

    def _fetch_depth(self, symbol: str) -> None:
        self._snap_timer.discard(symbol)
        self._snap_last[symbol] = self._clock()
        self.counters.inc("depth_snapshots_requested")
        self.gateway.fetch_depth(symbol, self.config.snapshot_limit)

    def _on_depth_snapshot(self, ev: DepthSnapshot) -> None:
        sync = self._syncs.get(ev.symbol)
        if sync is not None:
            sync.on_snapshot(ev.raw)

    def _on_book_trust(self, symbol: str, trusted: bool, reason: str) -> None:
        log.log(
            logging.INFO if trusted else logging.WARNING,
            "book %s %s: %s",
            symbol,
            "trusted" if trusted else "untrusted",
            reason,
        )
        if self._h.trust_changed:
            self.hooks.trust_changed(f"market:{symbol}", trusted, reason)
        self._update_quoting(symbol, reason)

    # =============================================================================================
    # Trust
    # =============================================================================================
    def _on_stream_status(self, ev: StreamStatus) -> None:
        stream = ev.stream
        if stream == "user":
            if ev.trusted:
                self._user_last_ns = self._clock()
                if self._user_ok:
                    return  # a heartbeat / re-subscription while trusted: freshness only
            self._user_ok = ev.trusted
            symbols: Iterable[str] = list(self.instruments)
        elif stream == "orders":
            if ev.trusted == self._orders_ok:
                return
            self._orders_ok = ev.trusted
            symbols = list(self.instruments)
        elif stream == "market" or stream.startswith("market:"):
            symbols = list(self.instruments) if stream == "market" else [stream[7:].upper()]
            if ev.trusted and all(self._market_ok.get(sym, True) for sym in symbols):
                return  # nothing changed
            for sym in symbols:
                if sym not in self._syncs:
                    continue
                self._market_ok[sym] = ev.trusted
                if not ev.trusted:
                    self._syncs[sym].reset(ev.reason)  # rebuild from scratch after the reconnect
        else:
            log.info("engine: status of unknown stream %r ignored", stream)
            return
        log.log(
            logging.INFO if ev.trusted else logging.WARNING,
            "stream %s %s: %s",
            stream,
            "trusted" if ev.trusted else "untrusted",
            ev.reason,
        )
        if self._h.trust_changed:
            self.hooks.trust_changed(stream, ev.trusted, ev.reason)
        for sym in symbols:
            if sym in self._quoting:
                self._update_quoting(sym, ev.reason)

    def _update_quoting(self, symbol: str, reason: str) -> None:
        ok = (
            not self._stopping
            and self._halted is None
            and self._user_ok
            and self._orders_ok
            and self._market_ok[symbol]
            and self._syncs[symbol].trusted
        )
        if ok == self._quoting[symbol]:
            return
        self._quoting[symbol] = ok
        if not ok:
            self.counters.inc("quoting_paused")
            live = self._tracker.live(symbol)
            log.warning("quoting paused on %s (%s); cancelling %d live orders", symbol, reason, len(live))
            for o in live:
                self._cancel_order(o)
        else:
            self.counters.inc("quoting_resumed")
            log.info("quoting resumed on %s (%s)", symbol, reason)
            self._quote(self._syncs[symbol], 0)

    def _poll_halts(self) -> None:
        """Ask stateful risk checks whether trading must halt; a halt pauses every symbol.

        A shadow check's halt is logged and counted once per episode, never enforced.
        """
        reason: str | None = None
        ctx = self.ctx
        for link in self._halt_checks:
            try:
                why = link.check.halted(ctx)  # type: ignore[attr-defined]
            except Exception as exc:  # fail closed
                why = f"halted() raised {type(exc).__name__}: {exc}"
            if link.shadow:
                if why and link.name not in self._shadow_halts:
                    self._shadow_halts.add(link.name)
                    self.shadow_vetoes.inc(f"halt:{link.name}")
                    log.warning("risk %s (shadow) would halt trading: %s", link.name, why)
                elif not why:
                    self._shadow_halts.discard(link.name)
                continue
            if why and reason is None:
                reason = f"risk {link.name}: {why}"
        if (reason is None) == (self._halted is None):
            return
        self._halted = reason
        if reason is not None:
            self.counters.inc("risk_halts")
            log.error("trading halted: %s", reason)
        else:
            log.warning("risk halt cleared; quoting may resume")
        for sym in self.instruments:
            self._update_quoting(sym, reason or "risk halt cleared")

    # =============================================================================================
    # Order outcomes and user data
    # =============================================================================================
    def _on_gateway_result(self, ev: GatewayResult) -> None:
        out = ev.outcome
        cid = out.client_order_id
        tracker = self._tracker
        o = tracker.get(cid)
        status = out.status
        if type(status) is not OrderStatus:  # adapters may build outcomes with plain strings
            status = OrderStatus(status)
            out = msgspec.structs.replace(out, status=status)
        action = out.action
        if action == "query":
            if o is not None:
                o.query_pending = False
            self._on_query_result(o, out)
        elif status is _UNKNOWN:
            if (
                tracker.mark_unknown(cid, out.error_msg or f"{action} outcome unknown") == APPLIED
                and o is not None
            ):
                self.counters.inc("unknown_outcomes")
                log.warning("order %s: %s outcome unknown (%s); querying", cid, action, out.error_msg)
        elif action == "cancel" and status is _REJECTED:
            if out.error_code == _ERR_UNKNOWN_ORDER:
                # Filled or cancelled already, or the cancel overtook the order: ask, don't guess.
                # (A replace's new leg was then not attempted: its own outcome says REJECTED.)
                tracker.mark_unknown(cid, out.error_msg or "cancel: unknown order")
            else:
                if o is not None and cid in self._replaced_by:
                    self._replace_refused_once(o.strategy, out)
                tracker.on_cancel_rejected(cid, out.error_msg)
        else:
            if action == "new" and status is _REJECTED:
                if out.error_code == _ERR_REPLACE_FAILED and cid in self._replaces:
                    # STOP_ON_FAILURE: the cancel leg failed, so this order was never attempted.
                    self.counters.inc("replace_not_attempted")
                    log.info("replacement %s not placed: its cancel leg failed", cid)
                else:
                    self.counters.inc("rejects")
                    log.warning("order %s rejected: %s %s", cid, out.error_code, out.error_msg)
            elif action == "cancel" and o is not None and self._replace_refused and cid in self._replaced_by:
                self._replace_refused.pop(o.strategy, None)
            tracker.on_outcome(out)
            if action == "cancel" and (status is _NEW or status is _PARTIALLY_FILLED):
                # A cancel answered "still open" (an adapter resolved -2011 by a query and found the
                # order resting): the cancel did not happen.
                tracker.on_cancel_rejected(cid, out.error_msg or "cancel: order still open")
        if self._h.order_outcome:
            self.hooks.order_outcome(out)
        for fill in ev.fills:
            self._apply_fill(fill)
        self._after_order_change(o)

    def _replace_refused_once(self, strategy: str, out: OrderOutcome) -> None:
        """A cancel-replace refused as a whole (not "unknown order"): after a few in a row, the
        strategy falls back to plain cancel + new for a while (e.g. ``cancelReplaceAllowed`` false)."""
        n = self._replace_refused.get(strategy, 0) + 1
        self._replace_refused[strategy] = n
        cfg = self.config
        if n >= cfg.replace_fallback_after and self._replace_ok.get(strategy):
            self._replace_ok[strategy] = False
            self.counters.inc("replace_fallbacks")
            log.warning(
                "strategy %s: %d cancel-replace requests refused in a row (last: %s %s); "
                "using cancel + new for %.0fs",
                strategy,
                n,
                out.error_code,
                out.error_msg,
                cfg.replace_retry_after,
            )
            self._call_later(cfg.replace_retry_after, self._retry_replace, strategy)

    def _retry_replace(self, strategy: str) -> None:
        self._replace_refused.pop(strategy, None)
        self._replace_ok[strategy] = True

    def _on_query_result(self, o: TrackedOrder | None, out: OrderOutcome) -> None:
        if o is None or not o.is_live:
            return
        if out.status is _UNKNOWN:  # the query itself failed
            self._schedule_query(o)
        elif out.status is _REJECTED and out.error_code == _ERR_NO_SUCH_ORDER:
            age = (self._clock() - o.created_ns) / 1e9
            if age < self.config.unknown_grace:
                # A delayed request can still reach the venue inside its recvWindow: ask again.
                self._schedule_query(o, self.config.unknown_grace - age)
            else:
                log.warning("order %s does not exist on the venue; marking it rejected", o.client_order_id)
                self._tracker.force(o.client_order_id, _REJECTED, "venue: order does not exist")
        else:
            self._tracker.on_outcome(out)

    def _schedule_query(self, o: TrackedOrder, delay: float | None = None) -> None:
        if delay is None:
            delay = self.config.query_retry * min(8, 2 ** max(0, o.query_attempts - 1))
        o.query_pending = True  # a timer is pending: no second query meanwhile
        self._call_later(delay, self._requery, o.client_order_id)

    def _requery(self, cid: str) -> None:
        o = self._tracker.get(cid)
        if o is not None and o.status is _UNKNOWN:
            o.query_pending = False
            self._query(o)
        elif o is not None:
            o.query_pending = False

    def _query(self, o: TrackedOrder) -> None:
        if o.query_pending:
            return
        o.query_pending = True
        o.query_attempts += 1
        self.counters.inc("queries")
        self.gateway.query(o.symbol, o.client_order_id)

    def _after_order_change(self, o: TrackedOrder | None) -> None:
        if o is None:
            return
        status = o.status
        if status.is_terminal:
            if self._replaces or self._replaced_by:
                self._unlink(o.client_order_id)
            key = (o.strategy, o.symbol)
            # A slot freed by a fill or cancel goes to the quotes that were waiting for it; not one
            # freed by a rejection: re-placing at once what the venue (or the limiter) just refused
            # loops. The strategy puts it back when its requote gate opens.
            if status is not _REJECTED and key in self._shortfall and self._quoting.get(o.symbol):
                self._shortfall.discard(key)
                quotes = self._last_quotes.get(key)
                if quotes is not None:
                    self._apply_quotes(o.strategy, o.symbol, quotes, 0)
            if self._stopping and not self._tracker.live_count():
                self._running = False
        elif status is _UNKNOWN:
            if not o.query_pending:
                self._query(o)
        elif o.cancel_wanted and (status is _NEW or status is _PARTIALLY_FILLED):
            o.cancel_wanted = False
            self._cancel_order(o)

    def _on_user_event(self, ev: UserEvent) -> None:
        self._user_last_ns = self._clock()
        e = ev.event
        if type(e) is ExecutionReport:
            self._on_execution_report(e)
        elif type(e) is AccountUpdate:
            self._positions.apply_account_update(e)
        elif type(e) is BalanceDelta:
            self._positions.apply_balance_delta(e)
        else:
            log.warning("engine: unknown user event %s ignored", type(e).__name__)

    def _on_execution_report(self, report: ExecutionReport) -> None:
        if self._tracker.on_report(report) == FOREIGN and self._reconciler is not None:
            # e.g. a NEW order on our account that this run never placed: no hook sees it.
            self._reconciler.should_reconcile_now(report)
        o = self._tracker.get(report.client_order_id)
        strat = self._strategy_by_name.get(o.strategy) if o is not None else None
        fill: Fill | None = None
        if report.symbol in self.instruments:
            fill = self._positions.apply_execution_report(report)
        if fill is not None:
            self._fill_done(fill, strat)
        if report.status in _CANCELLED_STATES and self._h.order_cancelled:
            self.hooks.order_cancelled(report)
        if strat is not None:
            try:
                strat.on_order_update(self.ctx, report)
            except Exception:
                self.counters.inc("strategy_errors")
                log.exception("strategy %s failed in on_order_update", strat.name)
        self._after_order_change(o)

    def _apply_fill(self, fill: Fill) -> bool:
        """A fill seen outside the user stream (REST FULL response, reconcile): dedup by trade id.
        True if it was new (the reconciler's ``apply_fill`` contract)."""
        if fill.symbol in self.instruments and self._positions.apply_fill(fill):
            o = self._tracker.get(fill.client_order_id)
            self._fill_done(fill, self._strategy_by_name.get(o.strategy) if o is not None else None)
            return True
        return False

    def _tell_risk(self, links: list[RiskLink], hook: str, what: Any) -> None:
        """Call the optional ``StatefulRiskCheck`` extra ``hook`` (``on_fill``: checks follow equity
        through fills; ``order_sent``: checks that count orders learn of each one as it leaves,
        before the decision's next order is checked). A failing check is logged, not fatal."""
        ctx = self.ctx
        for link in links:
            try:
                getattr(link.check, hook)(what, ctx)
            except Exception:
                log.exception("risk check %s failed in %s", link.name, hook)

    def _fill_done(self, fill: Fill, strat: Strategy | None) -> None:
        self.n_fills += 1
        if self._h.order_filled:
            self.hooks.order_filled(fill)
        self._tell_risk(self._fill_watchers, "on_fill", fill)
        if self._halt_checks:
            self._poll_halts()
        if strat is not None:
            try:
                strat.on_fill(self.ctx, fill)
            except Exception:
                self.counters.inc("strategy_errors")
                log.exception("strategy %s failed in on_fill", strat.name)

    # =============================================================================================
    # Reconciliation, jobs, stop
    # =============================================================================================
    def _on_reconcile(self, ev: ReconcileSnapshot) -> None:
        """Apply a REST snapshot. With a ``Reconciler`` its per-field policy decides what is
        corrected, logged or halts quoting (missed fills go through the engine's own fill path
        either way); without one every drift is corrected. A halt takes effect at once."""
        now_ms = time.time_ns() // 1_000_000
        rec = self._reconciler
        drifts: Sequence[Any]
        if rec is not None:
            drifts = rec.apply(ev, self._positions, now_ms, apply_fill=self._apply_fill).drifts
        else:
            for fill in ev.fills:
                self._apply_fill(fill)
            drifts = self._positions.apply_snapshot(ev.snapshot, now_ms)
        self.counters.inc("reconciles")
        if drifts:
            self.counters.inc("drifts", len(drifts))
            log.warning("reconcile %s: %d drift(s): %s", ev.job, len(drifts), list(drifts[:5]))
        self._reconcile_orders(ev.snapshot)
        if self.hooks is not None:
            # The very tuple the reconciler returned: its review recognises it and decides once.
            self.hooks.reconcile_report(ev.job, drifts)
        if self._halt_checks:
            self._poll_halts()

    def _reconcile_orders(self, snapshot: AccountSnapshot) -> None:
        """Acknowledged orders the venue no longer lists may have filled or been cancelled
        without us hearing (lost user-stream events): query them, never guess. Orders younger
        than ``reconcile_grace`` are left alone (the snapshot may predate them)."""
        venue = {o.client_order_id for o in snapshot.open_orders}
        horizon = self._clock() - int(self.config.reconcile_grace * 1e9)
        for o in self._tracker.live():
            if o.client_order_id in venue or o.updated_ns > horizon:
                continue
            if o.status is _NEW or o.status is _PARTIALLY_FILLED or o.status is _PENDING_CANCEL:
                self.counters.inc("reconcile_queries")
                log.warning(
                    "order %s is %s locally but not open on the venue; querying", o.client_order_id, o.status
                )
                self._tracker.mark_unknown(o.client_order_id, "not open on the venue")
                self._query(o)

    def _watchdog(self, now: int) -> None:
        """A request whose answer never came (a hung adapter call): put the order in doubt and ask."""
        limit = now - int(self.config.pending_timeout * 1e9)
        for o in self._tracker.live():
            if (o.status is _PENDING_NEW or o.status is _PENDING_CANCEL) and o.updated_ns < limit:
                self.counters.inc("pending_timeouts")
                log.warning(
                    "order %s: no answer for %s after %.0fs; querying",
                    o.client_order_id,
                    o.status,
                    self.config.pending_timeout,
                )
                self._tracker.mark_unknown(o.client_order_id, "no answer")
                self._query(o)
        if self._replaces:  # safety net: links are dropped when a leg finishes (_after_order_change)
            get = self._tracker.get
            for new, old in list(self._replaces.items()):
                a, b = get(new), get(old)
                if a is None or b is None or not a.is_live or not b.is_live:
                    del self._replaces[new]
                    if self._replaced_by.get(old) == new:
                        del self._replaced_by[old]

    def _on_job_request(self, ev: JobRequest) -> None:
        handler = self._job_handlers.get(ev.name)
        if handler is None:
            log.warning("engine: no handler for job request %r", ev.name)
            return
        handler(self, dict(ev.payload))

    def _on_stop(self, ev: Stop) -> None:
        self._begin_stop(ev.reason)

    def _begin_stop(self, reason: str) -> None:
        if self._stopping:
            return
        self._stopping = True
        self._stop_reason = reason
        self._stop_deadline = self._clock() + int(self.config.stop_timeout * 1e9)
        live = self._tracker.live()
        log.info("engine stopping (%s); cancelling %d live orders", reason, len(live))
        for sym in self._quoting:
            self._quoting[sym] = False
        for o in live:
            self._cancel_order(o)
        if not self._tracker.live_count():
            self._running = False

    # =============================================================================================
    # Status
    # =============================================================================================
    def _publish_status(self) -> None:
        now = self._clock()
        pos = self._positions
        positions: dict[str, str] = {}
        pnl = Decimal(0)
        for sym, inst in self.instruments.items():
            try:
                qty = pos.position(sym)
                positions[sym] = plain(qty)
                pnl += pos.realized_pnl(sym) - pos.fees(sym)
                bp, _, ap, _ = self._syncs[sym].top()
                if qty and bp and ap:
                    pnl += pos.unrealized_pnl(sym, inst.ticks_to_price(bp + ap) / 2)
            except (ValueError, KeyError):
                continue
        h = self.tick_to_order
        self._status = {
            "elapsed_s": (now - self._started_ns) / 1e9 if self._started_ns else 0.0,
            "events": self.n_events,
            "frames": self.n_frames,
            "trades": self.n_trades,
            "quotes": self.n_quotes,
            "orders": self.n_orders,
            "cancels": self.n_cancels,
            "replaces": self.n_replaces,
            "fills": self.n_fills,
            "live_orders": self._tracker.live_count(),
            "unknown_orders": sum(1 for o in self._tracker.live() if o.status is _UNKNOWN),
            "illegal_transitions": self._tracker.illegal,
            "vetoes": dict(self.vetoes),
            "shadow_vetoes": dict(self.shadow_vetoes),
            "counters": dict(self.counters),
            "position": positions,
            "pnl": plain(pnl),
            "trusted": dict(self._quoting),
            "user_trusted": self._user_ok,
            "orders_open": self._orders_ok,
            "halted": self._halted,
            "books": {s: self._book_status(y, now) for s, y in self._syncs.items()},
            "latency_us": {
                "count": h.count,
                "p50": h.percentile(50),
                "p99": h.percentile(99),
                "max": h.max_ns / 1000.0,
            },
            "backlog": self._queue.qsize(),
            "stopping": self._stopping,
            "running": self._running,
        }

    @staticmethod
    def _book_status(sync: BookSync, now: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "trusted": sync.trusted,
            "resyncs": sync.resyncs,
            "gaps": sync.gaps,
            "snapshots": sync.snapshots_applied,
        }
        if sync.last_recv_ns:  # absent until the first frame (readers treat it as unknown)
            out["age_ms"] = (now - sync.last_recv_ns) // 1_000_000
        return out

    # --- read helpers for tests and the app (engine thread or after stop) ------------------------
    @property
    def tracker(self) -> OrderTracker:
        return self._tracker

    @property
    def positions(self) -> Any:
        return self._positions

    def live_slots(self, symbol: str, strategy: str) -> int:
        """Live orders as counted against ``max_live_orders``: a cancel-replace pair whose legs are
        both live holds one slot (the venue never has both resting)."""
        live = self._tracker.live_map(symbol, strategy)
        replaces = self._replaces
        return len(live) - sum(1 for cid in live if replaces.get(cid, "") in live)

    def book_sync(self, symbol: str) -> BookSync:
        return self._syncs[symbol]

    def is_quoting(self, symbol: str) -> bool:
        return self._quoting.get(symbol, False)


_gc_lock = threading.Lock()
_gc_state: list[Any] = [0, None]  # [engines running with gc_freeze, thresholds before the first]


@contextmanager
def gc_policy(config: EngineConfig) -> Iterator[None]:
    """The cyclic collector's policy while an engine runs (``EngineConfig.gc_freeze``); ``run``
    applies it, and benchmarks that drive ``process`` directly apply it the same way.

    The first engine to enter freezes what exists and raises gen-0; the last to leave thaws the
    frozen objects and restores the thresholds. No collection first: a full one costs tens of ms
    in a large process and would delay the first events; what little garbage gets frozen with the
    rest is collected once it is thawed.
    """
    if not config.gc_freeze:
        yield
        return
    with _gc_lock:
        _gc_state[0] += 1
        if _gc_state[0] == 1:
            _gc_state[1] = gc.get_threshold()
            gc.freeze()
            if config.gc_gen0_threshold > 0:
                gc.set_threshold(config.gc_gen0_threshold, *_gc_state[1][1:])
    try:
        yield
    finally:
        with _gc_lock:
            _gc_state[0] -= 1
            if _gc_state[0] == 0:
                gc.unfreeze()
                if _gc_state[1] is not None:
                    gc.set_threshold(*_gc_state[1])
                    _gc_state[1] = None


@contextmanager
def cpu_policy(config: EngineConfig) -> Iterator[None]:
    """Pin the calling thread (the engine thread) to ``config.cpu`` while an engine runs, and give
    it back its CPUs afterwards; ``run`` applies it, and benchmarks that drive ``process``
    directly apply it the same way. Only this thread (and threads it starts meanwhile, which
    inherit it); other threads keep their own affinity. A CPU the OS refuses is logged, and the
    engine runs unpinned."""
    cpu = config.cpu
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)  # 0: the calling thread
    try:
        os.sched_setaffinity(0, {cpu})
    except (OSError, ValueError) as exc:
        log.warning("engine thread not pinned to CPU %s: %s", cpu, exc)
        yield
        return
    log.info("engine thread pinned to CPU %d", cpu)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _set_clock_skew(engine: Engine, payload: dict[str, Any]) -> None:
    """``JobRequest("clock_skew", {"skew_ms": local_minus_venue})`` from a time-sync job."""
    engine._clock_skew_ms = int(payload["skew_ms"])


class EngineHandle:
    """What scheduled jobs get (``job(engine_handle, params)``, on a scheduler thread).

    The way into the engine (``put``) plus what a job needs to do its blocking REST work: the
    adapter, the instruments, the config. Never the engine's mutable state: jobs hand results
    back as events (``ReconcileSnapshot``, ``JobRequest``).
    """

    def __init__(self, engine: Engine, adapter: ExchangeAdapter | None = None, config: Any = None) -> None:
        self._engine = engine
        self.put = engine.put
        self.adapter = adapter if adapter is not None else engine.adapter
        self.config = config
        self.instruments: Mapping[str, Instrument] = MappingProxyType(dict(engine.instruments))
        self.symbols: tuple[str, ...] = tuple(engine.instruments)
        self.run_id = engine._ids.run_id

    def is_own_order(self, client_order_id: str) -> bool:
        """Made by this run (``orders.ClientOrderIds.parse``; pure, thread-safe)."""
        return self._engine._ids.is_ours(client_order_id)

    def status(self) -> dict[str, Any]:
        return self._engine.status()

    def stop(self, reason: str) -> None:
        self._engine.stop(reason)


class _HookFlags:
    """Which per-event hooks have implementations: calling an empty pluggy hook still costs ~1 µs,
    so the hot path skips hooks nobody implements (plugins do not change during a run)."""

    __slots__ = (
        "quotes_decided",
        "order_check",
        "order_submit",
        "order_submitted",
        "order_outcome",
        "order_filled",
        "order_cancelled",
        "trust_changed",
    )

    def __init__(self, hooks: Any) -> None:
        pm = getattr(hooks, "pm", None)

        def has(name: str, ignore: str = "") -> bool:
            if hooks is None:
                return False
            if pm is None:
                return True  # a custom facade: always call it
            caller = getattr(pm.hook, f"botcore_{name}", None)
            return caller is not None and any(i.plugin_name != ignore for i in caller.get_hookimpls())

        try:
            from botcore.plugins import HANDOFF_PLUGIN
        except ImportError:  # pragma: no cover - plugins module always ships with the engine
            HANDOFF_PLUGIN = ""
        self.quotes_decided = has("quotes_decided")
        self.order_check = has("order_check")
        self.order_submit = has("order_submit", HANDOFF_PLUGIN)
        self.order_submitted = has("order_submitted")
        self.order_outcome = has("order_outcome")
        self.order_filled = has("order_filled")
        self.order_cancelled = has("order_cancelled")
        self.trust_changed = has("trust_changed")
