"""Memoised leaf calls: a whole plain ``torch.nn`` leaf on meta, answered from its state and
its arguments' layout.

The kernel memo (``meta_cache``) skips what a meta kernel computes, but every op of a leaf
still runs the leaf's Python ``forward`` and the functional wrapper under it, crosses from C++
into the dispatch mode, is keyed and is charged. Answered from this memo, a ``BatchNorm2d``
call costs ~40 µs less, a ``Conv2d`` or ``Linear`` ~20 µs (docs/performance.md), on models
made of hundreds of them (ShuffleNet, RegNet, MobileNet).

A *plain leaf* (``observers._PLAIN_LEAVES``: exactly one of torch's classes, with torch's own
``forward``, no child modules, no hooks of its own) computes what it returns from its state
(hyper-parameters, ``training``, parameters and buffers) and its arguments alone, and on meta
the layouts it returns and what its ops charge are pure functions of their metadata. The first
call with a key runs for real and is remembered (``LeafCall``); later calls with that key get
fresh meta tensors of the same layouts (or the argument itself, for an in-place leaf) and the
same charges, without running one op.

The key: the class, the module's own attributes (every entry of its ``__dict__`` except
``nn.Module``'s bookkeeping: the hook tables and ``_modules``) with their values, typed as in
``meta_cache`` (``1``, ``1.0`` and ``True`` stay apart), the layout of every parameter and
buffer, and the call's arguments. A value that cannot be keyed (a tensor that is not a plain
meta tensor, an object) makes the call run for real. Results that are views are not kept: a
view must share its base's storage.

The observers use it only where a replay cannot differ from a run (``OpObserver.leaf_memo``):
grad and autocast off (autograd needs the ops' graph; autocast changes dtypes the key does
not see), outside a fused function, and with the trace's own modes innermost (a dispatch or
function mode the model pushes itself sees every op, as without the memo). What a replay does
not do is advance the version counter of a tensor the leaf writes in place (BatchNorm's
running statistics in training mode, an in-place ReLU's input): only autograd reads it, and
the memo is off with grad on.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import torch

from cnnprof.trace.meta_cache import NotCacheable, append_call, flatten

#: ``nn.Module``'s bookkeeping in a module's ``__dict__`` (hook tables, ``_modules``, the
#: state-dict hooks) and the ``forward`` the trace puts there: a leaf's ``forward`` reads
#: none of it, so none of it is keyed
_BOOKKEEPING = (frozenset(vars(torch.nn.Module())) - {"training", "_parameters", "_buffers"}
                | {"forward"})
#: leaves that return their input or a view of it: a key costs more than their call, and a
#: view is never kept
_NOT_KEPT = frozenset({torch.nn.Identity, torch.nn.Flatten, torch.nn.Unflatten})
#: the tables of a module's tensors, keyed by name and tensor layout
_STORES = ("_parameters", "_buffers")
_PLAIN_TENSORS = frozenset({torch.Tensor, torch.nn.Parameter})
_STRIDED = torch.strided
#: marks a tuple of ints in a key (``kernel_size=(3, 3)``): the tuple itself follows
_INT_TUPLE = object()
_INT = frozenset({int})
_EXACT_SCALARS = frozenset({type(None), bool, int, float, str})
_NUMBERS = itertools.count()
#: per class and tuple of ``__dict__`` names (a module's attributes rarely differ from its
#: class's other instances'): its plan, numbered, so keys carry an int, not the names
_PLANS: dict[tuple[type, tuple[str, ...]], LeafPlan] = {}
#: plans kept before the table is dropped and refilled
MAX_PLANS = 10_000


@dataclass(frozen=True, slots=True)
class LeafPlan:
    """What a plain leaf's key reads, worked out when the trace attaches to it."""

    cls: type
    #: the plan's number (never reused, also after the table is dropped)
    number: int
    #: the module's own attributes, in ``__dict__`` order, but ``_parameters``/``_buffers``
    names: tuple[str, ...]
    #: ``_parameters`` and ``_buffers`` where the module has them
    stores: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LeafCall:
    """A remembered leaf call: its results' layouts and what its ops charged the module."""

    #: per result: the index of the call's tensor it returned as itself, else (shape, stride,
    #: dtype) of a fresh meta tensor (``meta_cache.rebuilt``)
    outputs: tuple[Any, ...]
    #: a lone tensor (else a tuple of ``outputs``)
    single: bool
    macs: int
    flops: int
    act: int
    read: int
    write: int
    #: ops without a formula: (name, calls)
    unsupported: tuple[tuple[str, int], ...]


def torch_forward(cls: type[torch.nn.Module]) -> bool:
    """Is ``cls.forward`` torch's own (not patched)? Else what it reads and calls is unknown."""
    return getattr(cls.forward, "__module__", "").startswith("torch.nn.")


def plan(module: torch.nn.Module) -> LeafPlan | None:
    """The key's plan for a plain leaf, or None for the leaves not worth a key
    (``_NOT_KEPT``)."""
    cls = type(module)
    if cls in _NOT_KEPT:
        return None
    every = (cls, tuple(vars(module)))
    found = _PLANS.get(every)
    if found is None:
        if len(_PLANS) >= MAX_PLANS:
            _PLANS.clear()
        names = tuple(name for name in every[1]
                      if name not in _BOOKKEEPING and name not in _STORES)
        stores = tuple(name for name in _STORES if name in every[1])
        found = _PLANS[every] = LeafPlan(cls, next(_NUMBERS), names, stores)
    return found


def key(leaf: LeafPlan, state: dict[str, Any], args: tuple[Any, ...],
        kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], list[torch.Tensor]] | None:
    """The key of a call of the module whose ``__dict__`` is ``state``, and the call's tensors
    (its arguments', then its parameters, buffers and tensor attributes), or None when
    something cannot be keyed."""
    parts: list[Any] = [leaf.cls, leaf.number]
    tensors: list[torch.Tensor] = []
    try:
        # the arguments first: a count on a real device stops at the first tensor
        append_call(parts, tensors, args, kwargs)
        for name in leaf.names:
            value = state[name]
            kind = type(value)
            if kind in _EXACT_SCALARS:  # most attributes: without flatten's call
                parts.append(kind)
                parts.append(value)
            elif kind is tuple and _INT.issuperset(map(type, value)):
                parts.append(_INT_TUPLE)
                parts.append(value)
            else:
                flatten(value, parts, tensors)
        for name in leaf.stores:  # names (str, as register_parameter demands) and tensors
            store = state[name]
            parts.append(len(store))
            for entry, item in store.items():
                parts.append(entry)
                if type(item) in _PLAIN_TENSORS:  # flatten's tensor case, one tuple per tensor
                    dtype = item.dtype
                    if not item.is_meta or item.layout is not _STRIDED or dtype.is_complex:
                        return None
                    tensors.append(item)
                    parts.append((item.shape, item.stride(), dtype, item.storage_offset()))
                elif item is None:
                    parts.append(None)
                else:
                    flatten(item, parts, tensors)
    except (NotCacheable, KeyError):  # KeyError: an attribute deleted since the trace began
        return None
    return tuple(parts), tensors


def outputs(out: Any, tensors: list[torch.Tensor]) -> tuple[tuple[Any, ...], bool] | None:
    """``LeafCall.outputs`` and ``single`` for what a call returned, or None when it cannot be
    rebuilt (a view, a list, a real tensor, something other than tensors)."""
    single = type(out) is not tuple
    specs: list[Any] = []
    for result in (out,) if single else out:
        if type(result) not in (torch.Tensor, torch.nn.Parameter):
            return None
        same = [index for index, tensor in enumerate(tensors) if tensor is result]
        if same:
            specs.append(same[0])
        elif (result.is_meta and result.layout is torch.strided and not result.is_complex()
              and not result._is_view()):
            specs.append((tuple(result.shape), result.stride(), result.dtype))
        else:
            return None
    return tuple(specs), single
