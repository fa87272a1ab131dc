"""Shared helpers of botcore's benchmarks: interleaved medians, ratios, the machine, the table.

Why interleaved: this machine is small and shared, so a burst of load from elsewhere lasts
seconds. Contenders that take turns inside every repetition all see the same burst, so the
*ratios* stay meaningful even when the absolute figures wobble; the median over repetitions
then drops the unlucky turns.
"""

from __future__ import annotations

import gzip
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent


# ------------------------------------------------------------------------------------------------
# Timing
# ------------------------------------------------------------------------------------------------


def interleaved(runs: Mapping[str, Callable[[], float]], repeat: int) -> dict[str, list[float]]:
    """Call every ``run`` once per repetition, in turn; each returns one sample (e.g. seconds)."""
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(max(1, repeat)):
        for name, run in runs.items():
            samples[name].append(run())
    return samples


def medians(samples: Mapping[str, Sequence[float]]) -> dict[str, float]:
    return {name: statistics.median(values) for name, values in samples.items()}


def rate_of_passes(one_pass: Callable[[], float], units: int, min_seconds: float) -> float:
    """Units per second over as many passes as needed to time at least ``min_seconds``.

    ``one_pass`` does its untimed set-up itself and returns the seconds of its timed part, so a
    fast contender is timed over enough work for the clock, a slow one over a single pass.
    """
    timed = 0.0
    passes = 0
    while passes == 0 or timed < min_seconds:
        timed += one_pass()
        passes += 1
    return units * passes / timed if timed > 0 else float("inf")


def timed(fn: Callable[[], Any]) -> float:
    """Seconds of one call."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# ------------------------------------------------------------------------------------------------
# Formatting
# ------------------------------------------------------------------------------------------------


def fmt_num(value: float | None, digits: int = 0) -> str:
    """Thousands separators; fewer digits as values grow; '-' for None."""
    if value is None:
        return "-"
    if value != value:  # NaN
        return "nan"
    if digits == 0 and abs(value) < 100 and value != int(value):
        digits = 1 if abs(value) >= 10 else 2
    return f"{value:,.{digits}f}"


def fmt_ratio(ratio: float | None) -> str:
    """``12.3x``; '-' when there is nothing to compare."""
    if ratio is None or ratio != ratio or ratio in (float("inf"), float("-inf")):
        return "-"
    if ratio >= 100:
        return f"{ratio:,.0f}x"
    if ratio >= 10:
        return f"{ratio:.1f}x"
    return f"{ratio:.2f}x"


def speedup(ours: float | None, theirs: float | None, higher_is_better: bool) -> float | None:
    """How many times better ours is than theirs (>1: ours is better), whatever the unit's sense."""
    if not ours or not theirs:
        return None
    return ours / theirs if higher_is_better else theirs / ours


# ------------------------------------------------------------------------------------------------
# The machine
# ------------------------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def compiled_core() -> str:
    """Which core the benchmarks in this process use, as botcore.core decided at import."""
    from botcore.core import NO_EXTENSIONS, USING_EXTENSIONS

    if USING_EXTENSIONS:
        return "compiled (Cython)"
    return "pure Python (BOTCORE_NO_EXTENSIONS set)" if NO_EXTENSIONS else "pure Python (not built)"


def machine() -> dict[str, str]:
    load = ""
    try:
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        pass
    return {
        "cpu": cpu_model(),
        "cores": str(os.cpu_count() or "?"),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": platform.platform(terse=True),
        "core": compiled_core(),
        "load": load,
    }


def describe_machine() -> str:
    m = machine()
    return (
        f"{m['cpu']}, {m['cores']} cores, {m['python']}, {m['os']}; botcore core: {m['core']}; "
        f"load average at start {m['load']}"
    )


# ------------------------------------------------------------------------------------------------
# The table
# ------------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One measurement: botcore's figure, optionally against one baseline and a target.

    ``ratio`` is always "times better than the baseline" (>1 = botcore better), whatever the unit.
    """

    area: str
    what: str
    value: float | None
    unit: str
    baseline: str = ""
    baseline_value: float | None = None
    higher_is_better: bool = True
    target: str = ""
    verdict: str = ""
    note: str = ""
    digits: int = 0
    text: str = ""  # shown instead of the number (e.g. "not installed")
    baseline_text: str = ""
    show_ratio: bool = True  # False when the two figures are not comparable as "better"

    @property
    def ratio(self) -> float | None:
        return speedup(self.value, self.baseline_value, self.higher_is_better)


@dataclass
class Section:
    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""


HEADER = ("#", "measurement", "botcore", "unit", "baseline (same input)", "baseline", "x better", "target")


def table_lines(sections: Sequence[Section]) -> list[str]:
    """A pipe table: aligned for the terminal, valid Markdown for the README."""
    body: list[tuple[str, ...]] = []
    for i, sec in enumerate(sections, 1):
        if sec.error:
            body.append((str(i), f"**{sec.title}**: FAILED ({sec.error})", "", "", "", "", "", ""))
            continue
        last_what = None
        for row in sec.rows:
            what = row.what if row.what != last_what else "″"
            last_what = row.what
            value = row.text or fmt_num(row.value, row.digits)
            base = row.baseline_text or (fmt_num(row.baseline_value, row.digits) if row.baseline else "")
            target = f"{row.target} {row.verdict}".strip()
            body.append(
                (
                    str(i),
                    what,
                    value,
                    row.unit,
                    row.baseline,
                    base,
                    fmt_ratio(row.ratio) if row.baseline and row.show_ratio else "",
                    target,
                )
            )
    widths = [max(len(h), *(len(r[c]) for r in body)) if body else len(h) for c, h in enumerate(HEADER)]
    right = {2, 5, 6}

    def line(cells: Sequence[str]) -> str:
        out = []
        for c, cell in enumerate(cells):
            out.append(cell.rjust(widths[c]) if c in right else cell.ljust(widths[c]))
        return "| " + " | ".join(out) + " |"

    sep = (
        "|"
        + "|".join(("-" * (w + 1) + ":") if c in right else ("-" * (w + 2)) for c, w in enumerate(widths))
        + "|"
    )
    return [line(HEADER), sep, *(line(r) for r in body)]


def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("MET" if ok else "NOT MET")


# ------------------------------------------------------------------------------------------------
# Inputs and child processes
# ------------------------------------------------------------------------------------------------


def truncated_recording(events: int | None, folder: Path) -> list[Path]:
    """The shipped capture, cut after ``events`` records (snapshot line included); None = whole."""
    from botcore.replay import iter_recording, shipped_recording

    paths = shipped_recording()
    if events is None:
        return paths
    out = folder / f"btcusdt_first{events}.gz"
    with gzip.open(out, "wb", compresslevel=1) as fh:
        for n, (ns, raw) in enumerate(iter_recording(paths)):
            if n >= events:
                break
            fh.write(b"%d %s\n" % (ns, raw))
    return [out]


def run_child(argv: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 900) -> Any:
    """Run a child Python process whose last stdout line is JSON; return it decoded.

    Raises RuntimeError with the child's stderr tail when it fails (the caller shows it in the table).
    """
    proc = subprocess.run(
        list(argv),
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"exit {proc.returncode}: {tail[-400:]}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if not lines:
        raise RuntimeError("no output")
    return json.loads(lines[-1])


def self_child(
    module: str, args: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 900
) -> Any:
    """Run ``bench/<module>.py`` with this interpreter as a child (see ``run_child``)."""
    return run_child([sys.executable, str(BENCH_DIR / f"{module}.py"), *args], env=env, timeout=timeout)
