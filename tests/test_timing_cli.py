"""``--time`` through the CLI on the CPU, roofline arithmetic and the peaks table."""

from __future__ import annotations

import json

import pytest

from cnnprof.cli.app import main
from cnnprof.timing import roofline


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:  # type: ignore[type-arg]
    code = main(argv)
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)  # type: ignore[no-any-return]


def test_resnet50_cpu_time_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    # the command, on a smaller image so the test stays short
    data = _json(capsys, ["resnet50", "--device", "cpu", "--time", "--repeats", "3",
                          "--warmup", "1", "--input", "3x64x64", "-f", "json"])
    t = data["timing"]
    for key in ("device_name", "torch", "warmup", "repeats", "batch", "dtype", "channels_last",
                "end_to_end_median_s", "end_to_end_unhooked_median_s", "hook_overhead",
                "leaf_self_sum_s", "peak_memory_bytes", "launch_bound", "command"):
        assert key in t, key
    assert (t["warmup"], t["repeats"], t["batch"], t["dtype"]) == (1, 3, 1, "float32")
    assert data["device"] == "meta"  # counted on meta, timed on the CPU
    conv = next(r for r in data["layers"] if r["name"] == "conv1")
    for key in ("median_s", "p10_s", "p90_s", "min_s", "self_median_s", "share", "samples_s"):
        assert key in conv["time"], key
    assert len(conv["time"]["samples_s"]) == 3
    assert conv["time"]["self_median_s"] == conv["time"]["median_s"]  # a leaf
    # the shared ReLU of each Bottleneck runs three times per forward
    assert next(r for r in data["layers"] if r["name"] == "layer1.0.relu")["time"]["calls"] == 3
    timed_leaves = [r for r in data["layers"] if r["is_leaf"] and "time" in r]
    assert len(timed_leaves) == sum(1 for r in data["layers"] if r["is_leaf"])


def test_table_shows_time_columns_and_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["lenet", "--device", "cpu", "--time", "--repeats", "2", "--warmup", "1",
                 "--width", "160"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Time" in out and "Self" in out and "Share" in out
    assert "End-to-end median" in out and "without" in out and "Timed on" in out


def test_batch_sweep_kernels_and_roofline_override(capsys: pytest.CaptureFixture[str]) -> None:
    data = _json(capsys, ["lenet", "--device", "cpu", "--kernels", "--batch", "2,4",
                          "--repeats", "2", "--warmup", "1", "--peak-tflops", "1",
                          "--peak-gbps", "10", "-f", "json"])
    t = data["timing"]
    assert [row["batch"] for row in t["sweep"]] == [2, 4]
    for row in t["sweep"]:
        assert row["throughput_per_s"] == pytest.approx(row["batch"] / row["latency_median_s"])
    assert data["inputs"][0]["shape"][0] == 2  # the first batch is the counted one
    conv = next(r for r in data["layers"] if r["name"] == "layer1.conv1")
    # on the CPU the "kernels" are the aten ops the layer ran
    assert any(k["name"] == "aten::conv2d" and k["count"] == 1 for k in conv["kernels"])
    roof = conv["roofline"]
    seconds = conv["time"]["median_s"]
    nbytes = conv["read_bytes"] + conv["write_bytes"]
    assert roof["achieved_tflops"] == pytest.approx(conv["flops"] / seconds / 1e12)
    assert roof["achieved_gbps"] == pytest.approx(nbytes / seconds / 1e9)
    assert roof["intensity"] == pytest.approx(conv["flops"] / nbytes)
    # ridge = 1e12 / 10e9 = 100 FLOP/byte; LeNet's small conv sits far below it
    assert roof["ridge_intensity"] == pytest.approx(100.0)
    assert roof["bound"] == ("compute" if roof["intensity"] >= 100 else "memory")
    assert (roof["peak_tflops"], roof["peak_gbps"]) == (1.0, 10.0)


@pytest.mark.parametrize("argv, message", [
    (["lenet", "--time", "--device", "meta"], "--time needs a real device"),
    (["lenet", "--repeats", "3"], "only apply with --time"),
    (["lenet", "--batch", "1,8"], "add --time"),
    (["lenet", "--batch", "1,x", "--time", "--device", "cpu"], "--batch"),
])
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str],
                             message: str) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_time_with_the_default_device_picks_one_and_says_which(
        capsys: pytest.CaptureFixture[str]) -> None:
    """--device auto (the default) times on the GPU when there is one, else on the CPU,
    and says so on stderr and in the report's notes."""
    import torch

    data = _json(capsys, ["lenet", "--time", "--repeats", "2", "--warmup", "0", "-f", "json"])
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert data["timing"]["device"] == expected
    assert data["device"] == "meta"  # the counts are made on meta as always
    assert any(n.startswith(f"timed on {expected} (auto: ") for n in data["notes"])


def test_time_auto_stderr_line(capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert main(["lenet", "--time", "--repeats", "1", "--warmup", "0", "-f", "json"]) == 0
    assert "cnnprof: timing on cpu (auto: no CUDA GPU here)" in capsys.readouterr().err


def test_cuda_without_gpu_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert main(["lenet", "--time", "--device", "cuda"]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err


@pytest.mark.parametrize("name, expected", [
    ("NVIDIA H100 80GB HBM3", "NVIDIA H100 SXM"),
    ("NVIDIA H100 PCIe", "NVIDIA H100 PCIe"),
    ("NVIDIA H200", "NVIDIA H200 SXM"),
    ("NVIDIA A100-SXM4-80GB", "NVIDIA A100 SXM 80GB"),
    ("NVIDIA A10", "NVIDIA A10"),
    ("NVIDIA L4", "NVIDIA L4"),
    ("NVIDIA GeForce RTX 4090", "NVIDIA GeForce RTX 4090"),
    ("Tesla T4", "NVIDIA T4"),
])
def test_peaks_lookup(name: str, expected: str) -> None:
    peaks = roofline.lookup(name)
    assert peaks is not None and peaks.name == expected
    assert roofline.lookup("Some Future GPU") is None


def test_peak_per_dtype_and_tf32() -> None:
    h100 = roofline.lookup("NVIDIA H100 80GB HBM3")
    assert h100 is not None
    assert roofline.math_peak_tflops(h100, "bfloat16", tf32=False) == 989.4
    assert roofline.math_peak_tflops(h100, "float32", tf32=False) == 67.0
    assert roofline.math_peak_tflops(h100, "float32", tf32=True) == 494.7
    assert roofline.math_peak_tflops(h100, "float64", tf32=False) is None
    # convolutions follow cuDNN's TF32 flag, linear layers the matmul flag
    assert roofline.tf32_for(["Conv2d"], conv_tf32=True, matmul_tf32=False)
    assert not roofline.tf32_for(["Linear"], conv_tf32=True, matmul_tf32=False)
    assert not roofline.tf32_for(["ReLU"], conv_tf32=True, matmul_tf32=True)


def test_classify_arithmetic() -> None:
    # 2e9 FLOPs over 1e7 bytes in 1 ms on a 100 TFLOP/s, 1000 GB/s device:
    # intensity 200 FLOP/B ≥ ridge 100 → compute-bound; achieved 2 TFLOP/s, 10 GB/s
    roof = roofline.classify(2_000_000_000, 10_000_000, 1e-3, 100.0, 1000.0)
    assert roof is not None
    assert roof.bound == "compute" and roof.intensity == pytest.approx(200.0)
    assert roof.achieved_tflops == pytest.approx(2.0)
    assert roof.achieved_gbps == pytest.approx(10.0)
    assert roof.efficiency == pytest.approx(2.0 / 100.0)
    # 1e6 FLOPs over 1e7 bytes: intensity 0.1 → memory-bound, attainable 0.1 * 1e12 FLOP/s
    mem = roofline.classify(1_000_000, 10_000_000, 1e-3, 100.0, 1000.0)
    assert mem is not None and mem.bound == "memory"
    assert mem.attainable_tflops == pytest.approx(0.1)
    assert roofline.classify(0, 0, 1e-3, 100.0, 1000.0) is None
