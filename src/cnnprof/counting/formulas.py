"""The built-in formulas. Conventions (docs/conventions.md):

* ``macs``: multiply-accumulates of convolution, matmul family, attention and recurrent cells;
  bias is not a MAC.
* ``flops``: 2 per MAC, plus bias adds, and one documented count per element for every other
  op family (element-wise 1, softmax 5, norms 2-7, pooling one per window tap ...).

Every formula is a pure function of shapes: it never reads tensor values, so it runs the same
on ``meta``, ``cpu`` and ``cuda``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from cnnprof.counting.registry import REGISTRY, Formula, OpCost, OpKind

# -- helpers ----------------------------------------------------------------------------------


def _is_tensor(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


def numel(x: Any) -> int:
    """Elements of a tensor, or of every tensor in a (nested) list/tuple of outputs."""
    if _is_tensor(x):
        return int(math.prod(x.shape))
    if isinstance(x, (list, tuple)):
        return sum(numel(t) for t in x)
    return 0


def first_numel(x: Any) -> int:
    """Elements of the primary output (ops like max_pool return (values, indices))."""
    if isinstance(x, (list, tuple)):
        return numel(x[0]) if x else 0
    return numel(x)


def prod(xs: Sequence[int]) -> int:
    return int(math.prod(xs))


# -- families (factories) ---------------------------------------------------------------------


def per_output_element(flops: int) -> Formula:
    """``flops`` FLOPs per element of the op's (first) output."""

    def formula(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
        return OpCost(0, flops * first_numel(out))

    return formula


def per_input_element(flops: int) -> Formula:
    """``flops`` FLOPs per element of the op's first input (reductions)."""

    def formula(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
        return OpCost(0, flops * numel(args[0]))

    return formula


def _register_family(formula: Formula, names: str) -> None:
    for name in names.split():
        REGISTRY.add(f"aten.{name}", formula)


# Element-wise: 1 FLOP per output element; transcendental functions count as one.
_register_family(
    per_output_element(1),
    """add sub rsub mul div neg reciprocal abs sign sgn relu relu6 threshold leaky_relu
    prelu _prelu_kernel hardtanh clamp clamp_min clamp_max clip maximum minimum fmax fmin
    where eq ne lt gt le ge logical_and logical_or logical_not logical_xor bitwise_and
    bitwise_or bitwise_not bitwise_xor floor ceil round trunc frac exp exp2 expm1 log log2
    log10 log1p sqrt rsqrt pow square sigmoid tanh hardsigmoid hardswish silu gelu elu selu
    celu mish softplus softshrink hardshrink tanhshrink log_sigmoid_forward erf erfc erfinv
    sin cos tan asin acos atan atan2 sinh cosh asinh acosh atanh remainder fmod isnan
    isinf isfinite nan_to_num heaviside xlogy logit sigmoid_backward threshold_backward
    floor_divide true_divide glu""",
)
# Fused element-wise: one FLOP per arithmetic operation they fuse.
_register_family(per_output_element(2), "addcmul addcdiv")
_register_family(per_output_element(3), "lerp")
# Reductions: one FLOP per input element (an add or a compare each).
_register_family(
    per_input_element(1),
    """sum mean amax amin max min prod argmax argmin cumsum cumprod logsumexp any all
    nansum nanmean aminmax linalg_vector_norm norm count_nonzero""",
)
# Variance and standard deviation: mean (1) then squared deviation (2) per element.
_register_family(per_input_element(3), "var std var_mean std_mean")
# Softmax: max-subtract (2), exp (1), sum (1), divide (1) per element.
_register_family(per_output_element(5), "_softmax _log_softmax _safe_softmax softmax log_softmax")


# -- matmul family ----------------------------------------------------------------------------


@REGISTRY.register("aten.mm")
def mm(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    a, b = args[0], args[1]
    macs = prod(a.shape) * b.shape[-1]  # m*k*n
    return OpCost(macs, 2 * macs)


@REGISTRY.register("aten.addmm")
def addmm(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    a, b = args[1], args[2]
    macs = prod(a.shape) * b.shape[-1]
    return OpCost(macs, 2 * macs + numel(out))  # + the bias add per output element


@REGISTRY.register("aten.bmm")
def bmm(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    a, b = args[0], args[1]
    macs = prod(a.shape) * b.shape[-1]  # batch*m*k*n
    return OpCost(macs, 2 * macs)


@REGISTRY.register("aten.baddbmm")
def baddbmm(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    a, b = args[1], args[2]
    macs = prod(a.shape) * b.shape[-1]
    return OpCost(macs, 2 * macs + numel(out))


@REGISTRY.register("aten.addbmm")
def addbmm(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    a, b = args[1], args[2]
    macs = prod(a.shape) * b.shape[-1]
    return OpCost(macs, 2 * macs + numel(out))


@REGISTRY.register("aten.dot", "aten.vdot")
def dot(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    macs = numel(args[0])
    return OpCost(macs, 2 * macs)


@REGISTRY.register("aten.mv")
def mv(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    macs = numel(args[0])
    return OpCost(macs, 2 * macs)


@REGISTRY.register("aten.addmv")
def addmv(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    macs = numel(args[1])
    return OpCost(macs, 2 * macs + numel(out))


def _conv(input_: Any, weight: Any, bias: Any, transposed: bool, out: Any) -> OpCost:
    # weight: (Cout, Cin/g, *k) normally, (Cin, Cout/g, *k) when transposed. Every output
    # (normal) or input (transposed) element takes one MAC per weight element of its group.
    per_element = prod(weight.shape[1:])
    driver = numel(input_) if transposed else first_numel(out)
    macs = driver * per_element
    bias_flops = first_numel(out) if bias is not None else 0
    return OpCost(macs, 2 * macs + bias_flops)


@REGISTRY.register("aten.convolution", "aten._convolution")
def convolution(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    transposed = bool(args[6]) if len(args) > 6 else bool(kwargs.get("transposed", False))
    bias = args[2] if len(args) > 2 else kwargs.get("bias")
    return _conv(args[0], args[1], bias, transposed, out)


@REGISTRY.register(
    "aten.conv1d", "aten.conv2d", "aten.conv3d", "aten.mkldnn_convolution",
    "aten.cudnn_convolution", "aten._slow_conv2d_forward", "aten.thnn_conv2d",
    "aten._nnpack_spatial_convolution", "aten.slow_conv3d_forward",
    "aten.slow_conv_dilated2d", "aten.slow_conv_dilated3d",
)
def conv_nd(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    bias = args[2] if len(args) > 2 and _is_tensor(args[2]) else kwargs.get("bias")
    return _conv(args[0], args[1], bias, False, out)


@REGISTRY.register(
    "aten.conv_transpose1d", "aten.conv_transpose2d", "aten.conv_transpose3d",
    "aten.cudnn_convolution_transpose", "aten.slow_conv_transpose2d",
    "aten.slow_conv_transpose3d",
)
def conv_transpose_nd(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    bias = args[2] if len(args) > 2 and _is_tensor(args[2]) else kwargs.get("bias")
    return _conv(args[0], args[1], bias, True, out)


# -- attention and recurrent layers (costed where the function is called) ----------------------


def attention_cost(q_shape: Sequence[int], k_shape: Sequence[int], v_shape: Sequence[int],
                   has_mask: bool) -> OpCost:
    """softmax(q·kᵀ·scale + mask)·v for q (..., L, E), k (..., S, E), v (..., S, Ev)."""
    batch = prod(q_shape[:-2])
    seq_q, embed = q_shape[-2], q_shape[-1]
    seq_k, embed_v = k_shape[-2], v_shape[-1]
    scores = batch * seq_q * seq_k
    macs = scores * embed + scores * embed_v  # q·kᵀ and attn·v
    flops = 2 * macs + scores * (1 + 5 + (1 if has_mask else 0))  # scale, softmax, mask add
    return OpCost(macs, flops)


@REGISTRY.register("function.scaled_dot_product_attention")
def sdpa(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    q = args[0]
    k = args[1] if len(args) > 1 else kwargs["key"]
    v = args[2] if len(args) > 2 else kwargs["value"]
    mask = args[3] if len(args) > 3 else kwargs.get("attn_mask")
    return attention_cost(q.shape, k.shape, v.shape, mask is not None)


@REGISTRY.register(
    "aten._scaled_dot_product_flash_attention",
    "aten._scaled_dot_product_flash_attention_for_cpu",
    "aten._scaled_dot_product_efficient_attention",
    "aten._scaled_dot_product_cudnn_attention",
    "aten._scaled_dot_product_fused_attention_overrideable",
)
def sdpa_kernel(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    # Reached only when an aten SDPA kernel is called directly, not via the function.
    q, k, v = args[0], args[1], args[2]
    return attention_cost(q.shape, k.shape, v.shape, False)


#: Element-wise FLOPs per hidden unit per step of each recurrent cell (gate non-linearities,
#: products and sums): LSTM 3σ+2tanh+3mul+1add = 9; GRU 2σ+1tanh+3mul+2add+1sub = 9; RNN tanh 1.
_CELL_FLOPS = {"lstm": 9, "gru": 9, "rnn_tanh": 1, "rnn_relu": 1}
_GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}


def _recurrent(kind: str) -> Formula:
    def formula(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
        # Two overloads: (input, hx, params, has_biases, num_layers, dropout, train,
        # bidirectional, batch_first) and the packed (data, batch_sizes, hx, params, ...).
        packed = _is_tensor(args[1]) and args[1].dim() == 1 and not args[1].dtype.is_floating_point
        if packed:
            data, params = args[0], args[3]
            steps_x_batch = data.shape[0]
        else:
            data, params = args[0], args[2]
            batch_first = bool(args[8]) if len(args) > 8 else False
            if data.dim() == 2:  # unbatched (T, features)
                steps_x_batch = data.shape[0]
            else:
                steps_x_batch = data.shape[0] * data.shape[1] if not batch_first else (
                    data.shape[1] * data.shape[0])
        weights = [p for p in params if p.dim() == 2]
        biases = [p for p in params if p.dim() == 1]
        macs = sum(prod(w.shape) for w in weights) * steps_x_batch
        # One cell per (layer, direction): each has one w_hh of shape (gates*H, H or proj).
        hidden_units = sum(w.shape[0] // _GATES[kind] for w in weights[1::2] if kind != "lstm")
        if kind == "lstm":
            step = 3 if len(weights) % 3 == 0 and len(weights) != 2 else 2
            hidden_units = sum(w.shape[0] // 4 for w in weights[0::step])
        bias_flops = sum(prod(b.shape) for b in biases) * steps_x_batch
        flops = 2 * macs + bias_flops + _CELL_FLOPS[kind] * hidden_units * steps_x_batch
        return OpCost(macs, flops)

    return formula


for _kind in _CELL_FLOPS:
    REGISTRY.add(f"function.{_kind}", _recurrent(_kind))


def _cell(kind: str) -> Formula:
    def formula(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
        # (input, hx, w_ih, w_hh, b_ih, b_hh); input (N, in) or (in,)
        x, w_ih, w_hh = args[0], args[2], args[3]
        batch = x.shape[0] if x.dim() == 2 else 1
        macs = batch * (prod(w_ih.shape) + prod(w_hh.shape))
        hidden = w_hh.shape[1]
        biases = sum(prod(b.shape) for b in args[4:6] if _is_tensor(b)) * batch
        flops = 2 * macs + biases + _CELL_FLOPS[kind] * hidden * batch
        return OpCost(macs, flops)

    return formula


REGISTRY.add("function.lstm_cell", _cell("lstm"))
REGISTRY.add("function.gru_cell", _cell("gru"))
REGISTRY.add("function.rnn_tanh_cell", _cell("rnn_tanh"))
REGISTRY.add("function.rnn_relu_cell", _cell("rnn_relu"))


# -- normalisation ----------------------------------------------------------------------------


def _bn(training_index: int | None) -> Formula:
    """``training_index``: where the op takes its ``training`` flag; None for eval-only ops."""

    def formula(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
        x, weight = args[0], args[1]
        training = training_index is not None and bool(args[training_index])
        per = 2 + (2 if weight is not None else 0) + (3 if training else 0)
        return OpCost(0, per * numel(x))

    return formula


# normalise (x-mean)·invstd: 2; affine ·w+b: 2; batch statistics when training: 3.
REGISTRY.add("aten.native_batch_norm", _bn(5))
REGISTRY.add("aten._native_batch_norm_legit", _bn(5))
REGISTRY.add("aten._native_batch_norm_legit_functional", _bn(5))
REGISTRY.add("aten._native_batch_norm_legit_no_training", _bn(None))
REGISTRY.add("aten.cudnn_batch_norm", _bn(5))
REGISTRY.add("aten.miopen_batch_norm", _bn(5))


def _norm(weight_index: int) -> Formula:
    # statistics (mean 1 + variance 2) and normalisation 2 per element; affine adds 2.
    def formula(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
        affine = len(args) > weight_index and _is_tensor(args[weight_index])
        return OpCost(0, (5 + (2 if affine else 0)) * numel(args[0]))

    return formula


REGISTRY.add("aten.native_layer_norm", _norm(2))  # (input, normalized_shape, weight, bias, eps)
REGISTRY.add("aten.native_group_norm", _norm(1))  # (input, weight, bias, N, C, HxW, group, eps)


@REGISTRY.register("aten._fused_rms_norm", "aten.rms_norm")
def rms_norm(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    # square-and-sum 2, scale 1 per element; affine adds 1.
    x = args[0]
    affine = len(args) > 2 and _is_tensor(args[2])
    return OpCost(0, (3 + (1 if affine else 0)) * numel(x))


# -- pooling and resampling -------------------------------------------------------------------


def _window(kernel: Any, dims: int) -> int:
    if isinstance(kernel, int):
        return kernel**dims
    ks = list(kernel)
    if len(ks) == 1:
        return int(ks[0]) ** dims
    return prod(int(k) for k in ks)


def _pool(dims: int) -> Formula:
    def formula(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
        kernel = args[1] if len(args) > 1 else kwargs["kernel_size"]
        return OpCost(0, first_numel(out) * _window(kernel, dims))  # one op per window tap

    return formula


for _d in (1, 2, 3):
    for _name in (f"max_pool{_d}d", f"max_pool{_d}d_with_indices", f"avg_pool{_d}d",
                  f"mkldnn_max_pool{_d}d", f"quantized_max_pool{_d}d", f"lp_pool{_d}d"):
        REGISTRY.add(f"aten.{_name}", _pool(_d))


def _adaptive_pool(dims: int) -> Formula:
    def formula(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
        primary = out[0] if isinstance(out, (tuple, list)) else out
        in_spatial, out_spatial = args[0].shape[-dims:], primary.shape[-dims:]
        # the largest window each output element averages or compares over
        window = prod(-(-int(i) // max(int(o), 1)) for i, o in zip(in_spatial, out_spatial))
        return OpCost(0, first_numel(out) * window)

    return formula


for _d in (1, 2, 3):
    for _name in (f"adaptive_avg_pool{_d}d", f"_adaptive_avg_pool{_d}d",
                  f"adaptive_max_pool{_d}d"):
        REGISTRY.add(f"aten.{_name}", _adaptive_pool(_d))

# Interpolation: per output element, taps×2−1 (taps multiplies, taps−1 adds).
_register_family(per_output_element(3), "upsample_linear1d _upsample_linear1d_aa")
_register_family(per_output_element(7), "upsample_bilinear2d _upsample_bilinear2d_aa")
_register_family(per_output_element(15), "upsample_trilinear3d")
_register_family(per_output_element(31), "upsample_bicubic2d _upsample_bicubic2d_aa grid_sampler_2d")


def _sort(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    # comparison sort: n·⌈log2 n⌉ compares along the sorted dimension, per slice
    x = args[0]
    # sort(self, dim), topk(self, k, dim), kthvalue(self, k, dim): dim after k for the latter
    dim_index = 2 if func_takes_k(kwargs) else 1
    dim = args[dim_index] if len(args) > dim_index and isinstance(args[dim_index], int) else (
        kwargs.get("dim", -1))
    if x.dim() == 0:
        return OpCost(0, 0)
    n = int(x.shape[dim if isinstance(dim, int) else -1])
    return OpCost(0, numel(x) * max(1, math.ceil(math.log2(max(n, 2)))))


def func_takes_k(kwargs: dict[str, Any]) -> bool:
    return bool(kwargs.get("_takes_k"))


def _sort_k(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    return _sort(args, {**kwargs, "_takes_k": True}, out)


for _name in ("sort", "argsort", "median", "msort"):
    REGISTRY.add(f"aten.{_name}", _sort)
for _name in ("topk", "kthvalue"):
    REGISTRY.add(f"aten.{_name}", _sort_k)

# Dropout in training: one multiply per element by the scaled mask.
_register_family(per_output_element(1), "native_dropout")


# -- kinds without formulas -------------------------------------------------------------------

REGISTRY.mark(OpKind.VIEW, [f"aten.{n}" for n in """view _unsafe_view reshape _reshape_alias
    expand expand_as permute transpose t squeeze unsqueeze flatten unflatten select slice
    split split_with_sizes unsafe_split unsafe_split_with_sizes chunk unbind narrow as_strided
    alias detach view_as view_as_real view_as_complex diagonal unfold movedim swapaxes
    squeeze_ unsqueeze_ transpose_ t_ lift_fresh sym_size sym_stride sym_numel
    _has_compatible_shallow_copy_type is_same_size sym_storage_offset dim size stride
    numel _local_scalar_dense item is_nonzero _to_dense_copy_unused set_
    _nested_tensor_from_mask_left_aligned conj resolve_conj resolve_neg _conj _neg_view
    real imag split_copy""".split()])

REGISTRY.mark(OpKind.MOVEMENT, [f"aten.{n}" for n in """clone copy_ copy _to_copy to
    contiguous cat stack hstack vstack constant_pad_nd pad reflection_pad1d
    reflection_pad2d reflection_pad3d replication_pad1d replication_pad2d replication_pad3d
    index index_select gather scatter scatter_add index_put index_put_ index_add
    masked_fill masked_fill_ masked_select masked_scatter embedding embedding_bag
    _embedding_bag repeat repeat_interleave roll flip tile fill fill_ zero_ zeros
    zeros_like ones ones_like empty empty_like empty_strided full full_like new_zeros
    new_ones new_empty new_full new_empty_strided arange linspace logspace eye scalar_tensor
    tensor bernoulli bernoulli_ rand rand_like randn randn_like randint randperm uniform_
    normal_ pixel_shuffle pixel_unshuffle channel_shuffle native_channel_shuffle
    upsample_nearest1d upsample_nearest2d upsample_nearest3d _upsample_nearest_exact1d
    _upsample_nearest_exact2d _upsample_nearest_exact3d im2col col2im tril triu
    _unsafe_index _unsafe_index_put slice_scatter select_scatter diagonal_scatter
    as_strided_scatter one_hot nonzero unique _unique2 lift _pin_memory searchsorted bucketize tril_indices triu_indices _assert_async
    _assert_tensor_metadata _functional_assert_async resize_ resize_as_ detach_
    dropout feature_dropout alpha_dropout type_as _foreach_copy_""".split()])
