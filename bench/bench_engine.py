"""Engine hot path: tick-to-order latency and per-frame cost over the shipped BTCUSDT recording.

Scenarios (each repeated ``--reps`` times; the table shows medians over repetitions):

* ``sync``: the engine driven on this thread (``Engine.process``) frame by frame, with a null
  gateway; after every frame the bench plays an instant venue (acks new orders, confirms
  cancels) so the strategy keeps requoting. Measures the engine alone: route, book update,
  strategy, diff, risk, tracking, hand-off.
* ``sync+gc.freeze``: the same after ``gc.freeze()`` with a larger gen-0 threshold (what a
  latency-minded deployment would do at start-up).
* ``threaded``: the real wiring: engine thread, gateway pool, replay adapter feeding frames
  through the queue in lock-step (``max_backlog=1``), so the queue hop and GIL hand-offs count.

Each runs once with the compiled core and once with the pure-Python twin (a child process with
``BOTCORE_NO_EXTENSIONS=1``); the ratio column is pure / compiled.
Targets (DESIGN): tick-to-order p50 < 25 us, p99 < 100 us.

Run: ``python bench/bench_engine.py [--reps 5] [--frames 60000]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from typing import Any

from botcore.core import USING_EXTENSIONS
from botcore.engine import Engine, EngineConfig
from botcore.events import DepthSnapshot, GatewayResult, MarketFrame
from botcore.metrics import now_ns
from botcore.model import BookTop, Instrument, OrderOutcome, OrderStatus, Quote, Side
from botcore.replay import is_snapshot, iter_recording, shipped_recording
from botcore.replay_adapter import ReplayAdapter

SYM = "BTCUSDT"
S = OrderStatus


class Touch:
    """Quotes one bid and one ask at the touch; instrument conversions precomputed."""

    name = "touch"
    symbols = (SYM,)
    max_live_orders = 4

    def __init__(self, inst: Instrument) -> None:
        self.scale = Decimal(1).scaleb(-inst.price_precision)
        self.qty = Decimal("0.001")

    def on_top(self, ctx: Any, top: BookTop) -> list[Quote]:
        return [
            Quote(Side.BUY, top.bid_price * self.scale, self.qty),
            Quote(Side.SELL, top.ask_price * self.scale, self.qty),
        ]

    def on_fill(self, ctx: Any, fill: Any) -> None:
        pass

    def on_order_update(self, ctx: Any, report: Any) -> None:
        pass


class NullGateway:
    def __init__(self) -> None:
        self.sent = 0

    def submit(self, order: Any) -> None:
        self.sent += 1

    def cancel(self, request: Any) -> None:
        pass

    def query(self, symbol: str, cid: str) -> None:
        pass

    def fetch_depth(self, symbol: str, limit: int = 1000) -> None:
        pass

    def close(self, timeout: float = 5.0) -> bool:
        return True


def load(frames: int) -> tuple[list[bytes], bytes, int]:
    out: list[bytes] = []
    snap = b""
    snap_at = 0
    for _, raw in iter_recording(shipped_recording()):
        if is_snapshot(raw):
            snap, snap_at = raw, len(out)
        else:
            out.append(raw)
        if len(out) >= frames:
            break
    return out, snap, snap_at


def run_sync(frames: list[bytes], snap: bytes, snap_at: int, freeze: bool) -> dict[str, float]:
    inst = ReplayAdapter().exchange_info([SYM])
    gw = NullGateway()
    eng = Engine(inst, [Touch(inst[SYM])], gateway=gw, config=EngineConfig())
    proc = eng.process
    tracker = eng.tracker
    if freeze:
        gc.collect()
        gc.freeze()
        old = gc.get_threshold()
        gc.set_threshold(50_000, 50, 100)
    t0 = time.perf_counter()
    try:
        for i, raw in enumerate(frames):
            proc(MarketFrame(raw, now_ns()))
            if i == snap_at:
                proc(DepthSnapshot(SYM, snap, 0))
            if tracker.live_count():
                for o in tracker.live():  # the instant venue
                    if o.status is S.PENDING_NEW:
                        proc(GatewayResult(OrderOutcome("new", SYM, o.client_order_id, S.NEW)))
                    elif o.status is S.PENDING_CANCEL:
                        proc(GatewayResult(OrderOutcome("cancel", SYM, o.client_order_id, S.CANCELED)))
    finally:
        elapsed = time.perf_counter() - t0
        if freeze:
            gc.unfreeze()
            gc.set_threshold(*old)
    h = eng.tick_to_order
    return {
        "p50": h.percentile(50),
        "p99": h.percentile(99),
        "orders": float(h.count),
        "us_per_frame": elapsed / len(frames) * 1e6,
    }


def run_threaded(frames: int) -> dict[str, float]:
    adapter = ReplayAdapter(max_frames=frames, max_backlog=1, user_reports=True)
    inst = adapter.exchange_info([SYM])
    eng = Engine(inst, [Touch(inst[SYM])], adapter=adapter, config=EngineConfig(snapshot_min_interval=0.0))
    t0 = time.perf_counter()
    eng.start()
    adapter.start(eng, [SYM])
    eng.join(300)
    elapsed = time.perf_counter() - t0
    eng.gateway.close()
    h = eng.tick_to_order
    return {
        "p50": h.percentile(50),
        "p99": h.percentile(99),
        "orders": float(h.count),
        "us_per_frame": elapsed / max(1, adapter.frames_sent) * 1e6,
    }


def measure(reps: int, n_frames: int) -> dict[str, dict[str, float]]:
    frames, snap, snap_at = load(n_frames)
    results: dict[str, list[dict[str, float]]] = {"sync": [], "sync+gc.freeze": [], "threaded": []}
    for _ in range(reps):
        results["sync"].append(run_sync(frames, snap, snap_at, freeze=False))
        results["sync+gc.freeze"].append(run_sync(frames, snap, snap_at, freeze=True))
        results["threaded"].append(run_threaded(n_frames))
    return {
        name: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for name, runs in results.items()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--frames", type=int, default=60_000)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(measure(a.reps, a.frames)))
        return
    if not USING_EXTENSIONS:
        print("note: the compiled core is not built; both columns use the pure twin", file=sys.stderr)
    compiled = measure(a.reps, a.frames)
    env = {**os.environ, "BOTCORE_NO_EXTENSIONS": "1"}
    child = subprocess.run(
        [sys.executable, __file__, "--child", "--reps", str(a.reps), "--frames", str(a.frames)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    pure = json.loads(child.stdout)
    print(f"engine hot path, {a.frames} frames of BTCUSDT, median of {a.reps} reps (tick-to-order in us)")
    print(f"{'scenario':<16} {'metric':<13} {'compiled':>10} {'pure':>10} {'pure/comp':>10}")
    for name in compiled:
        for metric in ("p50", "p99", "us_per_frame", "orders"):
            c, p = compiled[name][metric], pure[name][metric]
            ratio = f"{p / c:10.2f}" if c else f"{'-':>10}"
            print(f"{name:<16} {metric:<13} {c:10.1f} {p:10.1f} {ratio}")
    print("targets: p50 < 25 us, p99 < 100 us")


if __name__ == "__main__":
    main()
