"""A/B of the instructions the order path executes, between two built checkouts: deterministic.

Wall-clock latency on this machine moves 2-3x with a neighbour's load (``bench/ab_replay.py``
pairs replays to cope); instruction counts do not move at all. This replays the first
``--frames`` frames of the shipped capture once per checkout under ``valgrind --tool=callgrind``
(both at once, one per core: the counts do not depend on timing) and prints, per hot function,
the instructions executed inside it over the whole replay, callees included, and the ratio B/A.
Fewer instructions is not lower latency (cache misses are most of a requote, see
``botcore/compiled.py``), but it is the part of a change no weather can fake.

``--cache-sim`` also counts, with callgrind's cache simulator, the first-level cache misses inside
each row: instruction fetches (``I1 misses``) and data reads and writes (``D1 misses``). A requote
runs after hundreds of frames of other work, so the code and data it touches are mostly not in
the first-level caches; these counts are how much of it a change makes the CPU fetch again (the
simulated caches are this CPU's sizes, with no neighbour: a deterministic footprint, not a time).

The replay is ``bench_engine._replay_direct`` as ``ab_replay.py`` runs it (``paper`` setup: the
engine driven directly, instant venue, ``Engine.idle`` between frames), except that the engine
clock reads the recorded time only, so that both replays take the same decisions (the order
counts printed must agree). Rows:

* ``decision``: ``Engine._quote``, a top-of-book change: the strategy and, when it requotes,
  diff, vetting, tracking and hand-off of the orders;
* ``requote``: ``Engine._apply_quotes``, the part of a decision after the strategy asked for new
  quotes: diff, vetting, tracking and hand-off of the orders;
* ``rehearsal``: ``Engine._rehearse``, the idle rehearsal of that path;
* ``vetting``: ``Engine._vetted_order``, the risk chain and the order's construction (real and
  rehearsed orders);
* ``strategy on_top``, ``tracker.track``, ``frame routing`` (``Engine._on_market``: the book
  update, and the decision when the top changed), and the whole process.

Build each checkout in place first (see ``ab_replay.py``). Needs valgrind.

Run: ``python bench/ab_instructions.py [--frames 20000] [--setup paper|mm3] [--cache-sim] CHECKOUT_A CHECKOUT_B``
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ab_replay import BUILT_CHECKOUT, checkout_env, checkouts_parser

ROWS = (
    ("decision", r"__pyx_pw_7botcore_6engine_6Engine_\d+_quote"),
    ("requote", r"__pyx_pw_7botcore_6engine_6Engine_\d+_apply_quotes"),
    ("rehearsal", r"__pyx_pw_7botcore_6engine_6Engine_\d+_rehearse"),
    ("vetting", r"__pyx_pw_7botcore_6engine_6Engine_\d+_vetted_order"),
    ("strategy on_top", r"__pyx_pw_\d+botcore_strategy_marketmaker_\d+strategy_\d+MarketMaker_\d+on_top"),
    ("tracker.track", r"__pyx_pw_7botcore_6orders_\d+OrderTracker_\d+track"),
    ("frame routing", r"__pyx_pw_7botcore_6engine_6Engine_\d+_on_market"),
)

_CHILD = BUILT_CHECKOUT + """
setup, n = sys.argv[2], int(sys.argv[3])
def still_clock(start_ns):
    # Recorded time only: under valgrind a frame takes ~50x longer, which must not change what
    # the strategy and the rate windows decide (the two replays must do the same work).
    now = [start_ns]
    def clock():
        return now[0]
    def stamp(rec_ns):
        now[0] = max(now[0], rec_ns)
        return now[0]
    return clock, stamp
B.recording_clock = still_clock
frames, snap, snap_at = B.load(n)
eng, _ = B._replay_direct(setup, frames, snap, snap_at, True, timed=False)
print(eng.n_orders)
"""


EVENTS = {"Ir": "instructions", "I1mr": "I1 misses", "D1": "D1 misses"}
"""What a table can show: callgrind's events (``D1`` = its ``D1mr`` + ``D1mw``) and their titles."""


def start(checkout: Path, setup: str, frames: int, out: Path, cache_sim: bool) -> subprocess.Popen[str]:
    env = checkout_env(checkout)
    env["PYTHONHASHSEED"] = "0"  # string hashes decide dict probing: the same in both replays
    cmd = ["valgrind", "--tool=callgrind", f"--cache-sim={'yes' if cache_sim else 'no'}"]
    cmd += [f"--callgrind-out-file={out}", sys.executable, "-c", _CHILD]
    return subprocess.Popen(
        [*cmd, str(checkout), setup, str(frames)], env=env, cwd=checkout, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )


def inclusive(profile: Path, events: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """{event: {row: count inside the row's function, callees included; "whole process": total}}."""
    shown = [e for e in events if e != "D1"] + (["D1mr", "D1mw"] if "D1" in events else [])
    text = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", f"--show={','.join(shown)}", str(profile)],
        capture_output=True, text=True, check=True,
    ).stdout
    column = r"\s*([\d,]+) \(\s*[\d.]+%\)"

    def counts(line_pattern: str) -> dict[str, int]:
        m = re.search(r"^" + column * len(shown) + line_pattern, text, re.M)
        values = [int(v.replace(",", "")) for v in m.groups()] if m else [0] * len(shown)
        by_event = dict(zip(shown, values, strict=True))
        if "D1" in events:
            by_event["D1"] = by_event.pop("D1mr") + by_event.pop("D1mw")
        return by_event

    rows = {name: counts(r"\s+\S*:" + pattern + r" \[") for name, pattern in ROWS}
    rows["whole process"] = counts(r"\s+PROGRAM TOTALS")
    return {e: {name: rows[name][e] for name in rows} for e in events}


def main() -> None:
    ap = checkouts_parser(__doc__)
    ap.add_argument("--frames", type=int, default=20_000)
    ap.add_argument("--cache-sim", action="store_true", help="also count first-level cache misses (slower)")
    args = ap.parse_args()
    if not shutil.which("valgrind") or not shutil.which("callgrind_annotate"):
        raise SystemExit("needs valgrind (callgrind) on PATH")
    events = ("Ir", "I1mr", "D1") if args.cache_sim else ("Ir",)
    with tempfile.TemporaryDirectory() as tmp:
        outs = [Path(tmp) / "a.out", Path(tmp) / "b.out"]
        procs = [
            start(c.resolve(), args.setup, args.frames, o, args.cache_sim)
            for c, o in zip((args.a, args.b), outs, strict=True)
        ]
        orders = []
        for checkout, proc in zip((args.a, args.b), procs, strict=True):
            stdout, stderr = proc.communicate()
            if proc.returncode != 0:
                raise SystemExit(f"replay in {checkout} failed:\n{stderr[-2000:]}")
            orders.append(int(stdout.strip().splitlines()[-1]))
        a, b = inclusive(outs[0], events), inclusive(outs[1], events)
    print(f"over the first {args.frames} frames, setup {args.setup} (orders A {orders[0]}, B {orders[1]}):")
    for event in events:
        print(f"\n{EVENTS[event] + ' inside':<22}{'A':>16}{'B':>16}{'B/A':>8}")
        for name in [*(n for n, _ in ROWS), "whole process"]:
            va, vb = a[event][name], b[event][name]
            ratio = f"{vb / va:.3f}" if va else "-"
            print(f"{name:<22}{va:>16,}{vb:>16,}{ratio:>8}")


if __name__ == "__main__":
    main()
