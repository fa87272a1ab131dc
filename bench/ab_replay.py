"""A/B of tick-to-order between two built checkouts: alternating single replays, paired ratios.

On a noisy machine a neighbour can slow everything 2-3x for minutes, so two builds measured one
after the other are compared in different weather. This alternates one-process replays of the two
checkouts (A B, B A, A B, ...) and reports each side's medians and the median of the paired
ratios B/A, which is what to quote.

Each replay is ``bench_engine._replay_direct`` (the ``paper`` setup: config/paper.yaml's strategy
and risk chain, the engine driven directly with an instant venue, ``Engine.idle`` between frames,
``Engine.run``'s GC policy) over the whole shipped capture, run from the checkout under test with
its own compiled modules. Build each checkout in place first:

    git worktree add /tmp/before <commit>
    cd /tmp/before && python setup.py build_ext --inplace && for p in plugins/botcore-strategy-marketmaker \\
        plugins/botcore-risk-basic; do (cd $p && python setup.py build_ext --inplace); done

Run: ``python bench/ab_replay.py [--pairs 8] [--setup paper|mm3] [--b-taskset CPUS] CHECKOUT_A CHECKOUT_B``

``--b-taskset 1`` runs B's replays under ``taskset -c 1`` (the whole process on CPU 1): with the
same checkout as A and B, what pinning a fresh process does (``engine.cpu`` pins only the engine
thread, once ``Engine.run`` starts).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

PLUGINS = ("plugins/botcore-strategy-marketmaker", "plugins/botcore-risk-basic")
METRICS = ("p50", "p99", "p99.9", "orders", "us_per_frame")

BUILT_CHECKOUT = """
import sys
root = sys.argv[1]
sys.path.insert(0, root + "/bench")
import bench_engine as B
import botcore.engine
if not botcore.engine.__file__.startswith(root) or botcore.engine.__file__.endswith(".py"):
    sys.exit(f"{root}: botcore.engine came from {botcore.engine.__file__}, not a build in this checkout")
"""
"""Start of a child script run by ``checkout_env``'s interpreter with the checkout as ``argv[1]``:
imports ``bench_engine`` as ``B`` from it, and refuses to measure anything but its own build."""

_CHILD = BUILT_CHECKOUT + """
import json
setup = sys.argv[2]
frames, snap, snap_at = B.load(10**9)
eng, elapsed = B._replay_direct(setup, frames, snap, snap_at, True, timed=False)
h = eng.tick_to_order
print(json.dumps([h.percentile(50), h.percentile(99), h.percentile(99.9), h.count, elapsed / len(frames) * 1e6]))
"""


def checkout_env(checkout: Path) -> dict[str, str]:
    """This environment with botcore and the first-party plugins imported from ``checkout``'s
    build (never the pure sources)."""
    env = {k: v for k, v in os.environ.items() if k != "BOTCORE_NO_EXTENSIONS"}
    env["PYTHONPATH"] = os.pathsep.join([str(checkout), *(str(checkout / p) for p in PLUGINS)])
    return env


def checkouts_parser(description: str | None) -> argparse.ArgumentParser:
    """The arguments every A/B takes: two built checkouts and the setup."""
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", type=Path, help="checkout A (the reference)")
    ap.add_argument("b", type=Path, help="checkout B")
    ap.add_argument("--setup", choices=("paper", "mm3"), default="paper")
    return ap


def replay(checkout: Path, setup: str, taskset: str | None = None) -> list[float]:
    """One replay in a fresh process that imports botcore and the plugins from ``checkout``
    (under ``taskset -c <taskset>`` if given)."""
    pin = ["taskset", "-c", taskset] if taskset else []
    out = subprocess.run(
        [*pin, sys.executable, "-c", _CHILD, str(checkout), setup],
        env=checkout_env(checkout),
        cwd=checkout,  # ``python -c`` puts the working directory first on sys.path
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"replay in {checkout} failed:\n{out.stderr[-2000:]}")
    return [float(x) for x in json.loads(out.stdout.strip().splitlines()[-1])]


def main() -> None:
    ap = checkouts_parser(__doc__)
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--b-taskset", metavar="CPUS", default=None, help="run B's replays under taskset -c CPUS")
    args = ap.parse_args()
    a, b = ("A", args.a.resolve()), ("B", args.b.resolve())  # labels: A and B may be one checkout
    runs: dict[tuple[str, Path], list[list[float]]] = {a: [], b: []}
    for i in range(args.pairs):
        for side in (a, b) if i % 2 == 0 else (b, a):
            runs[side].append(replay(side[1], args.setup, args.b_taskset if side is b else None))
    print(f"{args.pairs} alternating pairs of single replays, setup {args.setup}; medians (µs):")
    print(f"{'checkout':<40}" + "".join(f"{m:>14}" for m in METRICS) + f"{'p99 range':>16}")
    for side in (a, b):
        meds = [statistics.median(r[k] for r in runs[side]) for k in range(len(METRICS))]
        p99s = [r[1] for r in runs[side]]
        name = f"{side[0]} {side[1]}" + (f" (taskset -c {args.b_taskset})" if side is b and args.b_taskset else "")
        print(
            f"{name:<40}"
            + "".join(f"{v:>14.1f}" for v in meds)
            + f"{f'{min(p99s):.0f}-{max(p99s):.0f}':>16}"
        )
    for k, name in enumerate(METRICS[:3]):
        ratios = [rb[k] / ra[k] for ra, rb in zip(runs[a], runs[b], strict=True)]
        print(f"B/A {name}: median of paired ratios {statistics.median(ratios):.3f} (range {min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
