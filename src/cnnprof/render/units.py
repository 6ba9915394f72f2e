"""The renderers' name for :mod:`cnnprof.units`.

Number formatting and parsing live at the bottom layer (``cnnprof.units``) because budgets,
weights and failure messages parse and print quantities too; renderers keep importing them
from here so ``render`` reads as one package.
"""

from __future__ import annotations

from cnnprof.units import (
    KINDS,
    UnitError,
    bracketed,
    ceil_quantity,
    count,
    format_quantity,
    nbytes,
    parse_quantity,
    percent,
    seconds,
    shape,
    shapes,
    signed_percent,
)

__all__ = [
    "KINDS",
    "UnitError",
    "bracketed",
    "ceil_quantity",
    "count",
    "format_quantity",
    "nbytes",
    "parse_quantity",
    "percent",
    "seconds",
    "shape",
    "shapes",
    "signed_percent",
]
