"""Formulas for torchvision's detection ops and PyTorch's quantized kernels.

Detection ops are data-dependent (how many boxes survive); the formulas cost the call that
actually happened, from the shapes it saw.
"""

from __future__ import annotations

import math
from typing import Any

from cnnprof.counting.formulas import first_numel, numel, per_output_element, prod
from cnnprof.counting.registry import REGISTRY, OpCost, OpKind


@REGISTRY.register("torchvision.nms", "torchvision.batched_nms")
def nms(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    # sort by score (n·⌈log2 n⌉ compares) and, at worst, one IoU per pair of boxes:
    # 4 min/max + 2 sub + 1 mul for the intersection, 2 add/sub + 1 div for IoU, 1 compare = 11
    n = int(args[0].shape[0])
    pairs = n * (n - 1) // 2
    return OpCost(0, n * max(1, math.ceil(math.log2(max(n, 2)))) + 11 * pairs)


@REGISTRY.register("torchvision.roi_align")
def roi_align(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    # (input, rois, spatial_scale, pooled_h, pooled_w, sampling_ratio, aligned): each output
    # element averages ratio² bilinear samples (7 FLOPs each, +1 for the average). An adaptive
    # ratio (-1) depends on box sizes; it is costed as 2×2 samples.
    ratio = int(args[5]) if len(args) > 5 else int(kwargs.get("sampling_ratio", -1))
    samples = ratio * ratio if ratio > 0 else 4
    return OpCost(0, first_numel(out) * (7 * samples + 1))


@REGISTRY.register("torchvision.roi_pool", "torchvision.ps_roi_pool")
def roi_pool(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    # a max over each bin: about (H/ph)·(W/pw) compares per output element
    x = args[0]
    ph, pw = int(args[3]), int(args[4])
    window = max(1, -(-int(x.shape[-2]) // ph)) * max(1, -(-int(x.shape[-1]) // pw))
    return OpCost(0, first_numel(out) * window)


REGISTRY.mark(OpKind.MOVEMENT, ["aten.index_fill", "aten.index_copy", "quantized.cat",
                                 "aten.int_repr", "aten.q_scale", "aten.q_zero_point",
                                 "aten.q_per_channel_scales", "aten.q_per_channel_zero_points",
                                 "aten._make_per_tensor_quantized_tensor"])


# -- quantized kernels (torchvision's quantized_* models) -------------------------------------


def _packed_weight(packed: Any) -> Any:
    weight, _bias = packed.unpack()
    return weight


def _has_bias(packed: Any) -> bool:
    _weight, bias = packed.unpack()
    return bias is not None


@REGISTRY.register("quantized.conv1d", "quantized.conv2d", "quantized.conv3d",
                   "quantized.conv1d_relu", "quantized.conv2d_relu", "quantized.conv3d_relu")
def quantized_conv(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    weight = _packed_weight(args[1])
    macs = first_numel(out) * prod(weight.shape[1:])
    return OpCost(macs, 2 * macs + (first_numel(out) if _has_bias(args[1]) else 0))


@REGISTRY.register("quantized.linear", "quantized.linear_relu", "quantized.linear_dynamic")
def quantized_linear(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    weight = _packed_weight(args[1])
    macs = numel(args[0]) * int(weight.shape[0])
    return OpCost(macs, 2 * macs + (first_numel(out) if _has_bias(args[1]) else 0))


for _name in ("quantized.add", "quantized.add_relu", "quantized.mul", "quantized.mul_relu",
              "quantized.hardswish", "quantized.relu6", "quantized.leaky_relu",
              "quantized.sigmoid", "aten.quantize_per_tensor", "aten.quantize_per_channel",
              "aten.dequantize", "quantized.add_scalar", "quantized.mul_scalar"):
    REGISTRY.add(_name, per_output_element(1))
