"""A parent's own ops (``"ops"`` rows) are timed as the gaps between its child calls."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnprof
from cnnprof.timing.clocks import FakeClock, PerfCounterClock
from cnnprof.timing.kernels import profile_kernels
from cnnprof.timing.stretches import GapTracker, stretch_plan
from cnnprof.timing.timer import LayerTimer

MS = 1e-3


class Step(nn.Module):
    def __init__(self, clock: FakeClock, seconds: float) -> None:
        super().__init__()
        self.clock = clock
        self.seconds = seconds

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.clock.advance(self.seconds)
        return x * 2


class Gappy(nn.Module):
    """Own work before, between and after its children; the middle gap runs only a view."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.a = Step(clock, 1 * MS)
        self.b = Step(clock, 2 * MS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.clock.advance(0.25 * MS)
        x = x + 1                      # gap 0
        y = self.a(x).view(-1)         # gap 1: a view, no row, its time stays the parent's
        self.clock.advance(0.125 * MS)
        y = self.b(y)
        self.clock.advance(0.5 * MS)
        return torch.cat([y, y]) - 1   # gap 2: cat + sub


def test_gap_rows_are_named_and_timed_exactly_on_a_fake_clock() -> None:
    clock = FakeClock()
    model = Gappy(clock)
    report = cnnprof.profile(model, [torch.ones(2, 3)])
    assert [r.name for r in report.layers] == ["", "(add)", "a", "b", "(cat+sub)"]
    plan = stretch_plan(report)
    assert plan == {"": {0: "(add)", 2: "(cat+sub)"}}
    timer = LayerTimer(model, clock, stretches=plan)
    assert timer.names == ["", "a", "b", "(add)", "(cat+sub)"]
    with timer.attached():
        inclusive, own, calls, e2e, _, _ = timer.iteration(lambda: model(torch.ones(2, 3)))
    got = dict(zip(timer.names, zip(inclusive, own, calls, strict=True), strict=True))
    assert got["(add)"] == pytest.approx((0.25 * MS, 0.25 * MS, 1))
    assert got["(cat+sub)"] == pytest.approx((0.5 * MS, 0.5 * MS, 1))
    # the parent keeps what ran in a gap that has no row: the view gap's 0.125 ms
    assert got[""][0] == pytest.approx(3.875 * MS) and got[""][1] == pytest.approx(0.125 * MS)
    # the leaves (modules and gaps) and the parent's rest make up the whole call
    assert sum(v[1] for v in got.values()) == pytest.approx(e2e)


def test_gap_tracker_survives_an_exception_and_starts_clean() -> None:
    opened: list[int] = []
    closed: list[int] = []
    tracker: GapTracker[int] = GapTracker({0: {0: 7, 1: 8}}, lambda row: opened.append(row)
                                          or row, closed.append)
    tracker.entered(0)            # parent starts: gap 0 opens
    tracker.entering()            # child starts: gap 0 closes
    tracker.entered(1)
    assert not tracker.leaving(0)  # a post-hook of the wrong module changes nothing
    tracker.clear()               # the forward raised; the next iteration starts afresh
    tracker.entered(0)
    assert tracker.leaving(0)
    assert opened == [7, 7] and closed == [7, 7]


def test_time_report_on_cpu_times_resnet_residual_adds() -> None:
    from cnnprof.timing.api import TimingOptions, time_report

    report = cnnprof.profile("basic_block")
    timed = time_report(report, "basic_block", TimingOptions(device="cpu", warmup=1, repeats=3))
    add = timed.layer("(add_)")
    assert add.time is not None and add.time.median_s > 0 and add.time.calls == 1
    t = timed.timing
    assert t is not None
    leaves = sum(r.time.self_median_s for r in timed.layers if r.is_leaf and r.time)
    assert t.leaf_self_sum_s == pytest.approx(leaves)


def test_kernel_ranges_attribute_a_gaps_ops_to_its_row() -> None:
    report = cnnprof.profile("basic_block")
    from cnnprof.zoo import resolve

    model, _ = resolve("basic_block", {}).build("cpu")
    x = torch.randn(1, 64, 56, 56)
    with torch.no_grad():
        stats = profile_kernels(model, lambda: model(x), device="cpu", iterations=1,
                                stretches=stretch_plan(report))
    # on the CPU the "kernels" are the outermost aten ops of each range
    assert [k["name"] for k in stats.layer_kernels("(add_)")] == ["aten::add_"]
    assert "aten::add_" not in {k["name"] for k in stats.layer_kernels("")}
    # the gap's range nests in the root's: its time is part of the root's inclusive time
    assert 0 < (stats.layer_inclusive_s("(add_)") or 0) < (stats.layer_inclusive_s("") or 0)


def test_timer_without_a_plan_is_unchanged() -> None:
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    timer = LayerTimer(model, PerfCounterClock())
    assert timer.names == ["", "0", "1"] and not timer._gaps
