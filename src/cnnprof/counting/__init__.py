"""Per-op cost formulas: one registry, pure functions of shapes.

Users add or override a formula from Python::

    from cnnprof.counting import register_formula, OpCost

    @register_formula("mylib.fancy_op", override=True)
    def fancy(args, kwargs, out) -> OpCost:
        return OpCost(macs=..., flops=...)
"""

from cnnprof.counting.registry import (
    REGISTRY,
    Formula,
    FormulaRegistry,
    OpCost,
    OpKind,
    OpTrait,
    register_formula,
)

__all__ = ["REGISTRY", "Formula", "FormulaRegistry", "OpCost", "OpKind", "OpTrait",
           "register_formula"]
