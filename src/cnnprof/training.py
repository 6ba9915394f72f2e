"""``profile(..., train_memory=True)``: the training-step memory of a profiled model.

Builds the call and the inputs the simulated step needs (the same ones the counting pass
used, at any batch for ``fit``) and turns the trace's result into the report's
``training_memory`` and per-layer ``saved_bytes``. The simulation itself:
cnnprof.trace.train_memory; what is counted: docs/memory.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from cnnprof.errors import ModelFailedError, UsageError, first_line
from cnnprof.inputs import InputSpec, bind, torch_dtype
from cnnprof.report import Report
from cnnprof.zoo import ZooEntry


def check_options(optimizer: str, amp: str | None,
                  fit: str | int | float | None) -> tuple[str, str | None, int | None]:
    """Validated (optimizer, amp, fit in bytes); a bad value is a usage error."""
    from cnnprof.render.units import UnitError, parse_quantity
    from cnnprof.trace.train_memory import check_amp, check_optimizer

    try:
        name = check_optimizer(optimizer)
        precision = check_amp(amp)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    fit_bytes: int | None = None
    if fit is not None:
        try:
            fit_bytes = int(parse_quantity(fit, "bytes"))
        except UnitError as exc:
            raise UsageError(f"--fit: {exc}", hint="e.g. --fit 24GB or --fit 80GiB") from None
        if fit_bytes <= 0:
            raise UsageError(f"--fit must be a positive memory size, got {fit!r}")
    return name, precision, fit_bytes


def with_training_memory(
    report: Report,
    model: torch.nn.Module,
    entry: ZooEntry | None,
    specs: list[InputSpec],
    given: list[torch.Tensor] | None,
    batch: int,
    float_dtype: str | None,
    *,
    optimizer: str,
    amp: str | None,
    fit_bytes: int | None,
) -> Report:
    """``report`` with ``training_memory`` and every layer's ``saved_bytes``."""
    from cnnprof.trace.train_memory import StepFailed, attach_saved, measure

    def make_inputs(b: int) -> list[torch.Tensor]:
        # called inside the fake mode: empty tensors there are fake CPU tensors, no memory
        if given is not None:
            return [torch.empty((b, *t.shape[1:]), dtype=t.dtype, device="cpu") for t in given]
        return [torch.empty((b, *s.shape), dtype=torch_dtype(s.dtype), device="cpu")
                for s in specs]

    call: Callable[[list[torch.Tensor]], Any]
    if entry is not None:
        def call(tensors: list[torch.Tensor]) -> Any:
            positional, named = bind(specs, tensors)
            args, kwargs = entry.arguments(list(positional))
            return model(*args, **{**kwargs, **named})
    elif given is not None:
        def call(tensors: list[torch.Tensor]) -> Any:
            return model(*tensors)
    else:
        def call(tensors: list[torch.Tensor]) -> Any:
            positional, named = bind(specs, tensors)  # NAME=SPEC inputs go by keyword
            return model(*positional, **named)

    if given is not None and fit_bytes is not None and len({t.shape[0] for t in given}) > 1:
        raise UsageError("--fit varies the batch (the first dimension) of every input: "
                         "the given tensors do not share one")
    try:
        memory, saved = measure(
            model, call, make_inputs, batch=given[0].shape[0] if given else batch,
            optimizer=optimizer, amp=amp,
            dtype=torch_dtype(float_dtype) if float_dtype else None, fit_bytes=fit_bytes)
    except StepFailed as exc:
        message = (f"the training step failed at batch {exc.batch}: "
                   f"{type(exc.cause).__name__}: {first_line(exc.cause)}")
        raise ModelFailedError(
            message, hint="training memory runs the step on fake tensors (no values): a "
            "model that needs tensor values cannot be simulated", report=report) from exc.cause
    return report.with_updates(training_memory=memory,
                               layers=attach_saved(report.layers, saved))
