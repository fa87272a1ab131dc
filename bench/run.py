"""botcore's benchmark suite as one command: one table, baselines run in the same process on the
same input, medians over repetitions, "x better" = how many times botcore beats the baseline.

    python bench/run.py [--quick] [--only book,engine,...] [--repeat N] [--frames N]

Sections (``--only`` names): ``book`` (order book, bytes to best bid/ask), ``engine`` (tick to
order), ``replay`` (replay speed), ``reconcile`` (REST weight and time), ``gateway`` (order entry),
``journal`` and ``position`` (brief rows). ``--frames`` sizes the recorded input of ``book``
(timed frames per row), ``engine`` (frames replayed) and ``replay`` (recorded events); by default
the engine and replay sections use the whole shipped capture. The default run takes a few
minutes on a 2-core machine, ``--quick`` well under one. See bench/README.md for how to read it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Row, Section, describe_machine, self_child, table_lines, verdict  # noqa: E402

SECTIONS = ("book", "engine", "replay", "reconcile", "gateway", "journal", "position")
DEFAULT_NAUTILUS = "/tmp/nt/bin/python"
TARGET_BOOK_MSGS = 1_000_000
TARGET_VS_TWIN = 20.0
TARGET_VS_NAUTILUS = 50.0
TARGET_P50_US = 25.0
TARGET_P99_US = 100.0
TARGET_REPLAY = 200_000


@dataclass
class Plan:
    """Input sizes and repetitions of one run (``--quick`` shrinks them)."""

    quick: bool
    repeat: int | None
    frames: int | None
    nautilus_python: str | None

    def reps(self, default: int, quick: int) -> int:
        return self.repeat or (quick if self.quick else default)

    @property
    def book_frames(self) -> int:
        return self.frames or (1000 if self.quick else 3000)

    @property
    def engine_frames(self) -> int | None:
        return self.frames or (10_000 if self.quick else None)

    @property
    def threaded_frames(self) -> int:
        cap = 5_000 if self.quick else 10_000
        return min(self.engine_frames or cap, cap)

    @property
    def replay_events(self) -> int:
        return self.frames or (10_000 if self.quick else 50_000)


# ------------------------------------------------------------------------------------------------
# 1. Order book
# ------------------------------------------------------------------------------------------------


def section_book(plan: Plan) -> Section:
    import bench_book

    sec = Section("book", "Order book: raw websocket bytes -> updated book -> best bid/ask")
    res = bench_book.measure(
        repeat=plan.reps(3, 3),
        frames=plan.book_frames,
        min_seconds=0.05 if plan.quick else 0.2,
        nautilus_python=plan.nautilus_python,
    )
    rates, ref = res["rates"], res["reference"]
    nt = res["nautilus"]
    nt_text = nt.get("error", "")
    lv10 = res["levels10"] / res["frames10"]
    lv46 = res["levels46"] / res["frames46"]
    others = [n for n in rates["depth10"] if n != ref]
    labels = {
        "pure twin": "pure-Python twin",
        "SortedDict": "SortedDict + json + Decimal",
        "python-binance DepthCache": f"python-binance DepthCache ({res['depthcache_decoder']})",
    }

    def book_rows(key: str, what: str, nt_key: str, targets: bool) -> None:
        ours = rates[key][ref]
        for name in others:
            row = Row("book", what, ours, "msg/s", labels.get(name, name), rates[key][name])
            if targets and name == "pure twin":
                row.target = f">= {TARGET_BOOK_MSGS:,} msg/s {verdict(ours >= TARGET_BOOK_MSGS)}; >= {TARGET_VS_TWIN:g}x"
                row.verdict = verdict(row.ratio is not None and row.ratio >= TARGET_VS_TWIN)
            sec.rows.append(row)
        row = Row("book", what, ours, "msg/s", "nautilus-trader OrderBook (own process)", nt.get(nt_key))
        if nt_text:
            row.baseline_text = nt_text
        if targets:
            row.target = f">= {TARGET_VS_NAUTILUS:g}x"
            row.verdict = verdict(row.ratio >= TARGET_VS_NAUTILUS) if row.ratio is not None else ""
        sec.rows.append(row)

    book_rows("depth10", f"bytes->book+top, <=10-level frames ({lv10:.1f} lv avg)", "depth10", True)
    book_rows("depth46", f"bytes->book+top, frames as recorded ({lv46:.0f} lv avg)", "depth46", False)
    sec.rows.append(
        Row(
            "book",
            f"levels/s from raw bytes, <=10-level frames (= msg/s x {lv10:.1f})",
            rates["depth10"][ref] * lv10,
            "levels/s",
            "pure-Python twin",
            rates["depth10"]["pure twin"] * lv10,
        )
    )
    for name in others:
        base = labels.get(name, name) + (" (str levels)" if "DepthCache" in name else "")
        sec.rows.append(
            Row(
                "book",
                "levels/s applied, pre-decoded levels",
                rates["levels"][ref],
                "levels/s",
                base,
                rates["levels"][name],
            )
        )
    if "apply10" in nt:
        sec.rows.append(
            Row(
                "book",
                "context: core bytes->book vs nautilus' book alone (no decoding)",
                rates["depth10"][ref],
                "msg/s",
                "nautilus OrderBook.apply_deltas, deltas pre-built",
                nt["apply10"],
            )
        )
    # decode share: decoding alone vs the compiled core's whole bytes->book path
    total_us = 1e6 / rates["depth10"][ref]
    dec = res["decode"]
    scan = next((n for n in dec if n.startswith("compiled scan")), None)
    if scan is not None:
        scan_us = 1e6 / dec[scan]
        for name in (n for n in dec if n != scan):
            sec.rows.append(
                Row(
                    "book",
                    "JSON decode alone, <=10-level frames (core: scan into int64 scratch)",
                    scan_us,
                    "us/msg",
                    f"{name} (to Python objects)",
                    1e6 / dec[name],
                    higher_is_better=False,
                    digits=2,
                )
            )
        sec.rows.append(
            Row(
                "book",
                "decode share of the core's bytes->book time",
                100.0 * scan_us / total_us,
                "%",
                "json.loads alone, in % of the core's whole path",
                100.0 * (1e6 / dec["json.loads"]) / total_us,
                digits=0,
                show_ratio=False,
            )
        )
    sec.notes.append(
        f"Input: the first {res['frames10']:,} live frames of each framing of the shipped BTCUSDT depth@100ms "
        f"capture after its REST snapshot (warm-up untimed); every contender ends on the same best bid/ask."
    )
    if not nt_text:
        sec.notes.append(
            f"nautilus-trader {nt.get('version')} ran in its own Python 3.12 process on the same frames, fed like its "
            "Binance adapter (msgspec schemas -> Price/Quantity from strings -> OrderBookDelta -> apply_deltas)."
        )
    return sec


# ------------------------------------------------------------------------------------------------
# 2. Tick to order (bench_engine)
# ------------------------------------------------------------------------------------------------


def engine_measure(frames: int | None, reps: int, threaded_frames: int) -> dict[str, Any]:
    """bench_engine's ``direct+freeze`` (``frames`` of the capture, all by default), ``direct+freeze,
    paced`` and ``threaded`` (both the first ``threaded_frames``: pacing takes the recording's time,
    lock-step a thread hand-off per frame) modes: ``paper`` (the product: config/paper.yaml's
    strategy and risk chain) in all three, the ``mm3`` stress setup direct and threaded, plus
    ``touch`` direct as the engine-alone reference; each ``reps`` times, medians."""
    import statistics

    import bench_engine

    loaded, snap, snap_at = bench_engine.load(frames or 10**9)
    out: dict[str, Any] = {"frames": len(loaded), "threaded_frames": threaded_frames}
    runs: dict[str, list[dict[str, float]]] = {
        "paper direct": [],
        "paper paced": [],
        "paper threaded": [],
        "mm3 direct": [],
        "touch direct": [],
        "mm3 threaded": [],
    }
    for _ in range(max(1, reps)):
        # Direct modes under the collector policy Engine.run applies (bench_engine's direct+freeze).
        runs["paper direct"].append(bench_engine.run_direct("paper", loaded, snap, snap_at, True))
        runs["paper paced"].append(
            bench_engine.run_direct(
                "paper", loaded[:threaded_frames], snap, snap_at, True, pace_cap_ns=bench_engine.PACE_CAP_US * 1000
            )
        )
        runs["paper threaded"].append(bench_engine.run_threaded("paper", threaded_frames))
        runs["mm3 direct"].append(bench_engine.run_direct("mm3", loaded, snap, snap_at, True))
        runs["touch direct"].append(bench_engine.run_direct("touch", loaded, snap, snap_at, True))
        runs["mm3 threaded"].append(bench_engine.run_threaded("mm3", threaded_frames))
    for name, rs in runs.items():
        out[name] = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
    return out


def section_engine(plan: Plan) -> Section:
    import bench_engine

    from botcore.core import USING_EXTENSIONS

    sec = Section("engine", "Tick to order: frame received -> order handed to the gateway (full engine)")
    reps = plan.reps(5, 3)  # odd: a median of two is a mean; five: a noisy repetition or two cannot set it
    args = ["--child", "engine", "--repeat", str(reps), "--threaded-frames", str(plan.threaded_frames)]
    if plan.engine_frames:
        args += ["--frames", str(plan.engine_frames)]
    ours = engine_measure(plan.engine_frames, reps, plan.threaded_frames)
    try:
        pure = self_child("run", args, env={"BOTCORE_NO_EXTENSIONS": "1"})
        base = "pure Python: core twins + order-path sources (own process)"
    except Exception as exc:
        pure, base = {}, f"pure twin failed: {exc}"[:80]
    if not USING_EXTENSIONS:
        sec.notes.append("The compiled core is not built: both columns run the pure twin.")
    whole = "whole capture" if plan.engine_frames is None else f"first {ours['frames']:,} frames"

    def row(mode: str, key: str, what: str, unit: str = "us", target: float | None = None) -> None:
        """One engine figure; a metric bench_engine stopped reporting shows as '-', not a crash."""
        value = ours.get(mode, {}).get(key)
        r = Row(
            "engine", what, value, unit, base, pure.get(mode, {}).get(key), higher_is_better=False, digits=1
        )
        if target is not None:
            r.target = f"< {target:g} us"
            r.verdict = verdict(value < target) if value is not None else ""
        sec.rows.append(r)

    lockstep = f"engine thread + gateway + replay feed in lock-step, first {ours['threaded_frames']:,}"
    paced = (
        f"frames at the recording's pace (gaps over {bench_engine.PACE_CAP_US} us cut to it), "
        f"first {ours['threaded_frames']:,}"
    )
    for mode, what in (
        ("paper direct", f"config/paper.yaml (the product), engine on this thread with Engine.run's GC policy, instant venue, {whole}"),
        ("paper paced", f"config/paper.yaml, the same engine alone, {paced}"),
        ("paper threaded", f"config/paper.yaml, {lockstep}"),
        ("mm3 direct", f"mm3 stress, engine on this thread with Engine.run's GC policy, instant venue, {whole}"),
        ("mm3 threaded", f"mm3 stress, {lockstep}"),
    ):
        row(mode, "p50", f"tick-to-order p50, {what}", target=TARGET_P50_US)
        row(mode, "p99", f"tick-to-order p99, {what}", target=TARGET_P99_US)
        row(mode, "p99.9", f"tick-to-order p99.9, {what}")
        if mode != "paper paced":  # its wall time per frame is mostly the recording's gaps
            row(mode, "us_per_frame", f"engine cost per recorded frame, {mode}", "us/frame")
    row("paper direct", "on_top_p50", "paper: strategy on_top alone when it requotes (p50), direct")
    row("paper paced", "on_top_p50", "paper: strategy on_top alone when it requotes (p50), paced")
    row("mm3 direct", "on_top_p50", "mm3: strategy on_top alone when it requotes (p50), direct")
    row("touch direct", "p50", "reference: tick-to-order p50, touch strategy, no risk chain, direct")
    orders = ours.get("mm3 direct", {}).get("orders", 0.0)
    paper_orders = ours.get("paper direct", {}).get("orders", 0.0)
    sec.notes.append(
        "paper = config/paper.yaml's strategy and whole risk chain (reconcile_guard and order-rate limits included), "
        f"read from the file like `botcore run` builds them; {paper_orders:,.0f} orders in the direct replay. "
        "mm3 = the first-party market maker, 3 levels a side, requoting on every mid move, behind config/paper.yaml's "
        f"risk chain (bench_engine.build); {orders:,.0f} orders in the direct replay, sent as cancel-replace. "
        "touch = one bid and one ask at the touch, no risk checks: the engine's own cost. "
        "direct replays frames back to back (each decision finds the last one's code and data cached); paced sleeps "
        "until the next frame is due by the recording, as the engine thread sleeps on its queue (bench_engine.paced), "
        f"{ours.get('paper paced', {}).get('orders', 0.0):,.0f} orders; threaded adds the real threads."
    )
    return sec


# ------------------------------------------------------------------------------------------------
# 3. Replay speed
# ------------------------------------------------------------------------------------------------


def section_replay(plan: Plan) -> Section:
    import bench_replay

    sec = Section("replay", "Replay speed: recorded events/s through the whole engine, as fast as possible")
    res = bench_replay.measure(repeat=plan.reps(3, 1), events=plan.replay_events, sockets_repeat=1)
    alone = res["venue alone"]["events_per_s"]
    step, adapter, sockets = res["venue step"], res["replay adapter"], res["sockets"]
    ok = verdict(step["events_per_s"] >= TARGET_REPLAY)
    sec.rows += [
        Row("replay", "in-process, paper venue step mode (matching, fills), one thread", step["events_per_s"],
            "events/s", "paper venue alone (no-op listener)", alone, target=f">= {TARGET_REPLAY:,}", verdict=ok),
        Row("replay", "in-process, replay adapter + engine thread + gateway pool (no matching)",
            adapter["events_per_s"], "events/s", "paper venue alone (no-op listener)", alone,
            target=f">= {TARGET_REPLAY:,}", verdict=verdict(adapter["events_per_s"] >= TARGET_REPLAY)),
        Row("replay", "sockets: embedded paper exchange + Binance adapter + engine thread", sockets["events_per_s"],
            "events/s", "in-process venue step (above)", step["events_per_s"]),
    ]  # fmt: skip
    sec.notes.append(
        f"{step['events']:,.0f} recorded events; orders/fills per run: venue step {step['orders']:,.0f}/{step['fills']:,.0f}, "
        f"replay adapter {adapter['orders']:,.0f}/0, sockets {sockets['orders']:,.0f}/{sockets['fills']:,.0f} "
        "(counts differ with the wiring: how far market frames queue ahead of the answers to orders).",
    )
    return sec


# ------------------------------------------------------------------------------------------------
# 4. Reconciliation
# ------------------------------------------------------------------------------------------------


def section_reconcile(plan: Plan) -> Section:
    import bench_reconcile

    sec = Section("reconcile", "Reconciliation cost")
    rest = bench_reconcile.rest_cost(runs=3 if plan.quick else 10)
    for job in ("reconcile_light", "reconcile_full"):
        r = rest[job]
        sec.rows.append(Row("reconcile", f"{job}: REST weight per run", r["weight"], "weight"))
        sec.rows.append(Row("reconcile", f"{job}: wall time per run (p50)", r["ms_p50"], "ms", digits=2))
    apply = bench_reconcile.apply_cost(repeat=50 if plan.quick else 200)
    sec.rows.append(
        Row(
            "reconcile",
            "engine-thread apply with the drift policy (40 orders, 20 assets)",
            apply["policy"],
            "us",
            "bare PositionCache.apply_snapshot",
            apply["bare"],
            higher_is_better=False,
            digits=1,
        )  # fmt: skip
    )
    sec.notes.append(
        f"REST: Binance adapter -> paper exchange in its own process, {rest['reconcile_light']['open_orders']:.0f} "
        "open orders; light = openOrders(symbol) + account, full = + myTrades (weights as the venue's headers count)."
    )
    return sec


# ------------------------------------------------------------------------------------------------
# 5. Gateway
# ------------------------------------------------------------------------------------------------


def section_gateway(plan: Plan) -> Section:
    import bench_gateway

    sec = Section(
        "gateway", "Gateway: WS API vs REST pool (python-binance), paper exchange in its own process"
    )
    orders, workers = (50 if plan.quick else 200), 4
    med = bench_gateway.measure(orders=orders, reps=plan.reps(3, 1), workers=workers, venue="process")
    ws, rest = med["ws_api"], med["rest"]
    for key, what in (
        ("wire_p50", "decided -> on the wire, p50"),
        ("wire_p99", "decided -> on the wire, p99"),
        ("rtt_p50", "request round trip, p50"),
        ("rtt_p99", "request round trip, p99"),
    ):
        sec.rows.append(Row("gateway", f"WS API {what}", ws[key], "us", "REST pool", rest[key],
                            higher_is_better=False, digits=0))  # fmt: skip
    sec.rows.append(
        Row(
            "gateway",
            f"WS API place+cancel round trips/s ({workers} in flight)",
            ws["pairs_per_s"],
            "pairs/s",
            "REST pool",
            rest["pairs_per_s"],
        )  # fmt: skip
    )
    return sec


# ------------------------------------------------------------------------------------------------
# 6. Journal and position cache
# ------------------------------------------------------------------------------------------------


def section_journal(plan: Plan) -> Section:
    import bench_journal

    sec = Section("journal", "Journal: one committed SQLite write per event")
    res = bench_journal.run(50 if plan.quick else 300, plan.reps(5, 2))
    for row in ("order", "fill"):
        sec.rows.append(Row("journal", f"record_{row}, botcore (WAL, synchronous=NORMAL)", res["botcore"][row], "us",
                            "SQLite defaults (rollback journal, FULL)", res["default"][row], higher_is_better=False,
                            digits=1))  # fmt: skip
    sec.rows.append(Row("journal", "order_submitted hook path (journal + metrics)", res["botcore"]["services"], "us",
                        digits=1))  # fmt: skip
    return sec


def section_position(plan: Plan) -> Section:
    import bench_position

    sec = Section("position", "Position cache: compiled vs pure twin")
    ops = (
        "apply_execution_report (NEW/TRADE/FILLED)",
        "apply_snapshot (5 assets, 10 orders)",
        "position(symbol)",
    )
    res = bench_position.measure(2_000 if plan.quick else 20_000, plan.reps(5, 3), only=ops)
    for op, (py_ns, c_ns) in res.items():
        sec.rows.append(Row("position", op, c_ns, "ns/op", "pure-Python twin", py_ns, higher_is_better=False))
    return sec


RUNNERS: dict[str, Callable[[Plan], Section]] = {
    "book": section_book,
    "engine": section_engine,
    "replay": section_replay,
    "reconcile": section_reconcile,
    "gateway": section_gateway,
    "journal": section_journal,
    "position": section_position,
}


# ------------------------------------------------------------------------------------------------
# main
# ------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick", action="store_true", help="small inputs, fewer repetitions (well under a minute)"
    )
    ap.add_argument("--only", default="", help=f"comma-separated sections: {','.join(SECTIONS)}")
    ap.add_argument("--repeat", type=int, default=None, help="repetitions per measurement (median reported)")
    ap.add_argument("--frames", type=int, default=None, help="recorded input size (see the module docstring)")
    ap.add_argument(
        "--nautilus-python",
        default=os.environ.get("BOTCORE_BENCH_NAUTILUS_PYTHON", DEFAULT_NAUTILUS),
        help="interpreter of a venv with nautilus-trader ('' to skip); default $BOTCORE_BENCH_NAUTILUS_PYTHON "
        f"or {DEFAULT_NAUTILUS}",
    )
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--threaded-frames", type=int, default=5_000, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.child == "engine":  # the pure-twin side of the engine section (BOTCORE_NO_EXTENSIONS=1)
        print(json.dumps(engine_measure(a.frames, a.repeat or 1, a.threaded_frames)))
        return 0
    names = [n.strip() for n in a.only.split(",") if n.strip()] or list(SECTIONS)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        print(f"unknown section(s) {unknown}; choose from {','.join(SECTIONS)}", file=sys.stderr)
        return 2
    if (a.repeat is not None and a.repeat < 1) or (a.frames is not None and a.frames < 1):
        print("--repeat and --frames must be >= 1", file=sys.stderr)
        return 2
    plan = Plan(a.quick, a.repeat, a.frames, a.nautilus_python or None)
    command = "python bench/run.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"botcore benchmarks: {command.strip()}")
    print(f"machine: {describe_machine()}")
    started = time.perf_counter()
    sections: list[Section] = []
    for name in names:
        t0 = time.perf_counter()
        print(f"  running {name} ...", file=sys.stderr, flush=True)
        try:
            sec = RUNNERS[name](plan)
        except Exception as exc:
            traceback.print_exc()
            sec = Section(name, name, error=f"{type(exc).__name__}: {exc}"[:160])
        sec.seconds = time.perf_counter() - t0
        sections.append(sec)
    print()
    for i, sec in enumerate(sections, 1):
        print(f"{i}. {sec.title}  ({sec.seconds:.0f} s)")
    print()
    for line in table_lines(sections):
        print(line)
    print()
    for i, sec in enumerate(sections, 1):
        for note in sec.notes:
            print(f"[{i}] {note}")
    total = time.perf_counter() - started
    print(f"\nx better = botcore / baseline for rates, baseline / botcore for times (>1: botcore wins). "
          f"Medians; total {total:.0f} s.")  # fmt: skip
    failed = [s.name for s in sections if s.error]
    if failed:
        print(f"FAILED sections: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
