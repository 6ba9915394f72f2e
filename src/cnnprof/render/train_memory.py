"""``--train-memory``: the section under the table, and the memory-over-time chart.

The chart is live tensor bytes over one training step (forward, loss, backward, optimizer
step, zero_grad), with the phases shaded and the peak marked; it is drawn alone, under the
per-layer chart of ``--plot``, and inline in the HTML report.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnprof.render import units
from cnnprof.report import MEMORY_PARTS, Report, TrainingMemory

if TYPE_CHECKING:
    from matplotlib.figure import Figure, SubFigure

PART_LABELS: dict[str, str] = {
    "parameters": "parameters", "buffers": "buffers", "gradients": "gradients",
    "optimizer_state": "optimizer state", "input": "input batch",
    "saved_activations": "saved activations", "temporaries": "temporaries",
}


def describe_setup(tm: TrainingMemory) -> str:
    amp = f", autocast {tm.amp}" if tm.amp else ""
    return f"batch {tm.batch}, {tm.optimizer}{amp}, loss = {tm.loss}"


def section_lines(tm: TrainingMemory) -> list[str]:
    """Plain lines: the peak, when it happens, its parts, the model state and ``--fit``."""
    lines = [f"Training step memory ({describe_setup(tm)}; steady state, tensors only)",
             f"  peak {units.nbytes(tm.peak_bytes)} ({tm.peak_bytes:,} B) at {tm.peak_at}"]
    width = max(len(label) for label in PART_LABELS.values())
    for part in MEMORY_PARTS:
        value = tm.peak_parts.get(part, 0)
        share = value / tm.peak_bytes if tm.peak_bytes else 0.0
        lines.append(f"    {PART_LABELS[part]:<{width}}  {units.nbytes(value):>9}  "
                     f"{units.percent(share):>6}")
    lines.append(f"  model state {units.nbytes(tm.model_state_bytes)} = parameters "
                 f"{units.nbytes(tm.param_bytes)} + gradients {units.nbytes(tm.gradient_bytes)}"
                 f" + optimizer state {units.nbytes(tm.optimizer_state_bytes)}")
    lines.append(f"  saved for backward by the forward: {units.nbytes(tm.saved_bytes)}")
    if tm.fit_bytes is not None:
        if tm.max_batch:
            peak = units.nbytes(tm.max_batch_peak_bytes or 0)
            lines.append(f"  fits {units.nbytes(tm.fit_bytes)}: largest batch {tm.max_batch} "
                         f"(peak {peak})")
        else:
            lines.append(f"  fits {units.nbytes(tm.fit_bytes)}: no batch fits (batch 1 "
                         "needs more)")
    lines.extend(f"  Note: {note}" for note in tm.notes)
    return lines


def draw(target: Figure | SubFigure, report: Report) -> None:
    """Live bytes over the step into ``target`` (a figure or a subfigure)."""
    tm = report.training_memory
    assert tm is not None
    ax = target.subplots(1, 1)
    values = [float(v) for v in tm.timeline_bytes]
    x = list(range(len(values)))
    ax.plot(x, values, color="#4c72b0", linewidth=1.2)
    ax.fill_between(x, values, color="#4c72b0", alpha=0.15)
    shades = {"forward": "#55a868", "backward": "#c44e52", "optimizer step": "#8172b3"}
    order = ["forward", "loss", "backward", "optimizer step", "zero_grad"]
    starts = sorted(((index, name) for name, index in tm.phases.items()),
                    key=lambda item: (item[0], order.index(item[1]) if item[1] in order else 9))
    for (start, name), (end, _next) in zip(starts, [*starts[1:], (len(values), "")],
                                           strict=True):
        if name in shades and end > start:
            ax.axvspan(start - 0.5, end - 0.5, color=shades[name], alpha=0.08, linewidth=0)
            ax.text((start + end) / 2, 1.0, name, transform=ax.get_xaxis_transform(),
                    ha="center", va="bottom", fontsize=7, color="#59636e")
    if values:
        top = max(range(len(values)), key=lambda i: values[i])
        ax.plot([top], [values[top]], marker="o", color="#cf222e", markersize=4)
        ax.annotate(f"peak {units.nbytes(tm.peak_bytes)}\n{tm.peak_at}", (top, values[top]),
                    xytext=(6, -18), textcoords="offset points", fontsize=7, color="#cf222e")
    base = float(tm.param_bytes + tm.buffer_bytes + tm.optimizer_state_bytes + tm.input_bytes)
    ax.axhline(base, color="#dd8452", linewidth=0.8, linestyle="--")
    ax.text(0, base, " parameters + buffers + optimizer state + input", fontsize=7,
            color="#dd8452", va="bottom")
    ax.set_ylim(bottom=0)
    ax.set_xlim(-0.5, max(len(values) - 0.5, 0.5))
    ax.set_xticks([])
    ax.set_xlabel("ops in execution order")
    from cnnprof.render.plot import _formatter

    ax.yaxis.set_major_formatter(_formatter(units.nbytes))
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_title(f"{report.model.spec}: live memory over one training step "
                 f"({describe_setup(tm)})", fontsize=10, pad=14)


def memory_figure(report: Report) -> Figure:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 3.2), layout="constrained")
    draw(fig, report)
    return fig


def memory_svg(report: Report) -> str:
    """The memory-over-time chart as an inline ``<svg>`` element."""
    from matplotlib import rc_context

    from cnnprof.render.plot import _RC

    with rc_context(_RC):
        fig = memory_figure(report)
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    return re.sub(r"\s*<metadata>.*?</metadata>", "", text[text.find("<svg"):],
                  flags=re.S).strip()


def html_section(report: Report) -> str:
    """The HTML report's training-memory section ("" without training memory)."""
    from html import escape

    tm = report.training_memory
    if tm is None:
        return ""
    items = [("Peak", units.nbytes(tm.peak_bytes)), ("At", tm.peak_at),
             ("Model state", units.nbytes(tm.model_state_bytes)),
             ("Saved for backward", units.nbytes(tm.saved_bytes))]
    if tm.fit_bytes is not None:
        items.append((f"Largest batch in {units.nbytes(tm.fit_bytes)}", str(tm.max_batch)))
    cards = "".join(f"<div><dt>{escape(k)}</dt><dd>{escape(v)}</dd></div>" for k, v in items)
    rows = "".join(
        f'<tr><td>{escape(PART_LABELS[p])}</td><td class="num">'
        f"{escape(units.nbytes(tm.peak_parts.get(p, 0)))}</td></tr>" for p in MEMORY_PARTS)
    return "\n".join([
        '<section id="training-memory"><h2>Training step memory</h2>',
        f'<p class="caption">{escape(describe_setup(tm))}; steady state (optimizer state '
        "exists, no gradients before the step); live tensor bytes, without allocator "
        "rounding or the CUDA context</p>",
        f'<dl class="totals">{cards}</dl>',
        f"<figure>{memory_svg(report)}</figure>",
        f"<table><thead><tr><th>Live at the peak</th><th class=\"num\">Bytes</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>",
        *(f'<p class="caption">Note: {escape(n)}</p>' for n in tm.notes),
        "</section>",
    ])


def combined_figure(report: Report, depth: int | None = None) -> Any:
    """``--plot`` with training memory: the per-layer chart above the memory chart."""
    from matplotlib.figure import Figure

    from cnnprof.render.plot import chart_rows, layer_figure

    rows = len(chart_rows(report, depth))
    top = 1.3 + 0.2 * rows
    layers = layer_figure(report, depth)
    width = float(layers.get_figwidth())
    fig = Figure(figsize=(width, top + 3.4), layout="constrained")
    halves: Any = fig.subfigures(2, 1, height_ratios=[top, 3.4])
    layer_figure(report, depth, into=halves[0])
    draw(halves[1], report)
    return fig


def write_plot(report: Report, path: Path, depth: int | None = None,
               image_format: str | None = None) -> None:
    """``--plot FILE``: the per-layer chart, with the memory-over-time chart under it when
    the report has training memory (cnnprof.render.plot.write_plot otherwise)."""
    from cnnprof.render.plot import save_figure
    from cnnprof.render.plot import write_plot as write_layers

    if report.training_memory is None:
        write_layers(report, path, depth, image_format)
        return
    save_figure(lambda: combined_figure(report, depth), path, image_format)
