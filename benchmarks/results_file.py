"""What every benchmark script shares: the machine it ran on, and how its result is published
(written under ``benchmarks/results/`` and printed). Scripts run as ``python benchmarks/X.py``,
so this directory is on ``sys.path`` and they import it as ``results_file``."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def publish(path: Path, text: str) -> None:
    """Write the result file (creating its directory) and print it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(text)
