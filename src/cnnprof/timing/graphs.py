"""Graph-replay timing (``--graphs``): per-layer GPU times without launch gaps.

Eager event timing brackets each module call with two CUDA events. On a host that queues
kernels more slowly than the GPU runs them (a slow CPU, small batches, hooks' own Python
work) the GPU idles between kernels, and those idle gaps fall *inside* the brackets: layer
times then measure the host, not the GPU. Replaying a captured CUDA graph queues a whole
recorded kernel sequence with one host call, so back-to-back replays keep the GPU busy and
an event pair around them measures GPU work only.

Per-layer times come first from timing marks captured inside the whole-model graph
(``cnnprof.timing.ingraph``, run from ``run_graph_pass``). This module holds the shared
machinery (backends, the whole-model replay, combining calls into per-module times) and the
fallback for a forward that cannot be captured with marks:

1. **Whole model**: the unhooked forward is captured once (after a warm-up on the capture
   stream, as PyTorch requires) and replayed ``repeats`` times, one event pair around each
   replay → ``end_to_end_graph_*``.
2. **Isolated calls**: one hooked eager forward records every module call (its enclosing
   call and its arguments, cloned). Each call is then captured into its own graph and
   replayed back-to-back between one event pair until the window is at least
   ``Plan.target_window_s``; time per call = window / calls in the window, median over
   ``Plan.windows`` windows. A call too short to outrun the host's replay launch is
   unrolled (``copies`` calls captured in one graph) so the GPU never waits for the host.
3. **Inclusive and self**: a module's inclusive time is the sum over its calls; a call's
   self time is its isolated time minus its direct child calls' isolated times, clamped at
   0. Non-leaf calls are captured whole (not summed from children), so a parent's own ops
   (a residual add, attention's matmuls in ``MultiheadAttention.forward``) are measured.
4. **Fallback**: a call that cannot be captured (a host sync such as ``.item()``,
   data-dependent control flow on tensor values, RNG in train mode) keeps its module's eager
   event times, marked ``method: "events"``.

The measuring backend is injected (``CudaGraphBackend`` on a GPU, ``FakeGraphBackend`` with
a ``FakeClock`` in tests), so the planning and arithmetic here are testable on any machine.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import torch

from cnnprof.errors import named_line
from cnnprof.timing.stats import median
from cnnprof.timing.stretches import StretchPlan
from cnnprof.timing.timer import TimerResult

if TYPE_CHECKING:
    from cnnprof.timing.ingraph import InGraphResult


class CaptureError(Exception):
    """A call could not be captured into (or replayed from) a CUDA graph."""


@dataclass(frozen=True)
class Plan:
    """How each isolated call is measured."""

    #: timed windows per call; the reported samples are one per window
    windows: int = 5
    #: a window lasts at least this long on the GPU (event resolution is ~0.5 µs)
    target_window_s: float = 1e-3
    #: one graph replay should run at least this long, so the host's launch of the next
    #: replay (microseconds on a slow CPU) is hidden behind it
    unroll_target_s: float = 200e-6
    max_unroll: int = 64
    max_replays: int = 2000
    #: replays used to estimate one call's time before choosing the unroll and replays
    probe_replays: int = 3
    #: eager runs on the capture stream before each call's first capture
    warmup: int = 2

    def to_dict(self) -> dict[str, Any]:
        return {"windows": self.windows, "target_window_s": self.target_window_s,
                "unroll_target_s": self.unroll_target_s, "max_unroll": self.max_unroll,
                "max_replays": self.max_replays}


def choose_count(estimate_s: float, target_s: float, limit: int) -> int:
    """How many back-to-back repetitions of something lasting ``estimate_s`` fill
    ``target_s``: ceil(target / estimate), between 1 and ``limit``. A zero estimate (a call
    that launches no kernel: Dropout in eval, Flatten) gets ``limit``."""
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    if not estimate_s > 0 or not math.isfinite(estimate_s):
        return limit
    return max(1, min(limit, math.ceil(target_s / estimate_s - 1e-9)))


class GraphBackend(Protocol):
    """Captures a function into a replayable graph and times replays of it."""

    def capture(self, fn: Callable[[], Any], copies: int, warmup: int,
                warm: Callable[[], Any] | None = None) -> Any:
        """Run ``warm`` (default ``fn``) ``warmup`` times, then capture ``copies``
        back-to-back calls of ``fn``. Raises ``CaptureError`` when ``fn`` cannot be
        captured."""

    def replay_s(self, graph: Any, replays: int) -> float:
        """Seconds (device time) of ``replays`` back-to-back replays of ``graph``."""

    def release(self, graph: Any) -> None:
        """Free the graph and its memory pool."""

    def close(self) -> None:
        """Return cached memory after the whole pass."""


@dataclass
class _Captured:
    graph: Any
    output: Any  # kept alive with the graph: its memory is the graph's to write


class CudaGraphBackend:
    """``torch.cuda.CUDAGraph`` capture on a side stream, replays timed by one event pair.

    ``capture_begin``/``capture_end`` are called directly rather than through the
    ``torch.cuda.graph`` context manager, which runs ``gc.collect()`` and ``empty_cache()``
    before every capture: hundreds of captures per model would spend most of their time
    there. The device is synchronized before each capture instead.
    """

    #: a released graph's private memory pool is only returned by ``empty_cache``
    EMPTY_CACHE_EVERY = 32

    def __init__(self, device: str | torch.device) -> None:
        self.device = torch.device(device)
        self.stream = torch.cuda.Stream(device=self.device)
        self._start = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)
        self._released = 0

    def capture(self, fn: Callable[[], Any], copies: int, warmup: int,
                warm: Callable[[], Any] | None = None) -> _Captured:
        cuda = torch.cuda
        prev = cuda.current_stream(self.device)
        graph = cuda.CUDAGraph()
        out: Any = None
        try:
            # warm-up on the capture stream itself: cuBLAS/cuDNN create their per-stream
            # workspaces and pick algorithms outside the capture (PyTorch's documented recipe)
            self.stream.wait_stream(prev)
            with cuda.stream(self.stream):
                for _ in range(warmup):
                    (warm or fn)()
            prev.wait_stream(self.stream)
            cuda.synchronize(self.device)
            with warnings.catch_warnings(), cuda.stream(self.stream):
                warnings.simplefilter("ignore")  # "the CUDA Graph is empty" for Dropout etc.
                graph.capture_begin()
                try:
                    for _ in range(copies):
                        out = fn()
                finally:
                    # ends the capture even when fn raised (then capture_end may raise too:
                    # the capture was invalidated; fn's error stays chained to it)
                    graph.capture_end()
        except Exception as exc:
            cuda.set_stream(prev)  # never leave later work on the capture stream
            self._absorb_error()
            del graph, out
            raise CaptureError(_reason(exc)) from exc
        return _Captured(graph, out)

    def _absorb_error(self) -> None:
        # an invalidated capture can leave CUDA's "last error" set; the next kernel launch
        # check would report it against an innocent layer, so take it here
        for _ in range(2):
            try:
                torch.cuda.synchronize(self.device)
                torch.zeros(1, device=self.device).add_(1)
                return
            except Exception:
                continue

    def replay_s(self, graph: Any, replays: int) -> float:
        stream = torch.cuda.current_stream(self.device)
        try:
            # an untimed replay first: the GPU is busy with it while the host queues the
            # timed ones, so the window does not start with a host-side gap
            graph.graph.replay()
            self._start.record(stream)
            for _ in range(replays):
                graph.graph.replay()
            self._end.record(stream)
            self._end.synchronize()
        except Exception as exc:
            self._absorb_error()
            raise CaptureError(_reason(exc)) from exc
        return float(self._start.elapsed_time(self._end)) / 1000.0

    def release(self, graph: Any) -> None:
        if graph is None:
            return
        graph.output = None
        graph.graph = None
        self._released += 1
        if self._released % self.EMPTY_CACHE_EVERY == 0:
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()

    def close(self) -> None:
        torch.cuda.synchronize(self.device)
        torch.cuda.empty_cache()


class FakeGraphBackend:
    """A backend for tests: "replaying" calls the function again, and time is read from a
    clock with a ``now`` attribute (``FakeClock``) that the model's layers advance.

    ``capturing`` is true while a capture runs, so a test layer can refuse capture the way
    a host sync (``.item()``) does on a real GPU.
    """

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.capturing = False
        self.captures: list[int] = []  # copies of every successful capture
        self.closed = False

    def __deepcopy__(self, memo: dict[int, Any]) -> FakeGraphBackend:
        # shared state, like FakeClock: a deep-copied test model must see this `capturing`
        return self

    def capture(self, fn: Callable[[], Any], copies: int, warmup: int,
                warm: Callable[[], Any] | None = None) -> Any:
        for _ in range(warmup):
            (warm or fn)()
        self.capturing = True
        try:
            for _ in range(copies):
                fn()
        except Exception as exc:
            raise CaptureError(_reason(exc)) from exc
        finally:
            self.capturing = False
        self.captures.append(copies)
        return (fn, copies)

    def replay_s(self, graph: Any, replays: int) -> float:
        fn, copies = graph
        start = self.clock.now
        for _ in range(replays * copies):
            fn()
        return float(self.clock.now - start)

    def release(self, graph: Any) -> None:
        return None

    def close(self) -> None:
        self.closed = True


def _reason(exc: BaseException) -> str:
    # when the captured code raised, capture_end raises too ("invalidated"): the first
    # error in the chain is the one that names the cause (a sync, a missing op)
    for _ in range(3):
        if exc.__context__ is None:
            break
        exc = exc.__context__
    return named_line(exc)[:200]


# -- measuring ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Measured:
    #: seconds per call, one value per window
    samples_s: list[float]
    #: calls per timed window (copies captured in the graph × replays in the window)
    per_window: int


def measure_call(fn: Callable[[], Any], backend: GraphBackend, plan: Plan) -> Measured:
    """Capture ``fn`` alone and time it back-to-back (see the module docstring)."""
    graph = backend.capture(fn, 1, plan.warmup)
    try:
        backend.replay_s(graph, 1)  # first replay: lazy work (uploads) stays out of the probe
        estimate = backend.replay_s(graph, plan.probe_replays) / plan.probe_replays
        copies = choose_count(estimate, plan.unroll_target_s, plan.max_unroll)
        per_replay = estimate
        if copies > 1:
            backend.release(graph)
            graph = None
            try:
                graph = backend.capture(fn, copies, 0)
                per_replay = backend.replay_s(graph, plan.probe_replays) / plan.probe_replays
            except CaptureError:  # e.g. out of memory for the copies: time single calls
                backend.release(graph)
                copies = 1
                graph = backend.capture(fn, 1, 0)
        replays = choose_count(per_replay, plan.target_window_s, plan.max_replays)
        calls = copies * replays
        samples = [backend.replay_s(graph, replays) / calls for _ in range(plan.windows)]
    finally:
        backend.release(graph)
    return Measured(samples, calls)


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


# -- recording the calls ---------------------------------------------------------------------
@dataclass
class Call:
    """One module call seen in the recording forward."""

    module: int  # index into the timer's module list
    parent: int  # index of the enclosing call, -1 for the outermost
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    children: list[int] = field(default_factory=list)


def _clone(t: torch.Tensor) -> torch.Tensor:
    # same sizes and strides as the original (a sliced, non-contiguous input keeps the
    # layout, and with it the kernels, that the model gave the layer)
    try:
        out = torch.empty_strided(t.size(), t.stride(), dtype=t.dtype, device=t.device)
        out.copy_(t.detach())
        return out
    except RuntimeError:  # overlapping strides (expand): a dense copy will do
        return t.detach().clone()


def record_calls(modules: Sequence[torch.nn.Module], call: Callable[[], Any]) -> list[Call]:
    """Run ``call`` once with hooks on ``modules`` and return every module call in order,
    with its enclosing call and its (cloned) arguments."""
    calls: list[Call] = []
    stack: list[int] = []
    # (id, version) → (original, copy): a tensor passed to several modules is copied once;
    # the version tells an in-place-modified tensor (ReLU(inplace=True)) from its past self.
    # The original is held so its id cannot be reused by a new tensor meanwhile.
    memo: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def copy(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            try:
                key = (id(value), int(value._version))
            except RuntimeError:  # inference tensors have no version counter
                return _clone(value)
            hit = memo.get(key)
            if hit is None:
                hit = (value, _clone(value))
                memo[key] = hit
            return hit[1]
        if isinstance(value, tuple) and hasattr(value, "_fields"):  # namedtuple
            return type(value)(*(copy(v) for v in value))
        if isinstance(value, (list, tuple)):
            return type(value)(copy(v) for v in value)
        if isinstance(value, dict):
            return {k: copy(v) for k, v in value.items()}
        return value

    def pre(index: int) -> Callable[..., None]:
        def hook(module: torch.nn.Module, args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> None:
            parent = stack[-1] if stack else -1
            calls.append(Call(index, parent, copy(args), copy(kwargs)))
            here = len(calls) - 1
            if parent >= 0:
                calls[parent].children.append(here)
            stack.append(here)

        return hook

    def post(index: int) -> Callable[..., None]:
        def hook(module: torch.nn.Module, args: Any, output: Any) -> None:
            if stack and calls[stack[-1]].module == index:
                stack.pop()

        return hook

    handles: list[Any] = []
    try:
        for index, module in enumerate(modules):
            handles.append(module.register_forward_pre_hook(pre(index), with_kwargs=True))
            handles.append(module.register_forward_hook(post(index), always_call=True))
        call()
    finally:
        for handle in handles:
            handle.remove()
        memo.clear()
    return calls


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
    from cnnprof.timing.ingraph import run_in_graph

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
