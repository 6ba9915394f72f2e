"""Lazy modules (``nn.LazyLinear``, ``nn.LazyConv2d`` ...) have no parameter shapes until a
first forward. Counting needs them, and the trace must not count the initialisation (its
``empty``/``uniform_`` ops are no part of the model's forward), so the parameters are
materialised by one forward before the trace: on a copy for a user's instance (which stays
lazy, as found), on the counting device (``meta``: no memory, no arithmetic).
"""

from __future__ import annotations

import copy as copy_module
from collections.abc import Callable
from typing import Any

import torch
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.parameter import UninitializedBuffer, UninitializedParameter, is_lazy


def lazy_modules(model: torch.nn.Module) -> list[str]:
    """Names of the modules whose parameters or buffers are not materialised yet."""
    if not _any_lazy(model):  # every count asks; names are only made when one is lazy
        return []
    return [name or type(module).__name__ for name, module in model.named_modules()
            if isinstance(module, LazyModuleMixin)
            and module.has_uninitialized_params()]  # type: ignore[misc]


def _any_lazy(model: torch.nn.Module) -> bool:
    seen: set[int] = set()
    todo = [model]
    while todo:
        module = todo.pop()
        if isinstance(module, LazyModuleMixin):
            return True
        for child in module._modules.values():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                todo.append(child)
    return False


def materialise(model: torch.nn.Module, device: str, forward: Callable[[torch.nn.Module], Any],
                *, copy: bool) -> torch.nn.Module:
    """``model`` (or a copy of it) with every lazy parameter and buffer materialised on
    ``device`` by ``forward(model)`` run without gradients. The rest of the model is moved to
    ``device`` too. ``Module.to`` and ``deepcopy`` cannot handle an uninitialised tensor:
    each is left out of the copy and the move, and made again on ``device``, still
    uninitialised, for the forward to shape."""
    slots: list[tuple[str, str, bool, torch.dtype, bool]] = []
    placeholders: dict[int, Any] = {}
    for path, module in model.named_modules():  # module: an nn.Module, lazy or not
        if not isinstance(module, LazyModuleMixin):
            continue
        module = model.get_submodule(path)  # typed as the nn.Module it also is
        tables: tuple[tuple[bool, dict[str, Any]], ...] = (
            (True, module._parameters), (False, module._buffers))
        for is_param, table in tables:
            for name, value in table.items():
                if value is not None and is_lazy(value):
                    slots.append((path, name, is_param, value.dtype, value.requires_grad))
                    placeholders[id(value)] = torch.empty(0)
    target = copy_module.deepcopy(model, placeholders) if copy else model
    for path, name, is_param, _, _ in slots:  # out of the way of .to()
        owner: Any = target.get_submodule(path)
        (owner._parameters if is_param else owner._buffers)[name] = None
    target.to(device)
    for path, name, is_param, dtype, requires_grad in slots:
        owner = target.get_submodule(path)
        factory: Any = UninitializedParameter if is_param else UninitializedBuffer
        made = (factory(requires_grad=requires_grad, device=device, dtype=dtype) if is_param
                else factory(device=device, dtype=dtype))
        (owner._parameters if is_param else owner._buffers)[name] = made
    with torch.no_grad():
        forward(target)
    return target
