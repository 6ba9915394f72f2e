"""The Rich table as an SVG image (``--output table.svg``): what the terminal shows, for
slides and issues, drawn by Rich's own recorder."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cnnprof.render.options import RenderOptions
    from cnnprof.report import Report


def render(report: Report, options: RenderOptions) -> str:
    from rich.console import Console

    from cnnprof.render.table import print_table

    # the recorded console writes nowhere: only the export is wanted
    console = Console(record=True, file=io.StringIO(), width=options.width or 140,
                      force_terminal=True, color_system="truecolor", highlight=False)
    print_table(report, console, depth=options.depth, columns=options.columns)
    return console.export_svg(title=f"cnnprof {report.model.spec}")
