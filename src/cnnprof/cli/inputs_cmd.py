"""``cnnprof inputs MODEL [--input 3xHxW]``: which spatial sizes the model accepts."""

from __future__ import annotations

import json
from typing import Any

import typer


def register(app: typer.Typer) -> None:
    @app.command("inputs", context_settings={"help_option_names": ["-h", "--help"]})
    def inputs_cmd(
        model: str = typer.Argument(..., metavar="MODEL", help="As for profile: alexnet, "
                                    "file.py:Class, package.module:factory, timm:NAME."),
        input_: list[str] = typer.Option(
            None, "--input", "-i", metavar="SPEC",
            help="Per-sample input whose spatial sizes are varied (all dimensions after the "
                 "first; a 1-D spec varies its only dimension). Default: the zoo entry's."),
        batch: str = typer.Option("1", "--batch", "-b", help="Batch size."),
        dtype: str = typer.Option(None, "--dtype", help="Floating dtype of model and inputs."),
        arg: list[str] = typer.Option(None, "--arg", "-a", metavar="KEY=VALUE",
                                      help="Constructor argument, repeatable."),
        mode: str = typer.Option("eval", "--mode", help="eval (default) or train."),
        min_size: int = typer.Option(1, "--min", min=1, help="Smallest size tried."),
        max_size: int = typer.Option(512, "--max", min=1, max=16384,
                                     help="Largest size tried."),
        exhaustive: bool = typer.Option(False, "--exhaustive", help="Run every size instead "
                                        "of sampling and bisecting the boundaries."),
        budget: float = typer.Option(60.0, "--budget", min=0.1, help="Stop probing after this "
                                     "many seconds (the answer says what was not probed)."),
        fmt: str = typer.Option("table", "--format", "-f", help="table or json."),
    ) -> None:
        """Which input sizes MODEL accepts (probed on the meta device: fast, no memory),
        the smallest, and the output shape at each."""
        from cnnprof.errors import UsageError
        from cnnprof.inputs import parse_batch, parse_dtype, parse_input_spec
        from cnnprof.zoo.user import parse_args

        if fmt not in ("table", "json"):
            raise UsageError(f"unknown --format {fmt!r}", hint="known: json, table")
        if min_size > max_size:
            raise UsageError(f"--min {min_size} is larger than --max {max_size}")
        specs = [parse_input_spec(s) for s in (input_ or [])]
        batch_size = parse_batch(batch)
        if dtype:
            parse_dtype(dtype)
        kwargs = parse_args(arg or [])

        from cnnprof.inspect_inputs import scan_model

        scan, class_name = scan_model(model, specs or None, batch=batch_size, dtype=dtype,
                                      model_args=kwargs, mode=mode, lo=min_size, hi=max_size,
                                      exhaustive=exhaustive, budget_s=budget)
        data = scan_json(scan, model, class_name, batch_size)
        if fmt == "json":
            typer.echo(json.dumps(data, indent=2))
        else:
            typer.echo(scan_text(data))
        if not data["accepted"]:
            raise typer.Exit(1)


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
    return "\n".join(lines)
