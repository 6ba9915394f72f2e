"""One test per op family, each with its arithmetic written out.

Every op runs for real (on the meta device) inside a one-module wrapper through
``cnnprof.profile``, so the test also proves the aten op reaches its formula.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnprof import profile
from cnnprof.counting import REGISTRY, FormulaRegistry, OpCost, OpKind, OpTrait, formulas
from cnnprof.errors import UsageError
from cnnprof.report import Cost, Report


class Fn(nn.Module):
    """Runs ``fn`` on its inputs; owns ``modules`` so their parameters are model parameters."""

    def __init__(self, fn: Callable[..., Any], *modules: nn.Module) -> None:
        super().__init__()
        self.fn = fn
        self.mods = nn.ModuleList(modules)

    def forward(self, *xs: torch.Tensor) -> Any:
        return self.fn(*xs)


def run(fn: Callable[..., Any], *shapes: tuple[int, ...], modules: tuple[nn.Module, ...] = (),
        registry: FormulaRegistry = REGISTRY, **kw: Any) -> Report:
    tensors = [torch.empty(s, device="meta") for s in shapes]
    return profile(Fn(fn, *modules), tensors, registry=registry, **kw)


def cost(fn: Callable[..., Any], *shapes: tuple[int, ...], **kw: Any) -> Cost:
    return run(fn, *shapes, **kw).totals.cost


def module_cost(module: nn.Module, *shapes: tuple[int, ...], **kw: Any) -> Cost:
    return cost(lambda *xs: module(*xs), *shapes, modules=(module,), **kw)


# -- convolution --------------------------------------------------------------------------


def test_conv2d_with_bias() -> None:
    c = module_cost(nn.Conv2d(3, 4, 3, padding=1), (1, 3, 8, 8))
    # output 1x4x8x8 = 256 elements, each 3*3*3 = 27 MACs
    assert c.macs == 256 * 27 == 6912
    # 2 per MAC + one bias add per output element
    assert c.flops == 2 * 6912 + 256 == 14080


def test_grouped_conv() -> None:
    c = module_cost(nn.Conv2d(4, 8, 3, padding=1, groups=2, bias=False), (1, 4, 6, 6))
    # output 8x6x6 = 288 elements, each sees Cin/groups = 2 channels x 3x3 = 18 MACs
    assert c.macs == 288 * 18 == 5184
    assert c.flops == 2 * 5184


def test_depthwise_conv1d() -> None:
    c = module_cost(nn.Conv1d(6, 6, 5, groups=6, bias=False), (2, 6, 20))
    # output 2x6x16 = 192 elements, each 1 channel x 5 taps
    assert c.macs == 192 * 5 == 960


def test_dilated_conv() -> None:
    c = module_cost(nn.Conv2d(2, 3, 3, dilation=2, bias=False), (1, 2, 9, 9))
    # receptive field 5 → output 5x5; 3*25 = 75 outputs x (2*3*3 = 18) MACs
    assert c.macs == 75 * 18 == 1350


def test_conv3d() -> None:
    c = module_cost(nn.Conv3d(2, 4, 3, bias=False), (1, 2, 5, 5, 5))
    # output 4x3x3x3 = 108 elements x (2*27 = 54) MACs
    assert c.macs == 108 * 54 == 5832


def test_transposed_conv() -> None:
    c = module_cost(nn.ConvTranspose2d(4, 2, 3, stride=2), (1, 4, 5, 5))
    # every INPUT element (4*5*5 = 100) scatters into Cout*3*3 = 18 outputs: 1800 MACs
    assert c.macs == 100 * 18 == 1800
    # output (5-1)*2+3 = 11 → 2x11x11 = 242 bias adds
    assert c.flops == 2 * 1800 + 242 == 3842


# -- linear and the matmul family ---------------------------------------------------------


def test_linear_addmm() -> None:
    c = module_cost(nn.Linear(5, 3), (2, 5))
    # addmm: 2x5 @ 5x3 = 2*5*3 = 30 MACs; + 2*3 = 6 bias adds
    assert c.macs == 30
    assert c.flops == 60 + 6 == 66


def test_linear_3d_input_without_bias() -> None:
    c = module_cost(nn.Linear(5, 3, bias=False), (2, 4, 5))
    # (2*4) rows x 5 x 3 = 120 MACs
    assert (c.macs, c.flops) == (120, 240)


def test_bmm() -> None:
    c = cost(torch.bmm, (2, 3, 4), (2, 4, 5))
    # batch 2 x (3x4 @ 4x5) = 2*3*4*5 = 120
    assert (c.macs, c.flops) == (120, 240)


def test_matmul_broadcast() -> None:
    c = cost(torch.matmul, (2, 3, 4, 5), (5, 6))
    # 2*3*4 rows x 5 x 6 = 720
    assert c.macs == 720


def test_matrix_vector_and_dot() -> None:
    assert cost(torch.mv, (4, 6), (6,)).macs == 24  # 4*6
    assert cost(torch.dot, (7,), (7,)).macs == 7


def test_baddbmm() -> None:
    c = cost(lambda b, x, y: torch.baddbmm(b, x, y), (2, 3, 5), (2, 3, 4), (2, 4, 5))
    # 2*3*4*5 = 120 MACs; + 2*3*5 = 30 adds of the input
    assert (c.macs, c.flops) == (120, 270)


def test_einsum() -> None:
    c = cost(lambda a, b: torch.einsum("bij,bjk->bik", a, b), (2, 3, 4), (2, 4, 5))
    # einsum lowers to bmm: 2*3*4*5 = 120
    assert c.macs == 120
    c = cost(lambda a, b: torch.einsum("i,j->ij", a, b), (3,), (4,))
    # an outer product has no reduction: 3*4 = 12 multiplies, 0 MACs (element-wise mul)
    assert c.macs == 0 and c.flops == 12


# -- attention and recurrent layers --------------------------------------------------------


def test_sdpa() -> None:
    c = cost(F.scaled_dot_product_attention, (1, 2, 4, 8), (1, 2, 6, 8), (1, 2, 6, 8))
    # scores: 2 heads x 4 queries x 6 keys = 48; q·kᵀ 48*8 + attn·v 48*8 = 768 MACs
    assert c.macs == 768
    # 2*768 + per score: scale 1 + softmax 5 = 6 → 1536 + 288
    assert c.flops == 1536 + 48 * 6 == 1824


def test_sdpa_with_mask() -> None:
    c = cost(lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
             (1, 2, 4, 8), (1, 2, 6, 8), (1, 2, 6, 8), (4, 6))
    assert c.flops == 1824 + 48  # + one mask add per score


def test_multihead_attention() -> None:
    mha = nn.MultiheadAttention(8, 2)
    c = module_cost(mha, (3, 1, 8), (3, 1, 8), (3, 1, 8))
    # q, k, v projections: 3 tokens x 8 x 8 each = 576; output projection 3*8*8 = 192
    # attention: 2 heads, 3x3 scores = 18; head dim 4 → 18*4*2 = 144
    assert c.macs == 576 + 192 + 144 == 912
    # 2*912 + scale/softmax 18*6 + in-proj bias 9*8 + out bias 3*8 + head-averaged weights 18
    assert c.flops == 1824 + 108 + 72 + 24 + 18 == 2046


def test_multihead_attention_without_weights() -> None:
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    c = cost(lambda x: mha(x, x, x, need_weights=False)[0], (1, 3, 8), modules=(mha,))
    assert (c.macs, c.flops) == (912, 2046 - 18)


def test_native_attention_kernels_cost_like_the_module() -> None:
    # the fused fast-path ops, costed by formula when something calls them directly
    q = torch.empty(2, 10, 64, device="meta")
    w, b = torch.empty(192, 64, device="meta"), torch.empty(192, device="meta")
    pw, pb = torch.empty(64, 64, device="meta"), torch.empty(64, device="meta")
    native = REGISTRY.formula("aten._native_multi_head_attention")
    assert native is not None
    fast = native((q, q, q, 64, 4, w, b, pw, pb, None, False), {}, None)
    mha = nn.MultiheadAttention(64, 4, batch_first=True)
    slow = cost(lambda x: mha(x, x, x, need_weights=False)[0], (2, 10, 64), modules=(mha,))
    assert (fast.macs, fast.flops) == (slow.macs, slow.flops)

    layer = nn.TransformerEncoderLayer(64, 4, 128, batch_first=True)
    unfused = module_cost(layer, (2, 10, 64))
    w1, b1 = torch.empty(128, 64, device="meta"), torch.empty(128, device="meta")
    w2, b2 = torch.empty(64, 128, device="meta"), torch.empty(64, device="meta")
    norm = torch.empty(64, device="meta")
    encoder = REGISTRY.formula("aten._transformer_encoder_layer_fwd")
    assert encoder is not None
    fused = encoder((q, 64, 4, w, b, pw, pb, False, False, 1e-5, norm, norm, norm, norm,
                     w1, b1, w2, b2), {}, None)
    # 20 tokens: FFN 20*64*128*2 = 327680 MACs on top of the attention
    assert fused.macs == slow.macs + 327680 == unfused.macs
    assert fused.flops == unfused.flops


def test_lstm() -> None:
    c = module_cost(nn.LSTM(4, 3), (5, 1, 4))
    # per step: w_ih 12x4 = 48 + w_hh 12x3 = 36 → 84 MACs x 5 steps
    assert c.macs == 420
    # 2*420 + biases (12+12)*5 = 120 + gates 9 per hidden unit: 9*3*5 = 135
    assert c.flops == 840 + 120 + 135 == 1095


def test_stacked_bidirectional_lstm() -> None:
    c = module_cost(nn.LSTM(4, 3, num_layers=3, bidirectional=True, bias=False), (5, 1, 4))
    # layer 0: (12*4 + 12*3) x 2 directions = 168; layers 1-2: (12*6 + 12*3) x 2 = 216 each
    assert c.macs == (168 + 2 * 216) * 5 == 3000
    # 6 cells x 3 hidden units x 9 x 5 steps = 810 gate FLOPs
    assert c.flops == 2 * 3000 + 810


def test_gru_and_cells() -> None:
    c = module_cost(nn.GRU(4, 3), (5, 1, 4))
    # (9*4 + 9*3) * 5 = 315 MACs; biases 18*5 = 90; gates 9*3*5 = 135
    assert (c.macs, c.flops) == (315, 630 + 90 + 135)
    c = module_cost(nn.LSTMCell(4, 3), (2, 4))
    # batch 2 x (48 + 36) = 168 MACs; biases 24*2 = 48; gates 9*3*2 = 54
    assert (c.macs, c.flops) == (168, 336 + 48 + 54)


# -- normalisation, pooling, softmax, interpolation, element-wise --------------------------


def test_batch_norm() -> None:
    # eval: normalise 2 + affine 2 per element; 3x4x4 = 48 elements
    assert module_cost(nn.BatchNorm2d(3), (1, 3, 4, 4)).flops == 48 * 4
    # train adds the batch statistics: 3 more per element, and num_batches_tracked += 1
    assert module_cost(nn.BatchNorm2d(3), (1, 3, 4, 4), mode="train").flops == 48 * 7 + 1


def test_layer_and_group_norm() -> None:
    # statistics 3 + normalise 2 + affine 2 = 7 per element
    assert module_cost(nn.LayerNorm(8), (2, 8)).flops == 16 * 7
    assert module_cost(nn.LayerNorm(8, elementwise_affine=False), (2, 8)).flops == 16 * 5
    assert module_cost(nn.GroupNorm(2, 4), (1, 4, 2, 2)).flops == 16 * 7


def test_pooling() -> None:
    # 2x2 windows: output 2x2 = 4 elements x 4 taps
    assert module_cost(nn.MaxPool2d(2), (1, 1, 4, 4)).flops == 16
    # 3x3 windows, stride 1 on 5x5: output 2x3x3 = 18 x 9 taps
    assert module_cost(nn.AvgPool2d(3, stride=1), (1, 2, 5, 5)).flops == 162
    # global pool: 3 outputs x 16 inputs each
    assert module_cost(nn.AdaptiveAvgPool2d(1), (1, 3, 4, 4)).flops == 48
    # 5 → 2 adaptive windows are up to ⌈5/2⌉ = 3 wide: 4 outputs x 3*3
    assert module_cost(nn.AdaptiveAvgPool2d(2), (1, 1, 5, 5)).flops == 36


def test_softmax() -> None:
    # max-subtract 2, exp 1, sum 1, divide 1 = 5 per element
    assert cost(lambda x: x.softmax(-1), (2, 5)).flops == 50


def test_interpolate() -> None:
    # bilinear: 4 taps → 4 multiplies + 3 adds = 7 per output element; 4x4 outputs
    c = cost(lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"), (1, 1, 2, 2))
    assert c.flops == 16 * 7
    # nearest copies: data movement, no arithmetic, but it writes its output
    c = cost(lambda x: F.interpolate(x, scale_factor=2, mode="nearest"), (1, 1, 2, 2))
    assert c.flops == 0 and c.write_bytes == 16 * 4


def test_element_wise() -> None:
    assert cost(torch.add, (2, 3), (2, 3)).flops == 6  # one per output element
    assert cost(torch.mul, (2, 3), (1, 3)).flops == 6  # broadcast: the output counts
    assert cost(torch.sigmoid, (2, 3)).flops == 6
    assert module_cost(nn.ReLU(), (4, 5)).flops == 20
    assert cost(lambda x, y, z: torch.addcmul(x, y, z), (3,), (3,), (3,)).flops == 6  # 2 each


def test_reductions() -> None:
    assert cost(lambda x: x.sum(1), (4, 5)).flops == 20  # one add per input element
    assert cost(lambda x: x.var(1), (4, 5)).flops == 60  # mean 1 + squared deviation 2


def test_sort_and_topk_use_their_own_dim() -> None:
    # sort along the last dim of 2x8: 16 elements x ⌈log2 8⌉ = 3
    assert cost(lambda x: x.sort(-1).values, (2, 8)).flops == 48
    # topk(k=1, dim=0) on 4x16: dim is the THIRD argument; ⌈log2 4⌉ = 2 per element.
    # (Reading dim from args[1] would take k=1 as the dim: ⌈log2 16⌉ = 4 → 256.)
    assert cost(lambda x: x.topk(1, dim=0).values, (4, 16)).flops == 64 * 2
    assert cost(lambda x: x.topk(3).values, (4, 16)).flops == 64 * 4  # default dim -1
    assert cost(lambda x: x.kthvalue(2, dim=1).values, (4, 16)).flops == 64  # linear select


# -- bytes ---------------------------------------------------------------------------------


def test_bytes_of_an_op() -> None:
    c = module_cost(nn.Linear(5, 3), (2, 5))
    # reads x (10) + weight (15) + bias (3) floats; writes the 2x3 output
    assert c.read_bytes == (10 + 15 + 3) * 4
    assert c.write_bytes == c.activation_bytes == 6 * 4


def test_in_place_op_writes_but_allocates_nothing() -> None:
    c = module_cost(nn.ReLU(inplace=True), (4, 5))
    assert c.write_bytes == 80 and c.activation_bytes == 0


def test_views_are_free() -> None:
    c = cost(lambda x: x.view(-1).t().unsqueeze(0).permute(1, 0), (2, 3))
    assert c == Cost()


# -- the registry --------------------------------------------------------------------------


def test_duplicates_are_rejected_and_override_replaces() -> None:
    reg = REGISTRY.copy()
    with pytest.raises(UsageError):
        reg.add("aten.mm", lambda a, k, o: OpCost(1, 1))
    with pytest.raises(UsageError):
        reg.mark(OpKind.VIEW, ["aten.view"])

    @reg.register("aten.mm", override=True)
    def mm_as_one(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
        return OpCost(1, 1)

    assert cost(torch.mm, (2, 3), (3, 4), registry=reg).macs == 1
    assert cost(torch.mm, (2, 3), (3, 4)).macs == 24  # the global registry is untouched


def test_user_formula_for_an_unsupported_op() -> None:
    reg = FormulaRegistry()  # empty: every op is unsupported, never silently zero
    report = run(torch.mm, (2, 3), (3, 4), registry=reg)
    assert report.unsupported_ops == {"aten.mm": 1}
    # Fn's forward runs the op itself: its row of own ops carries it
    assert report.layer("(mm)").unsupported_ops == {"aten.mm": 1}
    assert any("no formula" in n for n in report.notes)
    mm = REGISTRY.formula("aten.mm")
    assert mm is not None
    reg.add("aten.mm", mm)
    assert run(torch.mm, (2, 3), (3, 4), registry=reg).totals.macs == 24


def test_in_place_variants_share_the_formula() -> None:
    assert REGISTRY.kind("aten.relu_") is OpKind.COMPUTE
    assert REGISTRY.formula("aten.add_") is REGISTRY.formula("aten.add")


# -- how formulas read their arguments ---------------------------------------------------------


def _argument_names(op: str) -> list[tuple[str, ...]] | None:
    """Every overload's argument names of an ``aten.``/``torchvision.``/``function.`` op, None
    when this torch lacks it (or a builtin function hides its signature)."""
    import inspect

    import torchvision  # noqa: F401  (registers torch.ops.torchvision)

    kind, name = op.split(".", 1)
    if kind in ("aten", "torchvision"):
        packet = getattr(getattr(torch.ops, kind), name, None)
        if packet is None:
            return None
        return [tuple(a.name for a in getattr(packet, o)._schema.arguments)
                for o in packet.overloads()]
    try:
        return [tuple(inspect.signature(getattr(F, name)).parameters)]
    except (AttributeError, TypeError, ValueError):
        return None


def test_formula_schemas_follow_torchs_argument_names() -> None:
    # A formula reads arguments by name through a Schema; if torch reordered an op's
    # arguments, the names here would stop matching and a formula would read the wrong one
    checked = set()
    for schema in formulas.SCHEMAS:
        assert schema.ops, f"schema {schema.names} names no op to check it against"
        for op in schema.ops:
            overloads = _argument_names(op)
            if overloads is None:
                continue
            n = len(schema.names)
            assert any(names[:n] == schema.names for names in overloads), (
                f"{op}: {schema.names} is not a prefix of any of {overloads}")
            checked.add(op)
    # the ops whose arguments sit deepest are all on every torch this project supports
    assert {"aten.mkldnn_rnn_layer_backward", "aten._cudnn_rnn_backward",
            "aten._transformer_encoder_layer_fwd", "aten.convolution_backward",
            "function.multi_head_attention_forward", "torchvision.roi_align"} <= checked


def test_an_unknown_rnn_mode_fails_the_formula_instead_of_costing_an_lstm() -> None:
    formula = REGISTRY.formula("aten.mkldnn_rnn_layer_backward")
    assert formula is not None
    t = torch.empty(5, 2, 3, device="meta")
    w_ih, w_hh = torch.empty(16, 3, device="meta"), torch.empty(16, 4, device="meta")
    b = torch.empty(16, device="meta")
    args = [t, w_ih, w_hh, b, b, None, None, t, None, None, t, None, None, False,
            2, 4, 1, True]  # mode 2: LSTM
    assert formula(tuple(args), {}, None).macs == 2 * (16 * 3 + 16 * 4) * 10
    args[14] = 7  # no such mode
    with pytest.raises(ValueError, match="unknown RNN mode 7"):
        formula(tuple(args), {}, None)


def test_primary_output_only_is_a_registry_trait() -> None:
    assert REGISTRY.has("aten.native_batch_norm", OpTrait.PRIMARY_OUTPUT_ONLY)
    assert not REGISTRY.has("aten.convolution", OpTrait.PRIMARY_OUTPUT_ONLY)
    reg = REGISTRY.copy()
    assert reg.has("aten.native_batch_norm", OpTrait.PRIMARY_OUTPUT_ONLY)
    reg.declare(OpTrait.PRIMARY_OUTPUT_ONLY, ["aten.max_pool2d_with_indices"])
    assert not REGISTRY.has("aten.max_pool2d_with_indices", OpTrait.PRIMARY_OUTPUT_ONLY)
    # the trait is what makes batch norm's bytes the same on meta and the CPU (its saved
    # statistics are empty on the CPU in eval, C-sized on meta)
    bn = nn.BatchNorm2d(4).eval()
    write = {d: profile(bn, "4x6x6", device=d).totals.write_bytes for d in ("meta", "cpu")}
    assert write["meta"] == write["cpu"] == 4 * 6 * 6 * 4  # the normalised output only
    # without the trait the meta run counts save_mean and save_invstd as written too
    bare = FormulaRegistry()
    bare.mark(OpKind.MOVEMENT, ["aten._native_batch_norm_legit_no_training"])
    meta = profile(bn, "4x6x6", device="meta", registry=bare).totals.write_bytes
    assert meta > write["meta"]
