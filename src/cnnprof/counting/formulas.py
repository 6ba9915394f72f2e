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
from collections.abc import Iterable, Sequence
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


def prod(xs: Iterable[int]) -> int:
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


def _given(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str) -> Any:
    """A schema argument passed positionally or by keyword (None when absent)."""
    return args[index] if len(args) > index else kwargs.get(name)


def mha_cost(q_shape: Sequence[int], k_shape: Sequence[int], v_shape: Sequence[int],
             heads: int, *, in_proj: tuple[int, int, int], in_bias: bool, out_bias: bool,
             extra_keys: int = 0, has_mask: bool = False, weights_averaged: bool = False,
             dropout: bool = False) -> OpCost:
    """Multi-head attention as ``nn.MultiheadAttention`` computes it, whichever kernel runs.

    Shapes are (..., tokens, features) with any leading batch layout; ``in_proj`` holds the
    input widths of the q, k, v projections (all ``embed`` for the packed weight);
    ``extra_keys`` counts the key/value rows ``bias_k`` and ``add_zero_attn`` append.
    MACs: q/k/v projections, q·kᵀ and attn·v per head, output projection.
    FLOPs: 2 per MAC, bias adds, and :func:`attention_cost`'s scale/softmax/mask; plus one per
    attention weight for dropout (training) and for averaging the weights over heads.
    """
    embed = int(q_shape[-1])
    head_dim = embed // heads
    batch = prod(q_shape[:-2]) if len(q_shape) > 2 else 1
    seq_q = int(q_shape[-2]) if len(q_shape) > 1 else 1
    seq_k = (int(k_shape[-2]) if len(k_shape) > 1 else 1) + extra_keys
    tokens_q, tokens_k = batch * seq_q, batch * (seq_k - extra_keys)
    q_in, k_in, v_in = in_proj
    proj_macs = tokens_q * q_in * embed + tokens_k * (k_in + v_in) * embed
    out_macs = tokens_q * embed * embed
    per_head = (batch * heads, seq_q, head_dim)
    keys = (batch * heads, seq_k, head_dim)
    attention = attention_cost(per_head, keys, keys, has_mask)
    scores = batch * heads * seq_q * seq_k
    macs = proj_macs + out_macs + attention.macs
    flops = 2 * (proj_macs + out_macs) + attention.flops
    flops += (tokens_q + 2 * tokens_k) * embed if in_bias else 0
    flops += tokens_q * embed if out_bias else 0
    flops += scores * (int(dropout) + int(weights_averaged))
    return OpCost(macs, flops)


def _tokens_first(shape: Sequence[int]) -> tuple[int, ...]:
    """(L, N, E) → (N, L, E): the functional MHA takes sequence-first tensors."""
    return (int(shape[1]), int(shape[0]), int(shape[2])) if len(shape) == 3 else tuple(shape)


@REGISTRY.register("function.multi_head_attention_forward")
def multi_head_attention(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    # F.multi_head_attention_forward(query, key, value, embed_dim_to_check, num_heads,
    #   in_proj_weight, in_proj_bias, bias_k, bias_v, add_zero_attn, dropout_p,
    #   out_proj_weight, out_proj_bias, training, key_padding_mask, need_weights, attn_mask,
    #   use_separate_proj_weight, q_proj_weight, k_proj_weight, v_proj_weight, static_k,
    #   static_v, average_attn_weights, is_causal)
    def arg(index: int, name: str, default: Any = None) -> Any:
        value = _given(args, kwargs, index, name)
        return default if value is None else value

    query, key, value = arg(0, "query"), arg(1, "key"), arg(2, "value")
    heads = int(arg(4, "num_heads"))
    embed = int(query.shape[-1])
    if arg(17, "use_separate_proj_weight", False):
        widths = tuple(int(arg(i, n).shape[1]) for i, n in (
            (18, "q_proj_weight"), (19, "k_proj_weight"), (20, "v_proj_weight")))
        in_proj = (widths[0], widths[1], widths[2])
    else:
        in_proj = (embed, embed, embed)
    extra = int(arg(7, "bias_k") is not None) + int(bool(arg(9, "add_zero_attn", False)))
    need_weights = bool(arg(15, "need_weights", True))
    return mha_cost(
        _tokens_first(query.shape), _tokens_first(key.shape), _tokens_first(value.shape),
        heads, in_proj=in_proj, in_bias=arg(6, "in_proj_bias") is not None,
        out_bias=arg(12, "out_proj_bias") is not None, extra_keys=extra,
        has_mask=arg(16, "attn_mask") is not None or arg(14, "key_padding_mask") is not None,
        weights_averaged=need_weights and bool(arg(23, "average_attn_weights", True)),
        dropout=bool(arg(13, "training", True)) and float(arg(10, "dropout_p", 0.0)) > 0.0,
    )


@REGISTRY.register("aten._native_multi_head_attention")
def native_multi_head_attention(args: tuple[Any, ...], kwargs: dict[str, Any],
                                out: Any) -> OpCost:
    # The fused fast path (batch-first, inference only): (query, key, value, embed_dim,
    # num_head, qkv_weight, qkv_bias, proj_weight, proj_bias, mask, need_weights,
    # average_attn_weights, mask_type). Safety net: cnnprof switches the fast path off.
    query, key, value = args[0], args[1], args[2]
    embed = int(query.shape[-1])
    need_weights = bool(_given(args, kwargs, 10, "need_weights") in (None, True))
    average = _given(args, kwargs, 11, "average_attn_weights") in (None, True)
    return mha_cost(query.shape, key.shape, value.shape, int(args[4]),
                    in_proj=(embed, embed, embed), in_bias=_is_tensor(args[6]),
                    out_bias=_is_tensor(args[8]),
                    has_mask=_is_tensor(_given(args, kwargs, 9, "mask")),
                    weights_averaged=need_weights and average)


@REGISTRY.register("aten._transformer_encoder_layer_fwd")
def transformer_encoder_layer(args: tuple[Any, ...], kwargs: dict[str, Any],
                              out: Any) -> OpCost:
    # The fused encoder layer (src, embed_dim, num_heads, qkv_weight, qkv_bias, proj_weight,
    # proj_bias, use_gelu, norm_first, eps, norm_weight_1, norm_bias_1, norm_weight_2,
    # norm_bias_2, ffn_weight_1, ffn_bias_1, ffn_weight_2, ffn_bias_2, mask, mask_type):
    # what the unfused layer runs op by op: attention, two residual adds, two affine layer
    # norms (7 per element), linear → activation (1 per element) → linear.
    src = args[0]
    embed = int(src.shape[-1])
    tokens = numel(src) // embed
    attention = mha_cost(src.shape, src.shape, src.shape, int(args[2]),
                         in_proj=(embed, embed, embed), in_bias=_is_tensor(args[4]),
                         out_bias=_is_tensor(args[6]),
                         has_mask=_is_tensor(_given(args, kwargs, 18, "mask")))
    hidden = int(args[14].shape[0])
    ffn_macs = 2 * tokens * embed * hidden
    ffn_bias = tokens * hidden * int(_is_tensor(args[15])) + tokens * embed * int(
        _is_tensor(args[17]))
    elementwise = 2 * tokens * embed + 2 * 7 * tokens * embed + tokens * hidden
    return OpCost(attention.macs + ffn_macs,
                  attention.flops + 2 * ffn_macs + ffn_bias + elementwise)


#: Element-wise FLOPs per hidden unit per step of each recurrent cell (gate non-linearities,
#: products and sums): LSTM 3σ+2tanh+3mul+1add = 9; GRU 2σ+1tanh+3mul+2add+1sub = 9; RNN tanh 1.
_CELL_FLOPS = {"lstm": 9, "gru": 9, "rnn_tanh": 1, "rnn_relu": 1}
_GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}
#: The ``mode`` argument of the fused RNN kernels (cuDNN's numbering).
_RNN_MODES = {0: "rnn_relu", 1: "rnn_tanh", 2: "lstm", 3: "gru"}


def _recurrent(kind: str) -> Formula:
    def formula(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
        # Two overloads: (input, hx, params, has_biases, num_layers, dropout, train,
        # bidirectional, batch_first) and the packed (data, batch_sizes, hx, params,
        # has_biases, num_layers, dropout, train, bidirectional).
        packed = _is_tensor(args[1]) and args[1].dim() == 1 and not args[1].dtype.is_floating_point
        if packed:
            data, params, rest = args[0], args[3], args[4:]
        else:
            data, params, rest = args[0], args[2], args[3:]
        # every (layer, direction) cell runs once per time step and batch row
        steps_x_batch = numel(data) // int(data.shape[-1])
        cells = int(rest[1]) * (2 if bool(rest[4]) else 1)
        per_cell = len(params) // cells  # w_ih, w_hh, [b_ih, b_hh], [w_hr (LSTM projection)]
        hidden_units = sum(int(params[c * per_cell + 1].shape[0]) // _GATES[kind]
                           for c in range(cells))
        macs = sum(prod(p.shape) for p in params if p.dim() == 2) * steps_x_batch
        bias_flops = sum(prod(p.shape) for p in params if p.dim() == 1) * steps_x_batch
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
        window = prod([-(-int(i) // max(int(o), 1))
                       for i, o in zip(in_spatial, out_spatial, strict=True)])
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
_register_family(per_output_element(31), "upsample_bicubic2d _upsample_bicubic2d_aa")

# grid_sample: the same taps·2 − 1 per output element, by its interpolation_mode argument
# (0 bilinear/trilinear, 1 nearest: movement, 2 bicubic; 2-D only). RAFT's correlation
# lookup samples bilinearly: 7 per element, not bicubic's 31.
_GRID_SAMPLE_FLOPS = {2: {0: 7, 1: 0, 2: 31}, 3: {0: 15, 1: 0}}


def _grid_sample_flops(dims: int, mode: Any) -> int:
    table = _GRID_SAMPLE_FLOPS[dims]
    return table.get(int(mode), table[0]) if isinstance(mode, int) else table[0]


def _grid_sampler(dims: int, mode_at: int | None, grad_at: int | None) -> Formula:
    """``mode_at``: where the interpolation mode is (None: cuDNN's, bilinear only);
    ``grad_at``: the incoming gradient of a backward (None: a forward, per output element)."""

    def formula(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
        mode = kwargs.get("interpolation_mode", 0)
        if mode_at is not None and len(args) > mode_at:
            mode = args[mode_at]
        elements = first_numel(out) if grad_at is None else numel(args[grad_at])
        return OpCost(0, _grid_sample_flops(dims, mode) * elements)

    return formula


# grid_sampler_{2,3}d(input, grid, interpolation_mode, padding_mode, align_corners)
for _d in (2, 3):
    REGISTRY.add(f"aten.grid_sampler_{_d}d", _grid_sampler(_d, 2, None))
REGISTRY.add("aten._grid_sampler_2d_cpu_fallback", _grid_sampler(2, 2, None))
REGISTRY.add("aten.cudnn_grid_sampler", _grid_sampler(2, None, None))  # (input, grid)


def _sorted_dim(x: Any, dim: Any) -> int:
    """Length of the dimension an op sorts or selects along (the whole tensor when None)."""
    if x.dim() == 0:
        return 1
    if not isinstance(dim, int):
        return numel(x)
    return int(x.shape[dim])


def _sort_log(n: int) -> int:
    return max(1, math.ceil(math.log2(max(n, 2))))


def _dim_at(args: tuple[Any, ...], kwargs: dict[str, Any], index: int) -> Any:
    """The ``dim`` argument at schema position ``index`` (keyword-only in ``.stable``)."""
    if len(args) > index and isinstance(args[index], int) and not isinstance(args[index], bool):
        return args[index]
    return kwargs.get("dim", -1)


def _sort_along(dim_index: int) -> Formula:
    # comparison sort: n·⌈log2 n⌉ compares per slice of length n along ``dim``
    def formula(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
        x = args[0]
        n = _sorted_dim(x, _dim_at(args, kwargs, dim_index))
        return OpCost(0, numel(x) * _sort_log(n))

    return formula


REGISTRY.add("aten.sort", _sort_along(1))  # (self, dim=-1, descending)
REGISTRY.add("aten.argsort", _sort_along(1))  # (self, dim=-1, descending)
REGISTRY.add("aten.topk", _sort_along(2))  # (self, k, dim=-1, largest, sorted): dim is third


@REGISTRY.register("aten.msort")
def msort(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    # msort sorts along dimension 0
    x = args[0]
    return OpCost(0, numel(x) * _sort_log(_sorted_dim(x, 0)))


@REGISTRY.register("aten.kthvalue", "aten.median", "aten.nanmedian", "aten.mode")
def select_kth(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    # selection (quickselect) is linear: one compare per input element
    return OpCost(0, numel(args[0]))


# Dropout in training: one multiply per element by the scaled mask.
_register_family(per_output_element(1), "native_dropout")


# -- backward ops (``--backward``) -------------------------------------------------------------
#
# A backward pass runs its own aten ops; each is costed like a forward op. Convolutions and
# matmuls (their backward is ``mm``/``bmm``) cost their forward MACs once per gradient they
# produce; the other families use the simple rules below, written in docs/conventions.md.


@REGISTRY.register("aten.convolution_backward")
def convolution_backward(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    # (grad_output, input, weight, bias_sizes, stride, padding, dilation, transposed,
    #  output_padding, groups, output_mask): grad_input and grad_weight each cost the
    # forward's MACs; grad_bias sums grad_output (one add per element).
    grad_output, input_, weight = args[0], args[1], args[2]
    transposed = bool(args[7])
    mask = list(args[10]) if len(args) > 10 else list(kwargs.get("output_mask", [True] * 3))
    forward = (numel(input_) if transposed else numel(grad_output)) * prod(weight.shape[1:])
    macs = forward * (int(mask[0]) + int(mask[1]))
    return OpCost(macs, 2 * macs + (numel(grad_output) if mask[2] else 0))


def _twice_forward(forward: Formula, shift: int) -> Formula:
    """The backward of a normalisation: twice its forward FLOPs (the rule of thumb that a
    gradient costs two forwards). ``shift``: how many leading arguments (grad_out) the backward
    schema puts before the forward's arguments."""

    def formula(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
        return OpCost(0, 2 * forward(args[shift:], kwargs, out).flops)

    return formula


# native_batch_norm_backward(grad_out, input, weight, running_mean, running_var, save_mean,
# save_invstd, train, ...): after dropping grad_out, ``train`` sits at index 6.
REGISTRY.add("aten.native_batch_norm_backward", _twice_forward(_bn(6), 1))
# batch_norm_backward(grad_out, input, weight, ..., update, ...): ``update`` at index 6 too
REGISTRY.add("aten.batch_norm_backward", _twice_forward(_bn(6), 1))


@REGISTRY.register("aten.cudnn_batch_norm_backward", "aten.miopen_batch_norm_backward")
def vendor_batch_norm_backward(args: tuple[Any, ...], kwargs: dict[str, Any],
                               out: Any) -> OpCost:
    # (input, grad_output, weight, ...): always training statistics, affine
    return OpCost(0, 2 * (2 + 2 + 3) * numel(args[0]))


# native_layer_norm_backward(grad_out, input, normalized_shape, mean, rstd, weight, bias, ...)
REGISTRY.add("aten.native_layer_norm_backward",
             _twice_forward(lambda a, k, o: OpCost(0, (5 + 2 * _is_tensor(a[4])) * numel(a[0])),
                            1))
# native_group_norm_backward(grad_out, input, mean, rstd, weight, N, C, HxW, group, mask)
REGISTRY.add("aten.native_group_norm_backward",
             _twice_forward(lambda a, k, o: OpCost(0, (5 + 2 * _is_tensor(a[3])) * numel(a[0])),
                            1))
# _fused_rms_norm_backward(grad_out, input, normalized_shape, rstd, weight, output_mask)
REGISTRY.add("aten._fused_rms_norm_backward",
             _twice_forward(lambda a, k, o: OpCost(0, (3 + _is_tensor(a[3])) * numel(a[0])), 1))


def per_grad_element(flops: int) -> Formula:
    """``flops`` per element of the incoming gradient (args[0])."""

    def formula(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
        return OpCost(0, flops * numel(args[0]))

    return formula


# Element-wise backward: one FLOP per gradient element, as their forward counts one.
_register_family(
    per_output_element(1),
    """gelu_backward silu_backward hardswish_backward hardsigmoid_backward elu_backward
    leaky_relu_backward hardtanh_backward softplus_backward mish_backward
    log_sigmoid_backward tanh_backward glu_backward _prelu_kernel_backward
    softshrink_backward hardshrink_backward""",
)
# softmax backward: y·(dy − Σ dy·y): multiply, sum, subtract, multiply = 4 per element;
# log-softmax backward: dy − exp(y)·Σ dy = 3 per element.
_register_family(per_output_element(4), "_softmax_backward_data")
_register_family(per_output_element(3), "_log_softmax_backward_data")
# Dropout backward: grad · mask · scale.
_register_family(per_output_element(2), "native_dropout_backward")
# Max pooling backward scatters each gradient element to its arg-max: one add each.
_register_family(
    per_grad_element(1),
    """max_pool1d_with_indices_backward max_pool2d_with_indices_backward
    max_pool3d_with_indices_backward adaptive_max_pool1d_backward adaptive_max_pool2d_backward
    adaptive_max_pool3d_backward embedding_dense_backward upsample_nearest1d_backward
    upsample_nearest2d_backward upsample_nearest3d_backward _upsample_nearest_exact1d_backward
    _upsample_nearest_exact2d_backward _upsample_nearest_exact3d_backward""",
)
# Interpolation backward spreads each gradient element over the forward's taps.
_register_family(per_grad_element(3), "upsample_linear1d_backward")
_register_family(per_grad_element(7), "upsample_bilinear2d_backward")
_register_family(per_grad_element(15), "upsample_trilinear3d_backward")
_register_family(per_grad_element(31), "upsample_bicubic2d_backward")
# grid_sampler_{2,3}d_backward(grad_output, input, grid, interpolation_mode, ...)
for _d in (2, 3):
    REGISTRY.add(f"aten.grid_sampler_{_d}d_backward", _grid_sampler(_d, 3, 0))
REGISTRY.add("aten._grid_sampler_2d_cpu_fallback_backward", _grid_sampler(2, 3, 0))
# cudnn_grid_sampler_backward(input, grid, grad_output): bilinear only
REGISTRY.add("aten.cudnn_grid_sampler_backward", _grid_sampler(2, None, 2))


def _avg_pool_backward(dims: int) -> Formula:
    # (grad_output, self, kernel_size, ...): each gradient element is shared by its window
    def formula(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
        return OpCost(0, numel(args[0]) * _window(args[2], dims))

    return formula


for _d in (2, 3):
    REGISTRY.add(f"aten.avg_pool{_d}d_backward", _avg_pool_backward(_d))
    # adaptive average pooling backward: one add per input element
    REGISTRY.add(f"aten._adaptive_avg_pool{_d}d_backward",
                 lambda a, k, o: OpCost(0, numel(a[1])))


def _attention_backward(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    # (grad_out, query, key, value, ...): dV = Pᵀ·dO, dP = dO·Vᵀ, dQ = dS·K, dK = dSᵀ·Q:
    # twice the forward MACs; softmax backward (4) and the scale (1) per score.
    q, k, v = args[1], args[2], args[3]
    forward = attention_cost(q.shape, k.shape, v.shape, False)
    scores = prod(q.shape[:-1]) * int(k.shape[-2])
    return OpCost(2 * forward.macs, 4 * forward.macs + 5 * scores)


for _name in ("_scaled_dot_product_flash_attention_for_cpu_backward",
              "_scaled_dot_product_flash_attention_backward",
              "_scaled_dot_product_efficient_attention_backward",
              "_scaled_dot_product_cudnn_attention_backward",
              "_scaled_dot_product_fused_attention_overrideable_backward"):
    REGISTRY.add(f"aten.{_name}", _attention_backward)


@REGISTRY.register("aten.mkldnn_rnn_layer_backward")
def mkldnn_rnn_layer_backward(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    # One (layer, direction) of the CPU's fused RNN backward: (input, w_ih, w_hh, b_ih, b_hh,
    # hx, cx, output, hy, cy, grad_output, grad_hy, grad_cy, reverse, mode, hidden_size, ...).
    # Gradients of inputs, hidden state and both weights: twice the forward MACs; bias
    # gradients (sums) and the gate gradients (twice the forward's element-wise count).
    x, w_ih, w_hh = args[0], args[1], args[2]
    steps_x_batch = numel(x) // int(x.shape[-1])
    kind = _RNN_MODES.get(int(args[14]), "lstm")
    forward_macs = (prod(w_ih.shape) + prod(w_hh.shape)) * steps_x_batch
    hidden = int(w_hh.shape[0]) // _GATES[kind]
    bias = (numel(args[3]) + numel(args[4])) * steps_x_batch if bool(args[17]) else 0
    cell = 2 * _CELL_FLOPS[kind] * hidden * steps_x_batch
    return OpCost(2 * forward_macs, 4 * forward_macs + bias + cell)


@REGISTRY.register("aten._cudnn_rnn_backward", "aten.miopen_rnn_backward")
def cudnn_rnn_backward(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    # (input, weight[], weight_stride0, weight_buf, hx, cx, output, grad_output, grad_hy,
    #  grad_cy, mode, hidden_size, proj_size, num_layers, batch_first, dropout, train,
    #  bidirectional, ...): twice the whole RNN's forward MACs, as above.
    x, weights = args[0], [w for w in args[1] if _is_tensor(w)]
    steps_x_batch = numel(x) // int(x.shape[-1])
    kind = _RNN_MODES.get(int(args[10]), "lstm")
    forward_macs = sum(prod(w.shape) for w in weights if w.dim() == 2) * steps_x_batch
    bias = sum(prod(w.shape) for w in weights if w.dim() == 1) * steps_x_batch
    cells = int(args[13]) * (2 if bool(args[17]) else 1)
    cell = 2 * _CELL_FLOPS[kind] * int(args[11]) * cells * steps_x_batch
    return OpCost(2 * forward_macs, 4 * forward_macs + bias + cell)


@REGISTRY.register("aten._thnn_fused_lstm_cell_backward_impl",
                   "aten._thnn_fused_gru_cell_backward")
def fused_cell_backward(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    # element-wise gate gradients: twice the forward's 9 per hidden unit (the matmuls of a
    # cell's backward run as separate mm ops)
    grad = next((a for a in args if _is_tensor(a)), None)
    return OpCost(0, 2 * _CELL_FLOPS["lstm"] * numel(grad))


# -- kinds without formulas -------------------------------------------------------------------

_VIEWS = """
    view _unsafe_view reshape _reshape_alias expand expand_as permute transpose t squeeze
    unsqueeze flatten unflatten select slice split split_with_sizes unsafe_split
    unsafe_split_with_sizes chunk unbind narrow as_strided alias detach view_as view_as_real
    view_as_complex diagonal unfold movedim swapaxes squeeze_ unsqueeze_ transpose_ t_
    lift_fresh sym_size sym_stride sym_numel _has_compatible_shallow_copy_type is_same_size
    sym_storage_offset dim size stride numel _local_scalar_dense item is_nonzero
    _to_dense_copy_unused set_ _nested_tensor_from_mask_left_aligned conj resolve_conj
    resolve_neg _conj _neg_view real imag split_copy
"""
REGISTRY.mark(OpKind.VIEW, [f"aten.{n}" for n in _VIEWS.split()])

_MOVEMENT = """
    clone copy_ copy _to_copy to contiguous cat stack hstack vstack constant_pad_nd pad
    reflection_pad1d reflection_pad2d reflection_pad3d replication_pad1d replication_pad2d
    replication_pad3d index index_select gather scatter scatter_add index_put index_put_
    index_add masked_fill masked_fill_ masked_select masked_scatter embedding embedding_bag
    _embedding_bag repeat repeat_interleave roll flip tile fill fill_ zero_ zeros zeros_like
    ones ones_like empty empty_like empty_strided full full_like new_zeros new_ones
    new_empty new_full new_empty_strided arange linspace logspace eye scalar_tensor tensor
    bernoulli bernoulli_ rand rand_like randn randn_like randint randperm uniform_ normal_
    pixel_shuffle pixel_unshuffle channel_shuffle native_channel_shuffle upsample_nearest1d
    upsample_nearest2d upsample_nearest3d _upsample_nearest_exact1d
    _upsample_nearest_exact2d _upsample_nearest_exact3d im2col col2im tril triu
    _unsafe_index _unsafe_index_put slice_scatter select_scatter diagonal_scatter
    as_strided_scatter one_hot nonzero unique _unique2 lift _pin_memory searchsorted
    bucketize tril_indices triu_indices _assert_async _assert_tensor_metadata
    _functional_assert_async resize_ resize_as_ detach_ dropout feature_dropout
    alpha_dropout type_as _foreach_copy_ select_backward slice_backward as_strided_backward
    diagonal_backward unfold_backward _unsafe_masked_index
    _unsafe_masked_index_put_accumulate
"""
REGISTRY.mark(OpKind.MOVEMENT, [f"aten.{n}" for n in _MOVEMENT.split()])
