"""Every torchvision builder profiles with its default input; classification params exact."""

from __future__ import annotations

import pytest

import cnnprof
from cnnprof.zoo import torchvision_zoo

# torchvision's num_params of quantized models describes the float model they came from
# (BatchNorm not yet folded); cnnprof counts the deployed quantized weights instead.
ALL = torchvision_zoo.names()
CLASSIFICATION = [n for n in ALL if torchvision_zoo.entry(n).task == "classification"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL)
def test_every_builder_profiles_with_its_default_input(name: str) -> None:
    report = cnnprof.profile(name)
    assert report.totals.params > 0
    assert report.totals.macs > 0
    assert report.layers[0].output_shapes, "the root recorded its outputs"
    assert report.device in ("meta", "cpu")


@pytest.mark.parametrize("name", CLASSIFICATION)
def test_classification_params_match_the_weights_metadata(name: str) -> None:
    weights = torchvision_zoo.default_weights(name)
    report = cnnprof.profile(name)
    assert report.totals.params == weights.meta["num_params"]
    assert report.device == "meta"
