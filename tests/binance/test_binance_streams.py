"""Market stream: raw frames, trust status on (re)connect, watchdog, planned reconnect, pongs."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from binance_fakes import Sink, WsServer
from botcore_exchange_binance.streams import ManagedSocket, MarketStream

from botcore.events import MarketFrame, StreamStatus


@pytest.fixture
def server() -> Iterator[WsServer]:
    s = WsServer()
    yield s
    s.close()


def _stream(server: WsServer, sink: Sink, **kw: Any) -> MarketStream:
    opts: dict[str, Any] = dict(stall_timeout_s=5.0, backoff_initial_s=0.02, backoff_max_s=0.1)
    opts.update(kw)
    return MarketStream(server.url + "/", ["BTCUSDT", "ethusdt"], sink, **opts)


def _trusted(stream: str, reason: str, n: int = 1):  # noqa: ANN202
    return lambda ev: sum(1 for e in ev if isinstance(e, StreamStatus) and e.stream == stream
                          and e.trusted and e.reason == reason) >= n


def test_combined_url_and_raw_frames(server: WsServer) -> None:
    sink = Sink()
    ms = _stream(server, sink)
    ms.start()
    try:
        sink.wait_for(_trusted("market", "connected"))
        assert server.paths == [
            "/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker/btcusdt@trade"
            "/ethusdt@depth@100ms/ethusdt@bookTicker/ethusdt@trade"
        ]
        raw = '{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"1.0","B":"2","a":"1.1","A":"3"}}'
        server.push(raw)
        server.push('{"stream":"btcusdt@trade","data":{"e":"trade","p":"0.00006"}}')
        frames = sink.wait_for(lambda ev: len([e for e in ev if isinstance(e, MarketFrame)]) == 2 and
                               [e for e in ev if isinstance(e, MarketFrame)])
        assert frames[0].raw == raw.encode()  # untouched bytes, not decoded
        assert isinstance(frames[0].raw, bytes) and frames[0].recv_ns <= frames[1].recv_ns
        assert frames[0].recv_ns <= time.monotonic_ns()
        # the status came before any frame
        first_frame = next(i for i, e in enumerate(sink.events) if isinstance(e, MarketFrame))
        assert isinstance(sink.events[0], StreamStatus) and first_frame > 0
    finally:
        ms.stop()


def test_disconnect_untrusts_then_reconnects(server: WsServer) -> None:
    sink = Sink()
    ms = _stream(server, sink)
    ms.start()
    try:
        sink.wait_for(_trusted("market", "connected"))
        server.drop()
        sink.wait_for(_trusted("market", "reconnected"))
        st = sink.statuses("market")
        down = [s for s in st if not s.trusted]
        assert len(down) == 1 and down[0].reason
        assert st.index(down[0]) < st.index(next(s for s in st if s.reason == "reconnected"))
        server.push('{"stream":"x","data":{}}')
        sink.wait_for(lambda ev: any(isinstance(e, MarketFrame) for e in ev))
        assert ms.socket.connects == 2 and ms.socket.disconnects == 1
    finally:
        ms.stop()


def test_watchdog_reconnects_a_silent_stream(server: WsServer) -> None:
    sink = Sink()
    ms = _stream(server, sink, stall_timeout_s=0.3)
    ms.start()
    try:
        sink.wait_for(_trusted("market", "connected"))
        # The socket stays open but nothing arrives: a silent stall.
        sink.wait_for(_trusted("market", "reconnected"), timeout=5)
        down = [s for s in sink.statuses("market") if not s.trusted]
        assert down and down[0].reason.startswith("stalled")
        assert len(server.paths) >= 2
    finally:
        ms.stop()


def test_frames_keep_the_watchdog_quiet(server: WsServer) -> None:
    sink = Sink()
    ms = _stream(server, sink, stall_timeout_s=0.4)
    ms.start()
    try:
        sink.wait_for(_trusted("market", "connected"))
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            server.push('{"stream":"btcusdt@bookTicker","data":{}}')
            time.sleep(0.05)
        assert not [s for s in sink.statuses("market") if not s.trusted]
    finally:
        ms.stop()


def test_planned_reconnect_before_the_session_limit(server: WsServer) -> None:
    sink = Sink()
    ms = _stream(server, sink, max_session_s=0.3, stall_timeout_s=None)
    ms.start()
    try:
        sink.wait_for(_trusted("market", "reconnected"), timeout=5)
        down = [s for s in sink.statuses("market") if not s.trusted]
        assert down[0].reason.startswith("planned reconnect")
    finally:
        ms.stop()


def test_server_shutdown_event_triggers_reconnect_and_is_not_forwarded(server: WsServer) -> None:
    sink = Sink()
    ms = _stream(server, sink)
    ms.start()
    try:
        sink.wait_for(_trusted("market", "connected"))
        server.push('{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1}}')
        sink.wait_for(_trusted("market", "reconnected"))
        assert not sink.frames()
        assert [s.reason for s in sink.statuses("market") if not s.trusted] == ["serverShutdown"]
    finally:
        ms.stop()


def test_server_pings_are_answered_with_pongs() -> None:
    server = WsServer(autoping=False)
    sink = Sink()
    ms = _stream(server, sink)
    ms.start()
    try:
        sink.wait_for(_trusted("market", "connected"))
        server.ping(b"are-you-there")
        assert server.pongs.get(timeout=3) == b"are-you-there"
    finally:
        ms.stop()
        server.close()


def test_client_pings_detect_a_dead_peer() -> None:
    """A peer that stops answering pings is dropped even if frames are not expected."""
    server = WsServer(autoping=False)  # never answers our pings
    sink = Sink()
    ms = _stream(server, sink, stall_timeout_s=None, ping_interval_s=0.3, ping_timeout_s=0.2)
    ms.start()
    try:
        sink.wait_for(lambda ev: any(isinstance(e, StreamStatus) and not e.trusted for e in ev), timeout=5)
    finally:
        ms.stop()
        server.close()


class _FailingApp:
    """A WebSocketApp stand-in whose connection attempts fail at once."""

    calls = 0

    def __init__(self, url: str, **callbacks: Any) -> None:
        type(self).calls += 1
        self.keep_running = True
        self.sock = None

    def run_forever(self, **kw: Any) -> bool:
        return True


def test_backoff_is_jittered_exponential_and_capped() -> None:
    events: list[str] = []
    sock = ManagedSocket("t", "ws://unused", on_open=lambda first: None, on_frame=lambda r, t: None,
                         on_down=events.append, backoff_initial_s=0.01, backoff_max_s=0.04,
                         app_factory=_FailingApp, rng=random.Random(7))
    sock.start()
    try:
        deadline = time.monotonic() + 5
        while len(sock.delays) < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        sock.stop()
    d = list(sock.delays)[:6]
    caps = [0.01, 0.02, 0.04, 0.04, 0.04, 0.04]
    assert all(c / 2 <= x <= c for x, c in zip(d, caps, strict=True)), d
    assert len(set(d)) == len(d)  # jittered, not a fixed schedule
    assert events == []  # never opened: nothing was trusted, so no "down" event


def test_stop_is_idempotent_and_quiet(server: WsServer) -> None:
    sink = Sink()
    ms = _stream(server, sink)
    ms.start()
    sink.wait_for(_trusted("market", "connected"))
    ms.stop()
    ms.stop()
    time.sleep(0.1)
    assert not [s for s in sink.statuses() if not s.trusted]  # stopping is not a fault
    assert not any(t.name.startswith("ws-market") and t.is_alive() for t in threading.enumerate())
