"""cnnprof's torchstat definitions against torchstat's own per-module functions, on the seed
models (acceptance 2), plus the ``--columns torchstat`` CLI path."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from cnnprof.api import profile
from cnnprof.compat.peers import run_torchstat
from cnnprof.compat.torchstat import annotate_torchstat
from cnnprof.counting.torchstat import torchstat_values
from cnnprof.inputs import InputSpec, make_tensors
from cnnprof.render.torchstat import round_value
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


def _right_column(table: str, header: str, before: str | None) -> list[str]:
    """Body cells of the right-justified column ``header`` of a Rich table: the text between
    the end of the ``before`` header (or the row's first word, the layer name) and its own."""
    lines = table.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("Layer"))
    end = lines[head].index(header) + len(header)
    start = lines[head].index(before) + len(before) if before else None
    cells = []
    for line in lines[head + 2:]:
        if not line.strip():
            break  # the blank line before the Total footer
        part = line[:end]
        cells.append(part[start:].strip() if start else " ".join(part.split()[1:]))
    return cells


def test_cli_single_ts_column_gets_torchstats_values(cli: Callable[..., Any]) -> None:
    # a ts_* column asked for by key, not through the preset, still runs torchstat's pass
    alexnet = ("alexnet", "--input", "3x224x224")
    alone = cli(*alexnet, "--columns", "ts_madd", "--width", "250")
    assert alone.code == 0, alone.err
    preset = cli(*alexnet, "--columns", "torchstat", "--width", "250")
    assert preset.code == 0, preset.err
    madd = _right_column(alone.out, "MAdd", None)
    assert madd == _right_column(preset.out, "MAdd", "memory(MB)")
    assert sum(1 for c in madd if c) >= 20  # every module row has a value (ops rows none)
    # features.0, Conv2d(3, 64, 11, stride=4, padding=2) with bias, 64x55x55 outputs: torchstat
    # counts 3*11*11 multiplies and 3*11*11 adds (the bias's included) each, 140,553,600
    assert "140,553,600" in madd

    result = cli(*alexnet, "--columns", "ts_flops", "-f", "json")
    assert result.code == 0, result.err
    conv = next(layer for layer in json.loads(result.out)["layers"]
                if layer["name"] == "features.0")
    assert conv["torchstat"]["flops"] == 70_470_400  # torchstat's: (3*11*11 + 1) * 64*55*55
    assert conv["torchstat"]["madd"] == 140_553_600
