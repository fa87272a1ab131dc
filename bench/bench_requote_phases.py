"""Where a requote's tick-to-order goes: the phases of the engine's order path, timed one by one.

Replays the shipped BTCUSDT capture through the engine driven directly (as ``bench_engine.py``'s
``direct`` mode, instant venue, ``Engine.idle`` between frames) with the ``paper`` setup (config/paper.yaml's strategy and risk
chain) or ``mm3``, and times each phase of every requote with ``perf_counter_ns`` wrappers: the
strategy's ``on_top`` when it returns quotes, ``quoting.diff``, ``pair_replacements``, the whole
vetting of one order (``Engine._vetted_order``: the risk chain plus the order's construction),
each risk check, ``OrderTracker.track`` and the gateway hand-off. The wrappers add ~0.2 µs each,
so read the figures as a breakdown, not as the latency itself (``bench_engine.py`` measures that).

``--split`` instead replays without those probes (only the strategy's start and end are read)
and compares, part by part, the median over all requotes with the median over the slowest 1 % (by
the decision's last hand-off): frame -> strategy, the strategy, strategy -> first hand-off, first
-> second hand-off, the last hand-off. It tells whether the slowest requotes lose their time in
one step of the code every run, or wherever a stall of the machine happens to land. ``--gap
sleep:200`` makes the loop sleep that many microseconds after every frame, as an engine thread
waiting on its queue sleeps between frames: what a cold wake-up costs a requote, with nothing else
changed (no other thread runs). ``spin:200`` busy-waits in a Python loop instead (the interpreter's
own code keeps running, so stays cached); ``cspin:200`` busy-waits in C without the GIL
(``bench_cache_decay.busy_wait``: the core stays busy, but no Python runs, as in a GIL-free spin
on the queue): whether a busy core alone keeps the decision's code and data cached.
``paced:1000`` sleeps until the next frame is due by the recording instead, each gap cut to that
many microseconds (``bench_engine.paced``, its ``direct+freeze, paced`` mode): the same frames as
the run without ``--gap``, as cold as their real spacing leaves the engine.

Run: ``python bench/bench_requote_phases.py [--setup paper|mm3] [--frames N] [--split [--gap sleep|spin|cspin|paced:US]]``
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_engine as B  # noqa: E402
from bench_cache_decay import busy_wait  # noqa: E402

import botcore.engine as engine_module  # noqa: E402
from botcore.engine import Engine, EngineConfig  # noqa: E402
from botcore.events import DepthSnapshot, MarketFrame  # noqa: E402
from botcore.replay_adapter import ReplayAdapter  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--setup", choices=("paper", "mm3"), default="paper")
    ap.add_argument("--frames", type=int, default=0, help="frames to replay (0: the whole capture)")
    ap.add_argument("--split", action="store_true", help="median vs slowest 1 %% of requotes, part by part")
    ap.add_argument("--gap", type=_gap, default=None, metavar="sleep|spin|cspin|paced:US", help="with --split: pause after every frame")
    a = ap.parse_args()
    if a.split:
        split(a.setup, a.frames, a.gap)
        return
    if a.gap is not None:
        ap.error("--gap goes with --split")

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


class _Samples:
    """Stands in for the engine's tick-to-order histogram: keeps every sample."""

    def __init__(self) -> None:
        self.values: list[int] = []

    def record(self, ns: int) -> None:
        self.values.append(ns)


def _gap(text: str) -> tuple[str, int]:
    """``sleep:200`` / ``spin:200`` / ``cspin:200`` / ``paced:1000`` -> (how, nanoseconds)."""
    how, _, us = text.partition(":")
    if how not in ("sleep", "spin", "cspin", "paced") or not us.isdigit() or int(us) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected sleep:US, spin:US, cspin:US or paced:US, US > 0")
    return how, int(us) * 1000


def _pause(gap: tuple[str, int]) -> None:
    how, ns = gap
    if how == "sleep":
        time.sleep(ns / 1e9)
        return
    if how == "cspin":
        busy_wait(ns)
        return
    end = time.perf_counter_ns() + ns
    while time.perf_counter_ns() < end:
        pass


def split(setup: str, n_frames: int, gap: tuple[str, int] | None = None) -> None:
    frames, snap, snap_at = B.load(n_frames or 10**9)
    if gap is not None and gap[0] == "cspin":
        busy_wait(1)  # compiles the probe now, not during the replay
    pace = B.paced(frames, gap[1]) if gap is not None and gap[0] == "paced" else None
    pause_after_frame = gap if pace is None else None  # pacing wraps the engine itself, below
    rows: list[tuple[int, ...]] = []  # (last hand-off, ->strategy, strategy, ->first, first->second)

    def probe(eng: Engine, clock: Callable[[], int]) -> None:
        """Time the strategy, keep every tick-to-order sample, split each requote into its parts
        (and pause after every frame if asked): ``bench_engine``'s replay, probed."""
        if pace is not None:
            pace(eng, clock)  # the probes below wrap the paced process and idle
        samples = eng.tick_to_order = _Samples()  # type: ignore[assignment]
        spans: list[tuple[int, int]] = []
        for strat in eng._by_symbol[B.SYM]:
            on_top = strat.on_top

            def timed_on_top(ctx: Any, top: Any, on_top: Callable[..., Any] = on_top) -> Any:
                start = clock()
                quotes = on_top(ctx, top)
                if quotes:
                    spans.append((start, clock()))
                return quotes

            strat.on_top = timed_on_top
        process, idle = eng.process, eng.idle

        def split_process(event: Any) -> None:
            n0 = len(samples.values)
            spans.clear()
            process(event)
            got = samples.values[n0:]
            if type(event) is MarketFrame and len(got) >= 2 and spans:
                recv = event.recv_ns
                start, done = spans[-1]
                rows.append((max(got), start - recv, done - start, got[0] - (done - recv), got[1] - got[0]))

        def idle_then_pause() -> None:
            idle()
            if pause_after_frame is not None:
                _pause(pause_after_frame)

        eng.process = split_process  # type: ignore[method-assign]
        eng.idle = idle_then_pause  # type: ignore[method-assign]

    B._replay_direct(setup, frames, snap, snap_at, freeze=True, timed=False, prepare=probe)
    if not rows:
        raise SystemExit("no decision placed two orders")
    rows.sort()
    slowest = rows[-max(1, len(rows) // 100) :]
    parts = ("frame -> strategy", "strategy", "strategy -> 1st hand-off", "1st -> 2nd hand-off", "last hand-off")
    if pace is not None:
        pause = f", paced as recorded (gaps cut to {gap[1] // 1000} µs)"  # type: ignore[index]
    else:
        pause = f", {gap[0]} {gap[1] // 1000} µs after every frame" if gap else ""
    print(f"setup {setup}{pause}: {len(rows)} requotes with two or more orders; µs (median requote vs the slowest 1 %)")
    print(f"| {'part':26s} | {'median':>7s} | {'slowest 1 %, median':>20s} | {'ratio':>6s} |")
    print(f"|{'-' * 28}|{'-' * 8}:|{'-' * 21}:|{'-' * 7}:|")
    for k, name in zip((1, 2, 3, 4, 0), parts, strict=True):  # each part's median, over all and over the slowest
        typical = statistics.median(r[k] for r in rows)
        slow = statistics.median(r[k] for r in slowest)
        print(f"| {name:26s} | {typical / 1000:7.1f} | {slow / 1000:20.1f} | {slow / max(typical, 1):6.2f} |")


if __name__ == "__main__":
    main()
