"""Per-layer timer: forward hooks that only stamp pre-created clock slots.

One iteration = one call of the model. Each module call takes two slots (start, end) from a
pool sized during warm-up; the hooks keep a stack of open calls so every call knows its
parent call. After the iteration the clock is synchronized once and the samples are read:

* inclusive time of a module = sum over its calls in the iteration (shared modules called
  several times, e.g. ResNet's one ``relu`` used three times per block, add up);
* self time of a call = its inclusive time minus the inclusive times of the calls nested
  directly in it, so self times telescope: summed over all modules they give the root.

With a ``StretchPlan`` the gaps in which parents run their own ops (the counting report's
``"ops"`` rows, ``cnnprof.timing.stretches``) are timed as calls too, so their time leaves the
parent's self time for a row of its own.

Nothing is written onto modules; hooks are removed in ``finally`` (also on Ctrl-C).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from cnnprof.timing.clocks import Clock
from cnnprof.timing.stretches import GapTracker, StretchPlan, index_gaps, row_names
from cnnprof.trace.structure import iter_tensors, walk_modules

#: slots 0 and 1 frame the whole call (end-to-end, outside every hook)
E2E_START, E2E_END = 0, 1
FIRST_CALL_SLOT = 2


def module_names(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """(name, module) with the same naming as the counting trace (``walk_modules``)."""
    return [(name, module) for name, module, _ in walk_modules(model)]


@dataclass
class TimerResult:
    """Raw per-iteration samples, seconds. Index ``i`` of every list is iteration ``i``."""

    names: list[str]
    inclusive_s: dict[str, list[float]] = field(default_factory=dict)
    self_s: dict[str, list[float]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    end_to_end_s: list[float] = field(default_factory=list)
    #: host time spent in the call (enqueue time on CUDA), per iteration
    host_s: list[float] = field(default_factory=list)
    backward_s: dict[str, list[float]] = field(default_factory=dict)


class LayerTimer:
    """Times every module of ``model`` with ``clock`` (and the gaps of ``stretches``); ``run``
    does warm-up and repeats. ``names`` are the modules, then the gaps' rows."""

    def __init__(self, model: torch.nn.Module, clock: Clock, *, backward: bool = False,
                 stretches: StretchPlan | None = None) -> None:
        self.model = model
        self.clock = clock
        self.backward = backward
        named = module_names(model)
        self.names = row_names([n for n, _ in named], stretches or {})
        self._modules = [m for _, m in named]
        self._gaps: GapTracker[int] = GapTracker(index_gaps(self.names, stretches or {}),
                                                 self._open_gap, self._close_gap)
        self._handles: list[Any] = []
        #: name of the innermost module that was running when a call raised (e.g. CUDA OOM)
        self.failed: str | None = None
        self._cap = 0
        self._owner: list[int] = []
        self._parent: list[int] = []
        self._stack: list[int] = []
        self._ncalls = 0
        # backward marks: one (start, end) slot pair per module, after the call slots
        self._bw_base = 0
        self._bw_started: list[bool] = []
        self._bw_ended: list[bool] = []
        self._reserve(64)

    # -- slots --------------------------------------------------------------------------
    def _reserve(self, calls: int) -> None:
        if calls <= self._cap:
            return
        cap = max(calls, 2 * self._cap)
        self._owner.extend([0] * (cap - self._cap))
        self._parent.extend([-1] * (cap - self._cap))
        self._cap = cap
        self._bw_base = FIRST_CALL_SLOT + 2 * cap
        self.clock.reserve(self._bw_base + 2 * len(self._modules))

    # -- hooks --------------------------------------------------------------------------
    def _pre(self, index: int) -> Callable[..., None]:
        stack, clock, gaps = self._stack, self.clock, self._gaps
        # the plan is fixed: test it once here, not through GapTracker.__bool__ in every call
        track = bool(gaps)

        def hook(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
            if track:
                gaps.entering()
            call = self._new_call(index)
            stack.append(call)
            if self.backward:
                self._hook_inputs(index, args)
            # stamped last, so the hook's own Python work is not inside the layer's time
            clock.record(FIRST_CALL_SLOT + 2 * call)
            if track:
                gaps.entered(index)

        return hook

    def _new_call(self, owner: int) -> int:
        call = self._ncalls
        if call >= self._cap:  # only during warm-up: the pool is sized by then
            self._reserve(call + 1)
        self._ncalls = call + 1
        self._owner[call] = owner
        self._parent[call] = self._stack[-1] if self._stack else -1
        return call

    # a gap is a call without a module: opened right after the boundary before it, closed
    # right before the boundary after it (never on the stack: no module call nests in it)
    def _open_gap(self, row: int) -> int:
        call = self._new_call(row)
        self.clock.record(FIRST_CALL_SLOT + 2 * call)
        return call

    def _close_gap(self, call: int) -> None:
        self.clock.record(FIRST_CALL_SLOT + 2 * call + 1)

    def _post(self, index: int) -> Callable[..., None]:
        stack, clock, gaps = self._stack, self.clock, self._gaps
        track = bool(gaps)

        def hook(module: torch.nn.Module, args: tuple[Any, ...], output: Any) -> None:
            if self.failed is None and sys.exc_info()[1] is not None:
                self.failed = self.names[index]  # innermost module running when it raised
            if track:
                gaps.leaving(index)
            if stack and self._owner[stack[-1]] == index:
                call = stack.pop()
                clock.record(FIRST_CALL_SLOT + 2 * call + 1)
                if track:
                    gaps.left()
            if self.backward:
                self._hook_outputs(index, output)

        return hook

    # backward: the gradient reaching a module's output marks the start of its backward,
    # the gradient leaving through its inputs marks the end (tensor hooks, train mode only)
    def _hook_outputs(self, index: int, output: Any) -> None:
        def started(grad: torch.Tensor) -> None:
            if not self._bw_started[index]:
                self._bw_started[index] = True
                self.clock.record(self._bw_base + 2 * index)

        for tensor in iter_tensors(output):
            if tensor.requires_grad:
                tensor.register_hook(started)

    def _hook_inputs(self, index: int, args: Any) -> None:
        def ended(grad: torch.Tensor) -> None:
            if self._bw_started[index]:
                self._bw_ended[index] = True
                self.clock.record(self._bw_base + 2 * index + 1)

        for tensor in iter_tensors(args):
            if tensor.requires_grad:
                tensor.register_hook(ended)

    def attach(self) -> None:
        if self._handles:
            return
        try:
            for index, module in enumerate(self._modules):
                self._handles.append(module.register_forward_pre_hook(self._pre(index)))
                self._handles.append(
                    module.register_forward_hook(self._post(index), always_call=True))
        except BaseException:
            self.detach()
            raise

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._stack.clear()
        self._gaps.clear()

    @contextmanager
    def attached(self) -> Iterator[LayerTimer]:
        self.attach()
        try:
            yield self
        finally:
            self.detach()

    # -- iterations ---------------------------------------------------------------------
    def rewind(self) -> None:
        """Start a new iteration: call numbering (and with it the slots) starts again at 0."""
        self._ncalls = 0
        self._stack.clear()
        self._gaps.clear()
        if self.backward:
            self._bw_started = [False] * len(self._modules)
            self._bw_ended = [False] * len(self._modules)

    def call_durations(self) -> list[float]:
        """Seconds of every module call of the last iteration, in call order (read after
        the clock's ``sync``)."""
        return [self.clock.elapsed_s(FIRST_CALL_SLOT + 2 * c, FIRST_CALL_SLOT + 2 * c + 1)
                for c in range(self._ncalls)]

    def call_tree(self) -> list[tuple[int, int]]:
        """(module index, enclosing call or -1) of every call of the last iteration."""
        return [(self._owner[c], self._parent[c]) for c in range(self._ncalls)]

    def iteration(self, call: Callable[[], Any]) -> tuple[list[float], list[float], list[int],
                                                          float, float, list[float] | None]:
        """One hooked call (hooks must be attached). Returns per-module inclusive and self
        seconds, calls, end-to-end seconds, host seconds and backward seconds (or None)."""

        clock = self.clock
        self.rewind()
        host = _bracketed(call, clock)
        n = len(self.names)
        inclusive = [0.0] * n
        own = [0.0] * n
        calls = [0] * n
        durations = self.call_durations()
        for c in range(self._ncalls):
            m = self._owner[c]
            d = durations[c]
            inclusive[m] += d
            own[m] += d
            calls[m] += 1
            p = self._parent[c]
            if p >= 0:
                own[self._owner[p]] -= d
        backward: list[float] | None = None
        if self.backward:
            backward = [
                clock.elapsed_s(self._bw_base + 2 * i, self._bw_base + 2 * i + 1)
                if i < len(self._modules) and self._bw_started[i] and self._bw_ended[i]
                else float("nan")  # no marks, or a gap's row (its backward is its parent's)
                for i in range(n)
            ]
        return inclusive, own, calls, clock.elapsed_s(E2E_START, E2E_END), host, backward


def time_unhooked(call: Callable[[], Any], clock: Clock) -> tuple[float, float]:
    """One call with no hooks at all: (end-to-end seconds by ``clock``, host seconds)."""

    clock.reserve(2)
    host = _bracketed(call, clock)
    return clock.elapsed_s(E2E_START, E2E_END), host


def _bracketed(call: Callable[[], Any], clock: Clock) -> float:
    """Run ``call`` between the end-to-end marks and synchronise; returns host seconds."""
    begin = getattr(clock, "begin", None)
    if begin is not None:
        begin()
    host0 = time.perf_counter()
    clock.record(E2E_START)
    call()
    clock.record(E2E_END)
    host = time.perf_counter() - host0
    clock.sync()
    return host


@dataclass
class Schedule:
    warmup: int
    repeats: int


def run_timing(
    model: torch.nn.Module,
    call: Callable[[], Any],
    clock: Clock,
    schedule: Schedule,
    *,
    backward: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    unhooked: bool = True,
    timer: LayerTimer | None = None,
    stretches: StretchPlan | None = None,
) -> tuple[TimerResult, list[float], list[float]]:
    """Warm up, then ``repeats`` iterations alternating an unhooked and a hooked call (so
    clock drift or thermal throttling hits both alike). Returns the hooked result and the
    unhooked end-to-end and host samples."""
    timer = timer or LayerTimer(model, clock, backward=backward, stretches=stretches)
    result = TimerResult(names=list(timer.names))
    n = len(timer.names)
    inc: list[list[float]] = [[] for _ in range(n)]
    own: list[list[float]] = [[] for _ in range(n)]
    bwd: list[list[float]] = [[] for _ in range(n)]
    total_calls = [0] * n
    plain_e2e: list[float] = []
    plain_host: list[float] = []
    total = schedule.warmup + schedule.repeats
    try:
        for step in range(total):
            measured = step >= schedule.warmup
            if unhooked:
                e2e, host = time_unhooked(call, clock)
                if measured:
                    plain_e2e.append(e2e)
                    plain_host.append(host)
            with timer.attached():
                incl, selfs, calls, e2e, host, back = timer.iteration(call)
            if measured:
                result.end_to_end_s.append(e2e)
                result.host_s.append(host)
                for i in range(n):
                    inc[i].append(incl[i])
                    own[i].append(selfs[i])
                    if back is not None:
                        bwd[i].append(back[i])
                if step == schedule.warmup:
                    total_calls = calls
            if progress is not None:
                progress("warm-up" if not measured else "timing", step + 1, total)
    finally:
        timer.detach()
    for i, name in enumerate(timer.names):
        result.calls[name] = total_calls[i]
        if total_calls[i] or any(inc[i]):
            result.inclusive_s[name] = inc[i]
            result.self_s[name] = own[i]
            if backward:
                result.backward_s[name] = bwd[i]
    return result, plain_e2e, plain_host
