"""The Rich per-layer table: tree-indented names, folded at --depth, totals footer, fitted to
the terminal's width.

A table wider than the terminal is made narrower in steps, each only when the previous one
was not enough: a tighter frame, the tree indented one character per level, shorter shape
cells (``1x256x56x56 ×2``), then whole columns hidden in ``DROP_ORDER`` (the caption names
them). Cells are never wrapped or cut: a number or a type name is shown whole or not at all;
only a layer name may end in ``…`` when nothing else is left to take away.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich import box
from rich.cells import cell_len
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from cnnprof.render import units
from cnnprof.render.columns import (
    SHARED_MARK,
    Column,
    default_preset,
    resolve_columns,
    timing_lines,
)
from cnnprof.render.text import wrap_words
from cnnprof.report import LayerRecord, Report

#: columns a narrow table hides first (what another column or a footnote already says, or
#: detail); columns not listed go after these, rightmost first
DROP_ORDER: tuple[str, ...] = (
    "input_shape", "ts_input_shape", "time_spread", "min_time", "kernels", "kernel_time",
    "read_bytes", "write_bytes", "param_bytes", "ts_mem_rw", "ts_duration", "ts_mem_write",
    "ts_mem_read", "ts_memory_mb", "bwd_flops", "flops", "ts_flops", "activation_bytes",
    "mem_delta", "backward_time", "tflops", "gbps", "intensity", "efficiency", "self_time",
    "share", "bwd_macs", "output_shape", "ts_output_shape", "calls",
)
#: a table is never narrowed below its Layer column and this many others
MIN_COLUMNS = 1
#: the Layer column's narrowest width when a name must be cut (``…``) to fit
MIN_NAME_WIDTH = 8


def visible_layers(report: Report, depth: int | None) -> list[int]:
    """Indices of rows to show: the root's descendants down to ``depth`` (folded rows keep
    their inclusive totals, so the visible leaves still add up)."""
    rows = []
    for index, layer in enumerate(report.layers):
        if layer.depth == 0 and len(report.layers) > 1:
            continue  # the root is the totals footer
        if depth is not None and layer.depth > depth:
            continue
        rows.append(index)
    return rows


def is_folded(layer: LayerRecord, depth: int | None) -> bool:
    """A visible row standing for children that ``depth`` hides (marked " …")."""
    return depth is not None and layer.depth == depth and not layer.is_leaf


def caption(report: Report) -> str:
    """The line under every rendering's title: inputs, counting device, mode."""
    inputs = ", ".join((f"{i.name}=" if i.name else "") + units.shape(i.shape)
                       + ("" if i.dtype == "float32" else f":{i.dtype}") for i in report.inputs)
    return f"input {inputs} · counted on {report.device} · {report.mode}"


@dataclass(frozen=True)
class Layout:
    """How a table is drawn at one width (the result of :func:`fit`)."""

    columns: tuple[Column, ...]
    hidden: tuple[Column, ...] = ()
    #: characters of indent per tree level
    indent: int = 2
    #: shape cells in their short form (``Column.compact``)
    compact_cells: bool = False
    #: no blank edge left and right of the table
    tight_frame: bool = False
    #: the Layer column's width when names must be cut to fit (None: as wide as they are)
    name_width: int | None = None


def _label(layer: LayerRecord, depth: int | None, indent: int) -> str:
    label = layer.name.rsplit(".", 1)[-1] if layer.depth > 1 else layer.name
    return " " * indent * max(0, layer.depth - 1) + label + (
        " …" if is_folded(layer, depth) else "")


def _cell(column: Column, layer: LayerRecord, compact: bool) -> str:
    return (column.compact if compact and column.compact else column.cell)(layer)


def _natural_width(report: Report, rows: list[int], depth: int | None, layout: Layout,
                   labels: list[str] | None = None) -> int:
    """The printed width of the table with every cell whole (Rich's SIMPLE_HEAD box: one
    space of padding each side of a cell, one separator between columns, an edge each side
    unless the frame is tight)."""
    names = labels if labels is not None else [
        _label(report.layers[i], depth, layout.indent) for i in rows]
    widths = [max([cell_len("Layer"), cell_len("Total"), *map(cell_len, names)])]
    for column in layout.columns:
        cells = [_cell(column, report.layers[i], layout.compact_cells) for i in rows]
        widths.append(max([cell_len(column.header), cell_len(column.total(report)),
                           *map(cell_len, cells)]))
    n = len(widths)
    frame = 3 * n + 1 if not layout.tight_frame else 3 * n - 3
    return sum(widths) + frame


def _drop_sequence(columns: tuple[Column, ...]) -> list[str]:
    keys = [c.key for c in columns]
    listed = [k for k in DROP_ORDER if k in keys]
    return listed + [k for k in reversed(keys) if k not in listed]


def fit(report: Report, columns: list[Column], *, depth: int | None,
        width: int | None) -> Layout:
    """The widest layout of ``columns`` that fits ``width`` (None: no limit)."""
    layout = Layout(columns=tuple(columns))
    if width is None:
        return layout
    rows = visible_layers(report, depth)

    def fits(candidate: Layout) -> bool:
        return _natural_width(report, rows, depth, candidate) <= width

    if fits(layout):
        return layout
    for change in ({"tight_frame": True}, {"indent": 1}, {"compact_cells": True}):
        layout = _replace(layout, **change)
        if fits(layout):
            return layout
    for key in _drop_sequence(layout.columns):
        if len(layout.columns) <= MIN_COLUMNS:
            break
        kept = tuple(c for c in layout.columns if c.key != key)
        gone = tuple(c for c in layout.columns if c.key == key)
        layout = _replace(layout, columns=kept, hidden=layout.hidden + gone)
        if fits(layout):
            return layout
    # still too wide: only layer names may give way (cut with "…")
    excess = _natural_width(report, rows, depth, layout) - width
    names = [_label(report.layers[i], depth, layout.indent) for i in rows]
    longest = max([cell_len("Layer"), cell_len("Total"), *map(cell_len, names)])
    return _replace(layout, name_width=max(MIN_NAME_WIDTH, longest - excess))


def _replace(layout: Layout, **changes: object) -> Layout:
    from dataclasses import replace

    return replace(layout, **changes)  # type: ignore[arg-type]


def _caption(report: Report, layout: Layout) -> str:
    parts = [caption(report)]
    if layout.hidden:
        parts.append("not shown at this width: " + ", ".join(c.header for c in layout.hidden))
    shows_variants = any(c.key in ("input_shape", "output_shape") for c in layout.columns)
    if layout.compact_cells and shows_variants and any(
            r.distinct_input_shapes or r.distinct_output_shapes for r in report.layers):
        parts.append("'; +N': N more calls' shapes (in --format json)")
    return " · ".join(parts)


def build_table(report: Report, *, depth: int | None = None, columns: str | None = None,
                width: int | None = None) -> Table:
    """The per-layer table; fitted to ``width`` (see :func:`fit`) when it is given."""
    cols: list[Column] = resolve_columns(columns or default_preset(report))
    layout = fit(report, cols, depth=depth, width=width)
    title = f"{report.model.spec} ({report.model.class_name})"
    table_width = _natural_width(report, visible_layers(report, depth), depth, layout)
    if layout.name_width is not None and width is not None:
        table_width = width
    table = Table(
        title=title,
        caption=wrap_line(_caption(report, layout), table_width),
        box=box.SIMPLE_HEAD,
        show_footer=True,
        header_style="bold",
        footer_style="bold",
        show_edge=not layout.tight_frame,
        pad_edge=not layout.tight_frame,
    )
    table.add_column("Layer", footer="Total", no_wrap=True, overflow="ellipsis",
                     max_width=layout.name_width)
    for col in layout.columns:
        # no_wrap: a cell is shown whole (fit() made room) — never "1x3x224x" / "224"
        table.add_column(col.header, footer=col.total(report), justify=col.justify,  # type: ignore[arg-type]
                         no_wrap=True)
    for index in visible_layers(report, depth):
        layer = report.layers[index]
        name = Text(_label(layer, depth, layout.indent),
                    style="dim" if layer.calls == 0 else "")
        table.add_row(name, *(_cell(col, layer, layout.compact_cells) for col in layout.columns))
    return table


def footnotes(report: Report) -> list[str]:
    out = []
    if report.unsupported_ops:
        ops = ", ".join(f"{name} ×{n}" for name, n in sorted(report.unsupported_ops.items()))
        out.append(f"Unsupported ops (no formula; MACs/FLOPs not counted): {ops}")
    t = report.totals
    out.append(
        f"Params {units.count(t.params)} ({t.params:,}; trainable {t.trainable_params:,}, "
        f"frozen {t.frozen_params:,}) · {units.nbytes(t.param_bytes)} · "
        f"MACs {units.count(t.macs)} · FLOPs {units.count(t.flops)}"
    )
    out.extend(shared_lines(report))
    out.extend(generation_lines(report))
    out.extend(f"Note: {note}" for note in report.notes)
    out.extend(timing_lines(report))
    return out


def shared_lines(report: Report) -> list[str]:
    """Which rows hold the same parameter tensors (each pair once)."""
    pairs: list[str] = []
    seen: set[frozenset[str]] = set()
    for r in report.layers:
        if r.shared_params_with is not None:
            key = frozenset((r.name, r.shared_params_with))
            if key not in seen:
                seen.add(key)
                pairs.append(f"{r.name} {SHARED_MARK} {r.shared_params_with}")
    if not pairs:
        return []
    return [f"{SHARED_MARK} shared parameters (one tensor, counted once in the totals): "
            + ", ".join(pairs)]


def generation_lines(report: Report) -> list[str]:
    """--decode: what one generated token reads besides the rows' costs."""
    g = report.generation
    if g is None:
        return []
    return [
        f"Decode step: 1 new token per sequence × batch {g.batch}, KV cache of {g.context:,} "
        f"tokens ({g.layers} layers × {g.kv_heads} KV heads × {g.head_dim} head dim, "
        f"{g.dtype}) = {units.nbytes(g.kv_cache_bytes)}; one step reads "
        f"{units.nbytes(g.weight_bytes)} of weights + {units.nbytes(g.kv_cache_bytes)} of "
        f"cache = {units.nbytes(g.step_read_bytes)}"
    ]


def wrap_line(line: str, width: int | None) -> str:
    """``line`` wrapped to ``width`` between words, preferring the `` · `` between facts,
    never between a number and its unit nor inside a word (a long word gets a line)."""
    if width is None or cell_len(line) <= width:
        return line
    out: list[str] = []
    current = ""
    for part in line.split(" · "):
        candidate = part if not current else f"{current} · {part}"
        if cell_len(candidate) <= width:
            current = candidate
            continue
        if current:
            out.append(current)
        current = part
        if cell_len(part) > width:  # one fact longer than the line: between its words
            pieces = wrap_words(part, width)
            out.extend(pieces[:-1])
            current = pieces[-1]
    out.append(current)
    return "\n".join(out)


def render(
    report: Report, *, depth: int | None = None, columns: str | None = None,
    width: int | None = None,
) -> RenderableType:
    parts: list[RenderableType] = [build_table(report, depth=depth, columns=columns,
                                               width=width)]
    parts.extend(Text(wrap_line(line, width)) for line in footnotes(report))
    if report.training_memory is not None:
        from cnnprof.render.train_memory import section_lines

        parts.extend(Text(wrap_line(line, width))
                     for line in ["", *section_lines(report.training_memory)])
    return Group(*parts)


def print_table(report: Report, console: Console, *, depth: int | None = None,
                columns: str | None = None) -> None:
    console.print(render(report, depth=depth, columns=columns, width=console.width))
