"""``botcore report JOURNAL [--png OUT] [--html OUT] [--run N]``: what a run did, from its journal.

The report recomputes PnL from the journaled fills with the same position cache the engine uses
(``botcore.core.PositionCache``: average cost, exact decimals), marks the open position at the
last mid the run sampled (else the last fill price), and cross-checks the engine's own last PnL
sample when there is one. It lists fills and volume, order outcomes, drift records and latency
percentiles (gateway round trips from the order events, reusing ``botcore.metrics``' histogram;
the engine's tick-to-order summaries as journaled). The chart shows inventory and PnL over time:
from the engine's PnL samples when the run wrote them, else stepped at each fill.

It opens the journal read-only, so it works on a run that is still writing (WAL).
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import sqlite3
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from botcore.journal import FILL_COLUMNS, JournalError, connect_readonly, fill_from_row
from botcore.metrics import LatencyHistogram
from botcore.model import Instrument, Side, plain

__all__ = [
    "RunReport",
    "SeriesPoint",
    "SymbolReport",
    "build_report",
    "format_text",
    "main",
    "render_html",
    "render_png",
    "setup_command",
]

EXIT_OK = 0
EXIT_ERROR = 2
_QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "EUR", "TRY", "BTC", "ETH", "BNB")


@dataclass
class SeriesPoint:
    """One chart point (floats: display only)."""

    time_ms: int
    position: float
    realized: float
    unrealized: float
    fees: float

    @property
    def pnl(self) -> float:
        return self.realized + self.unrealized - self.fees


@dataclass
class SymbolReport:
    symbol: str
    quote: str
    fills: int = 0
    maker_fills: int = 0
    bought: Decimal = Decimal(0)
    sold: Decimal = Decimal(0)
    notional: Decimal = Decimal(0)
    position: Decimal = Decimal(0)
    realized: Decimal = Decimal(0)
    unrealized: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    mark: Decimal | None = None
    engine_pnl: Decimal | None = None  # the engine's last sample, for cross-checking
    series: list[SeriesPoint] = field(default_factory=list)
    fill_points: list[tuple[int, float, str]] = field(default_factory=list)  # (time, position, side)

    @property
    def pnl(self) -> Decimal:
        return self.realized + self.unrealized - self.fees

    @property
    def volume(self) -> Decimal:
        return self.bought + self.sold


@dataclass
class RunReport:
    path: str
    run: int
    name: str
    run_id: str
    started_ms: int
    ended_ms: int | None
    exit_reason: str | None
    orders: int = 0
    order_status: dict[str, int] = field(default_factory=dict)
    symbols: dict[str, SymbolReport] = field(default_factory=dict)
    drifts: list[dict[str, Any]] = field(default_factory=list)
    latency: dict[str, dict[str, float]] = field(default_factory=dict)
    engine_latency: dict[str, dict[str, float]] = field(default_factory=dict)
    runs: list[int] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------
# Building
# ------------------------------------------------------------------------------------------------


def _guess_instrument(symbol: str) -> Instrument:
    for quote in _QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return Instrument(
                symbol, symbol[: -len(quote)], quote, Decimal("0.00000001"), Decimal("0.00000001")
            )
    return Instrument(symbol, symbol, "QUOTE", Decimal("0.00000001"), Decimal("0.00000001"))


def build_report(path: str | Path, run: int | None = None) -> RunReport:
    """Read one run (default: the last) of the journal at ``path``.

    :raises JournalError: not a journal, no runs, or no run ``run``.
    """
    conn = connect_readonly(path)
    try:
        return _build(conn, str(path), run)
    finally:
        conn.close()


def _build(conn: sqlite3.Connection, path: str, run: int | None) -> RunReport:
    runs = [int(r[0]) for r in conn.execute("SELECT id FROM runs ORDER BY id")]
    if not runs:
        raise JournalError(f"{path}: the journal has no runs")
    rid = runs[-1] if run is None else run
    row = conn.execute(
        "SELECT id, name, run_id, started_ms, ended_ms, exit_reason FROM runs WHERE id = ?", (rid,)
    ).fetchone()
    if row is None:
        raise JournalError(f"{path}: no run {rid} (runs: {', '.join(map(str, runs))})")
    rep = RunReport(path, rid, row[1], row[2], int(row[3]), row[4], row[5], runs=runs)

    for status, n in conn.execute(
        "SELECT status, COUNT(*) FROM orders WHERE run = ? GROUP BY status", (rid,)
    ):
        rep.order_status[str(status)] = int(n)
    rep.orders = sum(rep.order_status.values())

    instruments = {
        r[0]: Instrument(r[0], r[1], r[2], Decimal(r[3]), Decimal(r[4]))
        for r in conn.execute(
            "SELECT symbol, base, quote, tick_size, step_size FROM instruments WHERE run = ?", (rid,)
        )
    }
    cache = _fills(conn, rep, rid, instruments)
    _samples(conn, rep, rid)
    booked = set(cache.symbols())
    for sym, s in rep.symbols.items():
        if s.mark is not None and sym in booked:
            s.unrealized = cache.unrealized_pnl(sym, s.mark)

    for r in conn.execute(
        "SELECT time_ms, job, field, key, local, venue, age_ms, cause, corrected, action FROM drifts "
        "WHERE run = ? ORDER BY id",
        (rid,),
    ):
        rep.drifts.append(
            {
                "time_ms": r[0],
                "job": r[1],
                "field": r[2],
                "key": r[3],
                "local": r[4],
                "venue": r[5],
                "age_ms": r[6],
                "cause": r[7],
                "corrected": bool(r[8]),
                "action": r[9],
            }
        )

    hists: dict[str, LatencyHistogram] = {}
    for kind, us in conn.execute(
        "SELECT kind, latency_us FROM order_events WHERE run = ? AND latency_us IS NOT NULL", (rid,)
    ):
        hists.setdefault(str(kind), LatencyHistogram()).record(int(round(float(us) * 1000)))
    rep.latency = {k: h.summary() for k, h in sorted(hists.items())}
    for r in conn.execute(
        "SELECT name, count, p50, p90, p99, p999, max, mean FROM latency WHERE id IN "
        "(SELECT MAX(id) FROM latency WHERE run = ? GROUP BY name) ORDER BY name",
        (rid,),
    ):
        rep.engine_latency[str(r[0])] = {
            "count": float(r[1]),
            "p50": r[2],
            "p90": r[3],
            "p99": r[4],
            "p99.9": r[5],
            "max": r[6],
            "mean": r[7],
        }
    return rep


def _fills(conn: sqlite3.Connection, rep: RunReport, rid: int, instruments: dict[str, Instrument]) -> Any:
    """Replay the run's fills through a fresh position cache; returns the cache."""
    from botcore.core import PositionCache

    cache = PositionCache()
    last_price: dict[str, Decimal] = {}
    for r in conn.execute(f"SELECT {FILL_COLUMNS} FROM fills WHERE run = ? ORDER BY time_ms, trade_id", (rid,)):
        fill = fill_from_row(r)
        sym = fill.symbol
        s = rep.symbols.get(sym)
        if s is None:
            inst = instruments.get(sym) or _guess_instrument(sym)
            cache.add_instrument(inst)
            s = rep.symbols[sym] = SymbolReport(sym, inst.quote_asset)
        if not cache.apply_fill(fill):
            continue
        s.fills += 1
        s.maker_fills += int(fill.is_maker)
        if fill.side is Side.BUY:
            s.bought += fill.qty
        else:
            s.sold += fill.qty
        s.notional += fill.qty * fill.price
        last_price[sym] = fill.price
        pos = cache.position(sym)
        s.series.append(
            SeriesPoint(
                fill.time_ms,
                float(pos),
                float(cache.realized_pnl(sym)),
                float(cache.unrealized_pnl(sym, fill.price)),
                float(cache.fees(sym)),
            )
        )
        s.fill_points.append((fill.time_ms, float(pos), str(fill.side)))
    for sym, s in rep.symbols.items():
        s.position = cache.position(sym)
        s.realized = cache.realized_pnl(sym)
        s.fees = cache.fees(sym)
        s.mark = last_price.get(sym)
    return cache


def _samples(conn: sqlite3.Connection, rep: RunReport, rid: int) -> None:
    """Use the engine's PnL samples for the chart and the mark, when the run wrote them."""
    by_symbol: dict[str, list[Any]] = {}
    for r in conn.execute(
        "SELECT time_ms, symbol, position, realized, unrealized, fees, mid FROM pnl_samples "
        "WHERE run = ? ORDER BY time_ms, id",
        (rid,),
    ):
        by_symbol.setdefault(r[1], []).append(r)
    for sym, samples in by_symbol.items():
        s = rep.symbols.get(sym)
        if s is None:
            s = rep.symbols[sym] = SymbolReport(sym, _guess_instrument(sym).quote_asset)
        s.series = [
            SeriesPoint(
                int(r[0]),
                float(Decimal(r[2])),
                float(Decimal(r[3])),
                float(Decimal(r[4])),
                float(Decimal(r[5])),
            )
            for r in samples
        ]
        mids = [r[6] for r in samples if r[6] is not None]
        if mids:
            s.mark = Decimal(mids[-1])
        last = samples[-1]
        s.engine_pnl = Decimal(last[3]) + Decimal(last[4]) - Decimal(last[5])


def format_text(rep: RunReport) -> str:
    """The human summary printed by ``botcore report``."""
    lines = []
    start = _ts(rep.started_ms)
    if rep.ended_ms is not None:
        span = f"{start} -> {_ts(rep.ended_ms)} ({_duration(rep.ended_ms - rep.started_ms)}), exit: {rep.exit_reason}"
    else:
        span = f"{start} -> (no clean end: still running or killed)"
    lines.append(f"run {rep.run} of {len(rep.runs)} '{rep.name}' (client ids {rep.run_id}) {span}")
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(rep.order_status.items())) or "-"
    lines.append(f"orders: {rep.orders} ({statuses})")
    if not rep.symbols:
        lines.append("fills: none")
    for s in rep.symbols.values():
        lines.append(
            f"{s.symbol}: fills {s.fills} (maker {s.maker_fills}), bought {plain(s.bought)} sold {plain(s.sold)}, "
            f"volume {plain(s.volume)} / {_money(s.notional)} {s.quote}"
        )
        mark = f" @ {plain(s.mark)}" if s.mark is not None else ""
        lines.append(
            f"  position {plain(s.position)}  realized {_money(s.realized)}  unrealized {_money(s.unrealized)}{mark}  "
            f"fees {_money(s.fees)}  pnl {_money(s.pnl)} {s.quote}"
        )
        if s.engine_pnl is not None:
            lines.append(f"  engine's last sample: pnl {_money(s.engine_pnl)} {s.quote}")
    lines.append(f"drifts: {len(rep.drifts)}")
    for d in rep.drifts[:50]:
        lines.append(
            f"  {_ts(d['time_ms'])} {d['job']} {d['field']} {d['key']} local={d['local'] or '-'} "
            f"venue={d['venue'] or '-'} cause={d['cause']} action={d['action'] or '-'}"
            f"{' corrected' if d['corrected'] else ''}"
        )
    if len(rep.drifts) > 50:
        lines.append(f"  ... {len(rep.drifts) - 50} more")
    if rep.latency or rep.engine_latency:
        lines.append("latency (us):")
    for name, summary in rep.latency.items():
        lines.append(f"  {name} round trip: {_lat(summary)}")
    for name, summary in rep.engine_latency.items():
        lines.append(f"  {name} (engine): {_lat(summary)}")
    return "\n".join(lines)


def _lat(s: dict[str, float]) -> str:
    return (
        f"n={int(s.get('count', 0))} p50={s.get('p50', 0):.1f} p90={s.get('p90', 0):.1f} "
        f"p99={s.get('p99', 0):.1f} max={s.get('max', 0):.1f}"
    )


def _money(d: Decimal) -> str:
    return plain(d.quantize(Decimal("0.00000001")))


def _ts(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _duration(ms: int) -> str:
    s = max(0, ms) // 1000
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m{sec:02d}s" if h else f"{m}m{sec:02d}s"


# ------------------------------------------------------------------------------------------------
# Rendering
# ------------------------------------------------------------------------------------------------


def render_png(rep: RunReport, out: str | Path | io.BytesIO) -> None:
    """Inventory (top) and PnL (bottom) over time, one line per symbol, fills marked."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 6.5), dpi=100)
    ax_pos, ax_pnl = fig.subplots(2, 1, sharex=True)
    t0 = rep.started_ms
    drawn = False
    for s in rep.symbols.values():
        if not s.series:
            continue
        drawn = True
        xs = [(p.time_ms - t0) / 1000 for p in s.series]
        ax_pos.step(xs, [p.position for p in s.series], where="post", label=f"{s.symbol} position")
        buys = [((t - t0) / 1000, pos) for t, pos, side in s.fill_points if side == "BUY"]
        sells = [((t - t0) / 1000, pos) for t, pos, side in s.fill_points if side == "SELL"]
        if buys:
            ax_pos.scatter(
                *zip(*buys, strict=True), marker="^", color="tab:green", s=18, label=f"{s.symbol} buy"
            )
        if sells:
            ax_pos.scatter(
                *zip(*sells, strict=True), marker="v", color="tab:red", s=18, label=f"{s.symbol} sell"
            )
        ax_pnl.plot(xs, [p.pnl for p in s.series], label=f"{s.symbol} pnl ({s.quote})", linewidth=1.6)
        ax_pnl.plot(
            xs, [p.realized for p in s.series], label=f"{s.symbol} realized", linewidth=1, linestyle="--"
        )
        ax_pnl.plot(xs, [-p.fees for p in s.series], label=f"{s.symbol} -fees", linewidth=1, linestyle=":")
    ax_pos.set_ylabel("inventory (base)")
    ax_pnl.set_ylabel("PnL (quote)")
    ax_pnl.set_xlabel("seconds since run start")
    ax_pos.set_title(f"botcore run {rep.run} '{rep.name}'")
    for ax in (ax_pos, ax_pnl):
        ax.grid(True, alpha=0.3)
        ax.axhline(0, color="black", linewidth=0.6)
        if drawn:
            ax.legend(loc="best", fontsize=8)
    if not drawn:
        ax_pos.text(
            0.5,
            0.5,
            "no fills and no PnL samples in this run",
            ha="center",
            va="center",
            transform=ax_pos.transAxes,
        )
    fig.tight_layout()
    fig.savefig(out, format="png")


def render_html(rep: RunReport, out: str | Path, png: bytes | None = None) -> None:
    """A standalone HTML page: the text summary and the chart embedded as a data URI."""
    if png is None:
        buf = io.BytesIO()
        render_png(rep, buf)
        png = buf.getvalue()
    data = base64.b64encode(png).decode("ascii")
    page = (
        "<!doctype html>\n<html><head><meta charset='utf-8'>"
        f"<title>botcore run {rep.run} {html.escape(rep.name)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}pre{background:#f6f6f6;padding:1em}</style>"
        "</head><body>\n"
        f"<h1>botcore run {rep.run} &mdash; {html.escape(rep.name)}</h1>\n"
        f"<img alt='inventory and PnL' src='data:image/png;base64,{data}'>\n"
        f"<pre>{html.escape(format_text(rep))}</pre>\n</body></html>\n"
    )
    Path(out).write_text(page, encoding="utf-8")


# ------------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------------


def setup_command(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """Summarize a run from its journal: PnL, fills, drifts, latency; optional PNG/HTML chart."""
    parser.add_argument("journal", metavar="JOURNAL", help="the run's SQLite journal (run.journal)")
    parser.add_argument("--png", metavar="OUT", help="write the inventory/PnL chart as a PNG")
    parser.add_argument("--html", metavar="OUT", help="write an HTML page with the summary and the chart")
    parser.add_argument("--run", type=int, metavar="N", help="which run of the journal (default: the last)")
    return run_command


def run_command(args: argparse.Namespace) -> int:
    try:
        rep = build_report(args.journal, args.run)
    except JournalError as exc:
        print(f"botcore report: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(format_text(rep), flush=True)
    png: bytes | None = None
    if args.png or args.html:
        buf = io.BytesIO()
        render_png(rep, buf)
        png = buf.getvalue()
    if args.png:
        Path(args.png).write_bytes(png or b"")
        print(f"chart: {args.png}")
    if args.html:
        render_html(rep, args.html, png)
        print(f"html: {args.html}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m botcore.report JOURNAL ...`` (the same as ``botcore report``)."""
    parser = argparse.ArgumentParser(prog="botcore report", description=setup_command.__doc__)
    run = setup_command(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
