"""The formula registry: op name → pure cost function, duplicates rejected.

Ops fall in four kinds:
  * ``VIEW``: free by definition (no arithmetic, no bytes moved): view, permute, detach ...
  * ``MOVEMENT``: no arithmetic, but bytes are read and written: cat, clone, pad ...
  * ``COMPUTE``: a registered formula gives MACs and FLOPs; bytes come from the tensors.
  * ``UNSUPPORTED``: no formula. Listed in the report, never silently counted as zero.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cnnprof.errors import UsageError


@dataclass(frozen=True)
class OpCost:
    """Arithmetic of one op call. Bytes are derived from tensors by the observer."""

    macs: int = 0
    flops: int = 0


Formula = Callable[[tuple[Any, ...], dict[str, Any], Any], OpCost]


class OpKind(enum.Enum):
    VIEW = "view"
    MOVEMENT = "movement"
    COMPUTE = "compute"
    UNSUPPORTED = "unsupported"


class OpTrait(enum.Enum):
    """A property of an op that the observer needs besides its cost."""

    #: only the first output counts as written: the others are bookkeeping whose size depends
    #: on the kernel (batch norm's save_mean/save_invstd are empty on the CPU in eval, C-sized
    #: on meta), so every device reports the same bytes
    PRIMARY_OUTPUT_ONLY = "primary_output_only"


class FormulaRegistry:
    """Maps op names (``aten.convolution``, ``function.lstm``) to formulas, kinds and traits."""

    def __init__(self) -> None:
        self._formulas: dict[str, Formula] = {}
        self._kinds: dict[str, OpKind] = {}
        self._traits: dict[str, frozenset[OpTrait]] = {}
        #: Bumped on every change so observers can drop cached lookups.
        self.version = 0

    def register(self, *names: str, override: bool = False) -> Callable[[Formula], Formula]:
        """Decorator: register ``fn`` for every name. A second registration needs ``override``."""

        def deco(fn: Formula) -> Formula:
            for name in names:
                self.add(name, fn, override=override)
            return fn

        return deco

    def add(self, name: str, fn: Formula, *, override: bool = False) -> None:
        if not override and name in self._kinds:
            raise UsageError(
                f"a formula for {name!r} is already registered",
                hint="pass override=True to replace it",
            )
        self._formulas[name] = fn
        self._kinds[name] = OpKind.COMPUTE
        self.version += 1

    def mark(self, kind: OpKind, names: Iterable[str], *, override: bool = False) -> None:
        """Declare ops free (``VIEW``) or data movement (``MOVEMENT``)."""
        if kind not in (OpKind.VIEW, OpKind.MOVEMENT):
            raise ValueError("only VIEW and MOVEMENT ops are declared without a formula")
        for name in names:
            if not override and name in self._kinds:
                raise UsageError(f"{name!r} is already registered as {self._kinds[name].value}")
            self._formulas.pop(name, None)
            self._kinds[name] = kind
        self.version += 1

    def declare(self, trait: OpTrait, names: Iterable[str]) -> None:
        """Give ops a trait (by exact name: an in-place variant is not covered)."""
        for name in names:
            self._traits[name] = self._traits.get(name, frozenset()) | {trait}
        self.version += 1

    def has(self, name: str, trait: OpTrait) -> bool:
        return trait in self._traits.get(name, ())

    def _resolve(self, name: str) -> str:
        # an in-place variant (aten.relu_) costs what its functional form (aten.relu) costs
        if name not in self._kinds and name.endswith("_") and name[:-1] in self._kinds:
            return name[:-1]
        return name

    def kind(self, name: str) -> OpKind:
        return self._kinds.get(self._resolve(name), OpKind.UNSUPPORTED)

    def formula(self, name: str) -> Formula | None:
        return self._formulas.get(self._resolve(name))

    def copy(self) -> FormulaRegistry:
        """An independent registry with the same entries (override formulas for one run)."""
        other = FormulaRegistry()
        other._formulas = dict(self._formulas)
        other._kinds = dict(self._kinds)
        other._traits = dict(self._traits)
        return other

    def names(self, kind: OpKind | None = None) -> list[str]:
        return sorted(n for n, k in self._kinds.items() if kind is None or k is kind)


REGISTRY = FormulaRegistry()


def register_formula(*names: str, override: bool = False) -> Callable[[Formula], Formula]:
    """Register a formula in the global registry (see :class:`FormulaRegistry.register`)."""
    return REGISTRY.register(*names, override=override)
