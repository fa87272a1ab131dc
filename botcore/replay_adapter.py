"""An in-process exchange adapter over a recording: for tests, benchmarks and dry runs.

``ReplayAdapter`` satisfies ``contracts.ExchangeAdapter`` without a network: a thread feeds the
recorded websocket frames (``botcore.replay``) into the engine as ``MarketFrame``s, stamped with
the local clock when they are handed over, as fast as the engine takes them or paced at a
multiple of the recorded speed. REST answers come from local state:

- ``depth_snapshot``: the book as of the frame just fed. The adapter keeps its own plain ladder
  (price string -> qty string) from the recording's snapshot line plus every diff after it, so a
  resync at any point of the replay gets a snapshot that connects to the stream, like the venue.
- ``exchange_info``: the shipped ``exchangeInfo`` file.
- orders and cancels are acknowledged at once, and (``user_reports``) echoed as user-stream
  execution reports; nothing ever fills: this is not a matching engine (the paper exchange is).
- ``account_snapshot``: configurable balances plus the adapter's open orders.

Fault knobs for tests: ``drop_depth`` (indices of depth frames never delivered: a sequence gap)
and ``max_backlog`` (back-pressure on the engine queue, so a fast replay measures processing, not
queueing; 0 = lock-step: each frame waits until the engine has taken the previous one).
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec

from botcore.events import EventSink, MarketFrame, Stop, StreamStatus, UserEvent
from botcore.metrics import now_ns
from botcore.model import (
    AccountSnapshot,
    Balance,
    CancelRequest,
    ExecutionReport,
    Fill,
    Instrument,
    OpenOrder,
    OrderOutcome,
    OrderRequest,
    OrderStatus,
)
from botcore.replay import is_snapshot, iter_recording, shipped_recording

log = logging.getLogger(__name__)

EXCHANGE_INFO = "exchangeInfo_2025-08-07.json"
DEFAULT_BALANCES: Mapping[str, Decimal] = {"USDT": Decimal("10000"), "BTC": Decimal("0.5")}


def shipped_exchange_info() -> Path:
    return Path(str(resources.files("botcore") / "data" / "exchangeinfo" / EXCHANGE_INFO))


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class _Ladder:
    """The replayed venue's book for one symbol, kept as decimal strings (no parsing cost).

    The recorder fetched its snapshot *after* subscribing, so diffs recorded before the snapshot
    line may still be newer than it: they are held until the snapshot arrives, then replayed.
    """

    __slots__ = ("bids", "asks", "last_id", "ready", "_early")

    def __init__(self) -> None:
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}
        self.last_id = -1
        self.ready = False
        self._early: list[dict[str, Any]] = []

    def reset(self, snap: dict[str, Any]) -> None:
        self.bids = {p: q for p, q in snap["bids"] if Decimal(q)}
        self.asks = {p: q for p, q in snap["asks"] if Decimal(q)}
        self.last_id = int(snap["lastUpdateId"])
        self.ready = True
        early, self._early = self._early, []
        for data in early:
            self.apply(data)

    def apply(self, data: dict[str, Any]) -> None:
        if not self.ready:
            self._early.append(data)
            return
        if data["u"] <= self.last_id:
            return
        for side, levels in ((self.bids, data["b"]), (self.asks, data["a"])):
            for p, q in levels:
                if q.strip("0.") == "":
                    side.pop(p, None)
                else:
                    side[p] = q
        self.last_id = data["u"]

    def snapshot(self, limit: int) -> bytes:
        bids = sorted(self.bids.items(), key=lambda kv: Decimal(kv[0]), reverse=True)[:limit]
        asks = sorted(self.asks.items(), key=lambda kv: Decimal(kv[0]))[:limit]
        body = {
            "lastUpdateId": self.last_id,
            "bids": [list(x) for x in bids],
            "asks": [list(x) for x in asks],
        }
        return json.dumps(body, separators=(",", ":")).encode()


class ReplayAdapter:
    """See the module docstring. ``speed`` 0 = as fast as possible, 1 = recorded pace, 5 = 5x."""

    name = "replay"

    def __init__(
        self,
        paths: Iterable[str | Path] | None = None,
        *,
        speed: float = 0.0,
        balances: Mapping[str, Decimal | str] | None = None,
        max_frames: int | None = None,
        stop_at_end: bool = True,
        user_reports: bool = True,
        drop_depth: Collection[int] = (),
        max_backlog: int = 2000,
        exchange_info_path: str | Path | None = None,
    ) -> None:
        self.paths = [Path(p) for p in paths] if paths is not None else shipped_recording()
        self.speed = float(speed)
        self.balances = {k: Decimal(v) for k, v in (balances or DEFAULT_BALANCES).items()}
        self.max_frames = max_frames
        self.stop_at_end = stop_at_end
        self.user_reports = user_reports
        self.drop_depth = frozenset(drop_depth)
        self.max_backlog = max_backlog
        self.exchange_info_path = Path(exchange_info_path) if exchange_info_path else shipped_exchange_info()
        self._sink: EventSink | None = None
        self._thread: threading.Thread | None = None
        self._halt = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._ladder_cv = threading.Condition(self._lock)
        self._ladders: dict[str, _Ladder] = {}
        self._orders: dict[str, OpenOrder] = {}
        self._closed: dict[str, OpenOrder] = {}
        self._order_ids = itertools.count(1)
        self.frames_sent = 0
        self.depth_dropped = 0
        self.requests: list[tuple[str, str]] = []  # (action, client order id), for tests

    # --- streams -------------------------------------------------------------------------------------
    def start(self, sink: EventSink, symbols: Sequence[str]) -> None:
        if self._thread is not None:
            raise RuntimeError("replay already started")
        self._sink = sink
        wanted = {s.lower() for s in symbols}
        self._ladders = {s.upper(): _Ladder() for s in symbols}
        self._thread = threading.Thread(target=self._feed, args=(wanted,), name="botcore-replay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._halt.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5.0)

    def wait_done(self, timeout: float | None = None) -> bool:
        """Wait until the whole recording was fed (or the feed stopped)."""
        return self._done.wait(timeout)

    def _feed(self, wanted: set[str]) -> None:
        sink = self._sink
        assert sink is not None
        backlog = getattr(sink, "backlog", None)
        max_backlog = self.max_backlog
        speed = self.speed
        t0_rec = t0_wall = 0
        depth_index = 0
        single = next(iter(self._ladders)) if len(self._ladders) == 1 else None
        try:
            for rec_ns, raw in iter_recording(self.paths):
                if self._halt.is_set():
                    break
                if is_snapshot(raw):
                    # The recorder fetched it right after subscribing: one symbol per recording.
                    if single is not None:
                        with self._lock:
                            self._ladders[single].reset(json.loads(raw))
                            self._ladder_cv.notify_all()
                    continue
                end = raw.find(b'"', 11)
                stream = raw[11:end]
                at = stream.find(b"@")
                if stream[:at].decode() not in wanted:
                    continue
                if b"@depth" in stream:
                    # The venue's book has every diff, including the ones the client "misses".
                    self._track_depth(stream[:at], raw)
                    depth_index += 1
                    if depth_index - 1 in self.drop_depth:
                        self.depth_dropped += 1
                        continue
                if speed > 0:
                    if not t0_rec:
                        t0_rec, t0_wall = rec_ns, time.monotonic_ns()
                    due = t0_wall + int((rec_ns - t0_rec) / speed)
                    delay = due - time.monotonic_ns()
                    if delay > 0 and self._halt.wait(delay / 1e9):
                        break
                sink.put(MarketFrame(raw, now_ns()))
                self.frames_sent += 1
                if backlog is not None:
                    # Wait *after* the hand-off: the frame is stamped, then this thread sleeps
                    # (releasing the GIL) like a websocket reader blocking on its socket, instead
                    # of decoding the next frame while the engine waits for the GIL.
                    while backlog() > max_backlog and not self._halt.is_set():
                        time.sleep(0.0002)
                if self.max_frames is not None and self.frames_sent >= self.max_frames:
                    break
        except Exception as exc:
            log.exception("replay feed failed")
            sink.put(StreamStatus("market", False, f"replay failed: {exc}", now_ns()))
        finally:
            self._done.set()
        if self.stop_at_end and not self._halt.is_set():
            sink.put(Stop("replay finished"))

    def _track_depth(self, sym: bytes, raw: bytes) -> None:
        ladder = self._ladders.get(sym.decode().upper())
        if ladder is None:
            return
        data = msgspec.json.decode(raw)["data"]
        with self._lock:
            ladder.apply(data)

    # --- REST-like answers -------------------------------------------------------------------------
    def exchange_info(self, symbols: Sequence[str]) -> dict[str, Instrument]:
        info = json.loads(self.exchange_info_path.read_text())
        by_name = {s["symbol"]: s for s in info["symbols"]}
        out = {}
        for sym in symbols:
            if sym.upper() not in by_name:
                raise ValueError(f"symbol {sym} is not in {self.exchange_info_path.name}")
            out[sym.upper()] = Instrument.from_exchange_info(by_name[sym.upper()])
        return out

    def depth_snapshot(self, symbol: str, limit: int = 1000) -> bytes:
        if self._thread is None:
            return self._recorded_snapshot(symbol, limit)
        with self._lock:
            ladder = self._ladders.get(symbol.upper())
            if ladder is None:
                raise ValueError(f"no replayed book for {symbol}")
            if (
                not self._ladder_cv.wait_for(lambda: ladder.ready or self._done.is_set(), timeout=5.0)
                or not ladder.ready
            ):
                raise TimeoutError(f"the recording has no depth snapshot for {symbol} yet")
            return ladder.snapshot(limit)

    def _recorded_snapshot(self, symbol: str, limit: int) -> bytes:
        """Before the feed starts (e.g. ``botcore check``): the recording's own snapshot line."""
        for _, raw in iter_recording(self.paths):
            if is_snapshot(raw):
                snap = json.loads(raw)
                return json.dumps(
                    {
                        "lastUpdateId": snap["lastUpdateId"],
                        "bids": snap["bids"][:limit],
                        "asks": snap["asks"][:limit],
                    },
                    separators=(",", ":"),
                ).encode()
        raise ValueError(f"the recording has no depth snapshot for {symbol}")

    def account_snapshot(self) -> AccountSnapshot:
        now = _now_ms()
        with self._lock:
            orders = tuple(self._orders.values())
        return AccountSnapshot(
            balances=tuple(Balance(a, v, Decimal(0)) for a, v in self.balances.items()),
            open_orders=orders,
            update_time_ms=now,
            fetched_at_ms=now,
        )

    def open_orders(self, symbol: str | None = None) -> list[OpenOrder]:
        with self._lock:
            return [o for o in self._orders.values() if symbol is None or o.symbol == symbol]

    def server_time_ms(self) -> int:
        return _now_ms()

    def my_trades(self, symbol: str, from_id: int = 0) -> list[Fill]:
        return []

    # --- orders ---------------------------------------------------------------------------------------
    def submit(self, order: OrderRequest) -> tuple[OrderOutcome, tuple[Fill, ...]]:
        return self._submit(order, "new")

    def _submit(self, order: OrderRequest, action: str) -> tuple[OrderOutcome, tuple[Fill, ...]]:
        now = _now_ms()
        with self._lock:
            if action:
                self.requests.append((action, order.client_order_id))
            if order.client_order_id in self._orders:
                return (
                    OrderOutcome(
                        "new",
                        order.symbol,
                        order.client_order_id,
                        OrderStatus.REJECTED,
                        error_code=-2010,
                        error_msg="Duplicate order sent.",
                    ),
                    (),
                )
            oid = next(self._order_ids)
            oo = OpenOrder(
                order.symbol,
                order.client_order_id,
                oid,
                order.side,
                str(order.order_type),
                OrderStatus.NEW,
                order.price or Decimal(0),
                order.qty,
                Decimal(0),
                Decimal(0),
                now,
                now,
            )
            self._orders[order.client_order_id] = oo
        self._report(oo, OrderStatus.NEW, "NEW", now)
        return OrderOutcome("new", order.symbol, order.client_order_id, OrderStatus.NEW, order_id=oid), ()

    def cancel(self, request: CancelRequest) -> OrderOutcome:
        return self._cancel(request, "cancel")

    def _cancel(self, request: CancelRequest, action: str) -> OrderOutcome:
        now = _now_ms()
        with self._lock:
            if action:
                self.requests.append((action, request.client_order_id))
            oo = self._orders.pop(request.client_order_id, None)
            if oo is not None:
                self._closed[request.client_order_id] = msgspec.structs.replace(
                    oo, status=OrderStatus.CANCELED, update_time_ms=now
                )
        if oo is None:
            return OrderOutcome(
                "cancel",
                request.symbol,
                request.client_order_id,
                OrderStatus.REJECTED,
                error_code=-2011,
                error_msg="Unknown order sent.",
            )
        self._report(oo, OrderStatus.CANCELED, "CANCELED", now)
        return OrderOutcome(
            "cancel", request.symbol, request.client_order_id, OrderStatus.CANCELED, order_id=oo.order_id
        )

    def cancel_replace(
        self, cancel: CancelRequest, new: OrderRequest
    ) -> tuple[OrderOutcome, OrderOutcome, tuple[Fill, ...]]:
        """``cancelReplaceMode=STOP_ON_FAILURE``: cancel first; place ``new`` only if that worked.

        Recorded in ``requests`` as one ``("cancel_replace", new client order id)``. A failed
        cancel leg answers like the venue's -2022 body: the new leg is NOT_ATTEMPTED (REJECTED).
        """
        with self._lock:
            self.requests.append(("cancel_replace", new.client_order_id))
        c = self._cancel(cancel, "")
        if c.status is not OrderStatus.CANCELED:
            return (
                c,
                OrderOutcome(
                    "new",
                    new.symbol,
                    new.client_order_id,
                    OrderStatus.REJECTED,
                    error_code=-2022,
                    error_msg="Order cancel-replace failed. (new order not attempted)",
                ),
                (),
            )
        n, fills = self._submit(new, "")
        return c, n, fills

    def query_order(self, symbol: str, client_order_id: str) -> OrderOutcome:
        with self._lock:
            self.requests.append(("query", client_order_id))
            oo = self._orders.get(client_order_id) or self._closed.get(client_order_id)
        if oo is None:
            return OrderOutcome(
                "query",
                symbol,
                client_order_id,
                OrderStatus.REJECTED,
                error_code=-2013,
                error_msg="Order does not exist.",
            )
        return OrderOutcome(
            "query", symbol, client_order_id, oo.status, order_id=oo.order_id, cum_qty=oo.cum_qty
        )

    def _report(self, oo: OpenOrder, status: OrderStatus, exec_type: str, now: int) -> None:
        if not self.user_reports or self._sink is None:
            return
        report = ExecutionReport(
            symbol=oo.symbol,
            client_order_id=oo.client_order_id,
            order_id=oo.order_id,
            side=oo.side,
            order_type=oo.order_type,
            status=status,
            execution_type=exec_type,
            price=oo.price,
            orig_qty=oo.orig_qty,
            cum_qty=oo.cum_qty,
            cum_quote=oo.cum_quote,
            event_time_ms=now,
            transaction_time_ms=now,
        )
        self._sink.put(UserEvent(report, now_ns()))
