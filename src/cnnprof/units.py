"""Humane units, and parsing them back (budgets accept ``"25.6M"``, ``"120MB"``, ``"8ms"``).

A bottom-layer module: it imports nothing from cnnprof, so every layer may use it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction

_COUNT_SUFFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K"))


def count(value: float | int, digits: int = 3) -> str:
    """61100840 → '61.1 M'; 0 → '0'; small numbers as integers."""
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    mag = abs(value)
    scale, suffix = _unit_for(mag, _COUNT_SUFFIXES, digits)
    if scale > 1:
        return f"{sign}{_sig(mag / scale, digits)} {suffix}"
    return f"{sign}{mag:,.0f}" if float(mag).is_integer() else f"{sign}{_sig(mag, digits)}"


def _unit_for(mag: float, units: tuple[tuple[float, str], ...], digits: int) -> tuple[float, str]:
    """The largest unit ``mag`` reaches *after rounding* (999,500 is '1 M', not '1000 K')."""
    for scale, suffix in units:
        if float(_sig(mag / scale, digits)) >= 1:
            return scale, suffix
    return 1.0, ""


def nbytes(value: float | int, digits: int = 3) -> str:
    """Decimal byte units (MB = 10^6 B), as torchstat and most tools print them."""
    if value == 0:
        return "0 B"
    sign = "-" if value < 0 else ""
    mag = abs(value)
    scale, suffix = _unit_for(mag, ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "KB")), digits)
    if scale > 1:
        return f"{sign}{_sig(mag / scale, digits)} {suffix}"
    return f"{sign}{mag:.0f} B"


def seconds(value: float, digits: int = 3) -> str:
    if value == 0:
        return "0 s"
    mag = abs(value)
    scale, suffix = _unit_for(mag, ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")), digits)
    if scale == 1.0 and suffix == "":
        return f"{_sig(value / 1e-9, digits)} ns"
    return f"{_sig(value / scale, digits)} {suffix}"


def percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def signed_percent(value: float) -> str:
    """0.052 → '+5.2%': a change, an overhead or a headroom, always with its sign."""
    return f"{100 * value:+.1f}%"


def _sig(value: float, digits: int) -> str:
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
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


def bracketed(dims: Sequence[int]) -> str:
    """PyTorch's own notation, ``[1, 256, 6, 6]``, for messages and listings that should
    read like ``x.size()`` (tables use the compact ``1x256x6x6`` of :func:`shape`)."""
    return "[" + ", ".join(str(int(d)) for d in dims) + "]"


# -- parsing -------------------------------------------------------------------------------

_PARSE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-zµμ]*)\s*$")
# Decimal scales so "4.1G" reads as exactly 4_100_000_000, not 4099999999.9999995
_COUNT_UNITS = {"": "1", "k": "1e3", "K": "1e3", "M": "1e6", "G": "1e9", "B": "1e9", "T": "1e12"}
#: words people write after a count ("4.1 GFLOPs", "25.6M params"); they do not change the value
_COUNT_WORDS = ("flops", "flop", "macs", "mac", "params", "param", "ops")
_BYTE_UNITS = {
    "B": "1", "KB": "1e3", "MB": "1e6", "GB": "1e9", "TB": "1e12",
    "KIB": str(2**10), "MIB": str(2**20), "GIB": str(2**30), "TIB": str(2**40),
}
_TIME_UNITS = {"S": "1", "MS": "1e-3", "US": "1e-6", "NS": "1e-9"}
KINDS = ("count", "bytes", "time")


class UnitError(ValueError):
    pass


def parse_quantity(text: str | int | float, kind: str) -> float:
    """Parse ``"25.6M"`` (kind="count"), ``"120MB"`` ("bytes"), ``"8ms"`` ("time").

    Counts use SI prefixes (K, M, G or B for billion, T) and may carry a word such as
    ``GFLOPs`` or ``M params``; bytes are decimal (MB = 10^6) or binary (MiB = 2^20);
    times are s, ms, us/µs, ns. Bare numbers are base units.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown quantity kind {kind!r}")
    if isinstance(text, bool):
        raise UnitError(f"expected a number, got {text!r}")
    if isinstance(text, (int, float)):
        if text < 0 or (isinstance(text, float) and not math.isfinite(text)):
            raise UnitError(f"expected a non-negative finite number, got {text!r}")
        return float(text)
    if not isinstance(text, str):
        raise UnitError(f"expected a number or a string such as '25.6M', got {text!r}")
    raw = text.replace("_", "").replace(",", "")
    if kind == "count":
        # "4.1 GFLOPs" / "25.6M params": split the word off before reading the prefix
        lowered = raw.rstrip().lower()
        for word in _COUNT_WORDS:
            if lowered.endswith(word):
                raw = raw.rstrip()[: -len(word)]
                break
    match = _PARSE.match(raw)
    if not match:
        raise UnitError(f"cannot read {text!r} as a {kind}")
    number, unit = Decimal(match.group(1)), match.group(2)
    if kind == "count":
        if unit not in _COUNT_UNITS:
            raise UnitError(f"unknown count unit {unit!r} in {text!r} (use K, M, G, T)")
        return float(number * Decimal(_COUNT_UNITS[unit]))
    if kind == "bytes":
        key = unit.upper() or "B"
        if key not in _BYTE_UNITS:
            raise UnitError(f"unknown byte unit {unit!r} in {text!r} (use B, KB, MB, GB, MiB ...)")
        return float(number * Decimal(_BYTE_UNITS[key]))
    # "µ" upper-cases to Greek capital mu, which is no key: spell micro as "u" first
    key = (unit.replace("µ", "u").replace("μ", "u").upper()) or "S"
    if key not in _TIME_UNITS:
        raise UnitError(f"unknown time unit {unit!r} in {text!r} (use s, ms, us, ns)")
    return float(number * Decimal(_TIME_UNITS[key]))


def format_quantity(value: float, kind: str) -> str:
    """The humane text ``parse_quantity`` reads back (no space: ``"25.6M"``, ``"120MB"``)."""
    if kind == "count":
        return count(value).replace(" ", "")
    if kind == "bytes":
        return nbytes(value).replace(" ", "")
    if kind == "time":
        return seconds(value).replace(" ", "").replace("µs", "us")
    raise ValueError(f"unknown quantity kind {kind!r}")


def ceil_quantity(value: float, kind: str, digits: int = 3) -> str:
    """Humane text for the smallest ``digits``-significant number >= ``value``: a limit
    written from a measured value must never read back below it. Exact rational
    arithmetic, so 1,000,000,000,001 becomes "1.01T", not "1T"."""
    if value <= 0:
        return "0" if kind == "count" else format_quantity(0, kind)
    scales: tuple[tuple[Fraction, str], ...] = tuple(
        (Fraction(10) ** power, suffix) for power, suffix in {
            "count": ((12, "T"), (9, "G"), (6, "M"), (3, "K"), (0, "")),
            "bytes": ((12, "TB"), (9, "GB"), (6, "MB"), (3, "KB"), (0, "B")),
            "time": ((0, "s"), (-3, "ms"), (-6, "us"), (-9, "ns")),
        }[kind])
    exact = Fraction(value)
    scale, suffix = next(((s, u) for s, u in scales if exact >= s), scales[-1])
    if kind != "time" and scale == 1:
        return f"{math.ceil(exact)}{suffix}"  # counts and bytes below 1000 are integers
    scaled = exact / scale
    exponent = math.floor(math.log10(scaled))
    while Fraction(10) ** exponent > scaled:  # float log10 can be off by one at powers of 10
        exponent -= 1
    while Fraction(10) ** (exponent + 1) <= scaled:
        exponent += 1
    step = Fraction(10) ** (exponent - digits + 1)
    rounded = math.ceil(scaled / step) * step
    decimals = max(0, digits - 1 - exponent)
    text = f"{float(rounded):.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text + suffix
