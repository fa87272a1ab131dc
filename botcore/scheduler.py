"""Scheduled jobs (reconciliation and friends) on APScheduler 3, off the engine thread.

Each ``schedules:`` entry of the config names a registered job kind and an ``every`` (seconds) or
a ``cron`` (crontab, UTC) trigger. Jobs run on the scheduler's own worker threads: they may block
on REST calls and hand their results to the engine with ``engine_handle.put(event)``.
``coalesce`` + ``max_instances=1``: a job that overran or missed fires runs once, never twice in
parallel; ``misfire_grace`` bounds how late a run may still start.

``next_fire_times`` asks the very trigger the scheduler uses, so tests can prove a schedule fires
as declared without waiting for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import msgspec
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

log = logging.getLogger(__name__)

JobFn = Callable[[Any, Mapping[str, Any]], Any]
"""``job(engine_handle, params)``: runs on a scheduler thread."""


class ScheduleLike(Protocol):
    """The fields of ``botcore.config`` schedule entries the scheduler reads."""

    name: str
    job: str
    every: float | timedelta | None
    cron: str | None
    misfire_grace: float | timedelta
    params: Mapping[str, Any]


class JobRun(msgspec.Struct, frozen=True):
    """One execution of a scheduled job."""

    schedule: str
    job: str
    start: datetime
    end: datetime
    ok: bool
    error: str = ""
    thread: str = ""

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def _seconds(value: float | timedelta | None) -> float | None:
    """Config durations may be seconds or timedeltas."""
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def build_trigger(schedule: ScheduleLike, now: datetime | None = None) -> BaseTrigger:
    """The APScheduler trigger for a schedule entry (UTC).

    Interval schedules first fire one period after ``now`` (start-up), like APScheduler's default.
    """
    every, cron = _seconds(getattr(schedule, "every", None)), getattr(schedule, "cron", None)
    if (every is None) == (cron is None):
        raise ValueError(f"schedule {schedule.name!r}: give exactly one of 'every' or 'cron'")
    if every is not None:
        if every <= 0:
            raise ValueError(f"schedule {schedule.name!r}: 'every' must be > 0 seconds")
        start = (now or datetime.now(UTC)) + timedelta(seconds=every)
        return IntervalTrigger(seconds=every, start_date=start, timezone=UTC)
    try:
        return CronTrigger.from_crontab(str(cron), timezone=UTC)
    except ValueError as exc:
        raise ValueError(f"schedule {schedule.name!r}: bad cron {cron!r}: {exc}") from None


def next_fire_times(schedule: ScheduleLike, start: datetime, n: int) -> list[datetime]:
    """The first ``n`` times the schedule fires after ``start`` (an aware datetime)."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    trigger = build_trigger(schedule, start)
    out: list[datetime] = []
    prev: datetime | None = None
    now = start
    while len(out) < n:
        nxt = trigger.get_next_fire_time(prev, now)
        if nxt is None:
            break
        out.append(nxt)
        prev = now = nxt
    return out


class Scheduler:
    """Runs the configured schedules; keeps a bounded per-schedule run history."""

    def __init__(
        self,
        schedules: Sequence[ScheduleLike],
        jobs: Mapping[str, JobFn],
        engine_handle: Any,
        history: int = 100,
        workers: int = 2,
    ) -> None:
        self._schedules = list(schedules)
        self._jobs = jobs
        self._handle = engine_handle
        self._lock = threading.Lock()
        self._history: dict[str, deque[JobRun]] = {}
        names = set()
        for s in self._schedules:
            if s.name in names:
                raise ValueError(f"duplicate schedule name {s.name!r}")
            names.add(s.name)
            if s.job not in jobs:
                known = ", ".join(sorted(jobs)) or "none"
                raise ValueError(f"schedule {s.name!r}: unknown job {s.job!r} (registered: {known})")
            build_trigger(s)  # validate now, not at start
            self._history[s.name] = deque(maxlen=history)
        self._sched = BackgroundScheduler(
            timezone=UTC,
            executors={
                "default": ThreadPoolExecutor(workers, pool_kwargs={"thread_name_prefix": "botcore-job"})
            },
            job_defaults={"coalesce": True, "max_instances": 1},
        )
        self._started = False

    @property
    def names(self) -> list[str]:
        return [s.name for s in self._schedules]

    def start(self) -> None:
        now = datetime.now(UTC)
        for s in self._schedules:
            self._sched.add_job(
                self._run,
                trigger=build_trigger(s, now),
                args=(s,),
                id=s.name,
                name=s.name,
                misfire_grace_time=max(1, round(_seconds(getattr(s, "misfire_grace", None)) or 10)),
            )
        self._sched.start()
        self._started = True

    def run_now(self, name: str) -> None:
        """Fire a schedule immediately (still on a scheduler thread)."""
        self._sched.modify_job(name, next_run_time=datetime.now(UTC))

    def next_run(self, name: str) -> datetime | None:
        job = self._sched.get_job(name)
        return job.next_run_time if job is not None else None

    def shutdown(self, wait: bool = True) -> None:
        if self._started:
            self._started = False
            self._sched.shutdown(wait=wait)

    def history(self, name: str | None = None) -> list[JobRun]:
        """Past runs, oldest first (all schedules when ``name`` is None)."""
        with self._lock:
            if name is not None:
                return list(self._history.get(name, ()))
            runs = [r for d in self._history.values() for r in d]
        return sorted(runs, key=lambda r: r.start)

    def _run(self, schedule: ScheduleLike) -> None:
        start = datetime.now(UTC)
        t0 = time.monotonic()
        ok, err = True, ""
        try:
            self._jobs[schedule.job](self._handle, dict(schedule.params or {}))
        except Exception as exc:
            ok, err = False, f"{type(exc).__name__}: {exc}"[:500]
            log.exception("scheduled job %s (%s) failed", schedule.name, schedule.job)
        end = start + timedelta(seconds=time.monotonic() - t0)
        run = JobRun(schedule.name, schedule.job, start, end, ok, err, threading.current_thread().name)
        with self._lock:
            self._history[schedule.name].append(run)
