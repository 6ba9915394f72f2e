"""Call a model with stand-in parameters and buffers (meta tensors, a cast, loaded weights).

This is what ``torch.func.functional_call(model, stand_ins, args, strict=False,
tie_weights=True)`` does for cnnprof, without its per-call costs (a ``setattr`` per tensor and
a tie analysis over every name, about 5 ms on MobileNetV3), and with ties kept by identity:
when two names share one tensor (a tied embedding and decoder), the stand-in of the first name
met replaces it everywhere, so the tie holds whether the stand-ins came from
``named_parameters(remove_duplicate=False)`` (one tensor per name) or not. ``functional_call``
refuses such per-name stand-ins ("got multiple values for keys ... which are tied").

The swap writes into the modules' ``_parameters``/``_buffers`` dicts for the duration of the
call and restores every entry in ``finally``, exactly as ``functional_call`` does underneath.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

#: where each stand-in goes: (a module's ``_parameters`` or ``_buffers``, the name, the
#: stand-in), in ``named_modules()`` order
Plan = list[tuple[dict[str, Any], str, torch.Tensor]]

_META = torch.device("meta")


def call_with(model: torch.nn.Module, stand_ins: dict[str, torch.Tensor] | Plan,
              args: tuple[Any, ...], kwargs: dict[str, Any] | None = None) -> Any:
    """``model(*args, **kwargs)`` with the tensors named in ``stand_ins`` replaced (or with a
    ``Plan``); names not given keep the model's own tensors (``strict=False``)."""
    plan = stand_ins if isinstance(stand_ins, list) else named_plan(model, stand_ins)
    with applied(plan):
        return model(*args, **(kwargs or {}))


def swapped(model: torch.nn.Module,
            stand_ins: dict[str, torch.Tensor]) -> contextlib.AbstractContextManager[None]:
    """The stand-ins in place of the model's tensors for the ``with`` block (a training step
    keeps them through backward, where activation checkpointing runs the forward again)."""
    return applied(named_plan(model, stand_ins))


def named_plan(model: torch.nn.Module, stand_ins: dict[str, torch.Tensor]) -> Plan:
    """Where the stand-ins named in ``stand_ins`` go; a tensor reachable under several names
    gets the stand-in of the first name met, everywhere."""
    by_id: dict[int, torch.Tensor] = {}
    plan: Plan = []
    for prefix, module in model.named_modules():
        for store in (module._parameters, module._buffers):
            for name, tensor in store.items():
                if tensor is None:
                    continue
                new = by_id.get(id(tensor))
                if new is None:
                    new = stand_ins.get(f"{prefix}.{name}" if prefix else name)
                    if new is None:
                        continue
                    by_id[id(tensor)] = new
                plan.append((store, name, new))
    return plan


def meta_plan(model: torch.nn.Module) -> Plan:
    """Every parameter and buffer replaced by a fresh meta tensor (what ``named_plan`` of
    ``engine.meta_stand_ins(model)`` gives, in one walk, with one stand-in per tensor and no
    names: 0.4-0.6 ms less per count on models of ~400 tensors). Made before the trace:
    making a stand-in runs an op."""
    by_id: dict[int, torch.Tensor] = {}
    plan: Plan = []
    for module in model.modules():
        params, buffers = module._parameters, module._buffers
        for name, tensor in params.items() if params else ():
            if tensor is not None:
                new = by_id.get(id(tensor))
                if new is None:
                    new = by_id[id(tensor)] = torch.empty_like(
                        tensor, device=_META, requires_grad=tensor.requires_grad)
                plan.append((params, name, new))
        for name, buffer in buffers.items() if buffers else ():
            if buffer is not None:
                new = by_id.get(id(buffer))
                if new is None:
                    new = by_id[id(buffer)] = torch.empty_like(buffer, device=_META)
                plan.append((buffers, name, new))
    return plan


@contextlib.contextmanager
def applied(plan: Plan) -> Iterator[None]:
    """``plan``'s stand-ins in place for the ``with`` block; every entry restored in
    ``finally``."""
    saved: list[tuple[dict[str, Any], str, torch.Tensor]] = []
    try:
        for store, name, new in plan:
            saved.append((store, name, store[name]))
            store[name] = new
        yield
    finally:
        for store, name, tensor in reversed(saved):
            store[name] = tensor
