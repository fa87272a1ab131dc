"""Where a requote's tick-to-order goes: the phases of the engine's order path, timed one by one.

Replays the shipped BTCUSDT capture through the engine driven directly (as ``bench_engine.py``'s
``direct`` mode, instant venue, ``Engine.idle`` between frames) with the ``paper`` setup (config/paper.yaml's strategy and risk
chain) or ``mm3``, and times each phase of every requote with ``perf_counter_ns`` wrappers: the
strategy's ``on_top`` when it returns quotes, ``quoting.diff``, ``pair_replacements``, the whole
vetting of one order (``Engine._vetted_order``: the risk chain plus the order's construction),
each risk check, ``OrderTracker.track`` and the gateway hand-off. The wrappers add ~0.2 µs each,
so read the figures as a breakdown, not as the latency itself (``bench_engine.py`` measures that).

Run: ``python bench/bench_requote_phases.py [--setup paper|mm3] [--frames N]``
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_engine as B  # noqa: E402

import botcore.engine as engine_module  # noqa: E402
from botcore.engine import Engine, EngineConfig  # noqa: E402
from botcore.events import DepthSnapshot, MarketFrame  # noqa: E402
from botcore.replay_adapter import ReplayAdapter  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--setup", choices=("paper", "mm3"), default="paper")
    ap.add_argument("--frames", type=int, default=0, help="frames to replay (0: the whole capture)")
    a = ap.parse_args()

    frames, snap, snap_at = B.load(a.frames or 10**9)
    inst = ReplayAdapter().exchange_info([B.SYM])
    strategies, risk = B.build(a.setup, inst)
    gw = B.InstantVenueGateway()
    clock, stamp = B.recording_clock(frames[0][0])
    eng = Engine(inst, strategies, risk, gateway=gw, config=EngineConfig(), clock=clock)
    times: dict[str, list[int]] = {}
    pc = time.perf_counter_ns
    rehearsing = [False]  # calls made by the engine's idle rehearsals are not requotes: not timed

    def timed(fn: Callable[..., Any], key: str, only_results: bool = False) -> Callable[..., Any]:
        def wrapper(*args: Any, **kw: Any) -> Any:
            t = pc()
            result = fn(*args, **kw)
            if (not only_results or result is not None) and not rehearsing[0]:
                times.setdefault(key, []).append(pc() - t)
            return result

        return wrapper

    for strat in eng._by_symbol[B.SYM]:
        strat.on_top = timed(strat.on_top, "strategy on_top (when it requotes)", only_results=True)
    eng._vetted_order = timed(eng._vetted_order, "vetting one order (risk chain + construction)")  # type: ignore[method-assign]
    for link in eng._risk:
        link.check.check = timed(link.check.check, f"  risk check {link.name}")
    engine_module.diff = timed(engine_module.diff, "quoting.diff")
    engine_module.pair_replacements = timed(engine_module.pair_replacements, "pair_replacements")
    eng._tracker.track = timed(eng._tracker.track, "tracker.track")  # type: ignore[method-assign]
    gw.cancel_replace = timed(gw.cancel_replace, "gateway hand-off (cancel_replace)")  # type: ignore[method-assign]
    gw.submit = timed(gw.submit, "gateway hand-off (submit)")  # type: ignore[method-assign]

    gc.freeze()
    for i, (rec_ns, raw) in enumerate(frames):
        eng.process(MarketFrame(raw, stamp(rec_ns)))
        if i == snap_at:
            eng.process(DepthSnapshot(B.SYM, snap, 0))
        if gw.requests:
            gw.answer_all(eng.process)
        rehearsing[0] = True
        eng.idle()  # as bench_engine's direct mode: the run loop's idle moment between frames
        rehearsing[0] = False

    def pct(values: list[int], f: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(f * len(ordered)))] / 1000

    h = eng.tick_to_order
    print(f"setup {a.setup}: {len(frames):,} frames, {eng.n_orders:,} orders; tick-to-order "
          f"p50 {h.percentile(50):.1f} µs, p99 {h.percentile(99):.1f} µs (with the probes)")
    print(f"| {'phase':46s} | {'calls':>7s} | {'p50 µs':>7s} | {'p90 µs':>7s} | {'p99 µs':>7s} |")
    print(f"|{'-' * 48}|{'-' * 9}:|{'-' * 9}:|{'-' * 9}:|{'-' * 9}:|")
    for key, values in times.items():
        print(f"| {key:46s} | {len(values):7,d} | {pct(values, .5):7.1f} | {pct(values, .9):7.1f} | "
              f"{pct(values, .99):7.1f} |")


if __name__ == "__main__":
    main()
