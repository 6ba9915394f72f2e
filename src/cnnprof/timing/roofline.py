"""Roofline: achieved FLOP/s and bytes/s per layer against the device's peaks.

Peaks are the vendors' published dense figures (no 2:4 sparsity), per math mode:
``fp32`` (CUDA cores), ``tf32`` (tensor cores, used for float32 when PyTorch allows TF32
for that op family), ``half`` (float16/bfloat16 tensor cores with float32 accumulation).
``--peak-tflops`` / ``--peak-gbps`` override the table (and make the roofline possible on
devices it does not know, the CPU included).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cnnprof.measurements import Roofline


@dataclass(frozen=True)
class DevicePeaks:
    name: str
    fp32_tflops: float
    tf32_tflops: float | None
    half_tflops: float | None
    bf16: bool
    gbps: float


#: Substring (of the lowercased torch.cuda.get_device_name) → peaks. First match wins, so
#: the more specific names come first ("h100 pcie" before "h100", "a100" before "a10").
KNOWN_GPUS: tuple[tuple[str, DevicePeaks], ...] = (
    ("h200", DevicePeaks("NVIDIA H200 SXM", 67.0, 494.7, 989.4, True, 4800.0)),
    ("h100 nvl", DevicePeaks("NVIDIA H100 NVL", 60.0, 417.5, 835.5, True, 3900.0)),
    ("h100 pcie", DevicePeaks("NVIDIA H100 PCIe", 51.2, 378.0, 756.0, True, 2000.0)),
    ("h100", DevicePeaks("NVIDIA H100 SXM", 67.0, 494.7, 989.4, True, 3350.0)),
    ("gh200", DevicePeaks("NVIDIA GH200", 67.0, 494.7, 989.4, True, 4000.0)),
    ("a100-sxm4-40gb", DevicePeaks("NVIDIA A100 SXM 40GB", 19.5, 156.0, 312.0, True, 1555.0)),
    ("a100-pcie-40gb", DevicePeaks("NVIDIA A100 PCIe 40GB", 19.5, 156.0, 312.0, True, 1555.0)),
    ("a100 80gb pcie", DevicePeaks("NVIDIA A100 PCIe 80GB", 19.5, 156.0, 312.0, True, 1935.0)),
    ("a100", DevicePeaks("NVIDIA A100 SXM 80GB", 19.5, 156.0, 312.0, True, 2039.0)),
    ("l40s", DevicePeaks("NVIDIA L40S", 91.6, 183.0, 362.05, True, 864.0)),
    ("l4", DevicePeaks("NVIDIA L4", 30.3, 60.0, 121.0, True, 300.0)),
    ("a10", DevicePeaks("NVIDIA A10", 31.2, 62.5, 125.0, True, 600.0)),
    ("rtx 4090", DevicePeaks("NVIDIA GeForce RTX 4090", 82.6, 82.6, 165.2, True, 1008.0)),
    ("rtx 3090", DevicePeaks("NVIDIA GeForce RTX 3090", 35.6, 35.6, 71.0, True, 936.0)),
    ("v100", DevicePeaks("NVIDIA V100", 15.7, None, 125.0, False, 900.0)),
    ("t4", DevicePeaks("NVIDIA T4", 8.1, None, 65.0, False, 320.0)),
)


def lookup(device_name: str) -> DevicePeaks | None:
    key = device_name.lower()
    for pattern, peaks in KNOWN_GPUS:
        if pattern in key:
            return peaks
    return None


def math_peak_tflops(peaks: DevicePeaks, dtype: str, *, tf32: bool) -> float | None:
    """The compute roof for ``dtype`` (float64 is not in the table: None)."""
    if dtype in ("float16", "bfloat16"):
        if dtype == "bfloat16" and not peaks.bf16:
            return peaks.fp32_tflops  # no bf16 tensor cores: emulated at best
        return peaks.half_tflops or peaks.fp32_tflops
    if dtype == "float32":
        return peaks.tf32_tflops if tf32 and peaks.tf32_tflops else peaks.fp32_tflops
    return None


def tf32_for(types: Sequence[str], *, conv_tf32: bool, matmul_tf32: bool) -> bool:
    """Does float32 work under a layer (its type and its descendants' types) run as TF32?
    Convolutions follow ``torch.backends.cudnn.allow_tf32`` (on by default), everything
    else ``torch.backends.cuda.matmul.allow_tf32`` (off by default)."""
    has_conv = any("conv" in t.lower() for t in types)
    has_other = any("conv" not in t.lower() for t in types if _does_matmul(t))
    return (has_conv and conv_tf32) or (has_other and matmul_tf32)


def _does_matmul(type_name: str) -> bool:
    lowered = type_name.lower()
    return any(k in lowered for k in ("linear", "attention", "conv", "lstm", "gru", "rnn",
                                      "bilinear"))


def classify(flops: int, nbytes: int, seconds: float, peak_tflops: float,
             peak_gbps: float) -> Roofline | None:
    """The roofline entry of one layer; None when there is nothing to place (no time or
    neither FLOPs nor bytes)."""
    if seconds <= 0 or (flops <= 0 and nbytes <= 0) or peak_tflops <= 0 or peak_gbps <= 0:
        return None
    ridge = peak_tflops * 1e12 / (peak_gbps * 1e9)  # FLOP/byte where the roofs meet
    intensity = flops / nbytes if nbytes > 0 else float("inf")
    attainable = min(peak_tflops * 1e12, intensity * peak_gbps * 1e9)
    achieved = flops / seconds
    return Roofline(
        achieved_tflops=achieved / 1e12,
        achieved_gbps=nbytes / seconds / 1e9,
        intensity=intensity if nbytes > 0 else None,
        bound="compute" if intensity >= ridge else "memory",
        peak_tflops=peak_tflops,
        peak_gbps=peak_gbps,
        ridge_intensity=ridge,
        attainable_tflops=attainable / 1e12,
        efficiency=achieved / attainable if attainable > 0 else None,
    )
