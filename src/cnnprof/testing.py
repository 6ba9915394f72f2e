"""Budgets inside a test suite::

    from cnnprof.testing import assert_within_budget

    def test_model_stays_small():
        assert_within_budget(MyNet(), "3x224x224", max_params="5M", max_macs="600M")

Limits take the same humane units as budget files ("25.6M", "120MB", "8ms") or numbers in
base units. A failure raises ``AssertionError`` whose message is the verdict table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cnnprof.budget import METRICS, Measured, ModelBudget, judge, values_of
from cnnprof.budget_run import latency_s
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
    warmup: int | None = None,
    repeats: int | None = None,
    **profile_kwargs: Any,
) -> Report:
    """Profile ``model`` on ``inputs`` (as ``cnnprof.profile`` takes them) and assert every
    given limit holds. Returns the report for further checks.

    Counts are taken on the meta device, where they cost nothing. ``max_latency`` times
    whole forwards on ``device`` (``cpu`` or ``cuda``) through the timing pass, on a copy:
    the instance is left where it is.
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
    values = values_of(report)
    if "latency" in limits:
        values["latency"] = latency_s(report, model, device, warmup=warmup, repeats=repeats,
                                      dtype=dtype, model_args=profile_kwargs.get("model_args"))
    label = report.model.spec
    rows = judge(ModelBudget(name=label, spec=label, limits=limits), Measured(values))
    if any(row.status != "ok" for row in rows):
        from cnnprof.render.budget import table_text

        raise AssertionError("model over budget\n" + table_text(rows, title=f"budget: {label}"))
    return report
