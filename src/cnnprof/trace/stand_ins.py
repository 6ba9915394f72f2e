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


def call_with(model: torch.nn.Module, stand_ins: dict[str, torch.Tensor],
              args: tuple[Any, ...], kwargs: dict[str, Any] | None = None) -> Any:
    """``model(*args, **kwargs)`` with the tensors named in ``stand_ins`` replaced; names not
    given keep the model's own tensors (``strict=False``)."""
    with swapped(model, stand_ins):
        return model(*args, **(kwargs or {}))


@contextlib.contextmanager
def swapped(model: torch.nn.Module, stand_ins: dict[str, torch.Tensor]) -> Iterator[None]:
    """The stand-ins in place of the model's tensors for the ``with`` block (a training step
    keeps them through backward, where activation checkpointing runs the forward again)."""
    by_id: dict[int, torch.Tensor] = {}
    saved: list[tuple[dict[str, Any], str, torch.Tensor]] = []
    try:
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
                    saved.append((store, name, tensor))
                    store[name] = new
        yield
    finally:
        for store, name, tensor in reversed(saved):
            store[name] = tensor
