"""Engine-thread cost of applying a reconcile snapshot: the policy layer against the bare cache.

A snapshot with ``--assets`` balances and ``--orders`` open orders (a few of them drifting) is
applied to a position cache (compiled when built) that matches it except for the drifts:

  bare       ``PositionCache.apply_snapshot(correct=True)``: the engine's default path
  policy     ``Reconciler.apply`` with every drift corrected: dry run + apply
  mixed      ``Reconciler.apply`` with balances logged, orders corrected: dry run + masked apply

Each repetition rebuilds the cache (not timed). Medians over repetitions, µs per snapshot, ratios
against ``bare``. This runs when a scheduled reconcile lands (seconds apart), never per book update.

Run: ``python bench/bench_reconcile.py [--orders N] [--assets N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from decimal import Decimal
from typing import Any

from botcore.core import USING_EXTENSIONS, PositionCache
from botcore.events import ReconcileSnapshot
from botcore.model import (
    AccountSnapshot,
    AccountUpdate,
    Balance,
    ExecutionReport,
    Instrument,
    OpenOrder,
    OrderStatus,
    Side,
)
from botcore.reconcile import ReconcilePolicy, Reconciler

SYM = "BTCUSDT"
INST = Instrument(SYM, "BTC", "USDT", Decimal("0.01"), Decimal("0.00001"))


def build(orders: int, assets: int) -> tuple[Any, AccountSnapshot]:
    cache = PositionCache()
    cache.add_instrument(INST)
    names = ["USDT", "BTC"] + [f"A{i}" for i in range(assets - 2)]
    cache.apply_account_update(
        AccountUpdate(tuple(Balance(a, Decimal("100"), Decimal(0)) for a in names), 10)
    )
    venue: list[OpenOrder] = []
    for i in range(orders):
        cid = f"bcb1-{i}"
        cache.apply_execution_report(
            ExecutionReport(
                SYM,
                cid,
                i + 1,
                Side.BUY,
                "LIMIT_MAKER",
                OrderStatus.NEW,
                "NEW",
                Decimal("100"),
                Decimal("0.002"),
                Decimal(0),
                Decimal(0),
                event_time_ms=20,
                transaction_time_ms=20,
            )
        )
        if i % 10 != 0:  # every tenth order was cancelled behind our back
            venue.append(
                OpenOrder(
                    SYM,
                    cid,
                    i + 1,
                    Side.BUY,
                    "LIMIT_MAKER",
                    OrderStatus.NEW,
                    Decimal("100"),
                    Decimal("0.002"),
                    Decimal(0),
                    Decimal(0),
                    20,
                    20,
                )
            )
    balances = tuple(
        Balance(a, Decimal("100") if i % 5 else Decimal("99"), Decimal(0)) for i, a in enumerate(names)
    )
    return cache, AccountSnapshot(balances, tuple(venue), 30, 40)


def timed(fn: Any, orders: int, assets: int, repeat: int) -> float:
    out = []
    for _ in range(repeat):
        cache, snap = build(orders, assets)
        t0 = time.perf_counter()
        fn(cache, snap)
        out.append((time.perf_counter() - t0) * 1e6)
    return statistics.median(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=40)
    parser.add_argument("--assets", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=200)
    a = parser.parse_args()
    correct = Reconciler(ReconcilePolicy.from_mapping({"policy": {"order.missing_local": "correct"}}))
    mixed = Reconciler(ReconcilePolicy.from_mapping({"policy": {"balance": "log"}}))
    rows = {
        "bare": timed(lambda c, s: c.apply_snapshot(s, 50, correct=True), a.orders, a.assets, a.repeat),
        "policy": timed(
            lambda c, s: correct.apply(ReconcileSnapshot("b", s), c, 50), a.orders, a.assets, a.repeat
        ),
        "mixed": timed(
            lambda c, s: mixed.apply(ReconcileSnapshot("b", s), c, 50), a.orders, a.assets, a.repeat
        ),
    }
    cache, snap = build(a.orders, a.assets)
    drifts = len(cache.apply_snapshot(snap, 50, correct=False))
    print(
        f"reconcile apply, µs per snapshot ({a.assets} assets, {a.orders} orders, {drifts} drifts; "
        f"{'compiled' if USING_EXTENSIONS else 'pure'} cache; median of {a.repeat})"
    )
    print(f"{'row':<8}{'µs':>10}{'ratio':>9}")
    for name, us in rows.items():
        print(f"{name:<8}{us:>10.1f}{us / rows['bare']:>8.2f}x")


if __name__ == "__main__":
    main()
