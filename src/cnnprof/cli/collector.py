"""Python's cyclic garbage collector, tuned for a command's short life.

Two costs, both measured in benchmarks/startup.py's tuned-floor rows:

* **the exit.** After ``import torch, torchvision`` the interpreter's own shutdown takes about
  1.3 s on our 2-core machines, nearly all of it the collector walking every object torch
  built, again, while modules are torn down. Moving everything to the permanent generation
  first (``gc.freeze()``, after one full collection) cuts that to 0.2-0.4 s. atexit
  handlers (a model's own), non-daemon threads and the flushing of stdio happen as before.
  What changes is when the objects still alive at exit are freed: later in the teardown, so
  a ``__del__`` may find module globals gone (which Python allows: "It is not guaranteed
  that __del__() methods are called for objects that still exist when the interpreter
  exits", the data model's reference) and a file left open would lose its buffered text,
  so the quick exit is taken only when no such file is open (`before_exit`).
* **the start.** With the default thresholds (a young collection every 700 net allocations)
  the collector runs hundreds of times while ``import torch`` builds its objects, and each
  older pass re-walks all of them: about 0.5 s of the import in-process. The CLI collects
  rarely while a command runs (a command does not live long enough for the cycles it leaves
  to matter) and gives the caller's thresholds back when ``main()`` returns.

Python's API (``cnnprof.profile``) leaves the caller's collector alone: it runs inside
someone else's process.
"""

from __future__ import annotations

import contextlib
import gc
import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager

#: a young collection every 200,000 net allocations, the older ones every 30 of those
THRESHOLDS = (200_000, 30, 30)


@contextmanager
def rare_collections() -> Iterator[None]:
    """Collect rarely inside, and restore the caller's thresholds after (the tests and
    anything else that calls ``main()`` in-process get theirs back)."""
    before = gc.get_threshold()
    gc.set_threshold(*THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def before_exit() -> None:
    """Called by the console entry point just before ``sys.exit``: the interpreter's
    shutdown then skips re-walking torch's objects (see the module's docstring). Never in an
    in-process ``main()`` call, whose process goes on.

    Frozen objects are still freed by reference counting, but late: after the interpreter
    has begun tearing down ``io`` and builtins. A file a model opened and never closed (a
    module-level log) is flushed only when it is freed, so its last writes would be lost;
    when any regular file besides the standard streams is open for writing, the process
    takes the usual, slower exit instead."""
    if not _only_standard_streams_write():
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed or broken stream: the usual exit's
            stream.flush()
    gc.collect()  # the garbage cycles the run left are finalised now, as the usual exit would
    gc.freeze()


def _only_standard_streams_write() -> bool:
    """Whether no regular file other than stdin/stdout/stderr (and the private copy of
    stdout the CLI writes its result to, cli/streams.py) is open for writing. False where
    the descriptors cannot be listed (Windows): there the exit stays the usual one."""
    try:
        import fcntl

        descriptors = [int(name) for name in os.listdir("/dev/fd")]
    except (ImportError, OSError, ValueError):
        return False
    ours = {0, 1, 2}
    with contextlib.suppress(Exception):
        ours.add(sys.stdout.fileno())
    for fd in descriptors:
        if fd in ours:
            continue
        try:
            writable = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE != os.O_RDONLY
            if writable and stat.S_ISREG(os.fstat(fd).st_mode):
                return False
        except OSError:  # the listing's own descriptor, closed by now
            continue
    return True
