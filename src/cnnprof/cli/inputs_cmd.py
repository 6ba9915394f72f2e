"""``cnnprof inputs MODEL [--input 3xHxW]``: which spatial sizes the model accepts."""

from __future__ import annotations

import json
from typing import Any

import click

from cnnprof.cli.completion import complete_model
from cnnprof.cli.params import Integer, Number, argument, command


@command("inputs")
@argument("model", metavar="MODEL", shell_complete=complete_model,
          help="As for profile: alexnet, file.py:Class, package.module:factory, timm:NAME.")
@click.option("--input", "-i", "input_", multiple=True, metavar="SPEC",
              help="Per-sample input whose spatial sizes are varied (all dimensions after the "
                   "first; a 1-D spec varies its only dimension). Default: the zoo entry's.")
@click.option("--batch", "-b", default="1", help="Batch size.")
@click.option("--dtype", help="Floating dtype of model and inputs.")
@click.option("--arg", "-a", multiple=True, metavar="KEY=VALUE",
              help="Constructor argument, repeatable.")
@click.option("--mode", default="eval", help="eval (default) or train.")
@click.option("--min", "min_size", type=Integer(min=1), default=1, help="Smallest size tried.")
@click.option("--max", "max_size", type=Integer(min=1, max=16384), default=512,
              help="Largest size tried.")
@click.option("--exhaustive", is_flag=True, help="Run every size instead of sampling and "
              "bisecting the boundaries.")
@click.option("--budget", type=Number(min=0.1), default=60.0, help="Stop probing after this many "
              "seconds (the answer says what was not probed).")
@click.option("--format", "-f", "fmt", default="table", help="table or json.")
def inputs_cmd(model: str, input_: tuple[str, ...], batch: str, dtype: str | None,
               arg: tuple[str, ...], mode: str, min_size: int, max_size: int, exhaustive: bool,
               budget: float, fmt: str) -> int:
    """Which input sizes MODEL accepts (probed on the meta device: fast, no memory),
    the smallest, and the output shape at each."""
    from cnnprof.errors import UsageError
    from cnnprof.inputs import parse_batch, parse_dtype, parse_input_spec
    from cnnprof.zoo.user import parse_args

    if fmt not in ("table", "json"):
        raise UsageError(f"unknown --format {fmt!r}", hint="known: json, table")
    if min_size > max_size:
        raise UsageError(f"--min {min_size} is larger than --max {max_size}")
    specs = [parse_input_spec(s) for s in input_]
    batch_size = parse_batch(batch)
    if dtype:
        parse_dtype(dtype)
    kwargs = parse_args(list(arg))

    from cnnprof.inspect_inputs import scan_model

    scan, class_name = scan_model(model, specs or None, batch=batch_size, dtype=dtype,
                                  model_args=kwargs, mode=mode, lo=min_size, hi=max_size,
                                  exhaustive=exhaustive, budget_s=budget)
    data = scan_json(scan, model, class_name, batch_size)
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(scan_text(data))
    return 0 if data["accepted"] else 1  # no size runs: exit 1 (main exits with it)


def scan_json(scan: Any, spec: str, class_name: str, batch: int) -> dict[str, Any]:
    from cnnprof.inspect_inputs import varied_dims

    segments = []
    for seg in scan.segments():
        item: dict[str, Any] = {"lo": seg.lo, "hi": seg.hi,
                                "status": {True: "ok", False: "rejected", None: "unknown"}[seg.ok]}
        if seg.ok:
            item["output_shapes"] = {"lo": [list(s) for s in seg.first.output_shapes],
                                     "hi": [list(s) for s in seg.last.output_shapes]}
        elif seg.ok is False:
            item["error"] = seg.first.error
        segments.append(item)
    smallest = scan.smallest()
    return {
        "schema": "cnnprof.inputs/1",
        "model": {"spec": spec, "class": class_name},
        "input": str(scan.spec),
        "batch": batch,
        "varied_dims": list(varied_dims(scan.spec)),
        "range": [scan.lo, scan.hi],
        "accepted": [list(r) for r in scan.accepted()],
        "smallest": None if smallest is None else {
            "input": str(smallest.specs[0]),
            "output_shapes": [list(s) for s in smallest.output_shapes]},
        "segments": segments,
        "probed": scan.runs,
        "exhaustive": scan.exhaustive,
        "complete": scan.complete,
    }


def scan_text(data: dict[str, Any]) -> str:
    from cnnprof.units import bracketed

    lo, hi = data["range"]
    dims = data["varied_dims"]
    shape = data["input"].split(":")[0].split("x")
    pattern = "x".join("S" if i in dims else d for i, d in enumerate(shape))
    lines = [f"{data['model']['spec']} ({data['model']['class']}): input {pattern}, "
             f"S from {lo} to {hi}, batch {data['batch']}, on meta", ""]
    width = max(len(f"{s['lo']}–{s['hi']}") for s in data["segments"]) if data["segments"] else 5
    for seg in data["segments"]:
        sizes = f"{seg['lo']}–{seg['hi']}" if seg["lo"] != seg["hi"] else str(seg["lo"])
        if seg["status"] == "ok":
            first = ", ".join(bracketed(s) for s in seg["output_shapes"]["lo"])
            last = ", ".join(bracketed(s) for s in seg["output_shapes"]["hi"])
            what = f"runs   → {first}" + (f" … {last}" if last != first else "")
        elif seg["status"] == "rejected":
            error = seg["error"] if len(seg["error"]) <= 90 else seg["error"][:90] + " …"
            what = f"fails  {error}"
        else:
            what = "not probed (budget spent)"
        lines.append(f"  {sizes:>{width}}  {what}")
    lines.append("")
    if data["smallest"] is None:
        lines.append("No size in the range runs.")
    else:
        small = data["smallest"]
        outs = ", ".join(bracketed(s) for s in small["output_shapes"])
        lines.append(f"Smallest that runs: --input {small['input']} (output {outs})")
    total = hi - lo + 1
    if data["exhaustive"]:
        lines.append(f"All {total} sizes were run.")
    else:
        lines.append(f"{data['probed']} of {total} sizes were run; each boundary was bisected to "
                     "the exact size, sizes between two runs that agree are assumed to agree "
                     "(--exhaustive runs all).")
    if not data["complete"]:
        lines.append("The --budget ran out before every probe ran.")
    return _fit(lines, width + 11)


def _fit(lines: list[str], lead: int) -> str:
    """Lines wider than the terminal wrapped between words: a segment's message continues
    under its text, a sentence under its start."""
    from cnnprof.render.console import terminal_width
    from cnnprof.render.text import wrap_words

    columns = terminal_width()
    out: list[str] = []
    for line in lines:
        if len(line) <= columns:
            out.append(line)
            continue
        indent = " " * (min(lead, columns // 3) if line.startswith("  ") else 0)
        out.extend(wrap_words(line, columns, indent=indent))
    return "\n".join(out)
