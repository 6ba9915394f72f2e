"""A small user model file for the start-up benchmark (benchmarks/startup.py):
``cnnprof benchmarks/models/small_cnn.py:SmallCNN -f json`` (input declared below)."""

from __future__ import annotations

import torch
from torch import nn

CNNPROF_INPUTS = ["3x32x32"]


class SmallCNN(nn.Module):
    """A CIFAR-sized CNN: two conv blocks and a classifier (about 0.3 M parameters)."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Linear(64 * 8 * 8, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(x), 1))
