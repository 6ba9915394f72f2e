"""Regenerate the example reports in ``reports/``::

    python -m cnnprof.reports_gen reports/

Every classic seed model (``cnnprof models --filter classic``) and a few torchvision
models, each as JSON, Markdown and HTML, plus ``README.md`` indexing them. The output is a
pure function of the code: counted on the meta device with default inputs, no timings,
no timestamps, no versions or paths of the machine that ran it, so a test can regenerate
the reports and fail when the committed ones are stale.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from cnnprof.errors import ModelFailedError
from cnnprof.report import Report

#: The documented command, recorded as ``meta.command`` in every report.
COMMAND = "python -m cnnprof.reports_gen reports/"
TORCHVISION = ("alexnet", "resnet18", "resnet50", "mobilenet_v3_large", "vit_b_16")
FORMATS = (("json", "json"), ("md", "markdown"), ("html", "html"))


def model_names() -> list[str]:
    from cnnprof.zoo import classic

    return [*classic.ENTRIES, *TORCHVISION]


def build(name: str) -> Report:
    """The report of ``name`` with provenance reduced to the fixed command (torch's
    version string and the like differ between machines that count the same)."""
    from cnnprof.api import profile

    try:
        report = profile(name, command=COMMAND, device="meta")  # whatever the process loaded
    except ModelFailedError as exc:  # a seed with a bug: keep what ran, and why it stopped
        if not isinstance(exc.report, Report):
            raise
        report = exc.report
        error = {k: v for k, v in (report.error or {}).items() if k != "traceback"}
        report = report.with_updates(error=error)
    return report.with_updates(meta={"command": COMMAND})


def render_all(report: Report) -> dict[str, str]:
    """File suffix → text for one report."""
    from cnnprof.render.formats import RenderOptions, render

    options = RenderOptions()
    return {suffix: render(report, fmt, options) for suffix, fmt in FORMATS}


def index(reports: Sequence[tuple[str, Report]]) -> str:
    from cnnprof import units

    lines = [
        "# Example reports",
        "",
        "Per-layer reports of the seed models (`cnnprof models --filter classic`) and a few",
        "torchvision models, counted on the meta device with each model's default input.",
        "Regenerate them all with:",
        "",
        "```bash",
        COMMAND,
        "```",
        "",
        "`tests/test_reports_fresh.py` regenerates them and fails when these files are stale.",
        "",
        "| Model | Source | Input | Params | MACs | FLOPs | Activations | Reports |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for name, report in reports:
        t = report.totals
        shapes = ", ".join(units.shape(i.shape) for i in report.inputs)
        links = " · ".join(f"[{suffix}]({name}.{suffix})" for suffix, _ in FORMATS)
        failed = " (forward fails)" if report.error else ""
        lines.append(f"| `{name}`{failed} | {report.model.source} | {shapes} | "
                     f"{units.count(t.params)} | {units.count(t.macs)} | {units.count(t.flops)} | "
                     f"{units.nbytes(t.activation_bytes)} | {links} |")
    lines.append("")
    return "\n".join(lines)


def generate(out_dir: Path, names: Sequence[str] | None = None) -> dict[Path, str]:
    """Path → text of every file to write (nothing is written here)."""
    files: dict[Path, str] = {}
    reports: list[tuple[str, Report]] = []
    for name in names if names is not None else model_names():
        report = build(name)
        reports.append((name, report))
        for suffix, text in render_all(report).items():
            files[out_dir / f"{name}.{suffix}"] = text
    files[out_dir / "README.md"] = index(reports)
    return files


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0].startswith("-"):
        print(f"usage: {COMMAND.replace('reports/', 'OUT_DIR')}", file=sys.stderr)
        return 2
    out_dir = Path(args[0])
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, text in generate(out_dir).items():
        path.write_text(text, encoding="utf-8")
    print(f"wrote {len(model_names())} models to {out_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
