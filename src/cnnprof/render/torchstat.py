"""torchstat's printed table (``torchstat.stat``'s report), from an annotated report.

The values are ``cnnprof.counting.torchstat``'s (``LayerRecord.torchstat``); this module only
lays them out the way torchstat printed them, quirks included.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cnnprof.counting.torchstat import METRICS, annotate, module_leaf
from cnnprof.report import Report

__all__ = ["format_table", "round_value", "table_rows"]


def round_value(value: float, binary: bool = False) -> str:
    """torchstat's total-line units: 1.42G, 711.49M (``binary``: 1024-based, for bytes)."""
    divisor = 1024.0 if binary else 1000.0
    for power, suffix in ((4, "T"), (3, "G"), (2, "M"), (1, "K")):
        if value // divisor**power > 0:
            return f"{round(value / divisor**power, 2)}{suffix}"
    return str(value)


_HEADERS = ("module name", "input shape", "output shape", "params", "memory(MB)", "MAdd",
            "Flops", "MemRead(B)", "MemWrite(B)", "duration[%]", "MemR+W(B)")


def _shape_text(dims: Sequence[int]) -> str:
    return " ".join(f"{d:>3d}" for d in dims)


def table_rows(report: Report, order: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The leaf rows of torchstat's table (name + its ``torchstat`` values), in ``order``
    (torchstat lists leaves in ``named_modules()`` order) or the report's execution order."""
    leaves = {layer.name: layer for layer in report.layers
              if module_leaf(layer) and layer.torchstat}
    names = [n for n in order if n in leaves] if order is not None else list(leaves)
    names += [n for n in leaves if n not in set(names)]
    rows: list[dict[str, Any]] = []
    for name in names:
        row = dict(leaves[name].torchstat or {})
        row["name"] = name
        rows.append(row)
    return rows


def format_table(report: Report, order: Sequence[str] | None = None) -> str:
    """torchstat's printed report: one row per leaf, its ``total`` row, the totals lines.

    Faithful to torchstat's quirks: counts print as floats (``23296.0``, pandas' dtype after
    the total row was appended); the total row's MemRead/MemWrite are the *last* row's values
    (a loop variable torchstat reused), while its MemR+W is the true sum.
    """
    if not any(layer.torchstat for layer in report.layers):
        report = annotate(report)  # torchstat's numbers, no duration
    rows = table_rows(report, order)
    body: list[list[str]] = []
    for index, row in enumerate(rows):
        share = row.get("duration_share")
        star = {m: "*" if m in row["from_cnnprof"] and row["reason"] != "never called" else ""
                for m in METRICS}
        body.append([
            str(index), row["name"], _shape_text(row["input_shape"]),
            _shape_text(row["output_shape"]), f"{float(row['params']):.1f}",
            f"{row['memory_mb']:.2f}", f"{float(row['madd']):,}" + star["madd"],
            f"{float(row['flops']):,}" + star["flops"],
            f"{float(row['mem_read_bytes']):.1f}" + star["mem_read_bytes"],
            f"{float(row['mem_write_bytes']):.1f}" + star["mem_write_bytes"],
            f"{share:.2%}" if share is not None else "—",
            f"{float(row['mem_rw_bytes']):.1f}",
        ])
    total_params = sum(int(r["params"]) for r in rows)
    total_memory = sum(float(r["memory_mb"]) for r in rows)
    total_madd = sum(int(r["madd"]) for r in rows)
    total_flops = sum(int(r["flops"]) for r in rows)
    total_rw = sum(int(r["mem_rw_bytes"]) for r in rows)
    shares = [r["duration_share"] for r in rows if r.get("duration_share") is not None]
    last = rows[-1] if rows else {"mem_read_bytes": 0, "mem_write_bytes": 0}
    body.append([
        "total", "", "", "", f"{float(total_params):.1f}", f"{total_memory:.2f}",
        f"{float(total_madd):,}", f"{float(total_flops):,}",
        f"{float(last['mem_read_bytes']):.1f}", f"{float(last['mem_write_bytes']):.1f}",
        f"{sum(shares):.2%}" if shares else "—", f"{float(total_rw):.1f}",
    ])
    header = ["", *_HEADERS]
    widths = [max(len(header[c]), *(len(r[c]) for r in body)) for c in range(len(header))]
    lines = ["  ".join(_cell(text, widths[c], c) for c, text in enumerate(header))]
    lines += ["  ".join(_cell(text, widths[c], c) for c, text in enumerate(r)) for r in body]
    width = len(lines[0])
    out = [
        *lines,
        "=" * width,
        f"Total params: {total_params:,}",
        "-" * width,
        f"Total memory: {total_memory:.2f}MB",
        f"Total MAdd: {round_value(total_madd)}MAdd",
        f"Total Flops: {round_value(total_flops)}Flops",
        f"Total MemR+W: {round_value(total_rw, True)}B",
    ]
    return "\n".join(out) + "\n"


def _cell(text: str, width: int, column: int) -> str:
    return text.ljust(width) if column == 0 else text.rjust(width)
