"""In-process metrics: a log-linear latency histogram and plain counters.

Recording must cost next to nothing on the engine thread, so the histogram is a flat list of
bucket counts indexed by a couple of integer operations (HdrHistogram's layout: values below
``2**SUB_BITS`` ns get one bucket each, above that every power of two is split into
``2**(SUB_BITS-1)`` equal buckets, so the relative error is at most ``2**-(SUB_BITS-1)``, ~3%).
No locks: a histogram belongs to one writer thread; other threads read it through snapshots the
writer publishes (see ``Engine.status``) or after the writer stopped.

Clock: every latency in botcore is a difference of ``time.monotonic_ns()`` readings
(``MarketFrame.recv_ns`` included), see ``now_ns``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

SUB_BITS = 6
_SUB = 1 << SUB_BITS  # values below this get exact buckets
_HALF = _SUB >> 1  # buckets per power of two above the linear range
MAX_SHIFT = 40  # values >= 2**(SUB_BITS+MAX_SHIFT) ns (~19.5 h) land in the last bucket
N_BUCKETS = (MAX_SHIFT + 1) * _HALF + _SUB

now_ns = time.monotonic_ns
"""The one clock for latencies (CLOCK_MONOTONIC): producers stamp ``recv_ns`` with it."""


def bucket_index(ns: int) -> int:
    """Bucket of a value in ns (negative values count as 0)."""
    if ns < _SUB:
        return ns if ns > 0 else 0
    shift = ns.bit_length() - SUB_BITS
    if shift > MAX_SHIFT:
        return N_BUCKETS - 1
    return shift * _HALF + (ns >> shift)


def bucket_bounds(index: int) -> tuple[int, int]:
    """Inclusive ``(low, high)`` ns range of a bucket."""
    if index < _SUB:
        return index, index
    shift = index // _HALF - 1
    mantissa = index - shift * _HALF
    return mantissa << shift, ((mantissa + 1) << shift) - 1


class LatencyHistogram:
    """Latency distribution in ns; percentiles reported in µs."""

    __slots__ = ("counts", "count", "total_ns", "min_ns", "max_ns")

    def __init__(self) -> None:
        self.counts: list[int] = [0] * N_BUCKETS
        self.count = 0
        self.total_ns = 0
        self.min_ns = 0
        self.max_ns = 0

    def record(self, ns: int) -> None:
        """O(1): a bit_length, a shift and three adds."""
        if ns < _SUB:
            i = ns if ns > 0 else 0
        else:
            shift = ns.bit_length() - SUB_BITS
            i = shift * _HALF + (ns >> shift) if shift <= MAX_SHIFT else N_BUCKETS - 1
        self.counts[i] += 1
        if self.count == 0 or ns < self.min_ns:
            self.min_ns = ns
        if ns > self.max_ns:
            self.max_ns = ns
        self.count += 1
        self.total_ns += ns

    def percentile(self, p: float) -> float:
        """The p-th percentile (0..100) in µs: midpoint of its bucket, clamped to [min, max]."""
        if self.count == 0:
            return 0.0
        if not 0.0 <= p <= 100.0:
            raise ValueError(f"percentile {p} outside 0..100")
        if p == 100.0:
            return self.max_ns / 1000.0
        rank = max(1, -(-int(p * self.count * 1000) // 100000))  # ceil(p/100*count), >= 1
        seen = 0
        for i, c in enumerate(self.counts):
            if c:
                seen += c
                if seen >= rank:
                    lo, hi = bucket_bounds(i)
                    mid = (lo + hi) / 2
                    return min(max(mid, self.min_ns), self.max_ns) / 1000.0
        return self.max_ns / 1000.0  # pragma: no cover - rank <= count always hits above

    def mean_us(self) -> float:
        return self.total_ns / self.count / 1000.0 if self.count else 0.0

    def merge(self, other: LatencyHistogram) -> None:
        """Add ``other``'s samples to this histogram (e.g. per-thread histograms at report time)."""
        if other.count == 0:
            return
        counts = self.counts
        for i, c in enumerate(other.counts):
            if c:
                counts[i] += c
        self.min_ns = other.min_ns if self.count == 0 else min(self.min_ns, other.min_ns)
        self.max_ns = max(self.max_ns, other.max_ns)
        self.count += other.count
        self.total_ns += other.total_ns

    def copy(self) -> LatencyHistogram:
        h = LatencyHistogram()
        h.merge(self)
        return h

    def summary(self, percentiles: Iterable[float] = (50, 90, 99, 99.9)) -> dict[str, float]:
        """Plain dict for status lines and reports (µs)."""
        out: dict[str, float] = {"count": float(self.count)}
        for p in percentiles:
            out[f"p{p:g}"] = self.percentile(p)
        out["max"] = self.max_ns / 1000.0
        out["mean"] = self.mean_us()
        return out

    def __repr__(self) -> str:
        if not self.count:
            return "LatencyHistogram(empty)"
        return (
            f"LatencyHistogram(n={self.count}, p50={self.percentile(50):.1f}us, "
            f"p99={self.percentile(99):.1f}us, max={self.max_ns / 1000:.1f}us)"
        )


class Counters(dict[str, int]):
    """Named monotonically increasing counters (one writer thread; read copies elsewhere)."""

    def inc(self, name: str, n: int = 1) -> None:
        self[name] = self.get(name, 0) + n

    def snapshot(self) -> dict[str, int]:
        return dict(self)
