"""Two reports → what changed: total deltas and per-layer deltas, sorted by impact. Pure.

Layers are matched by their qualified name. To name each change once:

* a subtree that appears (or disappears) as a whole is one "added" ("removed") row for
  its top module, carrying the subtree's inclusive cost;
* a layer present in both is "changed" when its type or shapes differ, or when its cost
  outside its children differs (a leaf's whole cost; a parent's own functional ops and
  parameters) — parents are never flagged just because a child changed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cnnprof.report import LayerRecord, Report

#: Metrics compared, in display order. ``time_s`` only when both reports were timed.
METRICS: tuple[str, ...] = ("params", "macs", "flops", "param_bytes", "activation_bytes",
                            "read_bytes", "write_bytes")
#: The totals that ``--fail-above`` watches by default.
GATED: tuple[str, ...] = ("params", "macs", "flops", "param_bytes", "activation_bytes")


@dataclass(frozen=True)
class TotalDelta:
    metric: str
    old: float
    new: float

    @property
    def delta(self) -> float:
        return self.new - self.old

    @property
    def ratio(self) -> float | None:
        """Relative change (0.05 = +5%); None when both are zero; inf when it grew from 0."""
        if self.old == 0:
            return None if self.new == 0 else math.inf
        return self.new / self.old - 1.0

    def to_dict(self) -> dict[str, Any]:
        ratio = self.ratio
        return {"metric": self.metric, "old": self.old, "new": self.new, "delta": self.delta,
                "ratio": ratio if ratio is None or math.isfinite(ratio) else None}


@dataclass(frozen=True)
class LayerDelta:
    name: str
    #: "added", "removed" or "changed"
    status: str
    old_type: str | None
    new_type: str | None
    old_shapes: tuple[tuple[int, ...], ...] = ()
    new_shapes: tuple[tuple[int, ...], ...] = ()
    #: metric → (old, new); for a parent, the cost outside its children
    values: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: largest |delta| as a share of the old model's total of that metric
    impact: float = 0.0
    #: what about it changed: "type", "shape", "cost"
    changes: tuple[str, ...] = ()

    def delta(self, metric: str) -> float:
        old, new = self.values.get(metric, (0.0, 0.0))
        return new - old

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "status": self.status, "changes": list(self.changes),
            "old_type": self.old_type, "new_type": self.new_type,
            "old_output_shapes": [list(s) for s in self.old_shapes],
            "new_output_shapes": [list(s) for s in self.new_shapes],
            "impact": self.impact,
            "deltas": {m: {"old": o, "new": n, "delta": n - o}
                       for m, (o, n) in self.values.items()},
        }


@dataclass(frozen=True)
class ReportDiff:
    old_label: str
    new_label: str
    totals: tuple[TotalDelta, ...]
    layers: tuple[LayerDelta, ...]
    unchanged: int

    def total(self, metric: str) -> TotalDelta:
        for item in self.totals:
            if item.metric == metric:
                return item
        raise KeyError(metric)

    def grown_above(self, fraction: float, metrics: Sequence[str] = GATED) -> list[TotalDelta]:
        """Totals (among ``metrics``) that grew by more than ``fraction`` (0.05 = 5%)."""
        out = []
        for item in self.totals:
            ratio = item.ratio
            if item.metric in metrics and ratio is not None and ratio > fraction:
                out.append(item)
        return out

    def count(self, status: str) -> int:
        return sum(1 for layer in self.layers if layer.status == status)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "cnnprof.diff/1",
            "old": self.old_label, "new": self.new_label,
            "totals": [t.to_dict() for t in self.totals],
            "layers": [layer.to_dict() for layer in self.layers],
            "summary": {s: self.count(s) for s in ("added", "removed", "changed")}
                       | {"unchanged": self.unchanged},
        }


def _label(report: Report) -> str:
    shapes = ", ".join("x".join(map(str, i.shape)) for i in report.inputs)
    return f"{report.model.spec} ({shapes})" if shapes else report.model.spec


def _timed(report: Report) -> bool:
    return bool(report.timing) and all(
        r.time is not None for r in report.layers if r.is_leaf and r.calls)


def _end_to_end_s(report: Report) -> float:
    if report.timing is not None:
        return report.timing.end_to_end_median_s
    return report.root.time.median_s if report.root.time is not None else 0.0


def _inclusive(layer: LayerRecord, timed: bool) -> dict[str, float]:
    values: dict[str, float] = {m: float(getattr(layer, m)) for m in METRICS}
    if timed and layer.time is not None:
        values["time_s"] = layer.time.median_s
    return values


def _exclusive(layer: LayerRecord, timed: bool) -> dict[str, float]:
    """Cost outside the children: the whole layer for a leaf; for a parent its own
    parameters and the ops run in its own forward (``self_cost``)."""
    if layer.is_leaf:
        return _inclusive(layer, timed)
    values = {m: float(getattr(layer.self_cost, m, 0)) for m in METRICS
              if m not in ("params", "param_bytes")}
    values["params"] = float(layer.own_params)
    # own parameter bytes are not recorded apart; scale by the layer's bytes per element
    per_element = layer.param_bytes / layer.params if layer.params else 0.0
    values["param_bytes"] = layer.own_params * per_element
    if timed and layer.time is not None:
        values["time_s"] = layer.time.self_median_s
    return {m: values[m] for m in (*METRICS, "time_s") if m in values}


def diff_reports(old: Report, new: Report) -> ReportDiff:
    timed = _timed(old) and _timed(new)
    metrics = (*METRICS, "time_s") if timed else METRICS
    totals = []
    for metric in metrics:
        if metric == "time_s":
            o, n = _end_to_end_s(old), _end_to_end_s(new)
        else:
            o, n = float(getattr(old.totals, metric)), float(getattr(new.totals, metric))
        totals.append(TotalDelta(metric, o, n))
    scale = {t.metric: t.old or t.new for t in totals}

    def impact(values: dict[str, tuple[float, float]]) -> float:
        return max((abs(n - o) / scale[m] for m, (o, n) in values.items() if scale.get(m)),
                   default=0.0)

    # the root takes part too: its own forward's functional ops are costs like any other
    old_by = {r.name: r for r in old.layers}
    new_by = {r.name: r for r in new.layers}
    rows: list[LayerDelta] = []
    unchanged = 0

    def parent_also(name: str, pool: dict[str, LayerRecord], other: dict[str, LayerRecord]) -> bool:
        # is an ancestor of `name` itself new (or gone)? then that ancestor's row covers it
        parts = name.split(".") if name else []
        for cut in range(1, len(parts)):
            prefix = ".".join(parts[:cut])
            if prefix in pool and prefix not in other:
                return True
        return False

    for name, layer in new_by.items():
        if name in old_by or parent_also(name, new_by, old_by):
            continue
        vals = {m: (0.0, v) for m, v in _inclusive(layer, timed).items()}
        rows.append(LayerDelta(name, "added", None, layer.type, (), layer.output_shapes,
                               vals, impact(vals), ("added",)))
    for name, layer in old_by.items():
        if name in new_by or parent_also(name, old_by, new_by):
            continue
        vals = {m: (v, 0.0) for m, v in _inclusive(layer, timed).items()}
        rows.append(LayerDelta(name, "removed", layer.type, None, layer.output_shapes, (),
                               vals, impact(vals), ("removed",)))
    for name, before in old_by.items():
        after = new_by.get(name)
        if after is None:
            continue
        changes = []
        if before.type != after.type:
            changes.append("type")
        if (before.output_shapes != after.output_shapes
                or before.input_shapes != after.input_shapes):
            changes.append("shape")
        own_old, own_new = _exclusive(before, timed), _exclusive(after, timed)
        vals = {m: (own_old.get(m, 0.0), own_new.get(m, 0.0)) for m in own_old.keys() | own_new}
        # timings jitter from run to run: a time change alone does not make a layer "changed"
        if any(o != n for m, (o, n) in vals.items() if m != "time_s"):
            changes.append("cost")
        if not changes:
            unchanged += 1
            continue
        ordered = {m: vals[m] for m in metrics if m in vals}
        rows.append(LayerDelta(name, "changed", before.type, after.type, before.output_shapes,
                               after.output_shapes, ordered, impact(ordered), tuple(changes)))
    order = {name: i for i, name in enumerate([*new_by, *(n for n in old_by if n not in new_by)])}
    rows.sort(key=lambda r: (-r.impact, order.get(r.name, 0)))
    return ReportDiff(_label(old), _label(new), tuple(totals), tuple(rows), unchanged)
