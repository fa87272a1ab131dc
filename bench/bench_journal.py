"""Journal write cost on the engine thread: botcore's settings against common SQLite setups.

Every write is one committed transaction (what the per-event hooks do). Compared in one process,
same schema, same code path, only the PRAGMAs differ:

  botcore    WAL, synchronous=NORMAL, no auto-checkpoint (checkpoints run off the engine thread)
  wal+full   WAL, synchronous=FULL: an fsync of the WAL per commit
  default    SQLite's defaults: rollback journal (DELETE), synchronous=FULL

Rows: ``order`` (record_order: order row + event), ``outcome`` (record_outcome: event + status
update), ``fill`` (record_fill: fill + order update + event), ``services`` (the whole
``botcore_order_submitted`` path through the services plugin, journal + metrics). Figures are
medians over repetitions of the mean µs per write; ratios against ``botcore``.

Run: ``python bench/bench_journal.py [--writes N] [--repeat R]`` (writes into a temp folder; the
fsync-bound rows depend entirely on the disk).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from botcore.journal import Journal
from botcore.model import Fill, OrderOutcome, OrderRequest, OrderStatus, OrderType, Side

SETUPS: dict[str, tuple[str, ...]] = {
    "botcore": (),
    "wal+full": ("PRAGMA synchronous=FULL",),
    "default": ("PRAGMA journal_mode=DELETE", "PRAGMA synchronous=FULL"),
}


def _journal(folder: Path, name: str, pragmas: tuple[str, ...]) -> Journal:
    j = Journal(folder / f"{name}.sqlite")
    for p in pragmas:
        j._conn.execute(p)
    j.start_run(name="bench", run_id="b1", id_prefix="bcb1-")
    return j


def _orders(n: int, start: int) -> list[OrderRequest]:
    return [
        OrderRequest(
            "BTCUSDT",
            Side.BUY,
            Decimal("0.001"),
            Decimal("60000.01"),
            OrderType.LIMIT_MAKER,
            None,
            f"bcb1-{start + i}",
            "mm",
            "L0",
        )
        for i in range(n)
    ]


def _time(write: Callable[[object], object], items: list, n: int) -> float:
    """Mean µs per call of ``write(item)``."""
    t0 = time.perf_counter()
    for item in items:
        write(item)
    return (time.perf_counter() - t0) / n * 1e6


def run(writes: int, repeat: int) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, pragmas in SETUPS.items():
            j = _journal(folder, name, pragmas)
            rows = results.setdefault(name, {"order": [], "outcome": [], "fill": []})
            seq = 0
            for _ in range(repeat):
                orders = _orders(writes, seq)
                seq += writes
                rows["order"].append(_time(j.record_order, orders, writes))
                outs = [
                    OrderOutcome(
                        "new", "BTCUSDT", o.client_order_id, OrderStatus.NEW, order_id=i, sent_ns=1, done_ns=2
                    )
                    for i, o in enumerate(orders)
                ]
                rows["outcome"].append(_time(j.record_outcome, outs, writes))
                fills = [
                    Fill(
                        "BTCUSDT",
                        o.client_order_id,
                        i,
                        seq * 10 + i,
                        Side.BUY,
                        Decimal("60000.01"),
                        Decimal("0.001"),
                        Decimal("0.06"),
                        "USDT",
                        True,
                        i,
                    )
                    for i, o in enumerate(orders)
                ]
                rows["fill"].append(_time(j.record_fill, fills, writes))
            j.close()
        # the whole hook path, botcore settings
        from botcore.builtin_services import Services
        from botcore.prometheus import PrometheusMetrics

        svc = Services()
        svc.journal = _journal(folder, "services", ())
        svc.metrics = PrometheusMetrics(process=False)
        rows = results.setdefault("botcore", {})
        rows["services"] = []
        seq = 10**6
        for _ in range(repeat):
            orders = _orders(writes, seq)
            seq += writes
            rows["services"].append(_time(svc.order_submitted, orders, writes))
        svc.journal.close()
    return {name: {k: statistics.median(v) for k, v in rows.items()} for name, rows in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    res = run(args.writes, args.repeat)
    base = res["botcore"]
    print(f"journal write cost, µs per committed write (median of {args.repeat} x {args.writes})")
    print(
        f"{'row':<10}"
        + "".join(f"{name:>14}" for name in SETUPS)
        + f"{'full/botcore':>14}{'default/botcore':>17}"
    )
    for row in ("order", "outcome", "fill"):
        cells = "".join(f"{res[name][row]:>14.1f}" for name in SETUPS)
        print(
            f"{row:<10}{cells}{res['wal+full'][row] / base[row]:>13.1f}x{res['default'][row] / base[row]:>16.1f}x"
        )
    print(f"{'services':<10}{base['services']:>14.1f}{'':>28}   (journal + metrics via the hook)")


if __name__ == "__main__":
    main()
