"""``time_report``: a counted Report + the model → the same Report with measured times.

The timing pass builds its own copy of the model on the real device (zoo specs are built
fresh with a fixed seed; a user's instance is deep-copied), so the user's model is never
touched and the counts are never changed: only ``time``/``memory``/``kernels``/``roofline``
per layer and ``Report.timing`` are filled in.
"""

from __future__ import annotations

import contextlib
import copy
import io
import platform
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from cnnprof.device import Device, for_timing
from cnnprof.errors import ModelFailedError, UsageError, first_line
from cnnprof.inputs import (
    FLOAT_DTYPES,
    InputSpec,
    bind,
    make_tensors,
    parse_dtype,
    torch_dtype,
)
from cnnprof.measurements import LayerMemory, LayerTime, Roofline, SweepRow, TimingSummary
from cnnprof.report import LayerRecord, Report
from cnnprof.timing import roofline
from cnnprof.timing.clocks import Clock, clock_for
from cnnprof.timing.graph_capture import CudaGraphBackend, GraphBackend
from cnnprof.timing.graphs import GraphResult
from cnnprof.timing.isolated import Plan
from cnnprof.timing.kernels import KernelStats, profile_kernels
from cnnprof.timing.memory import MemoryResult, measure_memory
from cnnprof.timing.stats import Summary, median, summarize
from cnnprof.timing.stretches import StretchPlan, row_names, stretch_plan
from cnnprof.timing.timer import (
    LayerTimer,
    Schedule,
    TimerResult,
    module_names,
    run_timing,
    time_unhooked,
)
from cnnprof.trace.structure import iter_tensors

#: (warm-up, repeats) when not given: GPUs are fast and noisy, CPUs slow and steady
DEFAULT_SCHEDULE = {"cuda": (10, 50), "cpu": (2, 10)}
#: hooked end-to-end more than this much slower than unhooked → hooks distort the figures
OVERHEAD_LIMIT = 0.10
#: host enqueue time over this fraction of GPU time → the GPU waits for the CPU
LAUNCH_BOUND_HOST_RATIO = 0.8
#: profiled iterations for --kernels (the profiler's own overhead makes more pointless)
KERNEL_ITERATIONS = 3

Progress = Callable[[str, int, int], None]


@dataclass
class _Prepared:
    module: torch.nn.Module
    make_call: Callable[[int], Callable[[], Any]]


@dataclass(frozen=True)
class TimingOptions:
    """How to time (``cnnprof MODEL --time ...``; defaults are the CLI's).

    ``device``: ``"auto"`` (the GPU when there is one, else the CPU; the report says
    which), ``"cpu"``, ``"cuda[:N]"`` or a resolved ``cnnprof.device.Device``.
    ``warmup``/``repeats``: untimed and timed iterations (None: ``DEFAULT_SCHEDULE`` for
    the device). ``batches``: end-to-end latency/throughput at other batch sizes too.
    ``dtype``: floating dtype to time in (default: the report's). ``kernels``: list each
    layer's kernels (torch.profiler). ``memory``: CUDA memory per layer. ``peak_tflops`` /
    ``peak_gbps``: roofs for the roofline. ``graphs``: CUDA graph replay pass (``--graphs``).
    ``seed``: the random weights' seed (the caller's RNG is left alone).
    """

    device: str | Device = "auto"
    warmup: int | None = None
    repeats: int | None = None
    batches: tuple[int, ...] | None = None
    dtype: str | None = None
    channels_last: bool = False
    kernels: bool = False
    memory: bool = True
    peak_tflops: float | None = None
    peak_gbps: float | None = None
    graphs: bool = False
    seed: int = 0

    def resolved(self) -> Device:
        return for_timing(self.device)

    def schedule(self, device: Device) -> Schedule:
        default_warmup, default_repeats = DEFAULT_SCHEDULE[device.kind]
        return Schedule(default_warmup if self.warmup is None else self.warmup,
                        default_repeats if self.repeats is None else self.repeats)

    def check(self, mode: str = "eval", *, fake_graphs: bool = False) -> Device:
        """Usage errors (exit 2) before anything runs; returns the device to time on."""
        device = self.resolved()
        if self.graphs and not device.is_cuda and not fake_graphs:
            raise UsageError("--graphs needs --device cuda: it replays CUDA graphs",
                             hint="drop --graphs on the CPU, where eager times have no "
                                  "launch gaps")
        if self.graphs and mode == "train":
            raise UsageError("--graphs times the forward in eval mode only",
                             hint="drop --graphs, or --mode train")
        schedule = self.schedule(device)
        if schedule.warmup < 0 or schedule.repeats < 1:
            raise UsageError(f"--warmup must be >= 0 and --repeats >= 1, got "
                             f"{schedule.warmup} and {schedule.repeats}")
        if self.batches is not None and any(b <= 0 for b in self.batches):
            raise UsageError(f"--batch values must be positive, got {list(self.batches)}")
        for name, value in (("--peak-tflops", self.peak_tflops),
                            ("--peak-gbps", self.peak_gbps)):
            if value is not None and not value > 0:
                raise UsageError(f"{name} must be positive, got {value}")
        return device


def time_report(
    report: Report,
    model: torch.nn.Module | str,
    options: TimingOptions | None = None,
    *,
    model_args: dict[str, Any] | None = None,
    inputs: Sequence[torch.Tensor] | None = None,
    progress: Progress | None = None,
    clock: Clock | None = None,
    command: str | None = None,
    graph_backend: GraphBackend | None = None,
    graph_plan: Plan | None = None,
    graph_marks: Any = None,
) -> Report:
    """Time every layer of ``model`` as ``options`` say and return ``report`` with times
    filled (typed: ``LayerRecord.time``/``memory``/``roofline``, ``Report.timing``).

    ``report`` is the counting report of the same model and inputs (its batch is the timed
    batch; ``options.batches`` adds end-to-end latency/throughput rows for other sizes).
    ``inputs``: the user's own tensors, when they profiled an instance with tensors.
    Eval mode runs under ``no_grad``; a report made with ``mode="train"`` also times the
    backward pass. Raises ``UsageError`` on the meta device and ``ModelFailedError`` when
    the forward fails (CUDA out of memory included, with the layer that asked).

    ``options.graphs`` (``--graphs``, CUDA and eval only) also runs the graph pass:
    per-layer times come from timing marks inside the replayed whole-model CUDA graph
    (``cnnprof.timing.ingraph``; no launch gaps), or, when the marked forward cannot be
    captured, from isolated replays of each call (``cnnprof.timing.graphs``). The eager
    figures stay in the report beside them. ``graph_backend`` replaces the CUDA backend and
    ``graph_marks`` (``(make_clock, make_watch)``) its event marks; tests use
    ``FakeGraphBackend`` with a ``FakeClock`` (without ``graph_marks`` a test backend
    measures isolated calls only). ``clock`` replaces the device's clock (tests).
    """
    options = options or TimingOptions()
    device = options.check(report.mode, fake_graphs=graph_backend is not None)
    schedule = options.schedule(device)
    batch = report.inputs[0].shape[0] if report.inputs and report.inputs[0].shape else 1
    sweep_batches = [int(b) for b in (options.batches or [batch])]
    float_dtype = _float_dtype(report, options.dtype)
    train = report.mode == "train"
    prepared = _prepare(report, model, device, float_dtype, options.channels_last, model_args,
                        inputs, options.seed, train)
    clock = clock or clock_for(device)
    module = prepared.module
    call = prepared.make_call(batch)

    # the parents' own ops, as the counting report split them into rows, are timed as such
    stretches = stretch_plan(report)
    timer = LayerTimer(module, clock, backward=train, stretches=stretches)
    grad = torch.enable_grad() if train else torch.no_grad()
    # a model that prints in forward (the seeds do) would flood the terminal 100 times over
    with grad, contextlib.redirect_stdout(io.StringIO()):
        with _failure_guard(batch, lambda: timer.failed):
            result, plain_e2e, plain_host = run_timing(module, call, clock, schedule,
                                                       backward=train, progress=progress,
                                                       timer=timer)
        sweep_rows = _sweep(prepared, sweep_batches, batch, plain_e2e, clock, schedule, progress)
        mem: MemoryResult | None = None
        if options.memory and device.is_cuda:
            failed: list[str | None] = [None]
            with _failure_guard(batch, lambda: failed[0]):
                mem = measure_memory(module, call, str(device), failed=failed)
        # graph capture allocates private memory pools: only after the peak-memory pass
        graph: GraphResult | None = None
        if options.graphs:
            graph = _graph_pass(module, call, device, graph_backend, graph_plan, graph_marks,
                                schedule, result, batch, progress, stretches)
        kstats: KernelStats | None = None
        if options.kernels:
            if progress is not None:
                progress("kernels", 0, 1)
            kstats = profile_kernels(module, call, device=device, iterations=KERNEL_ITERATIONS,
                                     stretches=stretches)
            if progress is not None:
                progress("kernels", 1, 1)

    timed = _assemble(report, result, plain_e2e, plain_host, sweep_rows, mem, kstats,
                      graph=graph, device=device, schedule=schedule, batch=batch,
                      dtype=float_dtype, options=options, clock=clock, command=command,
                      multi=len(sweep_batches) > 1)
    if device.chosen:  # "auto" picked it: say where the times come from
        timed = timed.with_updates(notes=(*timed.notes, f"timed on {device} ({device.reason})"))
    return timed


def _graph_pass(module: torch.nn.Module, call: Callable[[], Any], device: Device,
                backend: GraphBackend | None, plan: Plan | None, marks: Any,
                schedule: Schedule, eager: TimerResult, batch: int,
                progress: Progress | None, stretches: StretchPlan) -> GraphResult:
    from cnnprof.timing.graph_capture import CaptureError
    from cnnprof.timing.graphs import run_graph_pass
    from cnnprof.timing.ingraph import OpsWatch, event_clock_factory

    named = module_names(module)
    names = row_names([n for n, _ in named], stretches)  # modules first, as in the timer
    modules = [m for _, m in named]
    device_ctx = (torch.cuda.device(device.torch()) if device.is_cuda
                  else contextlib.nullcontext())
    with device_ctx, _failure_guard(batch, None):
        unavailable: str | None = None
        if backend is None:
            backend = CudaGraphBackend(str(device))
            if marks is None:
                try:
                    marks = (event_clock_factory(str(device)), lambda clock: OpsWatch())
                except CaptureError as exc:  # an older torch: isolated replays still work
                    unavailable = str(exc)
        found = run_graph_pass(modules, names, call, backend, warmup=schedule.warmup,
                               repeats=schedule.repeats, eager=eager, plan=plan,
                               progress=progress, marks=marks, stretches=stretches)
        if unavailable and found.in_graph_failure is None:
            found.in_graph_failure = unavailable
        return found


# -- preparation ------------------------------------------------------------------------
def _float_dtype(report: Report, dtype: str | None) -> str:
    if dtype:
        name = parse_dtype(dtype)
        if name not in FLOAT_DTYPES:
            raise UsageError(f"--dtype must be a floating type, got {name}")
        return name
    for info in report.inputs:
        if info.dtype in FLOAT_DTYPES:
            return info.dtype
    return "float32"


def _prepare(report: Report, model: torch.nn.Module | str, device: Device, dtype: str,
             channels_last: bool, model_args: dict[str, Any] | None,
             given: Sequence[torch.Tensor] | None, seed: int, train: bool) -> _Prepared:
    from cnnprof.zoo import resolve

    cast = torch_dtype(dtype)
    devices = [device.cuda_index] if device.is_cuda else []
    # a fixed seed for the random weights, without disturbing the caller's RNG streams
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        entry = None
        if isinstance(model, str):
            entry = resolve(model, model_args)
            module, _ = entry.build(str(device))
        else:
            try:
                module = copy.deepcopy(model)
            except Exception as exc:
                raise UsageError(f"cannot copy the model for timing: {exc}",
                                 hint="timing never runs on your instance itself") from exc
            module = module.to(device.torch())
    module = module.to(cast)
    if channels_last:
        module = module.to(memory_format=torch.channels_last)
    module.train(train)
    if train:
        for p in module.parameters():
            if p.is_floating_point():
                p.requires_grad_(True)

    specs = [InputSpec(tuple(i.shape[1:]), dtype if i.dtype in FLOAT_DTYPES else i.dtype,
                       i.name) for i in report.inputs]

    def tensors(batch: int) -> list[torch.Tensor]:
        if given is not None:
            out = [t.detach().to(device.torch()) for t in given]
            return [t.to(cast) if t.is_floating_point() else t for t in out]
        return make_tensors(specs, batch, str(device))

    def make_call(batch: int) -> Callable[[], Any]:
        made = tensors(batch)
        if channels_last:
            made = [t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t
                    for t in made]
        positional, named = bind(specs, made)  # keyword inputs (input_ids=...) by name
        if entry is not None:
            args, kwargs = entry.arguments(list(positional))
            kwargs = {**kwargs, **named}
        else:
            args, kwargs = positional, named
        if not train:
            return lambda: module(*args, **kwargs)

        def step() -> Any:
            out = module(*args, **kwargs)
            parts = [t.float().sum() for t in iter_tensors(out)
                     if t.is_floating_point() and t.requires_grad]
            if parts:
                torch.stack(parts).sum().backward()
            return out

        return step

    return _Prepared(module, make_call)


_TRIED = re.compile(r"Tried to allocate ([0-9.]+ [KMGT]?i?B)")


@contextlib.contextmanager
def _failure_guard(batch: int, layer: Callable[[], str | None] | None) -> Iterator[None]:
    """CUDA out of memory and other forward failures → ModelFailedError naming the layer."""
    oom = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
    try:
        yield
    except ModelFailedError:
        raise
    except oom as exc:
        text = str(exc)
        wanted = _TRIED.search(text)
        where = layer() if layer is not None else None
        torch.cuda.empty_cache()
        raise ModelFailedError(
            "CUDA out of memory"
            + (f" in layer {where}" if where else "")
            + (f": it tried to allocate {wanted.group(1)}" if wanted else "")
            + f" at batch {batch}",
            hint=f"try a smaller --batch (e.g. {max(1, batch // 2)})",
        ) from exc
    except Exception as exc:
        where = layer() if layer is not None else None
        line = first_line(exc)
        raise ModelFailedError(
            "forward failed while timing" + (f" in layer {where}" if where else "")
            + f" at batch {batch}: {type(exc).__name__}: {line}") from exc


def _sweep(prepared: _Prepared, batches: list[int], timed_batch: int, timed_e2e: list[float],
           clock: Clock, schedule: Schedule, progress: Progress | None) -> list[SweepRow]:
    rows: list[SweepRow] = []
    if len(batches) <= 1:
        return rows
    for b in batches:
        if b == timed_batch and timed_e2e:
            samples = timed_e2e
        else:
            with _failure_guard(b, None):
                call = prepared.make_call(b)
                samples = []
                total = schedule.warmup + schedule.repeats
                for step in range(total):
                    e2e, _ = time_unhooked(call, clock)
                    if step >= schedule.warmup:
                        samples.append(e2e)
                    if progress is not None:
                        progress(f"batch {b}", step + 1, total)
                del call
        s = summarize(samples)
        rows.append(SweepRow(batch=b, latency_median_s=s.median_s, latency_p10_s=s.p10_s,
                             latency_p90_s=s.p90_s, throughput_per_s=b / s.median_s))
    return rows


# -- assembling the report ----------------------------------------------------------------
def _device_info(device: Device) -> dict[str, Any]:
    info: dict[str, Any] = {"torch": torch.__version__}
    if device.is_cuda:
        info["device_name"] = torch.cuda.get_device_name(device.cuda_index)
        info["cuda"] = torch.version.cuda
        driver = _driver_version()
        if driver:
            info["driver"] = driver
    else:
        info["device_name"] = platform.processor() or platform.machine() or "cpu"
        info["cpu_threads"] = torch.get_num_threads()
    return info


def _driver_version() -> str | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        version = pynvml.nvmlSystemGetDriverVersion()
        return version.decode() if isinstance(version, bytes) else str(version)
    except Exception:
        pass
    import shutil
    import subprocess

    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.strip().splitlines()
    return lines[0].strip() if lines else None


def _subtree_types(layers: Sequence[LayerRecord]) -> list[list[str]]:
    out: list[list[str]] = [[r.type] for r in layers]
    stack: list[int] = []
    for index, rec in enumerate(layers):
        while stack and layers[stack[-1]].depth >= rec.depth:
            stack.pop()
        for ancestor in stack:
            out[ancestor].append(rec.type)
        stack.append(index)
    return out


def _assemble(report: Report, result: TimerResult, plain_e2e: list[float],
              plain_host: list[float], sweep_rows: list[SweepRow],
              mem: MemoryResult | None, kstats: KernelStats | None, *,
              graph: GraphResult | None, device: Device, schedule: Schedule, batch: int,
              dtype: str, options: TimingOptions, clock: Clock, command: str | None,
              multi: bool) -> Report:
    hooked = summarize(result.end_to_end_s)
    plain = summarize(plain_e2e) if plain_e2e else None
    graph_e2e = summarize(graph.end_to_end_s) if graph and graph.end_to_end_s else None
    # shares are of the whole-model time measured the same way as the layers
    whole = graph_e2e.median_s if graph_e2e is not None else hooked.median_s
    info = _device_info(device)
    peaks = roofline.lookup(info["device_name"]) if device.is_cuda else None
    roofs = _Roofs(peaks, dtype, bool(torch.backends.cudnn.allow_tf32),
                   bool(torch.backends.cuda.matmul.allow_tf32), options.peak_tflops,
                   options.peak_gbps)
    types = _subtree_types(report.layers)

    layers: list[LayerRecord] = []
    leaf_self_sum = 0.0
    for index, rec in enumerate(report.layers):
        time = _layer_time(rec, result, graph, kstats, whole)
        if time is None:
            layers.append(rec)
            continue
        if rec.is_leaf:  # the eager figure, in either mode
            leaf_self_sum += (time.eager_self_median_s if time.eager_self_median_s is not None
                              else time.self_median_s)
        changes: dict[str, Any] = {"time": time}
        if mem is not None and rec.name in mem.layers:
            changes["memory"] = LayerMemory(**mem.layers[rec.name])
        if kstats is not None:
            changes["kernels"] = kstats.layer_kernels(rec.name)
        roof = roofs.place(rec, time.median_s, types[index])
        if roof is not None:
            changes["roofline"] = roof
        layers.append(replace(rec, **changes))

    overhead = hooked.median_s / plain.median_s - 1.0 if plain and plain.median_s > 0 else None
    host_plain = median(plain_host) if plain_host else None
    launch_bound = False
    notes: list[str] = []
    if device.is_cuda and plain is not None and host_plain is not None:
        launch_bound = (host_plain >= LAUNCH_BOUND_HOST_RATIO * plain.median_s
                        or (overhead is not None and overhead > OVERHEAD_LIMIT))
        if launch_bound:
            # what the launch gaps distort depends on whether graph replays were timed too
            affected = ("the eager figures (end-to-end, eager_median_s) include launch gaps, "
                        "the per-layer graph-replay times do not." if graph is not None else
                        "per-layer times then include launch gaps and overstate GPU work. "
                        "A larger --batch shows the kernels' own times (or --graphs on CUDA).")
            notes.append(
                f"launch-bound: the CPU took {host_plain * 1e3:.3g} ms to queue a forward the "
                f"GPU ran in {plain.median_s * 1e3:.3g} ms (hooks add {100 * (overhead or 0):.1f}%)"
                f"; {affected}")
    elif overhead is not None and overhead > OVERHEAD_LIMIT:
        notes.append(f"hooks added {100 * overhead:.1f}% to the end-to-end time; small layers' "
                     "times include that overhead")
    graph_keys = _graph_timing(graph, graph_e2e, notes) if graph is not None else None
    peak_override = ({"tflops": options.peak_tflops, "gbps": options.peak_gbps}
                     if options.peak_tflops is not None or options.peak_gbps is not None
                     else None)
    timing = TimingSummary(
        device=str(device), torch=info["torch"], device_name=info["device_name"],
        cuda=info.get("cuda"), driver=info.get("driver"), cpu_threads=info.get("cpu_threads"),
        clock=clock.name, warmup=schedule.warmup, repeats=schedule.repeats, batch=batch,
        dtype=dtype, channels_last=options.channels_last,
        mode="graph" if graph is not None else report.mode,
        end_to_end_median_s=hooked.median_s, end_to_end_p10_s=hooked.p10_s,
        end_to_end_p90_s=hooked.p90_s,
        end_to_end_unhooked_median_s=plain.median_s if plain else None,
        hook_overhead=overhead, host_median_s=median(result.host_s),
        host_unhooked_median_s=host_plain, leaf_self_sum_s=leaf_self_sum,
        peak_memory_bytes=mem.peak_bytes if mem is not None else None,
        memory_baseline_bytes=mem.baseline_bytes if mem is not None else None,
        launch_bound=launch_bound, notes=tuple(notes),
        end_to_end_samples_s=tuple(result.end_to_end_s),
        end_to_end_unhooked_samples_s=tuple(plain_e2e),
        peaks=roofs.describe(), peak_override=peak_override,
        kernel_iterations=kstats.iterations if kstats is not None else None,
        sweep=tuple(sweep_rows) if multi else None, graph=graph_keys, command=command,
    )
    return report.with_updates(layers=tuple(layers), timing=timing)


def _layer_time(rec: LayerRecord, result: TimerResult, graph: GraphResult | None,
                kstats: KernelStats | None, whole: float) -> LayerTime | None:
    """The layer's typed time: eager figures, or with ``--graphs`` the graph replay's with
    the eager ones beside them; None for a layer that never ran."""
    samples = result.inclusive_s.get(rec.name)
    if not samples:
        return None
    s = summarize(samples)
    own = summarize(result.self_s[rec.name])
    graphed: dict[str, Any] = {}
    iso = graph.layers if graph is not None else None
    if iso is not None and rec.name in iso.inclusive_s:
        # graph mode: the graph times are the layer's times; eager ones ride along
        graphed = {"method": iso.method[rec.name], "eager_median_s": s.median_s,
                   "eager_self_median_s": own.median_s}
        if iso.method[rec.name] == "isolated" and rec.name in iso.per_window:
            graphed["graph_calls_per_window"] = iso.per_window[rec.name]
        samples = iso.inclusive_s[rec.name]
        s = summarize(samples)
        own = summarize(iso.self_s[rec.name])
    elif iso is not None and rec.is_ops:
        # isolated replays have no call to replay for a parent's own ops: eager times
        graphed = {"method": "events"}
    calls = result.calls.get(rec.name, 0)
    backward: float | None = None
    # a shared module's backward marks span all its calls: no single interval to report
    if rec.name in result.backward_s and calls == 1:
        back = [x for x in result.backward_s[rec.name] if x == x]  # drop NaN (no marks)
        if back:
            backward = median(back)
    return LayerTime(
        median_s=s.median_s, p10_s=s.p10_s, p90_s=s.p90_s, min_s=s.min_s,
        self_median_s=own.median_s, self_p10_s=own.p10_s, self_p90_s=own.p90_s,
        share=s.median_s / whole if whole > 0 else 0.0, calls=calls,
        samples_s=tuple(samples), backward_median_s=backward,
        kernel_s=kstats.layer_inclusive_s(rec.name) if kstats is not None else None,
        **graphed,
    )


def _graph_timing(graph: GraphResult, e2e: Summary | None,
                  notes: list[str]) -> dict[str, Any]:
    """The graph pass's top-level keys; adds its notes to ``notes``."""
    layers = graph.layers
    leaves, parents = layers.medians()
    out: dict[str, Any] = {
        "graph_method": graph.method,
        "end_to_end_graph_median_s": e2e.median_s if e2e is not None else None,
        "end_to_end_graph_p10_s": e2e.p10_s if e2e is not None else None,
        "end_to_end_graph_p90_s": e2e.p90_s if e2e is not None else None,
        "end_to_end_graph_samples_s": list(graph.end_to_end_s),
        "graph_leaf_sum_s": leaves,
        "graph_parent_self_sum_s": parents,
        "graph_sum_s": leaves + parents,
        "graph_fallbacks": dict(layers.failures),
        "graph_marks_failure": graph.in_graph_failure,
        "graph_plan": graph.plan.to_dict(),
        "graph_seconds": graph.seconds,
    }
    found = graph.in_graph
    if found is not None:
        marked = [x for variant in found.hooked_e2e_s for x in variant]
        overhead = found.overhead(e2e.median_s if e2e is not None else None)
        out.update({
            "end_to_end_graph_marked_median_s": median(marked),
            "end_to_end_graph_marked_samples_s": [list(v) for v in found.hooked_e2e_s],
            "graph_mark_overhead": overhead,
            "graph_dense_mark_overhead": found.dense_overhead,
            "graph_variants": found.variants,
            "graph_marks": list(found.marks),
            "graph_mark_cost_s": list(found.mark_cost_s),
            "graph_mark_plan": found.plan.to_dict(),
        })
        if overhead is not None and overhead > OVERHEAD_LIMIT:
            notes.append(f"the timing marks add {100 * overhead:.1f}% to the graph replay even "
                         f"split over {found.variants} graphs; layer times are compensated for "
                         "them, but a layer of a few µs is within the marks' own jitter")
    if graph.in_graph_failure:
        notes.append("per-layer times are isolated replays of each call, not marks in the "
                     f"whole-model graph ({graph.in_graph_failure})")
    if graph.end_to_end_failure:
        notes.append("the whole model could not be captured in one CUDA graph "
                     f"({graph.end_to_end_failure}); no end_to_end_graph figure")
    if layers.failures:
        names = ", ".join(n or "<model>" for n in list(layers.failures)[:5])
        more = f" and {len(layers.failures) - 5} more" if len(layers.failures) > 5 else ""
        notes.append(f"{len(layers.failures)} layer(s) could not be captured in a CUDA graph "
                     f"and keep eager event times (method 'events'): {names}{more}")
    return out


@dataclass(frozen=True)
class _Roofs:
    """The roofs each layer is placed under: the known GPU's (per dtype and TF32 switch),
    unless ``--peak-tflops``/``--peak-gbps`` override them."""

    peaks: roofline.DevicePeaks | None
    dtype: str
    conv_tf32: bool
    matmul_tf32: bool
    peak_tflops: float | None
    peak_gbps: float | None

    def place(self, rec: LayerRecord, seconds: float, types: list[str]) -> Roofline | None:
        tflops = self.peak_tflops
        gbps = self.peak_gbps
        if self.peaks is not None:
            if tflops is None:
                tf32 = roofline.tf32_for(types, conv_tf32=self.conv_tf32,
                                         matmul_tf32=self.matmul_tf32)
                tflops = roofline.math_peak_tflops(self.peaks, self.dtype, tf32=tf32)
            if gbps is None:
                gbps = self.peaks.gbps
        if tflops is None or gbps is None:
            return None
        return roofline.classify(rec.flops, rec.read_bytes + rec.write_bytes, seconds, tflops,
                                 gbps)

    def describe(self) -> dict[str, Any] | None:
        """The known GPU's peaks as the report's ``timing.peaks`` records them."""
        p = self.peaks
        if p is None:
            return None
        return {"name": p.name, "fp32_tflops": p.fp32_tflops, "tf32_tflops": p.tf32_tflops,
                "half_tflops": p.half_tflops, "gbps": p.gbps, "conv_tf32": self.conv_tf32,
                "matmul_tf32": self.matmul_tf32}
