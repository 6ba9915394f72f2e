"""What the ``profile`` command needs for ``--time``: argument checks, the progress bar and
the call into ``time_report``. Kept here so the command itself stays a thin block.

Importing this module does not import torch (``cnnprof --help`` stays fast).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from cnnprof.errors import UsageError
from cnnprof.inputs import parse_batch

if TYPE_CHECKING:
    from cnnprof.device import Device
    from cnnprof.report import Report
    from cnnprof.timing.api import Progress


def parse_batches(text: str | int) -> list[int]:
    """``--batch 1,8,32`` → [1, 8, 32] (the first is counted and timed per layer)."""
    parts = [p.strip() for p in str(text).split(",")]
    if not parts or any(not p for p in parts):
        raise UsageError(f"malformed --batch {text!r}", hint="write N or a list like 1,8,32")
    values = [parse_batch(p) for p in parts]
    if len(set(values)) != len(values):
        raise UsageError(f"--batch {text!r} repeats a value")
    return values


def check_options(*, time: bool, device: str, batches: list[int], warmup: int | None,
                  repeats: int | None, channels_last: bool, peak_tflops: float | None,
                  peak_gbps: float | None, graphs: bool = False,
                  mode: str = "eval") -> Device | None:
    """Usage errors (exit 2) before any model is built; the device to time on (None
    without --time). ``--device auto`` with --time is the GPU when there is one, else the
    CPU; the returned device says why (``Device.reason``)."""
    from cnnprof.device import for_timing, parse

    if graphs:  # --graphs implies --time; it replays CUDA graphs of an eval forward
        named = parse(device)
        if named is None:  # auto: the GPU if there is one
            named = for_timing(device)
        if not named.is_cuda:
            raise UsageError(f"--graphs needs --device cuda, got --device {device}"
                             + (f" ({named.reason})" if named.reason else ""),
                             hint="CUDA graphs exist only on NVIDIA GPUs; on the CPU plain "
                                  "--time has no launch gaps to remove")
        if mode.strip().lower() == "train":
            raise UsageError("--graphs times the forward in eval mode only",
                             hint="drop --graphs, or --mode train")
    if not time:
        given = [name for name, value in (
            ("--warmup", warmup), ("--repeats", repeats),
            ("--channels-last", channels_last or None), ("--peak-tflops", peak_tflops),
            ("--peak-gbps", peak_gbps)) if value is not None]
        if given:
            raise UsageError(f"{', '.join(given)} only apply with --time")
        if len(batches) > 1:
            raise UsageError("several --batch values make a timing sweep: add --time")
        return None
    for name, value in (("--peak-tflops", peak_tflops), ("--peak-gbps", peak_gbps)):
        if value is not None and not value > 0:
            raise UsageError(f"{name} must be positive, got {value}")
    return for_timing(device)


@contextmanager
def progress_bar() -> Iterator[Progress | None]:
    """A Rich progress bar on stderr while warming up and repeating (none when stderr is
    not a terminal, so logs and pipes stay clean)."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   console=Console(stderr=True), transient=True)
    tasks: dict[str, Any] = {}

    def update(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(phase, total=total)
        bar.update(tasks[phase], completed=done, total=total)

    with bar:
        yield update


def run(report: Report, model: str, *, device: Device, batches: list[int],
        warmup: int | None, repeats: int | None, dtype: str | None, channels_last: bool,
        kernels: bool, peak_tflops: float | None, peak_gbps: float | None,
        model_args: dict[str, Any], command: str | None, graphs: bool = False) -> Report:
    from cnnprof.timing.api import TimingOptions, time_report

    options = TimingOptions(device=device, warmup=warmup, repeats=repeats,
                            batches=tuple(batches), dtype=dtype, channels_last=channels_last,
                            kernels=kernels, peak_tflops=peak_tflops, peak_gbps=peak_gbps,
                            graphs=graphs)
    with progress_bar() as progress:
        return time_report(report, model, options, model_args=model_args, progress=progress,
                           command=command)
