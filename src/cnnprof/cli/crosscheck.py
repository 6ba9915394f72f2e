"""``cnnprof crosscheck MODEL``: thop, fvcore and torchstat next to cnnprof, and why they differ."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from cnnprof.cli.completion import complete_model
from cnnprof.cli.params import argument, command


@command("crosscheck")
@argument("model", metavar="MODEL", shell_complete=complete_model,
          help="A zoo name or file.py:Class.")
@click.option("--input", "-i", "input_", multiple=True, metavar="SPEC",
              help="Per-sample input shape (default: the zoo entry's). Repeatable.")
@click.option("--batch", "-b", default="1", help="Batch size.")
@click.option("--arg", "-a", multiple=True, metavar="KEY=VALUE",
              help="Constructor argument, repeatable.")
@click.option("--tools", default="thop,fvcore,torchstat", help="Comma-separated peers to run.")
@click.option("--format", "-f", "fmt", default="table", help="table or json.")
@click.option("--all", "show_all", is_flag=True, help="List agreeing layers too.")
@click.option("--width", type=int, help="Table width.")
def crosscheck_cmd(model: str, input_: tuple[str, ...], batch: str, arg: tuple[str, ...],
                   tools: str, fmt: str, show_all: bool, width: int | None) -> None:
    """Count MODEL with thop, fvcore and torchstat's per-module functions (CPU, real
    tensors, each on a copy of the model) and with cnnprof; show the totals side by side
    and, per layer, where they disagree and why (convention, op unseen by module hooks,
    unsupported op)."""
    from cnnprof.errors import UsageError
    from cnnprof.inputs import parse_batch, parse_input_spec
    from cnnprof.zoo.user import parse_args

    specs = [parse_input_spec(s) for s in input_]
    batch_size = parse_batch(batch)
    kwargs = parse_args(list(arg))
    chosen = tuple(t.strip() for t in tools.split(",") if t.strip())
    unknown = [t for t in chosen if t not in ("thop", "fvcore", "torchstat")]
    if unknown:
        raise UsageError(f"unknown --tools {', '.join(unknown)}",
                         hint="choose from thop, fvcore, torchstat")
    if fmt not in ("table", "json"):
        raise UsageError(f"unknown --format {fmt!r}", hint="table or json")
    result = run(model, [str(s) for s in specs], batch_size, kwargs, chosen)
    if fmt == "json":
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
        return
    from cnnprof.render.console import make_console

    print_comparison(result, make_console(width), show_all=show_all)


def run(model: str, inputs: list[str], batch: int, kwargs: dict[str, Any],
        tools: tuple[str, ...]) -> Any:
    """Profile with cnnprof (meta), rebuild the model on the CPU, run the peers, compare."""
    import contextlib
    import io

    from cnnprof.api import profile
    from cnnprof.compat.peers import compare, run_peers
    from cnnprof.compat.torchstat import annotate_torchstat
    from cnnprof.inputs import InputSpec, bind, make_tensors
    from cnnprof.zoo import resolve

    with contextlib.redirect_stdout(io.StringIO()):
        report = profile(model, inputs or None, batch=batch, model_args=kwargs)
        report = annotate_torchstat(report, measure=False)
        entry = resolve(model, kwargs)
        built, _notes = entry.build("cpu")
        specs = [InputSpec(i.shape[1:], i.dtype, i.name) for i in report.inputs]
        positional, named = bind(specs, make_tensors(specs, batch, "cpu"))
        args, call_kwargs = entry.arguments(list(positional))
        call_kwargs = {**call_kwargs, **named}  # keyword inputs: refused below
    if call_kwargs:
        from cnnprof.errors import UsageError

        raise UsageError(f"{model}: crosscheck needs a model called with tensors only")
    runs = run_peers(built, args, tools)
    return compare(report, runs)


def _num(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}"


#: the narrowest the totals table's metric column may get before the totals are listed one
#: tool per row instead
MIN_LABEL_WIDTH = 24
#: the per-layer "Why they differ" column's narrowest useful width
MIN_WHY_WIDTH = 16


def _widest(*texts: str) -> int:
    from rich.cells import cell_len

    return max((cell_len(line) for text in texts for line in text.split("\n")), default=0)


def _frame(columns: int) -> int:
    """Characters a SIMPLE_HEAD table adds around ``columns`` cells (padding, edges, gaps)."""
    return 3 * columns + 1


def print_comparison(result: Any, console: Any, *, show_all: bool = False) -> None:
    """The comparison, fitted to ``console.width``: numbers are never wrapped or cut; the
    totals are listed one tool per row, and per-layer columns are hidden (and named), when
    the side-by-side tables do not fit."""
    from rich import box
    from rich.table import Table

    from cnnprof import units
    from cnnprof.render.table import wrap_line

    width = console.width
    tools = ["thop", "fvcore", "torchstat"]
    shapes = ", ".join(units.shape(s) for s in result.inputs)
    title = f"crosscheck {result.model} (input {shapes})"

    def change(value: Any, mine: Any) -> str:
        if value is None or mine in (None, 0):
            return ""
        delta = value / mine - 1
        return "=" if abs(delta) < 5e-7 else units.signed_percent(delta)

    numbers = [_num(row[key]) for row in result.totals for key in ("cnnprof", *tools)]
    deltas = [change(row[t], row["cnnprof"]) for row in result.totals for t in tools]
    number_width = max(_widest(*numbers, "torchstat"), _widest(*deltas))
    labels = [row["metric"] for row in result.totals]
    side_by_side = _frame(5) + 4 * number_width + min(_widest(*labels), MIN_LABEL_WIDTH)
    if side_by_side <= width:
        totals = Table(title=title, box=box.SIMPLE_HEAD)
        totals.add_column("Total", overflow="fold")
        for name in ("cnnprof", *tools):
            totals.add_column(name, justify="right", no_wrap=True)
        for row in result.totals:
            cells = [_num(row[t]) + ("" if not change(row[t], row["cnnprof"]) or
                                     change(row[t], row["cnnprof"]) == "="
                                     else "\n(" + change(row[t], row["cnnprof"]) + ")")
                     for t in tools]
            totals.add_row(row["metric"], _num(row["cnnprof"]), *cells)
    else:  # one row per metric and tool: fits 60 columns
        totals = Table(title=title, box=box.SIMPLE_HEAD)
        totals.add_column("Total", overflow="fold")
        totals.add_column("Tool", no_wrap=True)
        totals.add_column("Count", justify="right", no_wrap=True)
        totals.add_column("vs cnnprof", justify="right", no_wrap=True)
        for row in result.totals:
            first = True
            for tool in ("cnnprof", *tools):
                if row[tool] is None:
                    continue
                totals.add_row(row["metric"] if first else "", tool, _num(row[tool]),
                               "" if tool == "cnnprof" else change(row[tool], row["cnnprof"]))
                first = False
    console.print(totals)
    versions = [f"{t} {result.tools[t]['version']}" for t in tools
                if t in result.tools and result.tools[t]["version"]]
    if versions:
        console.print(wrap_line("Versions: " + " · ".join(versions), width))
    for tool, info in result.tools.items():
        if info["error"]:
            console.print(wrap_line(f"{tool}: not run: {info['error']}", width))

    # one short label per tool in the row; the explanations, grouped, in a table below
    why: dict[str, list[str]] = {}
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for finding in result.findings:
        label = f"{finding.tool}: {finding.kind}"
        if label not in why.setdefault(finding.layer, []):
            why[finding.layer].append(label)
        grouped.setdefault((finding.tool, finding.kind, finding.why), []).append(finding.layer)
    rows = [row for row in result.layers if show_all or not row["agree"]]
    headers = {"layer": "Layer", "type": "Type", "cnnprof_macs": "cnnprof MACs",
               "thop": "thop", "fvcore": "fvcore", "torchstat_flops": "torchstat Flops"}
    columns = {key: [row[key] if key in ("layer", "type") else _num(row[key]) for row in rows]
               for key in headers}
    fixed = {key: _widest(header, *columns[key]) for key, header in headers.items()}
    reasons = [", ".join(why.get(row["layer"], [])) or "agree" for row in rows]
    shown = list(headers)
    hidden: list[str] = []
    with_why = True

    def needed() -> int:
        n = len(shown) + (1 if with_why else 0)
        return (_frame(n) + sum(fixed[k] for k in shown)
                + (min(_widest(*reasons, "Why they differ"), MIN_WHY_WIDTH) if with_why else 0))

    for drop in ("why", "type"):
        if needed() <= width:
            break
        if drop == "why":
            with_why = False
            hidden.append("Why they differ (see the Why table)")
        else:
            shown.remove("type")
            hidden.append("Type")
    layers = Table(title="Per layer (MACs; torchstat: its Flops)", box=box.SIMPLE_HEAD,
                   caption=("not shown at this width: " + ", ".join(hidden)) if hidden else None)
    for key in shown:
        layers.add_column(headers[key], justify="left" if key in ("layer", "type") else "right",
                          no_wrap=True)
    if with_why:
        layers.add_column("Why they differ", overflow="fold")
    for index, _row in enumerate(rows):
        layers.add_row(*(columns[key][index] for key in shown),
                       *([reasons[index]] if with_why else []))
    if rows:
        console.print(layers)
    agree = sum(1 for row in result.layers if row["agree"])
    console.print(wrap_line(f"{agree} of {len(result.layers)} leaf layers agree in every tool"
                            + ("" if show_all else " (--all lists them)"), width))
    if grouped:
        table = Table(title="Why", box=box.SIMPLE_HEAD)
        table.add_column("Tool", no_wrap=True)
        table.add_column("Kind", no_wrap=True)
        table.add_column("Layers", overflow="fold")
        table.add_column("Explanation", overflow="fold")
        for (tool, kind, text), names in grouped.items():
            sample = ", ".join(names[:3]) + (f" (+{len(names) - 3})" if len(names) > 3 else "")
            table.add_row(tool, kind, sample, text)
        console.print(table)
    if result.functional_ops:
        ops = Table(title="Ops outside leaf modules (a parent's own forward)",
                    box=box.SIMPLE_HEAD)
        for name, numeric in (("Layer", False), ("Type", False), ("Ops", False),
                              ("cnnprof FLOPs", True), ("thop", False), ("fvcore", False),
                              ("torchstat", False)):
            ops.add_column(name, overflow="fold", no_wrap=numeric,
                           justify="right" if numeric else "left")
        for row in result.functional_ops:
            op_text = ", ".join(f"{k} ×{v}" for k, v in row["ops"].items()) or "—"
            ops.add_row(row["layer"], row["type"], op_text, _num(row["cnnprof_self_flops"]),
                        row["thop"] or "—", row["fvcore"] or "—", row["torchstat"] or "—")
        console.print(ops)
    console.print(wrap_line(
        "Units: thop and fvcore count multiply-accumulates (MACs) · torchstat's Flops add bias "
        "and element-wise work, its MAdd is about 2×MACs · cnnprof reports MACs and FLOPs "
        "(2 per MAC + all other arithmetic) apart · see docs/crosscheck.md", width))
