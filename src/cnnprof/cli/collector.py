"""Python's cyclic garbage collector, tuned for a command's short life.

With the default thresholds (700 allocations for a young collection) the collector runs
thousands of times while ``import torch`` builds its hundreds of thousands of objects, and
each older collection re-walks everything built so far: about a tenth of the CPU time of
``python -c "import torch, torchvision"`` on the machines we measured (benchmarks/startup.py
shows the floor with and without). A command does not live long enough for the cycles it
leaves to matter, so the CLI collects rarely while it runs, as other short-lived Python tools
do; Python's API (``cnnprof.profile``) leaves the caller's collector alone.
"""

from __future__ import annotations

import gc
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
