"""CUDA memory per layer: allocation delta and the allocator's peak while the layer ran.

One forward with hooks that read the caching allocator's counters (host-side bookkeeping:
no synchronization). The allocator keeps a single peak, so each hook reads it, credits it to
every layer still open on the stack, and resets it; a layer's peak is therefore the highest
``memory_allocated`` seen anywhere inside it, and the model's peak is the highest overall,
the number ``torch.cuda.max_memory_allocated`` gives for a plain forward.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from cnnprof.timing.timer import module_names


@dataclass
class MemoryResult:
    #: name → {"alloc_delta_bytes", "peak_bytes", "start_bytes"}
    layers: dict[str, dict[str, int]] = field(default_factory=dict)
    peak_bytes: int = 0
    #: allocated before the forward (weights, inputs, anything else already resident)
    baseline_bytes: int = 0


def measure_memory(model: torch.nn.Module, call: Callable[[], Any],
                   device: str | torch.device,
                   failed: list[str | None] | None = None) -> MemoryResult:
    """One forward with memory hooks; ``failed[0]`` names the layer running if it raises
    (the result is lost then, so the name travels out through the list)."""
    cuda = torch.cuda
    result = MemoryResult()
    # open frames: [name, start_bytes, peak_bytes]
    stack: list[list[Any]] = []
    handles: list[Any] = []

    def absorb_peak() -> None:
        peak = cuda.max_memory_allocated(device)
        for frame in stack:
            if peak > frame[2]:
                frame[2] = peak
        if peak > result.peak_bytes:
            result.peak_bytes = peak
        cuda.reset_peak_memory_stats(device)

    def pre(name: str) -> Callable[..., None]:
        def hook(module: torch.nn.Module, args: Any) -> None:
            absorb_peak()
            now = cuda.memory_allocated(device)
            stack.append([name, now, now])

        return hook

    def post(name: str) -> Callable[..., None]:
        def hook(module: torch.nn.Module, args: Any, output: Any) -> None:
            absorb_peak()
            # the first post-hook to see the exception is the innermost layer running
            if failed is not None and failed[0] is None and sys.exc_info()[1] is not None:
                failed[0] = name
            if not stack or stack[-1][0] != name:
                return
            _, start, peak = stack.pop()
            delta = cuda.memory_allocated(device) - start
            seen = result.layers.get(name)
            if seen is None:
                result.layers[name] = {"alloc_delta_bytes": delta, "peak_bytes": peak,
                                       "start_bytes": start}
            else:  # shared module: deltas add up over its calls, the peak is the highest
                seen["alloc_delta_bytes"] += delta
                seen["peak_bytes"] = max(seen["peak_bytes"], peak)

        return hook

    try:
        for name, module in module_names(model):
            handles.append(module.register_forward_pre_hook(pre(name)))
            handles.append(module.register_forward_hook(post(name), always_call=True))
        cuda.synchronize(device)
        cuda.reset_peak_memory_stats(device)
        result.baseline_bytes = cuda.memory_allocated(device)
        result.peak_bytes = result.baseline_bytes
        call()
        absorb_peak()
        cuda.synchronize(device)
    finally:
        for handle in handles:
            handle.remove()
    return result


def plain_peak_bytes(call: Callable[[], Any], device: str | torch.device) -> int:
    """``torch.cuda.max_memory_allocated`` around one plain call (the reference value)."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    call()
    torch.cuda.synchronize(device)
    return int(torch.cuda.max_memory_allocated(device))
