"""The seed architectures (the blog posts cnnprof grew from), by clear names.

Each entry: (factory, default per-sample input, description). See docs/zoo.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from cnnprof.errors import ModelLoadError
from cnnprof.inputs import parse_input_spec
from cnnprof.zoo.base import ZooEntry


class LeNet(nn.Module):
    """LeNet from seeds/001: conv(3x3, pad 1) → pool → conv(5x5) → pool → 3 linear, 1x28x28."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.layer1 = nn.Sequential()
        self.layer1.add_module("conv1", nn.Conv2d(1, 6, kernel_size=3, padding=1))
        self.layer1.add_module("pool1", nn.MaxPool2d(kernel_size=2))
        self.layer2 = nn.Sequential()
        self.layer2.add_module("conv2", nn.Conv2d(6, 16, kernel_size=5))
        self.layer2.add_module("pool2", nn.MaxPool2d(kernel_size=2))
        self.layer3 = nn.Sequential()
        self.layer3.add_module("fc1", nn.Linear(16 * 5 * 5, 120))
        self.layer3.add_module("fc2", nn.Linear(120, 84))
        self.layer3.add_module("fc3", nn.Linear(84, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer2(self.layer1(x))
        return self.layer3(torch.flatten(x, 1))


ENTRIES: dict[str, tuple[Callable[..., nn.Module], str, str]] = {
    "lenet": (LeNet, "1x28x28", "LeNet (seeds/001): 1x28x28, Sequential layer1..layer3"),
}


def entry(name: str, kwargs: dict[str, Any]) -> ZooEntry:
    factory_obj, default, description = ENTRIES[name]

    def factory() -> nn.Module:
        try:
            return factory_obj(**kwargs)
        except TypeError as exc:
            raise ModelLoadError(f"{name}: bad --arg: {exc}") from exc

    return ZooEntry(
        name=name,
        source="classic",
        factory=factory,
        default_inputs=(parse_input_spec(default),),
        description=description,
    )
