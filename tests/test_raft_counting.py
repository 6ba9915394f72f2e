"""RAFT (torchvision optical flow): what cnnprof counts, and why it differs from ``_ops``.

* MACs: cnnprof counts exactly what torchvision's own counter counts (convolutions + the
  correlation ``bmm``). torchvision's ``_ops`` (47.655 / 211.007) is taken at two 3x512x512
  frames and the default 12 flow updates (``get_ops(h=512, w=512)`` in torchvision's
  test/common_extended_utils.py); cnnprof's zoo default is two 3x368x496 frames, hence
  32.728 / 146.014 GMACs there. docs/zoo.md has the numbers.
* FLOPs: RAFT's correlation lookup is a bilinear ``grid_sample``; it costs 7 FLOPs per
  sampled element (4 taps × 2 − 1), like bilinear upsampling, not bicubic's 31.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from cnnprof import profile
from cnnprof.counting import REGISTRY, OpCost
from cnnprof.report import Report


class Fn(nn.Module):
    def __init__(self, fn: Callable[..., Any]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *xs: torch.Tensor) -> Any:
        return self.fn(*xs)


class Raft(nn.Module):
    """A torchvision RAFT called with ``num_flow_updates`` (its forward's keyword)."""

    def __init__(self, name: str, updates: int) -> None:
        super().__init__()
        import torchvision

        self.raft = torchvision.models.get_model_builder(name)(weights=None)
        self.updates = updates

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> Any:
        return self.raft(a, b, num_flow_updates=self.updates)


def _meta(*shapes: tuple[int, ...], grad: bool = False) -> list[torch.Tensor]:
    return [torch.empty(s, device="meta", requires_grad=grad) for s in shapes]


# -- grid_sample: FLOPs by interpolation mode ------------------------------------------------


@pytest.mark.parametrize(("mode", "per_element"), [("bilinear", 7), ("nearest", 0),
                                                   ("bicubic", 31)])
def test_grid_sample_2d_flops_follow_the_mode(mode: str, per_element: int) -> None:
    # input 1x2x5x5 sampled at a 3x4 grid: output 1x2x3x4 = 24 elements
    fn = Fn(lambda x, g: F.grid_sample(x, g, mode=mode, align_corners=False))
    report = profile(fn, _meta((1, 2, 5, 5), (1, 3, 4, 2)), device="meta")
    assert report.unsupported_ops == {}
    assert report.totals.macs == 0
    assert report.totals.flops == 24 * per_element


@pytest.mark.parametrize(("mode", "per_element"), [("bilinear", 15), ("nearest", 0)])
def test_grid_sample_3d_is_counted(mode: str, per_element: int) -> None:
    # volumetric: trilinear, 8 taps → 15; output 1x2x3x4x4 = 96 elements
    fn = Fn(lambda x, g: F.grid_sample(x, g, mode=mode, align_corners=False))
    report = profile(fn, _meta((1, 2, 5, 5, 5), (1, 3, 4, 4, 3)), device="meta")
    assert report.unsupported_ops == {}
    assert report.totals.flops == 96 * per_element


class Sampled(nn.Module):
    """Samples a 1x2x5x5 parameter at the grid it is given (a gradient to propagate)."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.image = nn.Parameter(torch.empty(1, 2, 5, 5))
        self.mode = mode

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        return F.grid_sample(self.image, grid, mode=self.mode, align_corners=False)


@pytest.mark.parametrize(("mode", "per_element"), [("bilinear", 7), ("nearest", 0),
                                                   ("bicubic", 31)])
def test_grid_sample_backward_spreads_over_the_same_taps(mode: str, per_element: int) -> None:
    # grid_sampler_2d_backward: each of the 24 gradient elements goes back to its taps
    report = profile(Sampled(mode), _meta((1, 3, 4, 2)), device="meta", backward=True)
    assert report.unsupported_ops == {}
    assert report.totals.flops == 24 * per_element
    assert report.totals.backward is not None
    assert report.totals.backward.flops == 24 * per_element


# -- RAFT on a tiny input ----------------------------------------------------------------------


class _ConvBmmMacs(TorchDispatchMode):
    """torchvision's ``_ops`` counter in miniature: MACs of convolutions and bmm only."""

    def __init__(self) -> None:
        super().__init__()
        self.macs = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        packet = func._overloadpacket
        if packet is torch.ops.aten.convolution:
            x, w = args[0], args[1]
            spatial = (x if args[6] else out).shape[2:]
            self.macs += x.shape[0] * math.prod(w.shape) * math.prod(spatial)
        elif packet is torch.ops.aten.bmm:
            self.macs += math.prod(args[0].shape) * args[1].shape[-1]
        return out


def _profile_raft(name: str, size: int, updates: int, **kw: Any) -> Report:
    return profile(Raft(name, updates), [(3, size, size), (3, size, size)], device="meta", **kw)


def test_raft_small_tiny_input_counts() -> None:
    # two 3x128x128 frames, 2 flow updates: features at 1/8 → 16x16 = 256 positions
    report = _profile_raft("raft_small", 128, 2)
    assert report.unsupported_ops == {}
    assert report.totals.params == 990_162

    # MACs: exactly the conv + bmm MACs an independent counter sees
    model = Raft("raft_small", 2).eval().to("meta")
    frames = _meta((1, 3, 128, 128), (1, 3, 128, 128))
    with torch.no_grad(), _ConvBmmMacs() as counter:
        model(*frames)
    assert report.totals.macs == counter.macs == 610_467_840

    # FLOPs of the correlation lookup: 4 pyramid levels × 2 updates, each a bilinear
    # grid_sample of 256 positions × 7x7 taps (radius 3) = 12,544 elements, 7 FLOPs each
    without = REGISTRY.copy()
    without.add("aten.grid_sampler_2d", lambda a, k, o: OpCost(0, 0), override=True)
    flops_without = _profile_raft("raft_small", 128, 2, registry=without).totals.flops
    assert report.totals.flops - flops_without == 4 * 2 * (256 * 7 * 7) * 7 == 702_464


def test_raft_small_correlation_is_one_bmm_per_pair() -> None:
    # the all-pairs correlation: 256 × 256 positions × 128 feature channels (raft_small),
    # once per forward whatever the number of updates
    one = _profile_raft("raft_small", 128, 1).totals.macs
    two = _profile_raft("raft_small", 128, 2).totals.macs
    per_update = two - one
    assert one - per_update == 256 * 256 * 128 + _encoders_macs("raft_small", 128)


def _encoders_macs(name: str, size: int) -> int:
    model = Raft(name, 1).raft.to("meta")
    x = torch.empty(2, 3, size, size, device="meta")  # both frames go through as one batch
    with torch.no_grad(), _ConvBmmMacs() as counter:
        model.feature_encoder(x)
        model.context_encoder(x[:1])
    return counter.macs


@pytest.mark.parametrize(("name", "ops"), [("raft_small", 47.655), ("raft_large", 211.007)])
def test_torchvision_ops_is_taken_at_512x512_with_12_updates(name: str, ops: float) -> None:
    import torchvision

    assert torchvision.models.get_model_weights(name).DEFAULT.meta["_ops"] == ops
    report = _profile_raft(name, 512, 12)
    assert report.unsupported_ops == {}
    assert round(report.totals.macs / 1e9, 3) == ops
