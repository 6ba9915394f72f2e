"""cnnprof: per-layer shapes, parameters, MACs/FLOPs, memory and timings of PyTorch models.

The public API is small (``__all__``, documented in docs/api.md); everything else is an
implementation detail::

    import cnnprof
    report = cnnprof.profile("alexnet", "3x224x224")
    report.totals.params, report.totals.macs
    report.show(depth=1)              # the table; a notebook displays `report` as HTML
    frame = report.to_dataframe()     # one row per layer (pandas)
    timed = cnnprof.profile("resnet18", time=True, device="cpu", repeats=3, warmup=1)
    timed.layer("conv1").time.median_s
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "CnnprofError",
    "Cost",
    "Device",
    "LayerMemory",
    "LayerRecord",
    "LayerTime",
    "ModelFailedError",
    "Report",
    "Roofline",
    "TimingSummary",
    "Totals",
    "__version__",
    "load_model",
    "profile",
]

if TYPE_CHECKING:
    from cnnprof.api import profile
    from cnnprof.device import Device
    from cnnprof.errors import CnnprofError, ModelFailedError
    from cnnprof.measurements import LayerMemory, LayerTime, Roofline, TimingSummary
    from cnnprof.report import Cost, LayerRecord, Report, Totals
    from cnnprof.zoo.loading import load_model

#: where each public name lives; imported on first use, so `import cnnprof` (and
#: `cnnprof --help`) never pays for `import torch`
_HOMES = {
    "profile": "cnnprof.api",
    "Report": "cnnprof.report", "LayerRecord": "cnnprof.report", "Cost": "cnnprof.report",
    "Totals": "cnnprof.report",
    "LayerTime": "cnnprof.measurements", "LayerMemory": "cnnprof.measurements",
    "Roofline": "cnnprof.measurements", "TimingSummary": "cnnprof.measurements",
    "Device": "cnnprof.device",
    "CnnprofError": "cnnprof.errors", "ModelFailedError": "cnnprof.errors",
    "load_model": "cnnprof.zoo.loading",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'cnnprof' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(home), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def _wire_display() -> None:
    """The package root is where the report meets its renderers: ``Report``'s display methods
    (repr, ``_repr_html_``, ``__rich_console__``, ``show``, ``to_dataframe``) call the
    renderers' `Display`, wired here so that ``cnnprof.report`` never imports ``render/``.
    Every import of a cnnprof module runs this first; it loads no torch, Rich or pandas."""
    from cnnprof.render.notebook import DISPLAY
    from cnnprof.report import use_display

    use_display(DISPLAY)


_wire_display()
