"""``cnnprof diff OLD NEW``: what a change cost, in totals and layer by layer."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cnnprof.cli.params import Integer, argument, command

if TYPE_CHECKING:
    from cnnprof.report import Report


@command("diff")
@argument("old", metavar="OLD", help="Report JSON (cnnprof MODEL -f json), or a model spec.")
@argument("new", metavar="NEW", help="Report JSON, or a model spec.")
@click.option("--fail-above", metavar="PCT",
              help="Exit 1 when a total (params, MACs, FLOPs, param or activation bytes) grows "
                   "by more than PCT percent, e.g. 5 or 5%.")
@click.option("--metric", "-m", multiple=True,
              help="With --fail-above: watch only these totals (repeatable): params, macs, "
                   "flops, param_bytes, activation_bytes, read_bytes, write_bytes, time_s.")
@click.option("--limit", "-n", type=Integer(min=0), default=30,
              help="Layer rows to show, most impact first (0: all).")
@click.option("--format", "-f", "fmt", default="table", help="table, markdown or json.")
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write to FILE.")
@click.option("--width", type=int, help="Table width.")
def diff_cmd(old: str, new: str, fail_above: str | None, metric: tuple[str, ...], limit: int,
             fmt: str, output: Path | None, width: int | None) -> None:
    """Compare two reports: total deltas, then layers added, removed, reshaped or
    re-costed, sorted by impact. OLD/NEW that are not files are profiled as model specs
    with their default inputs."""
    from cnnprof import units
    from cnnprof.budget import parse_percent
    from cnnprof.cli.output import check_writable, write_output
    from cnnprof.diff import GATED, METRICS, diff_reports
    from cnnprof.errors import BudgetExceededError, UsageError
    from cnnprof.render.diff import DIFF_FORMATS, render_diff, renderable, signed

    name = {"md": "markdown"}.get(fmt.lower(), fmt.lower())
    if name not in DIFF_FORMATS:
        raise UsageError(f"unknown --format {fmt!r}", hint=f"known: {', '.join(DIFF_FORMATS)}")
    threshold = parse_percent(fail_above) if fail_above is not None else None
    watched = tuple(metric) if metric else GATED
    for item in watched:
        if item not in (*METRICS, "time_s"):
            raise UsageError(f"unknown --metric {item!r}",
                             hint=f"known: {', '.join((*METRICS, 'time_s'))}")
    if output is not None:  # before OLD/NEW are profiled: a model spec can take a while
        check_writable(output)
    diff = diff_reports(_load(old), _load(new))
    shown = limit or None
    if output is not None:
        write_output(output, render_diff(diff, name, shown, width))
        click.echo(f"wrote {output}", err=True)
    elif name == "table":
        from cnnprof.render.console import make_console

        console = make_console(width)
        console.print(renderable(diff, shown, console.width))
    else:
        sys.stdout.write(render_diff(diff, name, shown, width))
    if threshold is None:
        return
    grown = diff.grown_above(threshold, watched)
    if grown:
        worst = ", ".join(
            f"{t.metric} {signed(t.metric, t.delta)}"
            + (" (from 0)" if t.ratio == float("inf")
               else f" ({units.signed_percent(t.ratio or 0)})")
            for t in grown)
        raise BudgetExceededError(f"grew more than {100 * threshold:g}%: {worst}")


def _load(source: str) -> Report:
    """A report file, or a model spec to profile now."""
    from cnnprof.errors import UsageError
    from cnnprof.report import Report

    path = Path(source)
    if path.is_file():
        try:
            report = Report.load(path)
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            raise UsageError(f"{source}: not a cnnprof report JSON "
                             f"({type(exc).__name__}: {exc})") from None
        except OSError as exc:
            raise UsageError(f"cannot read {source}: {exc.strerror or exc}") from None
        if report.error:
            # its totals cover only the layers that ran: every delta would be a made-up drop
            raise UsageError(
                f"{source} is the report of a failed run "
                f"({report.error.get('message', 'the forward failed')})",
                hint="diff reports of runs that finished")
        return report
    if path.suffix.lower() == ".json":
        raise UsageError(f"report file {source!r} not found")
    from cnnprof.api import profile

    return profile(source)
