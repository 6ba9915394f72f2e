"""Run one observed forward pass, leaving the user's model exactly as found."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from cnnprof.counting import REGISTRY, FormulaRegistry
from cnnprof.trace.observers import FusedFunctionObserver, ModuleObserver, OpObserver


@dataclass
class TraceRun:
    modules: ModuleObserver
    output: Any
    error: BaseException | None
    printed: str


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
        model.train(train)
        yield
    finally:
        for module, flag in flags:
            module.training = flag
        torch.backends.mha.set_fastpath_enabled(fastpath)


def meta_stand_ins(model: torch.nn.Module, device: str | torch.device = "meta") -> dict[str, torch.Tensor]:
    """Parameters and buffers as fresh tensors on ``device`` (meta: no memory at all)."""
    out: dict[str, torch.Tensor] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        t = torch.empty_like(p, device=device) if str(device) == "meta" else p.detach().to(device)
        out[name] = t.requires_grad_(p.requires_grad) if t.is_floating_point() else t
    for name, b in model.named_buffers(remove_duplicate=False):
        out[name] = torch.empty_like(b, device=device) if str(device) == "meta" else b.to(device)
    return out


def run_observed(
    model: torch.nn.Module,
    call: Callable[[], Any],
    *,
    train: bool = False,
    grad: bool = False,
    registry: FormulaRegistry = REGISTRY,
    count: bool = True,
) -> TraceRun:
    """Run ``call()`` (which calls ``model``) under both observers.

    Exceptions from the forward are captured into the result, never raised, so callers can
    report the layers that did run; KeyboardInterrupt propagates after the cleanup.
    """
    modules = ModuleObserver(model)
    ops = OpObserver(modules, registry)
    fused = FusedFunctionObserver(ops)
    printed = io.StringIO()
    output: Any = None
    error: BaseException | None = None
    modules.attach()
    try:
        with preserved_state(model, train=train), contextlib.redirect_stdout(printed):
            grad_ctx = torch.enable_grad() if grad else torch.no_grad()
            with grad_ctx:
                if count:
                    with fused, ops:
                        output = call()
                else:
                    output = call()
    except Exception as exc:  # the model's failure is data for the report
        error = exc
    finally:
        modules.detach()
    return TraceRun(modules, output, error, printed.getvalue())


def needs_real_values(error: BaseException) -> bool:
    """Did a meta-device forward fail because the model needed tensor values?"""
    text = f"{type(error).__name__}: {error}".lower()
    return isinstance(error, NotImplementedError) or any(
        key in text for key in ("meta", "data-dependent", "data dependent", ".item()",
                                "_local_scalar_dense", "cannot be called on")
    )
