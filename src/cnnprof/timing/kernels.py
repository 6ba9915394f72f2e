"""Which kernels each layer launched, from ``torch.profiler``.

Module hooks push a ``record_function`` range per module call (``cnnprof::<layer name>``).
The profiler links every CUDA kernel to the CPU op that launched it (correlation ids); each
op is attributed to the innermost range open when it started. A kernel therefore belongs to
exactly one layer's *own* list (``kernels``) and to the inclusive kernel time of that layer
and all its ancestors (``inclusive_s``), which is what layer times are checked against.
On the CPU there are no kernels: the outermost aten ops of each range stand in for them.

libkineto (the profiler's C++ half) writes log lines straight to file descriptor 2, past
``sys.stderr``, and some of them ignore ``KINETO_LOG_LEVEL``; :func:`quiet_kineto` keeps the
known chatter off the terminal (see ``KINETO_NOISE``) and passes every other line on.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

import torch

from cnnprof.device import Device, parse
from cnnprof.timing.stretches import GapTracker, StretchPlan, index_gaps, row_names
from cnnprof.timing.timer import module_names

PREFIX = "cnnprof::"

#: libkineto's log line prefix: ``LEVEL:date time pid:tid File.cpp:line] ``
_KINETO_LINE = r"[A-Z]+:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \d+:\d+ [\w.]+:\d+\] "
#: Lines libkineto prints on every ``--kernels`` run that say nothing to a cnnprof user.
#: Anything else it writes (CUPTI failures, dropped events, ...) is passed on unchanged.
KINETO_NOISE: tuple[re.Pattern[str], ...] = tuple(re.compile(_KINETO_LINE + msg) for msg in (
    # USDT probe markers at every trace start/stop; printed whatever KINETO_LOG_LEVEL says
    r"profiler_(start|stop)\s*$",
    # ERROR on hosts without a usable CUDA driver, once per process, while the first trace is
    # processed: kineto probes for GPUs even for a CPU-only trace. On a working CUDA host the
    # probe succeeds, so hiding it never hides why a CUDA trace came out empty.
    r"gpuGetDeviceCount failed",
    # stage progress (Warm Up / Collection / Post Processing): by default in older torch
    # releases (from ActivityProfilerController.cpp), only at KINETO_LOG_LEVEL<=3 in 2.15
    r"Completed Stage: ",
))
#: kineto's own default level (ERROR); a lower KINETO_LOG_LEVEL asks for its logs
_KINETO_DEFAULT_LEVEL = 4


def _kineto_logs_requested() -> bool:
    """True when ``KINETO_LOG_LEVEL`` asks kineto for more than its default: the user is
    debugging the profiler and gets its output unfiltered. Read as kineto reads it (C
    ``atoi``: leading digits, none is 0, so ``junk`` means verbose; empty means unset)."""
    value = os.environ.get("KINETO_LOG_LEVEL", "")
    if not value.strip():
        return False
    digits = re.match(r"\s*([+-]?\d+)", value)
    return (int(digits.group(1)) if digits else 0) < _KINETO_DEFAULT_LEVEL


def _is_fd2(stream: IO[str] | None) -> bool:
    try:
        return stream is not None and stream.fileno() == 2
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation, closed
        return False


#: (st_dev, st_ino) of the real stderr → a text stream on a duplicate of it. Python-level
#: writes go there while fd 2 is captured. Kept open for the process (one fd), not closed
#: per block: a thread (Rich's refresher) that fetched it as sys.stderr just before the swap
#: back may still write to it, and must not hit a closed file.
_passthrough: dict[tuple[int, int], IO[str]] = {}


def _passthrough_for(stderr: IO[str]) -> IO[str]:
    st = os.fstat(2)
    key = (st.st_dev, st.st_ino)
    stream = _passthrough.get(key)
    if stream is None:
        for stale in _passthrough.values():  # fd 2 now is another file (tests, daemons)
            stale.close()
        _passthrough.clear()
        stream = _passthrough[key] = open(  # noqa: SIM115 (lives for the process)
            os.dup(2), "w", encoding=getattr(stderr, "encoding", None) or "utf-8",
            errors="backslashreplace", buffering=1)
    return stream


@contextmanager
def quiet_kineto() -> Iterator[None]:
    """Capture what C/C++ code writes to fd 2 inside the block; afterwards write every line
    that is not known kineto chatter (``KINETO_NOISE``) to ``sys.stderr``.

    Meant for the profiler's own start/step/stop/events calls only, as the lines it keeps are
    held back until the block ends. Python-level writes are not captured: while the block
    runs, a ``sys.stderr`` on fd 2 is swapped for a stream on the real stderr. That keeps the
    Rich progress bar drawing through the block (the trace processing in ``events()`` takes
    ~0.3 s on resnet18): Rich redraws through ``sys.stderr`` and checks ``isatty()`` on every
    refresh, so with fd 2 on a file it would pause, and a frame started just before the
    switch would be captured and replayed through Rich's stderr proxy as a stray line."""
    if _kineto_logs_requested():
        yield
        return
    stderr = sys.stderr
    passthrough: IO[str] | None = None
    try:
        if stderr is not None:
            stderr.flush()  # what Python buffered so far belongs before the captured lines
        if _is_fd2(stderr):
            passthrough = _passthrough_for(stderr)
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2: nothing can reach a terminal anyway
        saved = -1
    if saved < 0:
        yield
        return
    with tempfile.TemporaryFile() as sink:
        try:
            os.dup2(sink.fileno(), 2)
            if passthrough is not None:
                sys.stderr = passthrough
            yield
        finally:
            if passthrough is not None:
                if sys.stderr is passthrough:
                    sys.stderr = stderr
                passthrough.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            kept = [line for line in sink.read().decode(errors="replace").splitlines(True)
                    if not any(p.match(line) for p in KINETO_NOISE)]
            if kept:
                text = "".join(kept)
                if sys.stderr is not None:
                    sys.stderr.write(text)
                    sys.stderr.flush()
                else:
                    os.write(2, text.encode(errors="replace"))


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


def profile_kernels(model: torch.nn.Module, call: Callable[[], Any], *, device: str | Device,
                    iterations: int = 3, stretches: StretchPlan | None = None) -> KernelStats:
    """Run ``call`` ``iterations`` times under ``torch.profiler`` with per-module ranges, and
    a range per gap of ``stretches`` (a parent's own ops: ``cnnprof.timing.stretches``).

    One more iteration runs first with tracing on and is discarded (the profiler's warm-up
    step): the first kernels traced after the profiler starts run measurably slower (on an
    H100 the first layer of every model came out ~25% slower than in every other
    measurement), which would bias the reference against the model's first layer."""
    import warnings

    from torch.autograd.profiler import record_function
    from torch.profiler import ProfilerActivity, profile, schedule

    target = parse(device)
    cuda = target is not None and target.is_cuda
    handles: list[Any] = []
    open_ranges: list[tuple[torch.nn.Module | None, Any]] = []
    named = module_names(model)
    rows = row_names([n for n, _ in named], stretches or {})
    labels = {PREFIX + (n or "<model>"): n for n in rows}

    def opener(row: int) -> Any:
        rf = record_function(PREFIX + rows[row])
        rf.__enter__()
        open_ranges.append((None, rf))
        return rf

    def closer(rf: Any) -> None:
        if open_ranges and open_ranges[-1][1] is rf:
            open_ranges.pop()
        rf.__exit__(None, None, None)

    gaps: GapTracker[Any] = GapTracker(index_gaps(rows, stretches or {}), opener, closer)

    def pre(index: int) -> Callable[..., None]:
        label = PREFIX + (rows[index] or "<model>")

        # as in the timer's hooks: without planned gaps the tracker's bookkeeping is skipped
        def hook(module: torch.nn.Module, args: Any) -> None:
            if gaps:
                gaps.entering()
            rf = record_function(label)
            rf.__enter__()
            open_ranges.append((module, rf))
            if gaps:
                gaps.entered(index)

        return hook

    def post(index: int) -> Callable[..., None]:
        def hook(module: torch.nn.Module, args: Any, output: Any) -> None:
            if gaps:
                gaps.leaving(index)
            if open_ranges and open_ranges[-1][0] is module:
                open_ranges.pop()[1].__exit__(None, None, None)
                if gaps:
                    gaps.left()

        return hook

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    try:
        for index, (_, module) in enumerate(named):
            handles.append(module.register_forward_pre_hook(pre(index)))
            handles.append(module.register_forward_hook(post(index), always_call=True))
        plan = schedule(wait=0, warmup=1, active=iterations, repeat=1)
        with warnings.catch_warnings():
            # "Profiler clears events at the end of each cycle": one cycle is all we keep
            warnings.simplefilter("ignore")
            # kineto's chatter comes from the profiler's own calls: start (prepare), the
            # step() that starts the trace (profiler_start) and the last one, which stops
            # and processes it (profiler_stop, gpuGetDeviceCount); events() (parsing) and
            # the exit are wrapped in case a release prints there. The model calls are not,
            # so nothing they write is held back.
            prof = profile(activities=activities, schedule=plan)
            with quiet_kineto():
                prof.__enter__()
            try:
                for _ in range(iterations + 1):
                    call()
                    if cuda:
                        torch.cuda.synchronize(str(device))
                    with quiet_kineto():
                        prof.step()
            finally:
                with quiet_kineto():
                    prof.__exit__(None, None, None)
            with quiet_kineto():
                events = prof.events()
    finally:
        for handle in handles:
            handle.remove()
        while open_ranges:
            open_ranges.pop()[1].__exit__(None, None, None)
        gaps.clear()
    return attribute(events, labels, cuda=cuda, iterations=iterations)


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
