"""The leaf memo (trace/leaf_memo.py): a plain ``torch.nn`` leaf's call on meta answered from
its state and its arguments' layout. Every report must be the one a count without it gives,
and whatever a leaf's result depends on must reach the key."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import torch
import torchvision
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

import cnnprof
from cnnprof.counting import REGISTRY
from cnnprof.report import Cost
from cnnprof.trace import leaf_memo, observers


def _counts(report: cnnprof.Report) -> dict[str, Any]:
    data = report.to_dict()
    data.pop("meta", None)
    return data


@contextmanager
def _without_memo() -> Iterator[None]:
    original = leaf_memo.key
    leaf_memo.key = lambda *args, **kwargs: None  # type: ignore[assignment]
    try:
        yield
    finally:
        leaf_memo.key = original  # type: ignore[assignment]


@pytest.fixture
def replayed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the modules whose calls were answered from the memo."""
    seen: list[str] = []
    original = observers._replay

    def counting(node: Any, call: Any, tensors: Any) -> Any:
        seen.append(node.name)
        return original(node, call, tensors)

    monkeypatch.setattr(observers, "_replay", counting)
    return seen


class Leaves(nn.Module):
    """One of most kinds of plain leaf: in-place results, an identity, tuples out, buffers
    written in training mode, dropout, resampling, an embedding that renormalises its weight
    in place, and a module called twice with two shapes."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 8, max_norm=1.0)
        self.conv = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.act = nn.ReLU(inplace=True)
        self.same = nn.Identity()
        self.pool = nn.MaxPool2d(2, return_indices=True)
        self.drop = nn.Dropout(0.2)
        self.up = nn.Upsample(scale_factor=2.0, mode="bilinear")
        self.norm = nn.LayerNorm(8)
        self.flat = nn.Flatten()
        self.head = nn.Linear(4 * 8 * 8, 3)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.embed(tokens))  # [B, 8, 8]
        x = self.act(self.bn(self.conv(x.unsqueeze(1))))
        x, _ = self.pool(self.same(x))
        x = self.drop(self.up(x))
        small = self.act(torch.ones_like(x[:, :, :2, :2]))  # the same ReLU, another shape
        return self.head(self.flat(x)) + small.sum()


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_every_kind_of_leaf_counts_the_same_with_and_without_the_memo(
        mode: str, replayed: list[str]) -> None:
    model = Leaves()
    tokens = torch.randint(0, 20, (2, 8))
    cold = cnnprof.profile(model, [tokens], device="meta", mode=mode)
    warm = cnnprof.profile(model, [tokens], device="meta", mode=mode)
    with _without_memo():
        plain = cnnprof.profile(model, [tokens], device="meta", mode=mode)
    assert _counts(cold) == _counts(warm) == _counts(plain)
    # the warm count answered the leaves from the memo (not an Identity or a Flatten: they
    # return their input or a view of it)
    assert {"embed", "conv", "bn", "act", "pool", "drop", "up", "norm", "head"} <= set(replayed)
    assert not {"same", "flat"} & set(replayed)


#: the models of benchmarks/peers.py
BENCHMARK_MODELS = (
    "alexnet", "vgg16", "resnet18", "resnet50", "mobilenet_v3_large", "efficientnet_b0",
    "convnext_tiny", "densenet121", "inception_v3", "vit_b_16", "swin_t", "regnet_y_400mf",
    "shufflenet_v2_x1_0", "googlenet", "squeezenet1_0",
)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("name", BENCHMARK_MODELS)
def test_benchmark_models_count_the_same_with_and_without_the_memo(name: str,
                                                                   mode: str) -> None:
    model = torchvision.models.get_model(name, weights=None)
    size = 299 if name == "inception_v3" else 224
    # batch 2 in training mode: BatchNorm refuses one value per channel (inception's 1x1 maps)
    x = torch.randn(1 if mode == "eval" else 2, 3, size, size)
    cold = cnnprof.profile(model, [x], device="meta", mode=mode)
    warm = cnnprof.profile(model, [x], device="meta", mode=mode)
    with _without_memo():
        plain = cnnprof.profile(model, [x], device="meta", mode=mode)
    assert _counts(cold) == _counts(warm) == _counts(plain)


def test_a_changed_attribute_is_a_new_key() -> None:
    conv = nn.Conv2d(3, 8, 3)
    first = cnnprof.profile(conv, "3x32x32", device="meta")
    conv.stride = (2, 2)
    second = cnnprof.profile(conv, "3x32x32", device="meta")
    assert first.layers[0].output_shapes == ((1, 8, 30, 30),)
    assert second.layers[0].output_shapes == ((1, 8, 15, 15),)
    assert second.totals.macs * 4 == pytest.approx(first.totals.macs, rel=0.1)


class ChangesItsChild(nn.Module):
    """Calls one convolution twice, changing its padding in between (the same input)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.conv(x)
        self.conv.padding = (1, 1)
        try:
            b = self.conv(x)
        finally:
            self.conv.padding = (0, 0)
        return a.sum() + b.sum()


def test_an_attribute_changed_during_the_forward_is_seen() -> None:
    model = ChangesItsChild()
    for _ in range(2):  # the second count has both calls in the memo
        report = cnnprof.profile(model, "2x8x8", device="meta")
        conv = next(r for r in report.layers if r.name == "conv")
        assert conv.calls == 2
        assert conv.distinct_output_shapes == (((1, 2, 6, 6),), ((1, 2, 8, 8),))
        assert conv.macs == 2 * 2 * 9 * (36 + 64)


def test_a_replaced_parameter_is_a_new_key() -> None:
    linear = nn.Linear(4, 3)
    first = cnnprof.profile(linear, "4", device="meta")
    linear.weight = nn.Parameter(torch.randn(5, 4))
    linear.bias = nn.Parameter(torch.randn(5))
    second = cnnprof.profile(linear, "4", device="meta")
    assert (first.totals.macs, second.totals.macs) == (12, 20)
    assert second.layers[0].output_shapes == ((1, 5),)


def test_a_new_formula_is_a_new_key() -> None:
    registry = REGISTRY.copy()
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    before = cnnprof.profile(model, "3x8x8", device="meta", registry=registry)
    registry.add("aten.convolution", lambda args, kwargs, out: Cost(macs=7, flops=14),
                 override=True)
    after = cnnprof.profile(model, "3x8x8", device="meta", registry=registry)
    assert before.totals.macs == 4 * 3 * 9 * 36
    assert after.totals.macs == 7


def test_ops_without_a_formula_are_replayed_as_unsupported() -> None:
    registry = REGISTRY.copy()
    registry._kinds.pop("aten.convolution")  # as if no formula existed
    registry._formulas.pop("aten.convolution")
    registry.version += 1
    model = nn.Conv2d(3, 4, 3)
    reports = [cnnprof.profile(model, "3x8x8", device="meta", registry=registry)
               for _ in range(2)]
    assert [r.unsupported_ops for r in reports] == [{"aten.convolution": 1}] * 2
    assert [r.layers[0].unsupported_ops for r in reports] == [{"aten.convolution": 1}] * 2


class _Ops(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        self.names.append(str(func.overloadpacket))
        return func(*args, **(kwargs or {}))


class WatchesItsChild(nn.Module):
    """Runs its convolution under a dispatch mode of its own, which must see its op on
    every count."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.seen: list[list[str]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with _Ops() as ops:
            out = self.conv(x)
        self.seen.append(ops.names)
        return out


def test_a_mode_the_model_pushes_sees_every_op(replayed: list[str]) -> None:
    model = WatchesItsChild()
    for _ in range(3):
        cnnprof.profile(model, "3x8x8", device="meta")
    assert model.seen == [["aten.convolution"]] * 3
    assert replayed == []


class GradInside(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            return self.conv(x)


def test_no_memo_with_grad_on(replayed: list[str]) -> None:
    model = GradInside()
    for _ in range(2):
        cnnprof.profile(model, "3x8x8", device="meta")
    reports = [cnnprof.profile(nn.Conv2d(3, 4, 3), "3x8x8", device="meta", backward=True)
               for _ in range(2)]
    assert replayed == []
    assert reports[0].totals.backward == reports[1].totals.backward
    assert reports[0].totals.backward is not None and reports[0].totals.backward.macs > 0


def test_a_patched_forward_is_not_remembered(monkeypatch: pytest.MonkeyPatch,
                                             replayed: list[str]) -> None:
    def doubled(self: nn.ReLU, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x) * 2

    monkeypatch.setattr(nn.ReLU, "forward", doubled)
    assert not leaf_memo.torch_forward(nn.ReLU)
    for _ in range(2):
        report = cnnprof.profile(nn.ReLU(), "4", device="meta")
    assert replayed == []
    assert report.layers[0].flops > 4  # the relu and the multiplication both counted


def test_cpu_counts_run_every_leaf(replayed: list[str]) -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    reports = [cnnprof.profile(model, "3x8x8", device="cpu") for _ in range(2)]
    assert replayed == []
    assert _counts(reports[0]) == _counts(reports[1])
