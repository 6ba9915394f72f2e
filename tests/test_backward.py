"""``--backward``: the cost of a backward pass, per layer, with the arithmetic written out."""

from __future__ import annotations

import json
from collections.abc import Callable

import torch
from torch import nn

from cnnprof import profile
from cnnprof.report import Cost, Report


def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))


def backward(report: Report, name: str) -> Cost:
    cost = report.layer(name).backward
    assert cost is not None
    return cost


def test_absent_unless_asked() -> None:
    r = profile(mlp(), "5")
    assert r.totals.backward is None and all(rec.backward is None for rec in r.layers)


def test_mlp_per_layer_arithmetic() -> None:
    r = profile(mlp(), "5", batch=2, backward=True)
    # last Linear(4, 3), batch 2: grad_input 2x3 @ 3x4 = 24 MACs, grad_weight 3x2 @ 2x4 = 24,
    # grad_bias: sum of the 2x3 gradient = 6 adds
    assert backward(r, "2").macs == 48
    assert backward(r, "2").flops == 2 * 48 + 6
    # ReLU: threshold_backward, one per element of the 2x4 gradient
    assert backward(r, "1") == Cost(0, 8, 32, 64, 32)
    # first Linear(5, 4): the model input needs no gradient, so only grad_weight 4x2 @ 2x5
    # = 40 MACs and grad_bias 8 adds
    assert backward(r, "0").macs == 40
    assert backward(r, "0").flops == 80 + 8
    assert r.totals.backward == backward(r, "")
    assert r.totals.backward.macs == 88


def test_convnet_backward_is_twice_forward_minus_the_first_input_gradient() -> None:
    r = profile("resnet18", backward=True)
    assert r.totals.backward is not None
    # every conv/linear costs its forward MACs for grad_weight and again for grad_input,
    # except conv1, whose input (the image) needs no gradient
    assert r.totals.backward.macs == 2 * r.totals.macs - r.layer("conv1").macs
    assert r.unsupported_ops == {}
    # forward numbers are unchanged by --backward
    assert profile("resnet18").totals.cost == r.totals.cost


class Parent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 6)
        self.w = nn.Parameter(torch.empty(6, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(self.fc(x), self.w)  # a functional op in the parent's forward


def test_functional_op_backward_goes_to_its_ops_row() -> None:
    r = profile(Parent(), "6", batch=3, backward=True)
    root, fc, ops = backward(r, ""), backward(r, "fc"), backward(r, "(mm)")
    # matmul (3x6 @ 6x2): grad of the fc output 3x2 @ 2x6 = 36 MACs, grad_w 6x3 @ 3x2 = 36
    assert ops.macs == 72
    # fc: grad_weight only (input needs none): 6x3 @ 3x6 = 108 MACs
    assert fc.macs == 108
    assert root == fc + ops  # the parent keeps no backward of its own


class TwoGaps(nn.Module):
    """Own ops in two gaps, the first one's result used only in the second."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scaled = x * self.fc.weight.sum()  # gap 0: its backward needs a mul and a sum
        return self.fc(x) * scaled  # gap 1


def test_each_gaps_backward_stays_with_the_gap_that_created_it() -> None:
    r = profile(TwoGaps(), "4", batch=2, backward=True)
    first, second = backward(r, "(sum+mul)"), backward(r, "(mul)")
    # gap 1, out = a * scaled (2x4): grad_a = g * scaled and grad_scaled = g * a, 8 each
    assert second.flops == 16
    # gap 0, scaled = x * s (s the 0-d sum of the 4x4 weight; x needs no gradient):
    # grad_s = sum(g * x), 8 mul + 8 summed; the sum's backward expands it to 4x4 (free) and
    # adds it to fc.weight's gradient from fc, 16
    assert first.flops == 8 + 8 + 16
    assert backward(r, "") == backward(r, "fc") + first + second
    for device in ("meta", "cpu"):  # the same split on every device
        other = profile(TwoGaps(), "4", batch=2, backward=True, device=device)
        assert [rec.backward for rec in other.layers] == [rec.backward for rec in r.layers]


def test_leaf_backward_rows_add_up_to_the_total() -> None:
    # swin_t's window attention runs in its parent's forward (matmuls, softmax): its
    # backward used to stay in the parent's own cost, 6.1 of 18.0 GFLOPs
    r = profile("swin_t", backward=True)
    assert r.totals.backward is not None
    leaves = [rec.backward for rec in r.layers if rec.is_leaf and rec.backward is not None]
    assert sum(leaves, Cost()) == r.totals.backward
    attention = backward(r, "features.1.0.attn.(addmm+bmm+_softmax+more)")
    assert attention.flops > 0


def test_a_gap_of_views_leaves_only_bytes_with_its_parent() -> None:
    # ViT's x[:, 0] after the encoder is a view: its gap gets no row, and select's backward
    # (a zero-filled 197x768 gradient with the class token's row copied in) stays with the
    # model itself: bytes, but no MACs or FLOPs, so those still add up over the leaves
    r = profile("vit_b_16", backward=True)
    total = r.totals.backward
    assert total is not None
    leaves = sum((rec.backward for rec in r.layers if rec.is_leaf and rec.backward is not None),
                 Cost())
    assert (leaves.macs, leaves.flops) == (total.macs, total.flops)
    rest = total.activation_bytes - leaves.activation_bytes
    # one full-size gradient (torch 2.15's select_backward) or two (torch 2.4 writes zeros,
    # then the scattered result): backward bytes follow the kernels torch runs
    gradient = 197 * 768 * 4
    assert rest in (gradient, 2 * gradient)


def test_the_users_model_is_left_alone() -> None:
    model = mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for device in ("meta", "cpu"):
        r = profile(model, "5", device=device, backward=True)
        assert r.totals.backward is not None and r.totals.backward.macs > 0
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.is_grad_enabled()


def test_frozen_model_notes_why() -> None:
    model = mlp().requires_grad_(False)
    r = profile(model, "5", backward=True)
    assert r.totals.backward is None
    assert any("backward" in n for n in r.notes)


def test_lstm_and_attention_backward_are_supported() -> None:
    for spec, inputs in (("vit_b_16", None), (nn.LSTM(8, 8, 2), "4x8")):
        r = profile(spec, inputs, backward=True)
        assert r.unsupported_ops == {}
        assert r.totals.backward is not None
        assert r.totals.backward.macs > r.totals.macs


def test_cli_flag_json_and_columns(cli: Callable[..., object]) -> None:
    result = cli("resnet18", "--backward", "-f", "json")
    assert result.code == 0
    data = json.loads(result.out)
    assert data["totals"]["backward"]["macs"] == 2 * data["totals"]["macs"] - 118013952
    assert "backward" in data["layers"][1]
    table = cli("resnet18", "--backward", "--columns", "all", "--depth", "1", "--width", "200")
    assert table.code == 0
    assert "Bwd MACs" in table.out and "Bwd FLOPs" in table.out
