"""Wrapping plain text for a terminal without breaking what must stay whole: a number and
its unit (``4.09 G``, ``102 MB``, ``3.2 ms``), a bracketed shape (``[1, 576]``), a word.
No Rich here: plain-text commands (``cnnprof models``, ``inputs``, ``shapes``) use it too."""

from __future__ import annotations

import re
import textwrap

#: a number and its unit stay on one line
_NUMBER_UNIT = re.compile(r"(?<=\d) (?=(?:[KMGT]|[KMGT]?B|[mµun]?s|GB/s|%)(?!\w))")
_BRACKETED = re.compile(r"\[[^\[\]]*\]")
_GLUE = "\u00a0"  # textwrap splits on ASCII whitespace only


def _glue(text: str) -> str:
    text = _NUMBER_UNIT.sub(_GLUE, text)
    return _BRACKETED.sub(lambda m: m.group(0).replace(" ", _GLUE), text)


def wrap_words(text: str, width: int, *, indent: str = "") -> list[str]:
    """``text`` in lines of at most ``width`` characters (a single word longer than that gets
    a line of its own), continued after ``indent``."""
    if len(text) <= width:
        return [text]
    lines = textwrap.wrap(_glue(text), width, subsequent_indent=indent,
                          break_long_words=False, break_on_hyphens=False)
    return [line.replace(_GLUE, " ") for line in lines] or [""]
