"""Frozen report dataclasses made without their generated ``__init__``.

A frozen dataclass's ``__init__`` sets every field through ``object.__setattr__``: ~6 µs for
a ``LayerRecord`` (36 fields). A count makes one record per row, so on a model of many small
layers that was ~2.5 ms of a ~27 ms count (RegNetY-400MF, 376 rows). ``maker(cls)`` gives a
function that takes the fields as one dict and builds the same instance by filling its
``__dict__`` (the defaults, then the given fields, in the fields' order), ~3x faster.

It is only used where the result is the object ``cls(**fields)`` would make: a plain
(non-slots) dataclass whose fields are all ``__init__`` arguments and that has no
``__post_init__``; for any other class the function calls ``cls(**fields)``.
tests/test_trace_observation.py checks every record of counts against the class's own
``__init__``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_MISSING = object()


def maker(cls: type[T]) -> Callable[[dict[str, Any]], T]:
    """A function from a dict of fields to ``cls(**fields)``."""
    fields = dataclasses.fields(cls) if dataclasses.is_dataclass(cls) else ()
    if (not fields or hasattr(cls, "__post_init__") or "__slots__" in vars(cls)
            or not all(f.init for f in fields)):
        return lambda values: cls(**values)
    # every field in its order (as __init__ sets them), defaults filled in
    template = {f.name: f.default if f.default is not dataclasses.MISSING else _MISSING
                for f in fields}
    # fields without a default value: made per instance (default_factory) or required
    unset = [(f.name, f.default_factory if f.default_factory is not dataclasses.MISSING
              else None) for f in fields if f.default is dataclasses.MISSING]
    count = len(template)
    new = object.__new__

    def make(values: dict[str, Any]) -> T:
        state = template.copy()
        state.update(values)
        if len(state) != count:  # a name that is no field
            return cls(**values)  # the class's own TypeError
        for name, factory in unset:
            if state[name] is _MISSING:
                if factory is None:
                    return cls(**values)  # a required field missing: the same TypeError
                state[name] = factory()
        obj = new(cls)
        obj.__dict__.update(state)
        return obj

    return make
