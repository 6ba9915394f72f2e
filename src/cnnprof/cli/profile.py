"""``cnnprof MODEL [OPTIONS]``: profile one model and render the report."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("profile", context_settings={"help_option_names": ["-h", "--help"]})
    def profile_cmd(
        model: str = typer.Argument(
            ..., metavar="MODEL",
            help="alexnet | timm:NAME | path/to/file.py:ClassOrFactory | package.module:factory "
                 "(list: cnnprof models)"),
        input_: list[str] = typer.Option(
            None, "--input", "-i", metavar="SPEC",
            help="Per-sample input shape, e.g. 3x224x224; SPEC:DTYPE for one input (16:int64). "
                 "Repeat for several inputs. Default: the zoo entry's input."),
        batch: str = typer.Option("1", "--batch", "-b", help="Batch size prepended to every "
                                  "input; with --time a list (1,8,32) adds a sweep."),
        dtype: str = typer.Option(None, "--dtype", help="Floating dtype of model and inputs: "
                                  "float32, float16, bfloat16, float64."),
        device: str = typer.Option("meta", "--device", "-d", help="meta (count without memory, "
                                   "default), cpu or cuda[:N]."),
        depth: int = typer.Option(None, "--depth", min=0, help="Fold layers deeper than N "
                                  "into their parents (table only)."),
        fmt: str = typer.Option(None, "--format", "-f", help="table (default) or json; others "
                                "by name (csv, markdown, html) where available."),
        output: Path = typer.Option(None, "--output", "-o", help="Write to FILE; format from "
                                    "its suffix (.json, .txt, ...) unless --format is given."),
        arg: list[str] = typer.Option(None, "--arg", "-a", metavar="KEY=VALUE",
                                      help="Constructor argument (literal-evaluated), repeatable."),
        columns: str = typer.Option(None, "--columns", "-c", help="Preset (default, shapes, bytes, "
                                    "all, ...) or comma-separated column keys."),
        mode: str = typer.Option("eval", "--mode", help="eval (default) or train."),
        width: int = typer.Option(None, "--width", help="Table width (default: the terminal's)."),
        # --- timing (--time; see docs/timing.md and cnnprof.timing.cli) ----------------------
        time_: bool = typer.Option(False, "--time", help="Also time every layer on --device "
                                   "(cpu or cuda): medians, self times, memory, roofline."),
        warmup: int = typer.Option(None, "--warmup", min=0, help="Untimed iterations first "
                                   "(default 10 on CUDA, 2 on CPU)."),
        repeats: int = typer.Option(None, "--repeats", min=1, help="Timed iterations "
                                    "(default 50 on CUDA, 10 on CPU)."),
        kernels: bool = typer.Option(False, "--kernels", help="List the kernels each layer "
                                     "launched (torch.profiler); implies --time."),
        channels_last: bool = typer.Option(False, "--channels-last",
                                           help="Time with channels_last memory format."),
        peak_tflops: float = typer.Option(None, "--peak-tflops", help="Compute roof for the "
                                          "roofline (default: the known GPU's, per dtype)."),
        peak_gbps: float = typer.Option(None, "--peak-gbps", help="Memory roof in GB/s."),
        # --- end timing options --------------------------------------------------------------
    ) -> None:
        """Profile MODEL: per-layer shapes, params, MACs and FLOPs (use it without the word
        'profile': cnnprof alexnet --input 3x224x224)."""
        from cnnprof.errors import ModelFailedError
        from cnnprof.inputs import parse_dtype, parse_input_spec
        from cnnprof.render.formats import RenderOptions, format_for, render
        from cnnprof.zoo.user import parse_args

        specs = [parse_input_spec(s) for s in (input_ or [])]
        # --- timing: --batch takes a list (1,8,32); the first is counted and timed per layer
        from cnnprof.timing import cli as timing_cli

        time_ = time_ or kernels
        batches = timing_cli.parse_batches(batch)
        batch_size = batches[0]
        timing_cli.check_options(time=time_, device=device, batches=batches, warmup=warmup,
                                 repeats=repeats, channels_last=channels_last,
                                 peak_tflops=peak_tflops, peak_gbps=peak_gbps)
        # --- end timing ---
        if dtype:
            parse_dtype(dtype)
        kwargs = parse_args(arg or [])
        name = format_for(fmt, output)
        options = RenderOptions(depth=depth, columns=columns, width=width)
        if name == "table":  # validate columns before the (slow) profile
            from cnnprof.render.columns import resolve_columns

            resolve_columns(columns)

        from cnnprof.api import profile

        command = "cnnprof " + shlex.join(sys.argv[1:]) if sys.argv else None
        try:
            report = profile(model, specs or None, batch=batch_size, dtype=dtype,
                             device="meta" if time_ else device,  # timing: count on meta
                             mode=mode, model_args=kwargs, command=command)
            if time_:  # --- timing: a second pass on the real device fills the times
                report = timing_cli.run(report, model, device=device, batches=batches,
                                        warmup=warmup, repeats=repeats, dtype=dtype,
                                        channels_last=channels_last, kernels=kernels,
                                        peak_tflops=peak_tflops, peak_gbps=peak_gbps,
                                        model_args=kwargs, command=command)
        except ModelFailedError as exc:
            _emit_failure(exc, name, output, options)
            raise
        _emit(render(report, name, options) if name != "table" or output else None,
              report, name, output, options)


def _emit(text: str | None, report: object, name: str, output: Path | None,
          options: object) -> None:
    from rich.console import Console

    from cnnprof.render.formats import RenderOptions
    from cnnprof.render.table import print_table
    from cnnprof.report import Report

    assert isinstance(report, Report) and isinstance(options, RenderOptions)
    if output is not None:
        assert text is not None
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)
        return
    if name == "table":
        print_table(report, Console(width=options.width, soft_wrap=False), depth=options.depth,
                    columns=options.columns)
        return
    assert text is not None
    sys.stdout.write(text)


def _emit_failure(exc: object, name: str, output: Path | None, options: object) -> None:
    """Show what ran before the failure: the partial table, or the JSON with its error."""
    from cnnprof.errors import ModelFailedError
    from cnnprof.render.formats import render
    from cnnprof.report import Report

    assert isinstance(exc, ModelFailedError)
    report = exc.report
    if not isinstance(report, Report):
        return
    if name == "table" and output is None:
        ran = [r for r in report.layers if r.calls]
        if len(ran) > 1:
            _emit(None, report, name, None, options)
        return
    _emit(render(report, name, options), report, name, output, options)  # type: ignore[arg-type]
