"""Market sources: capture reading, ordering rules, multi-symbol merge, synthetic market, pacing, looping."""

from __future__ import annotations

import asyncio
import gzip
import time
from decimal import Decimal
from pathlib import Path

import pytest
from botcore_exchange_paper.config import AccountSpec, PaperConfig
from botcore_exchange_paper.market import DEPTH, SNAPSHOT, TRADE, ReplaySource, SyntheticSource, read_capture
from botcore_exchange_paper.testing import (
    Recorder,
    diff,
    make_config,
    snapshot,
    ticker,
    trade,
    write_recording,
)
from botcore_exchange_paper.venue import Venue

from botcore.replay import iter_recording, shipped_recording


def test_read_capture_matches_iter_recording(tmp_path: Path) -> None:
    for path in shipped_recording():
        assert list(read_capture(path, chunk=1 << 16)) == list(iter_recording([path]))
    plain = write_recording(tmp_path / "x.txt", [snapshot([(1, 1)], [(2, 1)])])
    gz = tmp_path / "x.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes().rstrip(b"\n")))  # no final newline
    assert list(read_capture(gz)) == list(read_capture(plain)) == list(iter_recording([plain]))
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(b"123 {}\nnot-a-line\n"))
    with pytest.raises(ValueError, match="bad.gz:2"):
        list(read_capture(bad))


def test_late_prints_are_pulled_before_the_diff_that_contains_them(tmp_path: Path) -> None:
    path = write_recording(
        tmp_path / "r.txt",
        [
            snapshot([(100, 1)], [(101, 1)], 100),
            diff(101, 101, [(100, 2)], E=1000),
            ticker(102, 100, 2, 101, 1),
            trade(1, 100, "0.1", True, T=990),  # inside the diff's window, received after it
            trade(2, 100, "0.1", True, T=1000),  # same time as the diff: trades first
            trade(3, 100, "0.1", True, T=1010),  # after the window: stays after
        ],
        step_ns=20_000_000,
    )
    src = ReplaySource([path], ["BTCUSDT"])
    kinds = []
    while (ev := src.next()) is not None:
        kinds.append((ev.kind, ev.data.get("t")))
    assert kinds == [(SNAPSHOT, None), (TRADE, 1), (TRADE, 2), (DEPTH, None), (1, None), (TRADE, 3)]
    assert src.pulled_forward == 2


def test_prints_beyond_the_window_are_left_in_place(tmp_path: Path) -> None:
    path = write_recording(
        tmp_path / "r.txt",
        [snapshot([(100, 1)], [(101, 1)], 100), diff(101, 101, E=1000), trade(1, 100, "0.1", True, T=990)],
        step_ns=400_000_000,
    )
    src = ReplaySource([path], ["BTCUSDT"])
    order = [e.kind for e in iter(src.next, None)]
    assert order == [SNAPSHOT, DEPTH, TRADE]


def test_several_symbols_merge_by_local_time_and_snapshots_find_their_symbol(tmp_path: Path) -> None:
    btc = write_recording(tmp_path / "btc.txt", [diff(99, 101, [(100, 1)]), snapshot([(100, 1)], [(101, 1)], 100),
                                                 trade(1, 100, "0.1", True)], start_ns=1_000, step_ns=10)
    eth = write_recording(tmp_path / "eth.txt", [diff(9, 11, [(10, 1)], symbol="ETHUSDT"),
                                                 snapshot([(10, 1)], [(11, 1)], 10),
                                                 trade(1, 10, "0.1", False, symbol="ETHUSDT")], start_ns=1_005, step_ns=10)
    src = ReplaySource([btc, eth])
    evs = list(iter(src.next, None))
    assert [e.ns for e in evs] == sorted(e.ns for e in evs)
    assert [(e.kind, e.symbol) for e in evs if e.kind == SNAPSHOT] == [(SNAPSHOT, "BTCUSDT"), (SNAPSHOT, "ETHUSDT")]
    cfg = PaperConfig(recordings=[btc, eth], speed=0,
                      accounts=[AccountSpec("k", "s", {"USDT": Decimal(1000), "ETH": Decimal(1)})])
    v = Venue(cfg)
    assert sorted(v.specs) == ["BTCUSDT", "ETHUSDT"]
    assert v.depth("ETHUSDT", 1)["bids"] == [["10.00000000", "1.00000000"]]
    a = v.account_for_key("k")
    assert a is not None
    resp = v.place_order(a, {"symbol": "ETHUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.5"})
    assert resp["fills"][0]["price"] == "10.00000000"


def test_missing_snapshot_is_an_error(tmp_path: Path) -> None:
    path = write_recording(tmp_path / "r.txt", [diff(1, 2, [(100, 1)])])
    with pytest.raises(ValueError, match="no depth snapshot"):
        Venue(make_config([path]))


def test_synthetic_market_is_seeded_and_plausible() -> None:
    import json

    from botcore_exchange_paper.config import shipped_exchange_info
    from botcore_exchange_paper.filters import SymbolSpec

    with open(shipped_exchange_info(), encoding="utf-8") as fh:
        info = {s["symbol"]: SymbolSpec(s) for s in json.load(fh)["symbols"]}
    specs = {s: info[s] for s in ("BTCUSDT", "ETHBTC", "LTCBTC")}

    def first(seed: int, n: int = 600) -> list[tuple[int, int, str, str]]:
        src = SyntheticSource(specs, seed)
        return [(e.ns, e.kind, e.symbol, repr(e.data)) for e in (src.next() for _ in range(n)) if e]

    assert first(3) == first(3)
    assert first(3) != first(4)
    v = Venue(PaperConfig(synthetic=True, seed=5, symbols=["BTCUSDT", "ETHBTC"], speed=0))
    rec = Recorder()
    v.add_listener(rec)
    v.step(3000)
    tops = rec.streams("@bookTicker")
    assert tops and all(Decimal(t["b"]) < Decimal(t["a"]) for t in tops)
    assert {t["s"] for t in rec.streams("@trade")} == {"BTCUSDT", "ETHBTC"}
    mids = [(Decimal(t["b"]) + Decimal(t["a"])) / 2 for t in tops if t["s"] == "BTCUSDT"]
    assert len(set(mids)) > 5  # it walks
    assert Decimal(55_000) < mids[0] < Decimal(65_000)
    # a resting order at the touch fills eventually
    a = v.accounts[0]
    top = v.book_ticker("BTCUSDT")
    assert isinstance(top, dict)
    v.place_order(a, {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                      "quantity": "0.001", "price": top["bidPrice"]})
    for _ in range(100):
        v.step(100)
        if not v.open_orders(a):
            break
    assert v.open_orders(a) == []


def _small_capture(tmp_path: Path, n: int, step_ns: int) -> Path:
    recs = [snapshot([(100, 1)], [(101, 1)], 100)]
    recs += [diff(100 + i, 100 + i, [(99, i + 1)]) for i in range(1, n)]
    return write_recording(tmp_path / "pace.txt", recs, step_ns=step_ns)


@pytest.mark.parametrize(("speed", "low", "high"), [(1.0, 0.18, 0.6), (10.0, 0.0, 0.12)])
def test_run_market_paces_by_local_time(tmp_path: Path, speed: float, low: float, high: float) -> None:
    path = _small_capture(tmp_path, 21, 10_000_000)  # 200 ms of recorded time
    v = Venue(make_config([path], speed=speed))

    async def main() -> float:
        t0 = time.perf_counter()
        await v.run_market()
        return time.perf_counter() - t0

    took = asyncio.run(main())
    assert low <= took <= high
    assert v.market_done and v.events_processed == 21


def test_as_fast_as_possible_still_yields_to_the_loop() -> None:
    v = Venue(PaperConfig(speed=0))
    ticks = 0

    async def ticker_task() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    async def main() -> None:
        t = asyncio.create_task(ticker_task())
        run = asyncio.create_task(v.run_market())
        while v.events_processed < 20_000:
            await asyncio.sleep(0.01)
        run.cancel()
        t.cancel()
        await asyncio.gather(run, t, return_exceptions=True)

    asyncio.run(main())
    assert ticks > 20


def test_loop_restarts_and_public_trade_ids_keep_increasing(tmp_path: Path) -> None:
    path = write_recording(tmp_path / "r.txt", [snapshot([(100, 1)], [(101, 1)], 100), trade(7, 100, "0.1", True),
                                                 trade(8, 100, "0.1", True)])
    v = Venue(make_config([path], loop=True))
    rec = Recorder()
    v.add_listener(rec)
    assert v.step(10) == 10
    assert not v.market_done
    ids = [t["t"] for t in rec.streams("@trade")]
    assert len(ids) >= 6 and ids == sorted(ids) and len(set(ids)) == len(ids)
    v2 = Venue(make_config([path]))
    assert v2.step(10) == 2 and v2.market_done
