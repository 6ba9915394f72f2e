# ruff: noqa: E501  (the seed's tables are transcribed verbatim, lines and all)
"""Acceptance 1: torchstat's tables for AlexNet(10) and VGG16, as printed in seeds/004, are
reproduced cell by cell by cnnprof's torchstat definitions (annotate_torchstat) and by the
``stat`` shim's printed table.

The two tables below are transcribed verbatim from seeds/004 (the scraper collapsed the
spacing). Quirks of the seed that the comparison honours: the total row's MemRead/MemWrite
are the last row's values (torchstat reused a loop variable); memory(MB) is rounded to two
decimals; duration[%] is measured, never compared; Dropout rows show 0 because torchstat has
no rule for Dropout and cnnprof's own values for an eval-mode Dropout are 0 too (cnnprof
marks such cells with ``*``, stripped here).
"""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from dataclasses import dataclass

import pytest
import torch

from cnnprof.api import profile
from cnnprof.compat.torchstat import annotate_torchstat, stat
from cnnprof.render.torchstat import format_table
from cnnprof.report import Report
from cnnprof.zoo.classic import AlexNetStat, MnistCNN

SEED_ALEXNET_10 = """\
0 features.0 3 224 224 64 55 55 23296.0 0.74 140,553,600.0 70,470,400.0 695296.0 774400.0 55.56% 1469696.0
1 features.1 64 55 55 64 55 55 0.0 0.74 193,600.0 193,600.0 774400.0 774400.0 0.00% 1548800.0
2 features.2 64 55 55 64 27 27 0.0 0.18 373,248.0 193,600.0 774400.0 186624.0 5.57% 961024.0
3 features.3 64 27 27 192 27 27 307392.0 0.53 447,897,600.0 224,088,768.0 1416192.0 559872.0 22.21% 1976064.0
4 features.4 192 27 27 192 27 27 0.0 0.53 139,968.0 139,968.0 559872.0 559872.0 0.00% 1119744.0
5 features.5 192 27 27 192 13 13 0.0 0.12 259,584.0 139,968.0 559872.0 129792.0 0.00% 689664.0
6 features.6 192 13 13 384 13 13 663936.0 0.25 224,280,576.0 112,205,184.0 2785536.0 259584.0 0.00% 3045120.0
7 features.7 384 13 13 384 13 13 0.0 0.25 64,896.0 64,896.0 259584.0 259584.0 0.00% 519168.0
8 features.8 384 13 13 256 13 13 884992.0 0.17 299,040,768.0 149,563,648.0 3799552.0 173056.0 5.56% 3972608.0
9 features.9 256 13 13 256 13 13 0.0 0.17 43,264.0 43,264.0 173056.0 173056.0 0.00% 346112.0
10 features.10 256 13 13 256 13 13 590080.0 0.17 199,360,512.0 99,723,520.0 2533376.0 173056.0 0.00% 2706432.0
11 features.11 256 13 13 256 13 13 0.0 0.17 43,264.0 43,264.0 173056.0 173056.0 0.00% 346112.0
12 features.12 256 13 13 256 6 6 0.0 0.04 73,728.0 43,264.0 173056.0 36864.0 0.00% 209920.0
13 classifier.0 9216 9216 0.0 0.04 0.0 0.0 0.0 0.0 0.00% 0.0
14 classifier.1 9216 4096 37752832.0 0.02 75,493,376.0 37,748,736.0 151048192.0 16384.0 5.56% 151064576.0
15 classifier.2 4096 4096 0.0 0.02 4,096.0 4,096.0 16384.0 16384.0 0.00% 32768.0
16 classifier.3 4096 4096 0.0 0.02 0.0 0.0 0.0 0.0 0.00% 0.0
17 classifier.4 4096 4096 16781312.0 0.02 33,550,336.0 16,777,216.0 67141632.0 16384.0 5.55% 67158016.0
18 classifier.5 4096 4096 0.0 0.02 4,096.0 4,096.0 16384.0 16384.0 0.00% 32768.0
19 classifier.6 4096 10 40970.0 0.00 81,910.0 40,960.0 180264.0 40.0 0.00% 180304.0
total 57044810.0 4.15 1,421,458,422.0 711,488,448.0 180264.0 40.0 100.00% 237378896.0
=======================================================================================================================================================
Total params: 57,044,810
-------------------------------------------------------------------------------------------------------------------------------------------------------
Total memory: 4.15MB
Total MAdd: 1.42GMAdd
Total Flops: 711.49MFlops
Total MemR+W: 226.38MB
"""

SEED_VGG16 = """\
0 features.0 3 224 224 64 224 224 1792.0 12.25 173,408,256.0 89,915,392.0 609280.0 12845056.0 1.67% 13454336.0
1 features.1 64 224 224 64 224 224 0.0 12.25 3,211,264.0 3,211,264.0 12845056.0 12845056.0 0.00% 25690112.0
2 features.2 64 224 224 64 224 224 36928.0 12.25 3,699,376,128.0 1,852,899,328.0 12992768.0 12845056.0 18.33% 25837824.0
3 features.3 64 224 224 64 224 224 0.0 12.25 3,211,264.0 3,211,264.0 12845056.0 12845056.0 0.00% 25690112.0
4 features.4 64 224 224 64 112 112 0.0 3.06 2,408,448.0 3,211,264.0 12845056.0 3211264.0 3.33% 16056320.0
5 features.5 64 112 112 128 112 112 73856.0 6.12 1,849,688,064.0 926,449,664.0 3506688.0 6422528.0 6.67% 9929216.0
6 features.6 128 112 112 128 112 112 0.0 6.12 1,605,632.0 1,605,632.0 6422528.0 6422528.0 1.67% 12845056.0
7 features.7 128 112 112 128 112 112 147584.0 6.12 3,699,376,128.0 1,851,293,696.0 7012864.0 6422528.0 11.67% 13435392.0
8 features.8 128 112 112 128 112 112 0.0 6.12 1,605,632.0 1,605,632.0 6422528.0 6422528.0 0.00% 12845056.0
9 features.9 128 112 112 128 56 56 0.0 1.53 1,204,224.0 1,605,632.0 6422528.0 1605632.0 1.67% 8028160.0
10 features.10 128 56 56 256 56 56 295168.0 3.06 1,849,688,064.0 925,646,848.0 2786304.0 3211264.0 5.00% 5997568.0
11 features.11 256 56 56 256 56 56 0.0 3.06 802,816.0 802,816.0 3211264.0 3211264.0 1.67% 6422528.0
12 features.12 256 56 56 256 56 56 590080.0 3.06 3,699,376,128.0 1,850,490,880.0 5571584.0 3211264.0 8.33% 8782848.0
13 features.13 256 56 56 256 56 56 0.0 3.06 802,816.0 802,816.0 3211264.0 3211264.0 0.00% 6422528.0
14 features.14 256 56 56 256 56 56 590080.0 3.06 3,699,376,128.0 1,850,490,880.0 5571584.0 3211264.0 10.00% 8782848.0
15 features.15 256 56 56 256 56 56 0.0 3.06 802,816.0 802,816.0 3211264.0 3211264.0 0.00% 6422528.0
16 features.16 256 56 56 256 28 28 0.0 0.77 602,112.0 802,816.0 3211264.0 802816.0 0.00% 4014080.0
17 features.17 256 28 28 512 28 28 1180160.0 1.53 1,849,688,064.0 925,245,440.0 5523456.0 1605632.0 3.33% 7129088.0
18 features.18 512 28 28 512 28 28 0.0 1.53 401,408.0 401,408.0 1605632.0 1605632.0 1.67% 3211264.0
19 features.19 512 28 28 512 28 28 2359808.0 1.53 3,699,376,128.0 1,850,089,472.0 11044864.0 1605632.0 6.67% 12650496.0
20 features.20 512 28 28 512 28 28 0.0 1.53 401,408.0 401,408.0 1605632.0 1605632.0 0.00% 3211264.0
21 features.21 512 28 28 512 28 28 2359808.0 1.53 3,699,376,128.0 1,850,089,472.0 11044864.0 1605632.0 6.67% 12650496.0
22 features.22 512 28 28 512 28 28 0.0 1.53 401,408.0 401,408.0 1605632.0 1605632.0 0.00% 3211264.0
23 features.23 512 28 28 512 14 14 0.0 0.38 301,056.0 401,408.0 1605632.0 401408.0 0.00% 2007040.0
24 features.24 512 14 14 512 14 14 2359808.0 0.38 924,844,032.0 462,522,368.0 9840640.0 401408.0 1.67% 10242048.0
25 features.25 512 14 14 512 14 14 0.0 0.38 100,352.0 100,352.0 401408.0 401408.0 0.00% 802816.0
26 features.26 512 14 14 512 14 14 2359808.0 0.38 924,844,032.0 462,522,368.0 9840640.0 401408.0 3.33% 10242048.0
27 features.27 512 14 14 512 14 14 0.0 0.38 100,352.0 100,352.0 401408.0 401408.0 0.00% 802816.0
28 features.28 512 14 14 512 14 14 2359808.0 0.38 924,844,032.0 462,522,368.0 9840640.0 401408.0 1.67% 10242048.0
29 features.29 512 14 14 512 14 14 0.0 0.38 100,352.0 100,352.0 401408.0 401408.0 0.00% 802816.0
30 features.30 512 14 14 512 7 7 0.0 0.10 75,264.0 100,352.0 401408.0 100352.0 0.00% 501760.0
31 classifier.0 25088 4096 102764544.0 0.02 205,516,800.0 102,760,448.0 411158528.0 16384.0 3.33% 411174912.0
32 classifier.1 4096 4096 0.0 0.02 4,096.0 4,096.0 16384.0 16384.0 0.00% 32768.0
33 classifier.2 4096 4096 0.0 0.02 0.0 0.0 0.0 0.0 0.00% 0.0
34 classifier.3 4096 4096 16781312.0 0.02 33,550,336.0 16,777,216.0 67141632.0 16384.0 1.67% 67158016.0
35 classifier.4 4096 4096 0.0 0.02 4,096.0 4,096.0 16384.0 16384.0 0.00% 32768.0
36 classifier.5 4096 4096 0.0 0.02 0.0 0.0 0.0 0.0 0.00% 0.0
37 classifier.6 4096 1000 4097000.0 0.00 8,191,000.0 4,096,000.0 16404384.0 4000.0 0.00% 16408384.0
total 138357544.0 109.29 30,958,666,264.0 15,503,489,024.0 16404384.0 4000.0 100.00% 783170624.0
============================================================================================================================================================
Total params: 138,357,544
------------------------------------------------------------------------------------------------------------------------------------------------------------
Total memory: 109.29MB
Total MAdd: 30.96GMAdd
Total Flops: 15.5GFlops
Total MemR+W: 746.89MB
"""


@dataclass(frozen=True)
class SeedRow:
    name: str
    input_shape: list[int]
    output_shape: list[int]
    params: float
    memory: str
    madd: float
    flops: float
    mem_read: float
    mem_write: float
    mem_rw: float


def parse_seed(text: str) -> tuple[list[SeedRow], list[str], list[str]]:
    """(leaf rows, the total row's cells, the "Total ..." lines) of a seed table."""
    rows: list[SeedRow] = []
    total: list[str] = []
    lines: list[str] = []
    for line in text.splitlines():
        cells = line.split()
        if line.startswith("Total "):
            lines.append(line.strip())
        elif cells and cells[0] == "total":
            total = cells[1:]
        elif cells and cells[0].isdigit():
            # index, name, input dims, output dims, then 8 numeric cells
            dims = cells[2:-8]
            half = len(dims) // 2
            params, memory, madd, flops, mread, mwrite, _duration, mrw = cells[-8:]
            rows.append(SeedRow(
                cells[1], [int(d) for d in dims[:half]], [int(d) for d in dims[half:]],
                float(params), memory, float(madd.replace(",", "")),
                float(flops.replace(",", "")), float(mread), float(mwrite), float(mrw)))
    return rows, total, lines


@pytest.fixture(scope="module")
def alexnet_report() -> Report:
    return annotate_torchstat(profile("alexnet_seed"), measure=False)


@pytest.fixture(scope="module")
def vgg_report() -> Report:
    return annotate_torchstat(profile("vgg16_seed"), measure=False)


def _check_rows(report: Report, seed_text: str) -> None:
    rows, _total, _lines = parse_seed(seed_text)
    leaves = [layer for layer in report.layers if layer.is_leaf]
    assert [layer.name for layer in leaves] == [row.name for row in rows]
    for layer, row in zip(leaves, rows, strict=True):
        got = layer.torchstat
        assert got is not None
        assert got["input_shape"] == row.input_shape, layer.name
        assert got["output_shape"] == row.output_shape, layer.name
        assert got["params"] == row.params, layer.name
        assert f"{got['memory_mb']:.2f}" == row.memory, layer.name
        assert got["madd"] == row.madd, layer.name
        assert got["flops"] == row.flops, layer.name
        assert got["mem_read_bytes"] == row.mem_read, layer.name
        assert got["mem_write_bytes"] == row.mem_write, layer.name
        assert got["mem_rw_bytes"] == row.mem_rw, layer.name


def _check_printed(report: Report, seed_text: str) -> None:
    """The shim's printed table, cell by cell (duration and the * marks aside)."""
    rows, total, lines = parse_seed(seed_text)
    printed = format_table(report).replace("*", "")
    body = [line.split() for line in printed.splitlines()[1:len(rows) + 2]]
    for cells, row in zip(body, rows, strict=False):  # body ends with the total row
        expected = [row.name, *map(str, row.input_shape), *map(str, row.output_shape)]
        assert cells[1:len(expected) + 1] == expected
    seed_cells = [line.split() for line in seed_text.splitlines()
                  if line.split() and line.split()[0].isdigit()]
    for mine, theirs in zip(body, seed_cells, strict=False):
        # everything but the measured duration[%] (second-to-last cell)
        assert mine[:-2] + mine[-1:] == theirs[:-2] + theirs[-1:]
    mine_total = body[-1]
    assert mine_total[0] == "total"
    assert mine_total[1:-2] + mine_total[-1:] == total[:-2] + total[-1:]
    assert [line for line in printed.splitlines() if line.startswith("Total ")] == lines


def test_alexnet_rows_match_the_seed(alexnet_report: Report) -> None:
    _check_rows(alexnet_report, SEED_ALEXNET_10)


def test_vgg16_rows_match_the_seed(vgg_report: Report) -> None:
    _check_rows(vgg_report, SEED_VGG16)


def test_alexnet_printed_table_matches_the_seed(alexnet_report: Report) -> None:
    _check_printed(alexnet_report, SEED_ALEXNET_10)


def test_vgg16_printed_table_matches_the_seed(vgg_report: Report) -> None:
    _check_printed(vgg_report, SEED_VGG16)


def test_total_row_quirk_and_true_sums(alexnet_report: Report) -> None:
    root = alexnet_report.layers[0].torchstat
    assert root is not None and root["rollup"]
    # the seed's total row shows MemRead 180264.0 (classifier.6's), the true sum is larger
    assert root["mem_read_bytes"] > 180264
    # MemR+W total is a true sum in torchstat too: 237,378,896 B = 226.38 MiB
    assert root["mem_rw_bytes"] == 237_378_896


def test_stat_shim_prints_the_seed_table_and_returns_the_report() -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        report = stat(AlexNetStat(10), (3, 224, 224))
    text = out.getvalue()
    assert "Total params: 57,044,810" in text
    assert "Total MAdd: 1.42GMAdd" in text and "Total Flops: 711.49MFlops" in text
    assert "Total MemR+W: 226.38MB" in text
    # the share is measured: every row has one and they add up to 100%
    shares = [layer.torchstat["duration_share"] for layer in report.layers
              if layer.is_leaf and layer.torchstat]
    assert all(share is not None for share in shares)
    assert sum(shares) == pytest.approx(1.0)
    assert any("measured" in note for note in report.notes)


def test_stat_shim_leaves_the_model_as_found() -> None:
    model = MnistCNN().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with redirect_stdout(io.StringIO()):
        stat(model, (1, 28, 28))
    assert model.training and all(m.training for m in model.modules())
    after = model.state_dict()
    assert after.keys() == before.keys()  # no torchstat/thop-style buffers left behind
    # eval-mode timing: BatchNorm running statistics untouched
    assert all(torch.equal(after[k], v) for k, v in before.items())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
