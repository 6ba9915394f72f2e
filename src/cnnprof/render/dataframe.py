"""``Report.to_dataframe()``: one row per layer, for pandas users.

pandas is optional (``pip install 'cnnprof[pandas]'``) and imported only here. Counts are
``int64`` columns, seconds and ratios ``float64``; shapes are text (``1x64x56x56``, several
joined by ``, ``) so the frame prints well; the layer's dotted name is the ``name`` column.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cnnprof.errors import UsageError
from cnnprof.render import units
from cnnprof.report import COST_FIELDS

if TYPE_CHECKING:
    import pandas

    from cnnprof.report import Report

#: integer columns read straight off ``LayerRecord``
COUNT_COLUMNS = ("calls", "params", "own_params", "trainable_params", "buffers", "param_bytes",
                 *COST_FIELDS)
#: per-layer times (``time=True``), as ``time_<field>`` columns
TIME_FIELDS = ("median_s", "p10_s", "p90_s", "min_s", "self_median_s", "share")


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise UsageError("to_dataframe() needs pandas, which is not installed",
                         hint="pip install 'cnnprof[pandas]'") from None
    return pandas


def to_dataframe(report: Report) -> pandas.DataFrame:
    pd = _pandas()
    layers = report.layers
    data: dict[str, Any] = {
        "name": [r.name for r in layers],
        "type": [r.type for r in layers],
        "kind": [r.kind for r in layers],
        "depth": pd.array([r.depth for r in layers], dtype="int64"),
        "is_leaf": pd.array([r.is_leaf for r in layers], dtype="bool"),
        "input_shapes": [", ".join(units.shape(s) for s in r.input_shapes) for r in layers],
        "output_shapes": [", ".join(units.shape(s) for s in r.output_shapes) for r in layers],
    }
    for key in COUNT_COLUMNS:
        data[key] = pd.array([getattr(r, key) for r in layers], dtype="int64")
    for key in COST_FIELDS:
        data[f"self_{key}"] = pd.array([getattr(r.self_cost, key) for r in layers],
                                       dtype="int64")
    if any(r.backward is not None for r in layers):
        for key in ("macs", "flops"):
            # a layer without a backward figure is a missing value, not zero
            data[f"backward_{key}"] = pd.array(
                [getattr(r.backward, key) if r.backward is not None else None for r in layers],
                dtype="Int64")
    if any(r.time is not None for r in layers):
        for key in TIME_FIELDS:
            data[f"time_{key}"] = pd.array(
                [float(getattr(r.time, key)) if r.time is not None else float("nan")
                 for r in layers], dtype="float64")
    if any(r.memory is not None for r in layers):
        data["memory_peak_bytes"] = pd.array(
            [r.memory.peak_bytes if r.memory is not None else None for r in layers],
            dtype="Int64")
    return pd.DataFrame(data)
