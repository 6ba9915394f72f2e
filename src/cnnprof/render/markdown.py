"""GitHub-flavoured Markdown: the per-layer table (same columns and --depth folding as the
Rich table) with a totals row, for pull requests, wikis and READMEs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cnnprof.render.columns import default_preset, resolve_columns
from cnnprof.render.table import caption, footnotes, is_folded, visible_layers

if TYPE_CHECKING:
    from cnnprof.render.options import RenderOptions
    from cnnprof.report import Report


def cell(text: str) -> str:
    """Escape what would break a table cell."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def render(report: Report, options: RenderOptions) -> str:
    # the table's default: a timed report gets its time columns (the "timed" preset)
    cols = resolve_columns(options.columns or default_preset(report))
    lines = [f"## {cell(report.model.spec)} ({cell(report.model.class_name)})", "",
             caption(report), ""]
    if report.error:  # a partial report: say so before the rows that did run
        lines += [f"**Forward failed:** {cell(str(report.error.get('message', '')))}", ""]
    lines.append("| Layer | " + " | ".join(c.header for c in cols) + " |")
    lines.append("|---|" + "".join("---:|" if c.justify == "right" else "---|" for c in cols))
    for index in visible_layers(report, options.depth):
        layer = report.layers[index]
        # full dotted names: Markdown collapses the indentation a tree would need
        name = f"`{cell(layer.name)}`" + (" …" if is_folded(layer, options.depth) else "")
        lines.append("| " + " | ".join([name, *(cell(c.cell(layer)) for c in cols)]) + " |")
    totals = [f"**{cell(c.total(report))}**" if c.total(report) else "" for c in cols]
    lines.append("| **Total** | " + " | ".join(totals) + " |")
    lines.append("")
    for note in footnotes(report):
        lines += [cell(note), ""]
    return "\n".join(lines)
