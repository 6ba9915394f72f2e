"""A device as a value: parsed and checked once, then passed down.

``parse`` reads the text a user wrote (``--device``, a budget file's ``device =``, the
``device=`` argument of ``cnnprof.profile``) without importing torch; ``resolve`` checks that
the device exists here and, for ``auto``, picks one and keeps the reason. Everything below
the entry points takes a :class:`Device` and asks it ``is_cuda``/``is_meta`` instead of
re-reading strings.

Importing this module does not import torch (``cnnprof --help`` stays fast).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from cnnprof.errors import DeviceError

if TYPE_CHECKING:
    import torch

Kind = Literal["meta", "cpu", "cuda"]

_SYNTAX = re.compile(r"(meta|cpu|cuda|gpu)(?::(\d+))?")
HINT = "use auto, meta, cpu or cuda[:N]"


@dataclass(frozen=True)
class Device:
    """Where cnnprof counts or times: ``kind`` meta/cpu/cuda, ``index`` for ``cuda:N``, and
    ``reason`` when ``auto`` chose it (None when the user named the device)."""

    kind: Kind
    index: int | None = None
    reason: str | None = None

    def __str__(self) -> str:
        # the torch spelling, which reports store ("cuda", "cuda:1", "cpu", "meta")
        return self.kind if self.index is None else f"{self.kind}:{self.index}"

    @property
    def is_cuda(self) -> bool:
        return self.kind == "cuda"

    @property
    def is_meta(self) -> bool:
        return self.kind == "meta"

    @property
    def chosen(self) -> bool:
        """Picked by ``auto`` rather than named by the user."""
        return self.reason is not None

    @property
    def cuda_index(self) -> int:
        """The CUDA ordinal (``cuda`` alone means the current device, 0 unless changed)."""
        return self.index or 0

    def torch(self) -> torch.device:
        import torch

        return torch.device(str(self))


def parse(text: str | Device) -> Device | None:
    """The device ``text`` names, or None for ``auto``; syntax only (no torch, no GPU
    check). ``gpu`` is accepted for ``cuda``. Raises ``DeviceError`` on anything else."""
    if isinstance(text, Device):
        return text
    name = str(text).strip().lower()
    if name == "auto":
        return None
    match = _SYNTAX.fullmatch(name)
    if match is None:
        raise DeviceError(f"unknown device {text!r}", hint=HINT)
    kind = "cuda" if match.group(1) == "gpu" else match.group(1)
    index = match.group(2)
    if index is not None and kind != "cuda":
        raise DeviceError(f"unknown device {text!r}: only cuda takes an index", hint=HINT)
    return Device(kind, int(index) if index is not None else None)  # type: ignore[arg-type]


def check_available(device: Device, *, timing: bool = False) -> Device:
    """``device`` when it exists in this process; a one-line ``DeviceError`` when not."""
    if not device.is_cuda:
        return device
    import torch

    if not torch.cuda.is_available():
        raise DeviceError(f"--device {device}: no CUDA GPU is available here",
                          hint="time on the CPU: --device cpu, or auto (the default)"
                          if timing else
                          "counting needs no GPU: use --device meta (default) or cpu")
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise DeviceError(f"--device {device}: only {count} CUDA device(s) here")
    return device


def for_timing(text: str | Device) -> Device:
    """The device to time on. ``auto`` picks the GPU when there is one, else the CPU, and
    says why; meta is refused (it runs no arithmetic)."""
    device = parse(text)
    if device is None:
        import torch

        if torch.cuda.is_available():
            return Device("cuda", None, f"auto: a CUDA GPU is available "
                                        f"({torch.cuda.get_device_name(0)})")
        return Device("cpu", None, "auto: no CUDA GPU here")
    if device.is_meta:
        from cnnprof.errors import UsageError

        raise UsageError("--time needs a real device: the meta device runs no arithmetic",
                         hint="use --device auto, cpu or cuda")
    return check_available(device, timing=True)


def for_counting(text: str | Device) -> Device | None:
    """The device to count on, checked; None for ``auto``, which the counting pass resolves
    per model (``cnnprof.device_choice``) because the answer depends on the model."""
    device = parse(text)
    return None if device is None else check_available(device)
