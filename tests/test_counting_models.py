"""Whole models: costs land in the right layer, rows add up, devices agree, oracles agree."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnprof import profile
from cnnprof.report import COST_FIELDS, Cost, Report


class Block(nn.Module):
    """A residual block whose ``+`` runs in its own forward, not in a child module."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + x


class Functional(nn.Module):
    """Every functional op the issue names, each in a parent's own forward."""

    def __init__(self) -> None:
        super().__init__()
        self.block = Block(4)
        self.proj = nn.Linear(16, 24)
        self.lstm = nn.LSTM(8, 8, batch_first=True)
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x).flatten(2)                    # (1, 4, 16)
        qkv = self.proj(y).view(1, 4, 3, 8)             # (1, 4, 3, 8)
        q, k, v = qkv.unbind(2)
        scores = torch.matmul(q, k.transpose(-1, -2))   # (1, 4, 4): 4*8*4 = 128 MACs
        mixed = torch.einsum("bij,bjd->bid", scores, v)  # 4*4*8 = 128 MACs
        att = F.scaled_dot_product_attention(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1))
        out, _ = self.lstm(mixed + att.squeeze(1))
        return self.head(out[:, -1])


def layer_cost(report: Report, name: str) -> Cost:
    return report.layer(name).cost


def test_functional_ops_land_in_the_right_layer() -> None:
    r = profile(Functional(), "4x4x4")
    # the residual + : 4*4*4 = 64 adds in the block's own forward, a row of its own beside
    # the conv; the block keeps nothing of its own
    add = r.layer("block.(add)")
    assert (add.kind, add.type, add.is_leaf, add.depth) == ("ops", "functional", True, 2)
    assert add.flops == 64 and add.macs == 0 and add.self_cost == add.cost
    assert add.input_shapes == ((1, 4, 4, 4),) * 2 and add.output_shapes == ((1, 4, 4, 4),)
    assert add.attributes == {"parent": "block", "segment": 1, "ops": {"add": 1}}
    assert r.layer("block").self_cost == Cost()
    assert r.layer("block.conv").macs == 64 * 36  # 64 outputs x 4*3*3
    # root's own forward between proj and lstm: matmul 128 + einsum 128 + SDPA (16 scores x
    # (8 + 8)) = 512 MACs, one row named by its ops in run order (matmul and einsum are bmm)
    gap = r.layer("(bmm+scaled_dot_product_attention+add)")
    assert gap.macs == 128 + 128 + 16 * 16 and gap.attributes["segment"] == 2
    assert gap.attributes["ops"] == {"bmm": 2, "scaled_dot_product_attention": 1, "add": 1}
    root = gap.cost
    assert [rec.name for rec in r.layers] == [
        "", "block", "block.conv", "block.(add)", "proj",
        "(bmm+scaled_dot_product_attention+add)", "lstm", "head"]
    # LSTM inside nn.LSTM: 4 steps x (32*8 + 32*8) = 2048
    assert r.layer("lstm").macs == 4 * 512
    assert r.layer("lstm").self_cost.macs == 2048
    assert r.totals.macs == (r.layer("block").macs + r.layer("proj").macs
                             + root.macs + 2048 + r.layer("head").macs)


def test_nothing_unsupported_in_common_models() -> None:
    for name in ("resnet18", "vit_b_16", "mobilenet_v3_small", "swin_t"):
        assert profile(name).unsupported_ops == {}, name


@pytest.mark.parametrize("spec", ["alexnet", "resnet18", "vit_b_16", "functional"])
def test_self_costs_sum_to_the_totals(spec: str) -> None:
    r = profile(Functional(), "4x4x4") if spec == "functional" else profile(spec)
    total = Cost.total(rec.self_cost for rec in r.layers)
    assert total == r.totals.cost
    # and every parent's inclusive cost is its self cost plus its direct children's
    by_depth = {rec.name: rec for rec in r.layers}
    for rec in r.layers:
        kids = [k for k in r.layers if k.depth == rec.depth + 1
                and k.name.startswith(rec.name + "." if rec.name else "")]
        assert rec.cost == rec.self_cost + Cost.total(k.cost for k in kids), rec.name
    assert by_depth[""].cost == r.totals.cost


def test_alexnet_leaf_rows_add_up() -> None:
    # no functional ops in parents, so the leaves alone carry every field of the total
    r = profile("alexnet")
    for field in COST_FIELDS:
        assert sum(getattr(rec, field) for rec in r.leaves()) == getattr(r.totals, field), field
    assert round(r.totals.macs / 1e9, 3) == 0.714  # torchvision's _ops
    assert not any(rec.is_ops for rec in r.layers)  # flatten is a view: no row


@pytest.mark.parametrize("spec", ["resnet50", "vit_b_16", "swin_t", "functional"])
def test_leaf_rows_add_up_with_functional_ops(spec: str) -> None:
    # parents' own ops are rows of their own, so leaves carry the totals in every model
    r = profile(Functional(), "4x4x4") if spec == "functional" else profile(spec)
    assert any(rec.is_ops for rec in r.layers)
    for field in COST_FIELDS:
        assert sum(getattr(rec, field) for rec in r.leaves()) == getattr(r.totals, field), field
    for rec in r.layers:
        if not rec.is_leaf:
            assert rec.self_cost == Cost(), rec.name


def test_functional_rows_of_resnet_and_vit() -> None:
    r = profile("resnet50")
    adds = [rec for rec in r.layers if rec.is_ops]
    # one residual out += identity per Bottleneck, placed after the block's last child
    assert [rec.name for rec in adds][:2] == ["layer1.0.(add_)", "layer1.1.(add_)"]
    assert len(adds) == 16 and all(rec.attributes["ops"] == {"add_": 1} for rec in adds)
    names = [rec.name for rec in r.layers]
    assert names.index("layer1.0.(add_)") == names.index("layer1.0.downsample.1") + 1
    assert r.layer("layer1.0.(add_)").flops == 256 * 56 * 56
    assert r.layer("layer1.0.(add_)").activation_bytes == 0  # in place: nothing new
    v = profile("vit_b_16")
    # two residual adds per encoder block: the repeated label gets #2
    block = "encoder.layers.encoder_layer_0"
    assert v.layer(f"{block}.(add)").attributes["segment"] == 3  # after ln_1, attn, dropout
    assert v.layer(f"{block}.(add)#2").attributes["segment"] == 5  # after ln_2, mlp
    assert v.layer("(cat)").output_shapes == ((1, 197, 768),)  # the class token
    attn = v.layer(f"{block}.self_attention.(multi_head_attention_forward)")
    assert attn.macs == v.layer(f"{block}.self_attention").macs  # out_proj never runs


def test_repeated_parent_calls_sum_into_one_row_and_long_gaps_name_their_heaviest_ops() -> None:
    class Mixer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.lin(x)
            z = (y * 2).exp().sum(-1, keepdim=True)  # 12 FLOPs each
            return torch.matmul(y.transpose(0, 1), y).sum() + z  # mm 96, sum 16, add 3

    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mix = Mixer()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.mix(self.mix(x).expand(3, 4))

    r = profile(Twice(), [torch.ones(3, 4)])
    gap = [rec for rec in r.layers if rec.is_ops]
    assert len(gap) == 1 and gap[0].calls == 2  # the same gap of both calls: one row
    # five ops ran: the three with the most FLOPs (mm, sum 12 + 16, then mul before exp
    # by run order) are named, in run order
    assert gap[0].name == "mix.(mul+sum+mm+more)"
    assert gap[0].attributes["ops"] == {"mul": 1, "exp": 1, "sum": 2, "mm": 1, "add": 1}


class LSTMNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(100, 32)
        self.lstm = nn.LSTM(32, 64, num_layers=2, batch_first=True, bidirectional=True)
        self.cell = nn.GRUCell(128, 16)
        self.fc = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(self.emb(x))
        return self.fc(self.cell(h[:, -1]))


def _costs(report: Report) -> list[tuple[str, Cost, Cost]]:
    return [(r.name, r.cost, r.self_cost) for r in report.layers]


@pytest.mark.parametrize("spec", ["resnet18", "vit_b_16", "lstm", "encoder"])
def test_meta_and_cpu_count_the_same(spec: str) -> None:
    model: nn.Module | str
    inputs: str | None = None
    if spec == "lstm":
        model, inputs = LSTMNet(), "12:int64"
    elif spec == "encoder":
        # a real model under no_grad would take the fused fast path; cnnprof turns it off
        layer = nn.TransformerEncoderLayer(64, 4, 128, batch_first=True)
        model, inputs = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False), "10x64"
    else:
        model = spec
    meta = profile(model, inputs, device="meta")
    cpu = profile(model, inputs, device="cpu")
    assert meta.device == "meta" and cpu.device == "cpu"
    assert _costs(meta) == _costs(cpu)
    assert meta.totals == cpu.totals
    assert torch.backends.mha.get_fastpath_enabled()  # restored after the run


class Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(64, 192)
        self.out = nn.Linear(64, 64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).view(2, 16, 3, 4, 16).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v)
        return self.out(a.transpose(1, 2).reshape(2, 16, 64))


@pytest.mark.parametrize("spec", ["resnet18", "vgg11", "mobilenet_v2", "attention"])
def test_macs_match_flop_counter_mode(spec: str) -> None:
    """FlopCounterMode counts exactly the matmul class (2 per MAC, no bias) on these models."""
    import torchvision
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        if spec == "attention":
            model: nn.Module = Attention()
            x = torch.empty(2, 16, 64)
        else:
            model = torchvision.models.get_model(spec, weights=None)
            x = torch.empty(1, 3, 224, 224)
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    report = profile(model, [x])
    assert 2 * report.totals.macs == counter.get_total_flops()


def test_regnet_builds_with_parameters_on_meta() -> None:
    # its constructor needs real arithmetic (.tolist()); parameters still land on meta
    r = profile("regnet_y_400mf")
    assert r.device == "meta"
    assert r.totals.params == 4_344_144
    assert round(r.totals.macs / 1e9, 3) == 0.402
