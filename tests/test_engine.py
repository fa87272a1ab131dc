"""The engine: single-writer event loop, book sync, quoting, limits, unknown outcomes, trust, stop.

Most tests drive the engine synchronously (``Engine.process``) with a recording fake gateway, so
every step is deterministic; the last ones run the real thing: engine thread, gateway pool and
the replay adapter over the shipped recording.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botcore import hookimpl
from botcore.engine import Engine, EngineConfig, EngineHandle, OrderView, RiskLink
from botcore.events import (
    DepthSnapshot,
    GatewayResult,
    JobRequest,
    MarketFrame,
    ReconcileSnapshot,
    Stop,
    StreamStatus,
    UserEvent,
)
from botcore.model import (
    AccountSnapshot,
    AccountUpdate,
    Balance,
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
)
from botcore.params import NS_PER_S
from botcore.plugins import Hooks, get_plugin_manager
from botcore.reconcile import ReconcilePolicy, Reconciler
from botcore.replay_adapter import ReplayAdapter

S = OrderStatus
D = Decimal
SYM = "BTCUSDT"
INST = Instrument(SYM, "BTC", "USDT", D("0.01"), D("0.00001"), min_qty=D("0.00001"), min_notional=D("5"))


# ------------------------------------------------------------------------------------------------
# Frames and fakes
# ------------------------------------------------------------------------------------------------


def depth(
    first: int, last: int, bids: Sequence[tuple[str, str]] = (), asks: Sequence[tuple[str, str]] = ()
) -> bytes:
    data = {"e": "depthUpdate", "E": 1, "s": SYM, "U": first, "u": last, "b": list(bids), "a": list(asks)}
    return json.dumps({"stream": "btcusdt@depth@100ms", "data": data}, separators=(",", ":")).encode()


def ticker(u: int, bid: str, ask: str, bq: str = "1", aq: str = "1") -> bytes:
    data = {"u": u, "s": SYM, "b": bid, "B": bq, "a": ask, "A": aq}
    return json.dumps({"stream": "btcusdt@bookTicker", "data": data}, separators=(",", ":")).encode()


SNAP = json.dumps({"lastUpdateId": 100, "bids": [["100.00", "1"]], "asks": [["101.00", "1"]]}).encode()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000_000

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1e9)


class FakeGateway:
    """Records requests; answers nothing unless the test does."""

    def __init__(self) -> None:
        self.submitted: list[OrderRequest] = []
        self.cancels: list[CancelRequest] = []
        self.replaces: list[tuple[CancelRequest, OrderRequest]] = []
        self.orders: list[OrderRequest] = []  # every new order, plain or replacing, in sending order
        self.queries: list[str] = []
        self.depths: list[str] = []

    def submit(self, order: OrderRequest) -> None:
        self.submitted.append(order)
        self.orders.append(order)

    def cancel(self, request: CancelRequest) -> None:
        self.cancels.append(request)

    def cancel_replace(self, cancel: CancelRequest, new: OrderRequest) -> None:
        self.replaces.append((cancel, new))
        self.orders.append(new)

    def query(self, symbol: str, cid: str) -> None:
        self.queries.append(cid)

    def fetch_depth(self, symbol: str, limit: int = 1000) -> None:
        self.depths.append(symbol)

    def close(self, timeout: float = 5.0) -> bool:
        return True


class Quoter:
    """Quotes bid/ask at the touch (or whatever ``fn`` says)."""

    def __init__(
        self,
        name: str = "mm",
        max_live_orders: int = 4,
        fn: Callable[[BookTop], list[Quote] | None] | None = None,
        **attrs: Any,
    ) -> None:
        self.name = name
        self.symbols = [SYM]
        self.max_live_orders = max_live_orders
        self.fn = fn or self.touch
        self.tops: list[BookTop] = []
        self.fills: list[Fill] = []
        self.updates: list[ExecutionReport] = []
        for k, v in attrs.items():
            setattr(self, k, v)

    @staticmethod
    def touch(top: BookTop) -> list[Quote]:
        return [
            Quote(Side.BUY, INST.ticks_to_price(top.bid_price), D("0.001")),
            Quote(Side.SELL, INST.ticks_to_price(top.ask_price), D("0.001")),
        ]

    def on_top(self, ctx: Any, top: BookTop) -> list[Quote] | None:
        self.tops.append(top)
        return self.fn(top)

    def on_fill(self, ctx: Any, fill: Fill) -> None:
        self.fills.append(fill)

    def on_order_update(self, ctx: Any, report: ExecutionReport) -> None:
        self.updates.append(report)


def make(
    strategies: Sequence[Any] = (), risk: Sequence[Any] = (), hooks: Any = None, **cfg: Any
) -> tuple[Engine, FakeGateway, Clock]:
    gw, clock = FakeGateway(), Clock()
    config = EngineConfig(snapshot_min_interval=0.0, **cfg)
    eng = Engine(
        {SYM: INST}, list(strategies), list(risk), gateway=gw, hooks=hooks, config=config, clock=clock
    )
    return eng, gw, clock


def go_live(eng: Engine) -> None:
    eng.process(MarketFrame(depth(99, 103), 0))
    eng.process(DepthSnapshot(SYM, SNAP, 0))
    assert eng.book_sync(SYM).trusted


def frame(eng: Engine, raw: bytes, clock: Clock | None = None, age_ns: int = 0) -> None:
    now = clock() if clock is not None else time.monotonic_ns()
    eng.process(MarketFrame(raw, now - age_ns))


def ack(eng: Engine, order: OrderRequest, status: S = S.NEW, **kw: Any) -> None:
    eng.process(GatewayResult(OrderOutcome("new", order.symbol, order.client_order_id, status, **kw)))


def cancelled(eng: Engine, cid: str, status: S = S.CANCELED, **kw: Any) -> None:
    eng.process(GatewayResult(OrderOutcome("cancel", SYM, cid, status, **kw)))


def report(
    cid: str,
    status: S,
    exec_type: str,
    cum: str = "0",
    last: str = "0",
    trade_id: int = -1,
    side: Side = Side.BUY,
) -> UserEvent:
    return UserEvent(
        ExecutionReport(
            symbol=SYM,
            client_order_id=cid,
            order_id=1,
            side=side,
            order_type="LIMIT_MAKER",
            status=status,
            execution_type=exec_type,
            price=D("100"),
            orig_qty=D("0.001"),
            cum_qty=D(cum),
            cum_quote=D(cum) * 100,
            last_qty=D(last),
            last_price=D("100") if D(last) else D(0),
            commission=D(0),
            commission_asset="USDT" if D(last) else None,
            trade_id=trade_id,
            event_time_ms=1,
            transaction_time_ms=1,
        ),
        0,
    )


def live(eng: Engine, strategy: str = "mm") -> list[Any]:
    return eng.tracker.live(SYM, strategy)


# ------------------------------------------------------------------------------------------------
# Quoting path
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("use_replace", [False, True])
def test_quotes_start_when_book_is_live_and_only_differences_are_sent(use_replace: bool) -> None:
    strat = Quoter(use_cancel_replace=use_replace)
    eng, gw, clock = make([strat])
    eng.process(MarketFrame(ticker(90, "99.00", "102.00"), 0))  # no book yet: nothing
    assert gw.submitted == [] and gw.depths == []
    go_live(eng)
    assert gw.depths == [SYM]
    # trust flipped: the strategy is asked at once
    assert [(o.side, o.price) for o in gw.submitted] == [(Side.BUY, D("100.00")), (Side.SELL, D("101.00"))]
    first = gw.submitted[:]
    assert all(o.order_type is OrderType.LIMIT_MAKER and o.strategy == "mm" for o in first)
    assert [o.status for o in live(eng)] == [S.PENDING_NEW, S.PENDING_NEW]
    for o in first:
        ack(eng, o)
    frame(eng, ticker(104, "100.00", "101.00", bq="5"), clock)  # qty change: same quotes
    assert len(strat.tops) == 2 and len(gw.submitted) == 2 and gw.cancels == []
    frame(eng, ticker(105, "100.01", "101.00"), clock)  # bid moved
    if use_replace:  # one cancel-replace request: cancel the old bid, place the new one
        assert gw.cancels == [] and len(gw.submitted) == 2
        ((cancel, new),) = gw.replaces
        assert cancel.client_order_id == first[0].client_order_id
    else:  # opted out: a plain cancel and a plain new order
        assert gw.replaces == [] and [c.client_order_id for c in gw.cancels] == [first[0].client_order_id]
        new = gw.submitted[-1]
    assert (new.side, new.price) == (Side.BUY, D("100.01"))
    assert eng.n_quotes == 3 and eng.n_orders == 3 and eng.n_cancels == 1
    assert eng.n_replaces == (1 if use_replace else 0)


def test_tick_to_order_latency_is_recorded_per_order_sent_from_a_tick() -> None:
    strat = Quoter()
    eng, gw, clock = make([strat])
    go_live(eng)  # quotes from the trust flip carry no tick: not in the histogram
    assert eng.tick_to_order.count == 0
    for o in gw.submitted:
        ack(eng, o)
    frame(eng, ticker(104, "100.05", "100.95"), clock, age_ns=7_000)
    assert eng.tick_to_order.count == 2  # two new orders from that frame
    assert eng.tick_to_order.min_ns == eng.tick_to_order.max_ns == 7_000


def test_one_decision_reads_one_clock_value() -> None:
    """The strategy and every risk check of the orders it leads to see the decision's instant,
    even while the clock moves under them; outside a decision ``now_ns`` follows the clock."""
    seen: list[tuple[str, int, int, int]] = []

    class Ticking:
        name = "ticking"

        def check(self, order: OrderRequest, ctx: Any) -> None:
            clock.advance(0.001)  # each check takes a (simulated) millisecond
            seen.append(("check", ctx.now_ns(), ctx.market_age_ns(SYM), ctx.user_stream_age_ns()))

    def quotes(top: BookTop) -> list[Quote]:
        clock.advance(0.001)
        seen.append(("strategy", eng.ctx.now_ns(), eng.ctx.market_age_ns(SYM), eng.ctx.user_stream_age_ns()))
        return Quoter.touch(top)

    eng, gw, clock = make([Quoter(fn=quotes)], [Ticking()])
    go_live(eng)
    for o in gw.submitted:
        ack(eng, o)
    seen.clear()
    start = clock()
    frame(eng, ticker(104, "100.05", "100.95"), clock, age_ns=5_000)
    assert [s[0] for s in seen] == ["strategy", "check", "check"]
    assert {s[1] for s in seen} == {start}  # the clock moved 3 ms meanwhile
    assert {s[2] for s in seen} == {5_000}  # the frame's age at the decision
    assert len({s[3] for s in seen}) == 1
    assert clock() == start + 3_000_000
    assert eng.ctx.now_ns() == clock()  # no decision running: the clock itself
    assert eng.ctx.market_age_ns(SYM) == 3_005_000


def test_order_type_time_in_force_and_level_tag_come_from_the_strategy() -> None:
    strat = Quoter(order_type=OrderType.LIMIT, fn=lambda t: [Quote(Side.BUY, D("100"), D("0.001"), level=3)])
    eng, gw, _ = make([strat])
    go_live(eng)
    (o,) = gw.submitted
    assert o.order_type is OrderType.LIMIT and o.time_in_force is TimeInForce.GTC and o.tag == "L3"
    assert eng.tracker.get(o.client_order_id).level == 3  # type: ignore[union-attr]


def test_client_order_ids_are_unique_and_deterministic() -> None:
    strat = Quoter(max_live_orders=100)
    eng, gw, clock = make([strat])
    go_live(eng)
    for u in range(104, 130):
        frame(eng, ticker(u, f"{100 + (u % 7) / 100:.2f}", "101.00"), clock)
    ids = [o.client_order_id for o in gw.submitted]
    assert len(ids) == len(set(ids)) and ids[0] == "bcr0-1" and ids[-1] == f"bcr0-{len(ids)}"


def test_none_leaves_orders_alone_and_empty_list_cancels_all() -> None:
    mode = {"q": Quoter.touch}
    strat = Quoter(fn=lambda t: mode["q"](t))
    eng, gw, clock = make([strat])
    go_live(eng)
    for o in gw.submitted:
        ack(eng, o)
    mode["q"] = lambda t: None
    frame(eng, ticker(104, "99.00", "102.00"), clock)
    assert gw.cancels == [] and len(gw.submitted) == 2
    mode["q"] = lambda t: []
    frame(eng, ticker(105, "99.01", "102.00"), clock)
    assert len(gw.cancels) == 2 and len(gw.submitted) == 2


def test_crossed_top_is_not_quoted() -> None:
    strat = Quoter()
    eng, gw, clock = make([strat])
    go_live(eng)
    n = len(strat.tops)
    frame(eng, ticker(104, "101.50", "101.00"), clock)
    assert len(strat.tops) == n and eng.counters["crossed_or_empty_tops"] == 1


def test_strategy_exception_is_counted_and_the_engine_goes_on() -> None:
    def boom(top: BookTop) -> list[Quote]:
        raise RuntimeError("bug")

    bad, good = Quoter("bad", fn=boom), Quoter("good")
    eng, gw, clock = make([bad, good])
    go_live(eng)
    assert eng.counters["strategy_errors"] == 1 and {o.strategy for o in gw.submitted} == {"good"}


def test_trade_and_foreign_frames_do_not_touch_books() -> None:
    eng, gw, clock = make([Quoter()])
    go_live(eng)
    frame(eng, b'{"stream":"btcusdt@trade","data":{"e":"trade","p":"1","q":"1"}}', clock)
    frame(eng, b'{"stream":"ethusdt@bookTicker","data":{"u":1,"b":"1","B":"1","a":"2","A":"1"}}', clock)
    frame(eng, b'{"result":null,"id":1}', clock)
    frame(eng, b'{"stream":"btcusdt@kline_1m","data":{}}', clock)
    frame(eng, b'{"stream":"btcusdt@depth20@100ms","data":{"lastUpdateId":1,"bids":[],"asks":[]}}', clock)
    assert eng.n_trades == 1 and eng.counters["unrouted_frames"] == 4
    assert eng.book_sync(SYM).trusted


# ------------------------------------------------------------------------------------------------
# Limits
# ------------------------------------------------------------------------------------------------


def test_never_more_live_orders_than_the_strategy_maximum() -> None:
    """Cancels in flight and UNKNOWN orders count as live until the venue says otherwise
    (plain cancel + new; the cancel-replace variant is tested further down)."""
    strat = Quoter(
        max_live_orders=2,
        fn=lambda t: [Quote(Side.BUY, INST.ticks_to_price(t.bid_price), D("0.001"))],
        use_cancel_replace=False,
    )
    eng, gw, clock = make([strat])
    go_live(eng)
    peak = 0
    for i in range(40):
        frame(eng, ticker(104 + i, f"{100 + (i % 5) / 100:.2f}", "101.00"), clock)
        if i % 3 == 0 and gw.submitted:  # ack some, leave others pending
            last = gw.submitted[-1]
            if eng.tracker.get(last.client_order_id).status is S.PENDING_NEW:  # type: ignore[union-attr]
                ack(eng, last)
        if i == 20:  # one order's fate becomes unknown: it still counts
            ack(eng, gw.submitted[-1], S.UNKNOWN)
        peak = max(peak, len(live(eng)))
        assert len(live(eng)) <= 2
    assert peak == 2 and eng.counters["deferred_by_max_live"] > 0
    # cancels resolve: the deferred quote is placed right away, still within the limit
    before = len(gw.submitted)
    for c in list(gw.cancels):
        o = eng.tracker.get(c.client_order_id)
        if o is not None and o.status is S.PENDING_CANCEL:
            cancelled(eng, c.client_order_id)
            assert len(live(eng)) <= 2
    assert len(gw.submitted) > before


def test_vetoed_quotes_do_not_use_up_room() -> None:
    class VetoSells:
        name = "no-sells"

        def check(self, order: OrderRequest, ctx: Any) -> str | None:
            return "no sells" if order.side is Side.SELL else None

    eng, gw, _ = make([Quoter(max_live_orders=1)], [VetoSells()])
    go_live(eng)
    assert [o.side for o in gw.submitted] == [Side.BUY]


def test_order_rate_counts_what_left_wherever_it_sits_in_the_chain() -> None:
    """The engine reports each order it hands over (``order_sent``): an order-rate check first in
    the chain does not count the orders a later check denies, nor the engine's rehearsals."""
    from botcore_risk_basic.checks import OrderRateCheck

    class VetoSells:
        name = "no-sells"

        def check(self, order: OrderRequest, ctx: Any) -> str | None:
            return "no sells" if order.side is Side.SELL else None

    rate = OrderRateCheck.from_params({"per_second": 3})
    eng, gw, clock = make([Rehearser(max_live_orders=2)], [rate, VetoSells()], rehearse_interval=0.001)
    go_live(eng)
    assert [o.side for o in gw.submitted] == [Side.BUY] and eng.vetoes["no-sells"] == 1
    now = eng._clock()
    assert rate.count(now, NS_PER_S) == 1  # the denied sell is not in the window
    for o in gw.submitted:
        ack(eng, o)
    for _ in range(5):
        clock.advance(0.002)
        eng.idle()
    assert eng.n_rehearsals == 5 and rate.count(eng._clock(), NS_PER_S) == 1


def test_a_failing_order_sent_is_logged_and_quoting_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    class BadCounter:
        name = "bad-counter"

        def check(self, order: OrderRequest, ctx: Any) -> str | None:
            return None

        def order_sent(self, order: OrderRequest, ctx: Any) -> None:
            raise RuntimeError("counter bug")

    with caplog.at_level(logging.ERROR):
        eng, gw, _ = make([Quoter(max_live_orders=2)], [BadCounter()])
        go_live(eng)
    assert len(gw.submitted) == 2  # both orders went out
    assert sum("bad-counter failed in order_sent" in r.getMessage() for r in caplog.records) == 2


class Gate:
    """A risk check that never looks at the order: counts its calls, vetoes while ``closed``."""

    def __init__(self, name: str, per_decision: bool, closed: str | None = None, fail: bool = False) -> None:
        self.name = name
        self.per_decision = per_decision
        self.rehearsable = True
        self.closed = closed
        self.fail = fail
        self.calls = 0

    def check(self, order: OrderRequest, ctx: Any) -> str | None:
        self.calls += 1
        if self.fail:
            raise RuntimeError("gate bug")
        return self.closed


def test_a_per_decision_check_is_asked_once_per_decision_and_its_answer_stands_for_every_order() -> None:
    once, each = Gate("once", per_decision=True), Gate("each", per_decision=False)
    strat = Rehearser(max_live_orders=2)
    eng, gw, clock = make([strat], [once, each], rehearse_interval=0.001)
    go_live(eng)  # one decision, two orders
    assert len(gw.submitted) == 2 and (once.calls, each.calls) == (1, 2)
    for o in gw.submitted:
        ack(eng, o)
    frame(eng, ticker(104, "100.05", "100.95"), clock)  # the next decision asks again
    assert len(gw.orders) == 4 and (once.calls, each.calls) == (2, 4)
    clock.advance(0.002)
    eng.idle()  # a rehearsal is a decision too
    assert eng.n_rehearsals == 1 and (once.calls, each.calls) == (3, 6)

    for o in gw.orders[2:]:
        ack(eng, o)
    once.closed = "halted"  # a veto holds for all the decision's orders, each one counted
    frame(eng, ticker(105, "100.10", "100.90"), clock)
    assert (once.calls, each.calls) == (4, 6) and len(gw.orders) == 4
    assert eng.vetoes["once"] == 2


def test_a_failing_per_decision_check_denies_the_whole_decision_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = Gate("broken-gate", per_decision=True, fail=True)
    with caplog.at_level(logging.ERROR):
        eng, gw, _ = make([Quoter(max_live_orders=2)], [gate])
        go_live(eng)
    assert not gw.submitted and gate.calls == 1 and eng.vetoes["broken-gate"] == 2
    assert sum("risk check broken-gate failed" in r.getMessage() for r in caplog.records) == 1


def test_the_built_in_checks_that_ignore_the_order_are_per_decision() -> None:
    from botcore_risk_basic import checks as c

    assert Reconciler.per_decision is True
    assert c.StaleDataCheck.per_decision and c.DrawdownCheck.per_decision and c.DailyLossCheck.per_decision
    for kind in (c.MaxPositionCheck, c.MaxInventoryValueCheck, c.MaxOrderNotionalCheck, c.MaxOpenOrdersCheck):
        assert kind.per_decision is False, kind  # they judge the order, or the live orders it adds to
    assert c.OrderRateCheck.per_decision is False and c.PriceBandCheck.per_decision is False


# ------------------------------------------------------------------------------------------------
# Idle rehearsals of the order path
# ------------------------------------------------------------------------------------------------


class Rehearser(Quoter):
    """A Quoter whose ``rehearse`` answers what ``on_top`` would (or raises, if told to)."""

    def __init__(self, fail: bool = False, **kw: Any) -> None:
        super().__init__(**kw)
        self.rehearsed: list[BookTop] = []
        self.fail = fail

    def rehearse(self, ctx: Any, top: BookTop) -> list[Quote] | None:
        if self.fail:
            raise RuntimeError("rehearsal bug")
        self.rehearsed.append(top)
        return self.fn(top)


class Seen:
    """A risk check that records every order it is asked about; vetoes sells if told to."""

    def __init__(self, name: str, rehearsable: bool, veto_sells: bool = False) -> None:
        self.name = name
        self.rehearsable = rehearsable
        self.veto_sells = veto_sells
        self.orders: list[OrderRequest] = []

    def check(self, order: OrderRequest, ctx: Any) -> str | None:
        self.orders.append(order)
        return "no sells" if self.veto_sells and order.side is Side.SELL else None


def test_idle_rehearses_quotes_through_the_rehearsable_checks_and_sends_nothing() -> None:
    strat = Rehearser()
    pure, counting = Seen("pure", rehearsable=True, veto_sells=True), Seen("rate", rehearsable=False)
    eng, gw, clock = make([strat], [pure, counting], rehearse_interval=0.001)
    go_live(eng)
    for o in gw.submitted:
        ack(eng, o)
    sent, seen_pure, seen_rate = len(gw.orders), len(pure.orders), len(counting.orders)
    vetoes, tracked, next_id = dict(eng.vetoes), len(eng.tracker), eng._ids.seq
    counters = dict(eng.counters)

    eng.idle()
    assert len(strat.rehearsed) == 1 and eng.n_rehearsals == 1
    rehearsal_orders = pure.orders[seen_pure:]
    assert [(o.side, o.client_order_id) for o in rehearsal_orders] == [
        (Side.BUY, "rehearsal"),
        (Side.SELL, "rehearsal"),
    ]
    assert len(counting.orders) == seen_rate  # a counting check never sees a rehearsal
    assert len(gw.orders) == sent and not gw.cancels and not gw.replaces
    assert dict(eng.vetoes) == vetoes  # the rehearsed sell was vetoed: not counted
    assert len(eng.tracker) == tracked and eng._ids.seq == next_id and dict(eng.counters) == counters
    # the tracker's steps ran on the stand-in, legally, and left nothing behind
    stand_in = eng._stand_in
    assert len(stand_in) == 0 and stand_in.get("rehearsal") is None and stand_in.illegal == 0
    assert stand_in.version == 2 * 4  # per rehearsed quote: tracked, acknowledged, cancel requested, cancelled

    eng.idle()  # within the interval: nothing
    assert len(strat.rehearsed) == 1
    clock.advance(0.002)
    eng.idle()
    assert len(strat.rehearsed) == 2

    frame(eng, ticker(104, "100.05", "100.95"), clock)  # a real requote: ids continue, no gap
    assert [o.client_order_id for o in gw.orders[sent:]] == [eng._ids.make(next_id + 1)]
    assert pure.orders[-1].client_order_id == eng._ids.make(next_id + 2)  # the vetoed sell


def test_no_rehearsal_when_switched_off_paused_or_for_plain_strategies() -> None:
    strat, plain = Rehearser(name="r"), Quoter(name="q")
    eng, gw, clock = make([strat, plain], rehearse_interval=None)
    go_live(eng)
    eng.idle()
    assert strat.rehearsed == []
    eng2, gw2, clock2 = make([Rehearser()])
    eng2.idle()  # no trusted book yet: nothing to rehearse
    assert eng2._rehearsers[0].rehearsed == [] and eng2.n_rehearsals == 0


def test_a_failing_rehearsal_is_counted_and_the_engine_goes_on() -> None:
    strat = Rehearser(fail=True)
    eng, gw, clock = make([strat])
    go_live(eng)
    for o in gw.submitted:
        ack(eng, o)
    eng.idle()
    clock.advance(0.01)
    eng.idle()
    assert eng.counters["rehearsal_errors"] == 2
    n = len(gw.orders)
    frame(eng, ticker(104, "100.05", "100.95"), clock)
    assert len(gw.orders) == n + 2  # quoting goes on


def test_a_rehearsal_failing_half_way_leaves_no_stand_in_order_behind() -> None:
    strat = Rehearser()
    eng, gw, clock = make([strat])
    go_live(eng)
    for o in gw.submitted:
        ack(eng, o)
    broken = eng._stand_in

    def boom(cid: str) -> bool:
        raise RuntimeError("tracker bug")

    broken.request_cancel = boom  # type: ignore[method-assign]
    eng.idle()
    assert eng.counters["rehearsal_errors"] == 1 and len(broken) == 1  # it failed with an order tracked
    clock.advance(0.01)
    eng.idle()  # a fresh stand-in: the same id can be tracked again
    assert eng.counters["rehearsal_errors"] == 1 and eng.n_rehearsals == 1
    assert eng._stand_in is not broken and len(eng._stand_in) == 0


def test_run_loop_rehearses_while_waiting_for_events() -> None:
    class Watcher(Rehearser):  # places nothing, so stopping has nothing to wait for
        def on_top(self, ctx: Any, top: BookTop) -> None:
            return None

        def rehearse(self, ctx: Any, top: BookTop) -> list[Quote] | None:
            self.rehearsed.append(top)
            return Quoter.touch(top)

    strat = Watcher()
    eng, gw, clock = make([strat], rehearse_interval=0.0)
    go_live(eng)
    eng._owner = None  # go_live drove the engine from this thread; the run loop takes it over
    t = threading.Thread(target=eng.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 5
    while not strat.rehearsed and time.monotonic() < deadline:
        time.sleep(0.01)
    eng.stop("test over")
    t.join(5)
    assert strat.rehearsed and not t.is_alive()


# ------------------------------------------------------------------------------------------------
# Unknown outcomes
# ------------------------------------------------------------------------------------------------


def test_unknown_new_is_queried_never_resent() -> None:
    eng, gw, clock = make([Quoter()])
    go_live(eng)
    bid, ask = gw.submitted
    ack(eng, bid, S.UNKNOWN, error_msg="TimeoutError: read timed out")
    assert gw.queries == [bid.client_order_id]
    assert eng.tracker.get(bid.client_order_id).status is S.UNKNOWN  # type: ignore[union-attr]
    frame(eng, ticker(104, "100.00", "101.00", bq="2"), clock)  # same quotes: no duplicate order
    assert len(gw.submitted) == 2
    eng.process(GatewayResult(OrderOutcome("query", SYM, bid.client_order_id, S.NEW, order_id=9)))
    o = eng.tracker.get(bid.client_order_id)
    assert o is not None and o.status is S.NEW and o.order_id == 9
    assert eng.counters["unknown_outcomes"] == 1 and eng.tracker.unknown() == []


def test_failed_query_is_retried_later_with_backoff() -> None:
    eng, gw, clock = make([Quoter()], query_retry=0.5)
    go_live(eng)
    bid = gw.submitted[0]
    ack(eng, bid, S.UNKNOWN)
    eng.process(GatewayResult(OrderOutcome("query", SYM, bid.client_order_id, S.UNKNOWN, error_msg="5xx")))
    eng.drain()
    assert gw.queries == [bid.client_order_id]  # not yet
    clock.advance(0.6)
    eng.drain()
    assert gw.queries == [bid.client_order_id] * 2
    eng.process(GatewayResult(OrderOutcome("query", SYM, bid.client_order_id, S.FILLED, cum_qty=D("0.001"))))
    assert eng.tracker.get(bid.client_order_id).status is S.FILLED  # type: ignore[union-attr]


def test_no_such_order_is_believed_only_after_the_grace_period() -> None:
    eng, gw, clock = make([Quoter()], unknown_grace=10.0)
    go_live(eng)
    bid = gw.submitted[0]
    ack(eng, bid, S.UNKNOWN)
    no = OrderOutcome(
        "query", SYM, bid.client_order_id, S.REJECTED, error_code=-2013, error_msg="Order does not exist."
    )
    eng.process(GatewayResult(no))
    assert eng.tracker.get(bid.client_order_id).status is S.UNKNOWN  # type: ignore[union-attr]
    clock.advance(10.5)
    eng.drain()
    assert gw.queries == [bid.client_order_id] * 2
    eng.process(GatewayResult(no))
    assert eng.tracker.get(bid.client_order_id).status is S.REJECTED  # type: ignore[union-attr]


def test_cancel_of_unknown_order_queries_and_other_cancel_rejects_revert() -> None:
    eng, gw, clock = make([Quoter()])
    go_live(eng)
    bid, ask = gw.submitted
    ack(eng, bid)
    ack(eng, ask)
    frame(eng, ticker(104, "99.50", "101.50"), clock)  # both move: both cancelled
    cancelled(eng, bid.client_order_id, S.REJECTED, error_code=-2011, error_msg="Unknown order sent.")
    assert eng.tracker.get(bid.client_order_id).status is S.UNKNOWN  # type: ignore[union-attr]
    assert gw.queries == [bid.client_order_id]
    cancelled(eng, ask.client_order_id, S.REJECTED, error_code=-1015, error_msg="Too many new orders")
    assert eng.tracker.get(ask.client_order_id).status is S.NEW  # type: ignore[union-attr]


def test_cancel_waits_for_the_ack_of_a_pending_order() -> None:
    eng, gw, clock = make([Quoter()])
    go_live(eng)
    bid = gw.submitted[0]
    frame(eng, ticker(104, "99.50", "101.00"), clock)  # bid moved before the ack came
    assert gw.cancels == []
    assert eng.tracker.get(bid.client_order_id).cancel_wanted  # type: ignore[union-attr]
    eng.process(report(bid.client_order_id, S.NEW, "NEW"))  # the stream beats the REST ack
    assert [c.client_order_id for c in gw.cancels] == [bid.client_order_id]
    ack(eng, bid)  # late REST ack: no regression, no second cancel
    assert eng.tracker.get(bid.client_order_id).status is S.PENDING_CANCEL  # type: ignore[union-attr]
    assert len(gw.cancels) == 1


# ------------------------------------------------------------------------------------------------
# Trust
# ------------------------------------------------------------------------------------------------


class Recorder:
    """A plugin recording every per-event hook."""

    def __init__(self, veto: str | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.veto = veto
        self.gateway: FakeGateway | None = None

    @hookimpl
    def botcore_quotes_decided(self, strategy: str, symbol: str, quotes: Sequence[Quote]) -> None:
        self.calls.append(("quotes", (strategy, symbol, len(quotes))))

    @hookimpl
    def botcore_order_check(self, order: OrderRequest, context: Any) -> str | None:
        self.calls.append(("check", order.client_order_id))
        return self.veto if order.side is Side.SELL else None

    @hookimpl(wrapper=True)
    def botcore_order_submit(self, order: OrderRequest) -> Any:
        assert self.gateway is not None
        before = len(self.gateway.submitted)
        result = yield
        self.calls.append(("submit-wrapped", len(self.gateway.submitted) - before))
        return result

    @hookimpl
    def botcore_order_submitted(self, order: OrderRequest) -> None:
        self.calls.append(("submitted", order.client_order_id))

    @hookimpl
    def botcore_order_outcome(self, outcome: OrderOutcome) -> None:
        self.calls.append(("outcome", outcome.status))

    @hookimpl
    def botcore_order_filled(self, fill: Fill) -> None:
        self.calls.append(("filled", fill.trade_id))

    @hookimpl
    def botcore_order_cancelled(self, report: ExecutionReport) -> None:
        self.calls.append(("cancelled", report.client_order_id))

    @hookimpl
    def botcore_trust_changed(self, stream: str, trusted: bool, reason: str) -> None:
        self.calls.append(("trust", (stream, trusted, reason)))

    @hookimpl
    def botcore_reconcile_report(self, job: str, drifts: Sequence[Any]) -> None:
        self.calls.append(("reconcile", (job, len(drifts))))

    def of(self, kind: str) -> list[Any]:
        return [v for k, v in self.calls if k == kind]


def hooked(veto: str | None = None, **kw: Any) -> tuple[Engine, FakeGateway, Clock, Recorder, Quoter]:
    rec = Recorder(veto)
    hooks = Hooks(get_plugin_manager(load_entrypoints=False, extra=[rec]))
    strat = Quoter()
    eng, gw, clock = make([strat], hooks=hooks, **kw)
    rec.gateway = gw
    return eng, gw, clock, rec, strat


def test_gap_pauses_quoting_cancels_orders_and_resumes_after_resync() -> None:
    eng, gw, clock, rec, strat = hooked()
    go_live(eng)
    assert rec.of("trust") == [("market:BTCUSDT", True, "resynced")]
    for o in gw.submitted:
        ack(eng, o)
    frame(eng, depth(104, 105), clock)
    frame(eng, depth(108, 109), clock)  # 106..107 lost
    assert rec.of("trust")[-1] == ("market:BTCUSDT", False, "sequence gap")
    assert not eng.is_quoting(SYM) and len(gw.cancels) == 2 and gw.depths == [SYM, SYM]
    n_tops = len(strat.tops)
    frame(eng, ticker(110, "100.00", "101.00"), clock)  # no quoting while the book resyncs
    assert len(strat.tops) == n_tops
    for c in gw.cancels:
        cancelled(eng, c.client_order_id)
    eng.process(
        DepthSnapshot(
            SYM,
            json.dumps({"lastUpdateId": 108, "bids": [["100.00", "1"]], "asks": [["101.00", "1"]]}).encode(),
            0,
        )
    )
    assert eng.is_quoting(SYM) and rec.of("trust")[-1] == ("market:BTCUSDT", True, "resynced")
    assert len(gw.submitted) == 4  # requoted straight away
    assert eng.book_sync(SYM).gaps == 1 and eng.counters["quoting_paused"] == 1


def test_snapshot_requests_are_rate_limited() -> None:
    eng, gw, clock = make([Quoter()])
    eng.config.snapshot_min_interval = 1.0
    go_live(eng)
    frame(eng, depth(200, 201), clock)  # gap
    eng.process(DepthSnapshot(SYM, b"", 0))  # the fetch failed
    assert gw.depths == [SYM]  # the retry waits for the interval
    clock.advance(1.1)
    eng.drain()
    assert gw.depths == [SYM, SYM]


def test_user_stream_loss_pauses_and_cancels_then_resumes() -> None:
    eng, gw, clock, rec, strat = hooked()
    go_live(eng)
    bid, ask = gw.submitted
    ack(eng, bid)  # ask still pending
    eng.process(StreamStatus("user", False, "reconnecting", 0))
    assert ("user", False, "reconnecting") in rec.of("trust")
    assert [c.client_order_id for c in gw.cancels] == [bid.client_order_id]
    assert eng.tracker.get(ask.client_order_id).cancel_wanted  # type: ignore[union-attr]
    ack(eng, ask)
    assert [c.client_order_id for c in gw.cancels] == [bid.client_order_id, ask.client_order_id]
    frame(eng, ticker(104, "100.50", "101.00"), clock)
    assert len(gw.submitted) == 2  # paused
    for c in gw.cancels:
        cancelled(eng, c.client_order_id)
    eng.process(StreamStatus("user", True, "subscribed", 0))
    assert eng.is_quoting(SYM) and len(gw.submitted) == 4
    eng.process(StreamStatus("user", True, "heartbeat", 0))  # no change: freshness only
    assert rec.of("trust").count(("user", True, "heartbeat")) == 0


def test_market_reconnect_rebuilds_the_book() -> None:
    eng, gw, clock = make([Quoter()])
    go_live(eng)
    eng.process(StreamStatus("market", False, "reconnecting", 0))
    assert not eng.book_sync(SYM).trusted and eng.book_sync(SYM).book.state == 0
    eng.process(StreamStatus("market", True, "connected", 0))
    assert not eng.is_quoting(SYM)  # trusted stream, but the book is not synced yet
    frame(eng, depth(300, 302), clock)
    assert gw.depths == [SYM, SYM]
    eng.process(
        DepthSnapshot(
            SYM,
            json.dumps({"lastUpdateId": 301, "bids": [["1.00", "1"]], "asks": [["2.00", "1"]]}).encode(),
            0,
        )
    )
    assert eng.is_quoting(SYM)
    eng.process(StreamStatus("market:BTCUSDT", False, "stalled", 0))
    assert not eng.is_quoting(SYM)
    eng.process(StreamStatus("bogus", False, "?", 0))  # ignored


# ------------------------------------------------------------------------------------------------
# Risk and hooks
# ------------------------------------------------------------------------------------------------


class Veto:
    def __init__(self, name: str, reason: str | None = "too big", raise_: bool = False) -> None:
        self.name, self.reason, self.raise_ = name, reason, raise_
        self.seen: list[str] = []

    def check(self, order: OrderRequest, ctx: Any) -> str | None:
        self.seen.append(order.client_order_id)
        if self.raise_:
            raise RuntimeError("broken check")
        return self.reason


def test_first_veto_wins_and_is_counted_per_check() -> None:
    first, second = Veto("first"), Veto("second")
    eng, gw, _ = make([Quoter()], [first, second])
    go_live(eng)
    assert gw.submitted == [] and eng.tracker.live_count() == 0
    assert eng.vetoes == {"first": 2} and second.seen == []
    eng.drain()  # housekeeping publishes the status snapshot
    assert eng.status()["vetoes"] == {"first": 2}


def test_shadow_check_logs_but_lets_orders_through() -> None:
    shadow, real = Veto("shadowed"), Veto("ok", reason=None)
    eng, gw, _ = make([Quoter()], [RiskLink("shadowed", shadow, shadow=True), real])
    go_live(eng)
    assert len(gw.submitted) == 2 and eng.shadow_vetoes == {"shadowed": 2} and eng.vetoes == {}
    assert len(real.seen) == 2  # the chain went on


def test_a_raising_check_fails_closed() -> None:
    eng, gw, _ = make([Quoter()], [Veto("buggy", raise_=True)])
    go_live(eng)
    assert gw.submitted == [] and eng.vetoes == {"buggy": 2}


def test_plugin_hooks_around_the_order_path() -> None:
    eng, gw, clock, rec, strat = hooked(veto="plugin says no")
    go_live(eng)
    assert rec.of("quotes") == [("mm", SYM, 2)]
    assert len(rec.of("check")) == 2 and eng.vetoes == {"plugin": 1}
    (bid,) = gw.submitted  # the sell was vetoed by the plugin, after the risk chain
    assert rec.of("submit-wrapped") == [1]  # the wrapper saw the hand-off happen inside it
    assert rec.of("submitted") == [bid.client_order_id]
    ack(eng, bid)
    assert rec.of("outcome") == [S.NEW]
    eng.process(
        report(bid.client_order_id, S.PARTIALLY_FILLED, "TRADE", cum="0.0005", last="0.0005", trade_id=11)
    )
    assert rec.of("filled") == [11] and [f.trade_id for f in strat.fills] == [11]
    eng.process(report(bid.client_order_id, S.CANCELED, "CANCELED", cum="0.0005"))
    assert rec.of("cancelled") == [bid.client_order_id]
    assert [r.status for r in strat.updates] == [S.PARTIALLY_FILLED, S.CANCELED]


def test_order_submitted_hooks_run_after_every_order_of_the_tick_left() -> None:
    """The journal's write in ``order_submitted`` must not delay the tick's next order."""
    eng, gw, clock, rec, strat = hooked()
    go_live(eng)
    kinds = [k for k, _ in rec.calls if k in ("check", "submit-wrapped", "submitted")]
    assert kinds == ["check", "submit-wrapped", "check", "submit-wrapped", "submitted", "submitted"]
    assert rec.of("submitted") == [o.client_order_id for o in gw.submitted]
    for o in gw.submitted:
        ack(eng, o)
    frame(eng, ticker(104, "100.50", "102.00"), clock)  # both quotes move: two replaces
    assert len(gw.replaces) == 2
    tail = [k for k, _ in rec.calls if k in ("check", "submit-wrapped", "submitted")][6:]
    assert tail == ["check", "submit-wrapped", "check", "submit-wrapped", "submitted", "submitted"]
    assert rec.of("submitted")[2:] == [new.client_order_id for _, new in gw.replaces]


def test_tick_wait_is_the_part_of_tick_to_order_before_the_strategy() -> None:
    eng, gw, clock, rec, strat = hooked()
    go_live(eng)  # frames stamped 0: not timed
    assert eng.tick_to_order.count == 0 and eng.tick_wait.count == 0
    for o in gw.submitted:
        ack(eng, o)
    frame(eng, ticker(104, "100.50", "102.00"), clock, age_ns=7_000)  # waited 7 µs in the queue
    assert eng.tick_wait.count == eng.tick_to_order.count == 2
    assert eng.tick_wait.min_ns == eng.tick_wait.max_ns == 7_000  # the fake clock stands still
    assert eng.tick_to_order.min_ns >= 7_000


def test_order_submit_hook_failure_before_hand_off_means_not_sent() -> None:
    class Broken:
        @hookimpl
        def botcore_order_submit(self, order: OrderRequest) -> None:
            raise RuntimeError("audit log down")

    hooks = Hooks(get_plugin_manager(load_entrypoints=False, extra=[Broken()]))
    eng, gw, _ = make([Quoter()], hooks=hooks)
    go_live(eng)
    assert gw.submitted == [] and eng.tracker.live_count() == 0
    assert all(o.status is S.REJECTED for o in eng.tracker)


def test_stateful_risk_check_halts_and_resumes() -> None:
    class Drawdown:
        name = "drawdown"

        def __init__(self) -> None:
            self.fills: list[int] = []
            self.stop: str | None = None

        def check(self, order: OrderRequest, ctx: Any) -> str | None:
            return None

        def on_fill(self, fill: Fill, ctx: Any) -> None:
            self.fills.append(fill.trade_id)
            self.stop = "loss limit"

        def halted(self, ctx: Any) -> str | None:
            return self.stop

    dd = Drawdown()
    eng, gw, clock = make([Quoter()], [dd])
    go_live(eng)
    bid, ask = gw.submitted
    ack(eng, bid)
    ack(eng, ask)
    eng.process(
        report(bid.client_order_id, S.PARTIALLY_FILLED, "TRADE", cum="0.0005", last="0.0005", trade_id=5)
    )
    assert dd.fills == [5]
    assert not eng.is_quoting(SYM) and eng.counters["risk_halts"] == 1
    eng.drain()
    assert eng.status()["halted"] == "risk drawdown: loss limit"
    assert {c.client_order_id for c in gw.cancels} == {bid.client_order_id, ask.client_order_id}
    dd.stop = None
    clock.advance(0.1)
    eng.drain()
    assert eng.is_quoting(SYM)


# ------------------------------------------------------------------------------------------------
# User data, reconciliation, jobs, context
# ------------------------------------------------------------------------------------------------


def test_fills_are_applied_once_whatever_the_source() -> None:
    strat = Quoter()
    eng, gw, _ = make([strat])
    go_live(eng)
    bid = gw.submitted[0]
    fill = Fill(SYM, bid.client_order_id, 1, 77, Side.BUY, D("100"), D("0.0005"), D(0), "USDT", True, 1)
    eng.process(
        GatewayResult(
            OrderOutcome("new", SYM, bid.client_order_id, S.PARTIALLY_FILLED, cum_qty=D("0.0005")), (fill,)
        )
    )
    eng.process(
        report(bid.client_order_id, S.PARTIALLY_FILLED, "TRADE", cum="0.0005", last="0.0005", trade_id=77)
    )
    assert eng.n_fills == 1 and len(strat.fills) == 1
    assert eng.positions.position(SYM) == D("0.0005")


def test_account_updates_reach_the_position_cache() -> None:
    eng, _, _ = make()
    eng.process(UserEvent(AccountUpdate((Balance("USDT", D("900"), D("100")),), 10), 0))
    eng.process(UserEvent(BalanceDelta("USDT", D("50"), 20), 0))
    assert eng.positions.free("USDT") == D("950") and eng.positions.locked("USDT") == D("100")


def test_reconcile_snapshot_reports_drifts_through_the_hook() -> None:
    eng, gw, clock, rec, strat = hooked()
    eng.process(ReconcileSnapshot("light", AccountSnapshot((Balance("USDT", D("10"), D(0)),), (), 5, 6)))
    assert rec.of("reconcile") == [("light", 1)] and eng.positions.free("USDT") == D("10")
    assert eng.counters["drifts"] == 1


def _open(order: OrderRequest) -> Any:
    from botcore.model import OpenOrder

    return OpenOrder(
        SYM,
        order.client_order_id,
        1,
        order.side,
        "LIMIT_MAKER",
        S.NEW,
        order.price,
        order.qty,
        D(0),
        D(0),
        1,
        1,
    )


def test_reconcile_queries_acknowledged_orders_the_venue_no_longer_lists() -> None:
    eng, gw, clock = make([Quoter()], reconcile_grace=5.0)
    go_live(eng)
    bid, ask = gw.submitted
    ack(eng, bid)
    ack(eng, ask)
    snap = AccountSnapshot((), (_open(ask),), 5, 6)
    eng.process(ReconcileSnapshot("light", snap))
    assert gw.queries == []  # too recent to question
    clock.advance(6)
    eng.process(ReconcileSnapshot("light", snap))
    assert gw.queries == [bid.client_order_id] and eng.counters["reconcile_queries"] == 1
    assert eng.tracker.get(bid.client_order_id).status is S.UNKNOWN  # type: ignore[union-attr]
    assert eng.tracker.get(ask.client_order_id).status is S.NEW  # type: ignore[union-attr]
    eng.process(GatewayResult(OrderOutcome("query", SYM, bid.client_order_id, S.FILLED, cum_qty=D("0.001"))))
    assert eng.tracker.get(bid.client_order_id).status is S.FILLED  # type: ignore[union-attr]


def test_requests_without_an_answer_are_queried_after_the_timeout() -> None:
    eng, gw, clock = make([Quoter()], pending_timeout=30.0)
    go_live(eng)
    eng.drain()
    assert gw.queries == []
    clock.advance(31)
    eng.drain()
    assert sorted(gw.queries) == sorted(o.client_order_id for o in gw.submitted)
    assert eng.counters["pending_timeouts"] == 2
    assert all(o.status is S.UNKNOWN for o in eng.tracker.live())


def test_load_snapshot_before_start_only() -> None:
    eng, _, _ = make()
    drifts = eng.load_snapshot(AccountSnapshot((Balance("BTC", D("0.5"), D(0)),), (), 1, 1))
    assert eng.positions.free("BTC") == D("0.5") and len(drifts) == 1
    eng.process(JobRequest("nothing"))
    with pytest.raises(RuntimeError):
        eng.load_snapshot(AccountSnapshot((), (), 1, 1))


def test_context_facts_for_strategies_and_risk_checks() -> None:
    seen: dict[str, Any] = {}

    def look(top: BookTop) -> list[Quote]:
        ctx = eng.ctx
        seen["age"] = ctx.market_age_ns(SYM)
        seen["gap"] = ctx.has_gap(SYM)
        seen["top"] = ctx.book(SYM).top()
        seen["live"] = ctx.live_orders(SYM, "mm")
        seen["trusted"] = ctx.is_trusted(SYM)
        return Quoter.touch(top)

    eng, gw, clock = make([Quoter(fn=look)])
    ctx = eng.ctx
    assert ctx.has_gap(SYM) and ctx.book(SYM).top() is None and ctx.market_age_ns(SYM) > 10**15
    go_live(eng)
    for o in gw.submitted:
        ack(eng, o)
    clock.advance(2)
    frame(eng, ticker(104, "100.10", "101.00"), clock, age_ns=1_000)
    assert seen["age"] == 1_000 and seen["gap"] is False and seen["trusted"] is True
    assert seen["top"].bid_price == 10010 and seen["top"].symbol == SYM
    assert all(isinstance(v, OrderView) for v in seen["live"]) and len(seen["live"]) == 2
    with pytest.raises(AttributeError):
        seen["live"][0].price = D(1)  # read-only copies
    assert ctx.user_stream_age_ns() >= 2 * 10**9
    eng.process(UserEvent(BalanceDelta("USDT", D(1), 5), 0))
    assert ctx.user_stream_age_ns() == 0
    assert ctx.clock_skew_ms() == 0
    eng.process(JobRequest("clock_skew", {"skew_ms": -250}))
    assert ctx.clock_skew_ms() == -250
    assert ctx.instruments[SYM] is INST and ctx.positions.position(SYM) == 0
    assert ctx.book(SYM).depth(1) == ([(10000, 100000000)], [(10100, 100000000)])
    with pytest.raises(TypeError):
        ctx.instruments["X"] = INST  # type: ignore[index]


def test_job_requests_run_registered_handlers_on_the_engine_thread() -> None:
    eng, _, _ = make()
    got: list[tuple[str, int]] = []
    eng.on_job("ping", lambda e, p: got.append((threading.current_thread().name, p["n"])))
    eng.process(JobRequest("ping", {"n": 3}))
    assert got == [(threading.current_thread().name, 3)]


def test_engine_handle_for_jobs() -> None:
    eng, _, _ = make()
    h = EngineHandle(eng, adapter=None, config="cfg")
    h.put(JobRequest("x"))
    assert eng.backlog() == 1 and h.symbols == (SYM,) and h.config == "cfg"
    assert h.is_own_order("bcr0-5") and not h.is_own_order("x-123")
    assert "events" in h.status()


def test_handler_errors_are_counted_and_too_many_stop_the_engine() -> None:
    eng, _, _ = make(max_errors=3)
    eng._dispatch[JobRequest] = lambda ev: 1 / 0  # a bug in a handler
    for _ in range(3):
        eng.put(JobRequest("x"))
    eng.put(Stop("never reached"))
    eng.run()
    assert eng.counters["handler_errors"] == 3 and eng.stop_reason == "too many errors (3)"


# ------------------------------------------------------------------------------------------------
# Stop
# ------------------------------------------------------------------------------------------------


def test_stop_cancels_every_live_order_and_waits_for_the_outcomes() -> None:
    eng, gw, clock = make([Quoter()])
    go_live(eng)
    bid, ask = gw.submitted
    ack(eng, bid)
    eng.process(Stop("SIGTERM"))
    assert eng.is_running and [c.client_order_id for c in gw.cancels] == [bid.client_order_id]
    frame(eng, ticker(104, "90.00", "91.00"), clock)  # ignored while stopping
    assert len(gw.submitted) == 2
    ack(eng, ask)  # acked after the stop: cancelled too
    assert [c.client_order_id for c in gw.cancels] == [bid.client_order_id, ask.client_order_id]
    cancelled(eng, bid.client_order_id)
    assert eng.is_running
    cancelled(eng, ask.client_order_id)
    assert not eng.is_running and eng.stop_reason == "SIGTERM"


def test_stop_gives_up_after_the_timeout() -> None:
    eng, gw, clock = make([Quoter()], stop_timeout=2.0)
    go_live(eng)
    eng.put(Stop("test"))
    t = threading.Thread(target=lambda: (time.sleep(0.05), clock.advance(3)))
    t.start()
    assert eng.run() == "test"
    t.join()
    assert eng.tracker.live_count() == 2  # never answered: reported, not hidden


# ------------------------------------------------------------------------------------------------
# The real thing: engine thread + gateway pool + replay adapter
# ------------------------------------------------------------------------------------------------


def replay_engine(**adapter_kw: Any) -> tuple[Engine, ReplayAdapter, Quoter]:
    adapter = ReplayAdapter(**adapter_kw)
    inst = adapter.exchange_info([SYM])
    strat = Quoter(max_live_orders=4)
    cfg = EngineConfig(debug_thread_check=True, snapshot_min_interval=0.05)
    eng = Engine(inst, [strat], adapter=adapter, config=cfg)
    eng.load_snapshot(adapter.account_snapshot())
    return eng, adapter, strat


def test_threaded_run_only_the_engine_thread_writes_and_stop_cancels_everything() -> None:
    eng, adapter, strat = replay_engine(max_frames=60_000, stop_at_end=False)
    eng.start()
    adapter.start(eng, [SYM])
    assert adapter.wait_done(30)
    deadline = time.monotonic() + 10
    while eng.status()["live_orders"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    eng.stop("test over")
    assert eng.join(10)
    adapter.stop()
    assert eng.gateway.close()
    st = eng.status()
    assert st["counters"].get("handler_errors", 0) == 0  # no thread-ownership assertion fired
    assert st["orders"] > 0 and st["cancels"] > 0 and st["illegal_transitions"] == 0
    assert st["live_orders"] == 0 and adapter.open_orders() == []
    assert eng.stop_reason == "test over"
    assert eng.tick_to_order.count > 0 and st["latency_us"]["p50"] > 0
    assert all(top.bid_price < top.ask_price for top in strat.tops)


def test_debug_check_catches_a_write_from_another_thread() -> None:
    eng, adapter, _ = replay_engine()
    eng.process(JobRequest("noop"))  # binds the owner: this thread
    errors: list[BaseException] = []

    def intruder() -> None:
        for attempt in (
            lambda: eng.positions.apply_balance_delta(BalanceDelta("USDT", D(1), 99)),
            lambda: eng.tracker.track(OrderRequest(SYM, Side.BUY, D(1), D(1), client_order_id="evil")),
            lambda: eng.book_sync(SYM).book.clear(),
            lambda: eng.process(JobRequest("noop")),
        ):
            try:
                attempt()
            except (AssertionError, RuntimeError) as exc:
                errors.append(exc)

    t = threading.Thread(target=intruder, name="intruder")
    t.start()
    t.join()
    assert len(errors) == 4 and "intruder" in str(errors[0])
    eng.gateway.close()


def test_replayed_gap_resyncs_and_quoting_resumes() -> None:
    eng, adapter, strat = replay_engine(max_frames=40_000, drop_depth={200}, max_backlog=50)
    eng.start()
    adapter.start(eng, [SYM])
    assert eng.join(30) and eng.stop_reason == "replay finished"
    eng.gateway.close()
    sync = eng.book_sync(SYM)
    assert adapter.depth_dropped == 1
    assert sync.gaps == 1 and sync.snapshots_applied == 2 and sync.trusted
    assert not eng.is_quoting(SYM)  # stopped
    assert eng.counters["quoting_paused"] >= 1 and eng.counters["quoting_resumed"] >= 2
    assert eng.status()["live_orders"] == 0


def test_status_is_readable_from_another_thread_while_running() -> None:
    eng, adapter, _ = replay_engine(max_frames=20_000, stop_at_end=True)
    eng.start()
    adapter.start(eng, [SYM])
    seen = []
    while not eng.join(0.01):
        st = eng.status()
        seen.append(st["events"])
        st["events"] = -1  # a copy: the engine's own snapshot is untouched
    eng.gateway.close()
    assert seen == sorted(seen) and eng.status()["events"] >= 20_000
    assert set(eng.status()) >= {"quotes", "orders", "fills", "position", "pnl", "trusted", "latency_us"}


def test_put_is_safe_from_many_threads() -> None:
    eng, _, _ = make()
    got: list[int] = []
    eng.on_job("n", lambda e, p: got.append(p["i"]))

    def produce(base: int) -> None:
        for i in range(500):
            eng.put(JobRequest("n", {"i": base + i}))

    threads = [threading.Thread(target=produce, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    eng.put(Stop("done"))
    eng.start()
    assert eng.join(10)
    assert sorted(got) == sorted(k * 1000 + i for k in range(4) for i in range(500))


# ------------------------------------------------------------------------------------------------
# Cancel-replace: a requote that moves an order is ONE request holding ONE live-order slot
# ------------------------------------------------------------------------------------------------


def replaced(
    eng: Engine,
    pair: tuple[CancelRequest, OrderRequest],
    cancel_status: S = S.CANCELED,
    new_status: S = S.NEW,
    cancel_kw: dict[str, Any] | None = None,
    new_kw: dict[str, Any] | None = None,
) -> None:
    """Answer a cancel-replace the way the gateway does: the cancel leg's outcome, then the new leg's."""
    cancel, new = pair
    eng.process(
        GatewayResult(OrderOutcome("cancel", SYM, cancel.client_order_id, cancel_status, **(cancel_kw or {})))
    )
    eng.process(GatewayResult(OrderOutcome("new", SYM, new.client_order_id, new_status, **(new_kw or {}))))


def status_of(eng: Engine, cid: str) -> S:
    o = eng.tracker.get(cid)
    assert o is not None
    return o.status


def one_replace(
    **cfg: Any,
) -> tuple[Engine, FakeGateway, Clock, OrderRequest, tuple[CancelRequest, OrderRequest]]:
    """Two acknowledged quotes, then the bid moves: one cancel-replace of the bid is in flight."""
    eng, gw, clock = make([Quoter()], **cfg)
    go_live(eng)
    bid, ask = gw.submitted
    ack(eng, bid)
    ack(eng, ask)
    frame(eng, ticker(104, "100.01", "101.00"), clock)
    (pair,) = gw.replaces
    assert pair[0].client_order_id == bid.client_order_id and gw.cancels == []
    assert status_of(eng, bid.client_order_id) is S.PENDING_CANCEL
    assert status_of(eng, pair[1].client_order_id) is S.PENDING_NEW
    assert len(live(eng)) == 3 and eng.live_slots(SYM, "mm") == 2  # the pair holds one slot
    return eng, gw, clock, bid, pair


def test_replace_success_retires_the_old_order() -> None:
    eng, gw, clock, bid, pair = one_replace()
    replaced(eng, pair)
    assert status_of(eng, bid.client_order_id) is S.CANCELED
    assert status_of(eng, pair[1].client_order_id) is S.NEW
    assert len(live(eng)) == 2 and eng.live_slots(SYM, "mm") == 2
    assert eng._replaces == {} and eng._replaced_by == {}  # the link went with the old order
    assert eng.n_replaces == 1 and eng.n_orders == 3 and eng.n_cancels == 1


def test_replace_whose_old_order_is_gone_places_nothing_and_queries_the_old_one() -> None:
    """-2011 on the cancel leg: STOP_ON_FAILURE did not attempt the new order (-2022)."""
    eng, gw, clock, bid, pair = one_replace()
    replaced(
        eng,
        pair,
        S.REJECTED,
        S.REJECTED,
        {"error_code": -2011, "error_msg": "Unknown order sent."},
        {"error_code": -2022, "error_msg": "Order cancel-replace failed."},
    )
    assert status_of(eng, pair[1].client_order_id) is S.REJECTED
    assert status_of(eng, bid.client_order_id) is S.UNKNOWN and gw.queries == [bid.client_order_id]
    assert eng.counters["replace_not_attempted"] == 1 and "rejects" not in eng.counters
    eng.process(GatewayResult(OrderOutcome("query", SYM, bid.client_order_id, S.FILLED, cum_qty=D("0.001"))))
    assert status_of(eng, bid.client_order_id) is S.FILLED
    # nothing was resent blindly: the still-wanted bid goes out once, from the next decision
    assert len(gw.orders) == 3
    frame(eng, ticker(105, "100.01", "101.00", bq="2"), clock)
    assert len(gw.orders) == 4 and gw.orders[-1].price == D("100.01") and gw.submitted[-1] is gw.orders[-1]


def test_replace_with_the_new_leg_rejected_cancels_the_old_and_rejects_the_new() -> None:
    eng, gw, clock, bid, pair = one_replace()
    replaced(eng, pair, new_status=S.REJECTED, new_kw={"error_code": -2010, "error_msg": "would match"})
    assert status_of(eng, bid.client_order_id) is S.CANCELED
    assert status_of(eng, pair[1].client_order_id) is S.REJECTED
    assert eng.counters["rejects"] == 1 and len(live(eng)) == 1 and gw.queries == []


def test_replace_outcome_unknown_queries_both_and_never_resends() -> None:
    eng, gw, clock, bid, pair = one_replace()
    replaced(eng, pair, S.UNKNOWN, S.UNKNOWN, {"error_msg": "TimeoutError"}, {"error_msg": "TimeoutError"})
    old_cid, new_cid = bid.client_order_id, pair[1].client_order_id
    assert status_of(eng, old_cid) is S.UNKNOWN and status_of(eng, new_cid) is S.UNKNOWN
    assert sorted(gw.queries) == sorted([old_cid, new_cid])
    assert eng.live_slots(SYM, "mm") == 2  # still one slot for the pair, one for the ask
    for u in range(105, 110):  # the same quotes again: the UNKNOWN replacement is not doubled
        frame(eng, ticker(u, "100.01", "101.00", bq=str(u)), clock)
    assert len(gw.orders) == 3 and len(gw.replaces) == 1 and gw.cancels == []
    eng.process(GatewayResult(OrderOutcome("query", SYM, old_cid, S.CANCELED)))
    eng.process(GatewayResult(OrderOutcome("query", SYM, new_cid, S.NEW, order_id=7)))
    assert status_of(eng, old_cid) is S.CANCELED and status_of(eng, new_cid) is S.NEW
    assert eng.tracker.unknown() == [] and eng._replaces == {}


def test_an_unknown_pair_keeps_one_slot_until_the_replacement_is_known_not_to_exist() -> None:
    """The request never reached the venue: the old order is still there, the new one does not
    exist; a late copy could still arrive within the grace period, so the pair stays one slot."""
    eng, gw, clock, bid, pair = one_replace(unknown_grace=10.0)
    replaced(eng, pair, S.UNKNOWN, S.UNKNOWN)
    old_cid, new_cid = bid.client_order_id, pair[1].client_order_id
    eng.process(GatewayResult(OrderOutcome("query", SYM, old_cid, S.NEW)))
    no = OrderOutcome("query", SYM, new_cid, S.REJECTED, error_code=-2013, error_msg="Order does not exist.")
    eng.process(GatewayResult(no))
    assert status_of(eng, old_cid) is S.NEW and status_of(eng, new_cid) is S.UNKNOWN
    assert len(live(eng)) == 3 and eng.live_slots(SYM, "mm") == 2
    # the old bid is still unwanted: a plain cancel now (it cannot be paired twice)
    frame(eng, ticker(105, "100.01", "101.00", bq="3"), clock)
    assert [c.client_order_id for c in gw.cancels] == [old_cid] and len(gw.replaces) == 1
    clock.advance(10.5)
    eng.drain()
    eng.process(GatewayResult(no))
    assert status_of(eng, new_cid) is S.REJECTED and eng._replaces == {}
    assert eng.live_slots(SYM, "mm") == len(live(eng)) == 2


class PairCase:
    def __init__(self, name: str, expect_pair: bool, old_status: S = S.NEW, **kw: Any) -> None:
        self.name, self.expect_pair, self.old_status, self.kw = name, expect_pair, old_status, kw


PAIR_CASES = [
    PairCase("acknowledged order", True),
    PairCase("partially filled order", True, S.PARTIALLY_FILLED),
    PairCase("not acknowledged yet: cancel waits, new order goes alone", False, S.PENDING_NEW),
    PairCase("in doubt: queried, new order goes alone", False, S.UNKNOWN),
    PairCase("strategy opted out", False, strategy={"use_cancel_replace": False}),
    PairCase("engine configured off", False, config={"cancel_replace": False}),
    PairCase("gateway without cancel_replace", False, gateway=False),
]


@pytest.mark.parametrize("case", PAIR_CASES, ids=[c.name for c in PAIR_CASES])
def test_which_requotes_become_cancel_replace(case: PairCase) -> None:
    strat = Quoter(**case.kw.get("strategy", {}))
    eng, gw, clock = make([strat], **case.kw.get("config", {}))
    if case.kw.get("gateway") is False:
        eng.gateway = gw = type("PlainGateway", (FakeGateway,), {"cancel_replace": None})()  # type: ignore[assignment]
        eng._replace_ok = {"mm": False}  # what __init__ derives from such a gateway
        plain = Engine({SYM: INST}, [Quoter()], gateway=gw, config=EngineConfig())
        assert plain._replace_ok == {"mm": False}
    go_live(eng)
    bid, ask = gw.submitted
    ack(eng, ask)
    if case.old_status is S.NEW:
        ack(eng, bid)
    elif case.old_status is S.PARTIALLY_FILLED:
        ack(eng, bid, S.PARTIALLY_FILLED, cum_qty=D("0.0004"))
    elif case.old_status is S.UNKNOWN:
        ack(eng, bid, S.UNKNOWN)
    gw.queries.clear()
    frame(eng, ticker(104, "100.01", "101.00"), clock)
    new_bids = [o for o in gw.orders[2:] if o.side is Side.BUY]
    assert len(new_bids) == 1 and new_bids[0].price == D("100.01")  # placed on the tick either way
    if case.expect_pair:
        assert [(c.client_order_id, n) for c, n in gw.replaces] == [(bid.client_order_id, new_bids[0])]
        assert gw.cancels == [] and eng.n_replaces == 1
    else:
        assert gw.replaces == [] and gw.submitted[-1] == new_bids[0]
        if case.old_status is S.NEW:
            assert [c.client_order_id for c in gw.cancels] == [bid.client_order_id]
        elif case.old_status is S.PENDING_NEW:
            assert gw.cancels == [] and eng.tracker.get(bid.client_order_id).cancel_wanted  # type: ignore[union-attr]
        elif case.old_status is S.UNKNOWN:
            assert gw.cancels == [] and gw.queries == []  # already being queried since the ack
    assert eng.live_slots(SYM, "mm") <= strat.max_live_orders


def test_cancels_and_placements_on_different_sides_are_not_paired() -> None:
    mode = {"bid": "100.00", "ask": "101.00"}

    def quotes(top: BookTop) -> list[Quote]:
        return [Quote(Side.BUY, D(mode["bid"]), D("0.001")), Quote(Side.SELL, D(mode["ask"]), D("0.001"))]

    eng, gw, clock = make([Quoter(fn=lambda t: quotes(t) if mode["bid"] != "x" else [])])
    go_live(eng)
    for o in gw.submitted:
        ack(eng, o)
    mode["bid"] = "x"  # everything cancelled, nothing placed
    frame(eng, ticker(104, "100.01", "101.00"), clock)
    assert len(gw.cancels) == 2 and gw.replaces == []


def test_replace_refused_as_a_whole_falls_back_to_cancel_and_new_for_a_while() -> None:
    """e.g. ``cancelReplaceAllowed: false`` on the symbol: the venue refuses every replace."""
    eng, gw, clock = make([Quoter()], replace_fallback_after=3, replace_retry_after=60.0)
    go_live(eng)
    for o in gw.submitted:
        ack(eng, o)
    refused = {"error_code": -2010, "error_msg": "Order cancel-replace is not supported for this symbol."}
    for i in range(3):
        frame(eng, ticker(104 + i, f"{100.01 + i / 100:.2f}", "101.00"), clock)
        pair = gw.replaces[-1]
        replaced(eng, pair, S.REJECTED, S.REJECTED, refused, refused)
        assert status_of(eng, pair[0].client_order_id) is S.NEW  # the cancel did not happen
    assert len(gw.replaces) == 3 and eng.counters["replace_fallbacks"] == 1
    frame(eng, ticker(110, "100.20", "101.00"), clock)
    assert len(gw.replaces) == 3 and len(gw.cancels) == 1  # plain cancel + new from now on
    clock.advance(61)
    eng.drain()
    cancelled(eng, gw.cancels[0].client_order_id)
    ack(eng, gw.submitted[-1])
    frame(eng, ticker(111, "100.21", "101.00"), clock)
    assert len(gw.replaces) == 4  # tried again after the pause


def test_submit_hook_failure_on_a_replace_still_cancels_the_old_order() -> None:
    class Broken:
        armed = False

        @hookimpl
        def botcore_order_submit(self, order: OrderRequest) -> None:
            if self.armed:
                raise RuntimeError("audit log down")

    broken = Broken()
    hooks = Hooks(get_plugin_manager(load_entrypoints=False, extra=[broken]))
    eng, gw, clock = make([Quoter()], hooks=hooks)
    go_live(eng)
    bid, ask = gw.submitted
    ack(eng, bid)
    ack(eng, ask)
    broken.armed = True
    frame(eng, ticker(104, "100.01", "101.00"), clock)
    assert gw.replaces == [] and [c.client_order_id for c in gw.cancels] == [bid.client_order_id]
    (new,) = [o for o in eng.tracker if o.status is S.REJECTED]
    assert new.price == D("100.01") and eng._replaces == {} and eng._replaced_by == {}
    assert status_of(eng, bid.client_order_id) is S.PENDING_CANCEL


def test_replace_goes_through_the_submit_hooks() -> None:
    eng, gw, clock, rec, strat = hooked()
    go_live(eng)
    for o in gw.submitted:
        ack(eng, o)
    n = len(rec.of("submitted"))
    frame(eng, ticker(104, "100.01", "101.00"), clock)
    (pair,) = gw.replaces
    assert rec.of("submitted")[n:] == [pair[1].client_order_id]
    assert len(rec.of("submit-wrapped")) == n + 1  # the wrapper ran around the replace hand-off


def test_tick_to_order_records_replace_handoffs() -> None:
    eng, gw, clock = make([Quoter()])
    go_live(eng)
    for o in gw.submitted:
        ack(eng, o)
    frame(eng, ticker(104, "100.01", "100.99"), clock, age_ns=5_000)  # both sides move
    assert len(gw.replaces) == 2 and gw.submitted[2:] == []
    assert eng.tick_to_order.count == 2 and eng.tick_to_order.min_ns == 5_000


def test_each_order_s_sample_ends_at_its_own_hand_off_though_recorded_after_the_decision() -> None:
    """Samples are recorded once the decision's last order has left, each with its own hand-off
    time: the first order's is not stretched to the second's, nor the other way round."""

    class SlowGateway(FakeGateway):
        def __init__(self, clock: Clock) -> None:
            super().__init__()
            self.clock = clock

        def cancel_replace(self, cancel: CancelRequest, new: OrderRequest) -> None:
            self.clock.now += 3_000  # each hand-off takes 3 µs
            super().cancel_replace(cancel, new)

    clock = Clock()
    gw = SlowGateway(clock)
    eng = Engine({SYM: INST}, [Quoter()], [], gateway=gw, config=EngineConfig(snapshot_min_interval=0.0), clock=clock)
    go_live(eng)
    for o in gw.submitted:
        ack(eng, o)
    frame(eng, ticker(104, "100.01", "100.99"), clock, age_ns=5_000)  # both sides move
    h = eng.tick_to_order
    assert len(gw.replaces) == 2 and h.count == 2
    assert (h.min_ns, h.max_ns) == (8_000, 11_000)  # 5 µs old frame + one or two hand-offs
    assert eng.tick_wait.min_ns == eng.tick_wait.max_ns == 5_000


def test_a_refused_cancel_is_sent_again_if_the_order_is_still_unwanted() -> None:
    """Quoting paused while a replace was in flight; the venue refused the cancel leg."""
    eng, gw, clock, bid, pair = one_replace()
    eng.process(StreamStatus("user", False, "listenKey expired", 0))
    assert not eng.is_quoting(SYM)
    replaced(eng, pair, S.REJECTED, S.REJECTED, {"error_code": -1015}, {"error_code": -2022})
    # back to NEW, and the pause still wants it gone: cancelled again at once
    assert [c.client_order_id for c in gw.cancels][-1] == bid.client_order_id
    assert status_of(eng, bid.client_order_id) is S.PENDING_CANCEL


def test_context_live_order_count_counts_a_pair_once_and_a_replaced_order_not_at_all() -> None:
    seen: list[int] = []

    class CountOrders:
        name = "count"

        def check(self, order: OrderRequest, ctx: Any) -> str | None:
            seen.append(ctx.live_order_count(SYM))
            return None

    eng, gw, clock = make([Quoter()], [CountOrders()])
    go_live(eng)
    assert seen == [0, 1]
    for o in gw.submitted:
        ack(eng, o)
    frame(eng, ticker(104, "100.01", "101.00"), clock)
    assert seen[2] == 1  # the bid being replaced does not count against the replacement
    assert eng.ctx.live_order_count(SYM) == 2 and eng.ctx.live_order_count() == 2 and len(live(eng)) == 3


# --- property: the cap holds and no resting order is ever forgotten, whatever the venue does ----


RECV_WINDOW_NS = 5 * 10**9  # < unknown_grace: a request older than this is refused by the venue


class SimVenue:
    """A venue with Binance spot semantics (cancelReplace STOP_ON_FAILURE, recvWindow) that
    executes the engine's requests when and in the order the test says, and may lose answers."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.eng: Engine | None = None
        self.pending: list[tuple[str, int, Any]] = []
        self.resting: dict[str, OrderRequest] = {}
        self.final: dict[str, OrderRequest] = {}
        self.final_status: dict[str, S] = {}
        self.trades = 0

    # the gateway surface the engine calls (engine thread, non-blocking)
    def submit(self, order: OrderRequest) -> None:
        self.pending.append(("new", self.clock(), order))

    def cancel(self, request: CancelRequest) -> None:
        self.pending.append(("cancel", self.clock(), request))

    def cancel_replace(self, cancel: CancelRequest, new: OrderRequest) -> None:
        self.pending.append(("replace", self.clock(), (cancel, new)))

    def query(self, symbol: str, cid: str) -> None:
        self.pending.append(("query", self.clock(), cid))

    def fetch_depth(self, symbol: str, limit: int = 1000) -> None:
        pass

    def close(self, timeout: float = 5.0) -> bool:
        return True

    # venue side
    def _answer(self, action: str, cid: str, status: S, code: int = 0, cum: str = "0") -> None:
        assert self.eng is not None
        self.eng.process(
            GatewayResult(OrderOutcome(action, SYM, cid, status, error_code=code, cum_qty=D(cum)))
        )

    def _end(self, cid: str, status: S) -> None:
        self.final[cid] = self.resting.pop(cid)
        self.final_status[cid] = status

    def execute(self, index: int, mode: str) -> None:
        """mode: ok | reject (a new order/leg refused) | lost (done, answer lost) | dropped (not done)."""
        kind, sent_ns, payload = self.pending.pop(index % len(self.pending))
        late = self.clock() - sent_ns > RECV_WINDOW_NS
        unknown = mode in ("lost", "dropped")
        done = not late and mode != "dropped"
        if kind == "new":
            order = payload
            cid = order.client_order_id
            if late:
                self._answer("new", cid, S.REJECTED, -1021)
            elif mode == "reject":
                self._answer("new", cid, S.REJECTED, -2010)
            else:
                if done:
                    self.resting[cid] = order
                self._answer("new", cid, S.UNKNOWN if unknown else S.NEW)
        elif kind == "cancel":
            cid = payload.client_order_id
            if late:
                self._answer("cancel", cid, S.REJECTED, -1021)
            elif done and cid in self.resting:
                self._end(cid, S.CANCELED)
                self._answer("cancel", cid, S.UNKNOWN if unknown else S.CANCELED)
            else:
                self._answer("cancel", cid, S.UNKNOWN if unknown else S.REJECTED, 0 if unknown else -2011)
        elif kind == "replace":
            cancel, new = payload
            old, cid = cancel.client_order_id, new.client_order_id
            if late:
                self._answer("cancel", old, S.REJECTED, -1021)
                self._answer("new", cid, S.REJECTED, -1021)
            elif not done:
                self._answer("cancel", old, S.UNKNOWN)
                self._answer("new", cid, S.UNKNOWN)
            elif old not in self.resting:  # STOP_ON_FAILURE: the new order is not attempted
                self._answer("cancel", old, S.UNKNOWN if unknown else S.REJECTED, 0 if unknown else -2011)
                self._answer("new", cid, S.UNKNOWN if unknown else S.REJECTED, 0 if unknown else -2022)
            else:
                self._end(old, S.CANCELED)
                if mode != "reject":
                    self.resting[cid] = new
                self._answer("cancel", old, S.UNKNOWN if unknown else S.CANCELED)
                self._answer("new", cid, S.UNKNOWN if unknown else S.REJECTED if mode == "reject" else S.NEW)
        else:
            cid = payload
            if mode == "dropped":
                self._answer("query", cid, S.UNKNOWN)
            elif cid in self.resting:
                self._answer("query", cid, S.NEW)
            elif cid in self.final:
                status = self.final_status[cid]
                self._answer(
                    "query", cid, status, cum=str(self.final[cid].qty) if status is S.FILLED else "0"
                )
            else:
                self._answer("query", cid, S.REJECTED, -2013)

    def fill(self, index: int, reported: bool) -> None:
        """A resting order trades in full; the user-stream report may be lost."""
        if not self.resting:
            return
        cid = sorted(self.resting)[index % len(self.resting)]
        order = self.resting[cid]
        self._end(cid, S.FILLED)
        if reported:
            assert self.eng is not None
            self.trades += 1
            q = str(order.qty)
            self.eng.process(
                report(cid, S.FILLED, "TRADE", cum=q, last=q, trade_id=self.trades, side=order.side)
            )

    def open_orders(self) -> tuple[Any, ...]:
        return tuple(_open(o) for o in self.resting.values())


def _two_levels(top: BookTop) -> list[Quote]:
    bid, ask, tick, qty = (
        INST.ticks_to_price(top.bid_price),
        INST.ticks_to_price(top.ask_price),
        D("0.01"),
        D("0.001"),
    )
    return [
        Quote(Side.BUY, bid, qty, 0),
        Quote(Side.SELL, ask, qty, 0),
        Quote(Side.BUY, bid - tick, qty, 1),
        Quote(Side.SELL, ask + tick, qty, 1),
    ]


_tick = st.tuples(st.just("tick"), st.integers(0, 4), st.integers(0, 2))
_exec = st.tuples(
    st.just("exec"), st.integers(0, 50), st.sampled_from(["ok", "ok", "ok", "reject", "lost", "dropped"])
)
_steps = st.lists(
    st.one_of(
        _tick,
        _tick,
        _exec,
        _exec,
        st.tuples(st.just("flush"), st.just(0), st.just(0)),  # the venue answers everything pending
        st.tuples(st.just("fill"), st.integers(0, 10), st.booleans()),
        st.tuples(st.just("wait"), st.sampled_from([0.2, 3.0, 6.0, 11.0, 31.0]), st.just(0)),
    ),
    max_size=80,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_steps, st.sampled_from([True, True, True, False]))
def test_cap_holds_and_no_resting_order_is_forgotten_whatever_the_venue_does(
    steps: list[tuple[str, Any, Any]], use_replace: bool
) -> None:
    clock = Clock()
    venue = SimVenue(clock)
    strat = Quoter(max_live_orders=4, fn=_two_levels, use_cancel_replace=use_replace)
    eng = Engine(
        {SYM: INST}, [strat], gateway=venue, config=EngineConfig(snapshot_min_interval=0.0), clock=clock
    )
    venue.eng = eng
    go_live(eng)
    u = 104

    def check() -> None:
        tracked_live = {o.client_order_id for o in eng.tracker.live()}
        assert set(venue.resting) <= tracked_live, "a resting order the engine believes gone"
        assert len(venue.resting) <= 4
        assert eng.live_slots(SYM, "mm") <= 4

    for kind, a, b in steps:
        if kind == "tick":
            u += 1
            frame(eng, ticker(u, f"{100 + a / 100:.2f}", f"{101 + a / 100 + b / 100:.2f}"), clock)
        elif kind == "exec" and venue.pending:
            venue.execute(a, b)
        elif kind == "flush":
            while venue.pending:
                venue.execute(0, "ok")
                check()
        elif kind == "fill":
            venue.fill(a, b)
        elif kind == "wait":
            clock.advance(a)
            eng.drain()
        check()
    # Settle: the venue answers everything, time passes, a reconcile finds lost fills.
    for _ in range(40):
        while venue.pending:
            venue.execute(0, "ok")
            check()
        clock.advance(11)
        eng.drain()
        eng.process(ReconcileSnapshot("light", AccountSnapshot((), venue.open_orders(), 1, 1)))
        check()
        if not venue.pending and not eng.tracker.unknown():
            break
    assert not venue.pending and eng.tracker.unknown() == []
    known = {o.client_order_id for o in eng.tracker.live()}
    assert known == set(venue.resting)  # the engine ends up knowing exactly what rests
    assert eng.tracker.illegal == 0


# --- the real strategy over the real recording ----------------------------------------------------


@pytest.mark.parametrize("cancel_replace", [True, False], ids=["cancel-replace", "cancel+new"])
def test_marketmaker_on_the_replay_sends_orders_on_ticks(cancel_replace: bool) -> None:
    """Real wiring (engine thread, gateway pool, replay adapter) and the first-party marketmaker
    with 3 levels (``max_live_orders`` = 6). With cancel-replace, requotes leave on the tick and
    the tick-to-order histogram fills; with plain cancel + new (the old behaviour, still what a
    strategy gets when it opts out) every requote waits for its cancels: no order leaves on a tick."""
    from botcore_strategy_marketmaker.strategy import make_strategy

    adapter = ReplayAdapter(max_frames=12_000, max_backlog=5)
    inst = adapter.exchange_info([SYM])
    strat = make_strategy(
        "mm",
        {"amount": "0.001", "levels": 3, "requote_tolerance_bps": "0.5", "min_requote_interval": 0.02},
        inst,
    )
    assert strat.max_live_orders == 6
    cfg = EngineConfig(debug_thread_check=True, snapshot_min_interval=0.05, cancel_replace=cancel_replace)
    eng = Engine(inst, [strat], adapter=adapter, config=cfg)
    eng.load_snapshot(adapter.account_snapshot())
    eng.start()
    adapter.start(eng, [SYM])
    assert eng.join(60) and eng.stop_reason == "replay finished"
    assert eng.gateway.close()
    st_ = eng.status()
    assert st_["counters"].get("handler_errors", 0) == 0 and st_["illegal_transitions"] == 0
    assert st_["live_orders"] == 0 and adapter.open_orders() == []
    h = eng.tick_to_order
    resumed = eng.counters["quoting_resumed"]
    deferred = eng.counters.get("deferred_by_max_live", 0)
    assert eng.n_orders > 6 * resumed  # it requoted
    if cancel_replace:
        assert eng.n_replaces > 0 and st_["replaces"] == eng.n_replaces
        assert sum(1 for a, _ in adapter.requests if a == "cancel_replace") == eng.n_replaces
        assert h.count > 0 and st_["latency_us"]["count"] == h.count
        # Only the first quotes (sent when the book became trusted, no tick) and the rare
        # placement deferred behind an unacknowledged order leave without a tick.
        assert eng.n_orders - h.count <= 6 * resumed + 6 * deferred
        assert deferred * 10 <= eng.n_quotes
    else:
        assert eng.n_replaces == 0 and h.count == 0 and deferred > 0


def test_a_cancel_answered_with_the_order_still_open_puts_it_back() -> None:
    """The Binance adapter resolves -2011 by a query; "NEW" means the cancel did not happen."""
    eng, gw, clock, bid, pair = one_replace()
    replaced(
        eng,
        pair,
        S.NEW,
        S.REJECTED,
        {"error_code": -2011, "error_msg": "Unknown order sent. -> resolved by query: NEW"},
        {"error_code": -2022, "error_msg": "not attempted: the cancel leg failed"},
    )
    assert (
        status_of(eng, bid.client_order_id) is S.NEW and status_of(eng, pair[1].client_order_id) is S.REJECTED
    )
    assert eng._replaced_by == {} and gw.queries == []
    frame(eng, ticker(105, "100.01", "101.00", bq="4"), clock)  # still unwanted: replaced again
    assert len(gw.replaces) == 2 and gw.replaces[1][0].client_order_id == bid.client_order_id


# ------------------------------------------------------------------------------------------------
# The trust layer: the Reconciler applies REST snapshots and halts quoting on serious drift
# ------------------------------------------------------------------------------------------------


def _foreign(cid: str = "web-1") -> Any:
    return _open(OrderRequest(SYM, Side.SELL, D("0.002"), D("105"), client_order_id=cid))


def test_reconcile_goes_through_the_reconciler_policy_and_is_decided_once() -> None:
    seen: list[tuple[str, Any]] = []

    class Reports:
        @hookimpl
        def botcore_reconcile_report(self, job: str, drifts: Sequence[Any]) -> None:
            seen.append((job, drifts))

    hooks = Hooks(get_plugin_manager(load_entrypoints=False, extra=[Reports()]))
    logged = Reconciler(ReconcilePolicy(fields={"balance": "log", "default": "log"}))
    eng, gw, clock = make([], [RiskLink("reconcile", logged)], hooks=hooks)
    assert eng._reconciler is logged  # found in the risk chain
    snap = AccountSnapshot((Balance("USDT", D("10"), D(0)),), (), 5, 6)
    eng.process(ReconcileSnapshot("light", snap))
    assert eng.positions.free("USDT") == 0  # policy "log": recorded, not corrected
    ((job, drifts),) = seen
    assert job == "light" and [d.field for d in drifts] == ["balance.free"] and not drifts[0].corrected
    logged.review(job, drifts)  # what the services plugin does from the hook: not decided twice
    assert logged.reconciles == 1 and eng.counters["drifts"] == 1
    # the default policy corrects balances
    eng2, _, _ = make([], [RiskLink("reconcile", Reconciler())])
    eng2.process(ReconcileSnapshot("light", snap))
    assert eng2.positions.free("USDT") == D("10")


def test_a_halt_drift_pauses_quoting_at_once_and_a_clean_reconcile_resumes_it() -> None:
    rec = Reconciler()  # default policy: an unknown open order on the account halts
    eng, gw, clock = make([Quoter()], [RiskLink("reconcile", rec)])
    go_live(eng)
    bid, ask = gw.submitted
    for o in (bid, ask):
        ack(eng, o)
        eng.process(report(o.client_order_id, S.NEW, "NEW", side=o.side))  # the user stream's copy
    dirty = AccountSnapshot((), (_open(bid), _open(ask), _foreign()), 5, 6)
    eng.process(ReconcileSnapshot("light", dirty))
    assert not eng.is_quoting(SYM) and {c.client_order_id for c in gw.cancels} == {
        bid.client_order_id,
        ask.client_order_id,
    }
    assert "order.missing_local web-1" in (rec.halted() or "")
    frame(eng, ticker(104, "100.05", "100.95"), clock)
    assert len(gw.orders) == 2  # nothing placed while halted
    for c in gw.cancels:
        cancelled(eng, c.client_order_id)
    eng.process(ReconcileSnapshot("light", AccountSnapshot((), (_foreign(),), 5, 6)))  # known now: clean
    assert rec.halted() is None and eng.is_quoting(SYM) and len(gw.orders) == 4


def test_missed_fills_of_a_full_reconcile_take_the_engine_fill_path_once() -> None:
    rec = Reconciler()
    strat = Quoter()
    eng, gw, clock = make([strat], [RiskLink("reconcile", rec)])
    go_live(eng)
    bid = gw.submitted[0]
    for o in gw.submitted:
        ack(eng, o)
        eng.process(report(o.client_order_id, S.NEW, "NEW", side=o.side))
    fill = Fill(SYM, bid.client_order_id, 1, 77, Side.BUY, D("100"), D("0.0005"), D(0), "USDT", True, 1)
    snap = AccountSnapshot((), (_open(bid), _open(gw.submitted[1])), 5, 6)
    for _ in range(2):  # the second delivery of the same trade is a duplicate
        eng.process(ReconcileSnapshot("reconcile_full", snap, (fill,)))
    assert [f.trade_id for f in strat.fills] == [77] and eng.n_fills == 1
    assert eng.positions.position(SYM) == D("0.0005")


def test_a_report_for_an_order_this_run_never_placed_triggers_a_reconcile() -> None:
    reasons: list[str] = []
    rec = Reconciler(is_known_order=lambda cid: cid.startswith("bc"), trigger=reasons.append)
    eng, gw, clock = make([Quoter()], [RiskLink("reconcile", rec)])
    eng.process(report("web-9", S.NEW, "NEW"))  # someone placed an order on our account
    assert len(reasons) == 1 and "web-9" in reasons[0]


def test_a_halt_decided_before_the_start_holds_from_the_first_event() -> None:
    """Recovery or the start-up reconcile halted: the book syncing must not start quoting."""
    from botcore.model import Drift

    rec = Reconciler()
    rec.review(
        "startup", [Drift("order.missing_local", "web-1", "", "NEW", 0, "order placed outside the bot")]
    )
    assert rec.halted() is not None
    eng, gw, clock = make([Quoter()], [RiskLink("reconcile", rec)])
    for ev in (MarketFrame(depth(99, 103), 0), DepthSnapshot(SYM, SNAP, 0), Stop("test")):
        eng.put(ev)
    eng.run()
    assert eng.book_sync(SYM).trusted and gw.orders == []
    assert eng.status()["halted"] is not None


def test_status_reports_the_age_of_each_book() -> None:
    eng, gw, clock = make([Quoter()], status_interval=0.1)
    assert "age_ms" not in eng.status()["books"][SYM]  # no data yet
    frame(eng, ticker(90, "99.00", "102.00"), clock)
    clock.advance(1.5)
    eng.drain()
    assert eng.status()["books"][SYM]["age_ms"] == 1500


def test_live_order_views_are_reused_until_an_order_changes() -> None:
    eng, gw, clock = make([Quoter()])
    go_live(eng)
    ctx = eng.ctx
    first = ctx.live_orders(SYM, "mm")
    assert ctx.live_orders(SYM, "mm") is first  # nothing changed: the same copies
    bid, ask = gw.submitted
    ack(eng, bid)
    acked = ctx.live_orders(SYM, "mm")
    assert [v.status for v in acked] == [S.NEW, S.PENDING_NEW]
    eng.process(
        report(bid.client_order_id, S.PARTIALLY_FILLED, "TRADE", cum="0.0004", last="0.0004", trade_id=1)
    )
    assert [(v.status, v.cum_qty) for v in ctx.live_orders(SYM, "mm")][0] == (S.PARTIALLY_FILLED, D("0.0004"))
    eng.process(report(bid.client_order_id, S.FILLED, "TRADE", cum="0.001", last="0.0006", trade_id=2))
    assert [v.client_order_id for v in ctx.live_orders(SYM, "mm")] == [ask.client_order_id]
    assert ctx.live_orders(SYM, "other") == ()


# ------------------------------------------------------------------------------------------------
# Hot-path helpers: the top lent to risk checks, the collector around ``run``
# ------------------------------------------------------------------------------------------------


class TopProbe:
    """A risk check that records what ``ctx.book(SYM).top()`` gives while an order is checked."""

    name = "probe"

    def __init__(self) -> None:
        self.tops: list[BookTop | None] = []

    def check(self, order: OrderRequest, ctx: Any) -> str | None:
        self.tops.append(ctx.book(SYM).top())
        return None


def test_risk_checks_see_the_very_top_the_strategy_quoted_and_a_fresh_one_afterwards() -> None:
    probe = TopProbe()
    strat = Quoter()
    eng, gw, clock = make([strat], [probe])
    go_live(eng)
    assert len(probe.tops) == 2 and all(t is strat.tops[-1] for t in probe.tops)  # no rebuilt copy
    after = eng.ctx.book(SYM).top()
    assert after == strat.tops[-1] and after is not strat.tops[-1]  # outside a tick: built afresh
    frame(eng, ticker(104, "100.50", "100.70"), clock)
    top = strat.tops[-1]
    assert (top.bid_price, top.ask_price) == (10050, 10070)
    assert probe.tops[-1] is top and eng.ctx.book(SYM).top() == top
    eng.process(StreamStatus("market", False, "reconnect", 0))  # untrusted: no top at all
    assert eng.ctx.book(SYM).top() is None


def test_run_freezes_the_collector_and_restores_it_on_return() -> None:
    import gc

    seen: list[tuple[int, tuple[int, ...]]] = []
    before = gc.get_threshold()
    eng, _, _ = make(gc_gen0_threshold=12_345)
    eng.on_job("probe", lambda e, p: seen.append((gc.get_freeze_count(), gc.get_threshold())))
    eng.put(JobRequest("probe"))
    eng.put(Stop("done"))
    assert eng.run() == "done"
    assert seen and seen[0][0] > 0 and seen[0][1] == (12_345, *before[1:])
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == before

    seen.clear()
    eng, _, _ = make(gc_freeze=False)
    eng.on_job("probe", lambda e, p: seen.append((gc.get_freeze_count(), gc.get_threshold())))
    eng.put(JobRequest("probe"))
    eng.put(Stop("done"))
    eng.run()
    assert seen == [(0, before)]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="thread affinity is Linux-only")
def test_run_pins_the_engine_thread_to_its_cpu_and_gives_the_cpus_back_on_return() -> None:
    before = os.sched_getaffinity(0)
    cpu = max(before)
    seen: list[set[int]] = []

    def engine_thread() -> None:
        eng, _, _ = make(cpu=cpu)
        eng.on_job("probe", lambda e, p: seen.append(os.sched_getaffinity(0)))
        eng.put(JobRequest("probe"))
        eng.put(Stop("done"))
        assert eng.run() == "done"
        seen.append(os.sched_getaffinity(0))

    t = threading.Thread(target=engine_thread)
    t.start()
    t.join(10)
    assert seen == [{cpu}, before]  # pinned while it ran, its CPUs back afterwards
    assert os.sched_getaffinity(0) == before  # only the engine's own thread was pinned


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="thread affinity is Linux-only")
def test_a_cpu_the_os_refuses_is_logged_and_the_engine_runs_unpinned(caplog: pytest.LogCaptureFixture) -> None:
    before = os.sched_getaffinity(0)
    seen: list[set[int]] = []
    eng, _, _ = make(cpu=100_000)  # no such CPU: config validation would have said so
    eng.on_job("probe", lambda e, p: seen.append(os.sched_getaffinity(0)))
    eng.put(JobRequest("probe"))
    eng.put(Stop("done"))
    with caplog.at_level(logging.WARNING):
        assert eng.run() == "done"
    assert seen == [before] and os.sched_getaffinity(0) == before
    assert any("engine thread not pinned to CPU 100000" in r.getMessage() for r in caplog.records)
