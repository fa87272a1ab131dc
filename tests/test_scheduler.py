"""Scheduler: declared triggers fire when declared (proved on the trigger), jobs run off-thread."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from botcore.config import config_from_text
from botcore.scheduler import Scheduler, build_trigger, next_fire_times


@dataclass
class Sched:
    name: str = "job"
    job: str = "tick"
    every: float | timedelta | None = None
    cron: str | None = None
    misfire_grace: float | timedelta = 10.0
    params: dict[str, Any] = field(default_factory=dict)


START = datetime(2024, 8, 8, 12, 3, 10, tzinfo=UTC)


def test_every_30s_fires_every_30s_from_start() -> None:
    times = next_fire_times(Sched(every=30), START, 4)
    assert times == [START + timedelta(seconds=30 * k) for k in range(1, 5)]


def test_cron_every_5_minutes_fires_on_the_5_minute_marks_utc() -> None:
    times = next_fire_times(Sched(cron="*/5 * * * *"), START, 4)
    assert times == [datetime(2024, 8, 8, 12, m, tzinfo=UTC) for m in (5, 10, 15, 20)]


def test_cron_rolls_over_the_day() -> None:
    times = next_fire_times(Sched(cron="30 23 * * *"), START, 2)
    assert times == [datetime(2024, 8, 8, 23, 30, tzinfo=UTC), datetime(2024, 8, 9, 23, 30, tzinfo=UTC)]


def test_schedules_from_yaml_config_use_timedeltas() -> None:
    cfg = config_from_text(
        """
exchange: {name: x, mode: paper, symbols: [BTCUSDT]}
schedules:
  - {name: light, job: tick, every: 30s, misfire_grace: 5s}
  - {name: full, job: tick, cron: "*/5 * * * *"}
"""
    )
    light, full = cfg.schedules
    assert next_fire_times(light, START, 2) == [START + timedelta(seconds=30), START + timedelta(seconds=60)]
    assert next_fire_times(full, START, 1) == [datetime(2024, 8, 8, 12, 5, tzinfo=UTC)]


def test_timedelta_durations_work_too() -> None:
    s = Sched(every=timedelta(seconds=30), misfire_grace=timedelta(seconds=5))
    assert next_fire_times(s, START, 1) == [START + timedelta(seconds=30)]


@pytest.mark.parametrize(
    ("sched", "match"),
    [
        (Sched(), "exactly one"),
        (Sched(every=5, cron="* * * * *"), "exactly one"),
        (Sched(every=0), "> 0"),
        (Sched(cron="61 * * * *"), "bad cron"),
    ],
)
def test_bad_triggers_are_rejected(sched: Sched, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_trigger(sched)


def test_naive_start_is_rejected() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_fire_times(Sched(every=1), datetime(2024, 1, 1), 1)


def test_unknown_job_and_duplicate_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown job 'tick'"):
        Scheduler([Sched(every=1)], {}, None)
    with pytest.raises(ValueError, match="duplicate"):
        Scheduler([Sched(every=1), Sched(every=2)], {"tick": lambda h, p: None}, None)


def test_interval_job_really_runs_off_thread_and_history_is_kept() -> None:
    runs: list[tuple[str, Any, dict[str, Any]]] = []
    done = threading.Event()
    handle = object()

    def tick(h: Any, params: dict[str, Any]) -> None:
        runs.append((threading.current_thread().name, h, params))
        if len(runs) >= 2:
            done.set()

    broken_calls: list[int] = []

    def broken(h: Any, params: dict[str, Any]) -> None:
        broken_calls.append(1)
        raise RuntimeError("venue down")

    sched = Scheduler(
        [Sched("t", "tick", every=0.05, params={"depth": 5}), Sched("b", "broken", every=0.05)],
        {"tick": tick, "broken": broken},
        handle,
        history=3,
    )
    sched.start()
    try:
        assert done.wait(5)
        deadline = time.monotonic() + 5
        while len(broken_calls) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        sched.shutdown()
    main = threading.current_thread().name
    assert all(name != main and name.startswith("botcore-job") for name, _, _ in runs)
    assert runs[0][1] is handle and runs[0][2] == {"depth": 5}
    ok = sched.history("t")
    assert ok and all(r.ok and r.schedule == "t" and r.end >= r.start for r in ok)
    bad = sched.history("b")
    assert len(broken_calls) >= 4 and len(bad) == 3  # bounded
    assert all(not r.ok and r.error == "RuntimeError: venue down" for r in bad)
    assert [r.start for r in sched.history()] == sorted(r.start for r in sched.history())
    assert sched.names == ["t", "b"]


def test_run_now_and_next_run() -> None:
    ran = threading.Event()
    sched = Scheduler([Sched("hourly", "tick", every=3600)], {"tick": lambda h, p: ran.set()}, None)
    sched.start()
    try:
        nxt = sched.next_run("hourly")
        assert nxt is not None and nxt > datetime.now(UTC) + timedelta(minutes=59)
        sched.run_now("hourly")
        assert ran.wait(5)
    finally:
        sched.shutdown()
    assert sched.next_run("nope") is None


class FakeDatetime(datetime):
    """``datetime`` whose ``now()`` is the test's clock (patched into APScheduler and botcore)."""

    current = START

    @classmethod
    def now(cls, tz: Any = None) -> FakeDatetime:  # type: ignore[override]
        return cls.current if tz is None else cls.current.astimezone(tz)  # type: ignore[return-value]


def test_schedules_from_config_fire_as_declared_on_a_controlled_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real APScheduler loop, driven by a clock the test moves: a 30 s interval and a
    once-a-minute cron from YAML run exactly at their declared times, and nowhere else."""
    import apscheduler.executors.base as aps_executors
    import apscheduler.schedulers.base as aps_base

    import botcore.scheduler as botcore_scheduler

    for module in (aps_base, aps_executors, botcore_scheduler):
        monkeypatch.setattr(module, "datetime", FakeDatetime)
    FakeDatetime.current = START  # 12:03:10 UTC
    cfg = config_from_text(
        """
exchange: {name: x, mode: paper, symbols: [BTCUSDT]}
schedules:
  - {name: light, job: tick, every: 30s}
  - {name: full, job: tick, cron: "*/1 * * * *"}
"""
    )
    ran: list[tuple[str, datetime]] = []
    lock = threading.Lock()

    def tick(h: Any, params: dict[str, Any]) -> None:
        with lock:
            ran.append((threading.current_thread().name, FakeDatetime.current))

    sched = Scheduler(cfg.schedules, {"tick": tick}, object())
    sched.start()
    try:
        for _ in range(18):  # three minutes in 10 s steps
            FakeDatetime.current += timedelta(seconds=10)
            before = len(sched.history())
            due = sum(1 for s in ("light", "full") if (nr := sched.next_run(s)) and nr <= FakeDatetime.current)
            sched._sched.wakeup()
            deadline = time.monotonic() + 5
            while len(sched.history()) < before + due and time.monotonic() < deadline:
                time.sleep(0.005)
    finally:
        sched.shutdown()
    fired = {name: [r.start for r in sched.history(name)] for name in ("light", "full")}
    assert fired["light"] == [START + timedelta(seconds=30 * k) for k in range(1, 7)]  # 12:03:40 ... 12:06:10
    assert fired["full"] == [datetime(2024, 8, 8, 12, m, tzinfo=UTC) for m in (4, 5, 6)]
    assert len(ran) == 9 and all(name.startswith("botcore-job") for name, _ in ran)
