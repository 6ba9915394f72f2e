"""Training-step memory (--train-memory, --fit) against an independent measurement.

The oracle is this file's own: a ``TorchDispatchMode`` that follows the storage of every
tensor a REAL steady-state training step on CPU tensors creates (with a weak reference per
storage, so a free is seen when it happens) on top of the parameters, buffers, optimizer
state and input batch that exist before the step. The real step is the loop body
docs/memory.md describes, run with torch's own optimizers and ``torch.autocast``. cnnprof
simulates the same step on fake tensors; the peaks must agree within 3%.
"""

from __future__ import annotations

import json
import math
import os
import weakref
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

import cnnprof

# -- the oracle --------------------------------------------------------------------------------


class LiveStorages(TorchDispatchMode):
    """Peak of live storage bytes: every op output is followed until its storage dies."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, tuple[int, Any]] = {}
        self.now = 0
        self.peak = 0

    def follow(self, t: Any) -> None:
        if not isinstance(t, torch.Tensor):
            return
        st = t.untyped_storage()
        key = st._cdata
        if key in self.live:
            return

        def gone(ref: Any, key: int = key) -> None:
            entry = self.live.get(key)
            if entry is not None and entry[1] is ref:
                del self.live[key]
                self.now -= entry[0]

        self.live[key] = (st.nbytes(), weakref.ref(st, gone))
        self.now += st.nbytes()
        self.peak = max(self.peak, self.now)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            self.follow(t)
        return out


TORCH_OPTIMIZERS: dict[str, Callable[[Any], torch.optim.Optimizer]] = {
    # foreach=True: the multi-tensor implementation torch uses by default on CUDA
    "sgd-momentum": lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9, foreach=True),
    "adamw": lambda ps: torch.optim.AdamW(ps, foreach=True),
}


def real_step_peak(model: nn.Module, inputs: list[torch.Tensor], optimizer: str,
                   amp: torch.dtype | None = None) -> int:
    """Peak live storage bytes of one steady-state step of ``model`` on the CPU."""
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = TORCH_OPTIMIZERS[optimizer](params)
    for p in params:  # a first step makes the optimizer state: the steady state
        p.grad = torch.zeros_like(p)
    opt.step()
    opt.zero_grad(set_to_none=True)
    oracle = LiveStorages()
    for t in [*model.parameters(), *model.buffers(), *inputs]:
        oracle.follow(t)
    for state in opt.state.values():
        for name, value in state.items():
            if isinstance(value, torch.Tensor) and name != "step":  # host-side counters
                oracle.follow(value)
    with oracle:
        with torch.autocast("cpu", dtype=amp or torch.bfloat16, enabled=amp is not None):
            output = model(*inputs)
            loss = output.sum()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    del output, loss
    return oracle.peak


def simulated(model: nn.Module, inputs: list[torch.Tensor], optimizer: str,
              amp: str | None = None, **kwargs: Any) -> cnnprof.Report:
    return cnnprof.profile(model, inputs, train_memory=True, optimizer=optimizer, amp=amp,
                           device="meta", **kwargs)


# -- models ------------------------------------------------------------------------------------


def transformer_encoder(d_model: int = 128, layers: int = 2) -> nn.Module:
    layer = nn.TransformerEncoderLayer(d_model, nhead=4, dim_feedforward=4 * d_model,
                                       batch_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class Checkpointed(nn.Module):
    """Blocks under ``torch.utils.checkpoint``: their activations are recomputed in
    backward, not saved."""

    def __init__(self, width: int = 256, blocks: int = 4, checkpoint: bool = True,
                 reentrant: bool = False) -> None:
        super().__init__()
        self.stem = nn.Linear(width, width)  # reentrant checkpoints need inputs with grad
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
            for _ in range(blocks))
        self.checkpoint = checkpoint
        self.reentrant = reentrant

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from torch.utils.checkpoint import checkpoint

        x = self.stem(x)
        for block in self.blocks:
            x = x + (checkpoint(block, x, use_reentrant=self.reentrant) if self.checkpoint
                     else block(x))
        return x


def build(name: str) -> tuple[nn.Module, list[torch.Tensor]]:
    """The issue's models at batch 8, at sizes a CPU step takes seconds for."""
    import torchvision

    torch.manual_seed(0)
    if name == "resnet18":
        return torchvision.models.resnet18(), [torch.randn(8, 3, 112, 112)]
    if name == "mobilenet_v3_large":
        return torchvision.models.mobilenet_v3_large(), [torch.randn(8, 3, 112, 112)]
    if name == "vit_b_16":
        return torchvision.models.vit_b_16(image_size=96), [torch.randn(8, 3, 96, 96)]
    if name == "transformer_encoder":
        return transformer_encoder(256, 4), [torch.randn(8, 64, 256)]
    raise KeyError(name)


def assert_close(predicted: int, measured: int, tolerance: float = 0.03) -> None:
    assert abs(predicted - measured) <= tolerance * measured, (
        f"predicted {predicted:,} B, measured {measured:,} B "
        f"({(predicted - measured) / measured:+.2%})")


# -- acceptance 1: the peak against the real step ---------------------------------------------

FAST = [("resnet18", "sgd-momentum", None), ("transformer_encoder", "adamw", "bf16")]
MATRIX = [(m, o, a) for m in ("resnet18", "mobilenet_v3_large", "vit_b_16",
                              "transformer_encoder")
          for o in ("sgd-momentum", "adamw") for a in (None, "bf16")
          if (m, o, a) not in FAST]


def _check(name: str, optimizer: str, amp: str | None) -> None:
    model, inputs = build(name)
    report = simulated(model, inputs, optimizer, amp)
    tm = report.training_memory
    assert tm is not None and tm.batch == 8
    measured = real_step_peak(model, inputs, optimizer, AMP[amp] if amp else None)
    assert_close(tm.peak_bytes, measured)
    assert sum(tm.peak_parts.values()) == tm.peak_bytes


AMP = {"bf16": torch.bfloat16}


@pytest.mark.parametrize(("name", "optimizer", "amp"), FAST)
def test_peak_matches_a_real_cpu_step(name: str, optimizer: str, amp: str | None) -> None:
    _check(name, optimizer, amp)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("CNNPROF_TRAIN_MEMORY_MATRIX"),
                    reason="the real CPU steps take ~30 min (bf16 ViT ~10 min each): "
                    "CNNPROF_TRAIN_MEMORY_MATRIX=1 runs them")
@pytest.mark.parametrize(("name", "optimizer", "amp"), MATRIX)
def test_peak_matches_a_real_cpu_step_matrix(name: str, optimizer: str,
                                             amp: str | None) -> None:
    _check(name, optimizer, amp)


@pytest.mark.parametrize("reentrant", [False, True])
def test_checkpointed_blocks_save_less_and_still_match(reentrant: bool) -> None:
    torch.manual_seed(0)
    inputs = [torch.randn(8, 128, 256)]
    plain_model = Checkpointed(checkpoint=False)
    plain = simulated(plain_model, inputs, "adamw").training_memory
    model = Checkpointed(reentrant=reentrant)
    kept = simulated(model, inputs, "adamw").training_memory
    assert plain is not None and kept is not None
    # each block's 4x-wide hidden activations are recomputed, not kept
    assert kept.saved_bytes < plain.saved_bytes / 4
    assert kept.peak_bytes < plain.peak_bytes
    # the recomputation in backward runs on the stand-ins too: the user's parameters get no
    # gradient (and a real step's peak is matched: an extra copy of the weights would show)
    assert all(p.grad is None for p in model.parameters())
    assert_close(kept.peak_bytes, real_step_peak(model, inputs, "adamw"))
    assert_close(plain.peak_bytes, real_step_peak(plain_model, inputs, "adamw"))


# -- what is counted ---------------------------------------------------------------------------


def test_model_state_is_the_analytic_formula_and_parts_add_up() -> None:
    model = transformer_encoder(64, 2)
    n = sum(p.numel() for p in model.parameters())
    tm = simulated(model, [torch.randn(8, 16, 64)], "adamw", "bf16").training_memory
    assert tm is not None
    # autocast keeps the fp32 parameters (they are the master weights): 4 + 4 + 2 x 4 bytes
    assert tm.param_bytes == 4 * n
    assert tm.gradient_bytes == 4 * n
    assert tm.optimizer_state_bytes == 8 * n
    assert tm.model_state_bytes == 16 * n
    assert tm.input_bytes == 8 * 16 * 64 * 4
    assert tm.start_bytes == tm.end_bytes == 4 * n + 8 * n + tm.input_bytes
    sgd = simulated(model, [torch.randn(8, 16, 64)], "sgd").training_memory
    momentum = simulated(model, [torch.randn(8, 16, 64)], "sgd-momentum").training_memory
    assert sgd is not None and momentum is not None
    assert (sgd.optimizer_state_bytes, momentum.optimizer_state_bytes) == (0, 4 * n)


def test_peak_moment_and_per_layer_saved_bytes() -> None:
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
    report = simulated(model, [torch.randn(8, 64)], "sgd")
    tm = report.training_memory
    assert tm is not None
    # Linear(64, 256) keeps its input (the batch, counted as input) and weight: nothing new;
    # ReLU keeps its 8x256 fp32 output; the last Linear keeps that same tensor (no new bytes)
    assert report.layer("0").saved_bytes == 0
    assert report.layer("1").saved_bytes == 8 * 256 * 4
    assert report.layer("2").saved_bytes == 0
    assert report.root.saved_bytes == tm.saved_bytes == 8 * 256 * 4
    assert tm.peak_at.split()[0] in ("forward", "backward", "loss", "optimizer")
    assert max(tm.timeline_bytes) == tm.peak_bytes
    assert tm.timeline_bytes[0] >= tm.start_bytes


def test_layers_keep_no_saved_bytes_without_the_option() -> None:
    report = cnnprof.profile(nn.Linear(4, 4), [(4,)], device="meta")
    assert report.training_memory is None
    data = report.to_dict()
    assert "training_memory" not in data
    assert all("saved_bytes" not in layer for layer in data["layers"])


def test_json_round_trip() -> None:
    report = simulated(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()), [torch.randn(2, 3, 16, 16)],
                       "adam", fit="1MB")
    data = json.loads(report.to_json())
    assert data["training_memory"]["optimizer"] == "adam"
    assert set(data["training_memory"]["peak_parts"]) == {
        "parameters", "buffers", "gradients", "optimizer_state", "input", "saved_activations",
        "temporaries"}
    again = cnnprof.Report.from_json(report.to_json())
    assert again == report


def test_the_users_model_is_left_as_found() -> None:
    model = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.Dropout(0.5)).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    simulated(model, [torch.randn(4, 8)], "adamw", "bf16")
    assert not model.training and all(not m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_a_7b_class_model_on_meta_in_seconds() -> None:
    """Acceptance 3 at a size a test can afford (the 7B run: benchmarks/train_memory.py)."""
    import time

    with torch.device("meta"):
        model = transformer_encoder(1024, 4)
    n = sum(p.numel() for p in model.parameters())
    start = time.perf_counter()
    report = cnnprof.profile(model, [torch.empty(1, 512, 1024, device="meta")],
                             train_memory=True, optimizer="adamw", amp="bf16")
    assert time.perf_counter() - start < 15
    tm = report.training_memory
    assert tm is not None and tm.model_state_bytes == 16 * n


# -- acceptance 2: --fit -----------------------------------------------------------------------


def test_fit_returns_the_largest_batch_a_real_step_fits() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(16, 10))
    budget = 20_000_000
    report = simulated(model, [(3, 32, 32)], "adamw", fit=f"{budget}B", batch=2)
    tm = report.training_memory
    assert tm is not None and tm.fit_bytes == budget
    best = tm.max_batch
    assert best is not None and best > 2
    assert tm.max_batch_peak_bytes is not None and tm.max_batch_peak_bytes <= budget
    fits = real_step_peak(model, [torch.randn(best, 3, 32, 32)], "adamw")
    over = real_step_peak(model, [torch.randn(best + 1, 3, 32, 32)], "adamw")
    assert fits <= budget < over


def test_fit_when_nothing_fits() -> None:
    report = simulated(nn.Linear(1000, 1000), [(1000,)], "adamw", fit="1MB")
    tm = report.training_memory
    assert tm is not None and tm.max_batch == 0 and tm.max_batch_peak_bytes is None


@pytest.mark.parametrize("budget", [0, 1, 99, 100, 101, 10**6, 1234567])
@pytest.mark.parametrize("shape", ["affine", "steps", "convex"])
def test_largest_fitting_search(budget: int, shape: str) -> None:
    from cnnprof.trace.train_memory import largest_fitting

    peaks: dict[str, Callable[[int], int]] = {
        "affine": lambda b: 50 + 7 * b,
        "steps": lambda b: 40 + 64 * math.ceil(b / 8),
        "convex": lambda b: 30 + b * b,
    }
    calls: list[int] = []

    def peak(b: int) -> int:
        calls.append(b)
        return peaks[shape](b)

    best = largest_fitting(peak, budget, hint=8)
    expected = 0
    while peaks[shape](expected + 1) <= budget:
        expected += 1
    assert best == expected
    assert len(set(calls)) <= 40
    if shape == "affine":  # the line through two probes lands on the answer
        assert len(set(calls)) <= 5


# -- CLI ---------------------------------------------------------------------------------------


def test_cli_section_json_and_errors(cli: Any, tmp_path: Any) -> None:
    model_file = tmp_path / "net.py"
    model_file.write_text(
        "import torch.nn as nn\n"
        "def Net():\n    return nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 4))\n")
    target = f"{model_file}:Net"
    result = cli(target, "--input", "32", "--batch", "8", "--train-memory", "--optimizer",
                 "sgd-momentum", "--width", "120")
    assert result.code == 0, result.err
    assert "Training step memory (batch 8, sgd-momentum" in result.out
    assert "Saved for bwd" in result.out
    result = cli(target, "--input", "32", "--fit", "50KB", "--format", "json")
    assert result.code == 0, result.err
    data = json.loads(result.out)["training_memory"]
    assert data["fit_bytes"] == 50_000 and data["max_batch"] >= 1
    assert data["max_batch_peak_bytes"] <= 50_000
    for bad, message in ((["--train-memory", "--optimizer", "lamb"], "unknown optimizer"),
                         (["--train-memory", "--amp", "fp8"], "unknown --amp"),
                         (["--amp", "bf16"], "apply to --train-memory"),
                         (["--fit", "lots"], "--fit"),
                         (["--fit", "0GB"], "positive")):
        result = cli(target, "--input", "32", *bad)
        assert result.code == 2 and message in result.err, (bad, result.err)


def test_plot_and_html_show_memory_over_time(cli: Any, tmp_path: Any) -> None:
    model_file = tmp_path / "net.py"
    model_file.write_text(
        "import torch.nn as nn\n"
        "def Net():\n    return nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 4))\n")
    target = f"{model_file}:Net"
    html = tmp_path / "r.html"
    svg = tmp_path / "r.svg"
    result = cli(target, "--input", "32", "--train-memory", "--output", str(html),
                 "--plot", str(svg))
    assert result.code == 0, result.err
    page = html.read_text()
    assert 'id="training-memory"' in page and "live memory over one training step" in page
    assert "live memory over one training step" in svg.read_text()


# -- acceptance 4 (GPU) ------------------------------------------------------------------------


@pytest.mark.cuda
def test_peak_matches_max_memory_allocated_on_cuda() -> None:
    import torchvision

    device = torch.device("cuda")
    torch.manual_seed(0)
    model = torchvision.models.resnet18().to(device)
    x = torch.randn(32, 3, 224, 224, device=device)
    predicted = cnnprof.profile(model, [x], train_memory=True, optimizer="adamw",
                                device="meta").training_memory
    assert predicted is not None
    opt = torch.optim.AdamW(model.parameters())  # foreach by default on CUDA
    model.train()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    opt.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    output = model(x)
    loss = output.sum()
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    # everything allocated before the step (parameters, state, input) is in `base`
    assert base > 0
    assert abs(predicted.peak_bytes - peak) <= 0.05 * peak, (predicted.peak_bytes, peak)
