"""Two clocks: a local monotonic one for latency stamps, and the venue's for signed timestamps.

``now_ns`` (``time.monotonic_ns``, CLOCK_MONOTONIC: the engine's ``botcore.metrics.now_ns``) stamps
every ``MarketFrame.recv_ns``, ``UserEvent.recv_ns``, ``StreamStatus.time_ns`` and
``OrderOutcome.sent_ns/done_ns`` the adapter produces, so the engine can subtract them from its own
readings. (On Linux ``perf_counter_ns`` reads the same clock; elsewhere it does not, so we use the
engine's.)

``ServerClock`` keeps the offset between local wall time and Binance server time; signed
requests carry ``timestamp = local wall ms + offset`` so a drifting local clock does not earn
``-1021`` rejections. It is resynchronised periodically and right after any ``-1021``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

now_ns: Callable[[], int] = time.monotonic_ns
"""The adapter's one monotonic clock (nanoseconds); same as the engine's ``botcore.metrics.now_ns``."""


class ServerClock:
    """Offset of the venue's clock from ours, measured NTP-style from ``GET /api/v3/time``."""

    def __init__(self, wall_ms: Callable[[], float] = lambda: time.time() * 1000.0) -> None:
        self._wall_ms = wall_ms
        self._lock = threading.Lock()
        self._offset_ms = 0
        self._rtt_ms = 0.0
        self._synced_ns = 0  # now_ns() of the last successful sync; 0 = never

    @property
    def offset_ms(self) -> int:
        return self._offset_ms

    @property
    def rtt_ms(self) -> float:
        return self._rtt_ms

    @property
    def synced(self) -> bool:
        return self._synced_ns != 0

    def age_s(self) -> float:
        """Seconds since the last sync (infinity when never synced)."""
        return (now_ns() - self._synced_ns) / 1e9 if self._synced_ns else float("inf")

    def now_ms(self) -> int:
        """Best estimate of the venue's current time in milliseconds."""
        return int(self._wall_ms() + self._offset_ms)

    def sync(self, fetch_server_ms: Callable[[], int]) -> int:
        """Measure the offset once (server time minus the local midpoint of the round trip)."""
        t0 = self._wall_ms()
        server_ms = int(fetch_server_ms())
        t1 = self._wall_ms()
        offset = round(server_ms - (t0 + t1) / 2.0)
        with self._lock:
            self._offset_ms = offset
            self._rtt_ms = t1 - t0
            self._synced_ns = now_ns()
        return offset

    def set_offset(self, offset_ms: int) -> None:
        """Force an offset (tests, or a value measured elsewhere)."""
        with self._lock:
            self._offset_ms = int(offset_ms)
            self._synced_ns = now_ns()
