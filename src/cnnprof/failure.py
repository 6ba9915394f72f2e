"""Explain a failed forward: where (module path and type, or the op in a parent's own
``forward`` after which layer), with what shapes, the error in one line, and a hint.

The result is the report's ``"error"`` dict (JSON-ready); renderers and the CLI print it,
nothing here prints. The hint's input search is passed in as a callable so this module
stays free of model building.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

import torch

# PyTorch's own notation, [1, 256, 6, 6], so messages read like x.size(); also api.py's hint
from cnnprof.guard import UserCodeExit
from cnnprof.render.units import bracketed as shape_text
from cnnprof.trace.engine import TraceRun
from cnnprof.trace.observers import Node

#: Ops that only re-interpret a tensor's shape; their failures are explained by element count.
_RESHAPES = frozenset({"aten.view", "aten._unsafe_view", "aten.reshape", "aten.expand"})


def one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0].strip() if lines else type(exc).__name__


def _arg_text(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        dtype = str(value.dtype).removeprefix("torch.")
        return f"{dtype}{shape_text(value.shape)}"
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, torch.Tensor) for v in value):
            return "[" + ", ".join(_arg_text(v) for v in value) + "]"
        return repr(list(value)) if isinstance(value, list) else repr(value)
    if isinstance(value, (int, float, bool, str)) or value is None:
        return repr(value)
    return type(value).__name__


def op_text(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    parts = [_arg_text(a) for a in args]
    parts.extend(f"{k}={_arg_text(v)}" for k, v in kwargs.items())
    return f"{name.removeprefix('aten.')}({', '.join(parts)})"


def _in_chain(inner: BaseException, outer: BaseException) -> bool:
    """Is ``inner`` the error that surfaced, or what it was raised from / during?"""
    seen: set[int] = set()
    current: BaseException | None = outer
    while current is not None and id(current) not in seen:
        if current is inner:
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _reshape_detail(name: str, args: tuple[Any, ...]) -> str | None:
    if name not in _RESHAPES or not args or not isinstance(args[0], torch.Tensor):
        return None
    source = args[0]
    if len(args) < 2 or not isinstance(args[1], (list, tuple)):
        return None
    target = [int(d) for d in args[1]]
    known = 1
    for d in target:
        if d != -1:
            known *= d
    have = source.numel()
    verb = name.removeprefix("aten.").lstrip("_").removeprefix("unsafe_")
    if -1 in target:
        return (f"{verb} of a {shape_text(source.shape)} tensor ({have:,} elements) to "
                f"{shape_text(target)}: {have:,} is not a multiple of {known:,}")
    return (f"{verb} of a {shape_text(source.shape)} tensor ({have:,} elements) to "
            f"{shape_text(target)}, which needs {known:,} elements")


def module_expectation(node: Node) -> str | None:
    """What a standard layer expected of its input, from its own hyper-parameters."""
    module = node.module
    shapes = node.input_shapes
    dtypes = node.input_dtypes
    if not shapes:
        return None
    shape = shapes[0]
    kind = node.type
    if isinstance(module, torch.nn.Linear) and shape and shape[-1] != module.in_features:
        return (f"{kind} expects {module.in_features:,} input features (last dimension), "
                f"got {shape[-1]:,} from input {shape_text(shape)}")
    if isinstance(module, torch.nn.modules.conv._ConvNd):
        spatial = len(module.kernel_size)
        if len(shape) not in (spatial + 1, spatial + 2):
            return (f"{kind} expects a {spatial + 2}-D (batched) or {spatial + 1}-D input, "
                    f"got {len(shape)}-D {shape_text(shape)}")
        channels = shape[1] if len(shape) == spatial + 2 else shape[0]
        if channels != module.in_channels:
            return (f"{kind} expects {module.in_channels} input channels, got {channels} "
                    f"from input {shape_text(shape)}")
    norm_base = torch.nn.modules.batchnorm._NormBase
    if isinstance(module, norm_base) and len(shape) >= 2 and shape[1] != module.num_features:
        return (f"{kind} expects {module.num_features} channels (dimension 1), got "
                f"{shape[1]} from input {shape_text(shape)}")
    if isinstance(module, torch.nn.LayerNorm):
        norm = tuple(module.normalized_shape)
        if tuple(shape[-len(norm):]) != norm:
            return (f"{kind} normalises the last dimensions {shape_text(norm)}, got input "
                    f"{shape_text(shape)}")
    embedding = (torch.nn.Embedding, torch.nn.EmbeddingBag)
    if isinstance(module, embedding) and dtypes and dtypes[0].startswith(("float", "bfloat")):
        return f"{kind} takes integer indices, got {dtypes[0]} (use --input SPEC:int64)"
    return None


def _specific_hint(detail: str, node: Node | None) -> str | None:
    if "Expected more than 1 value per channel when training" in detail:
        return ("a BatchNorm in train mode needs more than one value per channel: "
                "use --batch 2 or more, or --mode eval")
    if "Expected all tensors to be on the same device" in detail:
        return "a tensor created inside forward is on another device than the model's"
    return None


def describe(
    run: TraceRun,
    suggest: Callable[[str], tuple[str, dict[str, Any]] | None] | None = None,
) -> dict[str, Any]:
    """The report's ``"error"`` dict for a failed ``run``.

    ``suggest(detail)`` returns (hint text, JSON details) for an input that does run, or
    None; it is not asked when the hint is already specific (BatchNorm at batch 1).
    """
    exc = run.error
    assert exc is not None
    modules = run.modules
    failed = modules.failed_node
    last = modules.last_finished
    detail = one_line(exc)
    # a sys.exit() in forward is reported as the SystemExit it was (cnnprof.guard)
    shown = exc.original if isinstance(exc, UserCodeExit) else exc
    out: dict[str, Any] = {"exception": type(shown).__name__, "detail": detail}

    op = modules.failed_op
    op_line: str | None = None
    if op is not None and _in_chain(op[3], exc):
        name, args, kwargs, _ = op
        out["op"] = {"name": name, "call": op_text(name, args, kwargs)}
        op_line = _reshape_detail(name, args) or op_text(name, args, kwargs)

    expectation = module_expectation(failed) if failed is not None else None
    if failed is None:
        where = "forward failed before any module ran"
    elif failed.children:
        # the failing statement is in the parent's own forward, between its children
        label = failed.name or failed.type
        where = f"forward failed in `forward` of {label}"
        if last is not None and last is not failed:
            where += f", after layer {last.name or last.type}"
            out["after"] = last.name
            if last.output_shapes:
                out["after_output_shapes"] = [list(s) for s in last.output_shapes]
    else:
        shapes = ", ".join(shape_text(s) for s in failed.input_shapes) or "no tensors"
        where = f"forward failed in {failed.name or '(model)'} ({failed.type}) on input {shapes}"
    if failed is not None:
        out.update({"module": failed.name, "type": failed.type,
                    "input_shapes": [list(s) for s in failed.input_shapes]})

    why = expectation or op_line
    message = f"{where}: {why}" if why else f"{where}: {detail}"
    if why and detail not in why:
        out["explanation"] = why
    out["message"] = message

    hint = _specific_hint(detail, failed)
    if hint is None and suggest is not None:
        found = suggest(detail)
        if found is not None:
            hint, out["suggestion"] = found
    if hint is not None:
        out["hint"] = hint
    out["traceback"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return out
