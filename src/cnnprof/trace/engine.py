"""Run one observed forward pass, leaving the user's model exactly as found."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from cnnprof.counting import REGISTRY, FormulaRegistry
from cnnprof.errors import first_line
from cnnprof.trace.observers import (
    BackwardOpObserver,
    FusedFunctionObserver,
    ModuleObserver,
    OpObserver,
)
from cnnprof.trace.structure import iter_tensors


@dataclass
class TraceRun:
    modules: ModuleObserver
    output: Any
    error: BaseException | None
    printed: str
    #: why a requested backward pass was not counted (None when it was, or not requested)
    backward_note: str | None = None


@contextlib.contextmanager
def preserved_state(model: torch.nn.Module, *, train: bool) -> Iterator[None]:
    """Set train/eval for the run; restore every module's own flag and the MHA fast path.

    The fused fast paths of ``nn.MultiheadAttention``/``TransformerEncoderLayer`` run only
    with real tensors under no_grad; they hide the attention from op-level counting, so they
    are switched off for the run and the global flag is restored afterwards.
    """
    flags = [(m, m.training) for m in model.modules()]
    fastpath = torch.backends.mha.get_fastpath_enabled()
    try:
        torch.backends.mha.set_fastpath_enabled(False)
        # Module.train only sets the flags, unless a class overrides it: skip it when every
        # flag is already right (the common eval-on-an-eval-model case; a setattr per module)
        if any(flag is not train or type(m).train is not torch.nn.Module.train
               for m, flag in flags):
            model.train(train)
        yield
    finally:
        for module, flag in flags:
            if module.training is not flag:  # Module.__setattr__ is slow; most are unchanged
                module.training = flag
        torch.backends.mha.set_fastpath_enabled(fastpath)


def meta_stand_ins(
    model: torch.nn.Module, device: str | torch.device = "meta"
) -> dict[str, torch.Tensor]:
    """Parameters and buffers as fresh tensors on ``device`` (meta: no memory at all)."""
    out: dict[str, torch.Tensor] = {}
    on_meta = str(device) == "meta"
    for name, p in model.named_parameters(remove_duplicate=False):
        t = torch.empty_like(p, device=device) if on_meta else p.detach().to(device)
        if p.requires_grad and t.is_floating_point():
            t.requires_grad_(True)
        out[name] = t
    for name, b in model.named_buffers(remove_duplicate=False):
        out[name] = torch.empty_like(b, device=device) if on_meta else b.to(device)
    return out


def run_observed(
    model: torch.nn.Module,
    call: Callable[[], Any],
    *,
    train: bool = False,
    grad: bool = False,
    registry: FormulaRegistry = REGISTRY,
    count: bool = True,
    backward: bool = False,
) -> TraceRun:
    """Run ``call()`` (which calls ``model``) under both observers.

    With ``backward`` the forward runs with autograd on and a backward pass from every
    floating-point output follows (gradient of ones, as for ``output.sum()``), costed into the
    ``bwd`` of each module and of each gap of a parent's own ops. Exceptions from the forward
    are captured into the result, never raised, so callers can report the layers that did run;
    KeyboardInterrupt propagates after the cleanup.
    """
    modules = ModuleObserver(model, track_grad=backward and count)
    ops = OpObserver(modules, registry)
    fused = FusedFunctionObserver(ops)
    printed = io.StringIO()
    output: Any = None
    error: BaseException | None = None
    backward_note: str | None = None
    modules.attach()
    try:
        with preserved_state(model, train=train), contextlib.redirect_stdout(printed):
            grad_ctx = torch.enable_grad() if grad or backward else torch.no_grad()
            with grad_ctx:
                if count:
                    with fused, ops:
                        output = call()
                else:
                    output = call()
                if backward and count:
                    modules.claim(output, modules.root)  # ops after the last module returned
                    backward_note = _run_backward(modules, output, registry)
    except Exception as exc:  # the model's failure is data for the report
        error = exc
    finally:
        modules.detach()
    return TraceRun(modules, output, error, printed.getvalue(), backward_note)


def _run_backward(modules: ModuleObserver, output: Any, registry: FormulaRegistry) -> str | None:
    """Differentiate the forward's floating-point outputs; returns a note when it cannot."""
    roots = [t for t in iter_tensors(output) if t.is_floating_point() and t.requires_grad]
    if not roots:
        return "no output requires grad (frozen parameters?); the backward pass is not counted"
    for node in modules.nodes.values():
        node.bwd = [0, 0, 0, 0, 0]
        for stretch in node.stretches.values():
            stretch.bwd = [0, 0, 0, 0, 0]
    # torch.autograd.grad (not .backward) so nothing lands in the user's parameters' .grad;
    # the leaves are what the forward's graph reaches (meta stand-ins under functional_call).
    seeds = [torch.ones_like(t) for t in roots]
    leaves = [t for t in modules.grad_leaves if t.requires_grad]
    try:
        with BackwardOpObserver(modules, registry):
            torch.autograd.grad(roots, leaves or roots, grad_outputs=seeds, allow_unused=True)
    except RuntimeError as exc:
        line = first_line(exc)
        return f"the backward pass failed ({line[:160]}); its cost is partial"
    return None


def needs_real_values(error: BaseException) -> bool:
    """Did a meta-device forward fail because the model needed tensor values?"""
    text = f"{type(error).__name__}: {error}".lower()
    return isinstance(error, NotImplementedError) or any(
        key in text for key in ("meta", "data-dependent", "data dependent", ".item()",
                                "_local_scalar_dense", "cannot be called on")
    )
