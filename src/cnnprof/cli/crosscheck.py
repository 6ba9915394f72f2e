"""``cnnprof crosscheck MODEL``: thop, fvcore and torchstat next to cnnprof, and why they differ."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer


def register(app: typer.Typer) -> None:
    @app.command("crosscheck")
    def crosscheck(
        model: str = typer.Argument(..., metavar="MODEL", help="A zoo name or file.py:Class."),
        input_: list[str] = typer.Option(
            None, "--input", "-i", metavar="SPEC",
            help="Per-sample input shape (default: the zoo entry's). Repeatable."),
        batch: str = typer.Option("1", "--batch", "-b", help="Batch size."),
        arg: list[str] = typer.Option(None, "--arg", "-a", metavar="KEY=VALUE",
                                      help="Constructor argument, repeatable."),
        tools: str = typer.Option("thop,fvcore,torchstat", "--tools",
                                  help="Comma-separated peers to run."),
        fmt: str = typer.Option("table", "--format", "-f", help="table or json."),
        show_all: bool = typer.Option(False, "--all", help="List agreeing layers too."),
        width: int = typer.Option(None, "--width", help="Table width."),
    ) -> None:
        """Count MODEL with thop, fvcore and torchstat's per-module functions (CPU, real
        tensors, each on a copy of the model) and with cnnprof; show the totals side by side
        and, per layer, where they disagree and why (convention, op unseen by module hooks,
        unsupported op)."""
        from cnnprof.errors import UsageError
        from cnnprof.inputs import parse_batch, parse_input_spec
        from cnnprof.zoo.user import parse_args

        specs = [parse_input_spec(s) for s in (input_ or [])]
        batch_size = parse_batch(batch)
        kwargs = parse_args(arg or [])
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


def print_comparison(result: Any, console: Any, *, show_all: bool = False) -> None:
    from rich import box
    from rich.table import Table

    from cnnprof import units

    tools = ["thop", "fvcore", "torchstat"]
    header = [f"{t} {result.tools[t]['version'] or ''}".strip() if t in result.tools else t
              for t in tools]
    shapes = ", ".join(units.shape(s) for s in result.inputs)
    totals = Table(title=f"crosscheck {result.model} (input {shapes})", box=box.SIMPLE_HEAD)
    totals.add_column("Total", no_wrap=True)
    totals.add_column("cnnprof", justify="right")
    for name in header:
        totals.add_column(name, justify="right")
    for row in result.totals:
        cells = []
        for tool in tools:
            value = row[tool]
            if value is None or row["cnnprof"] in (None, 0):
                cells.append(_num(value))
                continue
            delta = value / row["cnnprof"] - 1
            change = "" if abs(delta) < 5e-7 else f" ({units.signed_percent(delta)})"
            cells.append(_num(value) + change)
        totals.add_row(row["metric"], _num(row["cnnprof"]), *cells)
    console.print(totals)
    for tool, info in result.tools.items():
        if info["error"]:
            console.print(f"{tool}: not run: {info['error']}")

    # one short label per tool in the row; the explanations, grouped, in a table below
    why: dict[str, list[str]] = {}
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for finding in result.findings:
        label = f"{finding.tool}: {finding.kind}"
        if label not in why.setdefault(finding.layer, []):
            why[finding.layer].append(label)
        grouped.setdefault((finding.tool, finding.kind, finding.why), []).append(finding.layer)
    layers = Table(title="Per layer (MACs; torchstat: its Flops)", box=box.SIMPLE_HEAD)
    for name, justify in (("Layer", "left"), ("Type", "left"), ("cnnprof MACs", "right"),
                          ("thop", "right"), ("fvcore", "right"), ("torchstat Flops", "right"),
                          ("Why they differ", "left")):
        layers.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    shown = 0
    for row in result.layers:
        if row["agree"] and not show_all:
            continue
        shown += 1
        layers.add_row(row["layer"], row["type"], _num(row["cnnprof_macs"]), _num(row["thop"]),
                       _num(row["fvcore"]), _num(row["torchstat_flops"]),
                       ", ".join(why.get(row["layer"], [])) or "agree")
    if shown:
        console.print(layers)
    agree = sum(1 for row in result.layers if row["agree"])
    console.print(f"{agree} of {len(result.layers)} leaf layers agree in every tool"
                  + ("" if show_all else " (--all lists them)"))
    if grouped:
        reasons = Table(title="Why", box=box.SIMPLE_HEAD)
        for name in ("Tool", "Kind", "Layers", "Explanation"):
            reasons.add_column(name, overflow="fold")
        for (tool, kind, text), names in grouped.items():
            sample = ", ".join(names[:3]) + (f" (+{len(names) - 3})" if len(names) > 3 else "")
            reasons.add_row(tool, kind, sample, text)
        console.print(reasons)
    if result.functional_ops:
        ops = Table(title="Ops outside leaf modules (a parent's own forward)",
                    box=box.SIMPLE_HEAD)
        for name in ("Layer", "Type", "Ops", "cnnprof FLOPs", "thop", "fvcore", "torchstat"):
            ops.add_column(name, overflow="fold")
        for row in result.functional_ops:
            op_text = ", ".join(f"{k} ×{v}" for k, v in row["ops"].items()) or "—"
            ops.add_row(row["layer"], row["type"], op_text, _num(row["cnnprof_self_flops"]),
                        row["thop"] or "—", row["fvcore"] or "—", row["torchstat"] or "—")
        console.print(ops)
    console.print("Units: thop and fvcore count multiply-accumulates (MACs); torchstat's Flops "
                  "add bias and element-wise work, its MAdd is about 2×MACs; cnnprof reports "
                  "MACs and FLOPs (2 per MAC + all other arithmetic) apart. "
                  "See docs/crosscheck.md.")
