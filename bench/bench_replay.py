"""Replay speed: recorded events per second through the whole engine, as fast as possible.

Three ways to replay the shipped BTCUSDT capture through the same bot (``fullbot.Bot``: the
``mm3`` market maker + risk chain + plugin hooks), each timed from the first event to the moment
the engine has processed the last one:

* ``replay adapter``: ``ReplayAdapter(speed=0)`` feeding the engine thread through its queue, the
  real gateway's worker pool acknowledging orders at once; no matching (nothing ever fills).
* ``venue step``: the paper ``Venue`` stepped one recorded event at a time on this thread; what it
  publishes goes straight to ``Engine.process`` (market frames wrapped in the combined-stream
  envelope, user events decoded by the Binance adapter's decoder); orders go through the real
  ``BinanceAdapter`` whose transport calls the venue in-process (``fullbot.VenueTransport``): full
  matching, fills, account updates, no sockets.
* ``sockets``: the embedded paper exchange (aiohttp, loopback) at speed 0 and the real Binance
  adapter (websocket-client market + user streams, REST orders through python-binance) with the
  engine on its own thread: ``botcore run config/paper.yaml`` with ``speed: 0``, minus journal.

Baseline (same process, same capture): the venue alone with a no-op listener (``bench_venue``), the
floor under ``venue step``. Rates are recorded events (every line of the capture the venue or the
adapter consumed) per wall-clock second.

Run: ``python bench/bench_replay.py [--repeat N] [--events N]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import deque
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import truncated_recording  # noqa: E402
from fullbot import SYMBOL, Bot, SyncGateway, in_process_adapter  # noqa: E402

from botcore.events import MarketFrame, UserEvent  # noqa: E402
from botcore.metrics import now_ns  # noqa: E402

KEY = "BenchReplayKey00000000000000000000000000000000000000000000000001"
SECRET = "BenchReplaySecret000000000000000000000000000000000000000000001"
BALANCES = {"USDT": Decimal(10**6), "BTC": Decimal(20)}


def _paper_config(recordings: list[Path]) -> Any:
    from botcore_exchange_paper.config import AccountSpec, PaperConfig

    return PaperConfig(speed=0, recordings=recordings, accounts=[AccountSpec(KEY, SECRET, dict(BALANCES))])


def _summary(engine: Any, events: int, seconds: float) -> dict[str, float]:
    h = engine.tick_to_order
    return {
        "events": float(events),
        "seconds": seconds,
        "events_per_s": events / seconds if seconds > 0 else 0.0,
        "frames": float(engine.n_frames),
        "orders": float(engine.n_orders),
        "fills": float(engine.n_fills),
        "t2o_p50": h.percentile(50),
        "t2o_p99": h.percentile(99),
    }


def run_replay_adapter(bot: Bot, recordings: list[Path]) -> dict[str, float]:
    """Engine thread + gateway pool + ``ReplayAdapter`` feed thread, as fast as the engine takes it."""
    from botcore.replay_adapter import ReplayAdapter

    adapter = ReplayAdapter(recordings, speed=0.0, user_reports=True)
    inst = adapter.exchange_info([SYMBOL])
    engine = bot.engine(inst, adapter=adapter)
    engine.load_snapshot(adapter.account_snapshot())
    t0 = time.perf_counter()
    engine.start()
    adapter.start(engine, [SYMBOL])
    while True:  # done = every frame fed has been processed (the stop sequence is not timed)
        done = adapter.wait_done(0.002)
        if done and (engine.n_frames >= adapter.frames_sent or not engine.is_running):
            break
    last = time.perf_counter()
    engine.join(60)
    engine.gateway.close()
    return _summary(engine, adapter.frames_sent + 1, last - t0)  # + the snapshot line


class _Inbox:
    """Venue listener: what the venue publishes, as the engine would receive it."""

    def __init__(self) -> None:
        from botcore_exchange_binance import decode

        self.events: deque[Any] = deque()
        self._user_event = decode.user_event

    def on_market(self, stream: str, payload: bytes) -> None:
        self.events.append(MarketFrame(b'{"stream":"%s","data":%s}' % (stream.encode(), payload), now_ns()))

    def on_user(self, api_key: str, event: dict) -> None:
        decoded = self._user_event(event)
        if decoded is not None:
            self.events.append(UserEvent(decoded, now_ns()))


def run_venue_step(bot: Bot, recordings: list[Path]) -> dict[str, float]:
    """One thread: step the venue one recorded event, let the engine process all that follows."""
    from botcore_exchange_paper.venue import Venue

    venue = Venue(_paper_config(recordings))
    account = venue.account_for_key(KEY)
    adapter = in_process_adapter(venue, account)
    inst = adapter.exchange_info([SYMBOL])
    gateway = SyncGateway(adapter)
    engine = bot.engine(inst, gateway=gateway)
    engine.load_snapshot(adapter.account_snapshot())
    inbox = _Inbox()
    venue.add_listener(inbox)
    events, results = inbox.events, gateway.results
    proc, step = engine.process, venue.step
    t0 = time.perf_counter()
    while step(1):
        while events or results:
            while events:
                proc(events.popleft())
            while results:
                proc(results.popleft())
    seconds = time.perf_counter() - t0
    return _summary(engine, venue.events_processed, seconds)


def run_venue_alone(recordings: list[Path]) -> dict[str, float]:
    import bench_venue

    events, seconds = bench_venue.run_plain(True, recordings, time.perf_counter)
    return {"events": float(events), "seconds": seconds, "events_per_s": events / seconds}


def run_sockets(bot: Bot, recordings: list[Path], transport: str | None = None) -> dict[str, float]:
    """Embedded paper exchange at speed 0 + the real Binance adapter (its default order transport
    unless ``transport``) + the engine thread."""
    from botcore_exchange_binance.adapter import BinanceAdapter
    from botcore_exchange_paper.embedded import start_embedded

    options = {"outbox_limit": 10_000_000, "rate_limit_scale": 1000.0}
    paper = start_embedded(_paper_config(recordings), options=options, run_market=False)
    adapter = engine = None
    try:
        options = {"order_transport": transport} if transport else {}
        cfg = SimpleNamespace(exchange=SimpleNamespace(mode="paper", symbols=[SYMBOL], options=options))
        endpoints = paper.endpoints()
        adapter = BinanceAdapter.from_config(cfg, endpoints)
        inst = adapter.exchange_info([SYMBOL])
        engine = bot.engine(inst, adapter=adapter)
        engine.load_snapshot(adapter.account_snapshot())
        engine.start()
        adapter.start(engine, [SYMBOL])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            market = adapter.market
            if (
                market is not None
                and market.socket.is_open
                and adapter.user is not None
                and adapter.user.trusted
            ):
                break
            time.sleep(0.01)
        else:
            raise RuntimeError("streams did not connect within 15 s")
        t0 = time.perf_counter()
        paper.start_market()
        venue = paper.venue
        last_frames, last = -1, t0
        quiet_since = None
        while True:
            time.sleep(0.005)
            frames = engine.n_frames
            now = time.perf_counter()
            if frames != last_frames:
                last_frames, last, quiet_since = frames, now, None
                continue
            if paper.call(lambda: bool(venue.market_done)):
                quiet_since = quiet_since or now
                if now - quiet_since > 0.5:  # the replay ended and the engine is idle
                    break
            if now - t0 > 900:
                raise RuntimeError("replay over sockets did not finish in 15 minutes")
        events = paper.call(lambda: int(venue.events_processed))
        return _summary(engine, events, last - t0)
    finally:
        if engine is not None:
            engine.stop("bench done")
            engine.join(10)
            engine.gateway.close(2.0)
        if adapter is not None:
            adapter.stop()
        paper.close()


def measure(
    repeat: int = 3, events: int | None = None, sockets_repeat: int = 1
) -> dict[str, dict[str, float]]:
    """Medians over ``repeat`` interleaved runs (``sockets_repeat`` for the slow socket row)."""
    bot = Bot()
    samples: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="botcore-bench-replay-") as tmp:
        recordings = truncated_recording(events, Path(tmp))
        for i in range(max(1, repeat)):
            samples.setdefault("venue alone", []).append(run_venue_alone(recordings))
            samples.setdefault("venue step", []).append(run_venue_step(bot, recordings))
            samples.setdefault("replay adapter", []).append(run_replay_adapter(bot, recordings))
            if i < sockets_repeat:
                samples.setdefault("sockets", []).append(run_sockets(bot, recordings))
    return {
        name: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for name, runs in samples.items()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--events", type=int, default=None, help="replay only the first N recorded events")
    ap.add_argument("--sockets-repeat", type=int, default=1)
    a = ap.parse_args()
    res = measure(a.repeat, a.events, a.sockets_repeat)
    print(f"{'replay':<16}{'events':>9}{'seconds':>9}{'events/s':>11}{'orders':>8}{'fills':>7}")
    for name, r in res.items():
        print(
            f"{name:<16}{r['events']:>9.0f}{r['seconds']:>9.2f}{r['events_per_s']:>11,.0f}"
            f"{r.get('orders', 0):>8.0f}{r.get('fills', 0):>7.0f}"
        )


if __name__ == "__main__":
    main()
