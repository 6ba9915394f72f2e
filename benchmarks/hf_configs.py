"""Hugging Face configs of 7B- and 70B-class causal LMs count from the CLI in seconds.

Writes each ``config.json`` itself (the shapes of Llama-2-7B and of a 70B-class model with
grouped-query attention: 80 layers, d_model 8192, 8 KV heads; nothing is downloaded), runs
whole ``cnnprof hf:DIR`` processes, measures each one's wall time and peak RSS (``os.wait4``,
as benchmarks/giant.py), checks params and MACs against formulas written out here, and writes
``benchmarks/results/hf_configs.md``::

    python benchmarks/hf_configs.py            # writes benchmarks/results/hf_configs.md
    python benchmarks/hf_configs.py --stdout   # prints it instead
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
RESULTS = HERE / "results" / "hf_configs.md"
LIMIT_S = 10.0
LIMIT_RSS = 1.5e9
TOKENS = 128  # the prefill counted
CONTEXT = 4096  # the KV cache of the decode step



def measure(argv: list[str]) -> tuple[float, float, int, int]:
    """Wall and CPU seconds (user + system), peak RSS (bytes) of one child process, and its
    exit status. CPU time is what a loaded machine inflates least."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    rss = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)  # Linux: KiB
    return wall, usage.ru_utime + usage.ru_stime, rss, os.waitstatus_to_exitcode(status)


@dataclass(frozen=True)
class Shape:
    name: str
    layers: int
    d: int
    ff: int
    heads: int
    kv_heads: int
    vocab: int = 32000

    @property
    def head_dim(self) -> int:
        return self.d // self.heads

    def config(self) -> dict[str, Any]:
        """A transformers config.json as the Hub has it for Llama-2."""
        return {
            "architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "hidden_size": self.d, "intermediate_size": self.ff,
            "num_hidden_layers": self.layers, "num_attention_heads": self.heads,
            "num_key_value_heads": self.kv_heads, "vocab_size": self.vocab,
            "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "hidden_act": "silu",
            "tie_word_embeddings": False, "torch_dtype": "float16", "bos_token_id": 1,
            "eos_token_id": 2,
        }

    def params(self) -> int:
        kv = self.kv_heads * self.head_dim
        per_layer = (self.d * self.d          # q
                     + 2 * self.d * kv         # k, v
                     + self.d * self.d         # o
                     + 3 * self.d * self.ff    # gate, up, down
                     + 2 * self.d)             # two RMSNorm weights
        return 2 * self.vocab * self.d + self.layers * per_layer + self.d  # + embed, head, norm

    def macs(self, queries: int, keys: int) -> int:
        """``queries`` new tokens attending to ``keys`` tokens (prefill: both T; the full T×T
        score matrix, as SDPA computes it; decode: 1 and N + 1)."""
        kv = self.kv_heads * self.head_dim
        projections = queries * (2 * self.d * self.d + 2 * self.d * kv)
        attention = 2 * self.heads * queries * keys * self.head_dim  # q·kᵀ and p·v
        mlp = queries * 3 * self.d * self.ff
        return self.layers * (projections + attention + mlp) + queries * self.d * self.vocab


LLAMA2_7B = Shape("Llama-2-7B shape", layers=32, d=4096, ff=11008, heads=32, kv_heads=32)
CLASS_70B = Shape("70B class (GQA)", layers=80, d=8192, ff=28672, heads=64, kv_heads=8)


@dataclass(frozen=True)
class Case:
    title: str
    shape: Shape
    argv: list[str]
    params: int
    macs: int
    kv_cache_bytes: int | None = None


def cases() -> list[Case]:
    out = []
    for shape in (LLAMA2_7B, CLASS_70B):
        out.append(Case(f"{shape.name}, prefill {TOKENS} tokens", shape,
                        ["--input", f"input_ids={TOKENS}:int64"], shape.params(),
                        shape.macs(TOKENS, TOKENS)))
    shape = CLASS_70B
    cache = 2 * shape.layers * CONTEXT * shape.kv_heads * shape.head_dim * 2  # bfloat16
    out.append(Case(f"{shape.name}, one decode step, {CONTEXT} cached tokens, bfloat16", shape,
                    ["--decode", str(CONTEXT), "--dtype", "bfloat16"], shape.params(),
                    shape.macs(1, CONTEXT + 1), cache))
    return out


@dataclass(frozen=True)
class Outcome:
    case: Case
    wall_s: float
    cpu_s: float
    peak_rss: int
    data: dict[str, Any]
    #: in a separate process: seconds of imports (torch, transformers, cnnprof and the
    #: model's transformers modules) and of the count itself (resolve, build, trace)
    imports_s: float
    count_s: float

    @property
    def exact(self) -> bool:
        totals = self.data["totals"]
        cache = self.data.get("generation", {}).get("kv_cache_bytes")
        return (totals["params"] == self.case.params and totals["macs"] == self.case.macs
                and cache == self.case.kv_cache_bytes)

    @property
    def ok(self) -> bool:
        return self.exact and self.wall_s < LIMIT_S and self.peak_rss < LIMIT_RSS


def run_case(case: Case, folder: Path) -> Outcome:
    model_dir = folder / case.shape.name.split(" ")[0].lower().replace("-", "")
    model_dir.mkdir(exist_ok=True)
    (model_dir / "config.json").write_text(json.dumps(case.shape.config(), indent=2))
    out = folder / "report.json"
    argv = [sys.executable, "-m", "cnnprof", f"hf:{model_dir}", *case.argv,
            "--format", "json", "-o", str(out)]
    wall, cpu, rss, code = measure(argv)
    if code != 0:
        raise SystemExit(f"{' '.join(argv)} exited {code}")
    imports, count = split_time(f"hf:{model_dir}", case.argv)
    return Outcome(case, wall, cpu, rss, json.loads(out.read_text()), imports, count)


_SPLIT = """
import json, sys, time
start = time.perf_counter()
import torch, transformers
from cnnprof.api import profile
from cnnprof.zoo import resolve
from cnnprof.zoo.hf import for_decode
spec, decode = sys.argv[1], '--decode' in sys.argv
resolve(spec, for_decode({}) if decode else {}).build('meta')  # imports the model's modules
imported = time.perf_counter()
if decode:
    profile(spec, decode=int(sys.argv[sys.argv.index('--decode') + 1]), dtype='bfloat16')
else:
    profile(spec, [sys.argv[sys.argv.index('--input') + 1]])
print(json.dumps([imported - start, time.perf_counter() - imported]))
"""


def split_time(spec: str, argv: list[str]) -> tuple[float, float]:
    """Wall seconds of the imports and of the count, measured inside one process."""
    out = subprocess.run([sys.executable, "-c", _SPLIT, spec, *argv], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    imports, count = json.loads(out.strip().splitlines()[-1])
    return float(imports), float(count)


def _machine() -> str:
    import torch
    import transformers

    import cnnprof

    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
    cpu = names[0] if names else cpu
    return (f"- machine: {cpu}, {os.cpu_count()} CPU(s); {platform.system()} "
            f"{platform.release()}\n- Python {platform.python_version()}, torch "
            f"{torch.__version__}, transformers {transformers.__version__}, cnnprof "
            f"{cnnprof.__version__}\n- load average when written: {os.getloadavg()[0]:.1f} "
            "(a shared machine inflates wall times; peak RSS does not change)")


def floor() -> tuple[float, float, int]:
    wall, cpu, rss, _ = measure([sys.executable, "-c", "import torch, transformers"])
    return wall, cpu, rss


def report(outcomes: list[Outcome], floor_s: tuple[float, float], floor_rss: int) -> str:
    lines = [
        "# Hugging Face configs of 7B- and 70B-class LLMs, counted from the CLI",
        "",
        "Whole `cnnprof hf:DIR` runs, one process each, on a `config.json` the benchmark "
        "writes (nothing downloaded); wall time and peak RSS from `os.wait4` on the child. "
        "Params and MACs are compared with formulas in `benchmarks/hf_configs.py`. "
        "Regenerate with `python benchmarks/hf_configs.py`.",
        "",
        _machine(),
        f"- floor: `python -c \"import torch, transformers\"` takes {floor_s[0]:.1f} s "
        f"({floor_s[1]:.1f} s of CPU) and {floor_rss / 1e6:.0f} MB peak RSS",
        "",
        f"Targets: under {LIMIT_S:.0f} s and {LIMIT_RSS / 1e9:.1f} GB peak RSS, exact params "
        "and MACs (and KV-cache bytes).",
        "",
        "| model | params (fp32 size) | MACs | KV cache | exact | wall | CPU | peak RSS | ok "
        "| imports / count (in process) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        t = o.data["totals"]
        gen = o.data.get("generation")
        cache = f"{gen['kv_cache_bytes']:,} B" if gen else "—"
        lines.append(
            f"| {o.case.title} | {t['params']:,} ({t['params'] * 4 / 1e9:.1f} GB) | "
            f"{t['macs']:,} | {cache} | {'yes' if o.exact else 'NO'} | {o.wall_s:.1f} s | "
            f"{o.cpu_s:.1f} s | {o.peak_rss / 1e6:.0f} MB | {'yes' if o.ok else 'NO'} | "
            f"{o.imports_s:.1f} s / {o.count_s:.2f} s |")
    lines += [
        "",
        "The last column splits one process's wall time: importing torch, transformers, "
        "cnnprof and the model's transformers modules, then the count itself (resolve the "
        "config, build on meta, one observed forward). The count is what cnnprof adds; the "
        "imports are the floor of any tool that builds a transformers model.",
        "",
        "Commands (DIR holds the config.json):", ""]
    lines += [f"    cnnprof hf:DIR {' '.join(o.case.argv)}" for o in outcomes]
    decode = next((o for o in outcomes if o.data.get("generation")), None)
    if decode is not None:
        gen = decode.data["generation"]
        lines += [
            "",
            f"The decode step reads {gen['weight_bytes'] / 1e9:.1f} GB of bfloat16 weights "
            f"and {gen['kv_cache_bytes'] / 1e9:.2f} GB of KV cache: "
            f"{gen['step_read_bytes'] / 1e9:.1f} GB per generated token, so a GPU reading "
            f"4.8 TB/s (an H200's HBM3e) runs at most "
            f"{4.8e12 / gen['step_read_bytes']:.0f} steps per second at batch 1.",
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stdout", action="store_true", help="print instead of writing")
    args = parser.parse_args()
    floor_wall, floor_cpu, floor_rss = floor()
    with tempfile.TemporaryDirectory() as tmp:
        outcomes = [run_case(case, Path(tmp)) for case in cases()]
    text = report(outcomes, (floor_wall, floor_cpu), floor_rss)
    if args.stdout:
        sys.stdout.write(text)
    else:
        RESULTS.write_text(text, encoding="utf-8")
        print(f"wrote {RESULTS}")
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
