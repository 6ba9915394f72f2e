"""``cnnprof check [FILE]``: hold models to a budget in CI; ``--init MODEL...`` writes one."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cnnprof.cli.params import argument, command


@command("check")
@argument("targets", metavar="FILE_OR_MODELS", nargs=-1,
          help="Budget TOML file (default: [tool.cnnprof] in ./pyproject.toml); with --init, "
               "the models to write a budget for.")
@click.option("--init", is_flag=True, help="Write a starter budget for MODEL... from their "
              "current values instead of checking.")
@click.option("--headroom", default="10%", help="With --init: room above today's values, e.g. "
              "10%.")
@click.option("--input", "-i", "input_", multiple=True, metavar="SPEC",
              help="With --init: per-sample input shape (default: each model's own).")
@click.option("--batch", "-b", default="1", help="With --init: batch size.")
@click.option("--device", "-d", default="meta", help="With --init: cpu or cuda adds a "
              "max_latency measured there.")
@click.option("--format", "-f", "fmt", default="table",
              help="table, json, junit or github (::error annotations).")
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write the result (or the "
              "--init budget) to FILE instead of stdout.")
@click.option("--width", type=int, help="Table width.")
def check_cmd(targets: tuple[str, ...], init: bool, headroom: str, input_: tuple[str, ...],
              batch: str, device: str, fmt: str, output: Path | None,
              width: int | None) -> int:
    """Check models against a budget: exit 0 when every limit holds, 1 when any is
    exceeded (or a model fails), 2 when the budget file is malformed."""
    from cnnprof.cli.output import check_writable
    from cnnprof.errors import UsageError
    from cnnprof.render.budget import CHECK_FORMATS

    if output is not None:  # before any model runs; a late OSError would exit 1, "over budget"
        check_writable(output)
    if init:
        _init(list(targets), headroom, list(input_), batch, device, output)
        return 0
    name = fmt.lower()
    if name not in CHECK_FORMATS:
        raise UsageError(f"unknown --format {fmt!r}", hint=f"known: {', '.join(CHECK_FORMATS)}")
    if len(targets) > 1:
        raise UsageError("check takes one budget file",
                         hint="to write a budget for models: cnnprof check --init MODEL...")
    return _check(targets[0] if targets else None, name, output, width)  # main exits with it


def _check(path: str | None, fmt: str, output: Path | None, width: int | None) -> int:
    from cnnprof import budget, budget_run
    from cnnprof.cli.output import write_output
    from cnnprof.render.budget import build_table, render_rows, summary
    from cnnprof.render.console import make_console

    spec = budget.load_budget(path)
    err = make_console(stderr=True)
    rows = budget_run.run(spec, progress=lambda name: err.print(f"[dim]checking {name} …[/dim]",
                                                            highlight=False)
                      if err.is_terminal else None)
    if output is not None:
        write_output(output, render_rows(rows, fmt, spec.path, width))
        click.echo(summary(rows), err=True)
    elif fmt == "table":
        console = make_console(width)
        console.print(build_table(rows, f"cnnprof budget · {spec.path}"))
        console.print(summary(rows), highlight=False)
    else:
        sys.stdout.write(render_rows(rows, fmt, spec.path, width))
    return budget.exit_code(rows)


def _init(models: list[str], headroom_text: str, inputs: list[str], batch_text: str,
          device: str, output: Path | None) -> None:
    from cnnprof import budget, budget_run
    from cnnprof.api import profile
    from cnnprof.cli.output import write_output
    from cnnprof.device import for_counting
    from cnnprof.errors import UsageError
    from cnnprof.inputs import parse_batch, parse_input_spec

    if not models:
        raise UsageError("--init needs at least one MODEL", hint="cnnprof check --init resnet50")
    headroom = budget.parse_percent(headroom_text)
    for item in inputs:
        parse_input_spec(item)
    batch = parse_batch(batch_text)
    checked = for_counting(device)
    timed = checked is not None and not checked.is_meta
    reports = []
    latencies: dict[str, float] = {}
    for model in models:
        report = profile(model, inputs or None, batch=batch)
        reports.append((model, report, inputs))
        if timed:
            latencies[model] = budget_run.latency_s(report, model, device)
    text = budget.starter_budget(reports, headroom, latencies, device)
    if output is None:
        sys.stdout.write(text)
        return
    write_output(output, text)
    click.echo(f"wrote {output}", err=True)
