"""Lazy modules (nn.LazyLinear, nn.LazyConv2d) count like their materialised selves; the
initialisation is no part of the count, and a user's instance stays lazy (issue 17)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from cnnprof.api import profile

LAZY_FILE = """
import torch
from torch import nn


class LazyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.LazyConv2d(8, 3)
        self.bn = nn.LazyBatchNorm2d()
        self.fc = nn.LazyLinear(10)

    def forward(self, x):
        return self.fc(torch.flatten(torch.relu(self.bn(self.conv(x))), 1))
"""


def _eager_twin() -> nn.Module:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3)
            self.bn = nn.BatchNorm2d(8)
            self.fc = nn.Linear(8 * 14 * 14, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.flatten(torch.relu(self.bn(self.conv(x))), 1))

    return Net()


def _lazy(tmp_path: Path) -> nn.Module:
    import importlib.util

    path = tmp_path / "lazy_net.py"
    path.write_text(LAZY_FILE)
    spec = importlib.util.spec_from_file_location("lazy_net", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.LazyNet()  # type: ignore[no-any-return]


@pytest.mark.parametrize("device", ["auto", "meta", "cpu"])
def test_lazy_instance_counts_like_its_eager_twin(tmp_path: Path, device: str) -> None:
    model = _lazy(tmp_path)
    report = profile(model, "3x16x16", device=device)
    twin = profile(_eager_twin(), "3x16x16", device="meta")
    assert report.totals.params == twin.totals.params == 3 * 8 * 9 + 8 + 16 + 1568 * 10 + 10
    assert (report.totals.macs, report.totals.flops) == (twin.totals.macs, twin.totals.flops)
    assert [r.type for r in report.layers[1:]] == [r.type for r in twin.layers[1:]]
    assert any("lazy module(s) (conv, bn, fc)" in n for n in report.notes)
    # the user's instance is as found: still lazy, nothing materialised
    assert isinstance(model.fc, nn.LazyLinear)
    assert isinstance(model.fc.weight, nn.parameter.UninitializedParameter)


def test_lazy_file_spec_counts_no_initialisation_ops(tmp_path: Path) -> None:
    path = tmp_path / "lazy_net.py"
    path.write_text(LAZY_FILE)
    report = profile(f"{path}:LazyNet", "3x16x16")
    names = [r.name for r in report.layers]
    assert not any("empty" in n or "uniform" in n for n in names), names
    twin = profile(_eager_twin(), "3x16x16", device="meta")
    assert (report.totals.params, report.totals.macs) == (twin.totals.params, twin.totals.macs)


def test_lazy_cli(tmp_path: Path, cli: object) -> None:
    path = tmp_path / "lazy_net.py"
    path.write_text(LAZY_FILE)
    result = cli(f"{path}:LazyNet", "--input", "3x16x16")  # type: ignore[operator]
    assert result.code == 0, result.err
    assert "uninitialized" not in result.out + result.err and "Linear" in result.out
