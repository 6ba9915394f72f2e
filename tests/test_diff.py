"""``cnnprof diff``: totals and per-layer deltas between two real reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from cnnprof.api import profile
from cnnprof.diff import diff_reports
from cnnprof.report import Report


@pytest.fixture(scope="module")
def resnets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("reports")
    paths = []
    for name in ("resnet18", "resnet34"):
        path = folder / f"{name}.json"
        path.write_text(profile(name).to_json())
        paths.append(path)
    return paths[0], paths[1]


def test_resnet18_to_resnet34_names_the_added_blocks(resnets) -> None:
    old, new = (Report.load(p) for p in resnets)
    diff = diff_reports(old, new)
    # resnet34 has 3/4/6/3 BasicBlocks where resnet18 has 2/2/2/2: eight blocks added,
    # each one row (not a row per conv inside it), nothing removed or re-costed
    added = sorted(layer.name for layer in diff.layers if layer.status == "added")
    assert added == ["layer1.2", "layer2.2", "layer2.3", "layer3.2", "layer3.3", "layer3.4",
                     "layer3.5", "layer4.2"]
    assert diff.count("removed") == 0 and diff.count("changed") == 0
    params = diff.total("params")
    assert (params.old, params.new) == (11_689_512, 21_797_672)
    assert params.delta == 21_797_672 - 11_689_512
    # the added blocks' inclusive params are the whole delta: the rest of the net is equal
    assert sum(layer.delta("params") for layer in diff.layers) == params.delta
    assert sum(layer.delta("macs") for layer in diff.layers) == diff.total("macs").delta
    # layer4.2 (2 * 512*512*3*3 conv weights + 2 BN) has most impact: first
    assert diff.layers[0].name == "layer4.2"
    assert diff.layers[0].delta("params") == 2 * 512 * 512 * 9 + 2 * 2 * 512


def test_cli_diff_and_fail_above(cli, resnets) -> None:
    old, new = map(str, resnets)
    res = cli("diff", old, new, "--width", "200", "--limit", "0")
    assert res.code == 0, res.err
    out = res.out
    assert "resnet18 (1x3x224x224) → resnet34 (1x3x224x224)" in out
    params_row = next(ln for ln in out.splitlines() if ln.strip().startswith("Params"))
    # 11.7 M → 21.8 M: +10.1 M, 21,797,672 / 11,689,512 - 1 = +86.5%
    assert "+10.1 M" in params_row and "+86.5%" in params_row
    assert all(name in out for name in ("layer1.2", "layer3.5", "layer4.2"))
    assert "8 added, 0 removed, 0 changed" in out

    res = cli("diff", old, new, "--fail-above", "50%")
    assert res.code == 1
    assert "grew more than 50%" in res.err and "macs +1.85 G (+102.0%)" in res.err
    # activations grow 45.1%: under 50% when only they are watched
    assert cli("diff", old, new, "--fail-above", "50", "-m", "activation_bytes").code == 0
    assert cli("diff", old, new, "--fail-above", "150").code == 0
    # shrinking is never a failure
    assert cli("diff", new, old, "--fail-above", "0").code == 0


def test_json_and_markdown(cli, resnets, tmp_path: Path) -> None:
    old, new = map(str, resnets)
    res = cli("diff", old, new, "--format", "json")
    data = json.loads(res.out)
    assert data["schema"] == "cnnprof.diff/1"
    # every one of resnet18's 68 modules (root included) and 8 residual-add rows is in
    # resnet34, unchanged
    assert data["summary"] == {"added": 8, "removed": 0, "changed": 0, "unchanged": 76}
    totals = {t["metric"]: t for t in data["totals"]}
    assert totals["params"]["delta"] == 21_797_672 - 11_689_512
    target = tmp_path / "diff.md"
    assert cli("diff", old, new, "-f", "markdown", "-o", str(target)).code == 0
    text = target.read_text()
    assert "| Params | 11.7 M | 21.8 M | +10.1 M | +86.5% |" in text
    assert "| `layer4.2` | added | BasicBlock |" in text


class Before(nn.Module):
    def __init__(self, width: int = 16, extra: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.act = nn.ReLU()
        self.head = nn.Linear(width, 10)
        self.extra = nn.Linear(10, 10) if extra else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.conv(x)).mean((2, 3))
        x = self.head(x)
        return self.extra(x) if self.extra is not None else x


def test_before_after_change_shapes_costs_and_removal() -> None:
    old = profile(Before(16, extra=True), "3x8x8")
    new = profile(Before(32, extra=False), "3x8x8")
    diff = diff_reports(old, new)
    by = {layer.name: layer for layer in diff.layers}
    assert set(by) == {"conv", "act", "(mean)", "head", "extra"}
    assert by["extra"].status == "removed" and by["extra"].delta("params") == -(10 * 10 + 10)
    assert by["conv"].changes == ("shape", "cost")
    assert by["conv"].new_shapes == ((1, 32, 8, 8),)
    # conv MACs: 8*8 outputs * 3*3*3 per channel: 16 → 32 channels adds 64*27*16 = 27,648
    assert by["conv"].delta("macs") == 64 * 27 * 16
    # head: 16 → 32 inputs; same output shape, so a cost change only
    assert by["head"].changes == ("shape", "cost")  # its input shape changed
    assert by["head"].delta("params") == (32 * 10 + 10) - (16 * 10 + 10)
    # the .mean in the root's own forward is a row of its own: it reduces twice the channels
    assert by["(mean)"].changes == ("shape", "cost") and by["(mean)"].delta("flops") > 0
    for metric in ("params", "macs", "flops", "activation_bytes"):
        assert diff.total(metric).delta == sum(layer.delta(metric) for layer in diff.layers)
    assert diff.total("params").delta == sum(layer.delta("params") for layer in diff.layers)


def test_specs_and_bad_inputs(cli, tmp_path: Path) -> None:
    res = cli("diff", "lenet", "lenet_sequential", "--format", "json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["totals"][0]["new"] == 62_006
    bogus = tmp_path / "bogus.json"
    bogus.write_text('{"schema": "something/1"}')
    res = cli("diff", str(bogus), "lenet")
    assert res.code == 2 and "not a cnnprof report" in res.err
    res = cli("diff", str(tmp_path / "absent.json"), "lenet")
    assert res.code == 2 and "not found" in res.err
    assert cli("diff", "lenet", "lenet", "--fail-above", "lots").code == 2
    assert cli("diff", "lenet", "lenet", "--format", "xml").code == 2
