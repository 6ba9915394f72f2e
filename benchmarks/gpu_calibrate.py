"""Calibrate cnnprof's timing against independent references on a real GPU.

For each model × batch × dtype it measures
  (a) hooked vs unhooked end-to-end median (the hooks' own overhead),
  (b) the sum of leaf self times vs the hooked end-to-end median,
  (c) each layer's time vs the kernel time torch.profiler attributes to the same module,
  (d) the reported peak memory vs torch.cuda.max_memory_allocated of a plain forward,
and writes CALIBRATION.md (pass/fail per bound), calibration.json, a log, and JSON reports
plus rendered tables (per-layer times and a roofline view) for resnet50, vit_b_16 and the
seed AlexNet.

    PYTHONPATH=src python benchmarks/gpu_calibrate.py --out reports/gpu
    PYTHONPATH=src python benchmarks/gpu_calibrate.py --device cpu --quick --out /tmp/cal

Needs only torch, torchvision, rich and typer (no pytest, thop, fvcore or torchstat).
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


@dataclass
class Config:
    model: str
    batch: int
    dtype: str


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
    from cnnprof.timing.api import time_report
    from cnnprof.timing.checks import all_checks

    started = time.perf_counter()
    report = cnnprof.profile(cfg.model, batch=cfg.batch, dtype=cfg.dtype)
    timed = time_report(report, cfg.model, device=device, warmup=warmup, repeats=repeats,
                        kernels=True,
                        command=f"cnnprof {cfg.model} --device {device} --time --kernels "
                                f"--batch {cfg.batch} --dtype {cfg.dtype}")
    gc.collect()
    peak = plain_peak(cfg.model, report, device, cfg.dtype)
    checks = all_checks(timed, peak)
    elapsed = time.perf_counter() - started
    t = timed.timing or {}
    log(f"{cfg.model} b{cfg.batch} {cfg.dtype}: e2e {t['end_to_end_median_s'] * 1e3:.3f} ms "
        f"(unhooked {t['end_to_end_unhooked_median_s'] * 1e3:.3f} ms), launch_bound "
        f"{t['launch_bound']}, {elapsed:.1f} s")
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
        from cnnprof.timing.api import _device_info

        info = _device_info(device)
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
    lines += ["", "## Details", ""]
    for row in rows:
        lines.append(f"- **{row['model']} b{row['batch']} {row['dtype']}**: "
                     + "; ".join(f"{c['name']}: {c['detail']}" for c in row["checks"]))
    lines += ["", "Per-configuration commands (each is one `cnnprof` run):", ""]
    lines += [f"- `{row['command']}`" for row in rows]
    (out / "CALIBRATION.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def render_outputs(out: Path, name: str, report: Any) -> list[Path]:
    from cnnprof.render.formats import RenderOptions, render

    stem = f"{name}_b{report.timing['batch']}_{report.timing['dtype']}"
    written = []
    for suffix, text in (
        (".json", report.to_json() + "\n"),
        (".txt", render(report, "table", RenderOptions(columns="time", width=180))),
        ("_kernels.txt", render(report, "table", RenderOptions(columns="kernels", width=200))),
        ("_roofline.txt", render(report, "table", RenderOptions(columns="roofline",
                                                                width=180))),
    ):
        path = out / f"{stem}{suffix}"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def single(args: argparse.Namespace) -> int:
    """One configuration (run in its own process by ``main``): writes its row as JSON."""
    out = Path(args.out)
    log = Log(out / ".single.log")
    spec, batch_text, dtype = args.single.split(":")
    warmup = None if args.warmup is None or args.warmup < 0 else args.warmup
    repeats = None if args.repeats is None or args.repeats < 0 else args.repeats
    cfg = Config(spec, int(batch_text), dtype)
    timed, checks, peak, elapsed = run_one(cfg, args.device, warmup, repeats, log)
    t = timed.timing
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
    }
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
                cmd = [sys.executable, str(Path(__file__).resolve()), "--single",
                       f"{spec}:{batch}:{dtype}", "--out", str(out), "--device", args.device,
                       "--warmup", str(-1 if warmup is None else warmup),
                       "--repeats", str(-1 if repeats is None else repeats)]
                if name in RENDERED and batch == max(batches):
                    cmd.append("--render")
                import subprocess

                proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
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
