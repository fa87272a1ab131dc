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


@pytest.mark.parametrize("gap", [[], ["--gap", "sleep:20"], ["--gap", "spin:20"]])
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
    if gap:
        assert f"{gap[1].split(':')[0]} 20 µs after every frame" in proc.stdout


@pytest.mark.parametrize("args", [["--split", "--gap", "nap:20"], ["--split", "--gap", "sleep:0"], ["--gap", "sleep:20"]])
def test_requote_split_refuses_a_bad_gap(args: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, str(RUN.parent / "bench_requote_phases.py"), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 2
    assert "--gap" in proc.stderr
