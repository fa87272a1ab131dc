"""LatencyHistogram: bucket layout, percentiles against exact sorting, merge."""

from __future__ import annotations

import math
import random

import pytest

from botcore.metrics import N_BUCKETS, Counters, LatencyHistogram, bucket_bounds, bucket_index


def test_buckets_are_contiguous_and_contain_their_values() -> None:
    prev_hi = -1
    for i in range(N_BUCKETS - 1):
        lo, hi = bucket_bounds(i)
        assert lo == prev_hi + 1 and hi >= lo
        prev_hi = hi
    rng = random.Random(5)
    for _ in range(20_000):
        v = int(10 ** rng.uniform(0, 12))
        lo, hi = bucket_bounds(bucket_index(v))
        assert lo <= v <= hi
        assert (hi - lo) <= max(1, v) / 32 + 1  # relative width <= 2**-(SUB_BITS-1)


def test_percentiles_track_exact_values_within_bucket_error() -> None:
    rng = random.Random(11)
    values = [int(rng.lognormvariate(10, 1.0)) for _ in range(50_000)]
    h = LatencyHistogram()
    for v in values:
        h.record(v)
    ordered = sorted(values)
    for p in (1, 50, 90, 99, 99.9):
        rank = max(1, math.ceil(len(ordered) * p / 100))
        exact = ordered[rank - 1] / 1000
        assert h.percentile(p) == pytest.approx(exact, rel=0.035)
    assert h.count == len(values)
    assert h.percentile(100) == max(values) / 1000
    assert h.percentile(0) >= min(values) / 1000
    assert h.mean_us() == pytest.approx(sum(values) / len(values) / 1000)


def test_empty_negative_huge_and_bad_percentile() -> None:
    h = LatencyHistogram()
    assert h.percentile(50) == 0.0 and "empty" in repr(h)
    h.record(-5)  # clock went backwards: counted in the 0 bucket
    h.record(10**20)  # absurd: last bucket, never an IndexError
    assert h.count == 2
    with pytest.raises(ValueError):
        h.percentile(101)


def test_merge_equals_recording_everything_in_one() -> None:
    a, b, both = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    for i in range(1, 5000):
        (a if i % 3 else b).record(i * 37)
        both.record(i * 37)
    merged = a.copy()
    merged.merge(b)
    assert merged.counts == both.counts
    assert (merged.count, merged.min_ns, merged.max_ns, merged.total_ns) == (
        both.count,
        both.min_ns,
        both.max_ns,
        both.total_ns,
    )
    assert merged.summary()["p99"] == both.summary()["p99"]


def test_counters() -> None:
    c = Counters()
    c.inc("a")
    c.inc("a", 4)
    snap = c.snapshot()
    c.inc("b")
    assert snap == {"a": 5} and c == {"a": 5, "b": 1}
