"""BookSync: Binance's snapshot + buffered-diff procedure around the core OrderBook."""

from __future__ import annotations

import json
from typing import Any

import pytest

from botcore.booksync import BookSync
from botcore.core import OrderBook as ActiveBook
from botcore.core._book_py import LIVE
from botcore.core._book_py import OrderBook as PyBook
from botcore.replay import is_snapshot, iter_recording, shipped_recording

BOOKS = [PyBook] if ActiveBook is PyBook else [PyBook, ActiveBook]


def depth(first: int, last: int, bids: list[tuple[str, str]] = (), asks: list[tuple[str, str]] = ()) -> bytes:  # type: ignore[assignment]
    data = {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": first, "u": last, "b": bids, "a": asks}
    return json.dumps({"stream": "btcusdt@depth@100ms", "data": data}).encode()


def ticker(u: int, bid: str, ask: str, bq: str = "1", aq: str = "1") -> bytes:
    data = {"u": u, "s": "BTCUSDT", "b": bid, "B": bq, "a": ask, "A": aq}
    return json.dumps({"stream": "btcusdt@bookTicker", "data": data}).encode()


def snapshot(last_id: int, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> bytes:
    return json.dumps({"lastUpdateId": last_id, "bids": bids, "asks": asks}).encode()


SNAP = snapshot(100, [("100.00", "1"), ("99.00", "2")], [("101.00", "1"), ("102.00", "2")])


class Harness:
    def __init__(self, book_cls: Any, max_buffer: int = 2000) -> None:
        self.requests: list[str] = []
        self.trust: list[tuple[bool, str]] = []
        self.book = book_cls("BTCUSDT", 2, 8)
        self.sync = BookSync(
            "BTCUSDT",
            self.book,
            self.requests.append,
            lambda sym, ok, why: self.trust.append((ok, why)),
            max_buffer=max_buffer,
        )

    def live(self) -> None:
        """Buffer a straddling diff, apply SNAP: the book is LIVE at update 105."""
        self.sync.on_depth(depth(95, 105, [("100.00", "3")]))
        assert self.sync.on_snapshot(SNAP)


@pytest.fixture(params=BOOKS, ids=lambda c: c.__module__.rsplit(".", 1)[-1])
def h(request: pytest.FixtureRequest) -> Harness:
    return Harness(request.param)


def test_buffers_until_snapshot_and_requests_it_once(h: Harness) -> None:
    assert h.sync.on_depth(depth(90, 95)) is False
    assert h.sync.on_depth(depth(96, 99)) is False
    assert h.sync.on_ticker(ticker(99, "100.00", "101.00")) is False  # book empty: not a top
    assert h.requests == ["BTCUSDT"]  # debounced: one request in flight
    assert h.sync.buffered == 2 and not h.sync.trusted


def test_snapshot_applies_buffer_drops_stale_and_goes_live(h: Harness) -> None:
    h.sync.on_depth(depth(90, 98, [("100.00", "9")]))  # entirely before the snapshot: stale
    h.sync.on_depth(depth(99, 103, [("100.00", "5")]))  # straddles 101
    h.sync.on_depth(depth(104, 106, [], [("101.00", "0")]))
    assert h.sync.on_snapshot(SNAP) is True
    assert h.sync.trusted and h.book.state == LIVE and h.book.last_update_id == 106
    assert h.book.bids(1) == [(10000, 500000000)] and h.book.asks(1) == [(10200, 200000000)]
    assert h.trust == [(True, "resynced")]
    assert h.sync.stale == 1 and h.sync.buffered == 0
    assert h.sync.top() == (10000, 500000000, 10200, 200000000)


def test_snapshot_older_than_buffer_is_refetched_not_applied(h: Harness) -> None:
    h.sync.on_depth(depth(150, 160))
    assert h.sync.on_snapshot(SNAP) is False  # lastUpdateId 100 < first U 150 - 1
    assert h.requests == ["BTCUSDT", "BTCUSDT"] and h.sync.snapshots_rejected == 1
    assert h.book.state == 0 and not h.sync.trusted
    assert h.sync.on_snapshot(snapshot(155, [("100.00", "1")], [("101.00", "1")]))
    assert h.book.last_update_id == 160


def test_snapshot_exactly_one_before_first_buffered_event_connects(h: Harness) -> None:
    h.sync.on_depth(depth(101, 104))
    assert h.sync.on_snapshot(SNAP)  # lastUpdateId 100 = U - 1: contiguous
    assert h.book.last_update_id == 104


def test_snapshot_newer_than_buffer_waits_for_straddling_diff(h: Harness) -> None:
    h.sync.on_depth(depth(90, 95))
    assert h.sync.on_snapshot(SNAP) is False  # all buffered diffs stale; book SYNCING
    assert not h.sync.trusted and h.trust == []
    assert h.sync.on_depth(depth(96, 100)) is False  # still stale
    assert h.sync.on_depth(depth(100, 103, [("100.50", "1")])) is False  # straddles: LIVE (callback resumes)
    assert h.sync.trusted and h.trust == [(True, "resynced")]
    assert h.sync.top()[0] == 10050


def test_gap_clears_marks_untrusted_and_resyncs(h: Harness) -> None:
    h.live()
    assert h.sync.on_depth(depth(106, 107, [("100.20", "1")])) is True
    assert h.sync.on_depth(depth(110, 112)) is False  # 108..109 missing
    assert not h.sync.trusted and h.trust[-1] == (False, "sequence gap")
    assert h.book.state == 0 and h.sync.gaps == 1 and h.sync.top() == (0, 0, 0, 0)
    assert h.requests == ["BTCUSDT", "BTCUSDT"]
    h.sync.on_depth(depth(113, 115))  # buffered; no second request while one is in flight
    assert h.requests == ["BTCUSDT", "BTCUSDT"] and h.sync.buffered == 2
    assert h.sync.on_snapshot(snapshot(111, [("100.00", "1")], [("101.00", "1")]))
    assert h.trust[-1] == (True, "resynced") and h.book.last_update_id == 115


def test_buffer_that_does_not_connect_to_the_snapshot_restarts(h: Harness) -> None:
    h.sync.on_depth(depth(99, 103))
    h.sync.on_depth(depth(110, 111))  # a gap inside the buffer
    assert h.sync.on_snapshot(SNAP) is False
    assert h.sync.gaps == 1 and h.sync.buffered == 1 and len(h.requests) == 2
    assert h.sync.on_snapshot(snapshot(109, [("1.00", "1")], [("2.00", "1")]))
    assert h.book.last_update_id == 111


def test_failed_or_malformed_snapshot_requests_again(h: Harness) -> None:
    h.sync.on_depth(depth(99, 103))
    assert h.sync.on_snapshot(b"") is False
    assert h.sync.on_snapshot(b'{"lastUpdateId":100,"bids":"nope"}') is False
    assert h.sync.on_snapshot(b"<html>502</html>") is False
    assert len(h.requests) == 4 and h.book.state == 0
    assert h.sync.on_snapshot(SNAP)


def test_malformed_depth_frame_forces_resync(h: Harness) -> None:
    h.live()
    bad = b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","s":"BTCUSDT","U":106,"u":"x"}}'
    assert h.sync.on_depth(bad) is False
    assert not h.sync.trusted and h.sync.malformed == 1 and h.requests == ["BTCUSDT"]
    h.sync.on_depth(depth(106, 108))  # the next frame starts a new sync
    assert h.requests == ["BTCUSDT", "BTCUSDT"]


def test_malformed_ticker_is_ignored(h: Harness) -> None:
    h.live()
    assert h.sync.on_ticker(b'{"stream":"btcusdt@bookTicker","data":{"u":200,"b":"1e5"}}') is False
    assert h.sync.trusted and h.sync.malformed == 1


def test_top_changes_only_when_the_fused_top_changes(h: Harness) -> None:
    h.live()
    assert h.sync.on_ticker(ticker(106, "100.00", "101.00", "3", "1")) is False  # same as the ladder top
    assert h.sync.on_ticker(ticker(107, "100.00", "101.00", "4", "1")) is True  # qty changed
    assert h.sync.on_ticker(ticker(107, "100.50", "101.00")) is False  # stale id
    assert h.sync.on_depth(depth(106, 106, [("50.00", "1")])) is False  # deep level only
    assert h.sync.on_depth(depth(107, 108, [("100.10", "1")])) is True  # new best bid


def test_reset_forgets_the_book_and_waits_for_frames(h: Harness) -> None:
    h.live()
    h.sync.reset("reconnecting")
    assert not h.sync.trusted and h.trust[-1] == (False, "reconnecting") and h.book.state == 0
    assert h.requests == ["BTCUSDT"]  # no request until the reconnected stream delivers
    h.sync.on_depth(depth(500, 501))
    assert h.requests == ["BTCUSDT", "BTCUSDT"]


def test_answer_to_an_overtaken_request_is_ignored(h: Harness) -> None:
    h.live()
    assert h.sync.on_snapshot(snapshot(1, [], [])) is False
    assert h.sync.trusted and h.book.last_update_id == 105


def test_buffer_is_bounded() -> None:
    h = Harness(PyBook, max_buffer=3)
    for i in range(10):
        h.sync.on_depth(depth(100 + i, 100 + i))
    assert h.sync.buffered == 3 and h.sync.buffer_overflow == 7
    assert h.sync.on_snapshot(snapshot(106, [("1.00", "1")], [("2.00", "1")]))
    assert h.book.last_update_id == 109


@pytest.mark.parametrize("book_cls", BOOKS, ids=lambda c: c.__module__.rsplit(".", 1)[-1])
def test_real_recording_syncs_and_matches_a_direct_replay(book_cls: Any) -> None:
    """The shipped capture: snapshot fetched after subscribing, diffs buffered before it."""
    h = Harness(book_cls)
    direct = book_cls("BTCUSDT", 2, 8)
    pending: list[bytes] = []
    changes = 0
    for n, (_, raw) in enumerate(iter_recording(shipped_recording(["btcusdt_20240808.gz"]))):
        if is_snapshot(raw):
            h.sync.on_snapshot(raw)
            direct.apply_snapshot_json(raw)
            for p in pending:
                direct.apply_json(p)
            continue
        if b"@depth" in raw[:40]:
            changes += h.sync.on_depth(raw)
            if direct.state == 0:
                pending.append(raw)
            else:
                direct.apply_json(raw)
        elif b"@bookTicker" in raw[:40]:
            changes += h.sync.on_ticker(raw)
            direct.apply_json(raw)
        if n > 20_000:
            break
    assert h.sync.trusted and h.sync.gaps == 0 and h.requests == ["BTCUSDT"]
    assert h.book.top() == direct.top() and h.book.depth(20) == direct.depth(20)
    assert changes > 1000
