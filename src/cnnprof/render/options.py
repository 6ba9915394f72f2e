"""What every renderer is asked for (depth, columns, width).

Its own module so the renderers (csv, html, markdown, svg) and the format table that
dispatches to them (``formats``) both import it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RenderOptions:
    depth: int | None = None
    columns: str | None = None
    width: int | None = None
