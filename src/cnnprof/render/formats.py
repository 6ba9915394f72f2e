"""Output formats by name and by file suffix; each turns a report into text (or bytes)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cnnprof.errors import UsageError
from cnnprof.render.options import RenderOptions
from cnnprof.report import Report

__all__ = ["FORMATS", "SUFFIXES", "RenderOptions", "format_for", "register_format", "render"]

Renderer = Callable[[Report, RenderOptions], str]


def _json(report: Report, options: RenderOptions) -> str:
    return report.to_json() + "\n"


def _table(report: Report, options: RenderOptions) -> str:
    from cnnprof.render import table
    from cnnprof.render.console import plain_text

    width = options.width or 160
    return plain_text(table.render(report, depth=options.depth, columns=options.columns,
                                   width=width), width=width)


FORMATS: dict[str, Renderer] = {"json": _json, "table": _table, "txt": _table}
SUFFIXES: dict[str, str] = {".json": "json", ".txt": "table"}


def register_format(name: str, renderer: Renderer, *suffixes: str) -> None:
    FORMATS[name] = renderer
    for suffix in suffixes:
        SUFFIXES[suffix] = name


def format_for(fmt: str | None, output: Path | None) -> str:
    """Explicit --format wins; else the --output suffix; else the table."""
    if fmt:
        name = fmt.lower()
        if name not in FORMATS:
            known = ", ".join(sorted(FORMATS))
            raise UsageError(f"unknown --format {fmt!r}", hint=f"known: {known}")
        return name
    if output is not None:
        suffix = output.suffix.lower()
        if suffix not in SUFFIXES:
            raise UsageError(
                f"cannot tell the format of {output.name!r} from its suffix",
                hint=f"use one of {', '.join(sorted(SUFFIXES))} or pass --format",
            )
        return SUFFIXES[suffix]
    return "table"


def render(report: Report, fmt: str, options: RenderOptions) -> str:
    return FORMATS[fmt](report, options)


def _deferred(module: str) -> Renderer:
    """``cnnprof.render.<module>.render``, imported on first use: ``cnnprof MODEL -f json``
    should not pay for the HTML and SVG writers (about 0.1 s of imports)."""

    def renderer(report: Report, options: RenderOptions) -> str:
        import importlib

        return importlib.import_module(f"cnnprof.render.{module}").render(report, options)

    renderer.__name__ = f"{module}_render"
    return renderer


def _register_exports() -> None:
    register_format("csv", _deferred("csv"), ".csv")
    register_format("markdown", _deferred("markdown"), ".md", ".markdown")
    register_format("md", FORMATS["markdown"])
    register_format("html", _deferred("html"), ".html", ".htm")
    register_format("svg", _deferred("svg"), ".svg")


_register_exports()
