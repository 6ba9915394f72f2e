"""``load_model(spec)``: the nn.Module a spec names, built on a chosen device."""

from __future__ import annotations

from typing import Any

import torch

from cnnprof.zoo import resolve


def load_model(spec: str, *, device: str = "cpu", **kwargs: Any) -> torch.nn.Module:
    """Build the model ``spec`` names (``"resnet50"``, ``"lenet"``, ``"file.py:Net"``).

    Weights are random (never downloaded); ``device="meta"`` allocates no memory.
    """
    model, _notes = resolve(spec, kwargs).build(device)
    return model
