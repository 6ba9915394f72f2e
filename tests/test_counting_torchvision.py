"""Acceptance: every torchvision classification model and every one of its weights entries
counts exactly what the weights' metadata says (``_ops``: GMACs, 3 decimals; ``num_params``).

Each model is configured as that entry's builder configures it (classes, ViT image size, aux
heads) and run at the entry's eval crop size, on the meta device.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import torch

from cnnprof import profile
from cnnprof.zoo.base import ZooEntry
from cnnprof.zoo.torchvision_zoo import deploy_kwargs_for, weights_input


def _entries() -> list[Any]:
    import torchvision

    out = []
    for name in torchvision.models.list_models(module=torchvision.models):
        for weights in torchvision.models.get_model_weights(name):
            out.append(pytest.param(name, weights, id=f"{name}-{weights.name}"))
    return out


_BUDGET_S = 8.0  # per entry; the whole sweep takes ~40 s on 2 cores


@pytest.mark.slow
@pytest.mark.parametrize(("name", "weights"), _entries())
def test_macs_and_params_match_torchvision_metadata(name: str, weights: Any) -> None:
    import torchvision

    builder = torchvision.models.get_model_builder(name)
    kwargs = deploy_kwargs_for(name, weights)

    def factory() -> torch.nn.Module:
        model: torch.nn.Module = builder(**kwargs)
        return model

    start = time.perf_counter()
    model, _ = ZooEntry(name, "torchvision", factory).build("meta")
    report = profile(model, weights_input(weights))
    elapsed = time.perf_counter() - start
    assert report.device == "meta"
    assert report.unsupported_ops == {}
    assert report.totals.params == weights.meta["num_params"]
    assert round(report.totals.macs / 1e9, 3) == weights.meta["_ops"]
    assert elapsed < _BUDGET_S


def test_every_weights_entry_is_covered() -> None:
    import torchvision

    names = torchvision.models.list_models(module=torchvision.models)
    assert len(_entries()) == sum(len(torchvision.models.get_model_weights(n)) for n in names)
    assert len(_entries()) > len(names)  # several entries for vit_h_14, regnet_y_*, ...
