"""CSV: one row per layer in base units (elements, MACs, bytes, seconds), for spreadsheets
and pandas. Parents carry inclusive totals: filter on ``is_leaf`` before summing a column."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

from cnnprof.report import COST_FIELDS

if TYPE_CHECKING:
    from cnnprof.render.options import RenderOptions
    from cnnprof.report import Report

HEADER = ("name", "type", "depth", "is_leaf", "calls", "input_shapes", "output_shapes",
          "params", "trainable_params", "param_bytes", *COST_FIELDS)
TIME_HEADER = ("median_s", "p10_s", "p90_s", "self_median_s")


def _shapes(shapes: tuple[tuple[int, ...], ...]) -> str:
    return ";".join("x".join(map(str, s)) for s in shapes)


def render(report: Report, options: RenderOptions) -> str:
    timed = any(layer.time for layer in report.layers)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER + (TIME_HEADER if timed else ()))
    for layer in report.layers:
        if options.depth is not None and layer.depth > options.depth:
            continue
        row: list[object] = [
            layer.name, layer.type, layer.depth, int(layer.is_leaf), layer.calls,
            _shapes(layer.input_shapes), _shapes(layer.output_shapes), layer.params,
            layer.trainable_params, layer.param_bytes, *(getattr(layer, f) for f in COST_FIELDS),
        ]
        if timed:
            time = layer.time
            row.extend("" if time is None else repr(float(getattr(time, k))) for k in TIME_HEADER)
        writer.writerow(row)
    return buffer.getvalue()
