"""PositionCache speed: compiled vs pure twin, same process, same inputs.

Run: ``python bench/bench_position.py [--reps 7] [--n 20000]``. Prints median ns per operation
over ``reps`` repetitions for each implementation and the py/c ratio.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

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

D = Decimal
INSTRUMENT = Instrument("BTCUSDT", "BTC", "USDT", D("0.01"), D("0.00001"))


def lifecycle_reports(n: int) -> list[ExecutionReport]:
    """NEW, partial TRADE, FILLED TRADE for n orders, alternating sides (3n reports)."""
    out = []
    for i in range(n):
        side = Side.BUY if i % 2 == 0 else Side.SELL
        px = D("60000.00") + D(i % 50) / 100
        common = dict(
            symbol="BTCUSDT",
            client_order_id=f"bot-{i}",
            order_id=i + 1,
            side=side,
            order_type="LIMIT_MAKER",
            price=px,
            orig_qty=D("0.002"),
        )
        out.append(
            ExecutionReport(
                **common,
                status=OrderStatus.NEW,
                execution_type="NEW",
                cum_qty=D(0),
                cum_quote=D(0),
                event_time_ms=3 * i,
            )
        )
        for k, (cum, status) in enumerate(
            ((D("0.001"), OrderStatus.PARTIALLY_FILLED), (D("0.002"), OrderStatus.FILLED))
        ):
            out.append(
                ExecutionReport(
                    **common,
                    status=status,
                    execution_type="TRADE",
                    cum_qty=cum,
                    cum_quote=cum * px,
                    last_qty=D("0.001"),
                    last_price=px,
                    commission=D("0.00000100") if side is Side.BUY else D("0.06"),
                    commission_asset="BTC" if side is Side.BUY else "USDT",
                    trade_id=2 * i + k,
                    is_maker=True,
                    event_time_ms=3 * i + 1 + k,
                    transaction_time_ms=3 * i + 1 + k,
                )
            )
    return out


def timed_pair(fn_py: Callable[[], int], fn_c: Callable[[], int], reps: int) -> tuple[float, float]:
    """Median ns per operation of each; the two alternate every repetition so both see the same load."""
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(reps):
        for i, fn in enumerate((fn_py, fn_c)):
            t0 = time.perf_counter_ns()
            ops = fn()
            samples[i].append((time.perf_counter_ns() - t0) / ops)
    return statistics.median(samples[0]), statistics.median(samples[1])


def cases(mod: Any, n: int) -> dict[str, Callable[[], int]]:
    reports = lifecycle_reports(n)
    updates = [
        AccountUpdate((Balance("BTC", D(i) / 1000, D("0.002")), Balance("USDT", D(1000 + i), D(0))), i)
        for i in range(n)
    ]
    snap = AccountSnapshot(
        balances=tuple(Balance(a, D("1.5"), D(0)) for a in ("BTC", "USDT", "BNB", "ETH", "XRP")),
        open_orders=tuple(
            OpenOrder(
                "BTCUSDT", f"o{i}", i, Side.BUY, "LIMIT", OrderStatus.NEW, D(60000), D(1), D(0), D(0), 1, 1
            )
            for i in range(10)
        ),
        update_time_ms=10,
        fetched_at_ms=10,
    )

    def fresh() -> Any:
        c = mod.PositionCache()
        c.add_instrument(INSTRUMENT)
        return c

    warm = fresh()
    for r in reports[:300]:
        warm.apply_execution_report(r)
    warm.apply_account_update(updates[0])
    view = warm.view()

    def execution_reports() -> int:
        c = fresh()
        apply = c.apply_execution_report
        for r in reports:
            apply(r)
        return len(reports)

    def account_updates() -> int:
        c = fresh()
        apply = c.apply_account_update
        for u in updates:
            apply(u)
        return len(updates)

    def reads(fn: Callable[[], Any]) -> Callable[[], int]:
        def run() -> int:
            for _ in range(n):
                fn()
            return n

        return run

    def snapshots() -> int:
        k = max(1, n // 50)
        for _ in range(k):
            c = fresh()
            c.apply_snapshot(snap, 20)
        return k

    return {
        "apply_execution_report (NEW/TRADE/FILLED)": execution_reports,
        "apply_account_update (2 assets)": account_updates,
        "apply_snapshot (5 assets, 10 orders)": snapshots,
        "free(asset)": reads(lambda: warm.free("BTC")),
        "position(symbol)": reads(lambda: warm.position("BTCUSDT")),
        "view.realized_pnl(symbol)": reads(lambda: view.realized_pnl("BTCUSDT")),
        "open_order_count(symbol)": reads(lambda: warm.open_order_count("BTCUSDT")),
    }


def measure(
    n: int = 20_000, reps: int = 7, only: tuple[str, ...] | None = None
) -> dict[str, tuple[float, float]]:
    """{operation: (pure twin ns/op, compiled ns/op)}, medians over interleaved reps (``bench/run.py``)."""
    py = importlib.import_module("botcore.core._position_py")
    c = importlib.import_module("botcore.core._position_c")
    cases_py = cases(py, n)
    cases_c = cases(c, n)
    return {k: timed_pair(cases_py[k], cases_c[k], reps) for k in cases_py if only is None or k in only}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--n", type=int, default=20_000)
    args = parser.parse_args()
    py = importlib.import_module("botcore.core._position_py")
    c = importlib.import_module("botcore.core._position_c")
    cases_py = cases(py, args.n)
    cases_c = cases(c, args.n)
    width = max(len(k) for k in cases_py)
    print(f"PositionCache, median ns/op over {args.reps} interleaved reps (n={args.n})")
    print(f"{'operation':<{width}}  {'py':>10}  {'c':>10}  {'py/c':>6}")
    for k in cases_py:
        t_py, t_c = timed_pair(cases_py[k], cases_c[k], args.reps)
        print(f"{k:<{width}}  {t_py:>10.0f}  {t_c:>10.0f}  {t_py / t_c:>6.2f}")


if __name__ == "__main__":
    main()
