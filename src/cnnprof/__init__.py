"""cnnprof: per-layer shapes, parameters, MACs/FLOPs, memory and timings of PyTorch models.

The public API is small; everything else is an implementation detail::

    import cnnprof
    report = cnnprof.profile("alexnet", "3x224x224")
    report.totals.params, report.totals.macs
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Cost",
    "LayerRecord",
    "Report",
    "__version__",
    "load_model",
    "profile",
]

if TYPE_CHECKING:
    from cnnprof.api import profile
    from cnnprof.report import Cost, LayerRecord, Report
    from cnnprof.zoo.loading import load_model


def __getattr__(name: str) -> Any:
    # lazy: `cnnprof --help` and `import cnnprof` must not pay for `import torch`
    if name == "profile":
        from cnnprof.api import profile

        return profile
    if name in ("Report", "LayerRecord", "Cost"):
        from cnnprof import report

        return getattr(report, name)
    if name == "load_model":
        from cnnprof.zoo.loading import load_model

        return load_model
    raise AttributeError(f"module 'cnnprof' has no attribute {name!r}")
