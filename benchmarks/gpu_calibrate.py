"""Calibrate cnnprof's timing against independent references on a real GPU.

For each model × batch × dtype it measures
  (a) hooked vs unhooked end-to-end median (the hooks' own overhead),
  (b) the sum of leaf self times vs the hooked end-to-end median,
  (c) each layer's time vs the kernel time torch.profiler attributes to the same module,
  (d) the reported peak memory vs torch.cuda.max_memory_allocated of a plain forward,
and, in graph mode (``--graphs``: timing marks inside the replayed whole-model CUDA graph,
cnnprof.timing.ingraph, or isolated replays of each call where that cannot be captured),
  (a') the marked graph replay vs the unmarked one,
  (b') executed-leaf graph times vs the unmarked graph replay,
  (c') each layer's graph time vs the same profiler kernel time,
and writes CALIBRATION.md (pass/fail per bound), calibration.json, a log, and JSON reports
plus rendered tables (per-layer times and a roofline view) for resnet50, vit_b_16 and the
seed AlexNet.

    PYTHONPATH=src python benchmarks/gpu_calibrate.py --out reports/gpu
    PYTHONPATH=src python benchmarks/gpu_calibrate.py --device cpu --quick --out /tmp/cal

Needs only torch, torchvision and rich (no click, pytest, thop, fvcore or torchstat).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FULL_MODELS = ("resnet50", "vit_b_16", "convnext_tiny", "efficientnet_b0", "alexnet_seed")
FULL_BATCHES = (1, 32)
FULL_DTYPES = ("float32", "bfloat16")
#: models whose reports and tables are written out (the seed AlexNet under its zoo name)
RENDERED = ("resnet50", "vit_b_16", "alexnet_seed")
QUICK_MODELS = ("lenet", "alexnet_seed")
QUICK_BATCHES = (1, 2)
QUICK_DTYPES = ("float32",)
#: after this many seconds, batches below GRAPH_SMALL_BATCH skip graph mode (their eager rows
#: stay): the whole calibration must fit one 10-minute GPU session
GRAPH_DEADLINE_S = 300.0
GRAPH_SMALL_BATCH = 8
#: one configuration may not take longer than this (a hung capture must not eat the session)
CONFIG_TIMEOUT_S = 240


@dataclass
class Config:
    model: str
    batch: int
    dtype: str
    graphs: bool = False


class Log:
    def __init__(self, path: Path) -> None:
        self.file = path.open("w", encoding="utf-8")

    def __call__(self, text: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {text}"
        print(line, flush=True)
        self.file.write(line + "\n")
        self.file.flush()


def resolve_model(name: str) -> str:
    """The seed AlexNet by its classic zoo name if this cnnprof has it, else torchvision's."""
    from cnnprof.errors import UnknownModelError
    from cnnprof.zoo import resolve

    try:
        resolve(name)
        return name
    except UnknownModelError:
        if name == "alexnet_seed":
            return "alexnet"
        raise


def plain_peak(spec: str, report: Any, device: str, dtype: str) -> int | None:
    """max_memory_allocated of one plain forward (fresh model, same inputs and dtype)."""
    import torch

    from cnnprof.inputs import InputSpec, make_tensors, torch_dtype
    from cnnprof.zoo import resolve

    if not device.startswith("cuda"):
        return None
    entry = resolve(spec)
    with torch.random.fork_rng(devices=[torch.device(device).index or 0]):
        torch.manual_seed(0)
        model, _ = entry.build(device)
    model = model.to(torch_dtype(dtype)).eval()
    specs = [InputSpec(tuple(i.shape[1:]), dtype if i.dtype.startswith(("float", "bfloat"))
                       else i.dtype) for i in report.inputs]
    tensors = make_tensors(specs, report.inputs[0].shape[0], device)
    args, kwargs = entry.arguments(tensors)
    from cnnprof.timing.memory import plain_peak_bytes

    with torch.no_grad():
        model(*args, **kwargs)  # warm-up: cuDNN/cuBLAS handles and workspaces exist after it
        peak = plain_peak_bytes(lambda: model(*args, **kwargs), device)
    return peak


def run_one(cfg: Config, device: str, warmup: int | None, repeats: int | None,
            log: Log) -> tuple[Any, list[Any], int | None, float]:
    import cnnprof
    from cnnprof.timing.api import TimingOptions, time_report
    from cnnprof.timing.checks import all_checks

    started = time.perf_counter()
    report = cnnprof.profile(cfg.model, batch=cfg.batch, dtype=cfg.dtype)
    # the reference first: the graph pass leaves its recorded arguments and pools behind in
    # the caching allocator's statistics, which would inflate a later plain-forward peak
    peak = plain_peak(cfg.model, report, device, cfg.dtype)
    gc.collect()
    options = TimingOptions(device=device, warmup=warmup, repeats=repeats, kernels=True,
                            graphs=cfg.graphs)
    timed = time_report(report, cfg.model, options,
                        command=f"cnnprof {cfg.model} --device {device} --time --kernels "
                                f"--batch {cfg.batch} --dtype {cfg.dtype}"
                                + (" --graphs" if cfg.graphs else ""))
    checks = all_checks(timed, peak)
    elapsed = time.perf_counter() - started
    t = timed.timing.to_dict() if timed.timing is not None else {}  # keys as in the JSON
    log(f"{cfg.model} b{cfg.batch} {cfg.dtype}: e2e {t['end_to_end_median_s'] * 1e3:.3f} ms "
        f"(unhooked {t['end_to_end_unhooked_median_s'] * 1e3:.3f} ms), launch_bound "
        f"{t['launch_bound']}, {elapsed:.1f} s")
    if cfg.graphs:
        e2e_graph = t.get("end_to_end_graph_median_s")
        log(f"    graph mode ({t['graph_method']}): whole-model replay "
            f"{'n/a' if e2e_graph is None else f'{e2e_graph * 1e3:.3f} ms'}, layers sum "
            f"{t['graph_sum_s'] * 1e3:.3f} ms, {len(t['graph_fallbacks'])} fallback(s), "
            f"graph pass {t['graph_seconds']:.1f} s")
    for c in checks:
        log(f"    {c.name}: {_pct(c.value)} (bound {100 * c.bound:.0f}%) "
            f"{_verdict(c.passed)} — {c.detail}")
    return timed, checks, peak, elapsed


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:+.1f}%"


def _verdict(passed: bool | None) -> str:
    return "n/a" if passed is None else ("PASS" if passed else "FAIL")


def environment(device: str) -> dict[str, Any]:
    import torch

    env: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                           "platform": platform.platform()}
    try:
        import torchvision

        env["torchvision"] = torchvision.__version__
    except ImportError:
        pass
    if device.startswith("cuda"):
        from cnnprof.device import parse
        from cnnprof.timing.api import _device_info

        named = parse(device)
        assert named is not None
        info = _device_info(named)
        env.update({k: info.get(k) for k in ("device_name", "cuda", "driver")})
        env["cudnn"] = torch.backends.cudnn.version()
        env["cudnn_allow_tf32"] = torch.backends.cudnn.allow_tf32
        env["matmul_allow_tf32"] = torch.backends.cuda.matmul.allow_tf32
    else:
        env["device_name"] = platform.processor() or platform.machine()
        env["threads"] = torch.get_num_threads()
    return env


def write_markdown(out: Path, env: dict[str, Any], rows: list[dict[str, Any]],
                   argv: list[str], total_s: float) -> None:
    lines = [
        "# GPU timing calibration",
        "",
        "Generated by `benchmarks/gpu_calibrate.py` (cnnprof's own timing pass, checked "
        "against independent references). Bounds: (a) hooked end-to-end at most 10% over "
        "unhooked; (b) leaf self times within 10% of the hooked end-to-end median; "
        "(c) every layer over 50 µs within 10% of the CUDA kernel time torch.profiler "
        "attributes to it; (d) reported peak memory within 5% of "
        "`torch.cuda.max_memory_allocated` of a plain forward. The design promises them at "
        "batch 32; batch 1 rows show how far a launch-bound run drifts (see `launch_bound`).",
        "",
        "Graph mode (`--graphs`) is checked against the same 10% bounds: (a') the "
        "whole-model CUDA graph replayed with its timing marks vs without; (b') executed-leaf "
        "graph times (compensated for the marks) vs the unmarked replay; (c') every layer "
        "over 50 µs, timed by the marks in the replayed graph, vs the same profiler kernel "
        "time (the profiler pass itself is eager, as above). (d) is the same in both modes: "
        "the peak-memory pass runs before any graph exists.",
        "",
        *EXPLANATION,
        "",
        "## Environment",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in env.items()]
    lines += [
        "",
        "## Command",
        "",
        "```",
        "PYTHONPATH=src python " + shlex.join(["benchmarks/gpu_calibrate.py", *argv]),
        "```",
        "",
        f"Total run time {total_s:.0f} s.",
        "",
        "## Results",
        "",
        "### Eager event timing (`--time`)",
        "",
        "| model | batch | dtype | e2e hooked | e2e unhooked | (a) hook overhead | "
        "(b) leaf sum − e2e | (c) worst layer vs kernels | (d) peak mem vs plain | "
        "launch-bound |",
        "| --- | ---: | --- | ---: | ---: | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        checks = {c["name"]: c for c in row["checks"]}

        def cell(name: str, checks: dict[str, Any] = checks) -> str:
            c = checks[name]
            return f"{_pct(c['value'])} {_verdict(c['passed'])}"

        lines.append(
            f"| {row['model']} | {row['batch']} | {row['dtype']} | "
            f"{row['e2e_ms']:.3f} ms | {row['e2e_unhooked_ms']:.3f} ms | "
            f"{cell('hook_overhead')} | {cell('leaf_self_sum')} | {cell('kernel_match')} | "
            f"{cell('peak_memory')} | {row['launch_bound']} |")
    graph_rows = [row for row in rows if row.get("graphs")]
    if graph_rows:
        lines += [
            "",
            "### Graph mode (`--graphs`)",
            "",
            "| model | batch | dtype | e2e eager unhooked | graph replay | marked replay "
            "(variants × marks) | (a') marks' overhead | (b') leaf sum − graph replay | leaves + "
            "parents' own | (c') worst layer vs kernels | method | not capturable | graph "
            "pass |",
            "| --- | ---: | --- | ---: | ---: | ---: | --- | --- | --- | --- | --- | ---: "
            "| ---: |",
        ]
        for row in graph_rows:
            checks = {c["name"]: c for c in row["checks"]}

            def gcell(name: str, checks: dict[str, Any] = checks) -> str:
                c = checks.get(name)
                return "n/a" if c is None else f"{_pct(c['value'])} {_verdict(c['passed'])}"

            def ms(value: float | None) -> str:
                return "n/a" if value is None else f"{value:.3f} ms"

            marked = ms(row.get("e2e_graph_marked_ms"))
            if row.get("graph_marks"):
                marked += f" ({row['graph_variants']} × {max(row['graph_marks'])})"
            whole = row.get("e2e_graph_ms")
            with_parents = (f"{100 * (row['graph_sum_ms'] / whole - 1):+.1f}%" if whole
                            else "n/a")
            lines.append(
                f"| {row['model']} | {row['batch']} | {row['dtype']} | "
                f"{row['e2e_unhooked_ms']:.3f} ms | {ms(row.get('e2e_graph_ms'))} | {marked} | "
                f"{gcell('graph_mark_overhead')} | {gcell('graph_leaf_sum')} | {with_parents} | "
                f"{gcell('kernel_match_graph')} | {row['graph_method']} | "
                f"{row['graph_fallbacks']} | {row['graph_seconds']:.1f} s |")
    skipped = [row for row in rows if not row.get("graphs")]
    if graph_rows and skipped:
        lines += ["", "Graph mode not run for: " + ", ".join(
            f"{r['model']} b{r['batch']} {r['dtype']}" for r in skipped)
            + " (batch-1 graph runs are dropped once the calibration passes "
              f"{GRAPH_DEADLINE_S:.0f} s, to fit one GPU session)."]
    lines += ["", "## Details", ""]
    for row in rows:
        lines.append(f"- **{row['model']} b{row['batch']} {row['dtype']}**: "
                     + "; ".join(f"{c['name']}: {c['detail']}" for c in row["checks"]))
    lines += ["", "Per-configuration commands (each is one `cnnprof` run):", ""]
    lines += [f"- `{row['command']}`" for row in rows]
    (out / "CALIBRATION.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


EXPLANATION = [
    "## Why eager event timing misses (b)/(c) here, and what graph mode measures",
    "",
    "Eager timing brackets each module call with two CUDA events recorded from forward "
    "hooks. An event is a timestamp the GPU writes when the stream reaches it, so the "
    "interval between a layer's two events is everything the GPU did *and everything it "
    "waited for* in between. On a host that queues kernels more slowly than the GPU runs "
    "them (this machine's CPU with cuDNN/cuBLAS at batch 32 in bfloat16, and every model at "
    "batch 1), the GPU drains the queue and idles until the CPU has run the next hooks and "
    "launched the next kernel: those idle gaps lie inside the event brackets. Layer times then "
    "measure host speed, so they exceed the kernel time torch.profiler reports (c), and the "
    "gaps between leaves (parents' Python between child calls) fall outside every leaf while "
    "the hooked end-to-end time keeps them (b). No placement of events fixes this: the gap is "
    "real GPU idle time between two points the hook can mark.",
    "",
    "Graph mode (`--graphs`) removes the host from the measurement. The whole forward is "
    "captured once as a CUDA graph and replayed (one host call queues every kernel), giving "
    "the end-to-end GPU latency without launch overhead. The timing marks are captured into "
    "the graph too: CUDA events created with `external=True` and recorded during the capture "
    "become event-record nodes whose timestamps every replay rewrites, so one capture of the "
    "hooked forward gives every layer's time *in context* (its input fresh from the previous "
    "layer, caches as the forward leaves them), replay after replay. An event-record node is "
    "not free: on this H100 each one delays the work after it by about 2.6 µs "
    "(scripts/graph_event_probe2.py). cnnprof therefore records a mark only where some "
    "operator ran since the previous one (a module's end and the next module's start share "
    "one), and when the marked replay is still more than 5% slower than the unmarked one it "
    "splits the module calls into k contiguous stretches of the forward, one graph each "
    "(up to 16), each carrying about 1/k of the marks; a parent's self time subtracts its "
    "children's times replay by replay. Each variant's mark cost is measured in the same "
    "run ((marked − unmarked replay) / marks) and, since marks are numbered in time "
    "order, the marks a layer's interval crosses are known exactly: that many mark costs "
    "are subtracted from its samples (the JSON keeps `graph_mark_cost_s` per variant). "
    "Where the marked forward cannot be captured, each module call is captured and replayed "
    "in isolation instead (method `isolated`: warm caches and a replay launch per call, so "
    "it can differ from in-context times by several percent), and a call that cannot be "
    "captured at all keeps its "
    "eager event time (method `events`).",
    "",
    "Launch-bound caveat at batch 1: graph times at batch 1 are what the GPU needs, but an "
    "eager forward on this host cannot run that fast: the unhooked eager end-to-end time is "
    "set by how fast the CPU queues kernels, and graph replay (or `torch.compile` with CUDA "
    "graphs) is what recovers the difference. Per-layer eager times at batch 1 are mostly host "
    "time and should not be read as layer cost; the hook-overhead figure (a) is an eager "
    "measurement in both modes and is reported as measured.",
]


def render_outputs(out: Path, name: str, report: Any) -> list[Path]:
    from cnnprof.render.formats import RenderOptions, render

    stem = f"{name}_b{report.timing.batch}_{report.timing.dtype}"
    written = []
    for suffix, text in (
        (".json", report.to_json() + "\n"),
        (".txt", render(report, "table", RenderOptions(columns="time", width=180))),
        ("_kernels.txt", render(report, "table", RenderOptions(columns="kernels", width=200))),
        ("_roofline.txt", render(report, "table", RenderOptions(columns="roofline",
                                                                width=180))),
        (".html", render(report, "html", RenderOptions(columns="time"))),
    ):
        path = out / f"{stem}{suffix}"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def single(args: argparse.Namespace) -> int:
    """One configuration (run in its own process by ``main``): writes its row as JSON."""
    out = Path(args.out)
    log = Log(out / ".single.log")
    spec, batch_text, dtype, graph_text = args.single.split(":")
    warmup = None if args.warmup is None or args.warmup < 0 else args.warmup
    repeats = None if args.repeats is None or args.repeats < 0 else args.repeats
    cfg = Config(spec, int(batch_text), dtype, graph_text == "graphs")
    timed, checks, peak, elapsed = run_one(cfg, args.device, warmup, repeats, log)
    t = timed.timing.to_dict()  # the report's JSON keys
    row = {
        "model": spec, "batch": cfg.batch, "dtype": dtype,
        "e2e_ms": t["end_to_end_median_s"] * 1e3,
        "e2e_unhooked_ms": t["end_to_end_unhooked_median_s"] * 1e3,
        "hook_overhead": t["hook_overhead"],
        "leaf_self_sum_ms": t["leaf_self_sum_s"] * 1e3,
        "peak_memory_bytes": t["peak_memory_bytes"],
        "plain_peak_bytes": peak,
        "launch_bound": t["launch_bound"],
        "host_unhooked_ms": (t["host_unhooked_median_s"] or 0) * 1e3,
        "seconds": elapsed,
        "command": t.get("command", ""),
        "checks": [c.to_dict() for c in checks],
        "graphs": cfg.graphs,
    }
    if cfg.graphs:
        e2e_graph = t.get("end_to_end_graph_median_s")
        row.update({
            "e2e_graph_ms": None if e2e_graph is None else e2e_graph * 1e3,
            "graph_method": t["graph_method"],
            "e2e_graph_marked_ms": (t["end_to_end_graph_marked_median_s"] * 1e3
                                    if t.get("end_to_end_graph_marked_median_s") else None),
            "graph_variants": t.get("graph_variants"),
            "graph_marks": t.get("graph_marks"),
            "graph_dense_mark_overhead": t.get("graph_dense_mark_overhead"),
            "graph_sum_ms": t["graph_sum_s"] * 1e3,
            "graph_leaf_sum_ms": t["graph_leaf_sum_s"] * 1e3,
            "graph_parent_self_sum_ms": t["graph_parent_self_sum_s"] * 1e3,
            "graph_marks_failure": t.get("graph_marks_failure"),
            "graph_fallbacks": len(t["graph_fallbacks"]),
            "graph_fallback_layers": sorted(t["graph_fallbacks"]),
            "graph_seconds": t["graph_seconds"],
        })
    if args.render:
        name = "alexnet_seed" if spec == "alexnet" else spec
        for path in render_outputs(out, name, timed):
            log(f"    wrote {path}")
    (out / f".row_{spec}_{cfg.batch}_{dtype}.json").write_text(json.dumps(row),
                                                                 encoding="utf-8")
    log.file.close()
    (out / ".single.log").unlink(missing_ok=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="reports/gpu", help="output folder")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--quick", action="store_true", help="small models, few repeats")
    parser.add_argument("--models", default=None, help="comma list (default: the full set)")
    parser.add_argument("--batches", default=None, help="comma list (default 1,32)")
    parser.add_argument("--dtypes", default=None, help="comma list (default float32,bfloat16)")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--no-graphs", action="store_true",
                        help="skip the graph-replay mode (eager rows only)")
    parser.add_argument("--single", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--render", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.single:
        return single(args)
    raw_argv = list(sys.argv[1:] if argv is None else argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = Log(out / "calibrate.log")
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        log("no CUDA GPU here: run with --device cpu --quick for a smoke test")
        return 2
    models = tuple(args.models.split(",")) if args.models else (
        QUICK_MODELS if args.quick else FULL_MODELS)
    batches = tuple(int(b) for b in args.batches.split(",")) if args.batches else (
        QUICK_BATCHES if args.quick else FULL_BATCHES)
    dtypes = tuple(args.dtypes.split(",")) if args.dtypes else (
        QUICK_DTYPES if args.quick else FULL_DTYPES)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else None)
    repeats = args.repeats if args.repeats is not None else (3 if args.quick else None)

    env = environment(args.device)
    log(f"environment: {json.dumps(env)}")
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    for name in models:
        spec = resolve_model(name)
        for dtype in dtypes:
            for batch in batches:
                # one process per configuration: torch.profiler (the --kernels pass) leaves
                # CUPTI callbacks behind that slow every later kernel launch in the process
                row_file = out / f".row_{spec}_{batch}_{dtype}.json"
                # graph mode needs CUDA; small batches drop it once time runs short
                graphs = (args.device.startswith("cuda") and not args.no_graphs
                          and (batch >= GRAPH_SMALL_BATCH
                               or time.perf_counter() - started < GRAPH_DEADLINE_S))
                mode = "graphs" if graphs else "eager"
                cmd = [sys.executable, str(Path(__file__).resolve()), "--single",
                       f"{spec}:{batch}:{dtype}:{mode}", "--out", str(out),
                       "--device", args.device,
                       "--warmup", str(-1 if warmup is None else warmup),
                       "--repeats", str(-1 if repeats is None else repeats)]
                if name in RENDERED and batch == max(batches):
                    cmd.append("--render")
                import subprocess

                try:
                    proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                                          timeout=CONFIG_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    log(f"{spec} b{batch} {dtype}: FAILED (over {CONFIG_TIMEOUT_S} s)")
                    continue
                for line in proc.stdout.splitlines():
                    log.file.write(line + "\n")
                    print(line, flush=True)
                if proc.returncode != 0 or not row_file.exists():
                    tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
                    log(f"{spec} b{batch} {dtype}: FAILED (exit {proc.returncode}): {tail}")
                    continue
                rows.append(json.loads(row_file.read_text(encoding="utf-8")))
                row_file.unlink()
    total = time.perf_counter() - started
    (out / "calibration.json").write_text(
        json.dumps({"environment": env, "argv": raw_argv, "rows": rows, "seconds": total},
                   indent=2) + "\n", encoding="utf-8")
    write_markdown(out, env, rows, raw_argv, total)
    log(f"wrote {out / 'CALIBRATION.md'} ({len(rows)} configurations, {total:.0f} s)")
    failed = sum(1 for r in rows for c in r["checks"] if c["passed"] is False)
    log(f"{failed} check(s) failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
