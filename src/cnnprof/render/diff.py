"""A report diff as a Rich table, Markdown or JSON."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from cnnprof.diff import LayerDelta, ReportDiff, TotalDelta
from cnnprof.render import units
from cnnprof.render.console import plain_text

DIFF_FORMATS = ("table", "json", "markdown")

_LABELS = {"params": "Params", "macs": "MACs", "flops": "FLOPs", "param_bytes": "Param bytes",
           "activation_bytes": "Activations", "read_bytes": "Read", "write_bytes": "Write",
           "time_s": "Time"}
#: per-layer delta columns (the totals table shows every metric)
LAYER_METRICS = ("params", "macs", "flops", "activation_bytes", "time_s")


def _fmt(metric: str) -> Callable[[float], str]:
    if metric.endswith("_bytes"):
        return units.nbytes
    if metric == "time_s":
        return units.seconds
    return units.count


def signed(metric: str, value: float) -> str:
    if value == 0:
        return "0"
    text = _fmt(metric)(abs(value))
    return ("+" if value > 0 else "-") + text


def ratio_text(item: TotalDelta) -> str:
    ratio = item.ratio
    if ratio is None:
        return "—"
    if math.isinf(ratio):
        return "new"
    return units.signed_percent(ratio)


def _shapes(layer: LayerDelta) -> str:
    old = units.shapes(layer.old_shapes) if layer.old_shapes else ""
    new = units.shapes(layer.new_shapes) if layer.new_shapes else ""
    if layer.status == "added":
        return new
    if layer.status == "removed":
        return old
    return old if old == new else f"{old} → {new}"


def layer_name(layer: LayerDelta) -> str:
    return layer.name or "(model)"


def _type(layer: LayerDelta) -> str:
    if layer.status == "changed" and layer.old_type != layer.new_type:
        return f"{layer.old_type} → {layer.new_type}"
    return layer.new_type or layer.old_type or ""


def _layer_metrics(diff: ReportDiff) -> list[str]:
    present = {t.metric for t in diff.totals}
    return [m for m in LAYER_METRICS if m in present]


def totals_table(diff: ReportDiff) -> Table:
    table = Table(title=f"{diff.old_label} → {diff.new_label}", box=box.SIMPLE_HEAD,
                  header_style="bold")
    for header in ("Total", "Old", "New", "Δ", "Δ%"):
        table.add_column(header, justify="left" if header == "Total" else "right")
    for item in diff.totals:
        fmt = _fmt(item.metric)
        style = "red" if item.delta > 0 else "green" if item.delta < 0 else ""
        table.add_row(_LABELS[item.metric], fmt(item.old), fmt(item.new),
                      Text(signed(item.metric, item.delta), style=style), ratio_text(item))
    return table


#: per-layer columns a narrow terminal hides first; then the metrics, rightmost first
_DROP_FIRST = ("Output shape", "Type", "Change")


def layers_table(diff: ReportDiff, limit: int | None, width: int | None = None) -> Table:
    """The per-layer deltas, fitted to ``width``: no cell is wrapped or cut; columns that do
    not fit are left out (Output shape, Type, Change, then the rightmost metrics) and named
    in the caption."""
    from rich.cells import cell_len

    metrics = _layer_metrics(diff)
    shown = diff.layers if not limit else diff.layers[:limit]
    columns: dict[str, list[str]] = {
        "Layer": [layer_name(layer) for layer in shown],
        "Change": [layer.status if layer.status != "changed" else ", ".join(layer.changes)
                   for layer in shown],
        "Type": [_type(layer) for layer in shown],
        "Output shape": [_shapes(layer) for layer in shown],
        **{"Δ " + _LABELS[m]: [signed(m, layer.delta(m)) for layer in shown] for m in metrics},
    }
    widths = {h: max([cell_len(h), *map(cell_len, cells)]) for h, cells in columns.items()}
    keys = list(columns)
    hidden: list[str] = []
    order = [*_DROP_FIRST, *reversed(keys[4:])]

    def needed() -> int:
        return sum(widths[k] for k in keys) + 3 * len(keys) + 1

    for key in order:
        if width is None or needed() <= width or len(keys) <= 2:
            break
        keys.remove(key)
        hidden.append(key)
    table = Table(title="Layers by impact", box=box.SIMPLE_HEAD, header_style="bold",
                  caption=("not shown at this width: " + ", ".join(hidden)) if hidden else None)
    for key in keys:
        right = key.startswith("Δ ")
        table.add_column(key, justify="right" if right else "left", no_wrap=True,
                         overflow="ellipsis" if key == "Layer" else "fold")
    for index in range(len(shown)):
        table.add_row(*(columns[key][index] for key in keys))
    return table


def summary(diff: ReportDiff, limit: int | None = None) -> str:
    text = (f"{diff.count('added')} added, {diff.count('removed')} removed, "
            f"{diff.count('changed')} changed, {diff.unchanged} unchanged layer(s)")
    if limit and len(diff.layers) > limit:
        text += f" (showing the {limit} with most impact; --limit 0 for all)"
    return text


def renderable(diff: ReportDiff, limit: int | None = 30,
               width: int | None = None) -> RenderableType:
    parts: list[RenderableType] = [totals_table(diff)]
    if diff.layers:
        parts.append(layers_table(diff, limit, width))
    parts.append(Text(summary(diff, limit)))
    return Group(*parts)


def to_text(diff: ReportDiff, limit: int | None = 30, width: int = 160) -> str:
    return plain_text(renderable(diff, limit, width), width=width)


def to_json(diff: ReportDiff) -> str:
    return json.dumps(diff.to_dict(), indent=2) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(diff: ReportDiff, limit: int | None = 30) -> str:
    lines = [f"## {_md(diff.old_label)} → {_md(diff.new_label)}", "",
             "| Total | Old | New | Δ | Δ% |", "|---|---:|---:|---:|---:|"]
    for item in diff.totals:
        fmt = _fmt(item.metric)
        lines.append(f"| {_LABELS[item.metric]} | {fmt(item.old)} | {fmt(item.new)} | "
                     f"{signed(item.metric, item.delta)} | {ratio_text(item)} |")
    if diff.layers:
        metrics = _layer_metrics(diff)
        lines += ["", "| Layer | Change | Type | Output shape | "
                  + " | ".join("Δ " + _LABELS[m] for m in metrics) + " |",
                  "|---|---|---|---|" + "---:|" * len(metrics)]
        for layer in diff.layers if not limit else diff.layers[:limit]:
            change = layer.status if layer.status != "changed" else ", ".join(layer.changes)
            cells = [f"`{_md(layer_name(layer))}`", change, _md(_type(layer)), _md(_shapes(layer)),
                     *(signed(m, layer.delta(m)) for m in metrics)]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", summary(diff, limit), ""]
    return "\n".join(lines)


def render_diff(diff: ReportDiff, fmt: str, limit: int | None = 30,
                width: int | None = None) -> str:
    if fmt == "json":
        return to_json(diff)
    if fmt == "markdown":
        return to_markdown(diff, limit)
    return to_text(diff, limit, width or 160)
