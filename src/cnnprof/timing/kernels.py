"""Which kernels each layer launched, from ``torch.profiler``.

Module hooks push a ``record_function`` range per module call (``cnnprof::<layer name>``).
The profiler links every CUDA kernel to the CPU op that launched it (correlation ids); each
op is attributed to the innermost range open when it started. A kernel therefore belongs to
exactly one layer's *own* list (``kernels``) and to the inclusive kernel time of that layer
and all its ancestors (``inclusive_s``), which is what layer times are checked against.
On the CPU there are no kernels: the outermost aten ops of each range stand in for them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from cnnprof.timing.timer import module_names

PREFIX = "cnnprof::"


@dataclass
class KernelStats:
    #: layer name → {kernel name: [launches, total seconds]} launched in the layer's own code
    own: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    #: layer name → total kernel seconds of the layer and everything nested in it
    inclusive_s: dict[str, float] = field(default_factory=dict)
    iterations: int = 1

    def layer_kernels(self, name: str) -> list[dict[str, Any]]:
        """Per-iteration kernels of ``name``, longest total first."""
        items = self.own.get(name, {})
        ordered = sorted(items.items(), key=lambda kv: (-kv[1][1], kv[0]))
        return [
            {"name": kname, "count": round(count / self.iterations),
             "total_s": total / self.iterations}
            for kname, (count, total) in ordered
        ]

    def layer_inclusive_s(self, name: str) -> float | None:
        value = self.inclusive_s.get(name)
        return None if value is None else value / self.iterations


@dataclass
class _Span:
    start: float
    end: float
    layer: str | None  # None: an op, not a layer range
    event: Any


def profile_kernels(model: torch.nn.Module, call: Callable[[], Any], *, device: str,
                    iterations: int = 3) -> KernelStats:
    """Run ``call`` ``iterations`` times under ``torch.profiler`` with per-module ranges.

    One more iteration runs first with tracing on and is discarded (the profiler's warm-up
    step): the first kernels traced after the profiler starts run measurably slower (on an
    H100 the first layer of every model came out ~25% slower than in every other
    measurement), which would bias the reference against the model's first layer."""
    import warnings

    from torch.autograd.profiler import record_function
    from torch.profiler import ProfilerActivity, profile, schedule

    cuda = device.startswith("cuda")
    handles: list[Any] = []
    open_ranges: list[tuple[torch.nn.Module, Any]] = []

    def pre(name: str) -> Callable[..., None]:
        label = PREFIX + (name or "<model>")

        def hook(module: torch.nn.Module, args: Any) -> None:
            rf = record_function(label)
            rf.__enter__()
            open_ranges.append((module, rf))

        return hook

    def post(module_: torch.nn.Module) -> Callable[..., None]:
        def hook(module: torch.nn.Module, args: Any, output: Any) -> None:
            if open_ranges and open_ranges[-1][0] is module_:
                open_ranges.pop()[1].__exit__(None, None, None)

        return hook

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    labels = {PREFIX + (n or "<model>"): n for n, _ in module_names(model)}
    try:
        for name, module in module_names(model):
            handles.append(module.register_forward_pre_hook(pre(name)))
            handles.append(module.register_forward_hook(post(module), always_call=True))
        plan = schedule(wait=0, warmup=1, active=iterations, repeat=1)
        with warnings.catch_warnings():
            # "Profiler clears events at the end of each cycle": one cycle is all we keep
            warnings.simplefilter("ignore")
            with profile(activities=activities, schedule=plan) as prof:
                for _ in range(iterations + 1):
                    call()
                    if cuda:
                        torch.cuda.synchronize(device)
                    prof.step()
    finally:
        for handle in handles:
            handle.remove()
        while open_ranges:
            open_ranges.pop()[1].__exit__(None, None, None)
    return attribute(prof.events(), labels, cuda=cuda, iterations=iterations)


def attribute(events: Any, labels: dict[str, str], *, cuda: bool,
              iterations: int) -> KernelStats:
    """Attribute profiler events (``prof.events()``) to layer ranges by time containment."""
    from torch.autograd import DeviceType

    stats = KernelStats(iterations=max(1, iterations))
    spans: list[_Span] = []
    range_thread = None
    for evt in events:
        if getattr(evt, "device_type", DeviceType.CPU) != DeviceType.CPU:
            continue
        layer = labels.get(evt.name)
        if layer is not None and range_thread is None:
            range_thread = evt.thread
        spans.append(_Span(float(evt.time_range.start), float(evt.time_range.end), layer, evt))
    spans = [s for s in spans if s.event.thread == range_thread]
    # parents before children: earlier start first, and the longer span first on ties
    spans.sort(key=lambda s: (s.start, -s.end))
    stack: list[_Span] = []
    for span in spans:
        while stack and stack[-1].end <= span.start:
            stack.pop()
        if span.layer is not None:
            stack.append(span)
            stats.inclusive_s.setdefault(span.layer, 0.0)
            continue
        layers = [s.layer for s in stack if s.layer is not None]
        if not layers:
            stack.append(span)
            continue
        innermost = layers[-1]
        if cuda:
            items = [(k.name, float(k.duration) * 1e-6) for k in span.event.kernels
                     if not str(k.name).startswith(PREFIX)]
        elif stack[-1].layer is not None:  # CPU: outermost op inside the range only
            items = [(str(span.event.name), (span.end - span.start) * 1e-6)]
        else:
            items = []
        for kname, seconds in items:
            row = stats.own.setdefault(innermost, {}).setdefault(kname, [0.0, 0.0])
            row[0] += 1
            row[1] += seconds
            for layer in set(layers):
                stats.inclusive_s[layer] = stats.inclusive_s.get(layer, 0.0) + seconds
        stack.append(span)
    return stats
