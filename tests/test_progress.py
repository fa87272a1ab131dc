"""What ``botcore run`` shows: the venue watch (end of a replay), quiet libraries, the summary."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from botcore.contracts import VenueEndpoints
from botcore.journal import Journal, PnlSample
from botcore.model import Drift, Fill, Instrument, Side
from botcore.plugins import get_plugin_manager
from botcore.progress import (
    NOISY_LOGGERS,
    REPLAY_FINISHED,
    DriftTally,
    VenueWatch,
    money,
    quiet_libraries,
    run_summary,
)

INST = Instrument("BTCUSDT", "BTC", "USDT", Decimal("0.01"), Decimal("0.00001"))


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def venue(answers: Iterator[Any]) -> VenueEndpoints:
    def progress() -> dict[str, Any]:
        a = next(answers)
        if isinstance(a, Exception):
            raise a
        return dict(a)

    return VenueEndpoints("http://x/api", "ws://x/", "ws://x/ws-api/v3", progress=progress)


# ------------------------------------------------------------------------------------------------
# VenueWatch
# ------------------------------------------------------------------------------------------------


def test_a_venue_without_an_end_is_never_done() -> None:
    for v in (None, VenueEndpoints("replay://local", "replay://local", "replay://local")):
        watch = VenueWatch(v)
        assert not watch.active and watch.poll() is None and watch.describe() == ""


def test_done_stops_only_after_the_grace() -> None:
    clock = Clock()
    answers = iter(
        [
            {"elapsed_s": 10.0, "done": False},
            {"elapsed_s": 650.3, "done": True},
            {"elapsed_s": 650.3, "done": True},
            {"elapsed_s": 650.3, "done": True},
        ]
    )
    watch = VenueWatch(venue(answers), grace_s=1.0, clock=clock)
    assert watch.poll() is None and watch.describe() == "replay    10.0s"
    assert watch.poll() is None  # done noticed now: answers and fills on their way get a second
    clock.t += 0.6
    assert watch.poll() is None
    clock.t += 0.5
    assert watch.poll() == REPLAY_FINISHED
    assert watch.describe() == "replay   650.3s done" and watch.last["elapsed_s"] == 650.3


def test_a_replay_that_starts_again_restarts_the_grace() -> None:
    clock = Clock()
    answers = iter([{"done": True}, {"done": False}, {"done": True}, {"done": True}])
    watch = VenueWatch(venue(answers), grace_s=1.0, clock=clock)
    assert watch.poll() is None
    clock.t += 5
    assert watch.poll() is None  # looping: not done any more
    assert watch.poll() is None  # done again: a new grace starts
    clock.t += 1
    assert watch.poll() == REPLAY_FINISHED


def test_an_exited_venue_stops_the_run_at_once_with_its_code() -> None:
    watch = VenueWatch(venue(iter([{"elapsed_s": 3.0, "done": True, "exited": -9}])), clock=Clock())
    assert watch.poll() == "paper exchange exited with code -9"


def test_a_failing_progress_keeps_the_last_answer() -> None:
    answers = iter([{"elapsed_s": 5.0, "done": False}, OSError("connection refused"), {"elapsed_s": 6.0}])
    watch = VenueWatch(venue(answers), clock=Clock())
    assert watch.poll() is None
    assert watch.poll() is None and watch.last == {"elapsed_s": 5.0, "done": False}
    assert watch.refresh()["elapsed_s"] == 6.0


def test_a_done_only_venue_is_watched_too() -> None:
    flags = iter([False, True, True])
    clock = Clock()
    v = VenueEndpoints("http://x/api", "ws://x/", "ws://x/ws-api/v3", done=lambda: next(flags))
    watch = VenueWatch(v, grace_s=0.5, clock=clock)
    assert watch.active and watch.poll() is None and watch.poll() is None
    clock.t += 0.5
    assert watch.poll() == REPLAY_FINISHED and watch.describe() == ""


def test_endpoints_repr_names_no_secret_and_no_callables() -> None:
    v = VenueEndpoints("http://x/api", "ws://x/", "ws://x/ws-api/v3", "KEY", "SECRET", done=lambda: True)
    assert "SECRET" not in repr(v) and "lambda" not in repr(v)


# ------------------------------------------------------------------------------------------------
# Logging
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def restore_levels() -> Iterator[None]:
    before = {n: logging.getLogger(n).level for n in NOISY_LOGGERS}
    yield
    for n, level in before.items():
        logging.getLogger(n).setLevel(level)


@pytest.mark.usefixtures("restore_levels")
def test_noisy_libraries_stay_at_warning_unless_debug() -> None:
    quiet_libraries("INFO")
    assert all(logging.getLogger(n).level == logging.WARNING for n in NOISY_LOGGERS)
    assert not logging.getLogger("apscheduler.executors.default").isEnabledFor(logging.INFO)
    quiet_libraries(logging.DEBUG)
    assert all(logging.getLogger(n).level == logging.NOTSET for n in NOISY_LOGGERS)


# ------------------------------------------------------------------------------------------------
# Drift tally
# ------------------------------------------------------------------------------------------------


def test_drift_tally_counts_reports_while_attached() -> None:
    pm = get_plugin_manager(load_entrypoints=False)
    tally = DriftTally.attach(pm)
    assert tally.describe() == "drift=-"
    d = Drift("balance.free", "USDT", "1", "2")
    pm.hook.botcore_reconcile_report(job="reconcile_light", drifts=[d, d])
    pm.hook.botcore_reconcile_report(job="reconcile_light", drifts=[])
    assert (tally.records, tally.reconciles, tally.describe()) == (2, 2, "drift=2/2rec")
    tally.detach()
    pm.hook.botcore_reconcile_report(job="reconcile_light", drifts=[d])
    assert tally.records == 2 and pm.get_plugin(DriftTally.NAME) is None


# ------------------------------------------------------------------------------------------------
# Summary
# ------------------------------------------------------------------------------------------------

STATUS = {
    "events": 120,
    "frames": 100,
    "quotes": 9,
    "orders": 8,
    "cancels": 5,
    "replaces": 3,
    "fills": 2,
    "position": {"BTCUSDT": "0.001"},
    "vetoes": {"order_rate": 4, "price_band": 1},
    "latency_us": {"count": 3, "p50": 10.0, "p99": 20.0, "max": 30.0},
}


def fill(trade_id: int, side: Side, price: str, qty: str, fee: str) -> Fill:
    return Fill("BTCUSDT", f"c{trade_id}", trade_id, trade_id, side, Decimal(price), Decimal(qty),
                Decimal(fee), "USDT", True, 1_700_000_000_000 + trade_id)  # fmt: skip


def test_summary_from_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    j = Journal(path)
    j.start_run(name="t", run_id="abc", id_prefix="x", instruments=[INST])
    j.record_fill(fill(1, Side.BUY, "100", "0.002", "0.0002"))
    j.record_fill(fill(2, Side.SELL, "101", "0.001", "0.000101"))
    j.record_pnl([PnlSample("BTCUSDT", Decimal("0.001"), Decimal("0.001"), Decimal("0.0005"), Decimal("0.000301"),
                            Decimal("100.5"))])  # fmt: skip
    j.record_drifts(
        "reconcile_full", [Drift("balance.free", "USDT", "1", "2", cause="missed fill")] * 2, ["correct"] * 2
    )
    j.end_run("SIGINT")
    j.close()

    text = run_summary(name="t", reason="SIGINT", status=STATUS, journal=path, wall_s=75.25,
                       replay={"elapsed_s": 601.0, "done": True})  # fmt: skip
    lines = text.splitlines()
    assert lines[0] == "botcore: stopped (SIGINT)"
    assert "run t: 1m15.2s wall, 10m01.0s of recorded market replayed to its end" in text
    assert "orders 8, cancels 5 (3 as cancel-replace), fills 2" in text
    assert "BTCUSDT: 2 fills, 2 as maker; volume 0.003 = 0.30 USDT; fees 0.0003 USDT" in text
    # realized 0.001 (sold 0.001 bought at 100 for 101), unrealized 0.001 x (100.5 - 100), fees 0.000301
    assert "PnL BTCUSDT: realized 0.0010 + unrealized 0.0005 - fees 0.0003 = net 0.0012 USDT" in lines
    assert "drift: 2 records by field/cause: balance.free/missed fill x2" in text
    assert "risk vetoes: order_rate=4, price_band=1" in text
    assert f"chart it: botcore report {path} --png {path.with_suffix('.png')}" in text
    # scripts find the counts with rsplit: nothing after that line has "(" or "orders "
    tail = text.split("as cancel-replace)", 1)[1]
    assert "(" not in tail and "orders " not in tail


class FakeEngine:
    """The engine surface the summary reads when the run has no journal."""

    def __init__(self) -> None:
        from botcore.core import PositionCache
        from botcore.metrics import LatencyHistogram

        self.instruments = {"BTCUSDT": INST}
        self.positions = PositionCache()
        self.positions.add_instrument(INST)
        self.positions.apply_fill(fill(1, Side.BUY, "100", "0.002", "0.0002"))
        self.tick_to_order = LatencyHistogram()
        for us in (100, 200, 300, 400, 5000):
            self.tick_to_order.record(us * 1000)

    def book_sync(self, symbol: str) -> Any:
        class Top:
            def top(self) -> tuple[int, int, int, int]:
                return 10100, 1, 10200, 1  # mid 101.5

        return Top()


def test_summary_without_a_journal_reads_the_engine() -> None:
    text = run_summary(name="t", reason="duration reached", status=STATUS, engine=FakeEngine())
    assert "PnL BTCUSDT: realized 0.0000 + unrealized 0.0030 - fees 0.0002 = net 0.0028 USDT" in text
    assert "drift:" not in text and "journal:" not in text and "replayed" not in text
    assert re.search(r"tick-to-order: n=5 p50=\d+\.\dus p99=\d+\.\dus p99\.9=\d+\.\dus", text)


def test_money_is_fixed_point_never_scientific() -> None:
    assert money(Decimal("-39.9637826627906192")) == "-39.9638"
    assert money("1E-9") == "0.0000" and money(Decimal("1E+3"), 2) == "1000.00" and money(None) == "-"
