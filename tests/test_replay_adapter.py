"""ReplayAdapter: the in-process venue used by tests, benches and ``exchange: replay``."""

from __future__ import annotations

import queue
from decimal import Decimal
from typing import Any

import pytest

from botcore.contracts import ExchangeAdapter
from botcore.core import OrderBook
from botcore.events import MarketFrame, Stop, UserEvent
from botcore.model import CancelRequest, OrderRequest, OrderStatus, Side
from botcore.replay import is_snapshot, iter_recording, shipped_recording
from botcore.replay_adapter import ReplayAdapter

S = OrderStatus
SYM = "BTCUSDT"


class Sink:
    def __init__(self) -> None:
        self.q: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def put(self, event: Any) -> None:
        self.q.put(event)

    def drain(self) -> list[Any]:
        out = []
        while not self.q.empty():
            out.append(self.q.get_nowait())
        return out


def direct_book(frames: int) -> OrderBook:
    """The book after ``frames`` stream frames, replayed straight from the file."""
    book = OrderBook(SYM, 2, 8)
    pending: list[bytes] = []
    n = 0
    for _, raw in iter_recording(shipped_recording()):
        if is_snapshot(raw):
            book.apply_snapshot_json(raw)
            for p in pending:
                book.apply_json(p)
            continue
        n += 1
        if b"@depth" in raw[:40]:
            if book.state == 0:
                pending.append(raw)
            else:
                book.apply_json(raw)
        if n >= frames:
            break
    return book


def test_satisfies_the_adapter_contract_and_knows_the_instruments() -> None:
    a = ReplayAdapter()
    assert isinstance(a, ExchangeAdapter) and a.name == "replay"
    inst = a.exchange_info(["btcusdt"])[SYM]
    assert (
        inst.tick_size == Decimal("0.01")
        and inst.step_size == Decimal("0.00001")
        and inst.price_precision == 2
    )
    with pytest.raises(ValueError, match="NOPE"):
        a.exchange_info(["NOPE"])


def test_before_start_the_snapshot_is_the_recorded_one() -> None:
    raw = ReplayAdapter().depth_snapshot(SYM, 5)
    book = OrderBook(SYM, 2, 8)
    book.apply_snapshot_json(raw)
    assert book.last_update_id == 50093239218 and len(book.bids(10)) == 5


def test_feed_delivers_frames_then_stop_and_serves_a_current_snapshot() -> None:
    sink = Sink()
    a = ReplayAdapter(max_frames=3000, drop_depth={10})
    a.start(sink, [SYM])
    assert a.wait_done(30)
    events = sink.drain()
    frames = [e for e in events if isinstance(e, MarketFrame)]
    assert len(frames) == 3000 and a.frames_sent == 3000 and a.depth_dropped == 1
    assert isinstance(events[-1], Stop) and events[-1].reason == "replay finished"
    assert all(f.raw.startswith(b'{"stream":"btcusdt@') for f in frames)
    stamps = [f.recv_ns for f in frames]
    assert stamps == sorted(stamps)
    # the venue's book includes the dropped diff: its snapshot equals a full direct replay
    served = OrderBook(SYM, 2, 8)
    served.apply_snapshot_json(a.depth_snapshot(SYM, 1000))
    expected = direct_book(3001)  # frames counted here include the dropped one
    assert served.last_update_id == expected.last_update_id
    assert served.depth(50) == expected.depth(50)
    a.stop()


def test_symbols_not_subscribed_are_not_fed() -> None:
    sink = Sink()
    a = ReplayAdapter(max_frames=100)
    a.start(sink, ["ETHUSDT"])
    assert a.wait_done(30)
    assert [e for e in sink.drain() if isinstance(e, MarketFrame)] == []


def test_stop_halts_a_paced_feed() -> None:
    sink = Sink()
    a = ReplayAdapter(speed=1.0, stop_at_end=True)
    a.start(sink, [SYM])
    a.stop()
    assert a.wait_done(5)
    assert not any(isinstance(e, Stop) for e in sink.drain())  # halted, not finished


def test_orders_are_acked_echoed_cancelled_and_queried() -> None:
    sink = Sink()
    a = ReplayAdapter(max_frames=1, balances={"USDT": "100"})
    a.start(sink, [SYM])
    a.wait_done(10)
    sink.drain()
    order = OrderRequest(SYM, Side.BUY, Decimal("0.001"), Decimal("60000"), client_order_id="c1")
    out, fills = a.submit(order)
    assert (out.action, out.status, fills) == ("new", S.NEW, ())
    dup, _ = a.submit(order)
    assert (dup.status, dup.error_code) == (S.REJECTED, -2010)
    assert [o.client_order_id for o in a.open_orders(SYM)] == ["c1"]
    snap = a.account_snapshot()
    assert [b.free for b in snap.balances] == [Decimal("100")] and len(snap.open_orders) == 1
    assert a.query_order(SYM, "c1").status is S.NEW
    assert a.cancel(CancelRequest(SYM, "c1")).status is S.CANCELED
    assert a.query_order(SYM, "c1").status is S.CANCELED
    again = a.cancel(CancelRequest(SYM, "c1"))
    assert (again.status, again.error_code) == (S.REJECTED, -2011)
    nope = a.query_order(SYM, "never")
    assert (nope.status, nope.error_code) == (S.REJECTED, -2013)
    reports = [e.event for e in sink.drain() if isinstance(e, UserEvent)]
    assert [(r.client_order_id, r.status) for r in reports] == [("c1", S.NEW), ("c1", S.CANCELED)]
    c, n, _ = a.cancel_replace(
        CancelRequest(SYM, "c1"), OrderRequest(SYM, Side.BUY, Decimal(1), Decimal(1), client_order_id="c2")
    )
    assert c.status is S.REJECTED and n.status is S.REJECTED  # STOP_ON_FAILURE semantics
    a.stop()
