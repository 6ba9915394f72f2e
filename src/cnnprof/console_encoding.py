"""Output to a terminal that cannot show Unicode (``PYTHONIOENCODING=ascii``, a C locale).

cnnprof's tables and messages use a few non-ASCII characters (``—`` for "none", ``·``
between facts, ``…`` for a folded row, ``×``, ``µs``, box lines). Written to an ASCII stream
they raise ``UnicodeEncodeError``. Rather than scatter fallbacks through every renderer, the
standard streams get an encoding error handler that spells each such character in ASCII;
characters without a spelling become ``?``. Rich sees the stream's encoding and draws its
boxes in ASCII by itself.
"""

from __future__ import annotations

import codecs
import io
import sys

#: the characters cnnprof prints, spelt in ASCII
ASCII: dict[str, str] = {
    "—": "-", "–": "-", "−": "-", "·": "|", "…": "...", "×": "x", "µ": "u", "μ": "u",
    "Δ": "d", "→": "->", "←": "<-", "≈": "~", "≤": "<=", "≥": ">=", "±": "+-", "°": "deg",
    "‘": "'", "’": "'", "“": '"', "”": '"', "\u00a0": " ", "✓": "ok", "✗": "x",
    "─": "-", "━": "-", "│": "|", "┃": "|", "╇": "+", "┼": "+", "╶": "-", "╴": "-",
    "┌": "+", "┐": "+", "└": "+", "┘": "+", "├": "+", "┤": "+", "┬": "+", "┴": "+",
    "▏": "|", "█": "#", "▌": "#", "▐": "#", "░": ".", "▒": ":", "▓": "#",
}

HANDLER = "cnnprof.ascii"


def to_ascii(text: str) -> str:
    """``text`` with every character outside ASCII spelt as :data:`ASCII` says (or ``?``)."""
    if text.isascii():
        return text
    return "".join(ch if ch.isascii() else ASCII.get(ch, "?") for ch in text)


def _spell(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    return to_ascii(exc.object[exc.start:exc.end]), exc.end


codecs.register_error(HANDLER, _spell)


def can_encode(stream: object, sample: str = "—·…─×µ") -> bool:
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        sample.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def make_streams_safe() -> None:
    """Give stdout and stderr the ASCII-spelling error handler where their encoding needs it."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and not can_encode(stream):
            stream.reconfigure(errors=HANDLER)
