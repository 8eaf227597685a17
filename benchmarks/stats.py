"""Summaries of timing samples: percentiles, mean, and ratios of medians."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (0..1) by linear interpolation between closest ranks.

    The same definition as NumPy's default, so the numbers can be checked elsewhere.
    """
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be between 0 and 1, got {fraction}")
    ordered = sorted(samples)
    position = fraction * (len(ordered) - 1)
    lower = math.floor(position)
    upper = math.ceil(position)
    if lower == upper:
        return ordered[lower]
    weight = position - lower
    return ordered[lower] * (1.0 - weight) + ordered[upper] * weight


@dataclass(frozen=True)
class LatencySummary:
    """Latencies of one benchmark cell, in milliseconds."""

    count: int
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    seconds: float

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, float]:
        values: dict[str, float] = {k: round(float(v), 4) for k, v in asdict(self).items()}
        values["per_second"] = round(self.per_second, 1)
        return values


def summarize_latencies(samples_s: Sequence[float], wall_seconds: float) -> LatencySummary:
    """Summarize ``samples_s`` (seconds each) taken over ``wall_seconds`` of wall time."""
    if not samples_s:
        raise ValueError("no samples to summarize: the cell ran no operation")
    as_ms = [s * 1000.0 for s in samples_s]
    return LatencySummary(
        count=len(as_ms),
        mean_ms=statistics.fmean(as_ms),
        p50_ms=percentile(as_ms, 0.50),
        p95_ms=percentile(as_ms, 0.95),
        p99_ms=percentile(as_ms, 0.99),
        max_ms=max(as_ms),
        seconds=wall_seconds,
    )


def ratio_of_medians(ours: Sequence[float], baseline: Sequence[float]) -> float:
    """median(ours) / median(baseline): how many times the baseline's time ours takes."""
    if not ours or not baseline:
        raise ValueError("a ratio needs samples on both sides")
    reference = statistics.median(baseline)
    if reference <= 0:
        raise ValueError("the baseline's median must be positive")
    return statistics.median(ours) / reference
