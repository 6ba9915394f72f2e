"""Graph-replay timing (``--graphs``): per-layer GPU times without launch gaps.

Eager event timing brackets each module call with two CUDA events. On a host that queues
kernels more slowly than the GPU runs them (a slow CPU, small batches, hooks' own Python
work) the GPU idles between kernels, and those idle gaps fall *inside* the brackets: layer
times then measure the host, not the GPU. Replaying a captured CUDA graph queues a whole
recorded kernel sequence with one host call, so back-to-back replays keep the GPU busy and
an event pair around them measures GPU work only.

Per-layer times come first from timing marks captured inside the whole-model graph
(``cnnprof.timing.ingraph``); a forward that cannot be captured with marks falls back to
replaying every module call in its own graph (``cnnprof.timing.isolated``). Both sit on the
primitives of ``cnnprof.timing.graph_capture`` (backends, ``CaptureError``, ``Call``,
``Measured``). This module runs the pass and combines per-call measurements into per-module
times:

1. **Whole model**: the unhooked forward is captured once (after a warm-up on the capture
   stream, as PyTorch requires) and replayed ``repeats`` times, one event pair around each
   replay → ``end_to_end_graph_*``.
2. **Per call**: in-graph marks (``run_in_graph``) or, when those fail, isolated replays
   (``measure_call`` over ``record_calls``).
3. **Inclusive and self**: a module's inclusive time is the sum over its calls; a call's
   self time is its time minus its direct child calls' times, clamped at 0. Non-leaf calls
   are captured whole (not summed from children), so a parent's own ops (a residual add,
   attention's matmuls in ``MultiheadAttention.forward``) are measured.
4. **Fallback**: a call that cannot be captured (a host sync such as ``.item()``,
   data-dependent control flow on tensor values, RNG in train mode) keeps its module's eager
   event times, marked ``method: "events"``.

The measuring backend is injected (``CudaGraphBackend`` on a GPU, the tests' fake backend
with a ``FakeClock``), so the planning and arithmetic here are testable on any machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from cnnprof.timing.graph_capture import Call, CaptureError, GraphBackend, Measured
from cnnprof.timing.ingraph import InGraphResult, run_in_graph
from cnnprof.timing.isolated import Plan, measure_call, record_calls
from cnnprof.timing.stats import median
from cnnprof.timing.stretches import StretchPlan
from cnnprof.timing.timer import TimerResult


def measure_whole(fn: Callable[[], Any], backend: GraphBackend, *, warmup: int,
                  repeats: int) -> list[float]:
    """The whole forward as one graph: ``repeats`` replays, one event pair around each."""
    graph = backend.capture(fn, 1, max(1, min(warmup, 3)))
    try:
        for _ in range(warmup):
            backend.replay_s(graph, 1)
        return [backend.replay_s(graph, 1) for _ in range(repeats)]
    finally:
        backend.release(graph)


# -- combining calls into per-module times ---------------------------------------------------
@dataclass
class GraphLayers:
    """Per-module samples (seconds; one per replay of in-graph marks, or one per window of
    isolated replays)."""

    inclusive_s: dict[str, list[float]] = field(default_factory=dict)
    self_s: dict[str, list[float]] = field(default_factory=dict)
    #: "graph" (marks inside the whole-model graph), "isolated" (its calls replayed one by
    #: one) or "events" (a call of it could not be captured: eager event times kept)
    method: dict[str, str] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    #: calls per timed window of the module's first call (graph method only)
    per_window: dict[str, int] = field(default_factory=dict)
    #: executed leaf: none of its calls contained another module call (so a
    #: MultiheadAttention whose out_proj never runs is one)
    leaf: dict[str, bool] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    def medians(self) -> tuple[float, float]:
        """(sum of executed leaves' inclusive medians, sum of parents' self medians)."""
        leaves = sum(median(v) for n, v in self.inclusive_s.items() if self.leaf[n])
        parents = sum(median(v) for n, v in self.self_s.items() if not self.leaf[n])
        return leaves, parents


def combine(names: Sequence[str], calls: Sequence[Call],
            per_call: Sequence[Measured | str], eager: TimerResult | None,
            method: str = "isolated") -> GraphLayers:
    """Per-call measurements (or failure reasons) → per-module inclusive and self samples.

    Window ``w`` of a module is the sum over its calls of each call's window ``w``. A call's
    self time is its time minus its direct children's, clamped at 0 (an isolated parent can
    come out a little faster than its children timed one by one: warm caches, no gaps). A
    failed call stands in with its module's eager inclusive median per call, so its parent's
    self time still has something to subtract.
    """
    result = GraphLayers()
    windows = max((len(m.samples_s) for m in per_call if isinstance(m, Measured)), default=1)

    def eager_per_call(module: int) -> float:
        name = names[module]
        if eager is None or not eager.inclusive_s.get(name):
            return 0.0
        return median(eager.inclusive_s[name]) / max(1, eager.calls.get(name, 1))

    if len(per_call) != len(calls):
        raise ValueError(f"{len(per_call)} measurements for {len(calls)} calls")
    incl: list[list[float]] = []
    for c, measured in zip(calls, per_call, strict=True):
        if isinstance(measured, Measured):
            row = list(measured.samples_s)
            row += [row[-1]] * (windows - len(row))
        else:
            row = [eager_per_call(c.module)] * windows
        incl.append(row)

    by_module: dict[int, list[int]] = {}
    for index, c in enumerate(calls):
        by_module.setdefault(c.module, []).append(index)
    for module, indices in by_module.items():
        name = names[module]
        failed = [per_call[i] for i in indices if not isinstance(per_call[i], Measured)]
        result.calls[name] = len(indices)
        leaf = all(not calls[i].children for i in indices)
        if failed:
            result.failures[name] = str(failed[0])
            if eager is None or not eager.inclusive_s.get(name):
                continue  # nothing to fall back on: the module keeps no time at all
            result.method[name] = "events"
            result.leaf[name] = leaf
            result.inclusive_s[name] = list(eager.inclusive_s[name])
            result.self_s[name] = list(eager.self_s[name])
            continue
        result.method[name] = method
        result.leaf[name] = leaf
        first = per_call[indices[0]]
        assert isinstance(first, Measured)
        result.per_window[name] = first.per_window
        result.inclusive_s[name] = [sum(incl[i][w] for i in indices) for w in range(windows)]
        result.self_s[name] = [
            sum(max(0.0, incl[i][w] - sum(incl[ch][w] for ch in calls[i].children))
                for i in indices)
            for w in range(windows)]
    return result


# -- the pass ------------------------------------------------------------------------------
@dataclass
class GraphResult:
    #: whole-model graph replays without marks (seconds, one per replay); empty when the
    #: capture failed
    end_to_end_s: list[float]
    layers: GraphLayers
    plan: Plan
    seconds: float  # wall time of the whole graph pass
    end_to_end_failure: str | None = None
    #: in-graph only: the marked replays, variants, marks and the overhead of dense marks
    in_graph: InGraphResult | None = None
    #: why in-graph marks were not used (None when they were, or were not tried)
    in_graph_failure: str | None = None

    @property
    def method(self) -> str:
        """"in_graph" (marks inside the whole-model graph) or "isolated" (calls one by one)."""
        return "isolated" if self.in_graph is None else "in_graph"


def run_graph_pass(modules: Sequence[torch.nn.Module], names: Sequence[str],
                   call: Callable[[], Any], backend: GraphBackend, *, warmup: int,
                   repeats: int, eager: TimerResult | None, plan: Plan | None = None,
                   progress: Callable[[str, int, int], None] | None = None,
                   marks: tuple[Callable[[], Any], Callable[[Any], Any]] | None = None,
                   stretches: StretchPlan | None = None) -> GraphResult:
    """Whole-model graph latency, then per-layer times: from marks inside the whole-model
    graph when ``marks`` (``(make_clock, make_watch)``, see ``cnnprof.timing.ingraph``) is
    given and the marked forward captures, else every recorded module call in isolation.
    ``names`` lists the modules, then the gap rows of ``stretches`` (``row_names``): gaps are
    timed in the graph only; isolated replays have no call to replay for them, so their rows
    keep the eager times.

    Graphs are captured and freed one at a time (each has its own memory pool); the backend
    returns cached memory at the end.
    """
    plan = plan or Plan()
    started = time.perf_counter()
    e2e: list[float] = []
    e2e_failure: str | None = None
    in_graph_failure: str | None = None
    try:
        try:
            e2e = measure_whole(call, backend, warmup=warmup, repeats=repeats)
        except CaptureError as exc:
            e2e_failure = str(exc)
        if marks is not None and e2e:
            try:
                make_clock, make_watch = marks
                found = run_in_graph(modules[0], call, backend, make_clock, make_watch,
                                     unmarked_s=median(e2e), warmup=warmup,
                                     repeats=repeats, progress=progress,
                                     stretches=stretches)
                layers = combine(names, found.calls, found.per_call, eager, method="graph")
                return GraphResult(e2e, layers, plan, time.perf_counter() - started,
                                   in_graph=found)
            except CaptureError as exc:
                in_graph_failure = str(exc)
        elif marks is not None:
            in_graph_failure = "the whole model could not be captured"
        calls = record_calls(modules, call)
        per_call: list[Measured | str] = []
        for index, c in enumerate(calls):
            module, args, kwargs = modules[c.module], c.args, c.kwargs

            def fn(module: torch.nn.Module = module, args: tuple[Any, ...] = args,
                   kwargs: dict[str, Any] = kwargs) -> Any:
                return module(*args, **kwargs)

            try:
                per_call.append(measure_call(fn, backend, plan))
            except CaptureError as exc:
                per_call.append(str(exc))
            if progress is not None:
                progress("graphs", index + 1, len(calls))
        for c in calls:  # the cloned inputs can be large: drop them before combining
            c.args, c.kwargs = (), {}
        layers = combine(names, calls, per_call, eager)
    finally:
        backend.close()
    return GraphResult(e2e, layers, plan, time.perf_counter() - started, e2e_failure,
                       in_graph_failure=in_graph_failure)
