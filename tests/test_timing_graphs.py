"""Graph-replay timing (``--graphs``) without a GPU: a fake backend "replays" by calling the
module again and reads a FakeClock the layers advance, so every planned count and every
per-layer time is exact. The CUDA backend itself is exercised in test_timing_cuda.py."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import torch
from graph_fakes import FakeGraphBackend
from torch import nn

from cnnprof.errors import UsageError
from cnnprof.timing import checks
from cnnprof.timing.clocks import FakeClock
from cnnprof.timing.graph_capture import Call, Measured
from cnnprof.timing.graphs import combine
from cnnprof.timing.isolated import Plan, choose_count, measure_call, record_calls
from cnnprof.timing.timer import TimerResult, module_names

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


class Syncing(Work):
    """Reads a value back to the host, as ``.item()`` does: a real capture refuses that."""

    def __init__(self, clock: FakeClock, seconds: float, backend: FakeGraphBackend) -> None:
        super().__init__(clock, seconds)
        self.backend = backend

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.backend.capturing:
            raise RuntimeError("operation not permitted when stream is capturing")
        return super().forward(x)


class Block(nn.Module):
    """Two children plus 0.5 ms of its own work (a residual add in the parent)."""

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


# -- choosing K ---------------------------------------------------------------------------
@pytest.mark.parametrize(("estimate", "target", "limit", "expected"), [
    (10 * US, 1 * MS, 2000, 100),   # 1 ms / 10 µs = 100 calls fill the window
    (0.3 * MS, 1 * MS, 2000, 4),    # 3.33 → 4: the window is at least the target
    (0.25 * MS, 1 * MS, 2000, 4),   # exactly 4, not 5 from rounding noise
    (3 * MS, 1 * MS, 2000, 1),      # longer than the window: one call
    (1 * US, 1 * MS, 64, 64),       # 1000 wanted, capped by the limit
    (0.0, 1 * MS, 64, 64),          # launches no kernel (Dropout in eval): the limit
    (float("nan"), 1 * MS, 8, 8),
])
def test_choose_count(estimate: float, target: float, limit: int, expected: int) -> None:
    assert choose_count(estimate, target, limit) == expected


def test_choose_count_rejects_bad_limit() -> None:
    with pytest.raises(ValueError):
        choose_count(1.0, 1.0, 0)


def test_short_call_is_unrolled_then_replayed_to_fill_the_window() -> None:
    clock = FakeClock()
    backend = FakeGraphBackend(clock)
    layer = Work(clock, 10 * US)
    x = torch.zeros(2)
    got = measure_call(lambda: layer(x), backend, Plan())
    # probe: 10 µs → unroll ceil(200 µs / 10 µs) = 20 copies per graph (a 200 µs replay);
    # window: ceil(1 ms / 200 µs) = 5 replays → 20 * 5 = 100 calls per window
    assert backend.captures == [1, 20]
    assert got.per_window == 100
    assert got.samples_s == pytest.approx([10 * US] * 5)


def test_long_call_is_captured_once_and_timed_once_per_window() -> None:
    clock = FakeClock()
    backend = FakeGraphBackend(clock)
    layer = Work(clock, 2 * MS)
    got = measure_call(lambda: layer(torch.zeros(1)), backend, Plan(windows=3))
    assert backend.captures == [1]  # 2 ms > 200 µs: no unrolling
    assert got.per_window == 1
    assert got.samples_s == pytest.approx([2 * MS] * 3)


# -- the whole pass through time_report ------------------------------------------------------
def _report(model: nn.Module, shape: tuple[int, ...]) -> Any:
    import cnnprof

    return cnnprof.profile(model, list(shape[1:]), batch=shape[0])


def _graph_timed(model: nn.Module, clock: FakeClock, backend: FakeGraphBackend,
                 shape: tuple[int, ...] = (1, 2)) -> Any:
    from cnnprof.timing.api import TimingOptions, time_report

    options = TimingOptions(device="cpu", warmup=1, repeats=4, graphs=True)
    return time_report(_report(model, shape), model, options, clock=clock, graph_backend=backend,
                       graph_plan=Plan(windows=3))


def test_graph_mode_exact_times_self_times_and_eager_figures_kept() -> None:
    clock = FakeClock(per_record_s=1 * US)  # hooks cost 1 µs per mark, replays nothing
    backend = FakeGraphBackend(clock)
    model = Net(clock)
    timed = _graph_timed(model, clock, backend)
    t = timed.timing
    assert t.mode == "graph"
    # whole model replayed: 1 + (2 + 3 + 0.5) + 2 * 0.25 = 7 ms, no hook marks inside
    assert t.graph["end_to_end_graph_median_s"] == pytest.approx(7 * MS)
    assert len(t.graph["end_to_end_graph_samples_s"]) == 4
    # the eager figures are still there: hooked 7.017 ms (15 marks, and 2 around the block's
    # own add) vs unhooked 7.001 ms
    assert t.end_to_end_median_s == pytest.approx(7.017 * MS)
    assert t.end_to_end_unhooked_median_s == pytest.approx(7.001 * MS)
    a = timed.layer("a").time
    assert a.method == "isolated" and a.median_s == pytest.approx(1 * MS)
    assert a.eager_median_s == pytest.approx(1.001 * MS)  # the hook's mark inside
    assert a.share == pytest.approx(1 / 7)  # of the graph end-to-end time
    assert len(a.samples_s) == 3  # one per window
    # the block's call is captured whole: 5.5 ms; self = 5.5 - 2 - 3 = 0.5 ms
    block = timed.layer("block").time
    assert block.median_s == pytest.approx(5.5 * MS)
    assert block.self_median_s == pytest.approx(0.5 * MS)
    # the shared act: two isolated calls of 0.25 ms add up; each 0.25 ms call is replayed
    # ceil(1 ms / 0.25 ms) = 4 times per window
    act = timed.layer("act").time
    assert act.median_s == pytest.approx(0.5 * MS) and act.calls == 2
    assert act.graph_calls_per_window == 4
    root = timed.layer("").time
    assert root.median_s == pytest.approx(7 * MS)
    assert root.self_median_s == pytest.approx(0.0, abs=1e-12)
    # (b'): leaves 1 + 2 + 3 + 0.5 = 6.5 ms, parents' own 0.5 (block) + 0 (root) = 7 ms
    assert t.graph["graph_method"] == "isolated"
    assert t.graph["graph_leaf_sum_s"] == pytest.approx(6.5 * MS)
    assert t.graph["graph_parent_self_sum_s"] == pytest.approx(0.5 * MS)
    assert t.graph["graph_sum_s"] == pytest.approx(7 * MS)
    check = checks.graph_leaf_sum(timed)
    assert check.passed and check.value == pytest.approx(6.5 / 7 - 1)
    assert "with parents' own +0.0%" in check.detail
    assert checks.graph_mark_overhead(timed).passed is None  # no in-graph marks here
    assert t.graph["graph_fallbacks"] == {} and backend.closed
    # the block's own add has no call to replay in isolation: it keeps its eager time (the
    # 0.5 ms and the mark that opened it), and says so
    add = timed.layer("block.(add)").time
    assert add.method == "events" and add.median_s == pytest.approx(0.501 * MS)
    # the eager leaf sum is still the eager one: 7 ms + 6 marks of 1 µs
    assert t.leaf_self_sum_s == pytest.approx(7 * MS + 6 * US)


def test_uncapturable_layer_falls_back_to_event_times_and_is_marked() -> None:
    clock = FakeClock()
    backend = FakeGraphBackend(clock)
    model = nn.Sequential(Work(clock, 1 * MS), Syncing(clock, 2 * MS, backend))
    timed = _graph_timed(model, clock, backend)
    t = timed.timing
    ok, bad, root = timed.layer("0").time, timed.layer("1").time, timed.layer("").time
    assert ok.method == "isolated" and ok.median_s == pytest.approx(1 * MS)
    # the syncing layer keeps its eager event time; its parent (the whole model) contains
    # it, so it cannot be captured either
    assert bad.method == "events" and bad.median_s == pytest.approx(2 * MS)
    assert root.method == "events" and root.median_s == pytest.approx(3 * MS)
    assert set(t.graph["graph_fallbacks"]) == {"", "1"}
    assert "capturing" in t.graph["graph_fallbacks"]["1"]
    assert t.graph["end_to_end_graph_median_s"] is None
    assert any("could not be captured" in n for n in t.notes)
    assert checks.graph_leaf_sum(timed).passed is None  # no graph end-to-end to compare


def test_graph_mode_refused_on_cpu_without_backend_and_in_train_mode() -> None:
    from cnnprof.timing.api import TimingOptions, time_report

    model = nn.Linear(2, 2)
    with pytest.raises(UsageError, match="--device cuda"):
        time_report(_report(model, (1, 2)), model, TimingOptions(device="cpu", graphs=True))
    import cnnprof

    train = cnnprof.profile(model, [2], batch=1, mode="train")
    clock = FakeClock()
    with pytest.raises(UsageError, match="eval mode only"):
        time_report(train, model, TimingOptions(device="cpu", graphs=True),
                    graph_backend=FakeGraphBackend(clock))


def test_cli_graphs_usage_errors(cli: Any) -> None:
    res = cli("alexnet", "--graphs", "--device", "cpu")
    assert res.code == 2 and "--graphs needs --device cuda" in res.err
    res = cli("alexnet", "--graphs")  # the default device is meta
    assert res.code == 2 and "--device cuda" in res.err
    res = cli("alexnet", "--graphs", "--device", "cuda", "--mode", "train")
    assert res.code == 2 and "eval mode only" in res.err


# -- self-time arithmetic and fallbacks on recorded calls ------------------------------------
def _eager(names: list[str], values: dict[str, tuple[float, int]]) -> TimerResult:
    """Eager results: name → (inclusive seconds per iteration, calls per iteration)."""
    res = TimerResult(names=names)
    for n, (v, calls) in values.items():
        res.inclusive_s[n] = [v]
        res.self_s[n] = [v / 2]
        res.calls[n] = calls
    return res


def test_self_time_is_clamped_and_uses_children_per_window() -> None:
    names = ["", "x", "y"]
    calls = [Call(0, -1, children=[1, 2]), Call(1, 0), Call(2, 0)]
    # window 1: 5 - (2 + 2.5) = 0.5 ms; window 2: the parent came out faster in isolation
    # than its children timed one by one (4 < 2 + 2.5): clamped to 0
    per_call = [Measured([5 * MS, 4 * MS], 1), Measured([2 * MS, 2 * MS], 1),
                Measured([2.5 * MS, 2.5 * MS], 1)]
    res = combine(names, calls, per_call, None)
    assert res.self_s[""] == pytest.approx([0.5 * MS, 0.0])
    assert res.inclusive_s[""] == pytest.approx([5 * MS, 4 * MS])
    assert res.self_s["x"] == res.inclusive_s["x"]  # a leaf is its own self
    assert res.leaf == {"": False, "x": True, "y": True}
    leaves, parents = res.medians()
    # medians: x 2 ms + y 2.5 ms; root self median of [0.5, 0] = 0.25 ms
    assert leaves == pytest.approx(4.5 * MS) and parents == pytest.approx(0.25 * MS)


def test_failed_child_stands_in_with_eager_time_per_call() -> None:
    names = ["", "x", "y"]
    calls = [Call(0, -1, children=[1, 2, 3]), Call(1, 0), Call(2, 0), Call(2, 0)]
    # y (called twice) cannot be captured: eager 3 ms over 2 calls = 1.5 ms per call
    per_call: list[Measured | str] = [Measured([6 * MS], 1), Measured([2 * MS], 1),
                                      "CaptureError: sync", "CaptureError: sync"]
    res = combine(names, calls, per_call, _eager(names, {"y": (3 * MS, 2)}))
    assert res.method == {"": "isolated", "x": "isolated", "y": "events"}
    assert res.failures == {"y": "CaptureError: sync"}
    assert res.inclusive_s["y"] == [3 * MS] and res.self_s["y"] == [1.5 * MS]  # eager's own
    # root self = 6 - 2 - 1.5 - 1.5 = 1 ms
    assert res.self_s[""] == pytest.approx([1 * MS])


def test_record_calls_clones_arguments_once_and_sees_mha_as_executed_leaf() -> None:
    class Enc(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln = nn.LayerNorm(8)
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.ln(x)
            a, _ = self.attn(y, y, y, need_weights=False)
            return self.relu(a + x)

    torch.manual_seed(0)
    model = Enc().eval()
    named = module_names(model)
    x = torch.randn(2, 3, 8)
    with torch.no_grad():
        calls = record_calls([m for _, m in named], lambda: model(x))
        expected = model(x)
    names = [n for n, _ in named]
    order = [names[c.module] for c in calls]
    assert order == ["", "ln", "attn", "relu"]  # attn.out_proj never runs as a module
    attn = calls[2]
    assert attn.children == [] and attn.kwargs == {"need_weights": False}
    # the same tensor passed three times is cloned once, and it is a copy, not the original
    assert attn.args[0] is attn.args[1] is attn.args[2]
    assert attn.args[0] is not x and torch.equal(attn.args[0], model.ln(x))
    # the in-place ReLU's recorded input keeps its negative values (cloned before it ran)
    assert (calls[3].args[0] < 0).any()
    # replaying a recorded call reproduces the layer's output in the model
    with torch.no_grad():
        root = calls[0]
        assert torch.allclose(model(*root.args, **root.kwargs), expected)
    per_call = [Measured([1.0], 1)] * len(calls)
    res = combine(names, calls, per_call, None)
    assert res.leaf["attn"] and not res.leaf[""]
    assert "attn.out_proj" not in res.inclusive_s


def test_record_calls_keeps_strides_of_sliced_inputs() -> None:
    seen = nn.Identity()
    model = nn.Sequential(seen)
    x = torch.randn(4, 6)[:, ::2]  # a non-contiguous view
    calls = record_calls([model, seen], lambda: model(x))
    assert calls[1].args[0].stride() == x.stride()
    assert torch.equal(calls[1].args[0], x)


# -- the graph-mode kernel check ---------------------------------------------------------------
def test_kernel_match_graph_uses_isolated_times_and_eager_uses_eager() -> None:
    clock = FakeClock(per_record_s=20 * US)  # hooks inflate eager times by 20 µs a mark
    backend = FakeGraphBackend(clock)
    timed = _graph_timed(Net(clock), clock, backend)
    assert checks.kernel_match(timed, graph=True).passed is None  # no --kernels data yet
    # pretend the profiler attributed exactly the isolated time + 5% to every layer
    layers = tuple(replace(r, time=replace(r.time, kernel_s=r.time.median_s * 1.05))
                   if r.time else r for r in timed.layers)
    with_kernels = timed.with_updates(layers=layers)
    graph = checks.kernel_match(with_kernels, graph=True)
    assert graph.name == "kernel_match_graph" and graph.passed
    assert graph.value == pytest.approx(1 / 1.05 - 1)
    # eager: `act` (0.5 ms isolated) carries 2 calls * 20 µs = 40 µs of marks, 0.54 / 0.525
    eager = checks.kernel_match(with_kernels)
    assert eager.passed  # all within 10% here
    names = [c.name for c in checks.all_checks(with_kernels)]
    assert names[-3:] == ["graph_mark_overhead", "graph_leaf_sum", "kernel_match_graph"]


# -- marks inside the whole-model graph (cnnprof.timing.ingraph) -----------------------------
def _in_graph_timed(model: nn.Module, clock: FakeClock, backend: FakeGraphBackend) -> Any:
    from cnnprof.timing.api import TimingOptions, time_report
    from cnnprof.timing.ingraph import ClockWatch

    options = TimingOptions(device="cpu", warmup=1, repeats=4, graphs=True)
    return time_report(_report(model, (1, 2)), model, options, clock=clock, graph_backend=backend,
                       graph_marks=(lambda: clock, ClockWatch))


def test_in_graph_marks_share_boundaries_and_time_layers_in_context() -> None:
    clock = FakeClock(per_record_s=1 * US)  # every mark left in the graph costs 1 µs
    backend = FakeGraphBackend(clock)
    timed = _in_graph_timed(Net(clock), clock, backend)
    t = timed.timing
    assert t.graph["graph_method"] == "in_graph" and t.graph["graph_variants"] == 1
    # boundaries with work before them get a mark: the start, then after a, act, b, c, the
    # block's own add and the second act; the other 8 module boundaries share one of those
    assert t.graph["graph_marks"] == [7]
    assert t.graph["end_to_end_graph_median_s"] == pytest.approx(7 * MS)  # unmarked replay
    # 7 ms of layers plus the 6 marks after the first one, each 1 µs
    assert t.graph["end_to_end_graph_marked_median_s"] == pytest.approx(7.006 * MS)
    assert t.graph["graph_mark_overhead"] == pytest.approx(0.006 / 7)
    assert t.graph["graph_dense_mark_overhead"] == pytest.approx(0.006 / 7)
    # each mark cost (7.006 - 7) / 6 marks crossed = 1 µs, and each call's samples lose the
    # marks its interval crosses: the layers' own times come out exactly
    assert t.graph["graph_mark_cost_s"] == [pytest.approx(1 * US)]
    a = timed.layer("a").time
    assert a.method == "graph" and a.median_s == pytest.approx(1 * MS)
    assert len(a.samples_s) == 4 and a.graph_calls_per_window is None  # one per replay
    assert a.eager_median_s == pytest.approx(1.001 * MS)  # the eager hook's mark inside
    block = timed.layer("block").time
    assert block.median_s == pytest.approx(5.5 * MS)
    # the residual add is a row of its own, timed between the marks around it (shared with
    # c's end and the block's end: no mark of its own), so the block keeps nothing
    add = timed.layer("block.(add)").time
    assert add.method == "graph" and add.median_s == pytest.approx(0.5 * MS)
    assert block.self_median_s == pytest.approx(0.0, abs=1e-12)
    act = timed.layer("act").time
    assert act.calls == 2 and act.median_s == pytest.approx(0.5 * MS)
    assert timed.layer("").time.median_s == pytest.approx(7 * MS)  # = the unmarked replay
    assert t.graph["graph_sum_s"] == pytest.approx(7 * MS)
    assert checks.graph_mark_overhead(timed).passed
    leaf = checks.graph_leaf_sum(timed)  # the add is a leaf: the leaves are the whole replay
    assert leaf.passed and leaf.value == pytest.approx(0.0, abs=1e-9)
    assert t.graph["graph_leaf_sum_s"] == pytest.approx(7 * MS)
    assert backend.closed and not any("isolated" in n for n in t.notes)


def test_costly_marks_are_split_over_contiguous_variants_and_compensated() -> None:
    from cnnprof.timing.ingraph import (
        ClockWatch,
        MarkPlan,
        chunk_of,
        run_in_graph,
        variants_for,
    )

    clock = FakeClock(per_record_s=0.1 * MS)  # marks that cost 100 µs each
    backend = FakeGraphBackend(clock)
    model = Net(clock)
    x = torch.zeros(1, 2)
    plan = MarkPlan(target_overhead=0.03)
    found = run_in_graph(model, lambda: model(x), backend, lambda: clock, ClockWatch,
                         unmarked_s=7 * MS, warmup=1, repeats=3, plan=plan)
    # all 7 marks in one graph: 6 * 0.1 ms over 7 ms = 8.6% > 3% → ceil(8.6 / 3) = 3 graphs
    assert found.dense_overhead == pytest.approx(0.6 / 7)
    assert variants_for(found.dense_overhead, plan) == 3 and found.variants == 3
    # calls 0..6 (root, a, act, block, b, c, act) in 3 stretches: [0, 1, 2], [3, 4], [5, 6]
    owner = chunk_of(7, 3)
    assert [owner(c) for c in range(7)] == [0, 0, 0, 1, 1, 2, 2]
    # each graph carries fewer marks than the dense one and costs less
    assert all(n < 7 for n in found.marks)
    overhead = found.overhead(7 * MS)
    assert overhead is not None and overhead < found.dense_overhead
    # the marks cost exactly 100 µs each in every variant, so compensation is exact
    assert found.mark_cost_s == [pytest.approx(0.1 * MS)] * 3
    names = [n for n, _ in module_names(model)]
    layers = combine(names, found.calls, found.per_call, None, method="graph")
    for name, work in (("", 7 * MS), ("a", 1 * MS), ("block", 5.5 * MS), ("block.b", 2 * MS),
                       ("block.c", 3 * MS), ("act", 0.5 * MS)):
        assert layers.inclusive_s[name] == pytest.approx([work] * 3), name
    assert layers.self_s["block"] == pytest.approx([0.5 * MS] * 3)
    assert layers.calls["act"] == 2


def test_marks_that_change_between_captures_are_refused() -> None:
    from cnnprof.timing.graph_capture import CaptureError
    from cnnprof.timing.ingraph import ClockWatch, MarkPlan, run_in_graph

    clock = FakeClock(per_record_s=1 * MS)
    backend = FakeGraphBackend(clock)
    model = Net(clock)
    flips = {"n": 0}
    original = model.block.forward

    def flaky(x: torch.Tensor) -> torch.Tensor:  # data-dependent control flow, in effect
        flips["n"] += 1
        return original(x) if flips["n"] < 6 else model.block.c(x)

    model.block.forward = flaky  # type: ignore[method-assign]
    x = torch.zeros(1, 2)
    with pytest.raises(CaptureError, match="differ between captures"):
        run_in_graph(model, lambda: model(x), backend, lambda: clock, ClockWatch,
                     unmarked_s=7 * MS, warmup=0, repeats=1, plan=MarkPlan(0.01))


def test_ops_watch_sees_kernels_but_not_views() -> None:
    from cnnprof.timing.ingraph import OpsWatch

    watch = OpsWatch()
    assert watch.take()  # a fresh watch counts as "work happened": the first mark records
    assert not watch.take()
    x = torch.zeros(4, 4)
    with watch.watching():
        x.view(16).t()
        assert not watch.take()
        x.add(1)
        assert watch.take() and not watch.take()
