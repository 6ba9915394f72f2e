"""torchstat, runnable today: ``stat()`` (its drop-in) and the measured duration share.

torchstat's numbers are ``cnnprof.counting.torchstat``'s rules applied to a cnnprof report;
its printed table is ``cnnprof.render.torchstat``. What is left here needs a model to run:
the duration share, timed by cnnprof's one layer timer (``cnnprof.timing.timer``) when the
report was not timed itself, and ``stat()``, which profiles, annotates and prints.
"""

from __future__ import annotations

import contextlib
import io
import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cnnprof.counting.torchstat import annotate, timed_durations
from cnnprof.errors import first_line
from cnnprof.report import Report

if TYPE_CHECKING:
    import torch

__all__ = ["annotate_torchstat", "measure_leaf_durations", "stat"]

#: warm-up forwards, then timed ones (the median is the duration)
_WARMUP, _REPEATS = 1, 3


def measure_leaf_durations(
    model: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None,
    *, repeats: int = _REPEATS,
) -> tuple[dict[str, float], str]:
    """Median time per leaf module over ``repeats`` forwards after one warm-up, summed over
    the calls of one forward, by cnnprof's layer timer with the clock of the model's device
    (``perf_counter`` on the CPU, CUDA events on a GPU). Returns the durations and how they
    were measured. The model is left as found: the timer's hooks are removed and training
    flags restored in ``finally``; its prints are swallowed."""
    import torch

    from cnnprof.timing.clocks import clock_for
    from cnnprof.timing.timer import Schedule, module_names, run_timing

    kwargs = kwargs or {}
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    clock = clock_for(str(device))
    leaves = {name for name, m in module_names(model) if not any(True for _ in m.children())}
    flags = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
            result, _e2e, _host = run_timing(
                model, lambda: model(*args, **kwargs), clock,
                Schedule(warmup=_WARMUP, repeats=repeats), unhooked=False)
    finally:
        for module, flag in flags:
            module.training = flag
    durations = {name: statistics.median(samples) for name, samples
                 in result.inclusive_s.items() if name in leaves and samples}
    return durations, f"{device.type} {clock.name} (median of {repeats})"


#: Models bigger than this (weights + activations) are not run on the CPU just for a share.
_MEASURE_LIMIT_BYTES = 4 * 1024**3


def _measure_for(report: Report, model: torch.nn.Module | None,
                 model_args: dict[str, Any] | None) -> tuple[dict[str, float], str]:
    """Leaf durations for a report and how they were measured: on ``model`` if given, else
    on the zoo model rebuilt on the CPU. Returns ({}, why) when it cannot be measured."""
    import torch

    from cnnprof.inputs import InputSpec, bind, make_tensors

    if report.totals.param_bytes + report.totals.activation_bytes > _MEASURE_LIMIT_BYTES:
        return {}, "model too large to time on the CPU for a duration share"
    specs = [InputSpec(i.shape[1:], i.dtype, i.name) for i in report.inputs]
    batch = report.inputs[0].shape[0] if report.inputs and report.inputs[0].shape else 1
    try:
        if model is not None:
            device = next((p.device for p in model.parameters()), torch.device("cpu"))
            if device.type == "meta":
                return {}, "the model is on the meta device (no values to time)"
            positional, named = bind(specs, make_tensors(specs, batch, device))
            return measure_leaf_durations(model, positional, named)
        if report.model.source == "instance":
            return {}, "no model to time"
        from cnnprof.zoo import resolve

        entry = resolve(report.model.spec, model_args)
        built, _notes = entry.build("cpu")
        positional, named = bind(specs, make_tensors(specs, batch, "cpu"))
        args, kwargs = entry.arguments(list(positional))
        return measure_leaf_durations(built, args, {**kwargs, **named})
    except Exception as exc:  # timing is a courtesy column: never fail the report for it
        line = first_line(exc)
        return {}, f"timing failed: {line}"


def annotate_torchstat(
    report: Report,
    *,
    model: torch.nn.Module | None = None,
    model_args: dict[str, Any] | None = None,
    durations: dict[str, float] | None = None,
    measure: bool = True,
) -> Report:
    """A copy of ``report`` whose layers carry torchstat's values under ``torchstat``
    (``cnnprof.counting.torchstat.annotate``). The duration comes from, in order: the
    report's own timing (``--time``), ``durations`` (seconds per layer name), or a pass of
    the layer timer on ``model`` or on the zoo model rebuilt (``measure=False`` skips).
    """
    if timed_durations(report):
        return annotate(report)
    if durations is not None:
        return annotate(report, durations, "given")
    if measure:
        measured, how = _measure_for(report, model, model_args)
        if measured:
            return annotate(report, measured, how)
        return annotate(report, why=how)
    return annotate(report)


def stat(model: torch.nn.Module, input_size: Sequence[int], query_granularity: int = 1) -> Report:
    """Drop-in for ``torchstat.stat``: prints torchstat's table for ``model`` at
    ``(1, *input_size)`` and returns the annotated report (torchstat returned None).

    Counting runs on the meta device (the model is not touched); the duration share is one
    CPU pass over the model itself with hooks that are removed afterwards.
    """
    from cnnprof.api import profile
    from cnnprof.errors import UsageError

    if query_granularity != 1:
        raise UsageError("only query_granularity=1 (one row per leaf module) is supported")
    report = profile(model, tuple(int(d) for d in input_size))
    report = annotate_torchstat(report, model=model)
    order = [name for name, _module in model.named_modules()]
    from cnnprof.render.torchstat import format_table

    print(format_table(report, order), end="")
    notes = [n for n in report.notes if n.startswith("torchstat has no rule")]
    for note in notes:
        print(f"Note: {note}")
    return report
