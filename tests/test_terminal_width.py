"""Tables fit the terminal (issue 17): at every width from 60 to 200 no line is wider than
the terminal, no number is cut (``61,…``), no type name is broken, and what a narrow table
leaves out is named in its caption. Golden files pin ``cnnprof resnet50`` and ``cnnprof
crosscheck alexnet`` at COLUMNS=80 and 120 (regenerate: CNNPROF_REGEN_GOLDEN=1 pytest this
file, then read the diff)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from cnnprof.api import profile
from cnnprof.cli.app import main
from cnnprof.render import table
from cnnprof.render.console import make_console, plain_text
from cnnprof.report import Report

GOLDEN = Path(__file__).parent / "golden"
WIDTHS = (60, 80, 100, 120, 160, 200)
#: an ellipsis touching a digit or a digit group: a number that was cut
CUT_NUMBER = re.compile(r"[\d,.]…|…[\d,.]")


def _check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("CNNPROF_REGEN_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} changed (see module docstring)"


def _assert_fits(text: str, width: int, types: set[str]) -> None:
    lines = text.splitlines()
    too_wide = [line for line in lines if len(line) > width]
    assert not too_wide, f"{len(too_wide)} lines wider than {width}: {too_wide[0]!r}"
    cut = [line for line in lines if CUT_NUMBER.search(line)]
    assert not cut, f"a number is cut: {cut[0]!r}"
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))
    # a type name broken over two lines would leave a fragment ("BatchNorm", "2d")
    fragments = {w for w in words if any(t != w and t.startswith(w) and len(w) > 3
                                         and w not in types for t in types)}
    assert not fragments, f"type names broken: {sorted(fragments)}"


@pytest.fixture(scope="module")
def resnet50() -> Report:
    return profile("resnet50")


@pytest.mark.parametrize("width", [80, 120])
def test_resnet50_golden(width: int, monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    assert main(["resnet50"]) == 0
    out = capsys.readouterr().out
    report = profile("resnet50")
    types = {layer.type for layer in report.layers}
    _assert_fits(out, width, types)
    # every row's type is shown whole, and the shared relu shows its calls
    assert all(re.search(rf"\b{t}\b", out) for t in types - {"ResNet"})
    assert re.search(r"\brelu\s+ReLU\s+3\b", out)
    if width == 80:
        assert "not shown at this width: Input shape, FLOPs" in out
    else:  # 120 has room for every default column, and the distinct shapes' marker
        assert "not shown" not in out and "Input shape" in out and "; +1" in out
    _check_golden(f"resnet50_{width}.txt", out)


@pytest.fixture(scope="module")
def alexnet_comparison() -> Any:
    pytest.importorskip("thop")
    pytest.importorskip("fvcore")
    from cnnprof.cli.crosscheck import run

    return run("alexnet", [], 1, {}, ("thop", "fvcore", "torchstat"))


@pytest.mark.parametrize("width", [80, 120])
def test_crosscheck_alexnet_golden(width: int, alexnet_comparison: Any,
                                   monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    from cnnprof.cli.crosscheck import print_comparison

    monkeypatch.setenv("COLUMNS", str(width))
    capsys.readouterr()
    print_comparison(alexnet_comparison, make_console())  # the CLI's own console
    out = capsys.readouterr().out
    types = {row["type"] for row in alexnet_comparison.layers}
    _assert_fits(out, width, types)
    for row in alexnet_comparison.totals:  # every total, whole, with its digit groups
        assert f"{row['cnnprof']:,}" in out
    # tool versions vary between installs; everything else is pinned
    pinned = "\n".join(line for line in out.splitlines() if not line.startswith("Versions:"))
    _check_golden(f"crosscheck_alexnet_{width}.txt", pinned + "\n")


@pytest.mark.parametrize("columns", ["default", "all", "bytes", "shapes", "torchstat"])
def test_every_preset_fits_every_width(resnet50: Report, columns: str) -> None:
    report = resnet50
    if columns == "torchstat":
        from cnnprof.compat.torchstat import annotate_torchstat

        report = annotate_torchstat(resnet50, measure=False)
    types = {layer.type for layer in report.layers}
    for width in WIDTHS:
        text = plain_text(table.render(report, columns=columns, width=width), width=width)
        _assert_fits(text, width, types)
        layout = table.fit(report, table.resolve_columns(columns), depth=None, width=width)
        for hidden in layout.hidden:  # what is left out is said
            assert hidden.header in " ".join(text.split()), (width, hidden.header)


def test_wide_terminal_changes_nothing(resnet50: Report) -> None:
    """Room enough: the full table, two-space tree, full shape cells, nothing hidden."""
    layout = table.fit(resnet50, table.resolve_columns("default"), depth=None, width=400)
    assert (layout.hidden, layout.indent, layout.compact_cells) == ((), 2, False)


def test_long_names_give_way_last(resnet50: Report) -> None:
    """Narrower than every column can go: only layer names are cut (… after letters)."""
    text = plain_text(table.render(resnet50, width=40), width=40)
    assert max(len(line) for line in text.splitlines()) <= 40
    assert not CUT_NUMBER.search(text)


def test_footnotes_keep_numbers_with_units() -> None:
    line = "Params 25.6 M (25,557,032; trainable 25,557,032, frozen 0) · 102 MB · MACs 4.09 G"
    wrapped = table.wrap_line(line, 40).splitlines()
    assert all(len(w) <= 40 for w in wrapped)
    assert "102 MB" in wrapped[1] and any("MACs 4.09 G" in w for w in wrapped)
    prose = "Eager: end-to-end median 3.21 ms with hooks, 2.9 ms without (hook overhead +10.7%)"
    assert all("ms" not in w.split()[0:1] for w in table.wrap_line(prose, 30).splitlines())


@pytest.mark.parametrize("width", [60, 100, 200])
@pytest.mark.parametrize("argv", [["shapes", "alexnet"], ["inputs", "lenet", "--max", "64"],
                                  ["lenet", "--columns", "all"], ["lenet", "--backward"]])
def test_other_commands_fit(argv: list[str], width: int, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    main(argv)
    out = capsys.readouterr().out
    _assert_fits(out, width, {"Conv2d", "MaxPool2d", "AdaptiveAvgPool2d", "Sequential"})
    assert not re.search(r"\[[^\]]*\n", out)  # a bracketed shape is never split


@pytest.mark.parametrize("width", [60, 100, 200])
def test_diff_fits(width: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                   capsys: pytest.CaptureFixture[str]) -> None:
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(profile("lenet").to_json())
    new.write_text(profile("mnist_cnn").to_json())
    monkeypatch.setenv("COLUMNS", str(width))
    capsys.readouterr()
    main(["diff", str(old), str(new)])
    out = capsys.readouterr().out
    _assert_fits(out, width, {"Conv2d", "Sequential", "BatchNorm2d", "Linear"})
    if width == 60:
        assert "not shown at this width: Output shape, Type" in " ".join(out.split())
