"""What a person watching ``botcore run`` sees: quiet libraries, the venue's end, the final summary.

- :func:`quiet_libraries`: APScheduler logs every job run and websocket-client every connection at
  INFO; at the default level they bury the one progress line per ``run.status_every``. They stay
  at WARNING unless the run logs at DEBUG.
- :class:`VenueWatch`: an embedded venue with an end (the paper exchange replaying a recording)
  reports ``done``; the watch turns that into the stop reason ``"replay finished"`` after a short
  grace, so answers and fills already on their way still arrive before the engine cancels.
- :class:`DriftTally`: drift records found so far, for the status line.
- :func:`run_summary`: the end-of-run block. Money comes from the journal when the run has one
  (the same numbers ``botcore report`` prints: fills, volume, fees, realized and unrealized PnL at
  the last sampled mid, drift records), else from the engine's position cache.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from botcore import hookimpl
from botcore.contracts import VenueEndpoints
from botcore.model import plain

__all__ = [
    "NOISY_LOGGERS",
    "REPLAY_FINISHED",
    "DriftTally",
    "VenueWatch",
    "money",
    "quiet_libraries",
    "run_summary",
]

log = logging.getLogger(__name__)

NOISY_LOGGERS = ("apscheduler", "websocket")
"""Libraries that log routine events at INFO (every scheduled job run, every connection)."""

REPLAY_FINISHED = "replay finished"


def quiet_libraries(level: int | str) -> None:
    """Keep :data:`NOISY_LOGGERS` at WARNING unless ``level`` is DEBUG (then they log everything)."""
    numeric = logging.getLevelName(level) if isinstance(level, str) else level
    quiet = not isinstance(numeric, int) or numeric > logging.DEBUG
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING if quiet else logging.NOTSET)


def money(value: Decimal | str | None, places: int = 4) -> str:
    """A quote amount for people: fixed ``places`` decimals, never scientific notation."""
    if value is None:
        return "-"
    d = Decimal(str(value)).quantize(Decimal(1).scaleb(-places))
    return format(d, "f")


class VenueWatch:
    """Polls an embedded venue's ``progress``/``done``; :meth:`poll` gives the stop reason when due.

    A venue that reports nothing (Binance, the in-process replay) is never done. A ``progress``
    failure is logged at DEBUG and ignored: the venue's answer is advisory, the streams' own
    watchdogs judge whether the market is alive.
    """

    def __init__(
        self,
        venue: VenueEndpoints | None,
        grace_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._progress = getattr(venue, "progress", None)
        self._done = getattr(venue, "done", None)
        self.grace_s = grace_s
        self._clock = clock
        self._done_at: float | None = None
        self.last: dict[str, Any] = {}

    @property
    def active(self) -> bool:
        return self._progress is not None or self._done is not None

    def refresh(self) -> dict[str, Any]:
        """Ask the venue now; returns (and keeps) its last answer."""
        try:
            if self._progress is not None:
                self.last = dict(self._progress())
            elif self._done is not None:
                self.last = {**self.last, "done": bool(self._done())}
        except Exception as exc:  # advisory only
            log.debug("venue progress unavailable: %s", exc)
        return self.last

    def poll(self) -> str | None:
        """None while the venue runs; the stop reason once it finished (after the grace) or exited."""
        if not self.active:
            return None
        info = self.refresh()
        if info.get("exited") is not None:
            return f"paper exchange exited with code {info['exited']}"
        if not info.get("done"):
            self._done_at = None
            return None
        now = self._clock()
        if self._done_at is None:
            self._done_at = now
        return REPLAY_FINISHED if now - self._done_at >= self.grace_s else None

    def describe(self) -> str:
        """``replay 123.4s`` for the status line; "" when the venue reports no progress."""
        elapsed = self.last.get("elapsed_s")
        if elapsed is None:
            return ""
        return f"replay {float(elapsed):7.1f}s{' done' if self.last.get('done') else ''}"


# ------------------------------------------------------------------------------------------------
# The summary
# ------------------------------------------------------------------------------------------------


def _journal_report(path: Path | None) -> Any:
    if path is None or not Path(path).is_file():
        return None
    try:
        from botcore.report import build_report

        return build_report(path)
    except Exception as exc:  # the summary must print whatever happened to the journal
        log.warning("summary: cannot read the journal %s: %s", path, exc)
        return None


def _money_from_engine(engine: Any) -> list[dict[str, Any]]:
    """Per-symbol money from the engine's position cache (a run without a journal)."""
    out = []
    pos = engine.positions
    for sym, inst in engine.instruments.items():
        try:
            bp, _, ap, _ = engine.book_sync(sym).top()
        except (KeyError, AttributeError):
            bp = ap = 0
        mid = inst.ticks_to_price(bp + ap) / 2 if bp > 0 and ap > 0 else None
        try:
            out.append(
                {
                    "symbol": sym,
                    "quote": inst.quote_asset,
                    "base": inst.base_asset,
                    "fills": None,
                    "volume": None,
                    "notional": None,
                    "position": pos.position(sym),
                    "realized": pos.realized_pnl(sym),
                    "unrealized": pos.unrealized_pnl(sym, mid) if mid is not None else Decimal(0),
                    "fees": pos.fees(sym),
                }
            )
        except (KeyError, ValueError):
            continue
    return out


def _money_from_report(rep: Any, engine: Any) -> list[dict[str, Any]]:
    instruments = getattr(engine, "instruments", {}) or {}
    out = []
    for sym, s in rep.symbols.items():
        inst = instruments.get(sym)
        out.append(
            {
                "symbol": sym,
                "quote": s.quote,
                "base": inst.base_asset if inst is not None else "",
                "fills": s.fills,
                "maker": s.maker_fills,
                "volume": s.volume,
                "notional": s.notional,
                "position": s.position,
                "realized": s.realized,
                "unrealized": s.unrealized,
                "fees": s.fees,
            }
        )
    return out


def _duration(seconds: float) -> str:
    m, s = divmod(max(0.0, seconds), 60)
    return f"{int(m)}m{s:04.1f}s" if m else f"{s:.1f}s"


def run_summary(
    *,
    name: str,
    reason: str,
    status: Mapping[str, Any],
    engine: Any = None,
    journal: Path | None = None,
    wall_s: float | None = None,
    replay: Mapping[str, Any] | None = None,
) -> str:
    """The block printed when ``botcore run`` ends.

    Line by line: why it stopped; run name, wall time and market time replayed; activity counts;
    per symbol fills, volume and fees; ``PnL ...`` (realized + unrealized - fees = net, in the
    quote asset); final position; drift records by field and cause; risk vetoes by check;
    tick-to-order percentiles; the journal and the command that charts it.

    The first line keeps ``stopped (<reason>)`` and the activity line keeps
    ``orders N, cancels M (R as cancel-replace), fills F``; later lines use neither parentheses nor
    the word "orders", so a script can find those with a plain ``rsplit``.
    """
    st = status
    lines = [f"botcore: stopped ({reason})"]
    run = f"  run {name}"
    if wall_s is not None:
        run += f": {_duration(wall_s)} wall"
    if replay and replay.get("elapsed_s") is not None:
        run += f", {_duration(float(replay['elapsed_s']))} of recorded market replayed"
        if replay.get("done"):
            run += " to its end"
    lines.append(run)
    lines.append(
        f"  events {st.get('events', 0)}, frames {st.get('frames', 0)}, quotes {st.get('quotes', 0)}, "
        f"orders {st.get('orders', 0)}, cancels {st.get('cancels', 0)} "
        f"({st.get('replaces', 0)} as cancel-replace), fills {st.get('fills', 0)}"
    )

    rep = _journal_report(journal)
    rows = _money_from_report(rep, engine) if rep is not None else []
    if not rows and engine is not None:
        rows = _money_from_engine(engine)
    for r in rows:
        q = r["quote"]
        if r.get("fills") is not None:
            base = f" {r['base']}" if r["base"] else ""
            lines.append(
                f"  {r['symbol']}: {r['fills']} fills, {r.get('maker', 0)} as maker; volume "
                f"{plain(r['volume'])}{base} = {money(r['notional'], 2)} {q}; fees {money(r['fees'])} {q}"
            )
        net = r["realized"] + r["unrealized"] - r["fees"]
        lines.append(
            f"PnL {r['symbol']}: realized {money(r['realized'])} + unrealized {money(r['unrealized'])} "
            f"- fees {money(r['fees'])} = net {money(net)} {q}"
        )
    position = st.get("position") or {}
    lines.append(
        "  final position: " + (", ".join(f"{s} {q}" for s, q in position.items()) if position else "-")
    )

    if rep is not None:
        drifts = Counter((d["field"], d["cause"]) for d in rep.drifts)
        if drifts:
            parts = ", ".join(f"{f}/{c} x{n}" for (f, c), n in sorted(drifts.items()))
            lines.append(f"  drift: {sum(drifts.values())} records by field/cause: {parts}")
        else:
            lines.append("  drift: none found by the reconciles")
    vetoes = st.get("vetoes") or {}
    lines.append(
        "  risk vetoes: " + (", ".join(f"{k}={v}" for k, v in sorted(vetoes.items())) if vetoes else "none")
    )

    hist = getattr(engine, "tick_to_order", None)
    if hist is not None and getattr(hist, "count", 0):
        lines.append(
            f"  tick-to-order: n={hist.count} p50={hist.percentile(50):.1f}us p99={hist.percentile(99):.1f}us "
            f"p99.9={hist.percentile(99.9):.1f}us max={hist.max_ns / 1000:.1f}us"
        )
        wait = getattr(engine, "tick_wait", None)
        if wait is not None and getattr(wait, "count", 0):
            lines.append(
                f"    of which before the strategy ran, queued for the engine thread + book update: "
                f"p50={wait.percentile(50):.1f}us p99={wait.percentile(99):.1f}us"
            )
    else:
        lat = st.get("latency_us") or {}
        if lat.get("count"):
            lines.append(
                f"  tick-to-order: n={lat['count']} p50={lat['p50']:.1f}us p99={lat['p99']:.1f}us "
                f"max={lat['max']:.1f}us"
            )
    if journal is not None:
        png = Path(journal).with_suffix(".png")
        lines.append(f"  journal: {journal}")
        lines.append(f"  chart it: botcore report {journal} --png {png}")
    return "\n".join(lines)


class DriftTally:
    """Counts reconciles and drift records as ``botcore_reconcile_report`` sees them (status line).

    Registered on the run's plugin manager for the length of the run (:meth:`attach` /
    :meth:`detach`); called from scheduler threads and the engine thread, read by the main thread:
    two ints, exact enough for a progress display.
    """

    NAME = "botcore-run-drift-tally"

    def __init__(self) -> None:
        self.reconciles = 0
        self.records = 0
        self._pm: Any = None

    @hookimpl
    def botcore_reconcile_report(self, job: str, drifts: Any) -> None:
        self.reconciles += 1
        self.records += len(drifts)

    @classmethod
    def attach(cls, pm: Any) -> DriftTally:
        tally = cls()
        try:
            if pm is not None and pm.get_plugin(cls.NAME) is None:
                pm.register(tally, name=cls.NAME)
                tally._pm = pm
        except Exception as exc:  # a plugin manager stand-in: no live drift count
            log.debug("drift tally not registered: %s", exc)
        return tally

    def detach(self) -> None:
        if self._pm is not None:
            self._pm.unregister(name=self.NAME)
            self._pm = None

    def describe(self) -> str:
        return f"drift={self.records}/{self.reconciles}rec" if self.reconciles else "drift=-"
