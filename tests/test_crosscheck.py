"""``cnnprof crosscheck``: thop, fvcore and torchstat next to cnnprof (acceptance 2 and 3)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from cnnprof.cli.crosscheck import run

#: layer types whose count thop, fvcore and cnnprof define the same way (MACs, no bias)
SAME_CONVENTION = {"Conv2d", "Linear"}


@pytest.mark.parametrize("name", ["lenet", "lenet_ordereddict", "mnist_cnn",
                                  "inception_block", "basic_block"])
def test_seed_models_agree_where_conventions_coincide(name: str) -> None:
    result = run(name, [], 1, {}, ("thop", "fvcore", "torchstat"))
    assert all(info["error"] is None for info in result.tools.values()), result.tools
    rows = [row for row in result.layers if row["type"] in SAME_CONVENTION]
    assert rows
    for row in rows:
        assert row["thop"] == row["cnnprof_macs"], row
        assert row["fvcore"] == row["cnnprof_macs"], row
    # nothing is left unexplained, and cnnprof's torchstat values equal torchstat's own
    assert not [f for f in result.findings if f.kind in ("differs", "crash")]
    params = result.totals[0]
    assert params["cnnprof"] == params["fvcore"] == params["torchstat"]


def test_basic_block_residual_add_is_attributed_to_the_block() -> None:
    result = run("basic_block", [], 1, {}, ("thop", "fvcore", "torchstat"))
    (row,) = result.functional_ops
    assert row["layer"] == "" and row["type"] == "BasicBlock"
    assert row["ops"] == {"add_": 1}  # named as the report's row of it, (add_)
    assert row["cnnprof_self_flops"] == 64 * 56 * 56  # one add per output element


def test_resnet18_shows_the_residual_adds_thop_and_torchstat_miss(
        cli: Callable[..., Any]) -> None:
    result = cli("crosscheck", "resnet18", "-f", "json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["schema"] == "cnnprof.crosscheck/1"
    blocks = {row["layer"]: row for row in data["functional_ops"]}
    expected = [f"layer{i}.{j}" for i in range(1, 5) for j in range(2)]
    assert sorted(blocks) == expected
    # layer1.0 adds two 64x56x56 tensors: 200,704 FLOPs; layer4.1 512x7x7: 25,088
    assert blocks["layer1.0"]["cnnprof_self_flops"] == 64 * 56 * 56
    assert blocks["layer4.1"]["cnnprof_self_flops"] == 512 * 7 * 7
    assert blocks["layer1.0"]["ops"] == {"add_": 1}
    unseen = {(f["tool"], f["layer"]) for f in data["findings"] if f["kind"] == "unseen"}
    assert ("thop", "layer1.0") in unseen and ("torchstat", "layer3.1") in unseen
    assert "aten::add_" in blocks["layer2.0"]["fvcore"]
    # BatchNorm: all three peers count it, cnnprof keeps it out of MACs → "convention"
    kinds = {(f["tool"], f["kind"]) for f in data["findings"] if f["layer"] == "bn1"}
    assert {("thop", "convention"), ("fvcore", "convention")} <= kinds


def test_crosscheck_table_and_usage_errors(cli: Callable[..., Any]) -> None:
    table = cli("crosscheck", "lenet", "--width", "160")
    assert table.code == 0, table.err
    assert "thop" in table.out and "fvcore" in table.out and "torchstat" in table.out
    assert "agree in every tool" in table.out
    bad = cli("crosscheck", "lenet", "--tools", "ptflopz")
    assert bad.code == 2 and "ptflopz" in bad.err


def test_peers_leave_the_model_as_found() -> None:
    import torch

    from cnnprof.compat.peers import run_fvcore, run_thop, run_torchstat
    from cnnprof.zoo.classic import MnistCNN

    model = MnistCNN().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    args = (torch.randn(2, 1, 28, 28),)
    for runner in (run_thop, run_fvcore, run_torchstat):
        runner(model, args)
    assert model.training
    after = model.state_dict()
    assert after.keys() == before.keys()  # thop's total_ops/total_params stay on the copy
    assert all(torch.equal(after[k], v) for k, v in before.items())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
