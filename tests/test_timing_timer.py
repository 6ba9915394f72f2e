"""Timing logic with a fake clock: exact per-layer inclusive and self times, shared modules,
nesting, hook overhead, statistics; and the model is left as found (Ctrl-C included)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from cnnprof.report import ModelInfo, Report, TensorInfo, Totals
from cnnprof.timing.clocks import FakeClock, PerfCounterClock
from cnnprof.timing.stats import percentile, summarize
from cnnprof.timing.timer import LayerTimer, Schedule, module_names, run_timing

MS = 1e-3
US = 1e-6


class Work(nn.Module):
    """A layer that 'takes' exactly ``seconds`` on the fake clock."""

    def __init__(self, clock: FakeClock, seconds: float) -> None:
        super().__init__()
        self.clock = clock
        self.seconds = seconds

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.clock.advance(self.seconds)
        return x + 1


class Block(nn.Module):
    """Two children plus 0.5 ms of its own work (like a residual add in the parent)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.b = Work(clock, 2 * MS)
        self.c = Work(clock, 3 * MS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.c(self.b(x))
        self.clock.advance(0.5 * MS)
        return y + x


class Net(nn.Module):
    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.a = Work(clock, 1 * MS)
        self.block = Block(clock)
        self.act = Work(clock, 0.25 * MS)  # called twice: a shared module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.block(self.act(self.a(x))))


def _timed(clock: FakeClock, repeats: int = 3):  # type: ignore[no-untyped-def]
    model = Net(clock)
    result, plain, _ = run_timing(model, lambda: model(torch.zeros(2)), clock,
                                  Schedule(warmup=1, repeats=repeats))
    return model, result, plain


def test_exact_inclusive_and_self_times() -> None:
    clock = FakeClock()
    _, result, plain = _timed(clock)
    inc = {k: v[0] for k, v in result.inclusive_s.items()}
    own = {k: v[0] for k, v in result.self_s.items()}
    assert inc["a"] == pytest.approx(1 * MS)
    assert inc["block.b"] == pytest.approx(2 * MS)
    assert inc["block.c"] == pytest.approx(3 * MS)
    # block = 2 + 3 + 0.5 own = 5.5 ms; its self time is the 0.5 ms it spends itself
    assert inc["block"] == pytest.approx(5.5 * MS)
    assert own["block"] == pytest.approx(0.5 * MS)
    # the shared `act` runs twice per iteration: 2 * 0.25 = 0.5 ms, 2 calls
    assert inc["act"] == pytest.approx(0.5 * MS)
    assert result.calls["act"] == 2
    # root = 1 + 0.25 + 5.5 + 0.25 = 7 ms, all of it in children
    assert inc[""] == pytest.approx(7 * MS)
    assert own[""] == pytest.approx(0.0, abs=1e-12)
    assert result.end_to_end_s[0] == pytest.approx(7 * MS)
    assert plain[0] == pytest.approx(7 * MS)
    # self times telescope: summed over all modules they give the root's inclusive time
    assert sum(own.values()) == pytest.approx(inc[""])
    # one sync per iteration: (1 unhooked + 1 hooked) * (1 warm-up + 3 repeats)
    assert clock.syncs == 8
    assert len(result.end_to_end_s) == 3 and all(len(v) == 3 for v in result.inclusive_s.values())


def test_hook_overhead_is_measured_not_hidden() -> None:
    # every recorded mark costs 1 µs, like a CUDA event record would
    clock = FakeClock(per_record_s=1 * US)
    _, result, plain = _timed(clock)
    # unhooked: start mark (+1 µs) then 7 ms of work, then the end stamp: 7.001 ms
    assert plain[0] == pytest.approx(7 * MS + 1 * US)
    # hooked: 7 module calls * 2 marks + the e2e start mark = 15 µs inside the frame
    assert result.end_to_end_s[0] == pytest.approx(7 * MS + 15 * US)
    # a leaf pays one mark: b = 2 ms + 1 µs
    assert result.inclusive_s["block.b"][0] == pytest.approx(2 * MS + 1 * US)
    # block = own start mark + b's 2 marks + c's 2 marks = 5 µs over its 5.5 ms;
    # self = 5.5 ms + 5 µs - (2 ms + 1 µs) - (3 ms + 1 µs) = 0.5 ms + 3 µs
    assert result.inclusive_s["block"][0] == pytest.approx(5.5 * MS + 5 * US)
    assert result.self_s["block"][0] == pytest.approx(0.5 * MS + 3 * US)


def test_names_match_counting_trace_for_shared_modules() -> None:
    shared = nn.ReLU()
    model = nn.Sequential(nn.Sequential(nn.Linear(2, 2), shared), nn.Sequential(shared))
    names = {n: id(m) for n, m in module_names(model)}
    # the shared ReLU keeps its first parent's name; the second Sequential is still listed
    assert sorted(names) == ["", "0", "0.0", "0.1", "1"]
    assert names["0.1"] == id(shared)
    # the same names as the counting trace, so times land on the counted rows
    from cnnprof.trace.observers import ModuleObserver

    assert {n.name: id(n.module) for n in ModuleObserver(model).nodes.values()} == names


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_timer_leaves_model_as_found_even_on_keyboard_interrupt() -> None:
    class Interrupting(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 4)
            self.calls = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            if self.calls == 3:
                raise KeyboardInterrupt
            return self.lin(x)

    model = Interrupting()
    model.lin.train(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(KeyboardInterrupt):
        run_timing(model, lambda: model(torch.ones(1, 4)), PerfCounterClock(),
                   Schedule(warmup=1, repeats=5))
    assert _hooks(model) == 0
    assert model.training and not model.lin.training
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_timer_records_failing_layer() -> None:
    class Bad(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("boom")

    model = nn.Sequential(nn.Identity(), Bad())
    timer = LayerTimer(model, PerfCounterClock())
    with pytest.raises(RuntimeError), timer.attached():
        timer.iteration(lambda: model(torch.ones(1)))
    assert timer.failed == "1"
    assert _hooks(model) == 0


@pytest.mark.parametrize("samples", [[3.0], [1.0, 2.0], [5.0, 1.0, 4.0, 2.0, 3.0],
                                     [0.1 * i for i in range(37)]])
def test_percentiles_match_numpy_linear(samples: list[float]) -> None:
    np = pytest.importorskip("numpy")
    for q in (0, 10, 50, 90, 100):
        assert percentile(samples, q) == pytest.approx(float(np.percentile(samples, q)))


def test_summary_of_known_samples() -> None:
    s = summarize([4.0, 1.0, 3.0, 2.0, 5.0])
    # sorted 1..5: median 3; p10 at position 0.4 → 1 + 0.4 * (2 - 1) = 1.4; p90 → 4.6
    assert (s.median_s, s.min_s, s.max_s, s.mean_s, s.count) == (3.0, 1.0, 5.0, 3.0, 5)
    assert s.p10_s == pytest.approx(1.4) and s.p90_s == pytest.approx(4.6)
    with pytest.raises(ValueError):
        summarize([])


def _report_for(model: nn.Module, shape: tuple[int, ...]) -> Report:
    import cnnprof

    return cnnprof.profile(model, list(shape[1:]), batch=shape[0])


def test_time_report_fields_from_fake_clock() -> None:
    from cnnprof.timing.api import TimingOptions, time_report

    clock = FakeClock(per_record_s=1 * US)
    model = Net(clock)
    report = _report_for(model, (1, 2))
    timed = time_report(report, model, TimingOptions(device="cpu", warmup=1, repeats=4),
                        clock=clock)
    t = timed.timing
    assert t is not None
    # hooked 7.017 ms (15 module marks, 2 around the block's own add) vs unhooked 7.001 ms
    assert t.end_to_end_median_s == pytest.approx(7.017 * MS)
    assert t.end_to_end_unhooked_median_s == pytest.approx(7.001 * MS)
    assert t.hook_overhead == pytest.approx(0.016 / 7.001)
    # leaves: a (1 ms + 1 µs), b, c (+1 µs each), act (2 calls: 0.5 ms + 2 µs), and the
    # block's own add (0.5 ms + the 1 µs of the mark that opened it)
    assert t.leaf_self_sum_s == pytest.approx((1 + 2 + 3 + 0.5 + 0.5) * MS + 6 * US)
    add = timed.layer("block.(add)").time
    assert add is not None and add.median_s == pytest.approx(0.501 * MS)
    block = timed.layer("block").time
    # its own time: the marks no child interval holds (its start, b's and c's end, the gap's
    # end), 1 µs each
    assert block is not None and block.self_median_s == pytest.approx(4 * US)
    assert t.repeats == 4 and t.warmup == 1 and t.clock == "manual"
    assert len(t.end_to_end_samples_s) == 4
    a = timed.layer("a").time
    assert a is not None
    assert a.median_s == pytest.approx(1.001 * MS) and a.min_s == pytest.approx(1.001 * MS)
    assert a.share == pytest.approx(1.001 / 7.017)
    assert a.samples_s == pytest.approx([1.001 * MS] * 4)
    act = timed.layer("act").time
    assert act is not None and act.calls == 2
    # counts are untouched by timing
    assert [r.flops for r in timed.layers] == [r.flops for r in report.layers]
    assert timed.layer("a").memory is None  # memory is measured on CUDA only
    # JSON round trip keeps the timing
    again = Report.from_json(timed.to_json())
    assert again.timing == timed.timing and again.layer("a").time == a


def test_time_report_leaves_user_model_untouched() -> None:
    from cnnprof.timing.api import TimingOptions, time_report

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 6 * 6, 3))
    model[1].eval()  # mixed training flags must survive
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [m.training for m in model.modules()]
    report = _report_for(model, (2, 3, 8, 8))
    timed = time_report(report, model, TimingOptions(device="cpu", warmup=1, repeats=2))
    assert timed.layer("0").time is not None
    assert _hooks(model) == 0
    assert [m.training for m in model.modules()] == flags
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN running stats too


def test_time_on_meta_is_a_usage_error() -> None:
    from cnnprof.errors import UsageError
    from cnnprof.timing.api import TimingOptions, time_report

    report = Report(ModelInfo("x", "X", "instance"), (TensorInfo((1, 2), "float32"),), "meta",
                    Totals(), ())
    with pytest.raises(UsageError, match="real device"):
        time_report(report, nn.Linear(2, 2), TimingOptions(device="meta"))


def test_percentile_rejects_bad_q() -> None:
    with pytest.raises(ValueError):
        percentile([1.0], 101)
    assert math.isclose(percentile([2.0, 4.0], 50), 3.0)
