"""Engine-thread cost of applying a reconcile snapshot: the policy layer against the bare cache.

A snapshot with ``--assets`` balances and ``--orders`` open orders (a few of them drifting) is
applied to a position cache (compiled when built) that matches it except for the drifts:

  bare       ``PositionCache.apply_snapshot(correct=True)``: the engine's default path
  policy     ``Reconciler.apply`` with every drift corrected: dry run + apply
  mixed      ``Reconciler.apply`` with balances logged, orders corrected: dry run + masked apply

Each repetition rebuilds the cache (not timed). Medians over repetitions, µs per snapshot, ratios
against ``bare``. This runs when a scheduled reconcile lands (seconds apart), never per book update.

``rest_cost`` (used by ``bench/run.py``) measures the other half, off the engine thread: REST
weight and wall time of one ``reconcile_light`` / ``reconcile_full`` job (``botcore.jobs.Jobs``)
through the real Binance adapter against the paper exchange in its own process, with resting
orders and a few trades on the account. Weights are what the adapter's limiter counted from the
venue's ``X-MBX-USED-WEIGHT-1M`` headers across each call (``FetchCost.weight``).

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


def apply_cost(orders: int = 40, assets: int = 20, repeat: int = 200) -> dict[str, float]:
    """Median µs per snapshot for each of ``bare``, ``policy``, ``mixed`` (+ ``drifts`` found)."""
    correct = Reconciler(ReconcilePolicy.from_mapping({"policy": {"order.missing_local": "correct"}}))
    mixed = Reconciler(ReconcilePolicy.from_mapping({"policy": {"balance": "log"}}))
    rows = {
        "bare": timed(lambda c, s: c.apply_snapshot(s, 50, correct=True), orders, assets, repeat),
        "policy": timed(lambda c, s: correct.apply(ReconcileSnapshot("b", s), c, 50), orders, assets, repeat),
        "mixed": timed(lambda c, s: mixed.apply(ReconcileSnapshot("b", s), c, 50), orders, assets, repeat),
    }
    cache, snap = build(orders, assets)
    rows["drifts"] = float(len(cache.apply_snapshot(snap, 50, correct=False)))
    return rows


def rest_cost(
    runs: int = 5, orders: int = 40, trades: int = 5, venue: str = "process"
) -> dict[str, dict[str, float]]:
    """REST weight and wall time per reconcile job: {"reconcile_light"|"reconcile_full": {weight,
    ms_p50, ms_max, calls}}, medians over ``runs`` jobs of each kind (interleaved)."""
    import sys
    from pathlib import Path
    from types import SimpleNamespace

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_gateway import adapter_for, quote_price, start_venue

    from botcore.jobs import Jobs
    from botcore.model import OrderRequest, OrderType

    endpoints, close = start_venue(venue)
    try:
        adapter = adapter_for(endpoints, "rest", 2)
        price = quote_price(adapter)
        tick = Decimal("0.01")
        for i in range(orders):  # resting, never filled: what openOrders returns
            out, _ = adapter.submit(OrderRequest(SYM, Side.BUY, Decimal("0.0002"), price - i * tick,
                                                 client_order_id=f"bcrest-{i}"))  # fmt: skip
            if out.status is not OrderStatus.NEW:
                raise RuntimeError(f"resting order refused: {out}")
        for i in range(trades):  # takers: rows for myTrades
            adapter.submit(OrderRequest(SYM, Side.BUY, Decimal("0.0005"), None, OrderType.MARKET,
                                        client_order_id=f"bctake-{i}"))  # fmt: skip
        events: list[Any] = []
        handle = SimpleNamespace(
            adapter=adapter, put=events.append, symbols=(SYM,), is_own_order=lambda cid: True
        )
        jobs = Jobs()
        wall: dict[str, list[float]] = {"reconcile_light": [], "reconcile_full": []}
        for _ in range(max(1, runs)):
            for job in wall:
                t0 = time.perf_counter()
                getattr(jobs, job)(handle, {})
                wall[job].append((time.perf_counter() - t0) * 1e3)
        adapter.stop()
    finally:
        close()
    out: dict[str, dict[str, float]] = {}
    for job, ms in wall.items():
        costs = jobs.costs(job)
        per_run = len(costs) // len(ms)
        weights = [sum(c.weight or 0 for c in costs[i : i + per_run]) for i in range(0, len(costs), per_run)]
        out[job] = {
            "weight": statistics.median(weights),
            "ms_p50": statistics.median(ms),
            "ms_max": max(ms),
            "calls": float(per_run),
            "open_orders": float(len(events[-1].snapshot.open_orders)) if events else 0.0,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=40)
    parser.add_argument("--assets", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=200)
    a = parser.parse_args()
    rows = apply_cost(a.orders, a.assets, a.repeat)
    drifts = int(rows.pop("drifts"))
    print(
        f"reconcile apply, µs per snapshot ({a.assets} assets, {a.orders} orders, {drifts} drifts; "
        f"{'compiled' if USING_EXTENSIONS else 'pure'} cache; median of {a.repeat})"
    )
    print(f"{'row':<8}{'µs':>10}{'ratio':>9}")
    for name, us in rows.items():
        print(f"{name:<8}{us:>10.1f}{us / rows['bare']:>8.2f}x")


if __name__ == "__main__":
    main()
