"""``--weights FILE``: a state dict, loaded safely, checked against the model, applied.

Loading uses ``torch.load(weights_only=True)``: tensors and plain containers only. A file
whose unpickling needs anything more (a pickled ``nn.Module``, custom classes) can run
arbitrary code, so it is refused with a message saying how to re-save it. Common checkpoint
wrappers (``{"state_dict": ...}``, ``{"model": ...}``) and DataParallel's ``module.`` prefix
are unwrapped, because that is how most training scripts save.

On the meta device values are never used, so the weights are only checked (names and
shapes); on a real device they are loaded into the model cnnprof built, or swapped in for a
user's instance through ``functional_call`` so the instance is not modified.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from cnnprof import units
from cnnprof.errors import ModelLoadError, first_line

_WRAPPERS = ("state_dict", "model_state_dict", "model", "net", "module", "ema", "weights")


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``path`` (tensors only, never arbitrary pickles)."""
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"--weights: file not found: {path}")
    if not path.is_file():
        raise ModelLoadError(f"--weights: not a file: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = first_line(exc)
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise ModelLoadError(
                f"--weights: refused to load {path}: it is not a plain state dict and "
                "unpickling it could run arbitrary code",
                hint="save the weights with torch.save(model.state_dict(), PATH)",
            ) from None
        raise ModelLoadError(f"--weights: cannot read {path}: {reason}") from None
    except Exception as exc:  # torch.load fails in many ways on a file that is not a checkpoint
        reason = first_line(exc)
        raise ModelLoadError(f"--weights: cannot read {path}: {reason}") from None
    return unwrap(data, path)


def unwrap(data: Any, path: str | Path = "weights") -> dict[str, torch.Tensor]:
    """The flat name → tensor mapping inside a checkpoint."""
    for _ in range(3):  # {"model": {"state_dict": {...}}} nests at most a level or two
        if not isinstance(data, dict):
            break
        if any(isinstance(v, torch.Tensor) for v in data.values()):
            break
        inner = next((data[k] for k in _WRAPPERS if isinstance(data.get(k), dict)), None)
        if inner is None:
            break
        data = inner
    if not isinstance(data, dict):
        raise ModelLoadError(
            f"--weights: {path} holds a {type(data).__name__}, not a state dict",
            hint="save the weights with torch.save(model.state_dict(), PATH)",
        )
    state = {str(k): v for k, v in data.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise ModelLoadError(f"--weights: {path} contains no tensors")
    if all(k.startswith("module.") for k in state):  # saved from DataParallel / DDP
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return state


def mismatches(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Human-readable differences between ``state`` and the model's own state dict."""
    own = model.state_dict(keep_vars=True)
    problems: list[str] = []
    # BatchNorm's step counter is absent from many older checkpoints and affects nothing
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing:
        problems.append(f"{len(missing)} missing ({_some(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected ({_some(unexpected)})")
    for key in shapes[:3]:
        problems.append(f"{key}: file {units.shape(state[key].shape)}, "
                        f"model {units.shape(own[key].shape)}")
    if len(shapes) > 3:
        problems.append(f"{len(shapes) - 3} more shape mismatches")
    return problems


def check(model: torch.nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> None:
    problems = mismatches(model, state)
    if problems:
        raise ModelLoadError(f"--weights {path} do not fit the model: " + "; ".join(problems))


def apply(model: torch.nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> None:
    """Check, then load into a model cnnprof built (meta: check only)."""
    check(model, state, path)
    if all(t.device.type != "meta" for t in model.state_dict().values()):
        model.load_state_dict(state, strict=False)


def stand_ins(model: torch.nn.Module, state: dict[str, torch.Tensor], path: str | Path,
              device: str) -> dict[str, torch.Tensor]:
    """Tensors to pass to ``functional_call`` instead of a user instance's own (meta: none:
    the values would not be used)."""
    check(model, state, path)
    if device == "meta":
        return {}
    own = model.state_dict(keep_vars=True)
    return {k: v.to(device=device, dtype=own[k].dtype).requires_grad_(own[k].requires_grad)
            if own[k].is_floating_point() else v.to(device=device, dtype=own[k].dtype)
            for k, v in state.items() if k in own}


def _some(keys: list[str], limit: int = 3) -> str:
    return ", ".join(keys[:limit]) + (", ..." if len(keys) > limit else "")
