"""Input specs: ``3x224x224`` / ``16:int64`` / ``input_ids=128:int64`` / batch / dtype →
example tensors.

A spec describes one sample; ``batch`` is prepended. A spec may carry a keyword name
(``NAME=SPEC``): the model is then called ``model(*positional, **named)`` (:func:`bind`).
Parsing is pure (no torch import) so the CLI can validate arguments before paying for
``import torch``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from cnnprof.errors import InputSpecError

if TYPE_CHECKING:
    import torch

#: dtype names a user may type, mapped to torch attribute names.
DTYPE_ALIASES: dict[str, str] = {
    "float32": "float32", "float": "float32", "fp32": "float32", "f32": "float32",
    "float16": "float16", "half": "float16", "fp16": "float16", "f16": "float16",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float64": "float64", "double": "float64", "fp64": "float64", "f64": "float64",
    "int64": "int64", "long": "int64", "i64": "int64",
    "int32": "int32", "int": "int32", "i32": "int32",
    "int16": "int16", "int8": "int8", "uint8": "uint8", "bool": "bool",
    "complex64": "complex64", "cfloat": "complex64",
}
FLOAT_DTYPES = frozenset({"float32", "float16", "bfloat16", "float64"})

_DIM = re.compile(r"^[0-9]+$")


@dataclass(frozen=True)
class InputSpec:
    """One model input: per-sample ``shape`` (batch not included), a dtype name, and the
    keyword it is passed as (``None``: positional)."""

    shape: tuple[int, ...]
    dtype: str = "float32"
    name: str | None = None

    def __str__(self) -> str:
        dims = "x".join(str(d) for d in self.shape) or "scalar"
        text = dims if self.dtype == "float32" else f"{dims}:{self.dtype}"
        return f"{self.name}={text}" if self.name else text


def parse_dtype(text: str) -> str:
    """Normalise a dtype name (``fp16`` → ``float16``); raise on unknown names."""
    key = text.strip().lower().removeprefix("torch.")
    if key not in DTYPE_ALIASES:
        known = ", ".join(sorted(set(DTYPE_ALIASES.values())))
        raise InputSpecError(f"unknown dtype {text!r}", hint=f"known: {known}")
    return DTYPE_ALIASES[key]


def parse_input_spec(text: str) -> InputSpec:
    """Parse ``[NAME=]CxHxW[:dtype]``. Every dimension is a positive integer; ``NAME`` is a
    Python identifier, the keyword the input is passed as."""
    raw = text.strip()
    if not raw:
        raise InputSpecError("empty --input", hint="write the per-sample shape, e.g. 3x224x224")
    name: str | None = None
    if "=" in raw:
        name_text, _, raw = raw.partition("=")
        name = name_text.strip()
        raw = raw.strip()
        if not name.isidentifier():
            raise InputSpecError(
                f"malformed --input {text!r}: {name!r} is not a keyword name",
                hint="write NAME=SHAPE[:DTYPE], e.g. input_ids=128:int64",
            )
        if not raw:
            raise InputSpecError(f"malformed --input {text!r}: no shape after '='",
                                 hint=f"write {name}=SHAPE[:DTYPE], e.g. {name}=128:int64")
    shape_text, sep, dtype_text = raw.partition(":")
    dtype = parse_dtype(dtype_text) if sep else "float32"
    parts = shape_text.lower().replace("×", "x").split("x")
    dims: list[int] = []
    for part in parts:
        part = part.strip()
        if not _DIM.match(part):
            raise InputSpecError(
                f"malformed --input {text!r}: {part!r} is not a positive integer",
                hint="write the per-sample shape as dimensions joined by 'x', e.g. 3x224x224",
            )
        value = int(part)
        if value <= 0:
            raise InputSpecError(
                f"malformed --input {text!r}: dimensions must be positive, got {value}"
            )
        dims.append(value)
    return InputSpec(tuple(dims), dtype, name)


#: torch indexes elements and bytes with signed 64-bit integers.
MAX_TENSOR_BYTES = 2**63 - 1



def check_size(specs: list[InputSpec], batch: int) -> None:
    """Refuse inputs too large for any tensor (even on meta) before torch does, in words:
    its own message is 'Overflow when unpacking long long'."""
    for spec in specs:
        elements = batch * math.prod(spec.shape)
        if elements * torch_dtype(spec.dtype).itemsize > MAX_TENSOR_BYTES:
            raise InputSpecError(
                f"input {batch}x{spec} has {elements:.3g} elements: "
                "more than a tensor can hold (2^63 bytes)")


def parse_batch(text: str | int) -> int:
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise InputSpecError(f"--batch must be a positive integer, got {text!r}") from None
    if value <= 0:
        raise InputSpecError(f"--batch must be a positive integer, got {value}")
    return value


def with_dtype(specs: list[InputSpec], dtype: str | None) -> list[InputSpec]:
    """Apply a global --dtype to the floating inputs that did not name their own dtype."""
    if dtype is None:
        return specs
    return [replace(s, dtype=dtype) if s.dtype in FLOAT_DTYPES else s for s in specs]


def check_names(specs: list[InputSpec]) -> None:
    """Refuse a keyword given twice."""
    seen: set[str] = set()
    for spec in specs:
        if spec.name is not None:
            if spec.name in seen:
                raise InputSpecError(f"--input {spec.name}= is given twice")
            seen.add(spec.name)


def bind(specs: list[InputSpec], tensors: list[Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The call arguments: unnamed inputs positional in order, named ones as keywords."""
    positional = tuple(t for s, t in zip(specs, tensors, strict=True) if s.name is None)
    named = {s.name: t for s, t in zip(specs, tensors, strict=True) if s.name is not None}
    return positional, named


def torch_dtype(name: str) -> torch.dtype:
    import torch

    dtype = getattr(torch, name)
    assert isinstance(dtype, torch.dtype)
    return dtype


def make_tensor(spec: InputSpec, batch: int, device: str | torch.device) -> torch.Tensor:
    """An example tensor: random normal floats, zeros for integers (valid token ids), ones
    for an integer input named ``*mask`` (``attention_mask``: attend to every token)."""
    tensor = example_tensor((batch, *spec.shape), torch_dtype(spec.dtype), device)
    if spec.name is not None and spec.name.endswith("mask") and not tensor.is_floating_point():
        return tensor if tensor.is_meta else tensor.fill_(1)
    return tensor


def example_tensor(shape: tuple[int, ...] | torch.Size, dtype: torch.dtype,
                   device: str | torch.device) -> torch.Tensor:
    """Random normal floats (seeded: every run sees the same values), zeros for integers;
    on meta, no values at all."""
    import torch

    if str(device) == "meta":
        return torch.empty(shape, dtype=dtype, device="meta")
    if dtype.is_floating_point or dtype.is_complex:
        gen = torch.Generator().manual_seed(0)
        return torch.randn(shape, generator=gen, dtype=dtype).to(device)
    return torch.zeros(shape, dtype=dtype, device=device)


def make_tensors(
    specs: list[InputSpec], batch: int, device: str | torch.device
) -> list[torch.Tensor]:
    return [make_tensor(s, batch, device) for s in specs]
