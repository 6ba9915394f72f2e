"""Timing a parent's own ops: the gaps between its child calls, as rows of their own.

The counting trace turns the ops a parent module runs in its own ``forward`` into rows of
kind ``"ops"`` (``layer1.0.(add_)``), one per gap between child calls that ran any
(``LayerRecord.attributes["segment"]``: how many direct child calls had returned). The timing
passes follow the same calls with ``GapTracker`` and time each such gap as a call of its own:
it opens right after the boundary before the gap (the parent's start, or the previous child's
end) and closes right before the one after it. Its interval is therefore exactly the gap, the
parent's self time becomes what no row claims, and leaf rows add up to the whole forward.

Inside a CUDA graph the gap's marks cost nothing extra: no op runs between a boundary and the
gap's opening mark, so they share one mark (``cnnprof.timing.ingraph.GraphMarks``), and the
same holds for its closing mark and the next boundary.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

from cnnprof.report import Report

#: module name → {segment: row name}
StretchPlan = Mapping[str, Mapping[int, str]]

Handle = TypeVar("Handle")


def stretch_plan(report: Report) -> dict[str, dict[int, str]]:
    """The gaps of ``report`` that ran ops: parent module name → {segment: row name}."""
    plan: dict[str, dict[int, str]] = {}
    for layer in report.layers:
        if layer.is_ops and layer.calls:
            parent = str(layer.attributes.get("parent", ""))
            plan.setdefault(parent, {})[int(layer.attributes.get("segment", 0))] = layer.name
    return plan


def row_names(module_names: list[str], plan: StretchPlan) -> list[str]:
    """The timer's rows: every module, then the planned gaps of modules that exist."""
    present = set(module_names)
    return module_names + [name for parent, gaps in plan.items() if parent in present
                           for _, name in sorted(gaps.items())]


class GapTracker(Generic[Handle]):
    """Follows nested module calls and opens and closes the planned gaps.

    ``gaps`` maps a module index to {segment: row index}. The hooks call, in order:
    ``entering()`` then the module's start mark then ``entered(module)`` in a pre-hook, and
    ``leaving(module)`` then the module's end mark then ``left()`` in a post-hook; ``opener``
    starts timing a row (it returns a handle) and ``closer`` stops it.
    """

    def __init__(self, gaps: Mapping[int, Mapping[int, int]],
                 opener: Callable[[int], Handle], closer: Callable[[Handle], None]) -> None:
        self.gaps = gaps
        self.opener = opener
        self.closer = closer
        # per open module call: its module index, child calls returned, its open gap
        self._modules: list[int] = []
        self._segments: list[int] = []
        self._open: list[Handle | None] = []

    def __bool__(self) -> bool:
        return bool(self.gaps)

    def clear(self) -> None:
        self._modules.clear()
        self._segments.clear()
        self._open.clear()

    def entering(self) -> None:
        """A child call starts: the caller's open gap ends here."""
        if self._open:
            self._close_top()

    def entered(self, module: int) -> None:
        self._modules.append(module)
        self._segments.append(0)
        self._open.append(None)
        self._maybe_open()

    def leaving(self, module: int) -> bool:
        """The call of ``module`` ends: close its gap and drop its frame (False when the
        frames do not match, e.g. after an exception skipped a post-hook)."""
        if not self._modules or self._modules[-1] != module:
            return False
        self._close_top()
        self._modules.pop()
        self._segments.pop()
        self._open.pop()
        return True

    def left(self) -> None:
        """After the returned call's end mark: the caller's next gap starts."""
        if self._modules:
            self._segments[-1] += 1
            self._maybe_open()

    def _maybe_open(self) -> None:
        row = self.gaps.get(self._modules[-1], {}).get(self._segments[-1])
        if row is not None:
            self._open[-1] = self.opener(row)

    def _close_top(self) -> None:
        handle = self._open[-1]
        if handle is not None:
            self._open[-1] = None
            self.closer(handle)


def index_gaps(names: list[str], plan: StretchPlan) -> dict[int, dict[int, int]]:
    """``plan`` by indices into ``names`` (``row_names``' list): module → {segment: row}."""
    position = {name: i for i, name in enumerate(names)}
    return {position[parent]: {seg: position[row] for seg, row in gaps.items()
                               if row in position}
            for parent, gaps in plan.items() if parent in position}
