"""One way to make a Rich console, so every command treats pipes and NO_COLOR alike."""

from __future__ import annotations

import io
import os
import sys

from rich.console import Console, RenderableType

#: Width used when output is piped and COLUMNS is unset: Rich's 80 would wrap every shape.
PIPE_WIDTH = 200


#: Narrower than this, no table is readable (and 0 printed nothing at all).
MIN_WIDTH = 20


def make_console(width: int | None = None, *, stderr: bool = False) -> Console:
    if width is not None and width < MIN_WIDTH:
        from cnnprof.errors import UsageError

        raise UsageError(f"--width {width}: too narrow", hint=f"at least {MIN_WIDTH} columns")
    stream = sys.stderr if stderr else sys.stdout
    if width is None and not stream.isatty() and "COLUMNS" not in os.environ:
        width = PIPE_WIDTH
    # Rich honours NO_COLOR itself; highlight=False keeps numbers uncoloured in pipes
    return Console(file=stream, width=width, soft_wrap=False, highlight=False)


def plain_text(*renderables: RenderableType, width: int) -> str:
    """What a console of ``width`` columns would print, without colour or terminal codes:
    the one way files, ``--format table`` text and assertion messages are rendered."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, no_color=True, force_terminal=False,
                      highlight=False)
    for renderable in renderables:
        console.print(renderable)
    return buffer.getvalue()
