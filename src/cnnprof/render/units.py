"""Humane units, and parsing them back (budgets accept ``"25.6M"``, ``"120MB"``, ``"8ms"``)."""

from __future__ import annotations

import math
import re

_COUNT_SUFFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K"))


def count(value: float | int, digits: int = 3) -> str:
    """61100840 → '61.1 M'; 0 → '0'; small numbers as integers."""
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    mag = abs(value)
    for scale, suffix in _COUNT_SUFFIXES:
        if mag >= scale:
            return f"{sign}{_sig(mag / scale, digits)} {suffix}"
    return f"{sign}{mag:,.0f}" if float(mag).is_integer() else f"{sign}{_sig(mag, digits)}"


def nbytes(value: float | int, digits: int = 3) -> str:
    """Decimal byte units (MB = 10^6 B), as torchstat and most tools print them."""
    if value == 0:
        return "0 B"
    sign = "-" if value < 0 else ""
    mag = abs(value)
    for scale, suffix in ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "KB")):
        if mag >= scale:
            return f"{sign}{_sig(mag / scale, digits)} {suffix}"
    return f"{sign}{mag:.0f} B"


def seconds(value: float, digits: int = 3) -> str:
    if value == 0:
        return "0 s"
    mag = abs(value)
    for scale, suffix in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if mag >= scale:
            return f"{_sig(value / scale, digits)} {suffix}"
    return f"{_sig(value / 1e-9, digits)} ns"


def percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def _sig(value: float, digits: int) -> str:
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(value)))))
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def shape(dims: tuple[int, ...] | list[int]) -> str:
    return "x".join(str(d) for d in dims) if dims else "scalar"


def shapes(items: tuple[tuple[int, ...], ...] | list[list[int]], limit: int = 3) -> str:
    parts = [shape(tuple(s)) for s in items[:limit]]
    if len(items) > limit:
        parts.append(f"+{len(items) - limit}")
    return ", ".join(parts)


# -- parsing -------------------------------------------------------------------------------

_PARSE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-zµ]*)\s*$")
_COUNT_UNITS = {"": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "B": 1e9, "T": 1e12}
_BYTE_UNITS = {
    "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
    "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40,
}
_TIME_UNITS = {"S": 1.0, "MS": 1e-3, "US": 1e-6, "µS": 1e-6, "NS": 1e-9}


class UnitError(ValueError):
    pass


def parse_quantity(text: str | int | float, kind: str) -> float:
    """Parse ``"25.6M"`` (kind="count"), ``"120MB"`` ("bytes"), ``"8ms"`` ("time")."""
    if isinstance(text, bool):
        raise UnitError(f"expected a number, got {text!r}")
    if isinstance(text, (int, float)):
        if text < 0 or (isinstance(text, float) and not math.isfinite(text)):
            raise UnitError(f"expected a non-negative finite number, got {text!r}")
        return float(text)
    match = _PARSE.match(str(text))
    if not match:
        raise UnitError(f"cannot read {text!r} as a {kind}")
    number, unit = float(match.group(1)), match.group(2)
    if kind == "count":
        if unit not in _COUNT_UNITS:
            raise UnitError(f"unknown count unit {unit!r} in {text!r} (use K, M, G, T)")
        return number * _COUNT_UNITS[unit]
    if kind == "bytes":
        key = unit.upper() or "B"
        if key not in _BYTE_UNITS:
            raise UnitError(f"unknown byte unit {unit!r} in {text!r} (use B, KB, MB, GB, MiB ...)")
        return number * _BYTE_UNITS[key]
    if kind == "time":
        key = unit.upper() or "S"
        if key not in _TIME_UNITS:
            raise UnitError(f"unknown time unit {unit!r} in {text!r} (use s, ms, us, ns)")
        return number * _TIME_UNITS[key]
    raise ValueError(f"unknown quantity kind {kind!r}")
