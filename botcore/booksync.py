"""Binance depth-sync rules around one core ``OrderBook`` (BINANCE_PROTOCOL.md section 8).

The core book knows the per-update sequence rules (STALE / GAP / straddle); this class owns the
*procedure*: buffer diffs until a REST snapshot arrives, reject a snapshot older than the buffer,
replay the buffer over the snapshot, and start over (clear, buffer, re-snapshot) on a gap, a
malformed diff or a reconnect. It tells its owner when the book becomes (un)trustworthy and
whether a frame changed the fused top of book, which is what drives quoting.

Runs on the engine thread only. Snapshot requests go out through ``request_snapshot(symbol)``
(the engine hands them to the gateway pool, with its own rate limit) and come back through
``on_snapshot``; at most one request is in flight per book.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from botcore.core._book_py import APPLIED, GAP, LIVE, NOT_SYNCED, STALE

log = logging.getLogger(__name__)

_U_KEY = b'"U":'
_LAST_ID_KEY = b'"lastUpdateId":'


def _int_after(raw: bytes, key: bytes) -> int:
    """The integer following ``key`` in raw JSON (cheap scan, no full decode)."""
    i = raw.find(key)
    if i < 0:
        raise ValueError(f"no {key.decode()} in frame")
    i += len(key)
    n = len(raw)
    while i < n and raw[i] == 0x20:
        i += 1
    j = i
    while j < n and 0x30 <= raw[j] <= 0x39:
        j += 1
    if j == i:
        raise ValueError(f"{key.decode()} is not an integer")
    return int(raw[i:j])


class BookSync:
    """Keeps ``book`` in sync; ``trusted`` is True only while the book is LIVE.

    ``on_trust(symbol, trusted, reason)`` is called on every change of ``trusted``.
    """

    def __init__(
        self,
        symbol: str,
        book: Any,
        request_snapshot: Callable[[str], None],
        on_trust: Callable[[str, bool, str], None] | None = None,
        max_buffer: int = 2000,
    ) -> None:
        self.symbol = symbol
        self.book = book
        self._request_snapshot = request_snapshot
        self._on_trust = on_trust
        self._buffer: deque[bytes] = deque(maxlen=max_buffer)
        self._buffering = True  # no snapshot applied since the last (re)start
        self._snapshot_pending = False
        self.trusted = False
        self.last_recv_ns = 0  # the engine stamps every routed frame (market_age_ns)
        self._last_top: tuple[int, int, int, int] = (0, 0, 0, 0)
        # counters (read by the engine's status)
        self.gaps = 0
        self.resyncs = 0
        self.snapshots_requested = 0
        self.snapshots_applied = 0
        self.snapshots_rejected = 0
        self.stale = 0
        self.buffer_overflow = 0
        self.malformed = 0

    # --- frames ----------------------------------------------------------------------------------
    def on_depth(self, raw: bytes) -> bool:
        """Handle a depthUpdate frame; True if the fused top of a trusted book changed."""
        if self._buffering:
            self._buffer_frame(raw)
            return False
        try:
            code = self.book.apply_json(raw)
        except ValueError as exc:
            self.malformed += 1
            log.warning("%s: malformed depth frame (%s); resyncing", self.symbol, exc)
            self._restart("malformed depth frame", None)
            return False
        if code == APPLIED:
            if self.trusted:
                return self._top_changed()
            if self.book.state == LIVE:
                # Record the top first: the trust callback resumes quoting from it.
                self._top_changed()
                self._set_trusted(True, "resynced")
            return False
        if code == STALE:
            self.stale += 1
            return False
        if code == GAP:
            self.gaps += 1
            log.warning(
                "%s: depth sequence gap at last_update_id=%s; resyncing",
                self.symbol,
                self.book.last_update_id,
            )
            self._restart("sequence gap", raw)
            return False
        if code == NOT_SYNCED:  # the book was cleared under us
            self._restart("book not synced", raw)
        return False

    def on_ticker(self, raw: bytes) -> bool:
        """Handle a bookTicker frame; True if the fused top of a trusted book changed."""
        try:
            code = self.book.apply_json(raw)
        except ValueError:
            self.malformed += 1
            return False
        if code == APPLIED and self.trusted:
            return self._top_changed()
        return False

    # --- snapshots ---------------------------------------------------------------------------------
    def on_snapshot(self, raw: bytes) -> bool:
        """Handle a REST depth answer (``b""`` = the request failed); True if now trusted."""
        self._snapshot_pending = False
        if not self._buffering:
            return False  # an answer to a request overtaken by events; the book is synced
        if not raw:
            self._request()
            return False
        try:
            last_id = _int_after(raw, _LAST_ID_KEY)
            if self._buffer:
                first_u = _int_after(self._buffer[0], _U_KEY)
                # Binance: "if lastUpdateId < U of the first buffered event, fetch again". A
                # snapshot at exactly U-1 still connects (U <= lastUpdateId+1 <= u), so accept it.
                if last_id + 1 < first_u:
                    self.snapshots_rejected += 1
                    self._request()
                    return False
            self.book.apply_snapshot_json(raw)
        except ValueError as exc:
            self.snapshots_rejected += 1
            log.warning("%s: unusable depth snapshot (%s); fetching again", self.symbol, exc)
            self._request()
            return False
        self.snapshots_applied += 1
        self._buffering = False
        buffer = self._buffer
        while buffer:
            frame = buffer.popleft()
            try:
                code = self.book.apply_json(frame)
            except ValueError:
                self.malformed += 1
                self._restart("malformed depth frame", None)
                return False
            if code == STALE:
                self.stale += 1
            elif code == GAP:
                self.gaps += 1
                self._restart("buffer does not connect to snapshot", frame, keep_buffer=True)
                return False
        if self.book.state == LIVE:
            self._top_changed()
            self._set_trusted(True, "resynced")
        # else SYNCING: the snapshot is newer than every buffered diff; the next live diff must
        # straddle it, and on_depth turns the book trusted when it does.
        return self.trusted

    # --- control -------------------------------------------------------------------------------------
    def reset(self, reason: str) -> None:
        """The market stream dropped or reconnected: forget the book; resync from new frames."""
        self._restart(reason, None, request=False)

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    @property
    def snapshot_pending(self) -> bool:
        return self._snapshot_pending

    def top(self) -> tuple[int, int, int, int]:
        return self._last_top

    # --- internals ---------------------------------------------------------------------------------
    def _buffer_frame(self, raw: bytes) -> None:
        if len(self._buffer) == self._buffer.maxlen:
            self.buffer_overflow += 1  # the oldest frame falls out; the snapshot must be newer anyway
        self._buffer.append(raw)
        if not self._snapshot_pending:
            self._request()

    def _request(self) -> None:
        self._snapshot_pending = True
        self.snapshots_requested += 1
        self._request_snapshot(self.symbol)

    def _restart(
        self, reason: str, first: bytes | None, request: bool = True, keep_buffer: bool = False
    ) -> None:
        self.resyncs += 1
        self.book.clear()
        if not keep_buffer:
            self._buffer.clear()
        if first is not None:
            if keep_buffer:
                self._buffer.appendleft(first)
            else:
                self._buffer.append(first)
        self._buffering = True
        self._last_top = (0, 0, 0, 0)
        self._set_trusted(False, reason)
        if request and self._buffer and not self._snapshot_pending:
            self._request()

    def _set_trusted(self, trusted: bool, reason: str) -> None:
        if trusted is self.trusted:
            return
        self.trusted = trusted
        if self._on_trust is not None:
            self._on_trust(self.symbol, trusted, reason)

    def _top_changed(self) -> bool:
        top = self.book.top()
        if top != self._last_top:
            self._last_top = top
            return True
        return False
