"""The built-in formulas. Conventions (docs/conventions.md):

* ``macs``: multiply-accumulates of convolution, matmul family, attention and recurrent cells;
  bias is not a MAC.
* ``flops``: 2 per MAC, plus bias adds, and one documented count per element for every other
  op family (element-wise 1, softmax 5, norms 2-7, pooling one per window tap ...).

Every formula is a pure function of shapes: it never reads tensor values, so it runs the same
on ``meta``, ``cpu`` and ``cuda``.

One registration style: ``REGISTRY.register(*names)`` as a decorator on a hand-written
formula, or called on a formula a factory built (``per_output_element(1)``, ``_pool(2)``);
``aten("add sub")`` spells op names. A formula that reads arguments beyond the first ones
reads them by name through a ``Schema`` (the op's own argument names, checked against
torch's schemas in tests/test_counting_formulas.py), never as ``args[14]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from cnnprof.counting.registry import REGISTRY, Formula, OpCost, OpKind, OpTrait

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


def aten(names: str) -> tuple[str, ...]:
    """``"add sub"`` → ``("aten.add", "aten.sub")``."""
    return tuple(f"aten.{name}" for name in names.split())


_ABSENT = object()
#: every ``Schema`` declared below, for the test that compares them with torch's schemas
SCHEMAS: list[Schema] = []


class Schema:
    """The positional argument names of an op, so a formula reads ``a.get("mode")`` rather
    than ``args[14]``. An argument may come positionally or by keyword (the dispatcher passes
    keyword-only ones by keyword; Python-level functions either way).

    ``ops`` names the ops whose schemas these names follow (a prefix of them): the test suite
    compares them with torch's own schemas, so a reordered schema fails a test instead of
    silently costing the wrong argument.
    """

    __slots__ = ("_index", "names", "ops")

    def __init__(self, names: str, *ops: str) -> None:
        self.names = tuple(names.replace(",", " ").split())
        self._index = {name: i for i, name in enumerate(self.names)}
        self.ops = ops
        SCHEMAS.append(self)

    def bind(self, args: Sequence[Any], kwargs: dict[str, Any]) -> Bound:
        return Bound(self._index, args, kwargs)


class Bound:
    """One call's arguments, read by name (see ``Schema``)."""

    __slots__ = ("_args", "_index", "_kwargs")

    def __init__(self, index: dict[str, int], args: Sequence[Any],
                 kwargs: dict[str, Any]) -> None:
        self._index, self._args, self._kwargs = index, args, kwargs

    def _raw(self, name: str) -> Any:
        at = self._index[name]  # KeyError: a name the schema does not declare (a bug here)
        if len(self._args) > at:
            return self._args[at]
        return self._kwargs.get(name, _ABSENT)

    def __getitem__(self, name: str) -> Any:
        """A required argument (``KeyError`` when the call did not pass it)."""
        value = self._raw(name)
        if value is _ABSENT:
            raise KeyError(f"argument {name!r} not passed")
        return value

    def get(self, name: str, default: Any = None) -> Any:
        """An optional argument: ``default`` when absent or None."""
        value = self._raw(name)
        return default if value is _ABSENT or value is None else value

    def tensor(self, name: str) -> bool:
        """Whether a tensor was passed for ``name`` (an optional bias, weight or mask)."""
        return _is_tensor(self.get(name))


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


#: ``flops`` per element of a backward's incoming gradient: its first argument, so the same
#: rule as a reduction's
per_grad_element = per_input_element


# Element-wise: 1 FLOP per output element; transcendental functions count as one.
REGISTRY.register(*aten(
    """add sub rsub mul div neg reciprocal abs sign sgn relu relu6 threshold leaky_relu
    prelu _prelu_kernel hardtanh clamp clamp_min clamp_max clip maximum minimum fmax fmin
    where eq ne lt gt le ge logical_and logical_or logical_not logical_xor bitwise_and
    bitwise_or bitwise_not bitwise_xor floor ceil round trunc frac exp exp2 expm1 log log2
    log10 log1p sqrt rsqrt pow square sigmoid tanh hardsigmoid hardswish silu gelu elu selu
    celu mish softplus softshrink hardshrink tanhshrink log_sigmoid_forward erf erfc erfinv
    sin cos tan asin acos atan atan2 sinh cosh asinh acosh atanh remainder fmod isnan
    isinf isfinite nan_to_num heaviside xlogy logit sigmoid_backward threshold_backward
    floor_divide true_divide glu"""))(per_output_element(1))
# Fused element-wise: one FLOP per arithmetic operation they fuse.
REGISTRY.register(*aten("addcmul addcdiv"))(per_output_element(2))
REGISTRY.register(*aten("lerp"))(per_output_element(3))
# Reductions: one FLOP per input element (an add or a compare each).
REGISTRY.register(*aten(
    """sum mean amax amin max min prod argmax argmin cumsum cumprod logsumexp any all
    nansum nanmean aminmax linalg_vector_norm norm count_nonzero"""))(per_input_element(1))
# Variance and standard deviation: mean (1) then squared deviation (2) per element.
REGISTRY.register(*aten("var std var_mean std_mean"))(per_input_element(3))
# Softmax: max-subtract (2), exp (1), sum (1), divide (1) per element.
REGISTRY.register(*aten("_softmax _log_softmax _safe_softmax softmax log_softmax"))(
    per_output_element(5))


# -- matmul family ----------------------------------------------------------------------------


def _matmul(left: int, biased: bool) -> Formula:
    """(…, m, k) @ (…, k, n): m·k·n MACs per batch (``left``: where the left operand sits;
    ``biased``: the op adds its first argument, one FLOP per output element)."""

    def formula(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
        a, b = args[left], args[left + 1]
        macs = prod(a.shape) * b.shape[-1]  # [batch*]m*k*n
        return OpCost(macs, 2 * macs + (numel(out) if biased else 0))

    return formula


# mm(self, mat2), bmm(self, mat2); addmm(self, mat1, mat2), baddbmm/addbmm(self, batch1, batch2)
REGISTRY.register(*aten("mm bmm"))(_matmul(0, biased=False))
REGISTRY.register(*aten("addmm baddbmm addbmm"))(_matmul(1, biased=True))


def _matvec(left: int, biased: bool) -> Formula:
    """A matrix-vector or vector-vector product: one MAC per element of the left operand."""

    def formula(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
        macs = numel(args[left])
        return OpCost(macs, 2 * macs + (numel(out) if biased else 0))

    return formula


# dot(self, tensor), vdot(self, other), mv(self, vec); addmv(self, mat, vec)
REGISTRY.register(*aten("dot vdot mv"))(_matvec(0, biased=False))
REGISTRY.register(*aten("addmv"))(_matvec(1, biased=True))


def _conv(input_: Any, weight: Any, bias: Any, transposed: bool, out: Any) -> OpCost:
    # weight: (Cout, Cin/g, *k) normally, (Cin, Cout/g, *k) when transposed. Every output
    # (normal) or input (transposed) element takes one MAC per weight element of its group.
    per_element = prod(weight.shape[1:])
    driver = numel(input_) if transposed else first_numel(out)
    macs = driver * per_element
    bias_flops = first_numel(out) if bias is not None else 0
    return OpCost(macs, 2 * macs + bias_flops)


_CONVOLUTION = Schema("input weight bias stride padding dilation transposed",
                      "aten.convolution", "aten._convolution")


@REGISTRY.register("aten.convolution", "aten._convolution")
def convolution(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    a = _CONVOLUTION.bind(args, kwargs)
    return _conv(args[0], args[1], a.get("bias"), bool(a.get("transposed", False)), out)


def _conv_fixed(transposed: bool) -> Formula:
    """Convolutions whose op name says whether they are transposed: (input, weight, bias, …)."""

    def formula(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
        bias = args[2] if len(args) > 2 and _is_tensor(args[2]) else kwargs.get("bias")
        return _conv(args[0], args[1], bias, transposed, out)

    return formula


REGISTRY.register(*aten(
    """conv1d conv2d conv3d mkldnn_convolution cudnn_convolution _slow_conv2d_forward
    thnn_conv2d _nnpack_spatial_convolution slow_conv3d_forward slow_conv_dilated2d
    slow_conv_dilated3d"""))(_conv_fixed(transposed=False))
REGISTRY.register(*aten(
    """conv_transpose1d conv_transpose2d conv_transpose3d cudnn_convolution_transpose
    slow_conv_transpose2d slow_conv_transpose3d"""))(_conv_fixed(transposed=True))


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


_SDPA = Schema("query key value attn_mask", "function.scaled_dot_product_attention")


@REGISTRY.register("function.scaled_dot_product_attention")
def sdpa(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    a = _SDPA.bind(args, kwargs)
    return attention_cost(a["query"].shape, a["key"].shape, a["value"].shape,
                          a.get("attn_mask") is not None)


@REGISTRY.register(*aten(
    """_scaled_dot_product_flash_attention _scaled_dot_product_flash_attention_for_cpu
    _scaled_dot_product_efficient_attention _scaled_dot_product_cudnn_attention
    _scaled_dot_product_fused_attention_overrideable"""))
def sdpa_kernel(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    # Reached only when an aten SDPA kernel is called directly, not via the function.
    q, k, v = args[0], args[1], args[2]
    return attention_cost(q.shape, k.shape, v.shape, False)


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


_MHA_FORWARD = Schema(
    """query key value embed_dim_to_check num_heads in_proj_weight in_proj_bias bias_k bias_v
    add_zero_attn dropout_p out_proj_weight out_proj_bias training key_padding_mask
    need_weights attn_mask use_separate_proj_weight q_proj_weight k_proj_weight
    v_proj_weight static_k static_v average_attn_weights is_causal""",
    "function.multi_head_attention_forward")


@REGISTRY.register("function.multi_head_attention_forward")
def multi_head_attention(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    a = _MHA_FORWARD.bind(args, kwargs)
    query, key, value = a["query"], a["key"], a["value"]
    heads = int(a["num_heads"])
    embed = int(query.shape[-1])
    if a.get("use_separate_proj_weight", False):
        widths = [int(a[n].shape[1]) for n in ("q_proj_weight", "k_proj_weight",
                                               "v_proj_weight")]
        in_proj = (widths[0], widths[1], widths[2])
    else:
        in_proj = (embed, embed, embed)
    extra = int(a.get("bias_k") is not None) + int(bool(a.get("add_zero_attn", False)))
    need_weights = bool(a.get("need_weights", True))
    return mha_cost(
        _tokens_first(query.shape), _tokens_first(key.shape), _tokens_first(value.shape),
        heads, in_proj=in_proj, in_bias=a.get("in_proj_bias") is not None,
        out_bias=a.get("out_proj_bias") is not None, extra_keys=extra,
        has_mask=a.get("attn_mask") is not None or a.get("key_padding_mask") is not None,
        weights_averaged=need_weights and bool(a.get("average_attn_weights", True)),
        dropout=bool(a.get("training", True)) and float(a.get("dropout_p", 0.0)) > 0.0,
    )


_NATIVE_MHA = Schema(
    """query key value embed_dim num_head qkv_weight qkv_bias proj_weight proj_bias mask
    need_weights average_attn_weights mask_type""", "aten._native_multi_head_attention")


@REGISTRY.register("aten._native_multi_head_attention")
def native_multi_head_attention(args: tuple[Any, ...], kwargs: dict[str, Any],
                                out: Any) -> OpCost:
    # The fused fast path (batch-first, inference only). Safety net: cnnprof switches the
    # fast path off.
    a = _NATIVE_MHA.bind(args, kwargs)
    query = a["query"]
    embed = int(query.shape[-1])
    # absent or None counts as True; `in (True,)` compares like the kernel's bool (1 is True)
    need_weights = a.get("need_weights", True) in (True,)
    average = a.get("average_attn_weights", True) in (True,)
    return mha_cost(query.shape, a["key"].shape, a["value"].shape, int(a["num_head"]),
                    in_proj=(embed, embed, embed), in_bias=a.tensor("qkv_bias"),
                    out_bias=a.tensor("proj_bias"), has_mask=a.tensor("mask"),
                    weights_averaged=need_weights and average)


_ENCODER_LAYER = Schema(
    """src embed_dim num_heads qkv_weight qkv_bias proj_weight proj_bias use_gelu norm_first
    eps norm_weight_1 norm_bias_1 norm_weight_2 norm_bias_2 ffn_weight_1 ffn_bias_1
    ffn_weight_2 ffn_bias_2 mask mask_type""", "aten._transformer_encoder_layer_fwd")


@REGISTRY.register("aten._transformer_encoder_layer_fwd")
def transformer_encoder_layer(args: tuple[Any, ...], kwargs: dict[str, Any],
                              out: Any) -> OpCost:
    # The fused encoder layer: what the unfused layer runs op by op: attention, two residual
    # adds, two affine layer norms (7 per element), linear → activation (1 per element) →
    # linear.
    a = _ENCODER_LAYER.bind(args, kwargs)
    src = a["src"]
    embed = int(src.shape[-1])
    tokens = numel(src) // embed
    attention = mha_cost(src.shape, src.shape, src.shape, int(a["num_heads"]),
                         in_proj=(embed, embed, embed), in_bias=a.tensor("qkv_bias"),
                         out_bias=a.tensor("proj_bias"), has_mask=a.tensor("mask"))
    hidden = int(a["ffn_weight_1"].shape[0])
    ffn_macs = 2 * tokens * embed * hidden
    ffn_bias = (tokens * hidden * int(a.tensor("ffn_bias_1"))
                + tokens * embed * int(a.tensor("ffn_bias_2")))
    elementwise = 2 * tokens * embed + 2 * 7 * tokens * embed + tokens * hidden
    return OpCost(attention.macs + ffn_macs,
                  attention.flops + 2 * ffn_macs + ffn_bias + elementwise)


#: Element-wise FLOPs per hidden unit per step of each recurrent cell (gate non-linearities,
#: products and sums): LSTM 3σ+2tanh+3mul+1add = 9; GRU 2σ+1tanh+3mul+2add+1sub = 9; RNN tanh 1.
_CELL_FLOPS = {"lstm": 9, "gru": 9, "rnn_tanh": 1, "rnn_relu": 1}
_GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}
#: The ``mode`` argument of the fused RNN kernels (cuDNN's numbering).
_RNN_MODES = {0: "rnn_relu", 1: "rnn_tanh", 2: "lstm", 3: "gru"}


def _rnn_mode(mode: Any) -> str:
    """A fused RNN kernel's ``mode`` → cell kind; an unknown mode fails the formula (the op is
    then reported as "formula failed"), it is never costed as some other cell."""
    kind = _RNN_MODES.get(int(mode))
    if kind is None:
        raise ValueError(f"unknown RNN mode {mode!r} (known: {sorted(_RNN_MODES)})")
    return kind


# torch.lstm / gru / rnn_tanh / rnn_relu come in two overloads: padded input and packed data
_RNN_INPUT = Schema(
    "input hx params has_biases num_layers dropout train bidirectional batch_first",
    "aten.lstm", "aten.gru", "aten.rnn_tanh", "aten.rnn_relu")
_RNN_PACKED = Schema(
    "data batch_sizes hx params has_biases num_layers dropout train bidirectional",
    "aten.lstm", "aten.gru", "aten.rnn_tanh", "aten.rnn_relu")


def _recurrent(kind: str) -> Formula:
    def formula(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
        packed = _is_tensor(args[1]) and args[1].dim() == 1 and not args[1].dtype.is_floating_point
        a = (_RNN_PACKED if packed else _RNN_INPUT).bind(args, kwargs)
        data, params = args[0], a["params"]
        # every (layer, direction) cell runs once per time step and batch row
        steps_x_batch = numel(data) // int(data.shape[-1])
        cells = int(a["num_layers"]) * (2 if bool(a["bidirectional"]) else 1)
        per_cell = len(params) // cells  # w_ih, w_hh, [b_ih, b_hh], [w_hr (LSTM projection)]
        hidden_units = sum(int(params[c * per_cell + 1].shape[0]) // _GATES[kind]
                           for c in range(cells))
        macs = sum(prod(p.shape) for p in params if p.dim() == 2) * steps_x_batch
        bias_flops = sum(prod(p.shape) for p in params if p.dim() == 1) * steps_x_batch
        flops = 2 * macs + bias_flops + _CELL_FLOPS[kind] * hidden_units * steps_x_batch
        return OpCost(macs, flops)

    return formula


for _kind in _CELL_FLOPS:
    REGISTRY.register(f"function.{_kind}")(_recurrent(_kind))


_CELL = Schema("input hx w_ih w_hh b_ih b_hh",
               "aten.lstm_cell", "aten.gru_cell", "aten.rnn_tanh_cell", "aten.rnn_relu_cell")


def _cell(kind: str) -> Formula:
    def formula(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
        # input (N, in) or (in,)
        a = _CELL.bind(args, kwargs)
        x, w_ih, w_hh = a["input"], a["w_ih"], a["w_hh"]
        batch = x.shape[0] if x.dim() == 2 else 1
        macs = batch * (prod(w_ih.shape) + prod(w_hh.shape))
        hidden = w_hh.shape[1]
        biases = sum(prod(a.get(b).shape) for b in ("b_ih", "b_hh") if a.tensor(b)) * batch
        flops = 2 * macs + biases + _CELL_FLOPS[kind] * hidden * batch
        return OpCost(macs, flops)

    return formula


for _kind in _CELL_FLOPS:
    REGISTRY.register(f"function.{_kind}_cell")(_cell(_kind))


# -- normalisation ----------------------------------------------------------------------------


def _bn_flops(x: Any, weight: Any, training: bool) -> int:
    """Normalise (x-mean)·invstd: 2; affine ·w+b: 2; batch statistics when training: 3."""
    return (2 + (2 if weight is not None else 0) + (3 if training else 0)) * numel(x)


def _batch_norm(schema: Schema, training: str | None, times: int = 1) -> Formula:
    """``training``: the name of the op's training flag (None: an eval-only op); ``times``:
    2 for a backward (the rule of thumb that a gradient costs two forwards)."""

    def formula(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
        a = schema.bind(args, kwargs)
        is_training = training is not None and bool(a[training])
        return OpCost(0, times * _bn_flops(a["input"], a["weight"], is_training))

    return formula


_BATCH_NORM = Schema(
    "input weight bias running_mean running_var training",
    *aten("""native_batch_norm _native_batch_norm_legit _native_batch_norm_legit_functional
          cudnn_batch_norm miopen_batch_norm"""))
REGISTRY.register(*_BATCH_NORM.ops)(_batch_norm(_BATCH_NORM, "training"))
_BATCH_NORM_EVAL = Schema("input weight bias running_mean running_var",
                          "aten._native_batch_norm_legit_no_training")
REGISTRY.register(*_BATCH_NORM_EVAL.ops)(_batch_norm(_BATCH_NORM_EVAL, None))
REGISTRY.declare(OpTrait.PRIMARY_OUTPUT_ONLY, aten(
    """native_batch_norm _native_batch_norm_legit _native_batch_norm_legit_no_training
    _native_batch_norm_legit_functional cudnn_batch_norm miopen_batch_norm
    _batch_norm_with_update _batch_norm_no_update batch_norm"""))


def _norm_flops(x: Any, affine: bool) -> int:
    """Layer and group norm: statistics (mean 1 + variance 2) and normalisation 2 per
    element; affine adds 2."""
    return (5 + (2 if affine else 0)) * numel(x)


def _rms_flops(x: Any, affine: bool) -> int:
    """RMS norm: square-and-sum 2, scale 1 per element; affine adds 1."""
    return (3 + (1 if affine else 0)) * numel(x)


def _normalisation(schema: Schema, flops: Callable[[Any, bool], int],
                   times: int = 1) -> Formula:
    """``flops(input, affine)`` of a norm whose optional ``weight`` makes it affine;
    ``times`` as in ``_batch_norm``."""

    def formula(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
        a = schema.bind(args, kwargs)
        return OpCost(0, times * flops(a["input"], a.tensor("weight")))

    return formula


_LAYER_NORM = Schema("input normalized_shape weight", "aten.native_layer_norm")
REGISTRY.register(*_LAYER_NORM.ops)(_normalisation(_LAYER_NORM, _norm_flops))
_GROUP_NORM = Schema("input weight", "aten.native_group_norm")
REGISTRY.register(*_GROUP_NORM.ops)(_normalisation(_GROUP_NORM, _norm_flops))
_RMS_NORM = Schema("input normalized_shape weight", "aten._fused_rms_norm", "aten.rms_norm")
REGISTRY.register(*_RMS_NORM.ops)(_normalisation(_RMS_NORM, _rms_flops))


# -- pooling and resampling -------------------------------------------------------------------


def _window(kernel: Any, dims: int) -> int:
    if isinstance(kernel, int):
        return kernel**dims
    ks = list(kernel)
    if len(ks) == 1:
        return int(ks[0]) ** dims
    return prod(int(k) for k in ks)


_POOL = Schema("self kernel_size", *(f"aten.{kind}_pool{d}d" for kind in ("max", "avg")
                                     for d in (2, 3)))


def _pool(dims: int) -> Formula:
    def formula(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
        kernel = _POOL.bind(args, kwargs)["kernel_size"]
        return OpCost(0, first_numel(out) * _window(kernel, dims))  # one op per window tap

    return formula


for _d in (1, 2, 3):
    REGISTRY.register(*aten(f"""max_pool{_d}d max_pool{_d}d_with_indices avg_pool{_d}d
                            mkldnn_max_pool{_d}d quantized_max_pool{_d}d lp_pool{_d}d"""))(
        _pool(_d))


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
    REGISTRY.register(*aten(
        f"adaptive_avg_pool{_d}d _adaptive_avg_pool{_d}d adaptive_max_pool{_d}d"))(
        _adaptive_pool(_d))

# Interpolation: per output element, taps×2−1 (taps multiplies, taps−1 adds).
REGISTRY.register(*aten("upsample_linear1d _upsample_linear1d_aa"))(per_output_element(3))
REGISTRY.register(*aten("upsample_bilinear2d _upsample_bilinear2d_aa"))(per_output_element(7))
REGISTRY.register(*aten("upsample_trilinear3d"))(per_output_element(15))
REGISTRY.register(*aten("upsample_bicubic2d _upsample_bicubic2d_aa"))(per_output_element(31))

# grid_sample: the same taps·2 − 1 per output element, by its interpolation_mode argument
# (0 bilinear/trilinear, 1 nearest: movement, 2 bicubic; 2-D only). RAFT's correlation
# lookup samples bilinearly: 7 per element, not bicubic's 31.
_GRID_SAMPLE_FLOPS = {2: {0: 7, 1: 0, 2: 31}, 3: {0: 15, 1: 0}}


def _grid_sample_flops(dims: int, mode: Any) -> int:
    table = _GRID_SAMPLE_FLOPS[dims]
    return table.get(int(mode), table[0]) if isinstance(mode, int) else table[0]


_GRID_SAMPLER = Schema("input grid interpolation_mode", "aten.grid_sampler_2d",
                       "aten.grid_sampler_3d", "aten._grid_sampler_2d_cpu_fallback")
_GRID_SAMPLER_BACKWARD = Schema(
    "grad_output input grid interpolation_mode", "aten.grid_sampler_2d_backward",
    "aten.grid_sampler_3d_backward", "aten._grid_sampler_2d_cpu_fallback_backward")
_CUDNN_GRID_SAMPLER = Schema("self grid", "aten.cudnn_grid_sampler")  # bilinear only
_CUDNN_GRID_SAMPLER_BACKWARD = Schema("self grid grad_output",
                                      "aten.cudnn_grid_sampler_backward")


def _grid_sampler(dims: int, schema: Schema, backward: bool) -> Formula:
    """A forward costs per output element, a backward per element of ``grad_output``; the
    mode is bilinear unless the schema has an ``interpolation_mode``."""
    has_mode = "interpolation_mode" in schema.names

    def formula(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
        a = schema.bind(args, kwargs)
        mode = a.get("interpolation_mode", 0) if has_mode else kwargs.get(
            "interpolation_mode", 0)
        elements = numel(a["grad_output"]) if backward else first_numel(out)
        return OpCost(0, _grid_sample_flops(dims, mode) * elements)

    return formula


for _d in (2, 3):
    REGISTRY.register(f"aten.grid_sampler_{_d}d")(_grid_sampler(_d, _GRID_SAMPLER, False))
REGISTRY.register("aten._grid_sampler_2d_cpu_fallback")(_grid_sampler(2, _GRID_SAMPLER, False))
REGISTRY.register("aten.cudnn_grid_sampler")(_grid_sampler(2, _CUDNN_GRID_SAMPLER, False))


def _sorted_dim(x: Any, dim: Any) -> int:
    """Length of the dimension an op sorts or selects along (the whole tensor when None)."""
    if x.dim() == 0:
        return 1
    if not isinstance(dim, int):
        return numel(x)
    return int(x.shape[dim])


def _sort_log(n: int) -> int:
    return max(1, math.ceil(math.log2(max(n, 2))))


def _sort_along(schema: Schema) -> Formula:
    # comparison sort: n·⌈log2 n⌉ compares per slice of length n along ``dim``
    def formula(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
        x = args[0]
        # ``.stable`` overloads put a keyword-only ``stable`` where ``dim`` was: an int here
        # (not a bool) is the dim, anything else means the dim came by keyword
        given = schema.bind(args, {}).get("dim")
        if not isinstance(given, int) or isinstance(given, bool):
            given = kwargs.get("dim", -1)
        return OpCost(0, numel(x) * _sort_log(_sorted_dim(x, given)))

    return formula


_SORT = Schema("self dim descending", "aten.sort", "aten.argsort")
_TOPK = Schema("self k dim largest sorted", "aten.topk")  # dim is third
REGISTRY.register(*_SORT.ops)(_sort_along(_SORT))
REGISTRY.register(*_TOPK.ops)(_sort_along(_TOPK))


@REGISTRY.register("aten.msort")
def msort(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    # msort sorts along dimension 0
    x = args[0]
    return OpCost(0, numel(x) * _sort_log(_sorted_dim(x, 0)))


# selection (quickselect) is linear: one compare per input element
REGISTRY.register(*aten("kthvalue median nanmedian mode"))(per_input_element(1))


# Dropout in training: one multiply per element by the scaled mask.
REGISTRY.register(*aten("native_dropout"))(per_output_element(1))


# -- backward ops (``--backward``) -------------------------------------------------------------
#
# A backward pass runs its own aten ops; each is costed like a forward op. Convolutions and
# matmuls (their backward is ``mm``/``bmm``) cost their forward MACs once per gradient they
# produce; the other families use the simple rules below, written in docs/conventions.md.

_CONVOLUTION_BACKWARD = Schema(
    """grad_output input weight bias_sizes stride padding dilation transposed output_padding
    groups output_mask""", "aten.convolution_backward")


@REGISTRY.register("aten.convolution_backward")
def convolution_backward(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    # grad_input and grad_weight each cost the forward's MACs; grad_bias sums grad_output
    # (one add per element).
    a = _CONVOLUTION_BACKWARD.bind(args, kwargs)
    grad_output, input_, weight = a["grad_output"], a["input"], a["weight"]
    mask = list(a.get("output_mask", [True] * 3))
    forward = (numel(input_) if bool(a["transposed"]) else numel(grad_output)) * prod(
        weight.shape[1:])
    macs = forward * (int(mask[0]) + int(mask[1]))
    return OpCost(macs, 2 * macs + (numel(grad_output) if mask[2] else 0))


_BATCH_NORM_BACKWARD = Schema(
    "grad_out input weight running_mean running_var save_mean save_invstd train",
    "aten.native_batch_norm_backward")
_BATCH_NORM_BACKWARD_UPDATE = Schema(
    "grad_out input weight running_mean running_var save_mean save_var update",
    "aten.batch_norm_backward")
REGISTRY.register(*_BATCH_NORM_BACKWARD.ops)(_batch_norm(_BATCH_NORM_BACKWARD, "train", 2))
REGISTRY.register(*_BATCH_NORM_BACKWARD_UPDATE.ops)(
    _batch_norm(_BATCH_NORM_BACKWARD_UPDATE, "update", 2))


@REGISTRY.register(*aten("cudnn_batch_norm_backward miopen_batch_norm_backward"))
def vendor_batch_norm_backward(args: tuple[Any, ...], kwargs: dict[str, Any],
                               out: Any) -> OpCost:
    # (input, grad_output, weight, ...): always training statistics, affine
    return OpCost(0, 2 * (2 + 2 + 3) * numel(args[0]))


_LAYER_NORM_BACKWARD = Schema("grad_out input normalized_shape mean rstd weight",
                              "aten.native_layer_norm_backward")
_GROUP_NORM_BACKWARD = Schema("grad_out input mean rstd weight",
                              "aten.native_group_norm_backward")
_RMS_NORM_BACKWARD = Schema("grad_out input normalized_shape rstd weight",
                            "aten._fused_rms_norm_backward")
REGISTRY.register(*_LAYER_NORM_BACKWARD.ops)(
    _normalisation(_LAYER_NORM_BACKWARD, _norm_flops, 2))
REGISTRY.register(*_GROUP_NORM_BACKWARD.ops)(
    _normalisation(_GROUP_NORM_BACKWARD, _norm_flops, 2))
REGISTRY.register(*_RMS_NORM_BACKWARD.ops)(_normalisation(_RMS_NORM_BACKWARD, _rms_flops, 2))


# Element-wise backward: one FLOP per gradient element, as their forward counts one.
REGISTRY.register(*aten(
    """gelu_backward silu_backward hardswish_backward hardsigmoid_backward elu_backward
    leaky_relu_backward hardtanh_backward softplus_backward mish_backward
    log_sigmoid_backward tanh_backward glu_backward _prelu_kernel_backward
    softshrink_backward hardshrink_backward"""))(per_output_element(1))
# softmax backward: y·(dy − Σ dy·y): multiply, sum, subtract, multiply = 4 per element;
# log-softmax backward: dy − exp(y)·Σ dy = 3 per element.
REGISTRY.register(*aten("_softmax_backward_data"))(per_output_element(4))
REGISTRY.register(*aten("_log_softmax_backward_data"))(per_output_element(3))
# Dropout backward: grad · mask · scale.
REGISTRY.register(*aten("native_dropout_backward"))(per_output_element(2))
# Max pooling backward scatters each gradient element to its arg-max: one add each.
REGISTRY.register(*aten(
    """max_pool1d_with_indices_backward max_pool2d_with_indices_backward
    max_pool3d_with_indices_backward adaptive_max_pool1d_backward adaptive_max_pool2d_backward
    adaptive_max_pool3d_backward embedding_dense_backward upsample_nearest1d_backward
    upsample_nearest2d_backward upsample_nearest3d_backward _upsample_nearest_exact1d_backward
    _upsample_nearest_exact2d_backward _upsample_nearest_exact3d_backward"""))(
    per_grad_element(1))
# Interpolation backward spreads each gradient element over the forward's taps.
REGISTRY.register(*aten("upsample_linear1d_backward"))(per_grad_element(3))
REGISTRY.register(*aten("upsample_bilinear2d_backward"))(per_grad_element(7))
REGISTRY.register(*aten("upsample_trilinear3d_backward"))(per_grad_element(15))
REGISTRY.register(*aten("upsample_bicubic2d_backward"))(per_grad_element(31))
for _d in (2, 3):
    REGISTRY.register(f"aten.grid_sampler_{_d}d_backward")(
        _grid_sampler(_d, _GRID_SAMPLER_BACKWARD, True))
REGISTRY.register("aten._grid_sampler_2d_cpu_fallback_backward")(
    _grid_sampler(2, _GRID_SAMPLER_BACKWARD, True))
REGISTRY.register("aten.cudnn_grid_sampler_backward")(
    _grid_sampler(2, _CUDNN_GRID_SAMPLER_BACKWARD, True))


_AVG_POOL_BACKWARD = Schema("grad_output self kernel_size", "aten.avg_pool2d_backward",
                            "aten.avg_pool3d_backward")


def _avg_pool_backward(dims: int) -> Formula:
    # each gradient element is shared by its window
    def formula(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
        a = _AVG_POOL_BACKWARD.bind(args, kwargs)
        return OpCost(0, numel(a["grad_output"]) * _window(a["kernel_size"], dims))

    return formula


def _adaptive_avg_pool_backward(args: tuple[Any, ...], kwargs: dict[str, Any],
                                out: Any) -> OpCost:
    # (grad_output, self): one add per input element
    return OpCost(0, numel(args[1]))


for _d in (2, 3):
    REGISTRY.register(f"aten.avg_pool{_d}d_backward")(_avg_pool_backward(_d))
    REGISTRY.register(f"aten._adaptive_avg_pool{_d}d_backward")(_adaptive_avg_pool_backward)


@REGISTRY.register(*aten(
    """_scaled_dot_product_flash_attention_for_cpu_backward
    _scaled_dot_product_flash_attention_backward
    _scaled_dot_product_efficient_attention_backward
    _scaled_dot_product_cudnn_attention_backward
    _scaled_dot_product_fused_attention_overrideable_backward"""))
def attention_backward(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    # (grad_out, query, key, value, ...): dV = Pᵀ·dO, dP = dO·Vᵀ, dQ = dS·K, dK = dSᵀ·Q:
    # twice the forward MACs; softmax backward (4) and the scale (1) per score.
    q, k, v = args[1], args[2], args[3]
    forward = attention_cost(q.shape, k.shape, v.shape, False)
    scores = prod(q.shape[:-1]) * int(k.shape[-2])
    return OpCost(2 * forward.macs, 4 * forward.macs + 5 * scores)


_MKLDNN_RNN_LAYER_BACKWARD = Schema(  # weight1..4 are w_ih, w_hh, b_ih, b_hh
    """input weight1 weight2 weight3 weight4 hx_ cx_tmp output hy_ cy_ grad_output grad_hy
    grad_cy reverse mode hidden_size num_layers has_biases""",
    "aten.mkldnn_rnn_layer_backward")


@REGISTRY.register("aten.mkldnn_rnn_layer_backward")
def mkldnn_rnn_layer_backward(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    # One (layer, direction) of the CPU's fused RNN backward. Gradients of inputs, hidden
    # state and both weights: twice the forward MACs; bias gradients (sums) and the gate
    # gradients (twice the forward's element-wise count).
    a = _MKLDNN_RNN_LAYER_BACKWARD.bind(args, kwargs)
    x, w_ih, w_hh = a["input"], a["weight1"], a["weight2"]
    steps_x_batch = numel(x) // int(x.shape[-1])
    kind = _rnn_mode(a["mode"])
    forward_macs = (prod(w_ih.shape) + prod(w_hh.shape)) * steps_x_batch
    hidden = int(w_hh.shape[0]) // _GATES[kind]
    bias = ((numel(a["weight3"]) + numel(a["weight4"])) * steps_x_batch
            if bool(a["has_biases"]) else 0)
    cell = 2 * _CELL_FLOPS[kind] * hidden * steps_x_batch
    return OpCost(2 * forward_macs, 4 * forward_macs + bias + cell)


_CUDNN_RNN_BACKWARD = Schema(
    """input weight weight_stride0 weight_buf hx cx output grad_output grad_hy grad_cy mode
    hidden_size proj_size num_layers batch_first dropout train bidirectional""",
    "aten._cudnn_rnn_backward")
_MIOPEN_RNN_BACKWARD = Schema(  # cuDNN's without proj_size
    """input weight weight_stride0 weight_buf hx cx output grad_output grad_hy grad_cy mode
    hidden_size num_layers batch_first dropout train bidirectional""",
    "aten.miopen_rnn_backward")


def _fused_rnn_backward(schema: Schema) -> Formula:
    """The whole fused RNN's backward: twice its forward MACs, as above."""

    def formula(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
        a = schema.bind(args, kwargs)
        x, weights = a["input"], [w for w in a["weight"] if _is_tensor(w)]
        steps_x_batch = numel(x) // int(x.shape[-1])
        kind = _rnn_mode(a["mode"])
        forward_macs = sum(prod(w.shape) for w in weights if w.dim() == 2) * steps_x_batch
        bias = sum(prod(w.shape) for w in weights if w.dim() == 1) * steps_x_batch
        cells = int(a["num_layers"]) * (2 if bool(a["bidirectional"]) else 1)
        cell = 2 * _CELL_FLOPS[kind] * int(a["hidden_size"]) * cells * steps_x_batch
        return OpCost(2 * forward_macs, 4 * forward_macs + bias + cell)

    return formula


REGISTRY.register(*_CUDNN_RNN_BACKWARD.ops)(_fused_rnn_backward(_CUDNN_RNN_BACKWARD))
REGISTRY.register(*_MIOPEN_RNN_BACKWARD.ops)(_fused_rnn_backward(_MIOPEN_RNN_BACKWARD))


@REGISTRY.register(*aten("_thnn_fused_lstm_cell_backward_impl _thnn_fused_gru_cell_backward"))
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
