"""Giant models count on the meta device: no parameter memory, seconds of wall time.

Runs whole ``cnnprof`` CLI processes and measures each one's wall time and peak RSS
(``os.wait4`` returns the child's own resource usage), checks params and MACs against
numbers computed here by hand, and writes ``benchmarks/results/giant.md``::

    python benchmarks/giant.py            # writes benchmarks/results/giant.md
    python benchmarks/giant.py --stdout   # prints it instead

Models: torchvision's ViT-H/14 at 518x518 (633 M params), RegNetY-128GF at 384x384 (645 M;
its constructor cannot run under the meta device, cnnprof builds it with parameters on
meta), and a 51.5 B-parameter ``nn.TransformerEncoder`` from a user file
(``benchmarks/models/giant_transformer.py``; 206 GB in fp32).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "giant.md"
LIMIT_S = 10.0
LIMIT_RSS = 1.5e9

sys.path.insert(0, str(HERE / "models"))
import giant_transformer as gt  # noqa: E402


@dataclass(frozen=True)
class Case:
    title: str
    argv: list[str]
    params: int
    macs: int
    how: str


def vit_h_14_518() -> Case:
    """ViT-H/14 at 518: 37x37 = 1369 patches + the class token = 1370 tokens."""
    d, layers, mlp, heads, patch, classes = 1280, 32, 5120, 16, 14, 1000
    patches = (518 // patch) ** 2
    tokens = patches + 1
    # two layer norms, qkv in-projection, out-projection, MLP (two linears)
    per_layer = 2 * (2 * d) + (3 * d * d + 3 * d) + (d * d + d) + (d * mlp + mlp) + (mlp * d + d)
    params = (3 * patch * patch * d + d) + d + tokens * d + layers * per_layer + 2 * d + (
        d * classes + classes)
    # patch conv; per layer: qkv, q·kᵀ and attn·v (2·T²·d over all heads), out proj, MLP;
    # the head sees only the class token
    assert d % heads == 0
    per_layer_macs = tokens * d * 3 * d + 2 * tokens * tokens * d + tokens * d * d + (
        2 * tokens * d * mlp)
    macs = patches * 3 * patch * patch * d + layers * per_layer_macs + d * classes
    return Case("torchvision vit_h_14, 3x518x518", ["vit_h_14", "--input", "3x518x518"],
                params, macs, "analytic (equals the SWAG_E2E_V1 weights' num_params and _ops)")


def regnet_y_128gf_384() -> Case:
    import torchvision

    weights = torchvision.models.RegNet_Y_128GF_Weights.IMAGENET1K_SWAG_E2E_V1
    return Case("torchvision regnet_y_128gf, 3x384x384",
                ["regnet_y_128gf", "--input", "3x384x384"], int(weights.meta["num_params"]),
                round(float(weights.meta["_ops"]) * 1e9),
                "torchvision weights metadata (_ops is GMACs to 3 decimals)")


def giant_encoder() -> Case:
    d, f, layers, tokens = gt.D_MODEL, gt.FEEDFORWARD, gt.LAYERS, 128
    per_layer = (3 * d * d + 3 * d) + (d * d + d) + (d * f + f) + (f * d + d) + 4 * d
    per_layer_macs = tokens * d * 3 * d + 2 * tokens * tokens * d + tokens * d * d + (
        2 * tokens * d * f)
    spec = f"{(HERE / 'models' / 'giant_transformer.py').relative_to(ROOT)}:giant_transformer"
    return Case(f"user file: {layers}-layer TransformerEncoder, d_model {d}, ffn {f}, "
                f"{tokens} tokens", [spec, "--input", f"{tokens}x{d}"], layers * per_layer,
                layers * per_layer_macs, "analytic")


@dataclass(frozen=True)
class Outcome:
    case: Case
    wall_s: float
    peak_rss: int
    params: int
    macs: int

    @property
    def ok(self) -> bool:
        return (self.params == self.case.params and self.case_macs_ok
                and self.wall_s < LIMIT_S and self.peak_rss < LIMIT_RSS)

    @property
    def case_macs_ok(self) -> bool:
        if self.case.how.startswith("torchvision"):
            return round(self.macs / 1e9, 3) == round(self.case.macs / 1e9, 3)
        return self.macs == self.case.macs


def measure(argv: list[str]) -> tuple[float, int, int]:
    """Wall seconds and peak RSS (bytes) of one child process, and its exit status."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    rss = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)  # Linux: KiB
    return wall, rss, proc.returncode


def run_case(case: Case) -> Outcome:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        argv = [sys.executable, "-m", "cnnprof", *case.argv, "--format", "json", "-o", str(out)]
        wall, rss, code = measure(argv)
        if code != 0:
            raise SystemExit(f"{' '.join(argv)} exited {code}")
        totals = json.loads(out.read_text())["totals"]
    return Outcome(case, wall, rss, int(totals["params"]), int(totals["macs"]))


# -- the peers on the same models --------------------------------------------------------------
# No peer builds a model on meta for the user, and none of these fits a 24 GB machine in fp32 at
# full size except by luck, so each peer gets the model cnnprof would count: built on the meta
# device, with a meta input. Each runs in its own process under an address-space cap, so a
# peer that tries to materialise 206 GB fails instead of taking the machine down.

PEER_TOOLS = ("thop", "fvcore", "ptflops (pytorch)", "ptflops (aten)", "torchinfo",
              "FlopCounterMode")
PEER_TIMEOUT_S = 180
PEER_MEMORY_CAP = 8 * 1024**3


def build_on_meta(key: str) -> tuple[Any, Any]:
    """(model, input) on the meta device for a case key."""
    import torch

    if key == "vit_h_14":
        import torchvision

        with torch.device("meta"):
            model = torchvision.models.vit_h_14(weights=None, image_size=518)
        x = torch.empty(1, 3, 518, 518, device="meta")
    elif key == "regnet_y_128gf":
        import torchvision

        from cnnprof.zoo.base import parameters_on_meta

        with parameters_on_meta():
            model = torchvision.models.regnet_y_128gf(weights=None)
        model = model.to("meta")
        x = torch.empty(1, 3, 384, 384, device="meta")
    else:
        with torch.device("meta"):
            model = gt.giant_transformer()
        x = torch.empty(1, 128, gt.D_MODEL, device="meta")
    return model.eval(), x


def run_peer(tool: str, key: str) -> dict[str, Any]:
    """One peer on one meta-built model: its MACs and params (None where it reports none)."""
    import contextlib
    import io
    import warnings

    import torch

    model, x = build_on_meta(key)
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), \
            warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if tool == "thop":
            import thop

            macs, params = thop.profile(model, inputs=(x,), verbose=False)
        elif tool == "fvcore":
            from fvcore.nn import FlopCountAnalysis, parameter_count

            analysis = FlopCountAnalysis(model, x)
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            macs, params = analysis.total(), parameter_count(model)[""]
        elif tool.startswith("ptflops"):
            from ptflops import get_model_complexity_info

            backend = "aten" if "aten" in tool else "pytorch"
            macs, params = get_model_complexity_info(
                model, tuple(x.shape[1:]), as_strings=False, print_per_layer_stat=False,
                input_constructor=lambda _res: x, backend=backend)
            if macs is None:
                raise RuntimeError("returned (None, None): it swallows its exception")
        elif tool == "torchinfo":
            import torchinfo

            stats = torchinfo.summary(model, input_data=x, device="meta", verbose=0)
            macs, params = stats.total_mult_adds, stats.total_params
        elif tool == "FlopCounterMode":
            from torch.utils.flop_counter import FlopCounterMode

            with FlopCounterMode(display=False) as counter:
                model(x)
            macs, params = counter.get_total_flops() / 2, None  # 2 FLOPs per MAC
        else:
            raise SystemExit(f"unknown tool {tool!r}")
    return {"macs": float(macs), "params": None if params is None else int(params)}


@dataclass(frozen=True)
class PeerOutcome:
    tool: str
    macs: float | None = None
    params: int | None = None
    error: str | None = None


def peer_outcome(tool: str, key: str) -> PeerOutcome:
    import resource

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (PEER_MEMORY_CAP, PEER_MEMORY_CAP))

    argv = [sys.executable, str(Path(__file__).resolve()), "--peer", tool, "--case", key]
    try:
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True,
                              timeout=PEER_TIMEOUT_S, preexec_fn=cap)
    except subprocess.TimeoutExpired:
        return PeerOutcome(tool, error=f"no result in {PEER_TIMEOUT_S} s")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        return PeerOutcome(tool, error=tail[:120])
    data = json.loads(lines[-1])
    return PeerOutcome(tool, data["macs"], data["params"])


def _verdict(value: float | None, expected: int, *, rounded: bool) -> str:
    if value is None:
        return "—"
    ok = (round(value / 1e9, 3) == round(expected / 1e9, 3)) if rounded else (
        abs(value - expected) <= 1e-9 * expected)
    if ok:
        return f"{value:,.0f} ✓"
    return f"{value:,.0f} ({(value / expected - 1) * 100:+.2f}%)"


def render_peers(rows: list[tuple[Case, str, list[PeerOutcome]]]) -> list[str]:
    lines = [
        "",
        "## The peers on the same models",
        "",
        "No peer builds a model on the meta device for its user; each was handed the model "
        "cnnprof counts, built on meta, with a meta input (one process per peer, address "
        f"space capped at {PEER_MEMORY_CAP / 1024**3:.0f} GiB, {PEER_TIMEOUT_S} s limit). "
        "✓ = equal to the expected value (for regnet: at torchvision's 3 decimals of GMACs); "
        "FlopCounterMode's FLOPs are halved to MACs; it reports no parameter count.",
        "",
    ]
    for case, _key, outcomes in rows:
        lines += [f"### {case.title}", "",
                  f"Expected: {case.params:,} params, {case.macs:,} MACs.", "",
                  "| tool | MACs | params |", "|---|---|---|"]
        rounded = case.how.startswith("torchvision")
        for o in outcomes:
            if o.error is not None:
                lines.append(f"| {o.tool} | fails: {o.error} | — |")
                continue
            params = "—" if o.params is None else (
                f"{o.params:,} ✓" if o.params == case.params else
                f"{o.params:,} ({(o.params / case.params - 1) * 100:+.2f}%)")
            lines.append(f"| {o.tool} | {_verdict(o.macs, case.macs, rounded=rounded)} | "
                         f"{params} |")
        lines.append("")
    return lines


def machine() -> list[str]:
    import torch
    import torchvision

    import cnnprof

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return [
        f"- machine: {cpu}, {os.cpu_count()} CPU(s){memory}; {platform.system()} "
        f"{platform.release()}",
        f"- Python {platform.python_version()}, torch {torch.__version__}, torchvision "
        f"{torchvision.__version__}, cnnprof {cnnprof.__version__}",
        f"- load average when written: {os.getloadavg()[0]:.1f} (a shared machine inflates "
        "wall times; peak RSS does not change)",
    ]


def baseline() -> tuple[float, int]:
    """What importing torch and torchvision alone costs: the floor under every run."""
    wall, rss, _ = measure([sys.executable, "-c", "import torch, torchvision"])
    return wall, rss


def render(outcomes: list[Outcome], floor: tuple[float, int]) -> str:
    lines = [
        "# Giant models on the meta device",
        "",
        "Whole `cnnprof` CLI runs (`python -m cnnprof MODEL --input ... --format json`), one",
        "process each; wall time and peak RSS from `os.wait4` on the child. Regenerate with",
        "`python benchmarks/giant.py`.",
        "",
        *machine(),
        f"- floor: `python -c \"import torch, torchvision\"` takes {floor[0]:.1f} s and "
        f"{floor[1] / 1e6:.0f} MB peak RSS",
        "",
        f"Targets: under {LIMIT_S:.0f} s and {LIMIT_RSS / 1e9:.1f} GB peak RSS, exact params "
        "and MACs.",
        "",
        "| model | params (fp32 size) | MACs | expected from | wall | peak RSS | ok |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        size = f"{o.params * 4 / 1e9:.1f} GB"
        params = f"{o.params:,}"
        if o.params != o.case.params:
            params += f" (expected {o.case.params:,})"
        macs = f"{o.macs:,}" + ("" if o.case_macs_ok else f" (expected {o.case.macs:,})")
        lines.append(
            f"| {o.case.title} | {params} ({size}) | {macs} | {o.case.how} | "
            f"{o.wall_s:.1f} s | {o.peak_rss / 1e6:.0f} MB | {'yes' if o.ok else 'NO'} |"
        )
    lines += [
        "",
        "Commands:",
        "",
        *(f"    cnnprof {' '.join(o.case.argv)}" for o in outcomes),
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stdout", action="store_true", help="print instead of writing")
    parser.add_argument("--no-peers", action="store_true", help="skip the peers' section")
    parser.add_argument("--peer", help=argparse.SUPPRESS)  # child mode: one peer, one model
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer:
        print(json.dumps(run_peer(args.peer, args.case)))
        return 0
    floor = baseline()
    cases = {"vit_h_14": vit_h_14_518(), "regnet_y_128gf": regnet_y_128gf_384(),
             "giant_transformer": giant_encoder()}
    outcomes = [run_case(c) for c in cases.values()]
    text = render(outcomes, floor)
    if not args.no_peers:
        rows = [(case, key, [peer_outcome(tool, key) for tool in PEER_TOOLS])
                for key, case in cases.items()]
        text += "\n".join(render_peers(rows)) + "\n"
    if args.stdout:
        sys.stdout.write(text)
    else:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text, encoding="utf-8")
        print(f"wrote {RESULTS.relative_to(ROOT)}")
        sys.stdout.write(text)
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
