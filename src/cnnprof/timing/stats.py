"""Statistics derived from raw samples (samples are always kept; these are views of them)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(samples: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default 'linear' method), ``q`` in [0, 100]."""
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    return _at(sorted(samples), q)


def _at(ordered: Sequence[float], q: float) -> float:
    """``percentile`` of samples already sorted (``summarize`` sorts once for all three)."""
    pos = (len(ordered) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    frac = pos - low
    return ordered[low] + (ordered[high] - ordered[low]) * frac


def median(samples: Sequence[float]) -> float:
    return percentile(samples, 50.0)


@dataclass(frozen=True)
class Summary:
    median_s: float
    p10_s: float
    p90_s: float
    min_s: float
    max_s: float
    mean_s: float
    count: int


def summarize(samples: Sequence[float]) -> Summary:
    if not samples:
        raise ValueError("summarize needs at least one sample")
    ordered = sorted(samples)
    return Summary(
        median_s=_at(ordered, 50.0),
        p10_s=_at(ordered, 10.0),
        p90_s=_at(ordered, 90.0),
        min_s=min(samples),
        max_s=max(samples),
        mean_s=math.fsum(samples) / len(samples),
        count=len(samples),
    )
