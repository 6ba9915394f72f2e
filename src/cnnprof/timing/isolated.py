"""Isolated graph replays: the fallback for a forward that cannot be captured with marks.

One hooked eager forward records every module call (its enclosing call and its arguments,
cloned). Each call is then captured into its own graph and replayed back-to-back between
one event pair until the window is at least ``Plan.target_window_s``; time per call =
window / calls in the window, median over ``Plan.windows`` windows. A call too short to
outrun the host's replay launch is unrolled (``copies`` calls captured in one graph) so the
GPU never waits for the host.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from cnnprof.timing.graph_capture import Call, CaptureError, GraphBackend, Measured


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
