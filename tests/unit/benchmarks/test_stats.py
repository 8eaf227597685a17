"""Percentiles and summaries of the benchmark timings."""

from __future__ import annotations

import pytest
from benchmarks.stats import percentile, ratio_of_medians, summarize_latencies


def test_percentile_interpolates_between_closest_ranks() -> None:
    assert percentile([10.0, 20.0, 30.0, 40.0], 0.5) == pytest.approx(25.0)
    assert percentile([10.0, 20.0, 30.0, 40.0], 0.99) == pytest.approx(39.7)


def test_percentile_ignores_the_order_of_samples() -> None:
    assert percentile([3.0, 1.0, 2.0], 0.0) == 1.0
    assert percentile([3.0, 1.0, 2.0], 1.0) == 3.0


def test_percentile_of_no_samples_is_refused() -> None:
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 0.5)


def test_percentile_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        percentile([1.0], 99)


def test_summary_reports_milliseconds_and_rate() -> None:
    samples = [0.001] * 98 + [0.010, 0.020]
    summary = summarize_latencies(samples, wall_seconds=2.0)
    assert summary.count == 100
    assert summary.p50_ms == pytest.approx(1.0)
    assert summary.max_ms == pytest.approx(20.0)
    assert summary.mean_ms == pytest.approx((98 * 1.0 + 10.0 + 20.0) / 100)
    assert summary.p99_ms > summary.p95_ms
    assert summary.per_second == pytest.approx(50.0)


def test_ratio_of_medians_compares_against_the_baseline() -> None:
    assert ratio_of_medians([2.0, 2.2, 9.0], [1.0, 1.1, 1.0]) == pytest.approx(2.2)
