"""A/B of the instructions the order path executes, between two built checkouts: deterministic.

Wall-clock latency on this machine moves 2-3x with a neighbour's load (``bench/ab_replay.py``
pairs replays to cope); instruction counts do not move at all. This replays the first
``--frames`` frames of the shipped capture once per checkout under ``valgrind --tool=callgrind``
(both at once, one per core: the counts do not depend on timing) and prints, per hot function,
the instructions executed inside it over the whole replay, callees included, and the ratio B/A.
Fewer instructions is not lower latency (cache misses are most of a requote, see
``botcore/compiled.py``), but it is the part of a change no weather can fake.

The replay is ``bench_engine._replay_direct`` as ``ab_replay.py`` runs it (``paper`` setup: the
engine driven directly, instant venue, ``Engine.idle`` between frames), except that the engine
clock reads the recorded time only, so that both replays take the same decisions (the order
counts printed must agree). Rows:

* ``decision``: ``Engine._quote``, a top-of-book change: the strategy and, when it requotes,
  diff, vetting, tracking and hand-off of the orders;
* ``rehearsal``: ``Engine._rehearse``, the idle rehearsal of that path;
* ``vetting``: ``Engine._vetted_order``, the risk chain and the order's construction (real and
  rehearsed orders);
* ``strategy on_top``, ``tracker.track``, ``frame routing`` (``Engine._on_market``: the book
  update, and the decision when the top changed), and the whole process.

Build each checkout in place first (see ``ab_replay.py``). Needs valgrind.

Run: ``python bench/ab_instructions.py [--frames 20000] [--setup paper|mm3] CHECKOUT_A CHECKOUT_B``
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


def start(checkout: Path, setup: str, frames: int, out: Path) -> subprocess.Popen[str]:
    env = checkout_env(checkout)
    env["PYTHONHASHSEED"] = "0"  # string hashes decide dict probing: the same in both replays
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-c", _CHILD]
    return subprocess.Popen(
        [*cmd, str(checkout), setup, str(frames)], env=env, cwd=checkout, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )


def inclusive(profile: Path) -> tuple[int, dict[str, int]]:
    """(whole process, {row: instructions inside the row's function, callees included})."""
    text = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(profile)],
        capture_output=True, text=True, check=True,
    ).stdout
    total = int(re.search(r"^\s*([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", text, re.M).group(1).replace(",", ""))  # type: ignore[union-attr]
    rows = {}
    for name, pattern in ROWS:
        m = re.search(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+\S*:" + pattern + r" \[", text, re.M)
        rows[name] = int(m.group(1).replace(",", "")) if m else 0
    return total, rows


def main() -> None:
    ap = checkouts_parser(__doc__)
    ap.add_argument("--frames", type=int, default=20_000)
    args = ap.parse_args()
    if not shutil.which("valgrind") or not shutil.which("callgrind_annotate"):
        raise SystemExit("needs valgrind (callgrind) on PATH")
    with tempfile.TemporaryDirectory() as tmp:
        outs = [Path(tmp) / "a.out", Path(tmp) / "b.out"]
        procs = [start(c.resolve(), args.setup, args.frames, o) for c, o in zip((args.a, args.b), outs, strict=True)]
        orders = []
        for checkout, proc in zip((args.a, args.b), procs, strict=True):
            stdout, stderr = proc.communicate()
            if proc.returncode != 0:
                raise SystemExit(f"replay in {checkout} failed:\n{stderr[-2000:]}")
            orders.append(int(stdout.strip().splitlines()[-1]))
        (ta, ra), (tb, rb) = inclusive(outs[0]), inclusive(outs[1])
    print(f"instructions over the first {args.frames} frames, setup {args.setup} (orders A {orders[0]}, B {orders[1]}):")
    print(f"{'inside':<20}{'A':>16}{'B':>16}{'B/A':>8}")
    for name, _ in ROWS:
        ratio = f"{rb[name] / ra[name]:.3f}" if ra[name] else "-"
        print(f"{name:<20}{ra[name]:>16,}{rb[name]:>16,}{ratio:>8}")
    print(f"{'whole process':<20}{ta:>16,}{tb:>16,}{tb / ta:>8.3f}")


if __name__ == "__main__":
    main()
