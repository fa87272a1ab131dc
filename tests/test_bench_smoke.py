"""The benchmark runner still runs: ``bench/run.py`` on a tiny input prints its table and exits 0.

Speed is never asserted here (figures live in bench/README.md); this only catches a runner broken
by an API change in the code it measures.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parent.parent / "bench" / "run.py"
HEADER = "| # | measurement"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "BOTCORE_BENCH_NAUTILUS_PYTHON": "",
    }  # the optional extra stays out of the smoke test
    return subprocess.run(
        [sys.executable, str(RUN), *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )


def test_quick_book_section_prints_the_table() -> None:
    proc = _run("--quick", "--only", "book", "--frames", "200", "--repeat", "1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    header = [ln for ln in lines if ln.startswith(HEADER)]
    assert len(header) == 1, proc.stdout
    rows = [ln for ln in lines if ln.startswith("| 1 |")]
    assert any("bytes->book+top" in ln and "pure-Python twin" in ln for ln in rows), proc.stdout
    assert any("nautilus-trader" in ln and "skipped" in ln for ln in rows), proc.stdout
    assert "FAILED" not in proc.stdout


def test_unknown_section_is_refused() -> None:
    proc = _run("--only", "book,nosuch")
    assert proc.returncode == 2
    assert "nosuch" in proc.stderr
    assert HEADER not in proc.stdout


def test_bad_sizes_are_refused() -> None:
    proc = _run("--only", "book", "--frames", "0")
    assert proc.returncode == 2
    assert "--frames" in proc.stderr


@pytest.mark.parametrize(
    "gap", [[], ["--gap", "sleep:20"], ["--gap", "spin:20"], ["--gap", "cspin:20"], ["--gap", "paced:20"]]
)
def test_requote_split_prints_every_part(gap: list[str]) -> None:
    """``bench_requote_phases.py --split`` on the capture's first frames: one row per part, with or
    without a pause after every frame."""
    proc = subprocess.run(
        [sys.executable, str(RUN.parent / "bench_requote_phases.py"), "--split", "--frames", "20000", *gap],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for part in ("frame -> strategy", "| strategy ", "strategy -> 1st hand-off", "1st -> 2nd hand-off", "last hand-off"):
        assert part in proc.stdout, proc.stdout
    if gap == ["--gap", "paced:20"]:
        assert "paced as recorded (gaps cut to 20 µs)" in proc.stdout
    elif gap:
        assert f"{gap[1].split(':')[0]} 20 µs after every frame" in proc.stdout


@pytest.mark.parametrize("args", [["--split", "--gap", "nap:20"], ["--split", "--gap", "sleep:0"], ["--split", "--gap", "cspin:x"], ["--gap", "sleep:20"]])
def test_requote_split_refuses_a_bad_gap(args: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, str(RUN.parent / "bench_requote_phases.py"), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 2
    assert "--gap" in proc.stderr


def _bench_module(name: str):  # noqa: ANN202 - a bench script imported as a module
    sys.path.insert(0, str(RUN.parent))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(RUN.parent))


def test_paced_replay_waits_for_each_frame_and_decides_the_same() -> None:
    """``bench_engine``'s paced mode: the replay takes at least the recording's gaps (each cut to
    the cap), and pacing changes when the engine runs, not what it decides."""
    be = _bench_module("bench_engine")
    frames, snap, snap_at = be.load(400)
    cap = 2_000_000  # ~0.28 s of gaps over these frames: far more than replaying them back to back
    due = sum(min(b[0] - a[0], cap) for a, b in zip(frames, frames[1:], strict=False))
    unpaced = be.run_direct("mm3", frames, snap, snap_at, True)
    paced = be.run_direct("mm3", frames, snap, snap_at, True, pace_cap_ns=cap)
    assert paced["us_per_frame"] * len(frames) * 1000 >= due > 0
    assert unpaced["us_per_frame"] * len(frames) * 1000 < due  # the check above can tell the two apart
    assert paced["orders"] == unpaced["orders"] > 0
    assert paced["replaces"] == unpaced["replaces"]


def test_cache_decay_prints_a_row_per_wait() -> None:
    proc = subprocess.run(
        [sys.executable, str(RUN.parent / "bench_cache_decay.py"), "--sizes", "16", "--gaps", "0,10", "--reps", "5"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("|       16 KB")]
    assert [r.split("|")[2].strip() + r.split("|")[3].strip() for r in rows] == ["busy0", "busy10", "sleep0", "sleep10"]


@pytest.mark.parametrize("args", [["--gaps", "0,x"], ["--sizes", "-1"], ["--reps", "2"], ["--sizes", "0"]])
def test_cache_decay_refuses_bad_arguments(args: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, str(RUN.parent / "bench_cache_decay.py"), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 2
    assert args[0] in proc.stderr


def test_busy_wait_waits_without_holding_the_gil() -> None:
    """``--gap cspin`` must keep the core busy without running Python: another thread runs meanwhile."""
    import threading
    import time

    decay = _bench_module("bench_cache_decay")
    decay.busy_wait(1)  # compiled outside the timed part
    counted = [0]
    stop = threading.Event()

    def count() -> None:
        while not stop.is_set():
            counted[0] += 1

    t = threading.Thread(target=count)
    t.start()
    time.sleep(0.01)
    before = counted[0]
    t0 = time.perf_counter_ns()
    decay.busy_wait(50_000_000)
    waited = time.perf_counter_ns() - t0
    during = counted[0] - before
    stop.set()
    t.join()
    assert waited >= 50_000_000
    assert during > 1000  # the other thread ran Python while this one waited
