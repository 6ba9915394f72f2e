"""Walk a model's module tree, and nested forward inputs/outputs (tuples, lists, dicts,
namedtuples) for their tensors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

#: (dotted name, module, parent module or None for the model itself)
WalkedModule = tuple[str, torch.nn.Module, "torch.nn.Module | None"]


def walk_modules(model: torch.nn.Module) -> list[WalkedModule]:
    """(dotted name, module, parent module) for the model (``""``, no parent) and every module
    under it, each once: a module reachable under several parents keeps the name of its first
    parent (depth-first, declaration order). Each parent's children are listed together, in
    declaration order. The counting trace and every timing pass name rows by this one walk.
    """
    out: list[WalkedModule] = [("", model, None)]
    seen = {id(model)}
    # iterative: 10,000-deep chains must not hit the recursion limit
    todo: list[tuple[str, torch.nn.Module]] = [("", model)]
    while todo:
        prefix, module = todo.pop()
        children = module._modules
        if not children:  # a leaf: most modules
            continue
        kids: list[tuple[str, torch.nn.Module]] = []
        for child_name, child in children.items():
            if child is None or id(child) in seen:
                continue  # shared modules appear once, under their first parent
            seen.add(id(child))
            name = f"{prefix}.{child_name}" if prefix else child_name
            kids.append((name, child))
            out.append((name, child, module))
        todo.extend(reversed(kids))
    return out


def iter_tensors(obj: Any, _depth: int = 0) -> Iterator[torch.Tensor]:
    """Every tensor inside ``obj`` in a stable order (dicts by insertion)."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif _depth > 64:  # self-referencing structures; nothing sane nests deeper
        return
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from iter_tensors(item, _depth + 1)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from iter_tensors(item, _depth + 1)


_DTYPE_NAMES: dict[torch.dtype, str] = {}


def shapes_and_dtypes(obj: Any) -> tuple[tuple[tuple[int, ...], ...], tuple[str, ...]]:
    # Runs in module hooks, where the trace's own TorchFunctionMode would intercept every
    # ``.shape``/``.dtype`` read (about 2 µs each); nothing here needs it.
    with torch._C.DisableTorchFunction():
        return _shapes_and_dtypes(obj)


def call_shapes(args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> tuple[tuple[tuple[int, ...], ...], tuple[str, ...]]:
    """``shapes_and_dtypes((args, kwargs))``: a module call's inputs (a pre-hook's view)."""
    with torch._C.DisableTorchFunction():
        if not kwargs and len(args) == 1:  # most module calls: one tensor
            t = args[0]
            if isinstance(t, torch.Tensor):
                name = _DTYPE_NAMES.get(t.dtype)
                if name is not None:
                    return (tuple(t.shape),), (name,)
        return _shapes_and_dtypes((args, kwargs))


def _shapes_and_dtypes(obj: Any) -> tuple[tuple[tuple[int, ...], ...], tuple[str, ...]]:
    # runs twice per module call (hooks): the one-tensor cases skip the generator walk
    if isinstance(obj, torch.Tensor):
        name = _DTYPE_NAMES.get(obj.dtype)
        if name is not None:
            return (tuple(obj.shape),), (name,)
        tensors = [obj]
    elif (type(obj) is tuple and len(obj) == 2 and type(obj[0]) is tuple and not obj[1]
          and all(isinstance(t, torch.Tensor) for t in obj[0])):
        tensors = list(obj[0])  # a pre-hook's (args, {}) with tensor arguments only
    else:
        tensors = list(iter_tensors(obj))
    names = []
    for t in tensors:
        name = _DTYPE_NAMES.get(t.dtype)
        if name is None:
            name = _DTYPE_NAMES[t.dtype] = str(t.dtype).removeprefix("torch.")
        names.append(name)
    return tuple(tuple(t.shape) for t in tensors), tuple(names)


def tensor_bytes(obj: Any) -> int:
    """Bytes of every tensor in a flat args tuple or nested list (fast path for op args)."""
    total = 0
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, (list, tuple)):
        for item in obj:
            if isinstance(item, torch.Tensor):
                total += item.numel() * item.element_size()
            elif isinstance(item, (list, tuple)):
                total += tensor_bytes(item)
    return total
