"""``cnnprof check [FILE]``: hold models to a budget in CI; ``--init MODEL...`` writes one."""

from __future__ import annotations

import sys
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("check", context_settings={"help_option_names": ["-h", "--help"]})
    def check_cmd(
        targets: list[str] = typer.Argument(
            None, metavar="FILE_OR_MODELS",
            help="Budget TOML file (default: [tool.cnnprof] in ./pyproject.toml); "
                 "with --init, the models to write a budget for."),
        init: bool = typer.Option(False, "--init", help="Write a starter budget for MODEL... "
                                  "from their current values instead of checking."),
        headroom: str = typer.Option("10%", "--headroom", help="With --init: room above "
                                     "today's values, e.g. 10%."),
        input_: list[str] = typer.Option(None, "--input", "-i", metavar="SPEC",
                                         help="With --init: per-sample input shape "
                                              "(default: each model's own)."),
        batch: str = typer.Option("1", "--batch", "-b", help="With --init: batch size."),
        device: str = typer.Option("meta", "--device", "-d", help="With --init: cpu or cuda "
                                   "adds a max_latency measured there."),
        fmt: str = typer.Option("table", "--format", "-f",
                                help="table, json, junit or github (::error annotations)."),
        output: Path = typer.Option(None, "--output", "-o", help="Write the result (or the "
                                    "--init budget) to FILE instead of stdout."),
        width: int = typer.Option(None, "--width", help="Table width."),
    ) -> None:
        """Check models against a budget: exit 0 when every limit holds, 1 when any is
        exceeded (or a model fails), 2 when the budget file is malformed."""
        from cnnprof.cli.output import check_writable
        from cnnprof.errors import UsageError
        from cnnprof.render.budget import CHECK_FORMATS

        if output is not None:  # before any model runs; a late OSError would exit 1, "over budget"
            check_writable(output)
        if init:
            _init(targets or [], headroom, input_ or [], batch, device, output)
            return
        name = fmt.lower()
        if name not in CHECK_FORMATS:
            raise UsageError(f"unknown --format {fmt!r}", hint=f"known: {', '.join(CHECK_FORMATS)}")
        if targets and len(targets) > 1:
            raise UsageError("check takes one budget file",
                             hint="to write a budget for models: cnnprof check --init MODEL...")
        code = _check(targets[0] if targets else None, name, output, width)
        if code:
            raise typer.Exit(code)


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
        typer.echo(summary(rows), err=True)
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
    from cnnprof.api import check_device, profile
    from cnnprof.cli.output import write_output
    from cnnprof.errors import UsageError
    from cnnprof.inputs import parse_batch, parse_input_spec

    if not models:
        raise UsageError("--init needs at least one MODEL", hint="cnnprof check --init resnet50")
    headroom = budget.parse_percent(headroom_text)
    for item in inputs:
        parse_input_spec(item)
    batch = parse_batch(batch_text)
    timed = check_device(device) != "meta"
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
    typer.echo(f"wrote {output}", err=True)
