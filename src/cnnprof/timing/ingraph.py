"""In-graph timing (``--graphs``): per-layer GPU times from marks inside one CUDA graph.

Eager event timing puts the host in the measurement: when the CPU queues kernels more slowly
than the GPU runs them, the GPU idles inside the event brackets. Replaying a captured CUDA
graph takes the host out, and timing events recorded *during* the capture
(``torch.cuda.Event(external=True)``) become event-record nodes of the graph: every replay
rewrites their timestamps. So the whole hooked forward is captured once, with the timer's
usual marks (``LayerTimer``) recorded through ``GraphMarks``, and each replay yields every
layer's time in context: inputs arriving from the previous layer, caches as the real forward
leaves them, no launch gaps.

Marks are not free. Each event-record node delays the work after it by a couple of
microseconds on an H100 (measured: ~2.6 µs per node, scripts/graph_event_probe2.py), which a
model with hundreds of small layers notices. Three things deal with that:

* **Shared marks**: a boundary with no operator since the previous mark (a module's end and
  the next one's start, a parent's start and its first child's) reuses that mark instead of
  recording a new node. ``WorkWatch`` tells whether any work ran in between (a dispatch mode
  on real devices).
* **Variants**: when the marked graph is still more than ``MarkPlan.target_overhead`` slower
  than the unmarked one, the module calls are split into ``k`` contiguous stretches of the
  forward and each stretch's marks are captured and replayed as their own graph, so every
  replay carries about 1/k of the marks (neighbours in a stretch still share marks). A
  call's samples come from its own variant; a parent's self time subtracts its children's
  times from theirs, replay by replay.
* **Compensation**: the marks of a variant cost ``(marked replay - unmarked replay) / marks``
  each, measured in the same run, and marks are numbered in time order, so the marks a
  call's interval crosses are known exactly: that many mark costs are subtracted from each
  of its samples. The root's time then equals the unmarked replay, a leaf loses the one
  mark that closes it, and a parent the marks of everything inside it.

Calls are numbered in execution order, which must be the same in every capture; a forward
whose module calls change between captures is refused (``CaptureError``), and the caller
falls back to isolated replays (``cnnprof.timing.isolated``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from cnnprof.timing.clocks import Clock
from cnnprof.timing.graph_capture import Call, CaptureError, GraphBackend, Measured
from cnnprof.timing.stats import median
from cnnprof.timing.stretches import StretchPlan
from cnnprof.timing.timer import E2E_END, E2E_START, FIRST_CALL_SLOT, LayerTimer


@dataclass(frozen=True)
class MarkPlan:
    #: the most a variant's marks may add to the unmarked graph replay before the calls are
    #: split over more variants (half the design's 10% hook budget, for noise)
    target_overhead: float = 0.05
    max_variants: int = 16

    def to_dict(self) -> dict[str, Any]:
        return {"target_overhead": self.target_overhead, "max_variants": self.max_variants}


class WorkWatch(Protocol):
    """Tells whether any device work was issued since it was last asked."""

    def watching(self) -> AbstractContextManager[Any]:
        """Active while the marks are placed (the capture)."""

    def take(self) -> bool:
        """True if work ran since the previous ``take`` (and start counting afresh)."""


class OpsWatch:
    """Any ATen operator that is not a view counts as work (a TorchDispatchMode; it is only
    active during the one capture, never in the replays that are timed)."""

    def __init__(self) -> None:
        self.seen = True

    def watching(self) -> AbstractContextManager[Any]:
        from torch.utils._python_dispatch import TorchDispatchMode

        watch = self

        class _Seen(TorchDispatchMode):
            def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                                   kwargs: Any = None) -> Any:
                if not func.is_view:
                    watch.seen = True
                return func(*args, **(kwargs or {}))

        return _Seen()

    def take(self) -> bool:
        seen, self.seen = self.seen, False
        return seen


class ClockWatch:
    """For tests with a ``FakeClock``: work is time that passed on the clock."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self._last: float | None = None

    def watching(self) -> AbstractContextManager[Any]:
        return nullcontext()

    def take(self) -> bool:
        now = float(self.clock.now)
        moved = self._last is None or now != self._last
        self._last = now
        return moved


class GraphMarks:
    """A clock for ``LayerTimer`` that places marks in a graph being captured.

    Logical slots (the timer's) map onto physical marks of ``inner``: a slot that ``keep``
    rejects gets none (its elapsed time reads as NaN), and a slot reached with no work since
    the previous mark shares that mark. After ``freeze`` the placement is fixed: recording
    again (a test backend "replays" by calling the forward again) repeats exactly the marks
    the capture placed, as a real replay does.
    """

    name = "cuda_event_in_graph"

    def __init__(self, inner: Clock, keep: Callable[[int], bool],
                 watch: WorkWatch | None) -> None:
        self.inner = inner
        self.keep = keep
        self.watch = watch
        self._phys: dict[int, int] = {}
        self._own: set[int] = set()
        self._count = 0
        self._frozen = False

    @property
    def marks(self) -> int:
        """Physical marks placed (event-record nodes in the graph)."""
        return self._count

    def reserve(self, slots: int) -> None:
        return None  # physical marks are allocated as they are placed

    def begin(self) -> None:
        begin = getattr(self.inner, "begin", None)
        if begin is not None:
            begin()  # the CUDA clock looks up the (capture) stream here

    @contextmanager
    def placing(self) -> Iterator[None]:
        """Around the capture: the work watch is active; the placement is frozen after."""
        if self._frozen:
            yield
            return
        with self.watch.watching() if self.watch is not None else nullcontext():
            yield
        self._frozen = True

    def record(self, slot: int) -> None:
        if self._frozen:
            if slot in self._own:
                self.inner.record(self._phys[slot])
            return
        if not self.keep(slot):
            return
        fresh = self.watch is None or self.watch.take() or self._count == 0
        if not fresh:
            self._phys[slot] = self._count - 1  # nothing ran since the last mark: share it
            return
        self.inner.reserve(self._count + 1)
        self._phys[slot] = self._count
        self._own.add(slot)
        self._count += 1
        self.inner.record(self._phys[slot])
        if self.watch is not None:
            self.watch.take()  # the mark itself is not work between marks

    def sync(self) -> None:
        self.inner.sync()

    def span(self, start: int, end: int) -> int | None:
        """How many mark costs lie between two slots: marks are numbered in time order, so
        the marks strictly inside plus the one that closes the interval."""
        a, b = self._phys.get(start), self._phys.get(end)
        return None if a is None or b is None else b - a

    def elapsed_s(self, start: int, end: int) -> float:
        a, b = self._phys.get(start), self._phys.get(end)
        if a is None or b is None:
            return math.nan
        return self.inner.elapsed_s(a, b)


def event_clock_factory(device: str) -> Callable[[], Clock]:
    """External CUDA event clocks, or ``CaptureError`` when this torch has none."""
    import inspect

    from cnnprof.timing.clocks import CudaEventClock

    try:
        params = inspect.signature(torch.cuda.Event.__new__).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    if "external" not in params:
        raise CaptureError(f"torch {torch.__version__} cannot record timing events inside a "
                           "CUDA graph (torch.cuda.Event has no external=True)")
    return lambda: CudaEventClock(device, external=True)


# -- the pass --------------------------------------------------------------------------------
@dataclass
class InGraphResult:
    calls: list[Call]
    #: per call: one sample per replay of its variant (seconds, mark cost compensated)
    per_call: list[Measured]
    #: end-to-end seconds between the outermost marks, per replay, per variant (as measured)
    hooked_e2e_s: list[list[float]]
    #: physical marks per variant
    marks: list[int]
    #: all calls' marks in one graph: its median replay / the unmarked one - 1 (None when the
    #: unmarked replay is unknown)
    dense_overhead: float | None
    plan: MarkPlan
    #: seconds one mark adds, per variant: (marked - unmarked replay) / marks crossed
    mark_cost_s: list[float] = field(default_factory=list)

    @property
    def variants(self) -> int:
        return len(self.marks)

    def overhead(self, unmarked_s: float | None) -> float | None:
        """The worst variant's median replay over the unmarked replay, minus 1."""
        if not unmarked_s or not self.hooked_e2e_s:
            return None
        return max(median(v) for v in self.hooked_e2e_s) / unmarked_s - 1.0


@dataclass
class _Variant:
    tree: list[tuple[int, int]]
    #: per replay, per call: seconds as measured
    durations: list[list[float]]
    #: per call: mark costs inside its interval (None: the call has no marks here)
    spans: list[int | None]
    e2e: list[float]
    e2e_span: int
    marks: int

    def mark_cost(self, unmarked_s: float | None) -> float:
        """Seconds one mark adds to the replay, from this variant's own figures."""
        if not unmarked_s or self.e2e_span <= 0:
            return 0.0
        return max(0.0, (median(self.e2e) - unmarked_s) / self.e2e_span)

    def compensated(self, call: int, cost: float) -> list[float]:
        """A call's samples less the cost of the marks its interval crosses."""
        span = self.spans[call]
        if span is None:
            return []
        return [max(0.0, d[call] - span * cost) for d in self.durations]


def _variant(root: torch.nn.Module, call: Callable[[], Any], backend: GraphBackend,
             clock: Clock, watch: WorkWatch | None, keep: Callable[[int], bool], *,
             warmup: int, repeats: int,
             progress: Callable[[int, int], None] | None,
             stretches: StretchPlan | None = None) -> _Variant:
    """Capture one marked forward and replay it ``repeats`` times."""
    marks = GraphMarks(clock, keep, watch)
    timer = LayerTimer(root, marks, stretches=stretches)

    def forward() -> Any:
        # hooks only around the marked forward: the capture's warm-up runs `call` bare.
        # (On a GPU this runs once, in the capture; a test backend runs it per replay.)
        with timer.attached():
            timer.rewind()
            marks.begin()
            with marks.placing():
                marks.record(E2E_START)
                out = call()
                marks.record(E2E_END)
        return out

    durations: list[list[float]] = []
    e2e: list[float] = []
    graph = None
    try:
        graph = backend.capture(forward, 1, 2, warm=call)
        tree = timer.call_tree()
        for _ in range(min(warmup, 3)):
            backend.replay_s(graph, 1)
        for step in range(repeats):
            backend.replay_s(graph, 1)
            marks.sync()
            e2e.append(marks.elapsed_s(E2E_START, E2E_END))
            durations.append(timer.call_durations())
            if progress is not None:
                progress(step + 1, repeats)
    finally:
        backend.release(graph)
    spans = [marks.span(FIRST_CALL_SLOT + 2 * c, FIRST_CALL_SLOT + 2 * c + 1)
             for c in range(len(tree))]
    return _Variant(tree, durations, spans, e2e, marks.span(E2E_START, E2E_END) or 0,
                    marks.marks)


def variants_for(overhead: float | None, plan: MarkPlan) -> int:
    """How many variants bring a dense graph's mark overhead under the target (each variant
    carries about 1/k of the marks: its calls are one contiguous stretch of the forward)."""
    if overhead is None or overhead <= plan.target_overhead:
        return 1
    return max(1, min(plan.max_variants, math.ceil(overhead / plan.target_overhead)))


def chunk_of(calls: int, k: int) -> Callable[[int], int]:
    """Call index → variant: k contiguous stretches of (nearly) equal length, so neighbouring
    calls in a variant still share their marks."""
    return lambda c: min(k - 1, c * k // max(1, calls))


def run_in_graph(root: torch.nn.Module, call: Callable[[], Any], backend: GraphBackend,
                 make_clock: Callable[[], Clock],
                 make_watch: Callable[[Clock], WorkWatch | None], *,
                 unmarked_s: float | None, warmup: int, repeats: int,
                 plan: MarkPlan | None = None,
                 progress: Callable[[str, int, int], None] | None = None,
                 stretches: StretchPlan | None = None) -> InGraphResult:
    """All calls' marks in one graph; if that costs more than the plan allows against the
    ``unmarked_s`` replay, again split over ``variants_for`` variants. Each call's samples
    are compensated for the marks its interval crosses (``_Variant.mark_cost``)."""
    plan = plan or MarkPlan()

    def run(k: int, tree: list[tuple[int, int]] | None) -> tuple[
            list[tuple[int, int]], list[_Variant], Callable[[int], int]]:
        variants: list[_Variant] = []
        owner = chunk_of(len(tree) if tree is not None else 1, k)
        for j in range(k):
            def keep(slot: int, j: int = j) -> bool:
                return slot < FIRST_CALL_SLOT or owner((slot - FIRST_CALL_SLOT) // 2) == j

            def tick(step: int, total: int, j: int = j) -> None:
                if progress is not None:
                    progress(f"graph marks {j + 1}/{k}" if k > 1 else "graph marks",
                             step, total)

            clock = make_clock()
            found = _variant(root, call, backend, clock, make_watch(clock), keep,
                             warmup=warmup, repeats=repeats, progress=tick,
                             stretches=stretches)
            if tree is None:
                tree = found.tree
            if found.tree != tree:
                raise CaptureError("the forward's module calls differ between captures "
                                   "(data-dependent control flow)")
            variants.append(found)
        assert tree is not None
        return tree, variants, owner

    tree, variants, owner = run(1, None)
    dense = (median(variants[0].e2e) / unmarked_s - 1.0) if unmarked_s else None
    k = variants_for(dense, plan)
    if k > 1:
        tree, variants, owner = run(k, tree)
    costs = [v.mark_cost(unmarked_s) for v in variants]
    calls = [Call(module, parent) for module, parent in tree]
    for index, c in enumerate(calls):
        if c.parent >= 0:
            calls[c.parent].children.append(index)
    measured = []
    for index in range(len(calls)):
        j = owner(index)
        samples = variants[j].compensated(index, costs[j])
        if not samples or any(math.isnan(x) for x in samples):
            raise CaptureError(f"call {index} got no marks in its variant")
        measured.append(Measured(samples, 1))
    return InGraphResult(calls, measured, [v.e2e for v in variants],
                         [v.marks for v in variants], dense, plan, costs)
