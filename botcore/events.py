"""Events: the only things that cross from other threads into the engine thread.

Producers (websocket threads, the gateway's worker pool, scheduler jobs) build one of these and
hand it to ``EventSink.put``; the engine thread is the only consumer and the only writer of
trading state. All events are plain msgspec Structs so they can travel over a message bus later.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from botcore.model import (
    AccountSnapshot,
    AccountUpdate,
    BalanceDelta,
    ExecutionReport,
    Fill,
    OrderOutcome,
)


class MarketFrame(msgspec.Struct, frozen=True):
    """One raw websocket text frame from a market stream, untouched.

    ``raw`` is the combined-stream envelope ``{"stream":"btcusdt@depth@100ms","data":{...}}``;
    decoding happens on the engine thread, straight into the Cython order book.
    """

    raw: bytes
    recv_ns: int


class DepthSnapshot(msgspec.Struct, frozen=True):
    """A REST ``/api/v3/depth`` answer (raw JSON bytes) fetched off-thread for book sync."""

    symbol: str
    raw: bytes
    recv_ns: int


class StreamStatus(msgspec.Struct, frozen=True):
    """A stream became (un)trustworthy: reconnecting, stalled, gap, clock skew, ...

    ``stream`` is ``"market:<SYMBOL>"``, ``"market"`` (all symbols), ``"user"``, or ``"orders"``
    (order entry: untrusted while the venue refuses new orders, e.g. cancel-only after HTTP 429 or
    banned after 418; quoting pauses instead of sending orders that would be refused).
    """

    stream: str
    trusted: bool
    reason: str
    time_ns: int


class UserEvent(msgspec.Struct, frozen=True):
    """A decoded user-data event: ExecutionReport, AccountUpdate or BalanceDelta."""

    event: ExecutionReport | AccountUpdate | BalanceDelta
    recv_ns: int


class GatewayResult(msgspec.Struct, frozen=True):
    """The outcome of one gateway request, plus any fills the venue returned inline."""

    outcome: OrderOutcome
    fills: tuple[Fill, ...] = ()


class ReconcileSnapshot(msgspec.Struct, frozen=True):
    """REST state fetched by a scheduled job, applied by the engine with fencing."""

    job: str
    snapshot: AccountSnapshot
    fills: tuple[Fill, ...] = ()


class JobRequest(msgspec.Struct, frozen=True):
    """A scheduled job asks the engine to run ``name`` on the engine thread (cheap work only)."""

    name: str
    payload: dict[str, Any] = {}


class Stop(msgspec.Struct, frozen=True):
    """Ask the engine to shut down cleanly (cancel open orders, close the journal)."""

    reason: str = "stop requested"


Event = (
    MarketFrame
    | DepthSnapshot
    | StreamStatus
    | UserEvent
    | GatewayResult
    | ReconcileSnapshot
    | JobRequest
    | Stop
)


class EventSink(Protocol):
    """Thread-safe entry into the engine: the only thing other threads may call."""

    def put(self, event: Event) -> None: ...
