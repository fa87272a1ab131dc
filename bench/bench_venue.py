"""Paper venue throughput in step mode over the shipped BTCUSDT capture (99.6k recorded events).

Scenarios, each a fresh ``Venue`` (speed 0, priming not timed) stepped to the end of the capture:

* ``source only``  the market source alone (read, decode, late-print reordering): the floor;
* ``no orders``    the venue with no listener and no orders (book maintenance, sync, fusion);
* ``+ listener``   the same with a no-op listener, so every served diff/bookTicker/trade/aggTrade
                   payload is built and JSON-encoded;
* ``20 resting``   listener + 20 own resting orders kept near the touch (topped up every 500
                   events), so prints, depth changes and tickers run the queue model, A3 checks
                   and the served overlay.

Figures are CPU-time medians (and minima) over ``--repeat`` runs (the machine is shared; wall time is
noisy); events/s = recorded events / CPU seconds; the ratio column (medians) is against ``no orders``.
Run: ``python bench/bench_venue.py [--repeat N]``. ``bench/run.py`` uses ``run_plain`` (wall clock,
``recordings`` cut to its ``--frames``) as the floor of its in-process replay rows.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from botcore_exchange_paper.config import AccountSpec, PaperConfig
from botcore_exchange_paper.market import ReplaySource
from botcore_exchange_paper.venue import Venue

from botcore.replay import shipped_recording


class _Null:
    def on_market(self, stream: str, payload: bytes) -> None:
        pass

    def on_user(self, api_key: str, event: dict) -> None:
        pass


def _venue(listener: bool, recordings: list[Path] | None = None) -> Venue:
    cfg = PaperConfig(
        speed=0,
        recordings=recordings,
        accounts=[AccountSpec("k", "s", {"USDT": Decimal(10**7), "BTC": Decimal(100)})],
    )
    v = Venue(cfg, clock=lambda: 1)
    if listener:
        v.add_listener(_Null())
    return v


def run_source() -> tuple[int, float]:
    src = ReplaySource(shipped_recording())
    t = time.process_time()
    n = 0
    while src.next() is not None:
        n += 1
    return n, time.process_time() - t


def run_plain(
    listener: bool, recordings: list[Path] | None = None, clock: Callable[[], float] = time.process_time
) -> tuple[int, float]:
    """(events, seconds) to step a fresh venue through the capture; ``clock`` picks CPU or wall time."""
    v = _venue(listener, recordings)
    t = clock()
    n = v.step(10**9)
    return n, clock() - t


def run_resting(n_orders: int = 20) -> tuple[int, float]:
    v = _venue(True)
    a = v.account_for_key("k")
    assert a is not None
    rng = random.Random(1)
    tick = Decimal("0.01")
    n = 0
    t = time.process_time()
    while not v.market_done:
        missing = n_orders - len(v.open_order_objects(a))
        if missing > 0:
            top = v.book_ticker("BTCUSDT")
            assert isinstance(top, dict)
            bid, ask = Decimal(top["bidPrice"]), Decimal(top["askPrice"])
            for _ in range(missing):
                side = rng.choice(["BUY", "SELL"])
                px = bid - tick * rng.randint(0, 40) if side == "BUY" else ask + tick * rng.randint(0, 40)
                try:
                    v.place_order(a, {"symbol": "BTCUSDT", "side": side, "type": "LIMIT_MAKER",
                                      "quantity": "0.01", "price": str(px)})
                except Exception:
                    pass
        n += v.step(500)
    return n, time.process_time() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    scenarios: list[tuple[str, Callable[[], tuple[int, float]]]] = [
        ("source only", run_source),
        ("no orders", lambda: run_plain(False)),
        ("+ listener", lambda: run_plain(True)),
        ("20 resting", run_resting),
    ]
    rows = []
    for name, fn in scenarios:
        runs = [fn() for _ in range(args.repeat)]
        events = runs[0][0]
        secs = statistics.median(r[1] for r in runs)
        rows.append((name, events, secs, min(r[1] for r in runs)))
    base = next(s for name, _, s, _ in rows if name == "no orders")
    print(f"{'scenario':<14}{'events':>9}{'cpu s median':>14}{'events/s':>10}{'cpu s min':>11}{'events/s':>10}"
          f"{'vs no orders':>14}")
    for name, events, secs, best in rows:
        print(f"{name:<14}{events:>9}{secs:>14.3f}{events / secs:>10.0f}{best:>11.3f}{events / best:>10.0f}"
              f"{secs / base:>13.2f}x")


if __name__ == "__main__":
    main()
