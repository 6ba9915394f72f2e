"""Running a budget's models: profile each (and time it for ``max_latency``), then judge.

``cnnprof.budget`` parses and judges (pure); this module is the one that runs models, so it
sits with the API, above the trace and timing layers.

A model that cannot be built or run is a ``failed`` row of its own and the other models are
still checked: whatever the model's code does (raises, calls ``sys.exit(0)`` at import,
parses the command line), the gate ends non-zero and names it. Only a mistake in the budget
file itself (an unknown model name) stops the whole check with exit code 2.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cnnprof.budget import (
    Budget,
    Measured,
    ModelBudget,
    Row,
    dotted_key,
    judge,
    location,
    values_of,
)
from cnnprof.errors import BudgetFileError, ModelCodeError, UsageError

if TYPE_CHECKING:
    from cnnprof.report import Report


def measure(budget: ModelBudget) -> Measured:
    """Profile one budgeted model: counts on the meta device, latency on its device."""
    from cnnprof.api import profile
    from cnnprof.errors import DeviceError, ModelFailedError

    try:
        report = profile(budget.spec, list(budget.inputs) or None, batch=budget.batch,
                         dtype=budget.dtype, mode=budget.mode, model_args=budget.args or None)
        values = values_of(report)
        skipped: dict[str, str] = {}
        if "latency" in budget.limits:
            try:
                values["latency"] = latency_s(report, budget.spec, budget.device,
                                              warmup=budget.warmup, repeats=budget.repeats,
                                              dtype=budget.dtype, model_args=budget.args)
            except DeviceError as exc:  # a CI runner without the GPU: say so, do not fail
                skipped["latency"] = exc.message
    except (ModelFailedError, ModelCodeError) as exc:
        return Measured({}, failed=exc.one_line())
    return Measured(values, skipped=skipped)


def latency_s(report: Report, model: Any, device: str, *, warmup: int | None = None,
              repeats: int | None = None, dtype: str | None = None,
              model_args: dict[str, Any] | None = None) -> float:
    """Median seconds of a whole forward of ``model`` on ``device``, through the timing
    pass (its clocks and schedule); the un-hooked forward when measured, since per-layer
    hooks are the profiler's cost, not the model's."""
    from cnnprof.timing.api import TimingOptions, time_report

    options = TimingOptions(device=device, warmup=warmup, repeats=repeats, dtype=dtype,
                            memory=False)
    timed = time_report(report, model, options, model_args=model_args or None)
    value = values_of(timed).get("latency")
    if value is None:  # pragma: no cover - the timing pass always records it
        raise RuntimeError("the timing pass recorded no end-to-end time")
    return value


def resolve_models(budget: Budget) -> dict[str, str]:
    """Check every model spec before running any: an unknown name is a mistake in the
    file (exit 2, with its line), not a model over budget. Returns, per model name, why its
    code failed while loading (a model file that raises or exits at import): those models
    are failed rows, the others still run."""
    from cnnprof.zoo import resolve

    failed: dict[str, str] = {}
    for model in budget.models:
        try:
            resolve(model.spec, model.args or None)
        except ModelCodeError as exc:
            failed[model.name] = exc.one_line()
        except UsageError as exc:
            key = "model" if model.spec != model.name else ""
            where = location(budget.path, model.spec_line)
            dotted = dotted_key(["models", model.name, *([key] if key else [])])
            raise BudgetFileError(f"{where}: {dotted}: {exc.message}", hint=exc.hint) from None
    return failed


def run(budget: Budget, progress: Callable[[str], None] | None = None) -> list[Row]:
    """Every model's rows, in file order. Raises BudgetFileError for unknown models."""
    failed = resolve_models(budget)
    rows: list[Row] = []
    for model in budget.models:
        if progress is not None:
            progress(model.name)
        measured = (Measured({}, failed=failed[model.name]) if model.name in failed
                    else measure(model))
        rows.extend(judge(model, measured))
    return rows
