"""Walk nested forward inputs/outputs (tuples, lists, dicts, namedtuples) for their tensors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch


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


def shapes_and_dtypes(obj: Any) -> tuple[tuple[tuple[int, ...], ...], tuple[str, ...]]:
    tensors = list(iter_tensors(obj))
    return (
        tuple(tuple(int(d) for d in t.shape) for t in tensors),
        tuple(str(t.dtype).removeprefix("torch.") for t in tensors),
    )


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
