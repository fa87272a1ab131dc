"""Market maker requote cost: ``compute_quotes`` (integer-tick path) vs the Decimal reference.

Over the first 3000 recorded BTCUSDT bookTicker tops, with the ``mm3`` setup of
``bench_engine.py`` (3 levels a side at the touch, 0.001 BTC) and a notional-sized variant (its
quantities still go through Decimal). Rows, in us per call (medians over ``--reps``, all in this
process, interleaved):

* ``reference``: the Decimal implementation as it was (``tests/strategy/test_fastpath.py``);
* ``ticks, cold``: the integer path with its memos cleared before every call (every top new);
* ``ticks, warm``: the integer path as a long run sees it (memoized sides and Quote objects).

Run: ``python bench/bench_marketmaker.py [--reps 5]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from common import interleaved, medians

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "strategy"))

from botcore_strategy_marketmaker import strategy  # noqa: E402
from botcore_strategy_marketmaker.params import parse_params  # noqa: E402
from mm_support import btcusdt, recorded_tops  # noqa: E402
from test_fastpath import reference_compute_quotes  # noqa: E402

SETUPS: dict[str, dict[str, Any]] = {
    "mm3 amount": {
        "amount": "0.001",
        "levels": 3,
        "bid_distance": {"ticks": 0},
        "ask_distance": {"ticks": 0},
    },
    "mm3 notional": {"notional": "60", "levels": 3, "level_spacing": {"ticks": 2}},
}
ZERO = Decimal(0)


def per_call(fn: Callable[[Any], Any], tops: list[Any]) -> Callable[[], float]:
    def run() -> float:
        t0 = time.perf_counter_ns()
        for t in tops:
            fn(t)
        return (time.perf_counter_ns() - t0) / len(tops) / 1000

    return run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    inst = btcusdt()
    tops = [t for _, t in recorded_tops()]
    print(f"compute_quotes over {len(tops)} recorded BTCUSDT tops, us per call, median of {args.reps} reps")
    print(
        f"{'setup':14s} {'reference':>10s} {'ticks,cold':>11s} {'ticks,warm':>11s} {'ref/cold':>9s} {'ref/warm':>9s}"
    )
    for name, raw in SETUPS.items():
        p = parse_params(raw)
        grid = strategy._grid(p, inst)
        assert grid is not None, "setup must take the integer path"

        def cold(t: Any, p: Any = p, grid: Any = grid) -> Any:
            grid.memo.clear()
            grid.quotes.clear()
            return strategy.compute_quotes(p, inst, t)

        def reference(t: Any, p: Any = p) -> Any:
            return reference_compute_quotes(p, inst, t, ZERO, (), (), (), None)

        def warm(t: Any, p: Any = p) -> Any:
            return strategy.compute_quotes(p, inst, t)

        m = medians(
            interleaved(
                {
                    "ref": per_call(reference, tops),
                    "cold": per_call(cold, tops),
                    "warm": per_call(warm, tops),
                },
                args.reps,
            )
        )
        print(
            f"{name:14s} {m['ref']:10.2f} {m['cold']:11.2f} {m['warm']:11.2f} "
            f"{m['ref'] / m['cold']:9.2f} {m['ref'] / m['warm']:9.2f}"
        )


if __name__ == "__main__":
    main()
