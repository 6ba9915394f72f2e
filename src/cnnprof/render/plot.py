"""Per-layer charts (matplotlib): MACs, parameters, memory and, when timed, time.

One figure with a panel per metric sharing the layer axis, so a row reads across. Charts
are drawn at the deepest level of the tree that keeps the figure legible (``max_rows``);
folded rows carry their subtree's inclusive cost, so every panel still adds up to the
model's total. matplotlib is imported here only, and only the object API is used (no
pyplot): no global figure state, no GUI backend.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnprof.render import units
from cnnprof.report import LayerRecord, Report

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: fixed settings so the same report always gives the same SVG bytes (ids are salted
#: hashes; text stays text, so the browser's fonts draw it and it can be searched)
_RC: dict[Any, Any] = {"svg.hashsalt": "cnnprof", "svg.fonttype": "none",
                       "font.family": "DejaVu Sans", "font.size": 9.0, "axes.titlesize": 10.0}
MAX_ROWS = 40


def chart_rows(report: Report, depth: int | None = None,
               max_rows: int = MAX_ROWS) -> list[LayerRecord]:
    """Rows that partition the model: leaves above ``depth`` plus the layers at ``depth``.
    Without ``depth``, the deepest level with at most ``max_rows`` rows."""
    if len(report.layers) <= 1:
        return list(report.layers)

    def at(level: int) -> list[LayerRecord]:
        return [r for r in report.layers
                if 1 <= r.depth <= level and (r.is_leaf or r.depth == level)]

    if depth is not None:
        return at(max(1, depth))
    deepest = max(r.depth for r in report.layers)
    for level in range(deepest, 0, -1):
        rows = at(level)
        if len(rows) <= max_rows:
            return rows
    return at(1)


def _timed(rows: list[LayerRecord]) -> bool:
    return any(r.time is not None for r in rows)


def _formatter(fmt: Callable[[float], str]) -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda value, _pos: fmt(value) if value else "0")


def layer_figure(report: Report, depth: int | None = None,
                 max_rows: int = MAX_ROWS, into: Any = None) -> Figure:
    """The per-layer chart; drawn into ``into`` (a subfigure) when given."""
    from matplotlib.figure import Figure

    rows = chart_rows(report, depth, max_rows)
    labels = [r.name or r.type for r in rows]
    y = list(range(len(rows)))
    panels: list[tuple[str, Callable[[float], str]]] = [
        ("MACs", units.count), ("Parameters", units.count), ("Memory", units.nbytes)]
    timed = _timed(rows)
    if timed:
        panels.append(("Time (median)", units.seconds))
    height = 1.3 + 0.2 * len(rows)
    fig = (into if into is not None
           else Figure(figsize=(3.0 * len(panels) + 2.5, height), layout="constrained"))
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    bars: dict[str, tuple[list[float], str]] = {
        "MACs": ([float(r.macs) for r in rows], "#4c72b0"),
        "Parameters": ([float(r.params) for r in rows], "#dd8452"),
        "Time (median)": ([r.time.median_s if r.time is not None else 0.0 for r in rows],
                          "#8172b3"),
    }
    for ax, (title, fmt) in zip(axes, panels, strict=True):
        if title == "Memory":
            params = [float(r.param_bytes) for r in rows]
            acts = [float(r.activation_bytes) for r in rows]
            ax.barh(y, params, color="#dd8452", label="parameters")
            ax.barh(y, acts, left=params, color="#55a868", label="activations")
            ax.legend(loc="lower right", fontsize=7, frameon=False)
        else:
            values, color = bars[title]
            ax.barh(y, values, color=color)
        ax.set_title(title)
        ax.xaxis.set_major_formatter(_formatter(fmt))
        ax.tick_params(axis="x", labelsize=7, labelrotation=30)
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    axes[0].set_yticks(y, labels, fontsize=7)
    axes[0].invert_yaxis()  # execution order, top to bottom
    fig.suptitle(f"{report.model.spec} ({report.model.class_name}) per layer", fontsize=11)
    return fig


def chart_svg(report: Report, depth: int | None = None) -> str:
    """The figure as an ``<svg>`` element to inline in HTML (no XML prolog)."""
    from matplotlib import rc_context

    with rc_context(_RC):
        fig = layer_figure(report, depth)
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    start = text.find("<svg")
    return re.sub(r"\s*<metadata>.*?</metadata>", "", text[start:], flags=re.S).strip()


PLOT_SUFFIXES = ("png", "svg", "pdf")


def check_plot_path(path: Path) -> str:
    """The image format named by ``path``'s suffix; a usage error for anything else."""
    from cnnprof.errors import UsageError

    suffix = path.suffix.lower().lstrip(".")
    if suffix not in PLOT_SUFFIXES:
        raise UsageError(f"--plot {path.name!r}: use a .png, .svg or .pdf file name")
    return suffix


def write_plot(report: Report, path: Path, depth: int | None = None,
               image_format: str | None = None) -> None:
    """``--plot FILE``: the chart alone; format from the suffix (.png, .svg, .pdf) unless
    ``image_format`` names it (the file written may be a temporary or a device)."""
    save_figure(lambda: layer_figure(report, depth), path, image_format)


def save_figure(make: Callable[[], Any], path: Path, image_format: str | None = None) -> None:
    """Draw the figure ``make()`` returns in the chart style and save it to ``path`` (format
    from its suffix unless ``image_format`` names it; no timestamps, so files reproduce)."""
    from matplotlib import rc_context

    suffix = image_format or check_plot_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with rc_context(_RC):
        fig = make()
        metadata = {"Date": None} if suffix in ("svg", "pdf") else None
        fig.savefig(path, format=suffix, dpi=150, metadata=metadata)
