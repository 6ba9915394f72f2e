"""One self-contained HTML file: summary, per-layer charts (matplotlib SVG, inline) and the
per-layer table. No scripts, no fonts, no links to fetch: it opens offline, attached to an
issue or mailed, exactly as written."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from cnnprof.render import units
from cnnprof.render.columns import COLUMNS, Column, resolve_columns
from cnnprof.render.table import caption, footnotes, visible_layers

if TYPE_CHECKING:
    from cnnprof.render.options import RenderOptions
    from cnnprof.report import Report

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
margin:2rem auto;max-width:1400px;padding:0 1rem;color:#1f2328;background:#fff}
h1{font-size:1.6rem;margin:0 0 .2rem}h1 small{color:#59636e;font-weight:normal}
h2{font-size:1.15rem;margin:2rem 0 .6rem;border-bottom:1px solid #d1d9e0;padding-bottom:.3rem}
.caption{color:#59636e;margin:0 0 1rem}
dl.totals{display:flex;flex-wrap:wrap;gap:.6rem;margin:0}
dl.totals div{border:1px solid #d1d9e0;border-radius:6px;padding:.4rem .8rem;min-width:8rem}
dl.totals dt{color:#59636e;font-size:.8rem}dl.totals dd{margin:0;font-size:1.2rem;
font-variant-numeric:tabular-nums}
figure{margin:0;overflow-x:auto}figure svg{max-width:100%;height:auto}
figcaption{color:#59636e;font-size:.85rem}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;font-size:13px}
th,td{padding:.2rem .6rem;border-bottom:1px solid #eaeef2;white-space:nowrap}
th{text-align:left;background:#f6f8fa;position:sticky;top:0}
td.num,th.num{text-align:right}tr.parent td{color:#59636e}tr.uncalled td{opacity:.5}
tfoot td{font-weight:600;border-top:2px solid #d1d9e0}
ul.notes{color:#59636e}p.error{color:#cf222e}footer{margin-top:2rem;color:#8c959f;font-size:.8rem}
"""


#: the report's default columns: every forward count (named, not the "all" preset, so
#: columns added to that preset for other features do not widen this page unasked)
HTML_COLUMNS = ("type", "calls", "input_shape", "output_shape", "params", "macs", "flops",
                "param_bytes", "activation_bytes", "read_bytes", "write_bytes")


def _summary(report: Report) -> list[tuple[str, str]]:
    t = report.totals
    items = [("Parameters", units.count(t.params)), ("MACs", units.count(t.macs)),
             ("FLOPs", units.count(t.flops)), ("Parameter memory", units.nbytes(t.param_bytes)),
             ("Activations", units.nbytes(t.activation_bytes))]
    if report.timing is not None:
        items.append(("Latency (median)", units.seconds(report.timing.end_to_end_median_s)))
    return items


def _time_column(report: Report, cols: list[Column]) -> Column | None:
    timed = any(layer.time is not None for layer in report.layers)
    if not timed or any(c.key.startswith("time") for c in cols):
        return None

    def total(rep: Report) -> str:  # the eager end-to-end median, as in the summary above
        return units.seconds(rep.timing.end_to_end_median_s) if rep.timing else ""

    return Column("time", "Time (median)", COLUMNS["time"].cell, total)


def render_table(report: Report, options: RenderOptions) -> str:
    cols = resolve_columns(options.columns or ",".join(HTML_COLUMNS))
    extra = _time_column(report, cols)
    if extra is not None:
        cols.append(extra)
    head = "".join(f'<th class="{"num" if c.justify == "right" else ""}">{escape(c.header)}</th>'
                   for c in cols)
    out = ['<table id="layers">', f"<thead><tr><th>Layer</th>{head}</tr></thead>", "<tbody>"]
    for index in visible_layers(report, options.depth):
        layer = report.layers[index]
        classes = [] if layer.is_leaf else ["parent"]
        if layer.calls == 0:
            classes.append("uncalled")
        indent = max(0, layer.depth - 1)
        label = layer.name.rsplit(".", 1)[-1] if layer.depth > 1 else (layer.name or layer.type)
        cells = "".join(f'<td class="{"num" if c.justify == "right" else ""}">'
                        f"{escape(c.cell(layer))}</td>" for c in cols)
        out.append(f'<tr class="{" ".join(classes)}" title="{escape(layer.name)}">'
                   f'<td style="padding-left:{0.6 + 1.1 * indent:.1f}rem">{escape(label)}</td>'
                   f"{cells}</tr>")
    foot = "".join(f'<td class="{"num" if c.justify == "right" else ""}">'
                   f"{escape(c.total(report))}</td>" for c in cols)
    out += ["</tbody>", f"<tfoot><tr><td>Total</td>{foot}</tr></tfoot>", "</table>"]
    return "\n".join(out)


def render(report: Report, options: RenderOptions) -> str:
    from cnnprof.render.plot import chart_rows, chart_svg
    from cnnprof.render.train_memory import html_section as training_memory_section

    title = f"{report.model.spec} ({report.model.class_name})"
    totals = "".join(f"<div><dt>{escape(k)}</dt><dd>{escape(v)}</dd></div>"
                     for k, v in _summary(report))
    rows = chart_rows(report, options.depth)
    level = max((r.depth for r in rows), default=0)
    notes = "".join(f"<li>{escape(line)}</li>" for line in footnotes(report))
    provenance = " · ".join(
        escape(str(v)) for v in (
            f"cnnprof {report.meta['cnnprof']}" if report.meta.get("cnnprof") else None,
            report.meta.get("command"),
        ) if v)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>cnnprof · {escape(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<header><h1>{escape(report.model.spec)} "
        f"<small>{escape(report.model.class_name)}</small></h1>",
        f'<p class="caption">{escape(caption(report))}</p>',
        (f'<p class="error"><strong>Forward failed:</strong> '
         f"{escape(str(report.error.get('message', '')))}</p>") if report.error else "",
        f'<dl class="totals">{totals}</dl></header>',
        '<section id="charts"><h2>Per layer</h2><figure>',
        chart_svg(report, options.depth),
        f"<figcaption>{len(rows)} rows, folded to depth {level}; folded rows include their "
        "children. Memory = parameter bytes + activation (output) bytes.</figcaption>",
        "</figure></section>",
        training_memory_section(report),
        '<section id="table"><h2>Layers</h2>',
        render_table(report, options),
        "</section>",
        f'<ul class="notes">{notes}</ul>' if notes else "",
        f"<footer>{provenance}</footer>" if provenance else "",
        "</body>",
        "</html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"
