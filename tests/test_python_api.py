"""cnnprof from Python and notebooks: the public surface, a Report that shows itself, the
DataFrame, and timing through ``cnnprof.profile(..., time=True)`` (issue 16)."""

from __future__ import annotations

import builtins
import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import cnnprof
from cnnprof.errors import UsageError
from cnnprof.measurements import LayerMemory, LayerTime, Roofline, TimingSummary
from cnnprof.report import Report

ROOT = Path(__file__).resolve().parents[1]

#: The public surface; changing it is an API change (docs/api.md documents each name).
PUBLIC = [
    "CnnprofError", "Cost", "Device", "LayerMemory", "LayerRecord", "LayerTime",
    "ModelFailedError", "Report", "Roofline", "TimingSummary", "Totals", "__version__",
    "load_model", "profile",
]


def test_all_is_pinned_and_every_name_resolves() -> None:
    assert sorted(cnnprof.__all__) == sorted(PUBLIC)
    for name in cnnprof.__all__:
        assert getattr(cnnprof, name) is not None, name
    with pytest.raises(AttributeError):
        cnnprof.not_a_thing  # noqa: B018


def test_every_public_name_is_documented() -> None:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    for name in PUBLIC:
        assert f"`{name}" in text, name


def test_importing_cnnprof_and_its_report_type_does_not_import_torch() -> None:
    code = ("import sys, cnnprof; cnnprof.Report; cnnprof.Device; cnnprof.LayerTime; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": str(ROOT / "src"), "PATH": ""})
    assert out.stdout.strip() == "False"


# -- a Report that shows itself ----------------------------------------------------------------
@pytest.fixture(scope="module")
def resnet50() -> Report:
    return cnnprof.profile("resnet50")


def test_repr_is_one_short_line(resnet50: Report) -> None:
    text = repr(resnet50)
    assert len(text) < 300 and "\n" not in text
    for part in ("resnet50", "ResNet", "1x3x224x224", "params 25.6 M", "MACs 4.09 G",
                 "FLOPs", "on meta"):
        assert part in text, part


def test_repr_html_is_a_self_contained_table_of_every_row(resnet50: Report) -> None:
    html = resnet50._repr_html_()
    assert not re.search(r"https?://", html)
    assert "<script" not in html and "<table" in html
    rows = re.findall(r'<tr class="[^"]*" title="([^"]*)"', html)
    # every layer but the root, which is the footer
    assert rows == [r.name for r in resnet50.layers[1:]]
    assert "layer1.0.(add_)" in rows and "<tfoot>" in html


def test_rich_print_renders_the_table(resnet50: Report) -> None:
    from rich.console import Console

    buffer = io.StringIO()
    Console(file=buffer, width=160, no_color=True).print(resnet50)
    text = buffer.getvalue()
    assert "resnet50 (ResNet)" in text and "Bottleneck" in text and "Total" in text
    assert "25.6 M" in text and "4.09 G" in text


def test_show_prints_folded_columns_at_a_width(capsys: pytest.CaptureFixture[str],
                                               resnet50: Report) -> None:
    resnet50.show(depth=1, columns="params,macs", width=70)
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 70
    assert "layer4 …" in out and "Bottleneck" not in out  # folded at depth 1
    assert "FLOPs" not in out.splitlines()[2]  # only the asked columns in the header


def test_show_refuses_an_unknown_column(resnet50: Report) -> None:
    with pytest.raises(UsageError, match="nonsense"):
        resnet50.show(columns="params,nonsense")


def test_dataframe_one_row_per_layer_with_integer_counts(resnet50: Report) -> None:
    frame = resnet50.to_dataframe()
    assert len(frame) == len(resnet50.layers)
    assert list(frame["name"]) == [r.name for r in resnet50.layers]
    for column in ("macs", "flops", "params", "calls", "read_bytes", "self_macs", "depth"):
        assert str(frame[column].dtype) == "int64", column
    # the leaf rows add up to the totals, in the frame as in the report
    assert int(frame.loc[frame["is_leaf"], "macs"].sum()) == resnet50.totals.macs
    assert frame.loc[frame["name"] == "conv1", "output_shapes"].item() == "1x64x112x112"
    assert "time_median_s" not in frame.columns  # not timed


def test_dataframe_without_pandas_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    report = cnnprof.profile("lenet")
    real = builtins.__import__

    def no_pandas(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("No module named 'pandas'")
        return real(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "pandas", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_pandas)
    with pytest.raises(UsageError) as info:
        report.to_dataframe()
    assert "\n" not in info.value.one_line() and "cnnprof[pandas]" in info.value.one_line()


def test_a_failed_report_still_shows_itself() -> None:
    class Broken(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x).view(3, -1)

    with pytest.raises(cnnprof.ModelFailedError) as info:
        cnnprof.profile(Broken(), [4])
    report = info.value.report
    assert isinstance(report, Report)
    assert "FAILED" in repr(report) and "<table" in report._repr_html_()


# -- timing through profile() ------------------------------------------------------------------
def test_profile_time_on_cpu_types_every_layer() -> None:
    report = cnnprof.profile("resnet18", "3x224x224", device="cpu", time=True, repeats=3,
                             warmup=1)
    assert report.device == "meta"  # counted on meta, timed on the CPU
    assert isinstance(report.timing, TimingSummary)
    assert report.timing.device == "cpu" and (report.timing.warmup, report.timing.repeats) == (
        1, 3)
    for layer in report.layers:
        assert isinstance(layer.time, LayerTime), layer.name
        assert layer.time.median_s > 0 and len(layer.time.samples_s) == 3, layer.name
        assert layer.memory is None and layer.roofline is None  # CUDA / peaks only
    assert not any(n.startswith("timed on") for n in report.notes)  # the device was named
    frame = report.to_dataframe()
    assert (frame["time_median_s"] > 0).all()
    # the typed results round-trip through JSON byte for byte
    again = Report.from_json(report.to_json())
    assert again == report and again.to_json() == report.to_json()


def test_profile_time_auto_says_where_it_timed() -> None:
    net = nn.Sequential(nn.Linear(8, 8), nn.ReLU())
    report = cnnprof.profile(net, [8], time=True, repeats=2, warmup=0)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert report.timing is not None and report.timing.device == expected
    assert [n for n in report.notes if n.startswith(f"timed on {expected} (auto: ")]


def test_profile_time_with_the_users_tensors() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    x = torch.randn(2, 3, 16, 16)
    report = cnnprof.profile(net, x, device="cpu", time=True, repeats=2, warmup=0)
    assert report.inputs[0].shape == (2, 3, 16, 16) and report.timing is not None
    assert report.timing.batch == 2


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"device": "meta", "time": True}, "needs a real device"),
    ({"device": "tpu", "time": True}, "unknown device"),
    ({"device": "cpu", "time": True, "repeats": 0}, "--repeats >= 1"),
    ({"device": "cpu", "time": True, "warmup": -1}, "--warmup must be >= 0"),
    ({"repeats": 3}, "only apply with time=True"),
])
def test_profile_time_usage_errors(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(UsageError, match=re.escape(words)):
        cnnprof.profile("lenet", **kwargs)


# -- typed results: the JSON of reports made before them reads back the same ------------------
@pytest.mark.parametrize("path", sorted((ROOT / "reports" / "gpu").glob("*_b32_*.json")),
                         ids=lambda p: p.name)
def test_timed_gpu_reports_round_trip_byte_for_byte(path: Path) -> None:
    """The H100 calibration reports (eager, in-graph marks, kernels, roofline, memory) load
    into the typed results and write back the same keys in the same order."""
    data = json.loads(path.read_text(encoding="utf-8"))
    report = Report.from_dict(data)
    assert isinstance(report.timing, TimingSummary) and report.timing.mode == "graph"
    timed = [r for r in report.layers if r.time is not None]
    assert timed and all(isinstance(r.time, LayerTime) for r in timed)
    assert any(isinstance(r.memory, LayerMemory) for r in timed)
    assert any(isinstance(r.roofline, Roofline) for r in timed)
    out = report.to_dict()
    assert json.dumps(out["timing"]) == json.dumps(data["timing"])
    for before, after in zip(data["layers"], out["layers"], strict=True):
        for key in ("time", "memory", "roofline", "kernels"):
            assert json.dumps(before.get(key)) == json.dumps(after.get(key)), (before["name"], key)


def test_dataframe_backward_columns_are_nullable_integers() -> None:
    report = cnnprof.profile("lenet", backward=True)
    frame = report.to_dataframe()
    assert str(frame["backward_macs"].dtype) == "Int64"
    root = report.root.backward
    assert root is not None and int(frame.loc[0, "backward_macs"]) == root.macs
    # a report read back from JSON gives the same frame
    again = Report.from_json(report.to_json()).to_dataframe()
    assert again.equals(frame)
