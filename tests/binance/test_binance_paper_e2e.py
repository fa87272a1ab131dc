"""The Binance adapter end to end against the embedded paper exchange, faults included.

The paper exchange runs a synthetic market that only moves when a test calls ``paper.step``, so
every test is deterministic. Each fault is injected through the paper exchange's own controls.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from binance_fakes import Sink
from botcore_exchange_binance.adapter import BinanceAdapter
from botcore_exchange_paper.config import PaperConfig
from botcore_exchange_paper.embedded import EmbeddedPaper, start_embedded

from botcore.events import MarketFrame, StreamStatus
from botcore.model import (
    CancelRequest,
    ExecutionReport,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)

pytestmark = pytest.mark.e2e

SERVER_OPTIONS = {"ban_after": 2, "ban_seconds": 1.0}
TRANSPORTS = ("rest", "ws_api")


@pytest.fixture(scope="module")
def paper() -> Iterator[EmbeddedPaper]:
    p = start_embedded(PaperConfig(synthetic=True, symbols=["BTCUSDT"], options=SERVER_OPTIONS), run_market=False)
    p.step(300)
    yield p
    p.close()


@pytest.fixture(autouse=True)
def _clear_faults(paper: EmbeddedPaper) -> Iterator[None]:
    yield
    paper.faults.clear()


_seq = iter(range(1, 1_000_000))


def coid(tag: str) -> str:
    return f"e2e-{tag}-{next(_seq)}"


def make(paper: EmbeddedPaper, transport: str = "rest", **options: Any) -> BinanceAdapter:
    opts: dict[str, Any] = {"order_transport": transport, "request_timeout_s": 1.0, "stall_timeout_s": 60.0,
                            "backoff_initial_s": 0.05, "backoff_max_s": 0.2}
    opts.update(options)
    cfg = SimpleNamespace(exchange=SimpleNamespace(mode="paper", symbols=["BTCUSDT"], options=opts))
    a = BinanceAdapter.from_config(cfg, paper.endpoints())
    a.exchange_info(["BTCUSDT"])
    if a.ws_api is not None:  # exercise the WebSocket API, not the REST fallback
        a.ws_api.start()
        assert a.ws_api.socket.wait_open(5)
    return a


@pytest.fixture(params=TRANSPORTS)
def adapter(request: pytest.FixtureRequest, paper: EmbeddedPaper) -> Iterator[BinanceAdapter]:
    a = make(paper, request.param)
    yield a
    a.stop()
    assert a.rest_fallbacks == 0


def book(a: BinanceAdapter) -> tuple[Decimal, Decimal]:
    d = json.loads(a.depth_snapshot("BTCUSDT", 5))
    return Decimal(d["bids"][0][0]), Decimal(d["asks"][0][0])


def resting_bid(a: BinanceAdapter, tag: str, ticks_below: int = 50) -> OrderRequest:
    bid, _ = book(a)
    return OrderRequest("BTCUSDT", Side.BUY, Decimal("0.0002"), bid - Decimal("0.01") * ticks_below,
                        client_order_id=coid(tag))


def venue_orders(paper: EmbeddedPaper, client_order_id: str) -> list[dict[str, Any]]:
    snap = paper.snapshot()
    return [o for acct in snap["accounts"] for o in acct["open_orders"] if o["clientOrderId"] == client_order_id]


def rest_requests(paper: EmbeddedPaper) -> int:
    return int(paper.status()["rest_requests"])


def started(a: BinanceAdapter) -> Sink:
    sink = Sink()
    a.start(sink, ["BTCUSDT"])
    sink.wait_for(lambda ev: {(s.stream, s.trusted) for s in ev if isinstance(s, StreamStatus)}
                  >= {("market", True), ("user", True)}, timeout=10)
    return sink


def reports(sink: Sink, cid: str) -> list[ExecutionReport]:
    return [e.event for e in sink.user() if isinstance(e.event, ExecutionReport) and e.event.client_order_id == cid]


# ------------------------------------------------------------------------------------------------
# Round trips
# ------------------------------------------------------------------------------------------------


def test_place_query_cancel_round_trip(adapter: BinanceAdapter, paper: EmbeddedPaper) -> None:
    sink = started(adapter)
    order = resting_bid(adapter, "rt")
    out, fills = adapter.submit(order)
    assert out.status is OrderStatus.NEW and out.order_id > 0 and fills == ()
    assert 0 < out.sent_ns <= out.done_ns
    assert len(venue_orders(paper, order.client_order_id)) == 1
    q = adapter.query_order("BTCUSDT", order.client_order_id)
    assert (q.status, q.order_id) == (OrderStatus.NEW, out.order_id)
    assert [o.client_order_id for o in adapter.open_orders("BTCUSDT")].count(order.client_order_id) == 1
    c = adapter.cancel(CancelRequest("BTCUSDT", order.client_order_id))
    assert c.status is OrderStatus.CANCELED and c.client_order_id == order.client_order_id
    assert venue_orders(paper, order.client_order_id) == []
    # the user stream reports both changes under the ORDER's client id (not the cancel's)
    sink.wait_for(lambda ev: [r.status for r in reports(sink, order.client_order_id)] ==
                  [OrderStatus.NEW, OrderStatus.CANCELED])
    again = adapter.cancel(CancelRequest("BTCUSDT", order.client_order_id))  # -2011 -> query
    assert again.status is OrderStatus.CANCELED and again.error_code == -2011


def test_cancel_replace_round_trip(adapter: BinanceAdapter, paper: EmbeddedPaper) -> None:
    old = resting_bid(adapter, "cr-old")
    adapter.submit(old)
    new = resting_bid(adapter, "cr-new", ticks_below=60)
    c, n, fills = adapter.cancel_replace(CancelRequest("BTCUSDT", old.client_order_id), new)
    assert (c.client_order_id, c.status) == (old.client_order_id, OrderStatus.CANCELED)
    assert (n.client_order_id, n.status) == (new.client_order_id, OrderStatus.NEW) and fills == ()
    assert venue_orders(paper, old.client_order_id) == [] and len(venue_orders(paper, new.client_order_id)) == 1
    # cancel leg fails (old order gone): STOP_ON_FAILURE places nothing
    newer = resting_bid(adapter, "cr-newer", ticks_below=70)
    c, n, _ = adapter.cancel_replace(CancelRequest("BTCUSDT", old.client_order_id), newer)
    assert c.status is OrderStatus.CANCELED and c.error_code == -2011  # resolved by query: already cancelled
    assert n.status is OrderStatus.REJECTED and venue_orders(paper, newer.client_order_id) == []
    adapter.cancel(CancelRequest("BTCUSDT", new.client_order_id))


def test_taker_fill_inline_and_on_the_user_stream(adapter: BinanceAdapter, paper: EmbeddedPaper) -> None:
    sink = started(adapter)
    _, ask = book(adapter)
    order = OrderRequest("BTCUSDT", Side.BUY, Decimal("0.0002"), ask, order_type=OrderType.LIMIT,
                         time_in_force=TimeInForce.IOC, client_order_id=coid("take"))
    out, fills = adapter.submit(order)
    assert out.status in (OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED, OrderStatus.EXPIRED)
    assert fills and sum(f.qty for f in fills) == out.cum_qty > 0
    trade_ids = {f.trade_id for f in fills}
    sink.wait_for(lambda ev: {r.trade_id for r in reports(sink, order.client_order_id)
                              if r.execution_type == "TRADE"} >= trade_ids)
    got = {r.trade_id: r.fill() for r in reports(sink, order.client_order_id) if r.execution_type == "TRADE"}
    for f in fills:  # the same execution, seen twice: identical where it matters for dedupe
        assert (got[f.trade_id].qty, got[f.trade_id].price) == (f.qty, f.price)
    trades = adapter.my_trades("BTCUSDT")
    assert trade_ids <= {t.trade_id for t in trades if t.client_order_id == order.client_order_id}


def test_depth_snapshot_is_consistent_with_streamed_diffs(paper: EmbeddedPaper) -> None:
    a = make(paper)
    try:
        sink = started(a)
        paper.step(50)
        first = json.loads(a.depth_snapshot("BTCUSDT", 1000))
        paper.step(100)
        last = json.loads(a.depth_snapshot("BTCUSDT", 1000))
        target = last["lastUpdateId"]
        assert target > first["lastUpdateId"]

        def diffs(ev: list[Any]) -> list[dict[str, Any]]:
            out = []
            for e in ev:
                if isinstance(e, MarketFrame):
                    msg = json.loads(e.raw)
                    if msg["stream"].endswith("@depth@100ms"):
                        out.append(msg["data"])
            return out

        sink.wait_for(lambda ev: any(d["u"] >= target for d in diffs(ev)))
        local = {"b": {Decimal(p): q for p, q in first["bids"]}, "a": {Decimal(p): q for p, q in first["asks"]}}
        last_u = first["lastUpdateId"]
        for d in diffs(sink.events):
            if d["u"] <= last_u:
                continue
            assert d["U"] <= last_u + 1 <= d["u"], "gap between snapshot and diffs"
            for side in ("b", "a"):
                for p, q in d[side]:
                    if Decimal(q) == 0:
                        local[side].pop(Decimal(p), None)
                    else:
                        local[side][Decimal(p)] = q
            last_u = d["u"]
            if last_u >= target:
                break
        assert last_u == target
        want_b = {Decimal(p): Decimal(q) for p, q in last["bids"]}
        want_a = {Decimal(p): Decimal(q) for p, q in last["asks"]}
        top = 20
        assert sorted(((p, Decimal(q)) for p, q in local["b"].items()), reverse=True)[:top] == \
            sorted(want_b.items(), reverse=True)[:top]
        assert sorted((p, Decimal(q)) for p, q in local["a"].items())[:top] == sorted(want_a.items())[:top]
    finally:
        a.stop()


# ------------------------------------------------------------------------------------------------
# Stream faults
# ------------------------------------------------------------------------------------------------


def _count(sink: Sink, stream: str, trusted: bool, reason: str | None = None) -> int:
    return sum(1 for s in sink.statuses(stream) if s.trusted is trusted and (reason is None or s.reason == reason))


def test_disconnects_untrust_and_recover(paper: EmbeddedPaper) -> None:
    a = make(paper)
    try:
        sink = started(a)
        paper.faults.drop("market")
        sink.wait_for(lambda ev: _count(sink, "market", True, "reconnected") >= 1)
        assert _count(sink, "market", False) >= 1
        paper.faults.drop("user")
        sink.wait_for(lambda ev: _count(sink, "user", True, "resubscribed") >= 1)
        assert _count(sink, "user", False) >= 1
        paper.step(5)
        n = len(sink.frames())
        paper.step(20)
        sink.wait_for(lambda ev: len(sink.frames()) > n)  # data flows again on the new connection
    finally:
        a.stop()


def test_sequence_gap_is_delivered_not_hidden(paper: EmbeddedPaper) -> None:
    """The engine detects gaps from the raw frames: the adapter must pass them through untouched."""
    a = make(paper)
    try:
        sink = started(a)
        paper.step(20)
        paper.faults.depth_gap("BTCUSDT")
        paper.step(40)

        def ids(ev: list[Any]) -> list[tuple[int, int]]:
            return [(m["data"]["U"], m["data"]["u"]) for m in (json.loads(e.raw) for e in ev
                    if isinstance(e, MarketFrame)) if m["stream"].endswith("@depth@100ms")]

        got = sink.wait_for(lambda ev: len(ids(ev)) >= 10 and ids(ev))
        gaps = [(p, n) for p, n in zip(got, got[1:], strict=False) if n[0] != p[1] + 1]
        assert len(gaps) == 1
    finally:
        a.stop()


def test_stalled_stream_is_reconnected_by_the_watchdog(paper: EmbeddedPaper) -> None:
    a = make(paper, stall_timeout_s=0.4)
    stop = threading.Event()

    def ticker() -> None:  # a live market: events every 20 ms
        while not stop.is_set():
            paper.step(1)
            time.sleep(0.02)

    t = threading.Thread(target=ticker, daemon=True)
    t.start()
    try:
        sink = started(a)
        paper.faults.stall("market", seconds=1.0)
        sink.wait_for(lambda ev: any(not s.trusted and s.reason.startswith("stalled") for s in sink.statuses("market")),
                      timeout=5)
        sink.wait_for(lambda ev: _count(sink, "market", True, "reconnected") >= 1)
        time.sleep(1.2)  # stall over
        n = len(sink.frames())
        sink.wait_for(lambda ev: len(sink.frames()) > n + 5)
    finally:
        stop.set()
        t.join(2)
        a.stop()


def test_user_stream_terminated_resubscribes(paper: EmbeddedPaper) -> None:
    a = make(paper)
    try:
        sink = started(a)
        paper.faults.user_stream_terminated()
        sink.wait_for(lambda ev: _count(sink, "user", True, "resubscribed") >= 1)
        assert _count(sink, "user", False, "user stream terminated") == 1
        order = resting_bid(a, "after-term")
        a.submit(order)
        sink.wait_for(lambda ev: reports(sink, order.client_order_id))  # events flow again
        a.cancel(CancelRequest("BTCUSDT", order.client_order_id))
    finally:
        a.stop()


def test_duplicate_user_events_arrive_equal(paper: EmbeddedPaper) -> None:
    a = make(paper)
    try:
        sink = started(a)
        paper.faults.duplicate_user_events(count=1)
        order = resting_bid(a, "dup")
        a.submit(order)
        sink.wait_for(lambda ev: len(reports(sink, order.client_order_id)) >= 2)
        r = reports(sink, order.client_order_id)
        assert r[0] == r[1]
        a.cancel(CancelRequest("BTCUSDT", order.client_order_id))
    finally:
        a.stop()


# ------------------------------------------------------------------------------------------------
# Order faults
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_5xx_after_execution_is_unknown_then_resolved_without_duplicate(paper: EmbeddedPaper, transport: str) -> None:
    a = make(paper, transport)
    try:
        order = resting_bid(a, f"5xx{transport}")
        paper.faults.order_5xx(count=1)
        out, _ = a.submit(order)
        assert out.status is OrderStatus.UNKNOWN and a.rest_fallbacks == 0
        assert len(venue_orders(paper, order.client_order_id)) == 1  # it DID execute; we did not resend
        q = a.query_order("BTCUSDT", order.client_order_id)
        assert q.status is OrderStatus.NEW and q.order_id
        assert len(venue_orders(paper, order.client_order_id)) == 1
        a.cancel(CancelRequest("BTCUSDT", order.client_order_id))
    finally:
        a.stop()


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("fault", ["ack_lost", "ack_delay"])
def test_lost_or_late_ack_is_unknown_then_resolved(paper: EmbeddedPaper, transport: str, fault: str) -> None:
    a = make(paper, transport, request_timeout_s=0.4)
    try:
        order = resting_bid(a, f"{fault}{transport}")
        if fault == "ack_lost":
            paper.faults.ack_lost(count=1)
        else:
            paper.faults.ack_delay(ms=1500, count=1)
        out, _ = a.submit(order)
        assert out.status is OrderStatus.UNKNOWN and a.rest_fallbacks == 0
        assert a.query_order("BTCUSDT", order.client_order_id).status is OrderStatus.NEW
        assert len(venue_orders(paper, order.client_order_id)) == 1
        never = a.query_order("BTCUSDT", coid("never"))
        assert never.status is OrderStatus.REJECTED and never.error_code == -2013
        a.cancel(CancelRequest("BTCUSDT", order.client_order_id))
    finally:
        a.stop()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_clock_skew_1021_resyncs_and_retries(paper: EmbeddedPaper, transport: str) -> None:
    a = make(paper, transport)
    try:
        a.resync_clock(min_age_s=0)
        paper.faults.clock_skew(ms=30_000)
        order = resting_bid(a, f"skew{transport}")
        out, _ = a.submit(order)
        assert out.status is OrderStatus.NEW
        assert abs(a.clock.offset_ms - 30_000) < 2_000
        assert len(venue_orders(paper, order.client_order_id)) == 1
        paper.faults.clock_skew(ms=0)
        c = a.cancel(CancelRequest("BTCUSDT", order.client_order_id))
        assert c.status is OrderStatus.CANCELED
        assert abs(a.clock.offset_ms) < 2_000
    finally:
        a.stop()


def test_429_cancel_only_then_418_ban_then_recovery(paper: EmbeddedPaper) -> None:
    a = make(paper, "rest")
    try:
        live = resting_bid(a, "live")
        blocked = resting_bid(a, "blocked")
        after = resting_bid(a, "after")
        storm = resting_bid(a, "storm", ticks_below=55)
        assert a.submit(live)[0].status is OrderStatus.NEW
        paper.faults.rate_limit_storm(seconds=0.8)
        out, _ = a.submit(storm)
        assert out.status is OrderStatus.REJECTED and out.error_code == -1003
        assert a.limiter.cancel_only
        before = rest_requests(paper)
        out, _ = a.submit(blocked)
        assert out.status is OrderStatus.REJECTED and "cancel-only" in out.error_msg
        assert rest_requests(paper) == before  # refused locally: never sent
        # Cancels still go out (they are answered 429 during the storm); persisting earns a 418.
        statuses = []
        for _ in range(4):
            c = a.cancel(CancelRequest("BTCUSDT", live.client_order_id))
            statuses.append(c.error_code)
            if a.limiter.banned:
                break
        assert a.limiter.banned, statuses
        sent = rest_requests(paper)
        for _ in range(3):  # nothing at all leaves during the ban
            c = a.cancel(CancelRequest("BTCUSDT", live.client_order_id))
            assert c.status is OrderStatus.REJECTED and "banned" in c.error_msg
            out, _ = a.submit(blocked)
            assert out.status is OrderStatus.REJECTED and "banned" in out.error_msg
            assert a.query_order("BTCUSDT", live.client_order_id).status is OrderStatus.UNKNOWN
        assert rest_requests(paper) == sent
        deadline = time.monotonic() + 10
        while a.limiter.seconds_until_clear() > 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        paper.faults.clear()
        c = a.cancel(CancelRequest("BTCUSDT", live.client_order_id))
        assert c.status is OrderStatus.CANCELED
        assert a.submit(after)[0].status is OrderStatus.NEW
        a.cancel(CancelRequest("BTCUSDT", after.client_order_id))
    finally:
        a.stop()
