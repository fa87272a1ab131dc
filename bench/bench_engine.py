"""Engine hot path: tick-to-order latency and per-frame cost over the shipped BTCUSDT recording.

Tick-to-order = websocket frame received (``MarketFrame.recv_ns``) -> order request handed to
the gateway (``submit`` or ``cancel_replace``), as recorded by the engine's own histogram.

Setups (each measured compiled and pure: a child process with ``BOTCORE_NO_EXTENSIONS=1`` runs the
core's pure-Python twins and the order path's ``.py`` sources, see botcore/compiled.py; the table
shows medians over ``--reps`` repetitions):

* ``paper`` (the product): the strategies and the whole risk chain of ``config/paper.yaml`` (the
  main job, ``botcore run config/paper.yaml``), read from that file and built like ``botcore run``
  builds them (``reconcile_guard`` included), nothing overridden: what the issue's target is about.
* ``mm3`` (stress case): the first-party marketmaker, 3 levels a side (``max_live_orders`` 6), requoting
  on every mid move (``min_requote_interval: 0``, ``requote_tolerance_bps: 0``: the worst case
  for order traffic), behind the basic risk chain of ``config/paper.yaml`` built through the
  registry's factories like ``botcore run`` does (order-rate limits raised so nothing is vetoed:
  the bench sends thousands of orders a second). Requotes go out as cancel-replace.
* ``touch`` (baseline): one bid and one ask at the touch, no risk checks: what the engine
  itself costs without a strategy worth the name.

Modes:

* ``direct``: the engine driven on this thread (``Engine.process``) frame by frame with a null
  gateway; after every frame the bench plays an instant venue (REST answer and user-stream
  report for every new order, cancel and cancel-replace) so the strategy keeps requoting. Route,
  book update, strategy, diff, risk, tracking, hand-off: the engine alone. The engine clock
  follows the recording (plus real time within a frame), so rate windows see real pace. Between
  frames the bench calls ``Engine.idle`` as ``Engine.run`` does when its queue runs dry (frames
  arrive ~6 ms apart in the recording): the engine's idle rehearsals of the order path
  (``EngineConfig.rehearse_interval``) take place there, and their cost shows in ``us_per_frame``.
* ``direct+freeze``: the same under ``engine.gc_policy`` (``gc.freeze()`` and the larger gen-0
  threshold of ``EngineConfig.gc_gen0_threshold``) and ``engine.cpu_policy`` (config/paper.yaml's
  ``engine.cpu``, unset there: no pinning): exactly what ``Engine.run`` (``botcore run``, the
  threaded mode) applies to the main job; ``Engine.process``, which ``direct`` drives, does not.
  This is the product's configuration: ``bench/run.py`` reports it.
* ``direct+freeze, no rehearsal``: the same with ``EngineConfig.rehearse_interval=None`` (the
  engine never rehearses its order path while idle): what the rehearsals buy, measured in turn
  with the mode above within every repetition.
* ``direct+freeze, pinned``: ``direct+freeze`` with this thread (the engine thread here) pinned
  as ``engine.cpu: auto`` would pin it (the last CPU): what the option does, in turn with the
  others. ``direct`` applies neither policy (``Engine.process`` alone).
* ``direct+freeze, paced``: ``direct+freeze`` with the frames at the recording's own pace: after
  each frame's work and ``Engine.idle`` the thread sleeps until the next frame is due (gaps over
  ``PACE_CAP_US`` = 1 ms cut to it; frames recorded in one burst follow at once), as the engine
  thread sleeps on its queue. The engine alone (no hand-over from another thread), but as cold
  as real gaps leave it: the other direct modes replay frames back to back, so every decision
  finds the previous one's code and data still cached, which real frames (~0.6 ms apart at the
  median, a quarter over 3 ms) do not (``bench_cache_decay.py``: how fast this machine forgets).
  First ``--threaded-frames`` frames (it takes their recorded time, ~6 s for 10,000).
* ``threaded``: the real wiring: engine thread, gateway pool, replay adapter feeding frames in
  lock-step (``max_backlog=0``), so the queue hop, thread wake-ups and GIL hand-offs count
  (wall clock: the replay runs ~10x faster than recorded); the engine thread as ``botcore run``
  runs it.

Columns: tick-to-order percentiles; ``on_top_p50``: the strategy's own time on ticks where it
decided to requote (part of every tick-to-order sample of that tick; timed in a second replay of
the direct modes, so the timer's own clock reads stay out of the latency), ``idle_on_top_p50``
on ticks where it kept its orders; ``us_per_frame``: wall time per frame including the
simulated venue; ``orders``: tick-to-order samples; ``replaces``: cancel-replace requests.

Targets (DESIGN): tick-to-order p50 < 25 us, p99 < 100 us.

Run: ``python bench/bench_engine.py [--reps 5] [--frames N] [--threaded-frames 10000]
[--only paper|mm3|touch]``; the direct modes replay the whole capture unless ``--frames`` is given,
the paced and threaded modes its first ``--threaded-frames`` (pacing takes the recording's time,
lock-step a thread hand-off per frame).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from botcore.app import build_risk_chain, build_strategies, with_reconcile_guard
from botcore.config import EngineSection, config_from_text, load_config
from botcore.core import USING_EXTENSIONS
from botcore.engine import Engine, EngineConfig, cpu_policy, gc_policy
from botcore.events import DepthSnapshot, GatewayResult, MarketFrame, UserEvent
from botcore.metrics import LatencyHistogram, now_ns
from botcore.model import BookTop, ExecutionReport, Instrument, OrderOutcome, OrderStatus, Quote, Side
from botcore.plugins import collect_registry, get_plugin_manager
from botcore.replay import is_snapshot, iter_recording, shipped_recording
from botcore.replay_adapter import ReplayAdapter

SYM = "BTCUSDT"
PAPER_YAML = Path(__file__).resolve().parent.parent / "config" / "paper.yaml"
SETUPS = ("paper", "mm3", "touch")
S = OrderStatus

# The risk section of config/paper.yaml, less reconcile_guard (it needs the run's Reconciler), with
# order-rate limits a bench sending hundreds of orders per second does not hit, and no per_second
# window: the check counts that window by walking every order of the last second (O(rate)), which
# at bench rates would measure the plugin's data structure, not the hot path (reported separately).
RISK_YAML = """
run: {name: bench, journal: null}
exchange: {name: replay, mode: paper, symbols: [BTCUSDT]}
strategies: [{name: mm, type: marketmaker, params: {amount: "0.001"}}]
risk:
  checks:
    - {type: max_order_notional, params: {max_notional: "500"}}
    - {type: max_position, params: {max_position: "0.03"}}
    - {type: price_band, params: {max_bps: 50}}
    - {type: stale_data, params: {max_book_age: 5s, max_user_silence: 120s, max_clock_skew_ms: 1000}}
    - {type: drawdown, params: {max_drawdown: "50", resume: manual}}
    - {type: order_rate, params: {per_10s: 10000000, exchange_orders_per_10s: 10000000}}
"""
MODES = (
    "direct",
    "direct+freeze",
    "direct+freeze, no rehearsal",
    "direct+freeze, pinned",
    "direct+freeze, paced",
    "threaded",
)
# paced: gaps longer than this are cut to it, to bound the run. Real gaps that long leave the
# engine colder still (bench_cache_decay.py), so the paced figures are on the kind side.
PACE_CAP_US = 1000
_DIRECT_MODES = {  # mode: (Engine.run's collector policy, idle rehearsals, engine.cpu)
    "direct": (False, True, None),
    "direct+freeze": (True, True, "config"),
    "direct+freeze, no rehearsal": (True, False, "config"),
    "direct+freeze, pinned": (True, True, "auto"),
}

METRICS = ("p50", "p99", "p99.9", "on_top_p50", "idle_on_top_p50", "us_per_frame", "orders", "replaces")
MM3_PARAMS = {
    "amount": "0.001",
    "levels": 3,
    "bid_distance": {"ticks": 0},
    "ask_distance": {"ticks": 0},
    "requote_tolerance_bps": "0",
    "min_requote_interval": 0,
}


class Touch:
    """Quotes one bid and one ask at the touch; instrument conversions precomputed."""

    name = "touch"
    symbols = (SYM,)
    max_live_orders = 2

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


class TimedStrategy:
    """Wraps a strategy to time its ``on_top`` (part of every tick-to-order sample): ``decided``
    holds the calls that returned quotes, ``idle`` the ones that returned None."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.decided = LatencyHistogram()
        self.idle = LatencyHistogram()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def on_top(self, ctx: Any, top: BookTop) -> Any:
        t0 = now_ns()
        quotes = self._inner.on_top(ctx, top)
        (self.idle if quotes is None else self.decided).record(now_ns() - t0)
        return quotes

    def on_fill(self, ctx: Any, fill: Any) -> None:
        self._inner.on_fill(ctx, fill)

    def on_order_update(self, ctx: Any, report: Any) -> None:
        self._inner.on_order_update(ctx, report)


def build(setup: str, instruments: dict[str, Instrument], timed: bool = True) -> tuple[list[Any], list[Any]]:
    """(strategies, risk links) for a setup, built through the plugin registry like ``botcore run``;
    ``timed`` wraps each strategy in ``TimedStrategy`` (its clock reads then count in tick-to-order)."""
    wrap = TimedStrategy if timed else (lambda s: s)
    if setup == "touch":
        return [wrap(Touch(instruments[SYM]))], []
    registry = collect_registry(get_plugin_manager())
    if setup == "paper":
        config = load_config(PAPER_YAML)
        risk, _ = with_reconcile_guard(build_risk_chain(config, registry), registry)
        return [wrap(s) for s in build_strategies(config, registry, instruments)], risk
    strategy = registry.strategies["marketmaker"]("mm", MM3_PARAMS, instruments)
    return [wrap(strategy)], build_risk_chain(config_from_text(RISK_YAML), registry)


class InstantVenueGateway:
    """Null gateway that remembers requests; the bench answers them after each frame."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, Any, Any]] = []

    def submit(self, order: Any) -> None:
        self.requests.append(("new", order, None))

    def cancel(self, request: Any) -> None:
        self.requests.append(("cancel", request, None))

    def cancel_replace(self, cancel: Any, new: Any) -> None:
        self.requests.append(("replace", cancel, new))

    def query(self, symbol: str, cid: str) -> None:
        pass

    def fetch_depth(self, symbol: str, limit: int = 1000) -> None:
        pass

    def close(self, timeout: float = 5.0) -> bool:
        return True

    def answer_all(self, proc: Any) -> None:
        """The REST answer and the user-stream report of every request (the user stream must not
        look silent to the ``stale_data`` check)."""
        while self.requests:
            batch, self.requests = self.requests, []
            for kind, a, b in batch:
                if kind == "new":
                    self._new(proc, a)
                elif kind == "cancel":
                    self._cancelled(proc, a.client_order_id)
                else:
                    self._cancelled(proc, a.client_order_id)
                    self._new(proc, b)

    def _new(self, proc: Any, order: Any) -> None:
        cid = order.client_order_id
        proc(GatewayResult(OrderOutcome("new", SYM, cid, S.NEW)))
        proc(UserEvent(_report(cid, order.side, order.price, order.qty, S.NEW), 0))

    def _cancelled(self, proc: Any, cid: str) -> None:
        proc(GatewayResult(OrderOutcome("cancel", SYM, cid, S.CANCELED)))
        proc(UserEvent(_report(cid, Side.BUY, Decimal(0), Decimal(0), S.CANCELED), 0))


def _report(cid: str, side: Side, price: Decimal, qty: Decimal, status: OrderStatus) -> ExecutionReport:
    return ExecutionReport(
        symbol=SYM,
        client_order_id=cid,
        order_id=1,
        side=side,
        order_type="LIMIT_MAKER",
        status=status,
        execution_type=str(status),
        price=price,
        orig_qty=qty,
        cum_qty=Decimal(0),
        cum_quote=Decimal(0),
        event_time_ms=1,
        transaction_time_ms=1,
    )


def load(frames: int) -> tuple[list[tuple[int, bytes]], bytes, int]:
    """The first ``frames`` market frames with their recorded receive times (monotonic ns)."""
    out: list[tuple[int, bytes]] = []
    snap = b""
    snap_at = 0
    for rec_ns, raw in iter_recording(shipped_recording()):
        if is_snapshot(raw):
            snap, snap_at = raw, len(out)
        else:
            out.append((rec_ns, raw))
        if len(out) >= frames:
            break
    return out, snap, snap_at


def _result(eng: Engine, elapsed: float, n_frames: int, timed: TimedStrategy | None = None) -> dict[str, float]:
    h = eng.tick_to_order
    strat = timed if timed is not None else eng.strategies[0]
    return {
        "p50": h.percentile(50),
        "p99": h.percentile(99),
        "p99.9": h.percentile(99.9),
        "on_top_p50": strat.decided.percentile(50),
        "idle_on_top_p50": strat.idle.percentile(50),
        "orders": float(h.count),
        "replaces": float(eng.n_replaces),
        "us_per_frame": elapsed / max(1, n_frames) * 1e6,
    }


def recording_clock(start_ns: int) -> tuple[Callable[[], int], Callable[[int], int]]:
    """``(clock, stamp)``: recorded time plus the real time spent since the current frame was
    stamped. Latencies are real nanoseconds, while time windows (order-rate limits, requote
    intervals, data age) see the recording's pace rather than the bench's ~50x replay."""
    mono = now_ns
    offset = [start_ns - mono()]  # engine time = monotonic time + offset (one add per reading)

    def clock() -> int:
        return mono() + offset[0]

    def stamp(rec_ns: int) -> int:
        """A frame arrives: time jumps to its recorded time (never backwards: frames recorded in
        the same microsecond must not make the clock go back by the real time spent between)."""
        m = mono()
        now = m + offset[0]
        t = rec_ns if rec_ns > now else now
        offset[0] = t - m
        return t

    return clock, stamp


def engine_cpu(choice: str | None) -> int | None:
    """``engine.cpu`` for a replay: ``"config"`` = config/paper.yaml's (what ``botcore run`` pins its
    engine thread to), ``"auto"`` = the ``engine.cpu: auto`` option's CPU, None = not pinned."""
    if choice == "config":
        return load_config(PAPER_YAML).engine.engine_cpu()
    if choice == "auto":
        return EngineSection(cpu="auto").engine_cpu()
    return None


def run_direct(
    setup: str,
    frames: list[tuple[int, bytes]],
    snap: bytes,
    snap_at: int,
    freeze: bool,
    rehearse: bool = True,
    cpu: str | None = "config",
    pace_cap_ns: int | None = None,
) -> dict[str, float]:
    """Two replays: the strategies as built (tick-to-order, cost per frame), then wrapped in
    ``TimedStrategy`` for the ``on_top`` figures (its clock reads stay out of the latency).
    ``pace_cap_ns``: frames at the recording's pace, gaps capped there (``paced``)."""
    prepare = None if pace_cap_ns is None else paced(frames, pace_cap_ns)  # its state is per replay
    eng, elapsed = _replay_direct(setup, frames, snap, snap_at, freeze, False, rehearse, cpu, prepare)
    timed, _ = _replay_direct(setup, frames, snap, snap_at, freeze, True, rehearse, cpu, prepare)
    return _result(eng, elapsed, len(frames), timed.strategies[0])


def paced(frames: list[tuple[int, bytes]], cap_ns: int) -> Callable[[Engine, Callable[[], int]], None]:
    """A ``prepare`` hook for ``_replay_direct``: after each frame's work and ``Engine.idle``, the
    thread sleeps until the next frame is due by the recording (its gap, at most ``cap_ns``),
    as ``Engine.run`` sleeps on its queue between frames. Frames recorded in one burst follow at
    once. The engine alone, without the hand-over from another thread, but as cold as the gaps
    leave it. (The wrapper's clock read and gap lookup, ~0.2 µs, count in tick-to-order.) Each
    call of the hook starts from the first gap: one hook serves any number of replays."""
    gaps = [min(b[0] - a[0], cap_ns) for a, b in zip(frames, frames[1:], strict=False)] + [0]

    def prepare(eng: Engine, clock: Callable[[], int]) -> None:
        process, idle = eng.process, eng.idle
        next_gap = iter(gaps).__next__
        due = [0]
        sleep = time.sleep

        def process_on_time(event: Any) -> None:
            if type(event) is MarketFrame:
                due[0] = now_ns() + next_gap()
            process(event)

        def idle_until_due() -> None:
            idle()
            rest = due[0] - now_ns()
            if rest > 0:
                sleep(rest / 1e9)

        eng.process = process_on_time  # type: ignore[method-assign]
        eng.idle = idle_until_due  # type: ignore[method-assign]

    return prepare


def _replay_direct(
    setup: str,
    frames: list[tuple[int, bytes]],
    snap: bytes,
    snap_at: int,
    freeze: bool,
    timed: bool,
    rehearse: bool = True,
    cpu: str | None = "config",
    prepare: Callable[[Engine, Callable[[], int]], None] | None = None,
) -> tuple[Engine, float]:
    """One replay on this thread. ``freeze``: under ``gc_policy``; ``cpu``: under ``cpu_policy``
    with ``engine_cpu(cpu)`` (this thread is the engine thread here). ``freeze`` with the default
    ``cpu`` is what ``Engine.run`` applies to ``botcore run config/paper.yaml``. ``prepare(engine,
    clock)`` runs once before the first frame (a probe may replace the engine's ``process`` or
    ``idle`` on the instance: the loop calls what it finds there)."""
    inst = ReplayAdapter().exchange_info([SYM])
    strategies, risk = build(setup, inst, timed)
    gw = InstantVenueGateway()
    clock, stamp = recording_clock(frames[0][0])
    cfg = EngineConfig() if rehearse else EngineConfig(rehearse_interval=None)
    eng = Engine(inst, strategies, risk, gateway=gw, config=cfg, clock=clock)
    if prepare is not None:
        prepare(eng, clock)
    proc = eng.process
    answer = gw.answer_all
    idle = eng.idle
    t0 = time.perf_counter()
    policies = EngineConfig(gc_freeze=freeze, cpu=engine_cpu(cpu))
    with gc_policy(policies), cpu_policy(policies):  # what Engine.run applies (or nothing)
        for i, (rec_ns, raw) in enumerate(frames):
            proc(MarketFrame(raw, stamp(rec_ns)))
            if i == snap_at:
                proc(DepthSnapshot(SYM, snap, 0))
            if gw.requests:
                answer(proc)
            idle()  # the gap before the next frame, where Engine.run calls it (rehearsals)
    return eng, time.perf_counter() - t0


def run_threaded(setup: str, frames: int) -> dict[str, float]:
    adapter = ReplayAdapter(max_frames=frames, max_backlog=0, user_reports=True)
    inst = adapter.exchange_info([SYM])
    strategies, risk = build(setup, inst)
    config = EngineConfig(snapshot_min_interval=0.0, cpu=engine_cpu("config"))
    eng = Engine(inst, strategies, risk, adapter=adapter, config=config)
    eng.load_snapshot(adapter.account_snapshot())
    t0 = time.perf_counter()
    eng.start()
    adapter.start(eng, [SYM])
    eng.join(600)
    elapsed = time.perf_counter() - t0
    eng.gateway.close()
    return _result(eng, elapsed, adapter.frames_sent)


def measure(
    reps: int, n_frames: int | None, setups: list[str], threaded_frames: int = 10_000
) -> dict[str, dict[str, float]]:
    frames, snap, snap_at = load(n_frames or 10**9)
    first = frames[:threaded_frames]
    results: dict[str, list[dict[str, float]]] = {}
    for _ in range(reps):
        for setup in setups:
            for mode in MODES:
                if mode == "threaded":
                    r = run_threaded(setup, min(threaded_frames, len(frames)))
                elif mode == "direct+freeze, paced":
                    r = run_direct(setup, first, snap, snap_at, True, pace_cap_ns=PACE_CAP_US * 1000)
                else:
                    r = run_direct(setup, frames, snap, snap_at, *_DIRECT_MODES[mode])
                results.setdefault(f"{setup} {mode}", []).append(r)
    return {
        name: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for name, runs in results.items()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--frames", type=int, default=None, help="direct modes: first N frames (default: all)")
    ap.add_argument("--threaded-frames", type=int, default=10_000, help="paced and threaded modes: first N frames")
    ap.add_argument("--only", choices=SETUPS, default=None)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    setups = [a.only] if a.only else list(SETUPS)
    if a.child:
        print(json.dumps(measure(a.reps, a.frames, setups, a.threaded_frames)))
        return
    if not USING_EXTENSIONS:
        print("note: the compiled core is not built; both columns use the pure twin", file=sys.stderr)
    compiled = measure(a.reps, a.frames, setups, a.threaded_frames)
    env = {**os.environ, "BOTCORE_NO_EXTENSIONS": "1"}
    cmd = [sys.executable, __file__, "--child", "--reps", str(a.reps), "--threaded-frames", str(a.threaded_frames)]
    if a.frames:
        cmd += ["--frames", str(a.frames)]
    if a.only:
        cmd += ["--only", a.only]
    child = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    pure = json.loads(child.stdout)
    span = f"first {a.frames}" if a.frames else "all"
    print(
        f"engine hot path, {span} frames of BTCUSDT (paced, threaded: first {a.threaded_frames}), "
        f"median of {a.reps} reps (tick-to-order in us)"
    )
    print(f"{'setup / mode':<40} {'metric':<13} {'compiled':>10} {'pure':>10} {'pure/comp':>10}")
    for name in compiled:
        for metric in METRICS:
            c, p = compiled[name][metric], pure[name][metric]
            ratio = f"{p / c:10.2f}" if c else f"{'-':>10}"
            print(f"{name:<40} {metric:<13} {c:10.1f} {p:10.1f} {ratio}")
    print("targets: p50 < 25 us, p99 < 100 us")


if __name__ == "__main__":
    main()
