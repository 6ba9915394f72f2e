"""The Rich per-layer table: tree-indented names, folded at --depth, totals footer."""

from __future__ import annotations

from rich import box
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
from cnnprof.report import LayerRecord, Report


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


def build_table(report: Report, *, depth: int | None = None, columns: str | None = None) -> Table:
    cols: list[Column] = resolve_columns(columns or default_preset(report))
    title = f"{report.model.spec} ({report.model.class_name})"
    table = Table(
        title=title,
        caption=caption(report),
        box=box.SIMPLE_HEAD,
        show_footer=True,
        header_style="bold",
        footer_style="bold",
    )
    table.add_column("Layer", footer="Total", no_wrap=True, overflow="ellipsis")
    for col in cols:
        table.add_column(col.header, footer=col.total(report), justify=col.justify,  # type: ignore[arg-type]
                         overflow="fold")
    for index in visible_layers(report, depth):
        layer = report.layers[index]
        indent = "  " * max(0, layer.depth - 1)
        label = layer.name.rsplit(".", 1)[-1] if layer.depth > 1 else layer.name
        name = Text(indent + label + (" …" if is_folded(layer, depth) else ""),
                    style="dim" if layer.calls == 0 else "")
        table.add_row(name, *(col.cell(layer) for col in cols))
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


def render(
    report: Report, *, depth: int | None = None, columns: str | None = None
) -> RenderableType:
    parts: list[RenderableType] = [build_table(report, depth=depth, columns=columns)]
    parts.extend(Text(line) for line in footnotes(report))
    if report.training_memory is not None:
        from cnnprof.render.train_memory import section_lines

        parts.extend(Text(line) for line in ["", *section_lines(report.training_memory)])
    return Group(*parts)


def print_table(report: Report, console: Console, *, depth: int | None = None,
                columns: str | None = None) -> None:
    console.print(render(report, depth=depth, columns=columns))
