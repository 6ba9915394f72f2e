"""Exports: CSV, Markdown, HTML, the table as SVG, and the ``--plot`` chart."""

from __future__ import annotations

import csv
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from cnnprof.api import profile
from cnnprof.render.formats import FORMATS, SUFFIXES, RenderOptions, render
from cnnprof.render.plot import chart_rows, chart_svg
from cnnprof.render.table import visible_layers
from cnnprof.report import Report


@pytest.fixture(scope="module")
def lenet() -> Report:
    return profile("lenet")


@pytest.fixture(scope="module")
def resnet18() -> Report:
    return profile("resnet18")


def test_formats_are_registered() -> None:
    assert {"csv", "markdown", "md", "html", "svg"} <= set(FORMATS)
    assert SUFFIXES[".csv"] == "csv" and SUFFIXES[".md"] == "markdown"
    assert SUFFIXES[".html"] == "html" and SUFFIXES[".svg"] == "svg"


def test_csv_rows_and_leaf_sums(lenet: Report) -> None:
    rows = list(csv.DictReader(io.StringIO(render(lenet, "csv", RenderOptions()))))
    assert len(rows) == len(lenet.layers)
    assert rows[0]["type"] == "LeNet" and rows[0]["depth"] == "0"
    conv1 = next(r for r in rows if r["name"] == "layer1.conv1")
    # Conv2d(1, 6, 3, padding=1) on 1x1x28x28: 6*(1*3*3)+6 = 60 params,
    # 28*28*6 outputs * 9 MACs = 42,336 MACs
    assert (conv1["params"], conv1["macs"], conv1["output_shapes"]) == ("60", "42336",
                                                                         "1x6x28x28")
    leaves = [r for r in rows if r["is_leaf"] == "1"]
    # LeNet's own forward only flattens (free): its leaves add up to the totals
    for field in ("params", "macs", "flops", "activation_bytes"):
        assert sum(int(r[field]) for r in leaves) == getattr(lenet.totals, field)
    folded = list(csv.DictReader(io.StringIO(render(lenet, "csv", RenderOptions(depth=1)))))
    assert max(int(r["depth"]) for r in folded) == 1


def test_markdown_table(lenet: Report) -> None:
    text = render(lenet, "markdown", RenderOptions())
    lines = text.splitlines()
    table = [ln for ln in lines if ln.startswith("|")]
    # header, separator, one row per visible layer, totals
    assert len(table) == 2 + len(visible_layers(lenet, None)) + 1
    assert len({ln.count(" | ") for ln in table if not ln.startswith("|---")}) == 1
    assert "| `layer1.conv1` | Conv2d | 1x1x28x28 | 1x6x28x28 | 60 | 42.3 K |" in text
    assert table[-1].startswith("| **Total** |") and "**61.6 K**" in table[-1]
    assert text.startswith("## lenet (LeNet)")


def test_markdown_escapes_pipes() -> None:
    from cnnprof.render.markdown import cell

    assert cell("a|b") == "a\\|b"


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.texts.append(data)


def parse_html(text: str) -> _Html:
    parser = _Html()
    parser.feed(text)
    return parser


def assert_self_contained(text: str) -> None:
    """Nothing to fetch: no scripts, stylesheets, images or frames by URL."""
    parsed = parse_html(text)
    for tag, attrs in parsed.tags:
        assert tag not in ("script", "link", "img", "iframe", "object", "embed"), tag
        for key in ("src", "href"):
            value = attrs.get(key) or ""
            assert not re.match(r"^(https?:)?//", value), (tag, key, value)
    assert "@import" not in text and "url(http" not in text


def test_html_report(resnet18: Report) -> None:
    text = render(resnet18, "html", RenderOptions())
    assert text.startswith("<!DOCTYPE html>")
    assert_self_contained(text)
    parsed = parse_html(text)
    tags = [t for t, _ in parsed.tags]
    assert tags.count("svg") == 1 and tags.count("table") == 1
    rows = [a for t, a in parsed.tags if t == "tr"]
    # thead row + one per layer below the root + tfoot row
    assert len(rows) == 1 + len(resnet18.layers) - 1 + 1
    words = " ".join(parsed.texts)
    for title in ("MACs", "Parameters", "Memory", "11.7 M", "1.81 G", "layer4"):
        assert title in words, title
    assert "Time (median)" not in words  # counted, not timed


def test_html_timed_report_adds_time() -> None:
    from cnnprof.timing.api import TimingOptions, time_report

    timed = time_report(profile("lenet"), "lenet",
                        TimingOptions(device="cpu", warmup=0, repeats=2, memory=False))
    text = render(timed, "html", RenderOptions())
    words = " ".join(parse_html(text).texts)
    assert "Time (median)" in words and "Latency (median)" in words
    assert "Time (median)" in chart_svg(timed)


def test_chart_rows_partition_the_model(resnet18: Report) -> None:
    rows = chart_rows(resnet18)
    assert len(rows) <= 40
    names = [r.name for r in rows]
    # no row is inside another: the chart's bars add up to the model
    assert not any(b.startswith(a + ".") for a in names for b in names)
    assert sum(r.macs for r in rows) == resnet18.totals.macs
    assert sum(r.params for r in rows) == resnet18.totals.params
    assert [r.name for r in chart_rows(resnet18, depth=1)][:4] == ["conv1", "bn1", "relu",
                                                                   "maxpool"]


def test_chart_svg_is_deterministic(lenet: Report) -> None:
    first = chart_svg(lenet)
    assert first.startswith("<svg") and first.endswith("</svg>")
    assert chart_svg(lenet) == first
    assert "<dc:date>" not in first and "Matplotlib v" not in first


def test_cli_outputs_by_suffix_and_plot(cli, tmp_path: Path) -> None:
    for suffix, marker in ((".csv", "name,type,depth"), (".md", "## lenet (LeNet)"),
                           (".html", "<!DOCTYPE html>"), (".svg", "<svg")):
        target = tmp_path / f"lenet{suffix}"
        res = cli("lenet", "--output", str(target))
        assert res.code == 0, res.err
        assert target.read_text().lstrip().startswith(marker), suffix
    # the Rich table as an image: its rows are in the SVG text
    svg = (tmp_path / "lenet.svg").read_text()
    assert "conv1" in svg and "61.6" in svg

    png = tmp_path / "chart" / "lenet.png"
    res = cli("lenet", "--plot", str(png), "--format", "json")
    assert res.code == 0, res.err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert res.out.lstrip().startswith("{")  # the report still goes to stdout
    plot_svg = tmp_path / "lenet-chart.svg"
    assert cli("lenet", "--plot", str(plot_svg)).code == 0
    assert "Parameters" in plot_svg.read_text()
    res = cli("lenet", "--plot", str(tmp_path / "x.gif"))
    assert res.code == 2 and ".png, .svg or .pdf" in res.err


def test_markdown_of_a_failed_forward(cli) -> None:
    res = cli("alexnet_seed_227", "--format", "markdown")
    assert res.code == 1
    assert "**Forward failed:**" in res.out


def _markdown_header(text: str) -> list[str]:
    line = next(ln for ln in text.splitlines() if ln.startswith("| Layer |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_markdown_of_a_timed_report_has_the_tables_time_columns(cli) -> None:
    # a real CPU timing of LeNet (few repeats: only the columns matter here)
    timed = ("lenet", "--device", "cpu", "--time", "--warmup", "1", "--repeats", "2",
             "-f", "markdown")
    res = cli(*timed)
    assert res.code == 0, res.err
    # the Rich table's default for a timed report: the "timed" preset
    assert _markdown_header(res.out) == ["Layer", "Type", "Output shape", "Params", "FLOPs",
                                         "Time", "Self", "Share"]
    conv = next(ln for ln in res.out.splitlines() if ln.startswith("| `layer1.conv1` |"))
    assert re.search(r"\| \d[\d.]* [mµn]?s \|", conv), conv  # a measured time in its cell
    assert "Timed on" in res.out
    explicit = cli(*timed, "--columns", "default")
    assert explicit.code == 0, explicit.err
    assert _markdown_header(explicit.out) == ["Layer", "Type", "Input shape", "Output shape",
                                              "Params", "MACs", "FLOPs"]
