"""Run one observed forward pass, leaving the user's model exactly as found."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from cnnprof.counting import REGISTRY, FormulaRegistry
from cnnprof.errors import first_line
from cnnprof.guard import PROCESS_LOCK, Captured, seeded_rng, user_code
from cnnprof.inputs import example_tensor
from cnnprof.trace.observers import (
    BackwardOpObserver,
    FusedFunctionObserver,
    ModuleObserver,
    OpObserver,
    Tally,
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
def preserved_state(model: torch.nn.Module, *, train: bool,
                    modules: list[torch.nn.Module] | None = None) -> Iterator[None]:
    """Set train/eval for the run; restore every module's own flag, the tensors it keeps as
    plain attributes, and the MHA fast path.

    The fused fast paths of ``nn.MultiheadAttention``/``TransformerEncoderLayer`` run only
    with real tensors under no_grad; they hide the attention from op-level counting, so they
    are switched off for the run and the global flag is restored afterwards.

    Plain tensor attributes are what forward pre-hooks write: the old ``weight_norm`` and
    ``spectral_norm`` set ``module.weight`` from the (stand-in) parameters on every call, and
    ``nn.LSTM`` refreshes ``_flat_weights``; left alone, the user's module would keep meta or
    copied tensors until its next forward.
    """
    if modules is None:
        modules = list(model.modules())
    flags = [(m, m.training) for m in modules]
    attributes = [(m, saved) for m in modules if (saved := _tensor_attributes(m))]
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
        for module, saved in attributes:
            _restore_attributes(module, saved)
        torch.backends.mha.set_fastpath_enabled(fastpath)


#: per type of attribute value: can it be, or be a list of, tensors?
_HOLDS_TENSORS: dict[type, bool] = {}


def _tensor_attributes(module: torch.nn.Module) -> dict[str, Any]:
    """The module's plain (non-parameter, non-buffer) attributes holding tensors or lists of
    tensors, with a copy of each list's items (lists are refreshed in place)."""
    saved: dict[str, Any] = {}
    state = vars(module)
    # every count asks every module; the distinct types of its attributes (a handful: the
    # hook dicts, ints, tuples, a bool) say at once whether any can hold a tensor
    for kind in set(map(type, state.values())):
        holds = _HOLDS_TENSORS.get(kind)
        if holds is None:
            holds = _HOLDS_TENSORS[kind] = issubclass(kind, (torch.Tensor, list))
        if holds:
            break
    else:
        return saved
    for key, value in state.items():
        if isinstance(value, torch.Tensor):
            saved[key] = value
        elif (isinstance(value, list) and value
              and all(isinstance(v, torch.Tensor) for v in value)):
            saved[key] = (value, list(value))
    return saved


def _restore_attributes(module: torch.nn.Module, saved: dict[str, Any]) -> None:
    state = vars(module)
    for key, value in saved.items():
        if isinstance(value, tuple):
            items, contents = value
            items[:] = contents
            value = items
        if state.get(key) is not value:
            state[key] = value  # bypasses Module.__setattr__: put back exactly what was there


def meta_stand_ins(
    model: torch.nn.Module, device: str | torch.device = "meta"
) -> dict[str, torch.Tensor]:
    """Parameters and buffers as fresh tensors on ``device`` (meta: no memory at all), by
    every name they have (``named_parameters``/``named_buffers`` with duplicates)."""
    out: dict[str, torch.Tensor] = {}
    # one walk for both (named_parameters and named_buffers walk the tree each)
    paths = [(f"{prefix}." if prefix else "", module)
             for prefix, module in model.named_modules(remove_duplicate=False)]
    if str(device) == "meta":
        meta = torch.device("meta")
        for prefix, module in paths:
            for name, p in module._parameters.items():
                if p is not None:
                    out[prefix + name] = torch.empty_like(p, device=meta,
                                                          requires_grad=p.requires_grad)
        for prefix, module in paths:
            for name, b in module._buffers.items():
                if b is not None:
                    out[prefix + name] = torch.empty_like(b, device=meta)
        return out
    for prefix, module in paths:
        for name, p in module._parameters.items():
            if p is not None:
                out[prefix + name] = _stand_in(p, device).requires_grad_(p.requires_grad)
    for prefix, module in paths:
        for name, b in module._buffers.items():
            if b is not None:
                out[prefix + name] = _stand_in(b, device)
    return out


def _stand_in(tensor: torch.Tensor, device: str | torch.device) -> torch.Tensor:
    """``tensor`` on ``device``: no memory on meta; a copy elsewhere (the forward may write
    buffers in place). A meta tensor holds no values to copy (a model built under
    ``torch.device("meta")``): a real device gets example values of its shape and dtype."""
    if str(device) == "meta":
        return torch.empty_like(tensor, device=device)
    if tensor.is_meta:
        return example_tensor(tuple(tensor.shape), tensor.dtype, str(device))
    return tensor.detach().to(device, copy=True)


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
    printed = Captured()
    output: Any = None
    error: BaseException | None = None
    backward_note: str | None = None
    # one run at a time per process: hooks aside, everything below is process-wide state
    with PROCESS_LOCK, seeded_rng():
        modules.attach()
        try:
            with (preserved_state(model, train=train, modules=modules.modules()),
                  contextlib.redirect_stdout(printed)):
                grad_ctx = torch.enable_grad() if grad or backward else torch.no_grad()
                with grad_ctx:
                    with user_code("the model's forward"):
                        if count:
                            with fused, ops:
                                output = call()
                        else:
                            output = call()
                    if backward and count:
                        modules.claim(output, modules.root)  # ops after the last module returned
                        with user_code("the backward pass"):
                            backward_note = _run_backward(modules, output, registry)
        except Exception as exc:  # the model's failure is data for the report
            error = exc
            modules.place_failure()
        finally:
            modules.detach()
    return TraceRun(modules, output, error, printed.getvalue(), backward_note)


def _run_backward(modules: ModuleObserver, output: Any, registry: FormulaRegistry) -> str | None:
    """Differentiate the forward's floating-point outputs; returns a note when it cannot."""
    roots = [t for t in iter_tensors(output) if t.is_floating_point() and t.requires_grad]
    if not roots:
        return "no output requires grad (frozen parameters?); the backward pass is not counted"
    for node in modules.nodes.values():
        node.bwd = Tally()
        for stretch in node.stretches.values():
            stretch.bwd = Tally()
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
