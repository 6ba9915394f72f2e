"""The classic zoo: every seed architecture builds on meta and profiles with its default
input; parameter counts match the numbers the seeds printed."""

from __future__ import annotations

import pytest
import torch

from cnnprof.api import profile
from cnnprof.errors import ModelFailedError, ModelLoadError
from cnnprof.zoo import classic, resolve

WORKING = [name for name in classic.ENTRIES if name != "alexnet_seed_227"]


@pytest.mark.parametrize("name", WORKING)
def test_each_classic_model_profiles_on_meta(name: str) -> None:
    report = profile(name)
    assert report.device == "meta"
    assert report.error is None
    assert report.totals.params > 0 and report.totals.macs > 0
    assert report.unsupported_ops == {}
    # leaf rows add up to the total (functional ops live in their parent's self cost)
    assert sum(layer.self_cost.macs for layer in report.layers) == report.totals.macs


@pytest.mark.parametrize(
    ("name", "params"),
    [
        # seeds/004 prints "Total params: 57,044,810" for AlexNet(10)
        ("alexnet_seed", 57_044_810),
        # seeds/004 prints "Total params: 138,357,544" for VGG(1000)
        ("vgg16_seed", 138_357_544),
        # conv1 1*6*9+6=60, conv2 6*16*25+16=2416, fc 400*120+120=48120, 120*84+84=10164,
        # 84*10+10=850: 61,610
        ("lenet", 61_610),
        # conv 3*6*25+6=456, 6*16*25+16=2416, fc 48120 + 10164 + 850: 62,006
        ("lenet_sequential", 62_006),
        ("lenet_ordereddict", 62_006),
        # torchvision's AlexNet layers: 61,100,840 (its weights' num_params)
        ("alexnet_flatten", 61_100_840),
        # convs 160 + 4,640 + 18,496 + 73,856; BN 2*(16+32+64+128) = 480;
        # fc 2048*1024+1024 = 2,098,176, 1024*128+128 = 131,200, 128*10+10 = 1,290: 2,328,298
        ("mnist_cnn", 2_328_298),
        # two 3x3 convs 64→64 without bias 2*36864 + two BN 2*128: 73,984
        ("basic_block", 73_984),
    ],
)
def test_param_counts_match_the_seeds(name: str, params: int) -> None:
    assert profile(name).totals.params == params


def test_seed_prints_are_kept_and_captured() -> None:
    report = profile("alexnet_seed")
    assert any("torch.Size([1, 256, 6, 6])" in note for note in report.notes)
    inception = profile("inception_block")
    assert any("branch_pool_size" in note for note in inception.notes)


def test_alexnet_seed_227_fails_at_its_default_input_and_fits_224() -> None:
    with pytest.raises(ModelFailedError) as info:
        profile("alexnet_seed_227")
    # 227 → conv1 (no padding) 55 → ... → 256x6x6 = 9216, but the seed views to 256*5*5
    message = info.value.message.replace(",", "")
    assert "6400" in message and "9216" in message
    partial = info.value.report
    assert partial is not None and partial.layer("features.12").output_shapes == ((1, 256, 6, 6),)
    # at 224 (the seed's own test) the features end at 256x5x5 and the view fits
    report = profile("alexnet_seed_227", "3x224x224")
    assert report.layer("features").output_shapes == ((1, 256, 5, 5),)
    assert any("torch.Size([1, 256, 5, 5])" in note for note in report.notes)


def test_basic_block_reuses_its_relu_and_adds_outside_modules() -> None:
    report = profile("basic_block")
    assert report.layer("relu").calls == 3
    # out += residual: 64*56*56 = 200,704 additions in BasicBlock's own forward, a row of
    # its own between bn2 and the relu's third call
    add = report.layer("(add_)")
    assert add.flops == 64 * 56 * 56 and add.type == "functional"
    assert report.layer("").self_cost.flops == 0


def test_alexnet_lrn_matches_tensorflow_same_padding() -> None:
    report = profile("alexnet_lrn")
    # SAME, stride 4: ceil(227/4) = 57; pads (57-1)*4+11-227 = 8 → 4 + 4
    assert report.layer("conv1.conv").output_shapes == ((1, 64, 57, 57),)
    assert report.layer("conv5.pool").output_shapes == ((1, 256, 6, 6),)
    pad = classic.TFSamePad2d(11, 4)
    assert pad(torch.zeros(1, 1, 224, 224)).shape[-2:] == (231, 231)  # 3 + 4 at 224


def test_moduledict_choice_comes_from_args() -> None:
    report = profile("moduledict_net", model_args={"choice": "pool", "act": "prelu"})
    assert report.layer("choices.pool").calls == 1
    assert report.layer("choices.conv").calls == 0
    with pytest.raises(ModelLoadError):
        resolve("moduledict_net", {"choice": "nope"}).build("cpu")


def test_build_new_rejects_the_pretrained_variant() -> None:
    with pytest.raises(ValueError, match="downloaded weights"):
        classic.BuildAlexNet("pre", 10)
