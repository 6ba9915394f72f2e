"""The process's standard output belongs to cnnprof's result.

``cnnprof MODEL -f json > r.json`` and ``cnnprof check -f junit`` are read by programs, so
nothing but the result may reach stdout. User code prints in Python (captured into the
report's notes where it runs) but also below Python: ``os.system("echo")``, a C library,
``sys.__stdout__.write``. :func:`reserve_stdout` moves the real stdout to a private file
descriptor that only ``sys.stdout`` writes to, and points descriptor 1 at stderr, so such
output lands on stderr where a person still sees it.

A reader that stops early (``cnnprof models | head -1``) closes the pipe: the result stream
then discards the rest instead of raising, so every command still ends with the exit code of
its verdict (``cnnprof check | head -1`` over budget is still 1).
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import IO, Any


class PipeSafeStream:
    """A text stream that swallows ``BrokenPipeError``: after the first, writes are dropped
    and the descriptor points at ``/dev/null`` (so the interpreter's last flush is quiet)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self.broken = False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._break()
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if not self.broken:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._break()

    def _break(self) -> None:
        self.broken = True
        discard(self._stream)

    def __getattr__(self, name: str) -> Any:  # encoding, isatty, fileno, ...
        return getattr(self._stream, name)


def discard(stream: IO[str]) -> None:
    """Point ``stream``'s descriptor at /dev/null."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


def reserve_stdout() -> None:
    """Give ``sys.stdout`` a private duplicate of descriptor 1 and point 1 at stderr.
    Does nothing when stdout is not descriptor 1 (an embedding, a test's capture) or
    stderr is closed; closed streams are replaced by /dev/null first."""
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - process-long
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - process-long
    stdout = sys.stdout
    try:
        if stdout.fileno() != 1 or sys.stderr.fileno() != 2:
            return
        stdout.flush()
        private = os.dup(1)
        os.dup2(2, 1)
    except (OSError, ValueError, AttributeError):
        return
    line_buffered = bool(getattr(stdout, "line_buffering", False))  # a terminal's
    stream = open(private, "w", buffering=1 if line_buffered else -1,  # noqa: SIM115
                  encoding=stdout.encoding, errors=stdout.errors)
    sys.stdout = PipeSafeStream(stream)  # type: ignore[assignment,unused-ignore]
