"""WebSocket connections that stay up: ``ManagedSocket`` and the combined market stream.

``ManagedSocket`` wraps a websocket-client ``WebSocketApp`` in a runner thread that reconnects with
jittered exponential back-off, plus a watchdog thread that closes a connection which is open but
silent for ``stall_timeout_s`` (the "silent stall": TCP up, no data), which has lived longer than
``max_session_s`` (Binance cuts every connection at 24 h; we reconnect earlier at a moment of our
choosing), or whose handshake hangs. Server pings are answered with pongs by websocket-client
itself (``WebSocket.recv_data_frame`` pongs every PING before the app sees it); we also send our own
pings so a dead peer is detected on quiet connections (the user stream can be silent for hours).

``MarketStream`` is one combined-stream connection for all symbols
(``/stream?streams=<sym>@depth@100ms/<sym>@bookTicker/<sym>@trade``). Frames are delivered to the
sink raw, undecoded (the engine decodes them into the book), stamped with ``now_ns()``. Every
disconnect puts ``StreamStatus(stream="market", trusted=False, reason)``; every successful
(re)connect puts ``StreamStatus(trusted=True, reason="connected"|"reconnected")`` before the
first frame of the new connection, so the engine knows to rebuild books from fresh snapshots.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import websocket

from botcore.events import EventSink, MarketFrame, StreamStatus
from botcore_exchange_binance.clock import now_ns
from botcore_exchange_binance.errors import NotSent
from botcore_exchange_binance.scrub import scrub

log = logging.getLogger(__name__)

DAY_S = 24 * 3600.0


def _ensure_default_timeout(seconds: float) -> None:
    """websocket-client applies only the process-wide default timeout to connect + handshake.

    Without one a handshake to a black-holed host blocks forever; set it only if nobody did.
    """
    if websocket.getdefaulttimeout() is None:
        websocket.setdefaulttimeout(seconds)


class ManagedSocket:
    """One logical WebSocket connection that keeps itself alive.

    Callbacks run on the socket's runner thread:

    * ``on_open(first: bool)``: connected (``first`` is False for reconnections);
    * ``on_frame(raw: bytes, recv_ns: int)``: one text/binary frame, untouched;
    * ``on_down(reason: str)``: a connection that had opened went away (or is being closed).
    """

    def __init__(
        self,
        name: str,
        url: str | Callable[[], str],
        *,
        on_open: Callable[[bool], None],
        on_frame: Callable[[bytes, int], None],
        on_down: Callable[[str], None],
        stall_timeout_s: float | None = None,
        max_session_s: float = DAY_S - 1800.0,
        backoff_initial_s: float = 0.25,
        backoff_max_s: float = 30.0,
        ping_interval_s: float = 20.0,
        ping_timeout_s: float = 10.0,
        connect_timeout_s: float = 10.0,
        app_factory: Callable[..., Any] = websocket.WebSocketApp,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self._url = url
        self._on_open_cb = on_open
        self._on_frame_cb = on_frame
        self._on_down_cb = on_down
        self.stall_timeout_s = stall_timeout_s
        self.max_session_s = max_session_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.ping_interval_s = ping_interval_s
        self.ping_timeout_s = ping_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._app_factory = app_factory
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        self._open = threading.Event()
        self._lock = threading.Lock()
        self._app: Any = None
        self._close_reason = ""
        self._attempt_ns = 0
        self._opened_ns = 0
        self._last_frame_ns = 0
        self._frames_this_conn = 0
        self._ever_opened = False
        self._runner: threading.Thread | None = None
        self._watchdog: threading.Thread | None = None
        # counters (read by tests, stats)
        self.connects = 0
        self.disconnects = 0
        self.frames = 0
        self.last_down_reason = ""
        self.delays: deque[float] = deque(maxlen=32)  # recent back-off sleeps (stats, tests)

    def __repr__(self) -> str:
        return f"ManagedSocket({self.name!r}, open={self.is_open})"

    # --- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        if self._runner is not None:
            return
        _ensure_default_timeout(self.connect_timeout_s)
        self._runner = threading.Thread(target=self._run, name=f"ws-{self.name}", daemon=True)
        self._watchdog = threading.Thread(target=self._watch, name=f"ws-{self.name}-watchdog", daemon=True)
        self._runner.start()
        self._watchdog.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Close for good; idempotent. ``on_down("stopped")`` is not called."""
        self._stop.set()
        self.force_close("stopped")
        for t in (self._runner, self._watchdog):
            if t is not None and t is not threading.current_thread():
                t.join(timeout_s)

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    def wait_open(self, timeout_s: float) -> bool:
        return self._open.wait(timeout_s)

    def force_close(self, reason: str) -> None:
        """Drop the current connection now (the runner reconnects unless stopped)."""
        with self._lock:
            app = self._app
            if app is None:
                return
            if not self._close_reason:
                self._close_reason = reason
        app.keep_running = False
        sock = getattr(app, "sock", None)
        raw = getattr(sock, "sock", None) if sock is not None else None
        if raw is not None:
            try:
                raw.shutdown(socket.SHUT_RDWR)  # wakes the reader's select() at once
            except OSError:
                pass

    def send(self, payload: bytes | str) -> int:
        """Send one text frame; returns ``now_ns()`` after the write. Raises ``NotSent``."""
        app = self._app
        if app is None or not self._open.is_set():
            raise NotSent(f"{self.name} connection is not open")
        try:
            app.send(payload, websocket.ABNF.OPCODE_TEXT)
        except Exception as exc:  # a failed/partial frame is never processed by the venue
            raise NotSent(f"{self.name} send failed: {type(exc).__name__}") from None
        return now_ns()

    # --- runner ----------------------------------------------------------------------------------
    def _current_url(self) -> str:
        return self._url() if callable(self._url) else self._url

    def _run(self) -> None:
        backoff = self.backoff_initial_s
        while not self._stop.is_set():
            app = self._app_factory(
                self._current_url(),
                on_open=self._handle_open,
                on_message=self._handle_message,
                on_error=self._handle_error,
                on_close=self._handle_close,
            )
            with self._lock:
                self._app = app
                self._close_reason = ""
                self._attempt_ns = now_ns()
                self._frames_this_conn = 0
            try:
                pinging = self.ping_interval_s > 0
                app.run_forever(
                    ping_interval=self.ping_interval_s if pinging else 0,
                    ping_timeout=min(self.ping_timeout_s, self.ping_interval_s * 0.9) if pinging else None,
                    skip_utf8_validation=True,  # frames arrive as bytes, undecoded
                    reconnect=0,
                )
            except Exception as exc:  # run_forever should not raise; never let the runner die
                log.warning("%s: run_forever raised %s", self.name, scrub(exc))
            was_open = self._open.is_set()
            self._open.clear()
            lived_s = (now_ns() - self._opened_ns) / 1e9 if was_open else 0.0
            healthy = was_open and (self._frames_this_conn > 0 or lived_s > 10.0)
            with self._lock:
                reason = self._close_reason or "disconnected"
                self._app = None
            if self._stop.is_set():
                break
            if was_open:
                self.disconnects += 1
                self.last_down_reason = reason
                log.info("%s: connection down (%s)", self.name, reason)
                self._safe(self._on_down_cb, reason)
            if healthy:
                backoff = self.backoff_initial_s
            delay = self._rng.uniform(backoff / 2.0, backoff)  # "equal jitter": never a thundering herd
            self.delays.append(delay)
            backoff = min(backoff * 2.0, self.backoff_max_s)
            self._stop.wait(delay)

    def _handle_open(self, app: Any) -> None:
        if app is not self._app:
            return
        self._opened_ns = self._last_frame_ns = now_ns()
        first = not self._ever_opened
        self._ever_opened = True
        self.connects += 1
        self._open.set()
        self._safe(self._on_open_cb, first)

    def _handle_message(self, app: Any, data: bytes | str) -> None:
        recv = now_ns()
        if app is not self._app:
            return
        self._last_frame_ns = recv
        self._frames_this_conn += 1
        self.frames += 1
        raw = data if isinstance(data, bytes) else data.encode()
        self._on_frame_cb(raw, recv)

    def _handle_error(self, app: Any, error: BaseException) -> None:
        if app is not self._app:
            return
        with self._lock:
            if not self._close_reason:
                self._close_reason = f"error: {type(error).__name__}: {scrub(error)[:120]}"
        log.debug("%s: %s", self.name, scrub(error))

    def _handle_close(self, app: Any, code: Any = None, msg: Any = None) -> None:
        if app is not self._app:
            return
        with self._lock:
            if not self._close_reason:
                self._close_reason = f"closed by peer ({code})" if code else "closed by peer"

    def _safe(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("%s: callback failed", self.name)

    # --- watchdog --------------------------------------------------------------------------------
    def _watch(self) -> None:
        period = 0.25
        if self.stall_timeout_s:
            period = max(0.02, min(period, self.stall_timeout_s / 5.0))
        while not self._stop.wait(period):
            now = now_ns()
            if self._open.is_set():
                if self.stall_timeout_s and (now - self._last_frame_ns) / 1e9 > self.stall_timeout_s:
                    self.force_close(f"stalled: no frame for {self.stall_timeout_s:g}s")
                elif (now - self._opened_ns) / 1e9 > self.max_session_s:
                    self.force_close("planned reconnect before the 24h cut")
            elif self._app is not None and self._attempt_ns and (now - self._attempt_ns) / 1e9 > (
                self.connect_timeout_s + 1.0
            ):
                self.force_close("connect timeout")


def market_streams(symbols: Sequence[str], depth_interval: str = "100ms") -> list[str]:
    """Stream names for the combined market connection, per symbol: depth diffs, bookTicker, trades."""
    out: list[str] = []
    suffix = f"@depth@{depth_interval}" if depth_interval else "@depth"
    for s in symbols:
        low = s.lower()
        out += [low + suffix, low + "@bookTicker", low + "@trade"]
    return out


class MarketStream:
    """The combined market-data connection for all symbols, delivering raw frames to the sink."""

    def __init__(
        self,
        stream_root: str,
        symbols: Sequence[str],
        sink: EventSink,
        *,
        depth_interval: str = "100ms",
        stall_timeout_s: float = 5.0,
        max_session_s: float = DAY_S - 1800.0,
        backoff_initial_s: float = 0.25,
        backoff_max_s: float = 30.0,
        ping_interval_s: float = 20.0,
        ping_timeout_s: float = 10.0,
        app_factory: Callable[..., Any] = websocket.WebSocketApp,
    ) -> None:
        self.symbols = [s.upper() for s in symbols]
        self.url = f"{stream_root.rstrip('/')}/stream?streams={'/'.join(market_streams(self.symbols, depth_interval))}"
        self._sink = sink
        self.socket = ManagedSocket(
            "market",
            self.url,
            on_open=self._on_open,
            on_frame=self._on_frame,
            on_down=self._on_down,
            stall_timeout_s=stall_timeout_s,
            max_session_s=max_session_s,
            backoff_initial_s=backoff_initial_s,
            backoff_max_s=backoff_max_s,
            ping_interval_s=ping_interval_s,
            ping_timeout_s=ping_timeout_s,
            app_factory=app_factory,
        )

    def start(self) -> None:
        self.socket.start()

    def stop(self) -> None:
        self.socket.stop()

    def _on_open(self, first: bool) -> None:
        self._sink.put(StreamStatus("market", True, "connected" if first else "reconnected", now_ns()))

    def _on_frame(self, raw: bytes, recv_ns: int) -> None:
        if raw.find(b"serverShutdown", 0, 64) >= 0:
            # Planned maintenance: reconnect now, while we choose, rather than when cut.
            self.socket.force_close("serverShutdown")
            return
        self._sink.put(MarketFrame(raw, recv_ns))

    def _on_down(self, reason: str) -> None:
        self._sink.put(StreamStatus("market", False, reason, now_ns()))
