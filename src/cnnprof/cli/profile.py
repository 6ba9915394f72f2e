"""``cnnprof MODEL [OPTIONS]``: profile one model and render the report."""

from __future__ import annotations

import contextlib
import io
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cnnprof.cli.completion import complete_model
from cnnprof.cli.params import Integer, argument, command

if TYPE_CHECKING:  # types only: `cnnprof --help` imports neither torch nor the renderers
    from cnnprof.errors import ModelFailedError
    from cnnprof.render.options import RenderOptions
    from cnnprof.report import Report


@command("profile")
@argument("model", metavar="MODEL", shell_complete=complete_model,
          help="alexnet | timm:NAME | hf:MODEL_TYPE, hf:DIR or hf:ORG/NAME (a Hugging Face "
               "config, offline) | path/to/file.py:ClassOrFactory | package.module:factory "
               "(list: cnnprof models)")
@click.option("--input", "-i", "input_", multiple=True, metavar="SPEC",
              help="Per-sample input shape, e.g. 3x224x224; SPEC:DTYPE for one input (16:int64); "
                   "NAME=SPEC passes it as a keyword (input_ids=128:int64). Repeat for several "
                   "inputs. Default: the zoo entry's input.")
@click.option("--batch", "-b", default="1", help="Batch size prepended to every input; with "
              "--time a list (1,8,32) adds a sweep.")
@click.option("--dtype", help="Floating dtype of model and inputs: float32, float16, bfloat16, "
              "float64.")
@click.option("--device", "-d", default="auto", help="auto (default: meta, or the CPU for a small "
              "model when that is faster; see docs/performance.md), meta (count without "
              "memory), cpu or cuda[:N].")
@click.option("--depth", type=Integer(min=0), help="Fold layers deeper than N into their parents "
              "(table only).")
@click.option("--format", "-f", "fmt", help="table (default) or json; others by name (csv, "
              "markdown, html) where available.")
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write to FILE; format from "
              "its suffix (.json, .txt, ...) unless --format is given.")
@click.option("--arg", "-a", multiple=True, metavar="KEY=VALUE",
              help="Constructor argument (literal-evaluated), repeatable.")
@click.option("--columns", "-c", help="Preset (default, shapes, bytes, all, ...) or "
              "comma-separated column keys.")
@click.option("--mode", default="eval", help="eval (default) or train.")
@click.option("--backward", is_flag=True, help="Also count a backward pass (gradients of "
              "parameters and activations) per layer; shown in the bwd_macs/bwd_flops columns "
              "(--columns all).")
@click.option("--width", type=int, help="Table width (default: the terminal's).")
@click.option("--plot", type=click.Path(path_type=Path), metavar="FILE", help="Also write the "
              "per-layer chart (MACs, params, memory, time) to FILE (.png, .svg or .pdf).")
@click.option("--weights", type=click.Path(path_type=Path), metavar="FILE", help="State dict to "
              "load (torch.save(model.state_dict())); checked against the model, loaded on "
              "cpu/cuda. Plain tensors only.")
@click.option("--decode", type=Integer(min=0), metavar="N", help="Count ONE decoding step of a "
              "causal LM whose KV cache holds N tokens (hf: models; docs/huggingface.md).")
# --- timing (--time; see docs/timing.md and cnnprof.timing.cli) ----------------------------
@click.option("--time", "time_", is_flag=True, help="Also time every layer on --device (cpu or "
              "cuda; auto: the GPU if there is one, else the CPU): medians, self times, "
              "memory, roofline.")
@click.option("--warmup", type=Integer(min=0), help="Untimed iterations first (default 10 on "
              "CUDA, 2 on CPU).")
@click.option("--repeats", type=Integer(min=1), help="Timed iterations (default 50 on CUDA, 10 "
              "on CPU).")
@click.option("--kernels", is_flag=True, help="List the kernels each layer launched "
              "(torch.profiler); implies --time.")
@click.option("--channels-last", is_flag=True, help="Time with channels_last memory format.")
@click.option("--peak-tflops", type=float, help="Compute roof for the roofline (default: the "
              "known GPU's, per dtype).")
@click.option("--peak-gbps", type=float, help="Memory roof in GB/s.")
@click.option("--graphs", is_flag=True, help="CUDA only: per-layer times from timing marks "
              "inside a replayed CUDA graph of the whole forward (no launch gaps; eager figures "
              "kept too); implies --time.")
# --- end timing options ----------------------------------------------------------------------
@click.option("--train-memory", is_flag=True, help="Also simulate one steady-state training "
              "step on fake tensors: peak memory, when it happens, its parts, per-layer bytes "
              "saved for backward (docs/memory.md).")
@click.option("--optimizer", default="adamw", help="With --train-memory: sgd, sgd-momentum, adam, "
              "adamw (default), adam-amsgrad, adamax, nadam, radam, rmsprop, adagrad, adadelta.")
@click.option("--amp", help="With --train-memory: autocast to bf16 or fp16 (parameters stay in "
              "their dtype).")
@click.option("--fit", metavar="SIZE", help="The largest batch whose training step peak fits "
              "SIZE (24GB, 80GiB); implies --train-memory.")
def profile_cmd(
    model: str, input_: tuple[str, ...], batch: str, dtype: str | None, device: str,
    depth: int | None, fmt: str | None, output: Path | None, arg: tuple[str, ...],
    columns: str | None, mode: str, backward: bool, width: int | None, plot: Path | None,
    weights: Path | None, decode: int | None, time_: bool, warmup: int | None,
    repeats: int | None, kernels: bool, channels_last: bool, peak_tflops: float | None,
    peak_gbps: float | None, graphs: bool, train_memory: bool, optimizer: str,
    amp: str | None, fit: str | None,
) -> None:
    """Profile MODEL: per-layer shapes, params, MACs and FLOPs (use it without the word
    'profile': cnnprof alexnet --input 3x224x224)."""
    from cnnprof.errors import ModelFailedError
    from cnnprof.guard import Captured
    from cnnprof.inputs import parse_dtype, parse_input_spec
    from cnnprof.render.formats import RenderOptions, format_for, render
    from cnnprof.zoo.user import parse_args

    specs = [parse_input_spec(s) for s in input_]
    # --- timing: --batch takes a list (1,8,32); the first is counted and timed per layer
    from cnnprof.timing import cli as timing_cli

    time_ = time_ or kernels or graphs
    batches = timing_cli.parse_batches(batch)
    batch_size = batches[0]
    timing_device = timing_cli.check_options(
        time=time_, device=device, batches=batches, warmup=warmup, repeats=repeats,
        channels_last=channels_last, peak_tflops=peak_tflops, peak_gbps=peak_gbps,
        graphs=graphs, mode=mode)
    if timing_device is not None and timing_device.chosen:  # --device auto: say which
        click.echo(f"cnnprof: timing on {timing_device} ({timing_device.reason})", err=True)
    # --- end timing ---
    if dtype:
        parse_dtype(dtype)
    train_memory = train_memory or fit is not None
    if not train_memory and (optimizer != "adamw" or amp is not None):
        from cnnprof.errors import UsageError

        raise UsageError("--optimizer and --amp apply to --train-memory",
                         hint="add --train-memory (or --fit SIZE)")
    if train_memory:
        from cnnprof.training import check_options

        check_options(optimizer, amp, fit)  # refused before the (slow) profile
    if decode is not None and time_:
        from cnnprof.errors import UsageError

        raise UsageError("--decode counts one step; timing it (--time) is not supported",
                         hint="time the prefill instead: --input input_ids=N:int64 --time")
    kwargs = parse_args(list(arg))
    name = format_for(fmt, output)
    options = RenderOptions(depth=depth, columns=columns, width=width)
    _check_files(output, plot)
    # resolved before the (slow) profile, for every format: unknown columns are refused
    # now, and json carries torchstat's values when a ts_* column is asked for
    from cnnprof.render.columns import needs_torchstat

    torchstat = needs_torchstat(columns)

    from cnnprof.api import profile

    command_line = "cnnprof " + shlex.join(sys.argv[1:]) if sys.argv else None
    # a model printing in its constructor (or anywhere outside forward, which the engine
    # captures itself) must not corrupt --format json on stdout
    printed = Captured()
    try:
        with contextlib.redirect_stdout(printed):
            report = profile(model, specs or None, batch=batch_size, dtype=dtype,
                             # timing: count on meta, time on the real device
                             device="meta" if timing_device else device,
                             mode=mode, model_args=kwargs, command=command_line,
                             weights=weights, backward=backward, decode=decode,
                             train_memory=train_memory, optimizer=optimizer, amp=amp,
                             fit=fit)
            if timing_device:  # --- timing: a second pass on the real device fills the times
                report = timing_cli.run(report, model, device=timing_device, batches=batches,
                                        warmup=warmup, repeats=repeats, dtype=dtype,
                                        channels_last=channels_last, kernels=kernels,
                                        peak_tflops=peak_tflops, peak_gbps=peak_gbps,
                                        model_args=kwargs, command=command_line,
                                        graphs=graphs)
    except ModelFailedError as exc:
        exc.report = _note_printed(exc.report, printed.getvalue())
        _emit_failure(exc, name, output, options)
        raise
    report = _note_printed(report, printed.getvalue())
    _honour_meta(device, time_, model, report)
    if torchstat:  # torchstat's definitions, JSON key `torchstat`
        from cnnprof.compat.torchstat import annotate_torchstat

        with contextlib.redirect_stdout(io.StringIO()):
            report = annotate_torchstat(report, model_args=kwargs)
    _emit(render(report, name, options) if name != "table" or output else None,
          report, name, output, options)
    if plot is not None:
        from cnnprof.cli.output import replacing
        from cnnprof.render.plot import check_plot_path
        from cnnprof.render.train_memory import write_plot  # + memory over time

        with replacing(plot, "--plot") as temporary:  # its only file I/O: savefig
            write_plot(report, temporary, depth, check_plot_path(plot))
        click.echo(f"wrote {plot}", err=True)


def _honour_meta(device: str, timed: bool, model: str, report: Any) -> None:
    """An explicit ``--device meta`` is the user's word: a model that had to be counted on
    the CPU instead (quantized kernels, a forward that needs values) is refused, never
    reported as if meta had been used. ``auto`` (the default) may move to the CPU."""
    from cnnprof.errors import DeviceError

    if device.strip().lower() != "meta" or timed or report.device == "meta":
        return
    why = next((n for n in report.notes if "CPU" in n), f"counted on {report.device}")
    raise DeviceError(f"--device meta: {model} cannot be counted on the meta device ({why})",
                      hint="leave --device out (auto) or use --device cpu to count it on the CPU")


def _check_files(output: Path | None, plot: Path | None) -> None:
    """Refuse an --output or --plot file that cannot be written (or a --plot suffix that is
    no image format) before the (slow) profile, not after it."""
    from cnnprof.cli.output import check_writable

    if output is not None:
        check_writable(output)
    if plot is not None:
        from cnnprof.render.plot import check_plot_path

        check_plot_path(plot)
        check_writable(plot, "--plot")


def _emit(text: str | None, report: Report, name: str, output: Path | None,
          options: RenderOptions) -> None:
    if output is not None:
        from cnnprof.cli.output import write_output

        assert text is not None
        write_output(output, text)
        click.echo(f"wrote {output}", err=True)
        return
    if name == "table":  # Rich only for the terminal's table (-f json does not import it)
        from cnnprof.render.console import make_console
        from cnnprof.render.table import print_table

        print_table(report, make_console(options.width), depth=options.depth,
                    columns=options.columns)
        return
    assert text is not None
    sys.stdout.write(text)


def _note_printed(report: Any, text: str) -> Any:
    """Keep what the model printed outside forward in the report's notes."""
    from cnnprof.report import Report

    text = text.strip()
    if not text or not isinstance(report, Report):
        return report
    clipped = text if len(text) <= 500 else text[:500] + " ..."
    return report.with_updates(notes=(*report.notes, "the model printed: " + clipped))


def _emit_failure(exc: ModelFailedError, name: str, output: Path | None,
                  options: RenderOptions) -> None:
    """Show what ran before the failure (the partial table, or the JSON with its "error")
    and, on stderr, where it failed, with what shapes, and the underlying error.

    The one-line message and hint follow from ``app.main``; the model's traceback only with
    --debug (the JSON keeps it only then, too).
    """
    from dataclasses import replace

    from cnnprof.cli.state import debug_enabled
    from cnnprof.render.formats import render
    from cnnprof.report import Report

    report = exc.report
    if not isinstance(report, Report):
        return
    error = dict(report.error or {})
    trace = error.pop("traceback", None)
    if debug_enabled() and trace:
        error["traceback"] = trace
    else:
        trace = None
    # only what ran (the failing layer included, without outputs); "never ran" is no news
    layers = tuple(r for r in report.layers if r.calls)
    notes = tuple(n for n in report.notes if "never ran in forward" not in n)
    partial = replace(report, layers=layers or report.layers, notes=notes, error=error)
    if name != "table" or output is not None:
        _emit(render(partial, name, options), partial, name, output, options)
    elif len(layers) > 1:
        _emit(None, partial, name, None, options)
    lines = ["forward failed" + (" — the layers above ran" if name == "table" and output is None
                                 and len(layers) > 1 else "")]
    if error.get("module") is not None:
        kind = error.get("type", "?")
        where = f"{error['module']} ({kind})" if error["module"] else f"{kind} (the model)"
        lines.append(f"  module   {where}")
        shapes = ", ".join(str(s) for s in error.get("input_shapes", [])) or "no tensors"
        lines.append(f"  input    {shapes}")
    if error.get("after") is not None:
        after = error["after"]
        outs = ", ".join(str(s) for s in error.get("after_output_shapes", []))
        lines.append(f"  after    {after}" + (f" → {outs}" if outs else ""))
    if "op" in error:
        lines.append(f"  op       {error['op']['call']}")
    if "explanation" in error:
        lines.append(f"  why      {error['explanation']}")
    lines.append(f"  error    {error.get('exception', 'Error')}: {error.get('detail', '')}")
    # the facts fit the terminal, continued under their value (the traceback stays as is)
    from cnnprof.render.console import terminal_width
    from cnnprof.render.text import wrap_words

    columns = terminal_width(getattr(options, "width", None), stderr=True)
    lines = [part for line in lines for part in wrap_words(line, columns, indent=" " * 11)]
    if trace:
        lines.append(trace.rstrip())
    else:
        lines.append("  (run with --debug for the traceback)")
    click.echo("\n".join(lines), err=True)
