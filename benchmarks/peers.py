"""Time a full cnnprof report next to the counters people use today, in one process.

For every model: the bare no-grad CPU forward (reference), cnnprof's full report
(``cnnprof.profile(model, [x])``: every layer's shapes, params, MACs, FLOPs and bytes), thop,
fvcore, ptflops (``pytorch`` and ``aten`` backends), torchinfo and torch's FlopCounterMode.
Each tool's total MACs is checked against torchvision's weights metadata ``_ops``.

Method (also written into the output):

* the model is built (cnnprof's torchvision zoo: the DEFAULT weights' configuration, random
  weights, nothing downloaded) and the input tensor made before any timing; imports,
  construction, ``deepcopy`` and input creation are outside the timed region for every tool;
* each tool runs in a block (``--warmup`` untimed calls, then ``--repeats`` timed ones, as
  ``timeit`` would), and ``--rounds`` passes over all tools, in an order rotated per pass,
  spread a burst of load from elsewhere on the machine over every tool; the median of all
  timed calls is reported, and the very first call separately;
* one intra-op thread by default (``--threads``): on a small shared machine a two-thread
  OpenMP forward is bimodal (a few ms or a few hundred) whenever another process holds a
  core, which would flatter every tool that runs a real forward pass. With more threads on a
  quiet machine the CPU tools (all peers, and the bare forward) get faster on large models;
  cnnprof's meta-device count is single-threaded Python either way;
* every tool runs under ``torch.no_grad()`` (ptflops' pytorch backend would otherwise build an
  autograd graph: this gives each peer its fastest setup) with stdout/stderr and warnings
  swallowed; ``gc.collect()`` runs before each timed call, outside the timed region;
* thop (adds ``total_ops`` buffers) and ptflops (adds ``__flops__`` attributes and hooks) each
  get their own ``deepcopy`` of the model; the other tools share the built model, and the
  script checks that its ``state_dict`` keys and hooks are unchanged afterwards.

    pip install -e '.[bench]'                       # thop, fvcore, ptflops, torchinfo
    python benchmarks/peers.py                      # all 15 models → benchmarks/results/peers.md
    python benchmarks/peers.py --models alexnet resnet18 --repeats 3 --output /tmp/p.md
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import gc
import io
import math
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from results_file import cpu_model, publish

MODELS = (
    "alexnet", "vgg16", "resnet18", "resnet50", "mobilenet_v3_large", "efficientnet_b0",
    "convnext_tiny", "densenet121", "inception_v3", "vit_b_16", "swin_t", "regnet_y_400mf",
    "shufflenet_v2_x1_0", "googlenet", "squeezenet1_0",
)
CNNPROF = "cnnprof"
BARE = "bare forward"
PEERS = ("thop", "fvcore", "ptflops (pytorch)", "ptflops (aten)", "torchinfo",
         "FlopCounterMode")
DEFAULT_OUTPUT = Path(__file__).parent / "results" / "peers.md"


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# -- the tools: each takes (model, input) and returns its total MACs -------------------------


def run_cnnprof(model: Any, x: Any) -> tuple[float, str]:
    import cnnprof

    report = cnnprof.profile(model, [x])
    return float(report.totals.macs), report.device


def run_bare(model: Any, x: Any) -> tuple[float, str]:
    model(x)
    return math.nan, "cpu"


def run_thop(model: Any, x: Any) -> tuple[float, str]:
    import thop

    macs, _params = thop.profile(model, inputs=(x,), verbose=False)
    return float(macs), "cpu"


def run_fvcore(model: Any, x: Any) -> tuple[float, str]:
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(model, x)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    return float(analysis.total()), "cpu"


def _ptflops(backend: str) -> Callable[[Any, Any], tuple[float, str]]:
    def run(model: Any, x: Any) -> tuple[float, str]:
        from ptflops import get_model_complexity_info

        macs, _params = get_model_complexity_info(
            model, tuple(x.shape[1:]), as_strings=False, print_per_layer_stat=False,
            input_constructor=lambda _res: x, backend=backend)
        if macs is None:  # ptflops returns (None, None) on any exception
            raise RuntimeError("ptflops returned None")
        return float(macs), "cpu"

    return run


def run_torchinfo(model: Any, x: Any) -> tuple[float, str]:
    import torchinfo

    stats = torchinfo.summary(model, input_data=x, device="cpu", verbose=0)
    return float(stats.total_mult_adds), "cpu"


def run_flop_counter(model: Any, x: Any) -> tuple[float, str]:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() / 2, "cpu"  # it counts 2 FLOPs per MAC


@dataclass(frozen=True)
class Tool:
    name: str
    run: Callable[[Any, Any], tuple[float, str]]
    own_copy: bool  # the tool leaves state on a model: it gets its own deepcopy
    dist: str | None  # distribution whose version is reported


TOOLS = (
    Tool(BARE, run_bare, False, None),
    Tool(CNNPROF, run_cnnprof, False, "cnnprof"),
    Tool("thop", run_thop, True, "thop"),
    Tool("fvcore", run_fvcore, False, "fvcore"),
    Tool("ptflops (pytorch)", _ptflops("pytorch"), True, "ptflops"),
    Tool("ptflops (aten)", _ptflops("aten"), True, "ptflops"),
    Tool("torchinfo", run_torchinfo, False, "torchinfo"),
    Tool("FlopCounterMode", run_flop_counter, False, "torch"),
)


# -- measurement -----------------------------------------------------------------------------


@dataclass
class Result:
    samples_s: list[float] = field(default_factory=list)
    first_s: float = math.nan
    macs: float = math.nan
    devices: set[str] = field(default_factory=set)
    error: str | None = None

    @property
    def median_s(self) -> float:
        return statistics.median(self.samples_s) if self.samples_s else math.nan


@dataclass
class ModelRun:
    name: str
    input_shape: tuple[int, ...]
    ops_gmacs: float | None
    results: dict[str, Result]
    untouched: bool


def build(name: str) -> tuple[Any, Any, float | None]:
    import torch

    from cnnprof.zoo import resolve
    from cnnprof.zoo.torchvision_zoo import default_weights

    entry = resolve(name)
    with quiet():
        model, _notes = entry.build("cpu")
    model.eval()
    torch.manual_seed(0)
    x = torch.randn(1, *entry.default_inputs[0].shape)
    weights = default_weights(name)
    ops = weights.meta.get("_ops") if weights is not None else None
    return model, x, (float(ops) if ops is not None else None)


def _fingerprint(model: Any) -> tuple[Any, ...]:
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
    return tuple(model.state_dict().keys()), hooks, model.training


def measure(name: str, tools: tuple[Tool, ...], rounds: int, warmup: int, repeats: int,
            log: Callable[[str], None]) -> ModelRun:
    import torch

    model, x, ops = build(name)
    before = _fingerprint(model)
    models = {t.name: copy.deepcopy(model) if t.own_copy else model for t in tools}
    results = {t.name: Result() for t in tools}
    for round_ in range(rounds):
        shift = round_ % len(tools)
        for tool in tools[shift:] + tools[:shift]:
            result = results[tool.name]
            for call in range(warmup + repeats):
                if result.error is not None:
                    break
                gc.collect()
                try:
                    with quiet(), torch.no_grad():
                        start = time.perf_counter()
                        macs, device = tool.run(models[tool.name], x)
                        elapsed = time.perf_counter() - start
                except Exception as exc:  # a peer failing on a model is a result, not a crash
                    result.error = f"{type(exc).__name__}: {str(exc).strip()[:80]}"
                    break
                result.devices.add(device)
                if round_ == 0 and call == 0:
                    result.first_s, result.macs = elapsed, macs
                if call >= warmup:
                    result.samples_s.append(elapsed)
    untouched = _fingerprint(model) == before
    del models
    gc.collect()
    line = ", ".join(f"{k} {v.median_s * 1e3:.1f}" if v.error is None else f"{k} failed"
                     for k, v in results.items())
    log(f"{name}: {line} (ms)")
    return ModelRun(name, tuple(x.shape), ops, results, untouched)


def warm_process(tools: tuple[Tool, ...]) -> None:
    """Call every tool once on a tiny model, untimed: one-time lazy imports and set-up
    (jit, sympy, ``torch._dynamo``) belong with the imports, outside every timed region."""
    import torch

    tiny = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                               torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(144, 2))
    tiny.eval()
    x = torch.randn(1, 3, 8, 8)
    for tool in tools:
        with contextlib.suppress(Exception), torch.no_grad():
            tool.run(copy.deepcopy(tiny), x)


# -- output ----------------------------------------------------------------------------------


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"



def fastest_peer(run: ModelRun) -> tuple[str, float] | None:
    timed = [(run.results[p].median_s, p) for p in PEERS
             if p in run.results and run.results[p].error is None]
    if not timed:
        return None
    best_s, best = min(timed)
    return best, best_s


def _ms(result: Result) -> str:
    return "failed" if result.error is not None else f"{result.median_s * 1e3:.1f}"


def _agreement(macs: float, ops: float | None) -> str:
    if math.isnan(macs):
        return "—"
    g = macs / 1e9
    if ops is None:
        return f"{g:.3f}"
    if round(g, 3) == round(ops, 3):
        return f"{g:.3f} ="
    return f"{g:.3f} ({(g - ops) / ops * 100:+.1f}%)"


def render(runs: list[ModelRun], tools: tuple[Tool, ...], args: argparse.Namespace,
           load: tuple[tuple[float, ...], tuple[float, ...]], elapsed_s: float) -> str:
    import torch

    names = [t.name for t in tools]
    versions = {t.dist: _version(t.dist) for t in tools if t.dist}
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# cnnprof against the peers: time of a full count, batch 1, CPU",
        "",
        "Generated by `" + " ".join(["python benchmarks/peers.py", *sys.argv[1:]]) + "`"
        + f" on {now}.",
        "",
        f"- machine: {cpu_model()}, {os.cpu_count()} logical cores "
        f"(torch threads: {torch.get_num_threads()}), {platform.system()} "
        f"{platform.release()}",
        f"- load average (1, 5, 15 min) at start {load[0][0]:.2f} / {load[0][1]:.2f} / "
        f"{load[0][2]:.2f}, at end {load[1][0]:.2f} / {load[1][1]:.2f} / {load[1][2]:.2f}; "
        f"whole run {elapsed_s / 60:.1f} min",
        f"- Python {platform.python_version()}, torch {torch.__version__}, torchvision "
        f"{_version('torchvision')}, "
        + ", ".join(f"{n} {v}" for n, v in versions.items() if n not in ("cnnprof", "torch"))
        + f", cnnprof {versions.get('cnnprof', '?')} (FlopCounterMode: torch's own)",
        f"- timed: one call of each tool on a model already built and an input tensor already "
        f"made (excluded for every tool: imports and one untimed call of every tool on a tiny "
        f"model for lazy imports, model construction, deepcopy, input creation); per tool a "
        f"block of {args.warmup} untimed + {args.repeats} timed calls, "
        f"{args.rounds} passes over the tools in rotated order, median of the "
        f"{args.rounds * args.repeats} timed calls; all under `torch.no_grad()`, output "
        f"suppressed; {torch.get_num_threads()} intra-op thread(s) (`--threads`)",
        "- thop and ptflops run on their own deepcopy (they leave buffers/attributes); the "
        "others share the built model, checked unchanged afterwards (column `untouched`)",
        "- cnnprof: `cnnprof.profile(model, [x])`, default options (a full per-layer report: "
        "shapes, params, MACs, FLOPs, bytes); `device` is what it chose "
        "(see docs/performance.md)",
        "",
        "## Time per tool (ms, median)",
        "",
    ]
    header = ["model", "input", *names, "cnnprof device", "fastest peer",
              "cnnprof / fastest peer", "cnnprof first call", "untouched"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    ratios: list[float] = []
    wins = 0
    for run in runs:
        best = fastest_peer(run)
        mine = run.results.get(CNNPROF)
        ratio = math.nan
        if best is not None and mine is not None and mine.error is None:
            ratio = mine.median_s / best[1]
            ratios.append(ratio)
            wins += ratio < 1
        cells = [run.name, "x".join(map(str, run.input_shape)),
                 *[_ms(run.results[n]) for n in names],
                 ", ".join(sorted(mine.devices)) if mine is not None else "",
                 best[0] if best else "—",
                 f"{ratio:.2f}" if not math.isnan(ratio) else "—",
                 f"{mine.first_s * 1e3:.1f}" if mine is not None and mine.error is None else "—",
                 "yes" if run.untouched else "NO"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Summary", ""]
    if ratios:
        geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
        worst_i = max(range(len(ratios)), key=ratios.__getitem__)
        worst_name = [r.name for r in runs if CNNPROF in r.results
                      and r.results[CNNPROF].error is None][worst_i]
        lines += [
            f"- cnnprof is faster than the fastest peer on {wins} of {len(ratios)} models",
            f"- worst ratio cnnprof / fastest peer: {ratios[worst_i]:.2f} ({worst_name})",
            f"- geometric mean ratio cnnprof / fastest peer: {geo:.2f}",
        ]
    fails = [f"{r.name}: {n} ({r.results[n].error})" for r in runs for n in names
             if r.results[n].error is not None]
    if fails:
        lines.append("- failures: " + "; ".join(fails))
    lines += [
        "",
        "## Total MACs against torchvision's `_ops` (GMACs; `=` equal at 3 decimals)",
        "",
        "torchvision's weights metadata `_ops` (labelled GFLOPS) counts multiply-accumulates "
        "of convolutions, linear/matmul and attention, bias excluded; each tool's own unit is "
        "converted to MACs (FlopCounterMode ÷ 2).",
        "",
        "| model | `_ops` | " + " | ".join(n for n in names if n != BARE) + " |",
        "|" + "---|" * (len(names) + 1),
    ]
    for run in runs:
        ops = f"{run.ops_gmacs:.3f}" if run.ops_gmacs is not None else "—"
        cells = [run.name, ops]
        for n in names:
            if n == BARE:
                continue
            res = run.results[n]
            cells.append("failed" if res.error is not None
                         else _agreement(res.macs, run.ops_gmacs))
        lines.append("| " + " | ".join(cells) + " |")
    equal = {n: sum(1 for r in runs if r.results[n].error is None and r.ops_gmacs is not None
                    and round(r.results[n].macs / 1e9, 3) == round(r.ops_gmacs, 3))
             for n in names if n != BARE}
    lines += ["", "Equal to `_ops` at 3 decimals: "
              + ", ".join(f"{n} {k}/{len(runs)}" for n, k in equal.items()) + ".", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--rounds", type=int, default=3,
                        help="passes over the tools, in an order rotated per pass (default 3)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed calls at the start of each tool's block (default 1)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed calls in each tool's block (default 3)")
    parser.add_argument("--tools", nargs="+", default=None,
                        help="subset of tools by name (default: all)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch.set_num_threads for every tool; 0 keeps torch's default "
                             "(default 1: see the module docstring)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    tools = TOOLS if args.tools is None else tuple(t for t in TOOLS if t.name in args.tools)
    with quiet():  # imports outside every timed region
        import fvcore.nn  # noqa: F401
        import ptflops  # noqa: F401
        import thop  # noqa: F401
        import torch.utils.flop_counter
        import torchinfo  # noqa: F401

        import cnnprof  # noqa: F401
        warm_process(tools)
    load_start = os.getloadavg()
    start = time.perf_counter()
    runs = [measure(n, tools, args.rounds, args.warmup, args.repeats,
                    lambda s: print(s, file=sys.stderr, flush=True)) for n in args.models]
    elapsed = time.perf_counter() - start
    text = render(runs, tools, args, (load_start, os.getloadavg()), elapsed)
    publish(args.output, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
