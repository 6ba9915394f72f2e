"""Timing pass: real per-layer times (clocks, hooks, statistics), memory, kernels, roofline.

Importing this package does not import torch; ``time_report`` lives in ``cnnprof.timing.api``.
"""

from __future__ import annotations

from cnnprof.timing.clocks import Clock, PerfCounterClock
from cnnprof.timing.stats import Summary, summarize

__all__ = ["Clock", "PerfCounterClock", "Summary", "summarize"]
