"""Budgets inside a test suite::

    from cnnprof.testing import assert_within_budget

    def test_model_stays_small():
        assert_within_budget(MyNet(), "3x224x224", max_params="5M", max_macs="600M")

Limits take the same humane units as budget files ("25.6M", "120MB", "8ms") or numbers in
base units. A failure raises ``AssertionError`` whose message is the verdict table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cnnprof.budget import METRICS, Measured, ModelBudget, judge, median_forward_s, values_of
from cnnprof.render.units import UnitError, parse_quantity

if TYPE_CHECKING:
    import torch

    from cnnprof.report import Report

__all__ = ["assert_within_budget"]


def assert_within_budget(
    model: torch.nn.Module | str,
    inputs: Any = None,
    *,
    max_params: str | float | None = None,
    max_macs: str | float | None = None,
    max_flops: str | float | None = None,
    max_param_bytes: str | float | None = None,
    max_activation_bytes: str | float | None = None,
    max_latency: str | float | None = None,
    batch: int = 1,
    dtype: str | None = None,
    device: str = "meta",
    warmup: int = 5,
    repeats: int = 20,
    **profile_kwargs: Any,
) -> Report:
    """Profile ``model`` on ``inputs`` (as ``cnnprof.profile`` takes them) and assert every
    given limit holds. Returns the report for further checks.

    ``max_latency`` times whole forwards on ``device`` (which must then be ``cpu`` or
    ``cuda``); counts are always taken on the meta device, where they cost nothing.
    """
    from cnnprof.api import profile

    given = {"params": max_params, "macs": max_macs, "flops": max_flops,
             "param_bytes": max_param_bytes, "activation_bytes": max_activation_bytes,
             "latency": max_latency}
    limits: dict[str, float] = {}
    for metric, text in given.items():
        if text is None:
            continue
        try:
            limits[metric] = parse_quantity(text, METRICS[metric].kind)
        except UnitError as exc:
            raise ValueError(f"max_{metric}: {exc}") from None
    if not limits:
        raise TypeError("assert_within_budget needs at least one max_* limit")
    if "latency" in limits and device == "meta":
        raise ValueError("max_latency needs device='cpu' or 'cuda'")

    report = profile(model, inputs, batch=batch, dtype=dtype, **profile_kwargs)
    label = report.model.spec
    values = values_of(report)
    if "latency" in limits:
        values["latency"] = _latency(model, inputs, batch, dtype, device, warmup, repeats)
    budget = ModelBudget(name=label, spec=label, batch=batch, dtype=dtype, device=device,
                         limits=limits)
    rows = judge(budget, Measured(values))
    if any(row.status != "ok" for row in rows):
        from cnnprof.render.budget import table_text

        raise AssertionError("model over budget\n" + table_text(rows, title=f"budget: {label}"))
    return report


def _latency(model: torch.nn.Module | str, inputs: Any, batch: int, dtype: str | None,
             device: str, warmup: int, repeats: int) -> float:
    from cnnprof.budget import end_to_end_latency

    if isinstance(model, str):
        specs = _spec_texts(inputs)
        return end_to_end_latency(ModelBudget(name=model, spec=model, inputs=specs, batch=batch,
                                              dtype=dtype, device=device, warmup=warmup,
                                              repeats=repeats))
    return _instance_latency(model, inputs, batch, dtype, device, warmup, repeats)


def _spec_texts(inputs: Any) -> tuple[str, ...]:
    if inputs is None:
        return ()
    if isinstance(inputs, str):
        return (inputs,)
    if isinstance(inputs, Sequence) and all(isinstance(i, str) for i in inputs):
        return tuple(inputs)
    raise TypeError("with a model spec, give inputs as shape strings such as '3x224x224'")


def _instance_latency(model: torch.nn.Module, inputs: Any, batch: int, dtype: str | None,
                      device: str, warmup: int, repeats: int) -> float:
    """Time the user's own instance where it lives: moving it would break "leave the
    model as found", so ``device`` must be where its parameters already are."""
    import torch

    from cnnprof.api import _specs, check_device
    from cnnprof.inputs import make_tensors, with_dtype

    target = check_device(device)
    here = next((p.device for p in model.parameters()), torch.device(target))
    if torch.device(target).type != here.type:
        raise ValueError(f"max_latency: the model is on {here}, not {target}; "
                         "move it there first (cnnprof leaves your model where it is)")
    specs, tensors = _specs(inputs, None)
    args = tensors if tensors is not None else make_tensors(with_dtype(specs, dtype), batch, here)
    was_training = model.training
    try:
        model.eval()
        return median_forward_s(lambda: model(*args), str(here), warmup, repeats)
    finally:
        model.train(was_training)
