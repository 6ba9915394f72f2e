"""cnnprof's torchstat definitions against torchstat's own per-module functions, on the seed
models (acceptance 2), plus the ``--columns torchstat`` CLI path."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from cnnprof.api import profile
from cnnprof.compat.peers import run_torchstat
from cnnprof.compat.torchstat import annotate_torchstat, round_value, torchstat_values
from cnnprof.inputs import InputSpec, make_tensors
from cnnprof.zoo import resolve

SEED_MODELS = ["lenet", "lenet_ordereddict", "mnist_cnn", "inception_block", "basic_block",
               "alexnet_lrn"]


def _cpu_run(name: str) -> tuple[Any, tuple[Any, ...]]:
    entry = resolve(name, {})
    model, _ = entry.build("cpu")
    specs = [InputSpec(s.shape, s.dtype) for s in entry.default_inputs]
    return model, tuple(make_tensors(specs, 1, "cpu"))


@pytest.mark.parametrize("name", SEED_MODELS)
def test_definitions_equal_torchstats_own_functions(name: str) -> None:
    report = annotate_torchstat(profile(name), measure=False)
    model, args = _cpu_run(name)
    theirs = run_torchstat(model, args)
    assert theirs.error is None and not theirs.crashed
    # torchstat's rows are modules: a parent's own ops (residual add, cat) have none
    leaves = [layer for layer in report.layers if layer.is_leaf and layer.calls]
    ops = [layer for layer in leaves if layer.is_ops]
    assert all(layer.torchstat is None for layer in ops)
    leaves = [layer for layer in leaves if not layer.is_ops]
    assert {layer.name for layer in leaves} == set(theirs.detail)
    for layer in leaves:
        mine, row = layer.torchstat, theirs.detail[layer.name]
        assert mine is not None
        assert mine["params"] == row["params"]
        for metric in ("madd", "flops", "mem_read_bytes", "mem_write_bytes"):
            group = metric if metric in ("madd", "flops") else "memory"
            if group in row["unsupported"]:
                # torchstat prints 0; cnnprof shows its own value and says so
                assert metric in mine["from_cnnprof"], (layer.name, metric)
            else:
                assert mine[metric] == row[metric], (layer.name, metric)
                assert metric not in mine["from_cnnprof"]


def test_unsupported_types_get_cnnprof_values_not_zero() -> None:
    report = annotate_torchstat(profile("alexnet_lrn"), measure=False)
    lrn = report.layer("conv1.lrn").torchstat
    assert lrn is not None
    assert set(lrn["from_cnnprof"]) == {"madd", "flops", "mem_read_bytes", "mem_write_bytes"}
    assert lrn["madd"] > 0 and lrn["mem_read_bytes"] > 0
    assert lrn["reason"] == "torchstat has no rule for LocalResponseNorm"
    # Softmax: MAdd only. 10 classes: exp 10 + add 9 + div 10 = 29
    softmax = report.layer("softmax.1").torchstat
    assert softmax is not None and softmax["madd"] == 29
    assert softmax["from_cnnprof"] == ["flops", "mem_read_bytes", "mem_write_bytes"]
    assert any("LocalResponseNorm" in note for note in report.notes)


def test_formula_arithmetic_on_a_grouped_conv() -> None:
    from cnnprof.report import LayerRecord

    conv = LayerRecord(
        name="c", type="Conv2d", depth=1, input_shapes=((2, 8, 10, 10),),
        input_dtypes=("float16",), output_shapes=((2, 4, 8, 8),), own_params=4 * 4 * 9 + 4,
        trainable_params=4 * 4 * 9 + 4,
        attributes={"kernel_size": [3, 3], "groups": 2, "bias": True},
    )
    values = torchstat_values(conv)
    # MAdd per sample: mul 3*3*(8/2)=36, add 36-1+1=36 → 72 * 8*8 * (4/2) * 2 = 18432
    assert values["madd"] == 18432
    # Flops: 3*3*8*(4/2)=144 * 2*8*8=128 (its formula keeps the full Cin) = 18432,
    # + bias 4*2*8*8 = 512
    assert values["flops"] == 18432 + 512
    # memory: read 2*(8*10*10 + 148) = 1896 elements, write 2*4*8*8 = 512; fp16 → ×2 bytes
    assert (values["mem_read_bytes"], values["mem_write_bytes"]) == (3792, 1024)
    # memory(MB) is always 4-byte, per sample: 4*8*8*4 / 2**20
    assert values["memory_mb"] == 4 * 8 * 8 * 4 / 2**20


def test_a_rank_torchstat_asserts_on_is_marked_not_crashed() -> None:
    import torch

    report = annotate_torchstat(profile(torch.nn.Linear(4, 3), "5x4"), measure=False)
    row = report.layers[0].torchstat
    assert row is not None and row["reason"].startswith("torchstat would crash")
    assert row["madd"] == report.layers[0].flops  # cnnprof's value, marked


def test_round_value_units() -> None:
    assert round_value(1_421_458_422) == "1.42G"
    assert round_value(15_503_489_024) == "15.5G"
    assert round_value(237_378_896, True) == "226.38M"
    assert round_value(999) == "999"


def test_cli_columns_torchstat_table_and_json(cli: Callable[..., Any]) -> None:
    table = cli("lenet", "--columns", "torchstat", "--width", "200")
    assert table.code == 0, table.err
    assert "MAdd" in table.out and "MemR+W(B)" in table.out and "duration[%]" in table.out
    # conv1: (9 mul + 9 add) * 28*28 * 6 = 84,672
    assert "84,672" in table.out
    result = cli("lenet", "--columns", "torchstat", "-f", "json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    conv = next(layer for layer in data["layers"] if layer["name"] == "layer1.conv1")
    assert conv["torchstat"]["madd"] == 84_672
    assert conv["torchstat"]["duration_source"] is not None  # measured on the CPU
    plain = json.loads(cli("lenet", "-f", "json").out)
    assert all("torchstat" not in layer for layer in plain["layers"])
