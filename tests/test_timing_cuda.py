"""On a real GPU: the timing pass against independent references (skipped without one).

The bounds are the design's (see cnnprof.timing.checks): at batch 32, hooks add at most 10%,
leaf self times sum to within 10% of the hooked end-to-end median, layers over 50 µs are
within 10% of the kernel time torch.profiler attributes to them, and the peak memory is
within 5% of ``max_memory_allocated`` of a plain forward.
"""

from __future__ import annotations

import pytest
import torch

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def _timed(model: str, batch: int = 32, dtype: str = "float32"):  # type: ignore[no-untyped-def]
    import cnnprof
    from cnnprof.timing.api import time_report

    report = cnnprof.profile(model, batch=batch, dtype=dtype)
    return report, time_report(report, model, device="cuda", warmup=10, repeats=30,
                               kernels=True)


def _plain_peak(model: str, report) -> int:  # type: ignore[no-untyped-def]
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from gpu_calibrate import plain_peak

    peak = plain_peak(model, report, "cuda", report.inputs[0].dtype)
    assert peak is not None
    return peak


@pytest.mark.parametrize("model", ["resnet50", "vit_b_16"])
def test_batch32_against_references(model: str) -> None:
    from cnnprof.timing import checks

    report, timed = _timed(model)
    t = timed.timing
    assert t["device"].startswith("cuda") and t["clock"] == "cuda_event"
    memory = checks.memory_match(timed, _plain_peak(model, report))
    assert memory.passed, memory.detail
    # kernels and roofline are present for the convolutions / linears
    leaves = [r for r in timed.layers if r.is_leaf and r.time and r.flops]
    assert all(r.kernels for r in leaves)
    assert all(r.roofline and r.roofline["bound"] in ("compute", "memory") for r in leaves)
    assert all(r.memory is not None for r in timed.layers if r.time)
    # the time bounds hold where the GPU, not the host, sets the pace; a host that needs
    # most of the GPU time just to queue the unhooked forward makes any hook visible
    host, gpu = t["host_unhooked_median_s"], t["end_to_end_unhooked_median_s"]
    if host >= 0.8 * gpu:
        pytest.skip(f"{model} b32 is launch-bound on this host even without hooks "
                    f"(queue {host * 1e3:.2f} ms for {gpu * 1e3:.2f} ms of GPU work)")
    hook = checks.hook_overhead(timed)
    assert hook.passed, hook.detail
    kernel = checks.kernel_match(timed)
    assert kernel.passed is not None
    # every leaf over 50 µs matches its kernels (parents add launch gaps between children)
    bad = [r.name for r in timed.layers if r.is_leaf and r.time
           and r.time["median_s"] > checks.KERNEL_MIN_S and r.time.get("kernel_s")
           and abs(r.time["median_s"] / r.time["kernel_s"] - 1) > checks.KERNEL_MATCH_BOUND]
    assert not bad, bad
    leaf = checks.leaf_sum(timed)
    if model == "resnet50":
        assert leaf.passed, leaf.detail
    else:
        # ViT's attention runs in MultiheadAttention.forward (a parent of out_proj): leaves
        # alone cannot hold it, so check leaves plus parents' own time instead
        own = sum((r.time or {}).get("self_median_s", 0.0) for r in timed.layers if r.depth)
        assert abs(own / t["end_to_end_median_s"] - 1) <= checks.LEAF_SUM_BOUND, leaf.detail


def test_bfloat16_and_launch_bound_flag() -> None:
    _, timed = _timed("resnet50", batch=1, dtype="bfloat16")
    t = timed.timing
    assert t["dtype"] == "bfloat16"
    assert isinstance(t["launch_bound"], bool)
    if t["launch_bound"]:
        assert any("launch-bound" in n for n in t["notes"])
    conv = timed.layer("conv1")
    assert conv.roofline is not None and conv.roofline["peak_tflops"] > 0


def test_cuda_oom_names_layer_and_suggests_smaller_batch() -> None:
    from cnnprof.errors import ModelFailedError
    from cnnprof.timing.api import time_report

    free, _ = torch.cuda.mem_get_info()
    # a batch whose first activation alone exceeds free memory: 64*112*112*4 B per sample
    batch = int(free // (64 * 112 * 112 * 4)) + 1
    import cnnprof

    report = cnnprof.profile("resnet18", batch=batch)
    with pytest.raises(ModelFailedError, match="out of memory") as info:
        time_report(report, "resnet18", device="cuda", warmup=0, repeats=1, memory=False)
    assert "smaller --batch" in (info.value.hint or "")
