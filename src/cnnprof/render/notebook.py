"""A report shown in Python: the one-line ``repr``, the Rich table for ``rich.print`` and
``report.show()``, and the HTML table a notebook displays (``Report._repr_html_``).

The Report's own display methods call `DISPLAY`, which the package root wires into
``cnnprof.report`` (the data model never imports a renderer), so every number is still
formatted in one place (``cnnprof.render.units``).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from cnnprof.render import dataframe, units
from cnnprof.report import Display

if TYPE_CHECKING:
    from rich.console import RenderableType

    from cnnprof.report import Report

#: the notebook table's look, scoped to its own class so it cannot restyle the notebook
_CSS = (
    ".cnnprof-report table{border-collapse:collapse;font-variant-numeric:tabular-nums;"
    "font-size:12px}"
    ".cnnprof-report th,.cnnprof-report td{padding:.15rem .5rem;white-space:nowrap;"
    "border-bottom:1px solid #e5e5e5;text-align:left}"
    ".cnnprof-report td.num,.cnnprof-report th.num{text-align:right}"
    ".cnnprof-report tr.parent td{color:#666}.cnnprof-report tr.uncalled td{opacity:.5}"
    ".cnnprof-report tfoot td{font-weight:600;border-top:2px solid #ccc}"
    ".cnnprof-report .caption,.cnnprof-report ul{color:#666;font-size:12px}"
)


def summary_line(report: Report) -> str:
    """``<cnnprof.Report resnet50 (ResNet) input 1x3x224x224 · params 25.6 M · ...>``:
    short enough for a notebook cell's ``repr`` (the table is ``_repr_html_``)."""
    t = report.totals
    inputs = ", ".join(units.shape(i.shape) + ("" if i.dtype == "float32" else f":{i.dtype}")
                       for i in report.inputs)
    name = report.model.spec
    if report.model.class_name and report.model.class_name != name:
        name += f" ({report.model.class_name})"
    parts = [f"input {inputs or '-'}", f"params {units.count(t.params)}",
             f"MACs {units.count(t.macs)}", f"FLOPs {units.count(t.flops)}",
             f"{len(report.layers)} layers", f"on {report.device}"]
    if report.timing is not None:
        parts.append(f"{units.seconds(report.timing.end_to_end_s)} on "
                     f"{report.timing.device}")
    if report.error is not None:
        parts.append("FAILED")
    return f"<cnnprof.Report {name} · " + " · ".join(parts) + ">"


def renderable(report: Report, *, depth: int | None = None,
               columns: str | None = None) -> RenderableType:
    """The terminal table with its footnotes (what ``cnnprof MODEL`` prints)."""
    from cnnprof.render.table import render

    return render(report, depth=depth, columns=columns)


def show(report: Report, *, depth: int | None = None, columns: str | None = None,
         width: int | None = None) -> None:
    """Print the table on stdout, ``width`` columns wide (default: the terminal's)."""
    from cnnprof.render.console import make_console

    make_console(width).print(renderable(report, depth=depth, columns=columns))


def html_table(report: Report, *, depth: int | None = None, columns: str | None = None) -> str:
    """A self-contained HTML fragment: title, caption, the per-layer table and the notes.
    No scripts and nothing fetched (a saved notebook shows it offline)."""
    from cnnprof.render.formats import RenderOptions
    from cnnprof.render.html import render_table
    from cnnprof.render.table import caption, footnotes

    title = f"{report.model.spec} ({report.model.class_name})"
    notes = "".join(f"<li>{html.escape(line)}</li>" for line in footnotes(report))
    return "\n".join([
        '<div class="cnnprof-report">',
        f"<style>{_CSS}</style>",
        f"<strong>{html.escape(title)}</strong>",
        f'<div class="caption">{html.escape(caption(report))}</div>',
        render_table(report, RenderOptions(depth=depth, columns=columns)),
        f"<ul>{notes}</ul>" if notes else "",
        "</div>",
    ])


#: what ``Report``'s display methods call (wired in by cnnprof/__init__.py)
DISPLAY = Display(summary=summary_line, renderable=renderable, html=html_table, show=show,
                  dataframe=dataframe.to_dataframe)
