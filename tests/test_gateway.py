"""Gateway: never blocks the caller, every outcome comes back as an event, errors mean UNKNOWN."""

from __future__ import annotations

import queue
import threading
from decimal import Decimal
from typing import Any

import pytest

from botcore.events import DepthSnapshot, GatewayResult
from botcore.gateway import Gateway, describe_error
from botcore.model import CancelRequest, OrderOutcome, OrderRequest, OrderStatus, Side

S = OrderStatus
WAIT = 5.0


class Sink:
    def __init__(self) -> None:
        self.q: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def put(self, event: Any) -> None:
        self.q.put(event)

    def get(self) -> Any:
        return self.q.get(timeout=WAIT)

    def empty(self) -> bool:
        return self.q.empty()


class Adapter:
    """Answers at once unless ``gate`` is given (then every call waits for it); ``fail`` raises."""

    name = "fake"

    def __init__(self, gate: threading.Event | None = None, fail: BaseException | None = None) -> None:
        self.gate = gate
        self.fail = fail
        self.entered = threading.Event()
        self.calls: list[tuple[str, str]] = []

    def _enter(self, what: str, key: str) -> None:
        self.calls.append((what, key))
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(WAIT)
        if self.fail is not None:
            raise self.fail

    def submit(self, order: OrderRequest) -> tuple[OrderOutcome, tuple[Any, ...]]:
        self._enter("new", order.client_order_id)
        return OrderOutcome("new", order.symbol, order.client_order_id, S.NEW, order_id=1), ()

    def cancel(self, request: CancelRequest) -> OrderOutcome:
        self._enter("cancel", request.client_order_id)
        return OrderOutcome("cancel", request.symbol, request.client_order_id, S.CANCELED)

    def cancel_replace(
        self, cancel: CancelRequest, new: OrderRequest
    ) -> tuple[OrderOutcome, OrderOutcome, tuple[Any, ...]]:
        self._enter("cancel_replace", new.client_order_id)
        return (
            OrderOutcome("cancel", cancel.symbol, cancel.client_order_id, S.CANCELED),
            OrderOutcome("new", new.symbol, new.client_order_id, S.NEW),
            (),
        )

    def query_order(self, symbol: str, cid: str) -> OrderOutcome:
        self._enter("query", cid)
        return OrderOutcome("query", symbol, cid, S.FILLED, cum_qty=Decimal(1))

    def depth_snapshot(self, symbol: str, limit: int = 1000) -> bytes:
        self._enter("depth", symbol)
        return b'{"lastUpdateId":1,"bids":[],"asks":[]}'


def order(cid: str = "c1") -> OrderRequest:
    return OrderRequest("BTCUSDT", Side.BUY, Decimal(1), Decimal(100), client_order_id=cid)


@pytest.fixture
def sink() -> Sink:
    return Sink()


def test_submit_returns_while_the_adapter_is_still_blocked(sink: Sink) -> None:
    gate = threading.Event()
    adapter = Adapter(gate=gate)
    gw = Gateway(adapter, sink, max_workers=1)
    try:
        gw.submit(order("c1"))  # a worker takes it and blocks inside the adapter
        assert adapter.entered.wait(WAIT)
        for i in range(2, 50):  # the pool is busy: these must still return at once
            gw.submit(order(f"c{i}"))
        gw.cancel(CancelRequest("BTCUSDT", "c1"))
        gw.query("BTCUSDT", "c1")
        gw.fetch_depth("BTCUSDT")
        assert sink.empty() and not gate.is_set()  # nothing answered yet, nothing waited for it
        assert gw.in_flight == 52
        gate.set()
        results = [sink.get() for _ in range(52)]
        assert [r.outcome.client_order_id for r in results[:49]] == [f"c{i}" for i in range(1, 50)]
        assert all(r.outcome.status is S.NEW for r in results[:49])
        assert results[49].outcome.action == "cancel" and results[50].outcome.status is S.FILLED
        assert isinstance(results[51], DepthSnapshot) and results[51].raw.startswith(b'{"lastUpdateId"')
    finally:
        gate.set()
        assert gw.close()
    assert gw.in_flight == 0


@pytest.mark.parametrize(
    ("call", "action"),
    [
        (lambda gw: gw.submit(order("x")), "new"),
        (lambda gw: gw.cancel(CancelRequest("BTCUSDT", "x")), "cancel"),
        (lambda gw: gw.query("BTCUSDT", "x"), "query"),
    ],
)
def test_adapter_exception_becomes_unknown_never_a_resend(sink: Sink, call: Any, action: str) -> None:
    adapter = Adapter(fail=TimeoutError("read timed out"))
    gw = Gateway(adapter, sink)
    call(gw)
    res = sink.get()
    assert gw.close()
    assert isinstance(res, GatewayResult)
    assert res.outcome.action == action and res.outcome.client_order_id == "x"
    assert res.outcome.status is S.UNKNOWN
    assert "TimeoutError" in res.outcome.error_msg
    assert len(adapter.calls) == 1  # exactly one attempt
    assert gw.errors == 1


def test_cancel_replace_exception_leaves_both_unknown(sink: Sink) -> None:
    gw = Gateway(Adapter(fail=ConnectionError("reset")), sink)
    gw.cancel_replace(CancelRequest("BTCUSDT", "old"), order("new"))
    first, second = sink.get(), sink.get()
    gw.close()
    assert (first.outcome.action, first.outcome.client_order_id, first.outcome.status) == (
        "cancel",
        "old",
        S.UNKNOWN,
    )
    assert (second.outcome.action, second.outcome.client_order_id, second.outcome.status) == (
        "new",
        "new",
        S.UNKNOWN,
    )


def test_cancel_replace_reports_both_outcomes(sink: Sink) -> None:
    gw = Gateway(Adapter(), sink)
    gw.cancel_replace(CancelRequest("BTCUSDT", "old"), order("new"))
    a, b = sink.get(), sink.get()
    gw.close()
    assert (a.outcome.action, a.outcome.status) == ("cancel", S.CANCELED)
    assert (b.outcome.action, b.outcome.status) == ("new", S.NEW)


def test_depth_failure_is_an_empty_snapshot(sink: Sink) -> None:
    gw = Gateway(Adapter(fail=OSError("boom")), sink)
    gw.fetch_depth("ETHUSDT", 50)
    snap = sink.get()
    gw.close()
    assert isinstance(snap, DepthSnapshot) and snap.symbol == "ETHUSDT" and snap.raw == b""


def test_outcomes_are_stamped_and_timed(sink: Sink) -> None:
    ticks = iter(range(1000, 10**9, 1000))
    gw = Gateway(Adapter(), sink, max_workers=1, clock=lambda: next(ticks))
    gw.submit(order())
    res = sink.get()
    gw.close()
    assert 0 < res.outcome.sent_ns < res.outcome.done_ns
    t = gw.timings()
    assert t["queue_wait"]["count"] == 1 and t["new"]["count"] == 1


def test_close_finishes_queued_work_then_refuses_new_work(sink: Sink) -> None:
    gate = threading.Event()
    gw = Gateway(Adapter(gate=gate), sink, max_workers=2)
    for i in range(5):
        gw.submit(order(f"q{i}"))
    threading.Timer(0.05, gate.set).start()
    assert gw.close(timeout=WAIT)
    done = [sink.get() for _ in range(5)]
    assert {r.outcome.status for r in done} == {S.NEW}
    gw.submit(order("late"))
    gw.cancel(CancelRequest("BTCUSDT", "late"))
    gw.query("BTCUSDT", "late")
    gw.fetch_depth("BTCUSDT")
    late = [sink.get() for _ in range(4)]
    # never sent: a new/cancel certainly did not execute; a query learned nothing
    assert [r.outcome.status for r in late[:3]] == [S.REJECTED, S.REJECTED, S.UNKNOWN]
    assert all(r.outcome.error_msg == "gateway closed" for r in late[:3])
    assert late[3].raw == b""


def test_close_times_out_on_a_stuck_adapter(sink: Sink) -> None:
    gate = threading.Event()
    gw = Gateway(Adapter(gate=gate), sink, max_workers=1)
    gw.submit(order())
    try:
        assert gw.close(timeout=0.05) is False
    finally:
        gate.set()


def test_error_descriptions_never_carry_secrets() -> None:
    exc = RuntimeError(
        "POST /api/v3/order?symbol=X&signature=abcdef0123&timestamp=1 apiKey=KEY123 secret: s3cr3t"
    )
    text = describe_error(exc)
    assert "abcdef0123" not in text and "KEY123" not in text and "s3cr3t" not in text
    assert text.startswith("RuntimeError:") and "symbol=X" in text
    assert len(describe_error(RuntimeError("x" * 1000))) == 300


def test_zero_workers_is_an_error(sink: Sink) -> None:
    with pytest.raises(ValueError):
        Gateway(Adapter(), sink, max_workers=0)
