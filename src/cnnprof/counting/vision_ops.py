"""Formulas for torchvision's detection ops and PyTorch's quantized kernels.

Detection ops are data-dependent (how many boxes survive); the formulas cost the call that
actually happened, from the shapes it saw.
"""

from __future__ import annotations

import math
from typing import Any

from cnnprof.counting.formulas import Schema, aten, first_numel, numel, per_output_element, prod
from cnnprof.counting.registry import REGISTRY, OpCost, OpKind


@REGISTRY.register("torchvision.nms", "torchvision.batched_nms")
def nms(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    # sort by score (n·⌈log2 n⌉ compares) and, at worst, one IoU per pair of boxes:
    # 4 min/max + 2 sub + 1 mul for the intersection, 2 add/sub + 1 div for IoU, 1 compare = 11
    n = int(args[0].shape[0])
    pairs = n * (n - 1) // 2
    return OpCost(0, n * max(1, math.ceil(math.log2(max(n, 2)))) + 11 * pairs)


_ROI_ALIGN = Schema("input rois spatial_scale pooled_height pooled_width sampling_ratio",
                    "torchvision.roi_align")


@REGISTRY.register("torchvision.roi_align")
def roi_align(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    # each output element averages ratio² bilinear samples (7 FLOPs each, +1 for the
    # average). An adaptive ratio (-1) depends on box sizes; it is costed as 2×2 samples.
    ratio = int(_ROI_ALIGN.bind(args, kwargs).get("sampling_ratio", -1))
    samples = ratio * ratio if ratio > 0 else 4
    return OpCost(0, first_numel(out) * (7 * samples + 1))


_ROI_POOL = Schema("input rois spatial_scale pooled_height pooled_width",
                   "torchvision.roi_pool", "torchvision.ps_roi_pool")


@REGISTRY.register("torchvision.roi_pool", "torchvision.ps_roi_pool")
def roi_pool(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    # a max over each bin: about (H/ph)·(W/pw) compares per output element
    a = _ROI_POOL.bind(args, kwargs)
    x = a["input"]
    ph, pw = int(a["pooled_height"]), int(a["pooled_width"])
    window = max(1, -(-int(x.shape[-2]) // ph)) * max(1, -(-int(x.shape[-1]) // pw))
    return OpCost(0, first_numel(out) * window)


REGISTRY.mark(OpKind.MOVEMENT, ["quantized.cat", *aten(
    """index_fill index_copy int_repr q_scale q_zero_point q_per_channel_scales
    q_per_channel_zero_points _make_per_tensor_quantized_tensor""")])


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


REGISTRY.register(
    "quantized.add", "quantized.add_relu", "quantized.mul", "quantized.mul_relu",
    "quantized.hardswish", "quantized.relu6", "quantized.leaky_relu", "quantized.sigmoid",
    "quantized.add_scalar", "quantized.mul_scalar",
    *aten("quantize_per_tensor quantize_per_channel dequantize"))(per_output_element(1))
