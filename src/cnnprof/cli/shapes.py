"""``cnnprof shapes MODEL --input ...``: the shape after every layer, in execution order.

What the seed posts do by hand with ``print(x.size())`` in ``forward``: one line per layer,
``input → output`` in PyTorch's own notation; on failure the lines that ran, the failing
layer, and the same explanation as ``cnnprof MODEL``.
"""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

import click

from cnnprof.cli.completion import complete_model
from cnnprof.cli.params import Integer, argument, command


@command("shapes")
@argument("model", metavar="MODEL", shell_complete=complete_model,
          help="As for profile: alexnet, file.py:Class, package.module:factory, timm:NAME.")
@click.option("--input", "-i", "input_", multiple=True, metavar="SPEC",
              help="Per-sample input shape, repeatable.")
@click.option("--batch", "-b", default="1", help="Batch size.")
@click.option("--dtype", help="Floating dtype of model and inputs.")
@click.option("--arg", "-a", multiple=True, metavar="KEY=VALUE",
              help="Constructor argument, repeatable.")
@click.option("--mode", default="eval", help="eval (default) or train.")
@click.option("--all", "all_", is_flag=True, help="Containers too, not only leaf layers.")
@click.option("--depth", type=Integer(min=0), help="Only layers down to depth N (deeper ones "
              "fold into their parent's line).")
@click.option("--format", "-f", "fmt", default="text", help="text or json.")
def shapes_cmd(model: str, input_: tuple[str, ...], batch: str, dtype: str | None,
               arg: tuple[str, ...], mode: str, all_: bool, depth: int | None,
               fmt: str) -> None:
    """The shape after every layer of MODEL (counted on meta: instant, no memory)."""
    from cnnprof.errors import ModelFailedError, UsageError
    from cnnprof.inputs import parse_batch, parse_dtype, parse_input_spec
    from cnnprof.zoo.user import parse_args

    if fmt not in ("text", "json"):
        raise UsageError(f"unknown --format {fmt!r}", hint="known: json, text")
    specs = [parse_input_spec(s) for s in input_]
    batch_size = parse_batch(batch)
    if dtype:
        parse_dtype(dtype)
    kwargs = parse_args(list(arg))

    from cnnprof.api import profile
    from cnnprof.cli.state import debug_enabled

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the model's own prints
            report = profile(model, specs or None, batch=batch_size, dtype=dtype,
                             mode=mode, model_args=kwargs)
    except ModelFailedError as exc:
        failed: Any = exc.report
        if failed is not None:
            error = dict(failed.error or {})
            if not debug_enabled():
                error.pop("traceback", None)
            failed = failed.with_updates(error=error)
            _emit(failed, fmt, all_, depth)
        raise
    _emit(report, fmt, all_, depth)


def _shapes(shapes: Any) -> str:
    from cnnprof.units import bracketed

    return "; ".join(bracketed(s) for s in shapes) if shapes else "—"


def rows(report: Any, all_layers: bool, depth: int | None) -> list[dict[str, Any]]:
    """The layers to list: leaves (or all) that ran, with parents folded below ``depth``."""
    error = report.error or {}
    failed_name = error.get("module")
    out = []
    for layer in report.layers[1:]:
        if not layer.calls:
            continue
        if depth is not None and layer.depth > depth:
            continue
        folded = depth is not None and layer.depth == depth
        if not (all_layers or layer.is_leaf or folded or layer.name == failed_name):
            continue
        out.append({"name": layer.name, "type": layer.type, "depth": layer.depth,
                    "calls": layer.calls,
                    "input_shapes": [list(s) for s in layer.input_shapes],
                    "output_shapes": [list(s) for s in layer.output_shapes],
                    "failed": layer.name == failed_name})
    return out


def _emit(report: Any, fmt: str, all_layers: bool, depth: int | None) -> None:
    from cnnprof.units import bracketed

    listed = rows(report, all_layers, depth)
    root = report.layers[0]
    if fmt == "json":
        data: dict[str, Any] = {
            "schema": "cnnprof.shapes/1",
            "model": report.model.to_dict(),
            "inputs": [i.to_dict() for i in report.inputs],
            "output_shapes": [list(s) for s in root.output_shapes],
            "layers": listed,
        }
        if report.error is not None:
            data["error"] = report.error
        click.echo(json.dumps(data, indent=2))
        return
    inputs = "; ".join(bracketed(i.shape) + ("" if i.dtype == "float32" else f" {i.dtype}")
                       for i in report.inputs)
    lines = [f"{report.model.spec} ({report.model.class_name})  input {inputs}"]
    def indent(r: dict[str, Any]) -> str:  # full paths say the nesting unless --all
        return "  " * max(0, r["depth"] - 1) if all_layers else ""

    from cnnprof.render.console import terminal_width

    columns = terminal_width()
    error = report.error or {}
    width = max([len(indent(r) + r["name"]) for r in listed] or [6])
    type_width = max([len(r["type"]) for r in listed] or [4])
    in_width = max([len(_shapes(r["input_shapes"])) for r in listed] or [1])
    for r in listed:
        name = indent(r) + r["name"]
        calls = f"  ×{r['calls']}" if r["calls"] > 1 else ""
        result = (f"✗ {error.get('explanation') or error.get('detail', 'failed')}"
                  if r["failed"] else _shapes(r["output_shapes"]))
        head = f"  {name:<{width}}  {r['type']:<{type_width}}  "
        line = f"{head}{_shapes(r['input_shapes']):<{in_width}} → {result}{calls}"
        if len(line) > columns:  # the output shape on a line of its own, under the input
            arrow = " " * min(len(head), max(2, columns - len(result) - len(calls) - 2))
            line = f"{head}{_shapes(r['input_shapes'])}".rstrip() + f"\n{arrow}→ {result}{calls}"
        lines.append(line)
    if report.error is None:
        lines.append(f"  {'output':<{width}}  {'':<{type_width}}  {'':<{in_width}}   "
                     f"{_shapes(root.output_shapes)}")
    elif not any(r["failed"] for r in listed):
        where = error.get("module") or error.get("type") or "the model"
        after = f", after {error['after']}" if error.get("after") else ""
        lines.append(f"  ✗ in forward of {where}{after}: "
                     f"{error.get('explanation') or error.get('detail', '')}")
    click.echo("\n".join(_wrap(line, columns) for line in lines))


def _wrap(line: str, columns: int) -> str:
    """A line still wider than the terminal (a long failure message) wrapped between words,
    continued under its text."""
    from cnnprof.render.text import wrap_words

    if len(line) <= columns or "\n" in line:
        return line
    return "\n".join(wrap_words(line, columns, indent=" " * (len(line) - len(line.lstrip()) + 2)))
