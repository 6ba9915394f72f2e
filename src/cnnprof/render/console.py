"""One way to make a Rich console, so every command treats pipes and NO_COLOR alike."""

from __future__ import annotations

import os
import sys

from rich.console import Console

#: Width used when output is piped and COLUMNS is unset: Rich's 80 would wrap every shape.
PIPE_WIDTH = 200


def make_console(width: int | None = None, *, stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    if width is None and not stream.isatty() and "COLUMNS" not in os.environ:
        width = PIPE_WIDTH
    # Rich honours NO_COLOR itself; highlight=False keeps numbers uncoloured in pipes
    return Console(file=stream, width=width, soft_wrap=False, highlight=False)
