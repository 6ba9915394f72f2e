"""Input specs: ``3x224x224`` / ``16:int64`` / batch / dtype → example tensors.

A spec describes one sample; ``batch`` is prepended. Parsing is pure (no torch import) so the
CLI can validate arguments before paying for ``import torch``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

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
    """One model input: per-sample ``shape`` (batch not included) and a dtype name."""

    shape: tuple[int, ...]
    dtype: str = "float32"

    def __str__(self) -> str:
        dims = "x".join(str(d) for d in self.shape) or "scalar"
        return dims if self.dtype == "float32" else f"{dims}:{self.dtype}"


def parse_dtype(text: str) -> str:
    """Normalise a dtype name (``fp16`` → ``float16``); raise on unknown names."""
    key = text.strip().lower().removeprefix("torch.")
    if key not in DTYPE_ALIASES:
        known = ", ".join(sorted(set(DTYPE_ALIASES.values())))
        raise InputSpecError(f"unknown dtype {text!r}", hint=f"known: {known}")
    return DTYPE_ALIASES[key]


def parse_input_spec(text: str) -> InputSpec:
    """Parse ``CxHxW[:dtype]``. Every dimension is a positive integer."""
    raw = text.strip()
    if not raw:
        raise InputSpecError("empty --input", hint="write the per-sample shape, e.g. 3x224x224")
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
    spec = InputSpec(tuple(dims), dtype)
    check_size([spec], 1)
    return spec


#: torch indexes elements and bytes with signed 64-bit integers.
MAX_TENSOR_BYTES = 2**63 - 1

_ITEM_BYTES = {"float64": 8, "int64": 8, "complex64": 8, "float32": 4, "int32": 4,
               "float16": 2, "bfloat16": 2, "int16": 2, "int8": 1, "uint8": 1, "bool": 1}


def check_size(specs: list[InputSpec], batch: int) -> None:
    """Refuse inputs too large for any tensor (even on meta) before torch does, in words:
    its own message is 'Overflow when unpacking long long'."""
    for spec in specs:
        elements = batch
        for dim in spec.shape:
            elements *= dim
        if elements * _ITEM_BYTES.get(spec.dtype, 8) > MAX_TENSOR_BYTES:
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
    return [InputSpec(s.shape, dtype) if s.dtype in FLOAT_DTYPES else s for s in specs]


def torch_dtype(name: str) -> torch.dtype:
    import torch

    dtype = getattr(torch, name)
    assert isinstance(dtype, torch.dtype)
    return dtype


def make_tensor(spec: InputSpec, batch: int, device: str | torch.device) -> torch.Tensor:
    """An example tensor: random normal floats, zeros for integers (valid token ids)."""
    return example_tensor((batch, *spec.shape), torch_dtype(spec.dtype), device)


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
