"""What one command line asked of the whole run, read by every command: ``--debug``.

It lives in a context variable of its own module (not in ``cli.app``, which imports every
command: reading it from there made each command and the app import each other). ``main``
sets it for the run and resets it afterwards, so in-process calls (tests, embedding) do not
leak it into each other.
"""

from __future__ import annotations

from contextvars import ContextVar

#: ``--debug``: tracebacks and the model's own traceback in failure reports.
DEBUG: ContextVar[bool] = ContextVar("cnnprof_debug", default=False)


def debug_enabled() -> bool:
    return DEBUG.get()
